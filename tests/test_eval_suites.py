"""Where the evaluation finds its data: question sets and the White Paper in the project, licensed
data sets (WiCE, ConditionalQA) in a data folder given by ``--data`` or ``RAG_EVAL_DATA``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from eval.suites import (
    DATASETS,
    DEFAULT_EVAL_DATA,
    WHITE_PAPER,
    EvalDataError,
    conditionalqa_documents,
    eval_data_dir,
    wice_claims,
)
from rag.config import DEFAULT_SOURCES_DIR, PROJECT_ROOT, Settings


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _tiny_pool(root: Path) -> None:
    _write_jsonl(
        root / "conditionalqa" / "evidence_pool_corpus.jsonl",
        [
            {"_id": "e1", "url": "https://www.gov.uk/carers-allowance", "text": "You could get  £81.90 a week."},
            {"_id": "e2", "url": "https://www.gov.uk/carers-allowance", "text": "You must care for 35 hours a week."},
            {"_id": "e3", "url": "https://www.gov.uk/child-benefit", "text": "Child Benefit is paid every 4 weeks."},
        ],
    )


def _tiny_wice(root: Path) -> None:
    _write_jsonl(
        root / "wice" / "wice_claim_dev_oracle_chunks.jsonl",
        [
            {"claim_id": "c1", "answer": "The bridge opened in 1932.", "label": 0, "context": "It opened in 1932."},
            {"claim_id": "c1", "answer": "The bridge opened in 1932.", "label": 0, "context": "A steel arch."},
            {"claim_id": "c2", "answer": "The tower is 300 m tall.", "label": 1, "context": "It is 200 m tall."},
        ],
    )


def test_the_white_paper_and_question_sets_are_read_from_inside_the_project():
    assert WHITE_PAPER.is_file() and WHITE_PAPER.parent == DEFAULT_SOURCES_DIR
    assert PROJECT_ROOT in WHITE_PAPER.resolve().parents and PROJECT_ROOT in DATASETS.resolve().parents
    assert (DATASETS / "whitepaper.jsonl").is_file() and (DATASETS / "seed.jsonl").is_file()


def test_conditionalqa_is_read_from_the_folder_given_in_the_settings(tmp_path):
    _tiny_pool(tmp_path)
    docs, spans = conditionalqa_documents(Settings().replace(eval_data=str(tmp_path)))
    assert sorted(d.source for d in docs) == ["https://www.gov.uk/carers-allowance", "https://www.gov.uk/child-benefit"]
    doc_id, start, end = spans["e2"]
    doc = next(d for d in docs if d.doc_id == doc_id)
    assert doc.text[start:end] == "You must care for 35 hours a week."
    assert spans["e1"][2] - spans["e1"][1] == len("You could get £81.90 a week.")


def test_wice_is_read_from_the_folder_named_by_rag_eval_data(tmp_path, monkeypatch):
    _tiny_wice(tmp_path)
    monkeypatch.setenv("RAG_EVAL_DATA", str(tmp_path))
    assert eval_data_dir() == tmp_path
    claims = wice_claims()
    assert [(cid, label, len(chunks)) for cid, _, label, chunks in claims] == [("c1", 1, 2), ("c2", 0, 1)]


def test_without_a_setting_the_data_folder_is_shared_eval_data_beside_the_project(monkeypatch):
    monkeypatch.delenv("RAG_EVAL_DATA", raising=False)
    assert eval_data_dir() == DEFAULT_EVAL_DATA == PROJECT_ROOT.parent / "shared" / "eval-data"


def test_a_missing_data_set_raises_one_line_naming_the_folder_and_where_to_get_it(tmp_path):
    with pytest.raises(EvalDataError) as info:
        wice_claims(settings=Settings().replace(eval_data=str(tmp_path)))
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "wice") in message and "https://github.com/ryokamoi/wice" in message


def _rag(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAG_EVAL_DATA"}
    env.update(PYTHONPATH=str(PROJECT_ROOT), HF_HUB_OFFLINE="1", **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=120
    )


@pytest.mark.parametrize(
    "suite,how,url",
    [
        ("judge", "flag", "https://github.com/ryokamoi/wice"),
        ("conditionalqa", "env", "https://haitian-sun.github.io/conditionalqa/"),
    ],
)
def test_rag_eval_with_a_missing_data_folder_prints_one_line_and_exits_2(tmp_path, suite, how, url):
    missing = tmp_path / "no-data-here"
    args = ["eval", "--suite", suite, "--out", str(tmp_path / "report")]
    if how == "flag":
        proc = _rag(args + ["--data", str(missing)], {})
    else:
        proc = _rag(args, {"RAG_EVAL_DATA": str(missing)})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and str(missing) in lines[0] and url in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "report").exists()


def test_no_code_reaches_into_shared_except_the_default_data_folder():
    allowed = {("eval/suites.py", 'DEFAULT_EVAL_DATA = PROJECT_ROOT.parent / "shared" / "eval-data"')}
    found = set()
    for folder in ("rag", "eval", "ui"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            for line in path.read_text(encoding="utf-8").splitlines():
                if re.search(r"""["'](?:\.\./)?shared\b|/\s*["']shared["']""", line):
                    found.add((str(path.relative_to(PROJECT_ROOT)), line.strip()))
    assert found == allowed


def _cqa_questions(n: int = 285, unanswerable_every: int = 6) -> list[dict]:
    return [{"id": f"q{i:03d}", "not_answerable": i % unanswerable_every == 0} for i in range(n)]


def test_conditionalqa_test_part_is_the_fixed_sample_of_100_that_limit_100_answers():
    from eval.suites import CONDITIONALQA_TEST_SIZE, conditionalqa_split, stratified_sample

    questions = _cqa_questions()
    part = conditionalqa_split(questions)
    test = {q for q, s in part.items() if s == "test"}
    assert len(test) == CONDITIONALQA_TEST_SIZE == 100
    assert test == stratified_sample(questions, 100)  # the sample `--limit 100` answered before the split existed
    assert conditionalqa_split(questions) == part  # fixed: the same parts on every run
    unanswerable = sum(1 for q in questions if q["not_answerable"] and part[q["id"]] == "test")
    assert unanswerable == round(100 * sum(q["not_answerable"] for q in questions) / len(questions))


def test_conditionalqa_dev_part_is_every_other_question_and_samples_from_it_stay_inside_it():
    from eval.suites import conditionalqa_split, stratified_sample

    questions = _cqa_questions()
    part = conditionalqa_split(questions)
    dev = [q for q in questions if part[q["id"]] == "dev"]
    assert len(dev) == 185
    sample = stratified_sample(dev, 40)
    assert len(sample) == 40 and all(part[i] == "dev" for i in sample)
    assert any(q["not_answerable"] for q in dev if q["id"] in sample)  # unanswerable ones are sampled too


def test_verdict_rows_count_a_verdict_right_wrong_or_missing_and_the_metrics_add_them_up():
    from fakes import FakeJudge

    from eval.suites import verdict_metrics, verdict_pairs, verdict_rows

    pairs = [
        {"id": "p1", "question": "Is the fund open to councils?", "reply": "The fund is open to councils.", "verdict": "yes"},
        {"id": "p2", "question": "Is the fund open to charities?", "reply": "The fund is open to charities in Wales.", "verdict": "no"},
        {"id": "p3", "question": "Is the fund open to schools?", "reply": "The fund is not open to schools.", "verdict": "no"},
    ]
    sure_yes = verdict_rows(pairs, Settings(), judge=FakeJudge(yes=0.95))
    # p1 right, p2 a confident wrong "Yes", p3 negates the question so it never gets "Yes" (no verdict).
    assert [(r["id"], r["given"], r["outcome"], r["correct"]) for r in sure_yes] == [
        ("p1", "Yes", "right", True), ("p2", "Yes", "wrong", False), ("p3", None, "none", None)]
    m = verdict_metrics(sure_yes)
    assert (m["pairs"], m["right"], m["wrong"], m["no_verdict"]) == (3, 1, 1, 1)
    assert m["verdict_given_rate"] == pytest.approx(2 / 3) and m["precision_of_given"] == pytest.approx(0.5)

    # An unsure judge: only p3, which restates the question negated, gets its (right) "No".
    unsure = verdict_rows(pairs, Settings(), judge=FakeJudge(yes=0.5))
    assert [r["outcome"] for r in unsure] == ["none", "none", "right"]
    m = verdict_metrics(unsure)
    assert (m["right"], m["wrong"], m["no_verdict"], m["precision_of_given"]) == (1, 0, 2, 1.0)
    assert verdict_metrics(unsure[:2])["precision_of_given"] == 0.0  # no verdict given: 0, not a division error
    assert verdict_metrics([])["right_rate"] == 0.0
    # The shipped pairs: 134, balanced, each with an id, a question, a reply and "yes" or "no".
    shipped = verdict_pairs()
    assert len(shipped) == 134 and {p["verdict"] for p in shipped} == {"yes", "no"}
    assert len(verdict_pairs(5)) == 5


@pytest.mark.parametrize(("suite", "corpus"), [("seed", ["ARTICLE"]), ("seed-default", ["ARTICLE", "WHITE_PAPER"]), ("whitepaper", ["ARTICLE", "WHITE_PAPER"])])
def test_each_question_suite_asks_its_questions_over_its_corpus_in_an_index_of_its_own(monkeypatch, tmp_path, suite, corpus):
    import eval.suites as suites

    calls = []
    monkeypatch.setattr(suites, "run_qa_suite", lambda name, items, settings, sources, limit, split: calls.append((name, items, settings, sources, split)))
    suites.SUITES[suite](Settings().replace(cache_dir=tmp_path), split="dev")
    (name, items, settings, sources, split), = calls
    assert name == suite and split == "dev" and suite in suites.SPLIT_SUITES
    assert sources == [getattr(suites, c) for c in corpus]
    assert settings.index_dir == tmp_path / "eval-index" / suite
    dataset = "whitepaper" if suite == "whitepaper" else "seed"
    assert [r["id"] for r in items] == [json.loads(line)["id"] for line in (DATASETS / f"{dataset}.jsonl").open()]
