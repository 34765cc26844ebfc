"""The ``concurrency`` section: many users at once, through our own API, with each engine in turn.

``rag api`` is started twice, on a free port of 127.0.0.1 each time:

1. ``in-process``: the default engine, llama.cpp inside the ``rag api`` process (answers, judge and
   rewriter share its cores and answer one question at a time);
2. ``llama-server``: ``RAG_BACKEND=openai`` pointed at a ``llama-server --parallel 4`` that this
   section starts on 127.0.0.1 (answers, judge and rewriter all go to it; the ``rag api`` process
   keeps only the embedder and the index).

Each engine is warmed up with ``PARALLEL`` concurrent questions (models loaded, prompt caches
filled), then ``N_CONCURRENT`` seed questions are sent at once with the official ``openai`` client
(streaming, as a chat front-end does). Reported per engine: throughput (questions/min over the
wall time from the first request to the last answer), latency p50 / p95 of each question from its
request to its last byte, how many were answered and declined, and the peak RSS of the processes.
Every process started here is stopped at the end, also on error. Without a ``llama-server``
binary (``make llama-server``) the section is skipped with a one-line reason.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rag import DEFAULT_INDEX_DIR

from .common import WARMUP_QUESTION, Context
from .processes import _child_env, _free_port, _http_ok, _rag_command, _stop, _tree_peak
from .sections import load_seed_questions
from .stats import ratio, summarize

log = logging.getLogger(__name__)

#: Questions sent at once.
N_CONCURRENT = 16
#: llama-server's slots: answers decoded together.
PARALLEL = 4
#: Seconds a single question may take before the client gives up (16 queued questions on 2 cores).
REQUEST_TIMEOUT_S = 900.0


# ----- pure summaries (unit-tested) ---------------------------------------------------------------


def engine_summary(rows: list[dict], wall_s: float) -> dict:
    """Throughput and latency of one load run.

    ``rows`` hold one dict per question: ``latency_s``, ``abstained`` (bool) and ``error`` (None, or the
    message of a failed request). Failed requests count in ``errors``, not in the throughput or latency.
    """
    ok = [r for r in rows if not r.get("error")]
    lat = summarize([r["latency_s"] for r in ok])
    return {
        "requests": len(rows),
        "completed": len(ok),
        "errors": len(rows) - len(ok),
        "answered": sum(1 for r in ok if not r["abstained"]),
        "declined": sum(1 for r in ok if r["abstained"]),
        "wall_s": wall_s,
        "throughput_qpm": 60.0 * len(ok) / wall_s if ok and wall_s > 0 else None,
        "latency_s": lat,
        "p50_s": lat["p50"],
        "p95_s": lat["p95"],
    }


def compare_engines(rows: dict[str, list[dict]], summaries: dict[str, dict]) -> dict:
    """Which engine served the load faster, and whether both gave the same decisions.

    ``rows`` and ``summaries`` are keyed by engine name (``engine_summary`` for the latter); rows carry
    ``id`` so the same question can be matched across engines.
    """
    ran = {name: s for name, s in summaries.items() if s.get("throughput_qpm")}
    out: dict[str, Any] = {"faster": None, "throughput_ratio": None, "p95_ratio": None, "same_decision": None, "same_text": None}
    if not ran:
        return out
    faster = max(ran, key=lambda name: ran[name]["throughput_qpm"])
    out["faster"] = faster
    if len(ran) == 2:
        a, b = list(ran)  # ratios are second / first, in the order the engines ran
        out["throughput_ratio"] = ratio(ran[b]["throughput_qpm"], ran[a]["throughput_qpm"])
        out["p95_ratio"] = ratio(ran[b]["p95_s"], ran[a]["p95_s"])
        by_id = [{r["id"]: r for r in rows.get(name, []) if not r.get("error")} for name in (a, b)]
        common = sorted(set(by_id[0]) & set(by_id[1]))
        out["compared"] = len(common)
        out["same_decision"] = sum(by_id[0][i]["abstained"] == by_id[1][i]["abstained"] for i in common)
        out["same_text"] = sum(by_id[0][i].get("text") == by_id[1][i].get("text") for i in common)
    return out


_PROMPT_TIMING = re.compile(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
_DECODE_TIMING = re.compile(r"(?<!prompt )eval time =\s*([\d.]+) ms /\s*(\d+) tokens")


def server_timings(log_text: str) -> dict:
    """What llama-server did, from its ``print_timing`` log lines: requests, prompt tokens processed
    (beyond what its slots had cached) and tokens decoded, with the seconds each took."""
    prompt = [(float(ms), int(n)) for ms, n in _PROMPT_TIMING.findall(log_text)]
    decode = [(float(ms), int(n)) for ms, n in _DECODE_TIMING.findall(log_text)]
    return {
        "requests": len(prompt),
        "prompt_tokens": sum(n for _, n in prompt),
        "prompt_s": sum(ms for ms, _ in prompt) / 1000.0,
        "decoded_tokens": sum(n for _, n in decode),
        "decode_s": sum(ms for ms, _ in decode) / 1000.0,
    }


# ----- load through the API -----------------------------------------------------------------------


def ask_through_api(base_url: str, question: str, *, timeout: float = REQUEST_TIMEOUT_S) -> dict:
    """One streamed question through an OpenAI-compatible ``/v1`` (our ``rag api``): latency, text, decision."""
    import openai

    from rag.openai_api import MODEL_ID

    client = openai.OpenAI(base_url=base_url, api_key="bench", timeout=timeout, max_retries=0)
    t0 = time.perf_counter()
    try:
        pieces, extra = [], None
        stream = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": question}], stream=True)
        with stream:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta is not None and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                extra = (chunk.model_extra or {}).get("rag") or extra
        if extra is None:
            raise RuntimeError("the stream ended without the rag field")
        return {
            "latency_s": time.perf_counter() - t0,
            "abstained": bool(extra.get("abstained")),
            "reason": extra.get("reason"),
            "text": "".join(pieces),
            "error": None,
        }
    except Exception as exc:  # noqa: BLE001 - a failed request is a row, not a failed section
        return {"latency_s": time.perf_counter() - t0, "abstained": None, "reason": None, "text": "", "error": f"{type(exc).__name__}: {exc}"[:300]}


def fire_at_once(base_url: str, questions: list[str]) -> tuple[list[dict], float]:
    """Send ``questions`` together (a barrier releases every thread at once); rows in order, wall seconds."""
    start = threading.Barrier(len(questions) + 1)

    def one(q: str) -> dict:
        start.wait()
        return ask_through_api(base_url, q)

    with ThreadPoolExecutor(max_workers=len(questions)) as pool:
        futures = [pool.submit(one, q) for q in questions]
        start.wait()
        t0 = time.perf_counter()
        rows = [f.result() for f in futures]
        wall = time.perf_counter() - t0
    return rows, wall


class _Api:
    """``rag api`` on a free local port with ``env``; stopped (with its children) by ``stop``."""

    def __init__(self, env: dict[str, str], index_args: list[str], timeout_s: float) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.cmd = _rag_command() + ["api", "--host", "127.0.0.1", "--port", str(self.port)] + index_args
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None and not _http_ok(f"{self.base_url}/models"):
            time.sleep(0.5)
        if not _http_ok(f"{self.base_url}/models"):
            raise RuntimeError(f"`{' '.join(self.cmd)}` did not come up: {self.log_tail()}")

    def log_tail(self, chars: int = 800) -> str:
        self.log.seek(0)
        return " ".join(self.log.read().decode("utf-8", errors="replace")[-chars:].split())

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()


def _run_engine(name: str, env: dict[str, str], index_args: list[str], questions: list[dict], timeout_s: float, server=None) -> dict:
    api = _Api(env, index_args, timeout_s)
    try:
        t0 = time.perf_counter()
        warm_rows, _ = fire_at_once(api.base_url, [WARMUP_QUESTION] * PARALLEL)
        warm_s = time.perf_counter() - t0
        failed = [r["error"] for r in warm_rows if r["error"]]
        if failed:
            raise RuntimeError(f"{name}: the warm-up failed: {failed[0]}; log: {api.log_tail()}")
        load_before = os.getloadavg()
        rows, wall = fire_at_once(api.base_url, [q["question"] for q in questions])
        load_after = os.getloadavg()
        for r, q in zip(rows, questions):
            r.update(id=q.get("id"), type=q.get("type"))
        rss_api, _ = _tree_peak(api.proc.pid)
        rss_server = _tree_peak(server.proc.pid)[0] if server is not None else None
        timings = server_timings(server.log_path.read_text(errors="replace")) if server is not None and server.log_path else None
        summary = engine_summary(rows, wall)
        summary.update(
            command=" ".join(api.cmd),
            warmup_s=warm_s,
            load_avg_before=load_before,
            load_avg_after=load_after,
            peak_rss_api_bytes=rss_api,
            peak_rss_server_bytes=rss_server,
            server_work=timings,  # warm-up included
        )
        if summary["errors"]:
            summary["first_error"] = next(r["error"] for r in rows if r["error"])
            summary["api_log_tail"] = api.log_tail()
        return {"summary": summary, "rows": rows}
    finally:
        api.stop()


def bench_concurrency(ctx: "Context") -> dict:
    from rag.llama_server import BUILD_HINT, BUILT_BINARY, LlamaServer, find_binary
    from rag.models import model_path

    binary = find_binary()
    if binary is None:
        return {"skipped": f"llama-server is not built ({BUILT_BINARY} missing): {BUILD_HINT}"}
    settings = ctx.settings
    model_name = ctx.args_model or settings.model
    model = Path(model_name) if Path(model_name).is_file() else model_path(model_name, settings.cache_dir)
    index_args = [] if Path(settings.index_dir).resolve() == DEFAULT_INDEX_DIR.resolve() else ["--index", str(settings.index_dir)]
    questions = load_seed_questions(N_CONCURRENT)
    timeout_s = float(ctx.plan.serve_timeout_s)

    base = _child_env()
    for key in ("RAG_API_KEY", "RAG_BACKEND", "RAG_OPENAI_BASE_URL", "RAG_OPENAI_MODEL", "RAG_OPENAI_API_KEY"):
        base.pop(key, None)
    base["RAG_MODEL"] = str(model_name)

    results: dict[str, dict] = {}
    bar = ctx.bar("concurrency", 2, "engine")
    results["in-process"] = _run_engine("in-process", {**base, "RAG_BACKEND": "llama-cpp"}, index_args, questions, timeout_s)
    bar.update(1)
    logs = tempfile.TemporaryDirectory(prefix="bench-llama-server-")
    server = LlamaServer(
        model, parallel=PARALLEL, ctx_per_slot=settings.n_ctx, threads=settings.n_threads, log_path=Path(logs.name) / "server.log"
    )
    try:
        server.start(timeout=timeout_s)
        env = {
            **base,
            "RAG_BACKEND": "openai",
            "RAG_OPENAI_BASE_URL": server.base_url,
            "RAG_OPENAI_MODEL": server.alias,
            "RAG_OPENAI_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        }
        results["llama-server"] = _run_engine("llama-server", env, index_args, questions, timeout_s, server=server)
        results["llama-server"]["summary"].update(server_command=" ".join(server.command), server_start_s=server.start_s)
    finally:
        server.stop()
        logs.cleanup()
    bar.update(1)
    bar.close()

    summaries = {name: r["summary"] for name, r in results.items()}
    rows = {name: r["rows"] for name, r in results.items()}
    return {
        "questions": len(questions),
        "parallel": PARALLEL,
        "n_threads": settings.n_threads,
        "model": str(model_name),
        "judge": settings.judge,
        "engines": summaries,
        "comparison": compare_engines(rows, summaries),
        "rows": rows,
    }
