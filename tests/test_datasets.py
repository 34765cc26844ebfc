"""The team's question sets (``eval/datasets/seed.jsonl``, ``whitepaper.jsonl``) are well formed:
valid keys and types, supporting sentences copied from the sources, 1–3 required facts per
answerable question, a dev/test split stratified by type, and the minimum sizes."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from eval.paths import DATASETS, WHITE_PAPER
from rag.config import DEFAULT_SOURCES_DIR

ARTICLE = DEFAULT_SOURCES_DIR / "levelling-up-collaboration.txt"
SOURCES = {ARTICLE.name: ARTICLE, WHITE_PAPER.name: WHITE_PAPER}
KEYS = ["id", "type", "question", "reference", "supporting", "required_facts", "source", "split"]
TYPES = {"answerable", "unanswerable", "off_topic", "injection"}
SPLITS = {"dev", "test"}
#: file -> (id prefix, minimum number of questions)
SETS = {"seed.jsonl": ("seed", 80), "whitepaper.jsonl": ("wp", 60)}


def _squash(text: str) -> str:
    return " ".join(text.split())


def _lines(name: str) -> list[str]:
    return [line for line in (DATASETS / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _items(name: str) -> list[dict]:
    return [json.loads(line) for line in _lines(name)]


@pytest.mark.parametrize("name", SETS)
def test_every_line_is_a_json_object(name):
    for n, line in enumerate(_lines(name), 1):
        item = json.loads(line)
        assert isinstance(item, dict), f"{name} line {n} is not an object"


@pytest.mark.parametrize("name", SETS)
def test_ids_are_unique_and_carry_the_file_prefix(name):
    prefix, _ = SETS[name]
    ids = [item["id"] for item in _items(name)]
    assert len(ids) == len(set(ids)), [i for i, c in Counter(ids).items() if c > 1]
    bad = [i for i in ids if not (i.startswith(prefix + "-") and i[len(prefix) + 1 :].isdigit())]
    assert not bad


@pytest.mark.parametrize("name", SETS)
def test_every_item_has_exactly_the_schema_keys_with_valid_types(name):
    for item in _items(name):
        where = item.get("id")
        assert [k for k in item if k != "also_supporting"] == KEYS, where
        if "also_supporting" in item:
            assert list(item).index("also_supporting") == KEYS.index("supporting") + 1, where
            assert item["type"] == "answerable" and item["also_supporting"], where
            assert all(isinstance(s, str) and s.strip() for s in item["also_supporting"]), where
        assert item["type"] in TYPES, where
        assert item["split"] in SPLITS, where
        assert isinstance(item["question"], str) and item["question"].strip(), where
        assert isinstance(item["reference"], str), where
        assert all(isinstance(s, str) and s.strip() for s in item["supporting"]), where
        assert all(isinstance(f, list) and f and all(isinstance(a, str) and a.strip() for a in f) for f in item["required_facts"]), where
        assert all(s in SOURCES for s in item["source"]), where
        if item["type"] == "answerable":
            assert item["reference"].strip() and item["supporting"] and item["source"], where
        else:
            assert item["reference"] == "" and item["supporting"] == [] and item["required_facts"] == [] and item["source"] == [], where


@pytest.mark.parametrize("name", SETS)
def test_every_supporting_sentence_occurs_in_a_source_file_it_names(name):
    texts = {n: _squash(p.read_text(encoding="utf-8")) for n, p in SOURCES.items()}
    missing = [
        (item["id"], s[:60])
        for item in _items(name)
        for s in item["supporting"] + item.get("also_supporting", [])
        if not any(_squash(s) in texts[src] for src in item["source"])
    ]
    assert not missing


@pytest.mark.parametrize("name", SETS)
def test_answerable_items_have_one_to_three_required_facts_each_found_in_the_reference(name):
    for item in _items(name):
        if item["type"] != "answerable":
            continue
        facts = item["required_facts"]
        assert 1 <= len(facts) <= 3, item["id"]
        reference = _squash(item["reference"]).lower()
        for alternatives in facts:
            assert any(_squash(a).lower() in reference for a in alternatives), (item["id"], alternatives)


@pytest.mark.parametrize("name", SETS)
def test_yes_no_references_lead_with_the_yes_no_fact(name):
    for item in _items(name):
        firsts = [f[0] for f in item["required_facts"]]
        if "Yes" in firsts or "No" in firsts:
            word = "Yes" if "Yes" in firsts else "No"
            assert item["reference"].startswith(word), item["id"]
            assert len(item["required_facts"]) >= 2, f"{item['id']}: a yes/no fact needs its condition too"


@pytest.mark.parametrize("name", SETS)
def test_every_type_has_items_in_both_splits_in_about_equal_numbers(name):
    counts = Counter((item["type"], item["split"]) for item in _items(name))
    for t in {item["type"] for item in _items(name)}:
        dev, test = counts[(t, "dev")], counts[(t, "test")]
        assert dev and test, f"{name}: type {t} has dev={dev}, test={test}"
        assert abs(dev - test) <= 2, f"{name}: type {t} is split {dev}/{test}"


@pytest.mark.parametrize("name", SETS)
def test_sets_hold_at_least_their_minimum_size_and_mostly_answerable_questions(name):
    _, minimum = SETS[name]
    items = _items(name)
    assert len(items) >= minimum
    share = sum(item["type"] == "answerable" for item in items) / len(items)
    assert 0.6 <= share <= 0.8, f"{name}: {share:.0%} answerable"
    assert all(Counter(item["type"] for item in items)[t] for t in {"unanswerable", "off_topic"})


def test_the_white_paper_set_has_questions_that_need_both_documents():
    both = [i for i in _items("whitepaper.jsonl") if set(i["source"]) == set(SOURCES)]
    assert len(both) >= 4


def test_the_verdict_pairs_and_the_name_kind_pairs_are_well_formed_and_balanced():
    verdicts = [json.loads(line) for line in _lines("verdicts.jsonl")]
    assert [sorted(v) for v in verdicts] == [["id", "question", "reply", "verdict"]] * len(verdicts)
    assert len({v["id"] for v in verdicts}) == len(verdicts)
    assert Counter(v["verdict"] for v in verdicts) == {"yes": len(verdicts) // 2, "no": len(verdicts) // 2}
    kinds = [json.loads(line) for line in _lines("kinds.jsonl")]
    assert [sorted(k) for k in kinds] == [["id", "is_kind", "kind", "name", "split"]] * len(kinds)
    assert len({k["id"] for k in kinds}) == len(kinds)
    for split in SPLITS:
        labels = Counter(k["is_kind"] for k in kinds if k["split"] == split)
        assert labels[True] >= 10 and labels[False] >= 10
    assert all(k["name"].strip() and k["kind"] == k["kind"].lower() for k in kinds)
