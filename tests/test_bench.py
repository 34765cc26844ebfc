"""The speed benchmark's helpers and its retrieval-at-scale part, on tiny inputs (no timing assertions)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from eval.bench.stats import (
    ClusteredVectors,
    jsonable,
    percentile,
    ratio,
    recall_at_k,
    summarize,
)


def test_percentile_interpolates_like_numpy():
    xs = [4.0, 1.0, 3.0, 2.0]
    for q in (0, 10, 50, 95, 99, 100):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(xs, 101)


def test_summarize_and_ratio():
    s = summarize([1, 2, 3, None, float("nan")], (50, 99))
    assert s["n"] == 3 and s["p50"] == 2 and s["min"] == 1 and s["max"] == 3 and s["mean"] == 2
    assert s["p99"] == pytest.approx(2.98)
    empty = summarize([])
    assert empty["n"] == 0 and empty["p50"] is None and empty["p95"] is None
    assert ratio(2.0, 4.0) == 0.5
    assert ratio(1.0, 0.0) is None and ratio(None, 1.0) is None
    assert json.loads(json.dumps(jsonable({"a": float("nan"), "b": np.float32(1.5), "c": [np.int64(3)]}))) == {
        "a": None,
        "b": 1.5,
        "c": [3],
    }


def test_clustered_vectors_are_unit_deterministic_and_clustered():
    gen = ClusteredVectors(n_clusters=20, dim=64, noise=0.1, seed=3)
    a = gen.sample(500, seed=1, block=128)
    assert a.shape == (500, 64) and a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, ClusteredVectors(n_clusters=20, dim=64, noise=0.1, seed=3).sample(500, seed=1, block=128))
    assert not np.array_equal(a, gen.sample(500, seed=2))
    # Each vector is much closer to its best centre than random pairs are to each other.
    best = (a @ gen.centres.T).max(axis=1)
    assert best.mean() > 0.5
    assert abs(float((a[:250] * a[250:]).sum(axis=1).mean())) < best.mean()
    assert "clusters" in gen.describe()
    with pytest.raises(ValueError):
        ClusteredVectors(noise=0)


def test_recall_at_k():
    truth = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(truth, truth, 3) == 1.0
    found = np.array([[3, 2, 9], [-1, -1, -1]])
    assert recall_at_k(found, truth, 3) == pytest.approx(2 / 6)
    assert recall_at_k(np.array([[1, 9, 9]]), np.array([[1, 2, 3]]), 1) == 1.0
    with pytest.raises(ValueError):
        recall_at_k(truth[:1], truth, 3)


def _check_size_fields(r: dict) -> None:
    for key in ("n", "store_choice", "latency_ms", "latency_ms_1_thread", "exact_latency_ms", "recall_at_k", "index_bytes", "build_s"):
        assert key in r, key
    for key in ("p50", "p99"):
        assert r["latency_ms"][key] is not None and r["latency_ms"][key] >= 0
    assert 0.0 <= r["recall_at_k"] <= 1.0
    assert r["index_bytes"] > 0


def test_retrieval_at_scale_on_5k_vectors():
    from eval.bench.retrieval import bench_retrieval

    res = bench_retrieval([5_000], n_queries=30, n_clusters=50)
    res = json.loads(json.dumps(jsonable(res)))
    assert res["k"] == 10 and res["n_queries"] == 30 and res["data"]
    (r,) = res["sizes"]
    _check_size_fields(r)
    assert r["n"] == 5_000
    assert r["store_choice"]["type"] == "flat" and r["index_class"] == "IndexIDMap2"
    assert r["recall_at_k"] == pytest.approx(1.0)  # flat search is exact


def test_retrieval_takes_the_stores_ivf_path_above_the_threshold(monkeypatch):
    import rag.store
    from eval.bench.retrieval import bench_retrieval

    monkeypatch.setattr(rag.store, "IVF_THRESHOLD", 1_000)
    res = jsonable(bench_retrieval([5_000], n_queries=20, n_clusters=50))
    (r,) = res["sizes"]
    _check_size_fields(r)
    assert r["store_choice"]["type"] == "ivf" and r["index_class"] == "IndexIVFFlat"
    assert r["nprobe"] == r["store_choice"]["nprobe"] and r["nlist"] == r["store_choice"]["nlist"]
    assert r["nprobe_curve"] and all(0.0 <= row["recall_at_k"] <= 1.0 for row in r["nprobe_curve"])
    assert r["nprobe"] in [row["nprobe"] for row in r["nprobe_curve"]]


def test_targets_and_report_render_with_missing_sections():
    from eval.bench import evaluate_targets, render_markdown

    results = {
        "ask": {"first_token_p50_s": 1.0, "full_answer_p50_s": 7.0},
        "generation": {"error": "Traceback\nRuntimeError: boom"},
    }
    rows = {t["key"]: t["status"] for t in evaluate_targets(results)}
    assert rows["ask.first_token_p50_s"] == "PASS"
    assert rows["ask.full_answer_p50_s"] == "MISS"
    assert rows["generation.decode_ratio"] == "n/a"
    payload = {
        "meta": {"quick": True, "date": "today", "machine": "x", "cpus": 2, "model": "m", "elapsed_s": 1.0},
        "results": results,
        "targets": evaluate_targets(results),
    }
    md = render_markdown(payload)
    assert "| warm ask, both documents: checked answer p50 | 7.000 | <= 6 s | MISS |" in md
    assert "RuntimeError: boom" in md


def test_quick_question_sample():
    from eval.bench import load_seed_questions

    qs = load_seed_questions(5)
    assert len(qs) == 5 and sum(q["type"] == "answerable" for q in qs) >= 3
    assert len(load_seed_questions(None)) >= 20


def test_the_ask_timings_alternate_between_questions_about_each_document():
    from eval.bench import load_ask_questions

    qs = load_ask_questions(6)
    assert [q["doc"] for q in qs] == ["article", "white paper"] * 3
    assert all(q["source"] != ["levelling-up-collaboration.txt"] for q in qs if q["doc"] == "white paper")
    assert len({q["question"] for q in qs}) == 6


def test_pgvector_rows_render_beside_faiss_rows_of_the_same_size():
    from eval.bench.report import render_stores_side_by_side

    faiss = {
        "sizes": [
            {"n": 100_000, "store_choice": {"type": "flat"}, "latency_ms": {"p50": 4.0}, "recall_at_k": 1.0},
            {"n": 1_000_000, "store_choice": {"type": "ivf"}, "nprobe": 16, "latency_ms": {"p50": 6.5}, "recall_at_k": 0.97},
        ]
    }
    pg = {
        "sizes": [
            {"n": 100_000, "query_p50_ms": 2.3, "recall_at_10": 0.994, "ingest_chunks_per_s": 1622.0, "index_build_s": 40.0, "hybrid_p50_ms": 6.0},
            {"n": 1_000_000, "query_p50_ms": 3.1, "recall_at_10": 0.95, "ingest_chunks_per_s": 900.0, "index_build_s": 800.0, "hybrid_p50_ms": 9.0},
            {"n": 5_000, "query_p50_ms": 1.0, "recall_at_10": 1.0, "ingest_chunks_per_s": 2000.0, "index_build_s": 1.0, "hybrid_p50_ms": 2.0},
        ]
    }
    lines = render_stores_side_by_side(faiss, pg)
    rows = [line for line in lines if line.startswith("| 1")]
    assert rows[0].startswith("| 100,000 | flat | 4.00 ms | 1.000 | 2.30 ms | 0.994 | 1,622 chunks/s | 40.0 s | 6.00 ms |")
    assert rows[1].startswith("| 1,000,000 | ivf (nprobe 16) | 6.50 ms | 0.970 | 3.10 ms | 0.950 |")
    assert any(line.startswith("| 5,000 | not in this run |") for line in lines)
    assert render_stores_side_by_side(faiss, {}) == []
