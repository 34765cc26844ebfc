"""``rag bench``: the speed benchmark, each figure beside its raw baseline measured in the same run.

    rag bench                 # full run (several minutes; the 1M-vector retrieval alone takes a while)
    rag bench --quick         # CI-sized run (about 3 minutes)
    rag bench --out DIR       # where bench.json and bench.md go (default eval/reports/bench)
    rag bench --only retrieval,generation --quick               # selected sections

The package: ``common`` (corpus files, questions, targets, the run plan), ``sections`` (in-process
sections), ``processes`` (sections that start ``rag ask`` / ``rag serve``), ``report`` (targets and
``bench.md``), ``stats`` and ``retrieval`` (pure helpers, synthetic-vector retrieval).

Sections (each one is independent: a failure is recorded in bench.json and the others still run):

* ``ask``: ``Assistant.ask`` on the default corpus, warm, streamed: time to first text piece and to
  the final Answer, with the default judge and with ``judge="off"``; prompt and cached tokens.
* ``judge``: seconds per judged sentence (``Judge.support``) and per relevance check.
* ``generation``: decode tokens/s of ``LlamaCppBackend.stream`` vs a raw ``llama_cpp.Llama`` on the
  same GGUF and prompt tokens; raw prompt-processing tokens/s.
* ``indexing``: chunks/s of ``Indexer.run`` (chunk + embed + save) vs raw ``SentenceTransformer.encode``
  of the same chunk texts; the ConditionalQA pool (full run only).
* ``cold_start``: ``rag ask`` from a shell to its first answer byte and to exit, vs ``python -c "import rag"``.
* ``serve_rss``: peak RSS of ``rag serve`` after answering one question through the page.
* ``retrieval``: latency, recall@10 and memory of the store's index types on synthetic clustered vectors.
* ``concurrency``: 16 questions at once through ``rag api`` (the official ``openai`` client), with the
  in-process model and with ``llama-server --parallel 4`` (``RAG_BACKEND=openai``): throughput, p50
  and p95 side by side, answered and declined counts. Skipped when llama-server is not built
  (``make llama-server``).
* ``pgvector``: the Postgres + pgvector store on a throw-away local server, beside FAISS: ingest rate,
  HNSW query p50 and recall@10 (10k vectors quick; 100k and 1M full), the fused dense + keyword query;
  the report puts each size beside FAISS's row of the same size.

The exit status is 0 when every section ran (targets missed are reported, not failed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag import Settings, setup_offline

from .common import Context, DEFAULT_OUT, Plan, SECTIONS
from .concurrency import bench_concurrency
from .processes import bench_cold_start, bench_serve_rss
from .report import evaluate_targets, render_markdown
from .sections import (
    bench_ask,
    bench_generation,
    bench_indexing,
    bench_judge,
    bench_pgvector_section,
    bench_retrieval_section,
    load_ask_questions,
    load_seed_questions,
)
from .stats import jsonable, peak_rss_bytes

__all__ = ["main", "run", "Plan", "SECTIONS", "evaluate_targets", "render_markdown", "load_seed_questions", "load_ask_questions"]

log = logging.getLogger(__name__)

RUNNERS: dict[str, Callable[[Context], dict]] = {
    "ask": bench_ask,
    "judge": bench_judge,
    "generation": bench_generation,
    "indexing": bench_indexing,
    "cold_start": bench_cold_start,
    "serve_rss": bench_serve_rss,
    "retrieval": bench_retrieval_section,
    "pgvector": bench_pgvector_section,
    "concurrency": bench_concurrency,
}


def run(settings: Settings, plan: Plan, out: Path, *, sections=SECTIONS, args_model: str | None = None, progress: bool = True) -> dict:
    """Run the selected sections, write bench.json and bench.md to ``out``; returns the payload."""
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    setup_offline()
    ctx = Context(settings, plan, args_model, progress)
    results: dict[str, Any] = {}
    t_all = time.perf_counter()
    with logging_redirect_tqdm():
        bar = tqdm(total=len(sections), desc="rag bench", unit="section", disable=not progress)
        for name in sections:
            bar.set_postfix_str(name)
            log.info("bench section %s", name)
            t0 = time.perf_counter()
            try:
                results[name] = RUNNERS[name](ctx)
            except Exception as exc:  # noqa: BLE001 - a failed section is reported, the others still run
                log.error("section %s failed: %s", name, exc)
                results[name] = {"error": traceback.format_exc()}
            results[name]["seconds"] = time.perf_counter() - t0
            gc.collect()
            bar.update(1)
        bar.close()
    elapsed = time.perf_counter() - t_all
    payload = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "quick": plan.quick,
            "sections": list(sections),
            "model": settings.model,
            "backend": settings.backend,
            "judge": settings.judge,
            "n_threads": settings.n_threads,
            "cpus": os.cpu_count(),
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "python": platform.python_version(),
            "load_avg_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "elapsed_s": elapsed,
            "bench_peak_rss_bytes": peak_rss_bytes(),
        },
        "results": results,
    }
    payload["targets"] = evaluate_targets(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(jsonable(payload), indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "bench.md").write_text(render_markdown(payload), encoding="utf-8")
    return payload


def main(args: argparse.Namespace, settings: Settings) -> int:
    """Entry point of ``rag bench`` (``args.quick``, ``args.out``, ``args.model``; optional ``args.only``)."""
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    quick = bool(getattr(args, "quick", False))
    only = getattr(args, "only", None)
    sections = tuple(s.strip() for s in only.split(",")) if only else SECTIONS
    unknown = [s for s in sections if s not in RUNNERS]
    if unknown:
        raise ValueError(f"unknown bench section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    out = Path(getattr(args, "out", None) or DEFAULT_OUT)
    payload = run(settings, Plan(quick), out, sections=sections, args_model=getattr(args, "model", None))
    print(render_markdown(payload))
    log.info("wrote %s and %s", out / "bench.json", out / "bench.md")
    failed = [k for k, v in payload["results"].items() if "error" in v]
    return 1 if failed else 0
