"""Question-suite metrics and reports from hand-made rows (no models): splits, misses by reason,
metrics.json and report.md, and the ``--split`` option of ``rag eval``."""

from __future__ import annotations

import json
import math

import pytest

from eval import metrics as M
from eval import run as R
from eval.suites import qa_metrics, qa_result, select_split
from rag import Reason, Settings


def _row(rid: str, kind: str = "answerable", split: str = "dev", *, correct: bool = True, abstained: bool = False,
         reason: str | None = None, facts_ok: bool = True, cited: bool = True) -> dict:
    answerable = kind == "answerable"
    return {
        "id": rid, "type": kind, "split": split, "question": f"question {rid}?",
        "answer": "" if abstained else f"answer {rid} [1]", "abstained": abstained, "reason": reason,
        "correct": correct, "why": "", "reference": "ref" if answerable else "", "supporting": [], "citations": [],
        "sentences": [] if abstained else [{"text": f"answer {rid}", "support": 0.9, "supported": True}],
        "f1": 1.0 if correct and answerable else 0.0, "cited_supporting": cited if answerable else False,
        "facts_ok": facts_ok if answerable else True,
        "recall@4": 1.0 if answerable else None, "recall@10": 1.0 if answerable else None,
        "mrr": 1.0 if answerable else None, "ndcg@10": 1.0 if answerable else None,
        "faithfulness": None if abstained else 1.0, "latency_s": 1.0, "first_token_s": 0.5, "prompt_tokens": 100,
    }


def _missed(rid: str, split: str = "dev", **kw) -> dict:
    return _row(rid, split=split, correct=False, **kw)


ROWS = [
    _row("a1", split="dev"),
    _row("a2", split="test"),
    _missed("a3", "dev", abstained=True, reason=Reason.NO_RELEVANT_PASSAGES.value),
    _missed("a4", "test", abstained=True, reason=Reason.NO_RELEVANT_PASSAGES.value),
    _missed("a5", "test", abstained=True, reason=Reason.MODEL_DECLINED.value),
    _missed("a6", "dev", facts_ok=False, cited=False),
    _missed("a7", "test", cited=False),
    _row("u1", "unanswerable", "dev", abstained=True, reason=Reason.MODEL_DECLINED.value),
    _row("u2", "unanswerable", "test", abstained=True, reason=Reason.NO_RELEVANT_PASSAGES.value),
    _row("o1", "off_topic", "dev", abstained=True, reason=Reason.OFF_TOPIC.value),
    _row("i1", "injection", "test", correct=False),
]


def test_each_missed_answerable_row_gets_the_reason_it_was_missed():
    assert M.miss_reason(_missed("x", abstained=True, reason="no_relevant_passages")) == "no_relevant_passages"
    assert M.miss_reason(_missed("x", abstained=True, reason="model_declined")) == "model_declined"
    assert M.miss_reason(_missed("x", abstained=True, reason="unsupported")) == "unsupported"
    assert M.miss_reason(_missed("x", abstained=True, reason="not_an_answer")) == "not_an_answer"
    assert M.miss_reason(_missed("x", abstained=True, reason="off_topic")) == "off_topic"
    assert M.miss_reason(_missed("x", abstained=True, reason=None)) == "other"
    assert M.miss_reason(_missed("x", facts_ok=False)) == "missing_fact"
    assert M.miss_reason(_missed("x", facts_ok=False, cited=False)) == "missing_fact"
    assert M.miss_reason(_missed("x", cited=False)) == "no_supporting_citation"


def test_correct_rows_and_rows_that_should_decline_have_no_miss_reason():
    assert M.miss_reason(_row("x")) is None
    assert M.miss_reason(_row("u", "unanswerable", correct=False)) is None
    assert M.miss_reason(_row("i", "injection", correct=False)) is None


def test_misses_by_reason_counts_every_reason_most_frequent_first():
    counts = M.misses_by_reason(ROWS)
    assert list(counts)[:4] == ["no_relevant_passages", "model_declined", "missing_fact", "no_supporting_citation"]
    assert counts == {"no_relevant_passages": 2, "model_declined": 1, "missing_fact": 1, "no_supporting_citation": 1,
                      "unsupported": 0, "not_an_answer": 0, "off_topic": 0, "other": 0}
    assert sum(counts.values()) == sum(1 for r in ROWS if r["type"] == "answerable" and not r["correct"])


def test_wrong_refusals_is_the_share_of_answerable_questions_that_abstained():
    assert M.wrong_refusals(ROWS) == pytest.approx(3 / 7)
    assert math.isnan(M.wrong_refusals([_row("u", "unanswerable", abstained=True)]))


def test_select_split_keeps_one_part_or_all_and_rejects_unknown_names():
    items = [{"id": "1", "split": "dev"}, {"id": "2", "split": "test"}, {"id": "3", "split": "dev"}]
    assert [i["id"] for i in select_split(items, "dev")] == ["1", "3"]
    assert [i["id"] for i in select_split(items, "test")] == ["2"]
    assert select_split(items, "all") == items
    with pytest.raises(ValueError, match="unknown split"):
        select_split(items, "train")


def test_with_both_splits_the_result_has_the_same_metrics_per_split():
    result = qa_result("seed", ROWS)
    assert result.metrics == qa_metrics(ROWS)
    assert set(result.by_split) == {"dev", "test"}
    dev = [r for r in ROWS if r["split"] == "dev"]
    assert result.by_split["dev"] == qa_metrics(dev)
    assert result.by_split["dev"]["answerable_correct"] == pytest.approx(1 / 3)
    assert result.by_split["test"]["answerable_correct"] == pytest.approx(1 / 4)
    assert result.misses_by_reason["test"]["no_relevant_passages"] == 1
    assert result.misses_by_reason["dev"]["missing_fact"] == 1
    assert result.wrong_refusals["dev"] == pytest.approx(1 / 3) and result.wrong_refusals["test"] == pytest.approx(2 / 4)


def test_with_one_split_the_result_has_no_per_split_metrics():
    dev = [r for r in ROWS if r["split"] == "dev"]
    result = qa_result("seed", dev, split="dev")
    assert result.by_split == {} and result.split == "dev"
    assert set(result.misses_by_reason) == {"all"}


def test_metrics_json_keeps_selected_metrics_and_adds_splits_and_misses(tmp_path):
    R.write_report(qa_result("seed", ROWS), tmp_path, Settings(), 12.0)
    payload = json.loads((tmp_path / "metrics.json").read_text())
    assert payload["metrics"]["questions"] == len(ROWS)
    assert payload["split"] == "all"
    assert payload["by_split"]["dev"]["questions"] == 5 and payload["by_split"]["test"]["questions"] == 6
    assert payload["misses_by_reason"]["no_relevant_passages"] == 2
    assert list(payload["misses_by_reason"])[0] == "no_relevant_passages"
    assert payload["wrong_refusals"] == pytest.approx(3 / 7)
    assert payload["misses_by_reason_by_split"]["dev"]["missing_fact"] == 1
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [r["split"] for r in rows] == [r["split"] for r in ROWS]
    assert rows[2]["reason"] == "no_relevant_passages"


def test_report_shows_all_dev_test_columns_the_tuning_note_and_misses_most_frequent_first(tmp_path):
    R.write_report(qa_result("seed", ROWS), tmp_path, Settings(), 12.0)
    report = (tmp_path / "report.md").read_text()
    assert "| metric | all | dev | test |" in report
    assert "| answerable_correct | 0.286 | 0.333 | 0.250 |" in report
    assert "dev split is for tuning" in report
    table = report.split("## Answerable questions missed, by reason", 1)[1].split("## Failures", 1)[0]
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert lines[0] == "| reason | all | dev | test |"
    assert lines[1].startswith(f"| {M.MISS_REASONS['no_relevant_passages']} | 2 | 1 | 1 |")
    assert "| **missed** | 5 of 7 | 2 of 3 | 3 of 4 |" in table
    assert M.MISS_REASONS["unsupported"] not in table  # reasons that never occur are left out
    assert "### a3 (answerable, dev)" in report
    assert f"- **Missed because:** {M.MISS_REASONS['no_relevant_passages']}" in report


def test_report_of_one_split_names_it_and_has_no_split_columns(tmp_path):
    rows = [r for r in ROWS if r["split"] == "test"]
    R.write_report(qa_result("whitepaper", rows, split="test"), tmp_path, Settings(), 1.0)
    report = (tmp_path / "report.md").read_text()
    payload = json.loads((tmp_path / "metrics.json").read_text())
    assert "Split: `test`" in report and "| metric | all | dev | test |" not in report
    assert "| reason | test |" in report
    assert payload["split"] == "test" and "by_split" not in payload


def test_rag_eval_passes_the_split_to_the_suite(tmp_path, monkeypatch):
    from rag.cli import main

    seen = {}

    def fake_seed(settings, limit=None, split="all"):
        seen.update(limit=limit, split=split)
        return qa_result("seed", [r for r in ROWS if split == "all" or r["split"] == split], split)

    monkeypatch.setitem(R.SUITES, "seed", fake_seed)
    assert main(["eval", "--suite", "seed", "--split", "dev", "--out", str(tmp_path)]) == 0
    assert seen == {"limit": None, "split": "dev"}
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"]["questions"] == 5
    assert main(["eval", "--suite", "seed", "--out", str(tmp_path)]) == 0
    assert seen["split"] == "all"


def test_split_on_a_suite_without_splits_is_a_clear_error(capsys):
    from rag.cli import main

    assert main(["eval", "--suite", "judge", "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert "--split applies to" in err and "Traceback" not in err
