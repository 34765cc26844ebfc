"""`rag eval` end to end on a few seed questions, with the real models."""

from __future__ import annotations

import json

import pytest

from rag.cli import main

pytestmark = pytest.mark.models


def test_eval_writes_metrics_report_and_plots_and_gates_on_thresholds(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["eval", "--suite", "seed", "--limit", "3", "--out", str(out), "--fail-under", "questions=3"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics["questions"] == 3
    assert 0.0 <= metrics["answerable_correct"] <= 1.0
    report = (out / "report.md").read_text()
    assert "| answerable_correct |" in report and "## Failures" in report
    assert (out / "metrics.png").stat().st_size > 1000 and (out / "latency.png").is_file()
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["seed-001", "seed-002", "seed-003"]

    # The same run compared with itself has zero deltas; an impossible gate fails the command.
    code = main(["eval", "--suite", "seed", "--limit", "1", "--out", str(tmp_path / "r2"),
                 "--compare", str(out / "metrics.json"), "--fail-under", "questions=99"])
    assert code == 1
    assert "FAIL: questions" in capsys.readouterr().err


def test_unknown_suite_is_a_clear_error(capsys):
    assert main(["eval", "--suite", "nope"]) == 2
    assert "unknown suite" in capsys.readouterr().err
