"""The ``concurrency`` section: many users at once, through our own API, with each engine in turn.

``rag api`` is started twice, on a free port of 127.0.0.1 each time:

1. ``in-process``: the default engine, llama.cpp inside the ``rag api`` process (answers, judge and
   rewriter share its cores and answer one question at a time);
2. ``llama-server``: ``RAG_BACKEND=openai`` pointed at a ``llama-server --parallel 4`` that this
   section starts on 127.0.0.1 (answers, judge and rewriter all go to it; the ``rag api`` process
   keeps only the embedder and the index).

Both stay up. Each is warmed up with ``PARALLEL`` concurrent questions (models loaded, prompt
caches filled); then, round after round (one with ``--quick``, two otherwise), ``N_CONCURRENT`` seed
questions are sent at once with the official ``openai`` client (streaming, as a chat front-end
does) to one engine, then the same questions to the other, the order turning each round (A B, B A)
so that a change in the machine's load touches both alike; each round has its own answerable
questions. Reported per engine over all rounds: throughput (questions/min over the wall time from
the first request to the last answer of each round), latency p50 / p95 of each question from its
request to its last byte, how many were answered and declined, the peak RSS of the processes, and
per round with the load average.
Every process started here is stopped at the end, also on error. Without a ``llama-server``
binary (``make llama-server``) the section is skipped with a one-line reason.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import signal
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


def round_questions(items: list[dict], n: int, r: int) -> list[dict]:
    """The ``n`` questions of round ``r``: mostly answerable ones, then one of each other type, as
    ``load_seed_questions(n)``; no answerable question is asked in two rounds (a server's prompt
    cache would then hold the judge's prompts from the round before)."""
    answerable = [it for it in items if it.get("type") == "answerable"]
    others: dict[str, list[dict]] = {}
    for it in items:
        if it.get("type") != "answerable":
            others.setdefault(it.get("type", "other"), []).append(it)
    k = max(1, math.ceil(n * 0.8))
    if (r + 1) * k > len(answerable):
        raise ValueError(f"round {r} needs {(r + 1) * k} answerable questions, the set has {len(answerable)}")
    picked = answerable[r * k : (r + 1) * k]
    types = sorted(others, key=lambda t: (t != "unanswerable", t))
    j = 0
    while len(picked) < n and types:
        pool = others[types[j % len(types)]]
        picked.append(pool[(r + j // len(types)) % len(pool)])
        j += 1
    return picked[:n]


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


@functools.lru_cache(maxsize=None)
def model_id(base_url: str) -> str:
    """The one model ``rag api`` at ``base_url`` lists (``GET /v1/models``)."""
    import openai

    return openai.OpenAI(base_url=base_url, api_key="bench", timeout=30, max_retries=0).models.list().data[0].id


def ask_through_api(base_url: str, question: str, *, timeout: float = REQUEST_TIMEOUT_S) -> dict:
    """One streamed question through an OpenAI-compatible ``/v1`` (our ``rag api``): latency, text, decision."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="bench", timeout=timeout, max_retries=0)
    t0 = time.perf_counter()
    try:
        pieces, extra = [], None
        stream = client.chat.completions.create(model=model_id(base_url), messages=[{"role": "user", "content": question}], stream=True)
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

    pool = ThreadPoolExecutor(max_workers=len(questions))
    try:
        futures = [pool.submit(one, q) for q in questions]
        start.wait()
        t0 = time.perf_counter()
        rows = [f.result() for f in futures]
        wall = time.perf_counter() - t0
    finally:
        # Interrupted (SIGTERM, Ctrl-C): do not wait here for answers; stopping the API ends them.
        start.abort()
        pool.shutdown(wait=False, cancel_futures=True)
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
            tail = self.log_tail()
            self.stop()
            raise RuntimeError(f"`{' '.join(self.cmd)}` did not come up: {tail}")

    def check_running(self, name: str) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{name}: `rag api` exited with status {self.proc.returncode}: {self.log_tail()}")

    def log_tail(self, chars: int = 800) -> str:
        self.log.seek(0)
        return " ".join(self.log.read().decode("utf-8", errors="replace")[-chars:].split())

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _stop_on_sigterm():
    """Until the returned function is called, SIGTERM raises SystemExit, so the servers this section
    started are stopped by its ``finally`` (Python's default would exit at once and leave them running)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _warm_up(name: str, api: _Api) -> float:
    """``PARALLEL`` questions at once: models loaded, and every server slot holds the corpus prefix."""
    t0 = time.perf_counter()
    rows, _ = fire_at_once(api.base_url, [WARMUP_QUESTION] * PARALLEL)
    failed = [r["error"] for r in rows if r["error"]]
    if failed:
        api.check_running(name)
        raise RuntimeError(f"{name}: the warm-up failed: {failed[0]}; log: {api.log_tail()}")
    return time.perf_counter() - t0


def bench_concurrency(ctx: "Context") -> dict:
    import rag
    from rag import LlamaServer, model_path

    if rag.find_llama_server() is None:
        return {"skipped": f"llama-server is not built ({LlamaServer.BUILT_BINARY} missing): {LlamaServer.BUILD_HINT}"}
    settings = ctx.settings
    model_name = ctx.args_model or settings.model
    model = Path(model_name) if Path(model_name).is_file() else model_path(model_name, settings.cache_dir)
    index_args = [] if Path(settings.index_dir).resolve() == DEFAULT_INDEX_DIR.resolve() else ["--index", str(settings.index_dir)]
    rounds = ctx.plan.concurrency_rounds
    items = load_seed_questions(None)
    question_sets = [round_questions(items, N_CONCURRENT, r) for r in range(rounds)]
    timeout_s = float(ctx.plan.serve_timeout_s)

    base = _child_env()
    for key in ("RAG_API_KEY", "RAG_BACKEND", "RAG_OPENAI_BASE_URL", "RAG_OPENAI_MODEL", "RAG_OPENAI_API_KEY"):
        base.pop(key, None)
    base["RAG_MODEL"] = str(model_name)

    bar = ctx.bar("concurrency", 2 + 2 * rounds, "step")
    apis: dict[str, _Api] = {}
    warmup: dict[str, float] = {}
    logs = tempfile.TemporaryDirectory(prefix="bench-llama-server-")
    server = LlamaServer(
        model, parallel=PARALLEL, ctx_per_slot=settings.n_ctx, threads=settings.n_threads, log_path=Path(logs.name) / "server.log"
    )
    rows: dict[str, list[dict]] = {"in-process": [], "llama-server": []}
    walls = {name: 0.0 for name in rows}
    per_round: list[dict] = []
    restore = _stop_on_sigterm()
    try:
        # Both engines stay up (idle) while the other one answers: the rounds alternate between them,
        # in the order A B, B A, ..., so a change in the machine's load touches both alike.
        apis["in-process"] = _Api({**base, "RAG_BACKEND": "llama-cpp"}, index_args, timeout_s)
        warmup["in-process"] = _warm_up("in-process", apis["in-process"])
        bar.update(1)
        server.start(timeout=timeout_s)
        env = {
            **base,
            "RAG_BACKEND": "openai",
            "RAG_OPENAI_BASE_URL": server.base_url,
            "RAG_OPENAI_MODEL": server.alias,
            "RAG_OPENAI_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        }
        apis["llama-server"] = _Api(env, index_args, timeout_s)
        warmup["llama-server"] = _warm_up("llama-server", apis["llama-server"])
        bar.update(1)
        for r, questions in enumerate(question_sets):
            order = list(rows) if r % 2 == 0 else list(rows)[::-1]
            for name in order:
                apis[name].check_running(name)
                if name == "llama-server" and server.proc.poll() is not None:
                    raise RuntimeError(f"llama-server exited with status {server.proc.returncode}: {server.log_tail(600)}")
                load_before = os.getloadavg()
                got, wall = fire_at_once(apis[name].base_url, [q["question"] for q in questions])
                for row, q in zip(got, questions):
                    row.update(id=q.get("id"), type=q.get("type"), round=r)
                rows[name] += got
                walls[name] += wall
                s = engine_summary(got, wall)
                per_round.append(
                    {"round": r, "engine": name, "load_avg_before": load_before, "load_avg_after": os.getloadavg(),
                     **{k: s[k] for k in ("throughput_qpm", "p50_s", "p95_s", "answered", "declined", "errors", "wall_s")}}
                )
                # Logged as it happens: a run cut short still leaves its finished rounds in the log.
                log.info(
                    "concurrency round %d, %s: %s q/min over %.1f s, p50 %s s, p95 %s s, %d answered, %d declined, "
                    "%d failed, load %.2f; latencies %s",
                    r + 1, name, _num(s["throughput_qpm"]), wall, _num(s["p50_s"]), _num(s["p95_s"]), s["answered"],
                    s["declined"], s["errors"], load_before[0], sorted(round(x["latency_s"], 1) for x in got),
                )
                bar.update(1)
        summaries = {}
        for name in rows:
            s = engine_summary(rows[name], walls[name])
            s.update(command=" ".join(apis[name].cmd), warmup_s=warmup[name], peak_rss_api_bytes=_tree_peak(apis[name].proc.pid)[0])
            if name == "llama-server":
                if server.proc.poll() is not None:  # stopped by someone else after its last round: no RSS to read
                    s["server_exit_status"] = server.proc.returncode
                s.update(
                    peak_rss_server_bytes=_tree_peak(server.proc.pid)[0],
                    server_command=" ".join(server.command),
                    server_start_s=server.start_s,
                    server_work=server_timings(server.log_path.read_text(errors="replace")),  # warm-up included
                )
            if s["errors"]:
                s["first_error"] = next(r["error"] for r in rows[name] if r["error"])
                s["api_log_tail"] = apis[name].log_tail()
            summaries[name] = s
    finally:
        for api in apis.values():
            api.stop()
        server.stop()
        logs.cleanup()
        bar.close()
        restore()
    return {
        "questions": N_CONCURRENT,
        "rounds": rounds,
        "parallel": PARALLEL,
        "n_threads": settings.n_threads,
        "model": str(model_name),
        "judge": settings.judge,
        "engines": summaries,
        "per_round": per_round,
        "comparison": compare_engines(rows, summaries),
        "rows": rows,
    }
