"""The ``concurrency`` bench section's summaries, report and skip, without a model or a server."""

from __future__ import annotations

import pytest

from eval.bench.concurrency import compare_engines, engine_summary


def _row(i: int, latency: float, abstained: bool = False, error: str | None = None, text: str = "") -> dict:
    return {"id": f"q{i}", "latency_s": latency, "abstained": None if error else abstained, "error": error, "text": text or f"answer {i}"}


def test_engine_summary_counts_throughput_latency_and_decisions():
    rows = [_row(i, float(i + 1)) for i in range(8)] + [_row(8, 9.0, abstained=True), _row(9, 10.0, abstained=True)]
    s = engine_summary(rows, wall_s=30.0)
    assert (s["requests"], s["completed"], s["errors"]) == (10, 10, 0)
    assert (s["answered"], s["declined"]) == (8, 2)
    assert s["throughput_qpm"] == pytest.approx(20.0)  # 10 questions in 30 s
    assert s["p50_s"] == pytest.approx(5.5)
    assert s["p95_s"] == pytest.approx(9.55)  # linear interpolation between ranks, as NumPy
    assert s["latency_s"]["max"] == 10.0


def test_failed_requests_are_counted_apart_from_the_throughput_and_latency():
    rows = [_row(0, 4.0), _row(1, 6.0), _row(2, 0.1, error="APIConnectionError: refused")]
    s = engine_summary(rows, wall_s=60.0)
    assert (s["completed"], s["errors"], s["answered"], s["declined"]) == (2, 1, 2, 0)
    assert s["throughput_qpm"] == pytest.approx(2.0)
    assert s["p50_s"] == pytest.approx(5.0)


def test_nothing_completed_gives_no_throughput():
    s = engine_summary([_row(0, 1.0, error="boom")], wall_s=5.0)
    assert s["throughput_qpm"] is None and s["p95_s"] is None


def test_the_comparison_names_the_faster_engine_and_matches_questions_by_id():
    a = [_row(0, 10.0), _row(1, 20.0, abstained=True, text="The documents don't say."), _row(2, 30.0)]
    b = [_row(0, 5.0), _row(1, 8.0), _row(2, 9.0, text="different words")]
    summaries = {"in-process": engine_summary(a, 60.0), "llama-server": engine_summary(b, 20.0)}
    c = compare_engines({"in-process": a, "llama-server": b}, summaries)
    assert c["faster"] == "llama-server"
    assert c["throughput_ratio"] == pytest.approx(3.0)  # 9 q/min against 3 q/min
    assert c["p95_ratio"] == pytest.approx(summaries["llama-server"]["p95_s"] / summaries["in-process"]["p95_s"])
    assert (c["compared"], c["same_decision"], c["same_text"]) == (3, 2, 1)


def test_the_comparison_survives_an_engine_that_failed():
    a = [_row(0, 10.0)]
    c = compare_engines({"in-process": a}, {"in-process": engine_summary(a, 10.0), "llama-server": {"throughput_qpm": None}})
    assert c["faster"] == "in-process" and c["throughput_ratio"] is None
    assert compare_engines({}, {})["faster"] is None


def test_the_report_puts_the_engines_side_by_side():
    from eval.bench.report import render_concurrency

    a = [_row(i, 10.0 + i) for i in range(15)] + [_row(15, 12.0, abstained=True)]
    b = [_row(i, 5.0 + i) for i in range(15)] + [_row(15, 6.0, abstained=True)]
    summaries = {"in-process": engine_summary(a, 120.0), "llama-server": engine_summary(b, 60.0)}
    section = {
        "questions": 16, "parallel": 4, "n_threads": 2, "model": "qwen2.5-1.5b", "judge": "llm",
        "engines": summaries, "comparison": compare_engines({"in-process": a, "llama-server": b}, summaries),
        "rounds": 2,
        "per_round": [
            {"round": 0, "engine": "in-process", "load_avg_before": [1.5, 1, 1], **engine_summary(a[:8], 60.0)},
            {"round": 0, "engine": "llama-server", "load_avg_before": [1.25, 1, 1], **engine_summary(b[:8], 30.0)},
        ],
    }
    md = "\n".join(render_concurrency(section))
    assert "2 rounds, each with its own questions, the engines taking turns" in md
    assert "| 1 | llama-server | 16.00 | 8.5 / 11.7 s | 8 / 0 | 1.25 |" in md
    assert "| in-process | 8.00 |" in md and "| llama-server | 16.00 |" in md
    assert "15 / 1 / 0" in md
    assert "Faster: **llama-server**" in md and "throughput llama-server / in-process = 2.00" in md
    assert "same answer-or-decline decision on 16 of 16 questions" in md


def test_without_a_llama_server_binary_the_section_skips_with_one_line(monkeypatch):
    import rag
    from eval.bench.common import Context, Plan
    from eval.bench.concurrency import bench_concurrency
    from eval.bench.report import render_concurrency
    from rag import Settings

    monkeypatch.setattr(rag, "find_llama_server", lambda: None, raising=False)
    out = bench_concurrency(Context(Settings(), Plan(quick=True), None, progress=False))
    assert set(out) == {"skipped"} and "make llama-server" in out["skipped"] and "\n" not in out["skipped"]
    (blank, line) = render_concurrency(out)
    assert line.startswith("Many users at once (`concurrency`): skipped: llama-server is not built")


def test_server_timings_add_up_llama_servers_print_timing_lines():
    from eval.bench.concurrency import server_timings

    log = "\n".join([
        "srv  load_model: loading model",
        "slot print_timing: id  3 | task 0 | prompt eval time =   31568.63 ms /   968 tokens (   32.61 ms per token,    30.66 tokens per second)",
        "slot print_timing: id  3 | task 0 |        eval time =   19139.24 ms /    25 tokens (  797.47 ms per token,     1.25 tokens per second)",
        "slot print_timing: id  2 | task 26 | prompt eval time =    5553.54 ms /   118 tokens (   47.06 ms per token,    21.25 tokens per second)",
        "slot print_timing: id  2 | task 26 |        eval time =       0.00 ms /     1 tokens (    0.00 ms per token,     0.00 tokens per second)",
    ])
    t = server_timings(log)
    assert (t["requests"], t["prompt_tokens"], t["decoded_tokens"]) == (2, 1086, 26)
    assert t["prompt_s"] == pytest.approx(37.12217) and t["decode_s"] == pytest.approx(19.13924)
    assert server_timings("")["requests"] == 0


def test_each_round_asks_its_own_answerable_questions_and_one_of_each_other_type():
    from eval.bench.concurrency import round_questions
    from eval.bench.sections import load_seed_questions

    items = load_seed_questions(None)
    first, second = round_questions(items, 16, 0), round_questions(items, 16, 1)
    assert first == load_seed_questions(16)  # round 1 is the usual 16-question sample
    for qs in (first, second):
        assert len(qs) == 16 and len({q["id"] for q in qs}) == 16
        assert sum(q["type"] == "answerable" for q in qs) == 13
        assert {q["type"] for q in qs} == {"answerable", "unanswerable", "injection", "off_topic"}
    assert not {q["id"] for q in first} & {q["id"] for q in second}
    with pytest.raises(ValueError, match="answerable questions"):
        round_questions(items, 16, 10)


def test_questions_fired_at_once_through_our_api_come_back_in_order_with_their_decisions():
    from test_openai_api import FakeAssistant, serve

    from eval.bench.concurrency import fire_at_once
    from rag import Settings
    from rag.openai_api import create_app

    fake = FakeAssistant(Settings(), delay=0.3)
    questions = [f"Question {i}?" for i in range(5)] + ["What is the weather?", "Please explode?"]
    with serve(create_app(fake, keepalive_s=0.1)) as url:
        rows, wall = fire_at_once(url, questions)
    assert len(fake.calls) == len(questions)
    assert [r["text"] for r in rows[:5]] == [f"The passage answers: Question {i}? [1]." for i in range(5)]
    assert [r["abstained"] for r in rows[:6]] == [False] * 5 + [True] and rows[5]["reason"] == "no_relevant_passages"
    assert rows[6]["error"] and "not reachable" in rows[6]["error"]
    # Sent together: the whole batch took about one answer's delay, not seven.
    assert wall < 0.3 * len(questions) and all(r["latency_s"] <= wall + 0.1 for r in rows)
    s = engine_summary(rows, wall)
    assert (s["completed"], s["answered"], s["declined"], s["errors"]) == (6, 5, 1, 1)
