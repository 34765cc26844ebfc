"""``rag bench``: the speed benchmark, each figure beside its raw baseline measured in the same run.

    rag bench                 # full run (several minutes; the 1M-vector retrieval alone takes a while)
    rag bench --quick         # CI-sized run (about 3 minutes)
    rag bench --out DIR       # where bench.json and bench.md go (default eval/reports/bench)
    python -m eval.bench --only retrieval,generation --quick    # selected sections (development)

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

The exit status is 0 when every section ran (targets missed are reported, not failed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.config import DEFAULT_INDEX_DIR, DEFAULT_SOURCES_DIR, PROJECT_ROOT, Settings, setup_offline

from .bench_stats import jsonable, median, mib, peak_rss_bytes, proc_status_kb, descendants, ratio, summarize

log = logging.getLogger(__name__)

DEFAULT_OUT = PROJECT_ROOT / "eval" / "reports" / "bench"
SEED = PROJECT_ROOT / "eval" / "datasets" / "seed.jsonl"
ARTICLE = DEFAULT_SOURCES_DIR / "levelling-up-collaboration.txt"
from .suites import WHITE_PAPER  # noqa: E402  (the one definition of the White Paper's path)
COLD_QUESTION = "What share of swimming pools are at risk of closure?"
WARMUP_QUESTION = "What did Michael Gove say about the Levelling Up Fund?"
SECTIONS = ("ask", "judge", "generation", "indexing", "cold_start", "serve_rss", "retrieval")

#: (key in the results, label, comparison, threshold, unit)
TARGETS = [
    ("ask.first_token_p50_s", "warm ask: first token p50", "<=", 1.5, "s"),
    ("ask.full_answer_p50_s", "warm ask: full answer p50", "<=", 4.0, "s"),
    ("generation.decode_ratio", "generation: decode ours/raw", ">=", 0.95, ""),
    ("indexing.ratio", "indexing: chunks/s ours/raw", ">=", 0.9, ""),
    ("retrieval.1m_p50_ms", "retrieval 1M: p50 latency", "<", 10.0, "ms"),
    ("retrieval.1m_recall", "retrieval 1M: recall@10", ">=", 0.95, ""),
    ("cold_start.first_byte_p50_s", "cold start: first answer byte p50", "<", 8.0, "s"),
]


class Plan:
    """Sizes of a run: ``quick`` for CI, full otherwise."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self.ask_questions = 5 if quick else None  # None: every seed question
        self.judge_pairs = 2 if quick else 5
        self.gen_tokens = 32 if quick else 64
        self.gen_reps = 3 if quick else 5
        self.prefill_reps = 1 if quick else 3
        self.index_reps = 1 if quick else 3
        self.conditionalqa = not quick
        self.cold_runs = 1 if quick else 3
        self.import_runs = 3
        self.retrieval_sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
        self.retrieval_queries = 200
        self.serve_timeout_s = 150 if quick else 300


# ----- 1. ask() end to end -------------------------------------------------------------------------


def load_seed_questions(limit: int | None = None) -> list[dict]:
    """Seed questions: every item, or ``limit`` of them: mostly answerable, then one of each other type."""
    items = [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]
    if limit is None or limit >= len(items):
        return items
    answerable = [it for it in items if it.get("type") == "answerable"]
    others: dict[str, list[dict]] = {}
    for it in items:
        if it.get("type") != "answerable":
            others.setdefault(it.get("type", "other"), []).append(it)
    picked = answerable[: max(1, math.ceil(limit * 0.8))]
    types = sorted(others, key=lambda t: (t != "unanswerable", t))
    i = 0
    while len(picked) < limit and any(others.values()):
        t = types[i % len(types)]
        if others[t]:
            picked.append(others[t].pop(0))
        i += 1
    return picked[:limit]


def timed_ask(assistant, question: str, judge: str | None) -> dict:
    """One streamed ``ask``: our own clock for the first text piece and the final Answer, plus its stats."""
    from rag.types import Answer

    t0 = time.perf_counter()
    first = None
    pieces = 0
    answer = None
    t_answer = None
    for item in assistant.ask(question, stream=True, judge=judge):
        if isinstance(item, Answer):
            answer = item
            t_answer = time.perf_counter() - t0
        elif item:
            pieces += 1
            if first is None:
                first = time.perf_counter() - t0
    assert answer is not None
    st = answer.stats
    generated = bool(st.get("prompt_tokens"))
    return {
        "first_token_s": first if generated else None,
        "full_answer_s": t_answer,
        "pieces": pieces,
        "generated": generated,
        "abstained": answer.abstained,
        "reason": answer.reason,
        "prompt_tokens": st.get("prompt_tokens"),
        "cached_tokens": st.get("cached_tokens"),
        "completion_tokens": st.get("completion_tokens"),
        "pipeline_first_token_s": st.get("first_token_s"),
        "retrieve_s": st.get("retrieve_s"),
        "generate_s": st.get("generate_s"),
        "judge_s": st.get("judge_s"),
        "total_s": st.get("total_s"),
    }


def _summ_ask(rows: list[dict]) -> dict:
    gen = [r for r in rows if r["generated"]]
    prompt = sum(r["prompt_tokens"] or 0 for r in gen)
    cached = sum(r["cached_tokens"] or 0 for r in gen)
    return {
        "n": len(rows),
        "n_generated": len(gen),
        "n_abstained": sum(r["abstained"] for r in rows),
        "first_token_s": summarize([r["first_token_s"] for r in gen]),
        "full_answer_s": summarize([r["full_answer_s"] for r in gen]),
        "full_answer_all_s": summarize([r["full_answer_s"] for r in rows]),
        "pipeline_first_token_s": summarize([r["pipeline_first_token_s"] for r in gen]),
        "judge_s": summarize([r["judge_s"] for r in gen if r["judge_s"] is not None]),
        "retrieve_s": summarize([r["retrieve_s"] for r in rows if r["retrieve_s"] is not None]),
        "prompt_tokens_mean": prompt / len(gen) if gen else None,
        "cached_tokens_mean": cached / len(gen) if gen else None,
        "completion_tokens_mean": sum(r["completion_tokens"] or 0 for r in gen) / len(gen) if gen else None,
        "cached_share": cached / prompt if prompt else None,
    }


def bench_ask(ctx: "Context") -> dict:
    from rag.pipeline import ensure_default_index, get_assistant

    settings = ctx.settings
    if Path(settings.index_dir).resolve() == DEFAULT_INDEX_DIR.resolve():
        ensure_default_index(settings, progress=False)
    assistant = get_assistant(settings=settings)
    items = load_seed_questions(ctx.plan.ask_questions)
    default_mode = settings.judge
    modes = [None, "off"]  # None: the settings' judge (llm by default)
    labels = {None: default_mode, "off": "off"}

    t0 = time.perf_counter()
    warm = timed_ask(assistant, WARMUP_QUESTION, None)  # loads the answer and judge models, fills the cache
    log.info("ask warm-up (models loaded) took %.1fs", time.perf_counter() - t0)

    # Interleave the two modes, never asking the same question twice in a row (that would hit the
    # whole prompt in the KV cache): question i with the judge, then question i + n//2 without.
    n = len(items)
    shift = n // 2 if n >= 3 else 0
    schedule = []
    for i in range(n):
        schedule.append((i, None))
        schedule.append(((i + shift) % n, "off"))
    if shift == 0:
        schedule = [(i, None) for i in range(n)] + [(i, "off") for i in range(n)]
    rows: dict[str, list[dict]] = {labels[m]: [] for m in modes}
    bar = ctx.bar("ask()", len(schedule), "q")
    for i, mode in schedule:
        it = items[i]
        r = timed_ask(assistant, it["question"], mode)
        r.update(id=it.get("id"), type=it.get("type"), judge=labels[mode])
        rows[labels[mode]].append(r)
        bar.update(1)
    bar.close()
    by_mode = {m: _summ_ask(rs) for m, rs in rows.items()}
    main = by_mode[labels[None]]
    off = by_mode["off"]
    return {
        "questions": n,
        "judge_default": default_mode,
        "warmup": warm,
        "by_judge": by_mode,
        "first_token_p50_s": main["first_token_s"]["p50"],
        "first_token_p95_s": main["first_token_s"]["p95"],
        "full_answer_p50_s": main["full_answer_s"]["p50"],
        "full_answer_p95_s": main["full_answer_s"]["p95"],
        "off_first_token_p50_s": off["first_token_s"]["p50"],
        "off_full_answer_p50_s": off["full_answer_s"]["p50"],
        "off_full_answer_p95_s": off["full_answer_s"]["p95"],
        "verification_p50_s": _sub(main["full_answer_s"]["p50"], off["full_answer_s"]["p50"]),
        "rows": [r for rs in rows.values() for r in rs],
    }


def _sub(a, b):
    return None if a is None or b is None else a - b


# ----- 6. judge cost -------------------------------------------------------------------------------


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if len(s.strip()) > 30]


def bench_judge(ctx: "Context") -> dict:
    from rag.generator import LlamaCppBackend
    from rag.judge import Judge
    from rag.pipeline import get_assistant
    from rag.registry import get_backend

    settings = ctx.settings
    assistant = get_assistant(settings=settings)
    chunks = sorted(assistant.store.chunks.values(), key=lambda c: c.chunk_id)
    pairs = []
    for c in chunks:
        sents = _sentences(c.text)
        if sents:
            pairs.append((sents[len(sents) // 2], sents[0] if len(sents) > 1 else sents[-1], c.text))
        if len(pairs) >= ctx.plan.judge_pairs:
            break
    backend = get_backend(settings, role="judge")
    judge = Judge(backend)

    def reset():
        if isinstance(backend, LlamaCppBackend):
            with backend.lock:
                backend.llm.reset()

    judge.support("A warm-up claim.", "A warm-up passage.")
    cold, warm, scores, tokens = [], [], [], []
    bar = ctx.bar("judge", 3 * len(pairs), "call")
    for claim, other, passage in pairs:
        reset()  # the passage is processed: the cost of a sentence whose passage is not cached
        t0 = time.perf_counter()
        scores.append(judge.support(claim, passage))
        cold.append(time.perf_counter() - t0)
        bar.update(1)
        t0 = time.perf_counter()  # a second claim on the same passage: only the claim is processed
        judge.support(other, passage)
        warm.append(time.perf_counter() - t0)
        bar.update(1)
        tokens.append(backend.count_tokens(passage))
    seed = load_seed_questions(None)
    qa = [(it["question"], it["reference"]) for it in seed if it.get("type") == "answerable" and it.get("reference")][: len(pairs)]
    rel = []
    for q, a in qa:
        t0 = time.perf_counter()
        judge.answers_question(q, a)
        rel.append(time.perf_counter() - t0)
        bar.update(1)
    bar.close()
    return {
        "pairs": len(pairs),
        "passage_tokens_mean": sum(tokens) / len(tokens) if tokens else None,
        "support_cold_s": summarize(cold),
        "support_warm_s": summarize(warm),
        "answers_question_s": summarize(rel),
        "per_sentence_s": median(cold),
        "per_sentence_cached_passage_s": median(warm),
        "per_relevance_check_s": median(rel),
        "scores": scores,
    }


# ----- 2. generation -------------------------------------------------------------------------------


def _gen_prompt():
    from rag.prompts import ChatPrompt

    text = ARTICLE.read_text(encoding="utf-8") if ARTICLE.is_file() else "Policy text. " * 200
    return ChatPrompt(
        system="You are a helpful assistant.",
        context="Background text (ignore it):\n" + " ".join(text.split())[:1200] + "\n\n",
        tail="Write the numbers from 1 to 200 in order, separated by commas, and nothing else.",
    )


def _decode_rate(times: list[float], tokens: int) -> float | None:
    """Tokens/s from the first to the last token timestamp (prompt processing excluded)."""
    if tokens < 2 or len(times) < 2 or times[-1] <= times[0]:
        return None
    return (tokens - 1) / (times[-1] - times[0])


def bench_generation(ctx: "Context") -> dict:
    from llama_cpp import Llama

    from rag.generator import GenerationStats, LlamaCppBackend
    from rag.models import model_path
    from rag.registry import get_backend

    settings = ctx.settings
    backend = get_backend(settings)
    if not isinstance(backend, LlamaCppBackend):
        return {"skipped": f"backend {settings.backend} is not llama.cpp"}
    prompt = _gen_prompt()
    tokens = backend.prompt_tokens(prompt)
    n_tok = ctx.plan.gen_tokens
    path = model_path(settings.model, settings.cache_dir)
    t0 = time.perf_counter()
    raw = Llama(
        model_path=str(path),
        n_ctx=backend.n_ctx,
        n_threads=backend.llm.n_threads,
        n_batch=backend.llm.n_batch,
        logits_all=False,
        verbose=False,
    )
    raw_load_s = time.perf_counter() - t0

    def ours() -> dict:
        stats = GenerationStats()
        times = []
        for _ in backend.stream(prompt, max_tokens=n_tok, stats=stats):
            times.append(time.perf_counter())
        n = stats.completion_tokens if len(times) == stats.completion_tokens else len(times)
        return {"tokens": stats.completion_tokens, "pieces": len(times), "tps": _decode_rate(times, n)}

    def raw_run() -> dict:
        times = []
        gen = raw.generate(tokens, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True)
        try:
            for _ in gen:
                times.append(time.perf_counter())
                if len(times) >= n_tok:
                    break
        finally:
            gen.close()
        return {"tokens": len(times), "tps": _decode_rate(times, len(times))}

    runs_ours, runs_raw = [], []
    bar = ctx.bar("generation", 2 * ctx.plan.gen_reps + 2 * ctx.plan.prefill_reps, "run")
    for rep in range(ctx.plan.gen_reps):
        order = (("ours", ours), ("raw", raw_run)) if rep % 2 == 0 else (("raw", raw_run), ("ours", ours))
        for name, fn in order:
            (runs_ours if name == "ours" else runs_raw).append(fn())
            bar.update(1)

    # Prompt processing from an empty cache: raw eval, and our first token (tokenise + prefill + 1 token).
    prefill_raw, prefill_ours = [], []
    for _ in range(ctx.plan.prefill_reps):
        raw.reset()
        t0 = time.perf_counter()
        raw.eval(tokens)
        prefill_raw.append(len(tokens) / (time.perf_counter() - t0))
        bar.update(1)
        with backend.lock:
            backend.llm.reset()
        stats = GenerationStats()
        for _ in backend.stream(prompt, max_tokens=1, stats=stats):
            pass
        if stats.first_token_s:
            prefill_ours.append(stats.prompt_tokens / stats.first_token_s)
        bar.update(1)
    bar.close()
    del raw
    gc.collect()
    ours_tps = median([r["tps"] for r in runs_ours if r["tps"]])
    raw_tps = median([r["tps"] for r in runs_raw if r["tps"]])
    return {
        "model": str(path),
        "n_ctx": backend.n_ctx,
        "n_threads": backend.llm.n_threads,
        "prompt_tokens": len(tokens),
        "decode_tokens": n_tok,
        "raw_load_s": raw_load_s,
        "ours_runs": runs_ours,
        "raw_runs": runs_raw,
        "decode_tps_ours": ours_tps,
        "decode_tps_raw": raw_tps,
        "decode_ratio": ratio(ours_tps, raw_tps),
        "prefill_tps_raw": median(prefill_raw),
        "prefill_tps_ours_first_token": median(prefill_ours) if prefill_ours else None,
        "prefill_ratio": ratio(median(prefill_ours) if prefill_ours else None, median(prefill_raw)),
    }


# ----- 4. indexing ---------------------------------------------------------------------------------


def bench_indexing(ctx: "Context") -> dict:
    from rag.indexer import Indexer
    from rag.registry import get_embedder

    settings = ctx.settings
    embedder = get_embedder(settings)
    sources = [ARTICLE] + ([WHITE_PAPER] if WHITE_PAPER.is_file() else [])
    out: dict[str, Any] = {"sources": [p.name for p in sources], "batch_size": settings.embed_batch_size}
    root = Path(tempfile.mkdtemp(prefix="rag-bench-index-"))
    try:
        def pipeline_run(i: int):
            tmp = root / f"run-{i}"
            s = settings.replace(index_dir=tmp)
            store, report = Indexer(s, embedder).run(sources, index_dir=tmp, rebuild=True, progress=False)
            return store, report

        bar = ctx.bar("indexing", 1 + 2 * ctx.plan.index_reps + (1 if ctx.plan.conditionalqa else 0), "run")
        store, _ = pipeline_run(0)  # warm-up: loads the tokenizer and the embedder
        bar.update(1)
        texts = [store.chunks[k].text for k in sorted(store.chunks)]
        model = embedder.model

        def raw_run() -> float:
            t0 = time.perf_counter()
            model.encode(
                texts,
                batch_size=settings.embed_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            return time.perf_counter() - t0

        ours_s, embed_s, raw_s, ours_cps_runs = [], [], [], []
        for rep in range(ctx.plan.index_reps):
            steps = ("ours", "raw") if rep % 2 == 0 else ("raw", "ours")
            for step in steps:
                if step == "ours":
                    _, report = pipeline_run(rep + 1)
                    ours_s.append(report.seconds)
                    embed_s.append(report.embed_seconds)
                    ours_cps_runs.append(report.chunks_added / report.seconds)
                    if report.chunks_added != len(texts):
                        log.warning("indexing run %d made %d chunks, the warm-up %d", rep + 1, report.chunks_added, len(texts))
                else:
                    raw_s.append(raw_run())
                bar.update(1)
        n = len(texts)
        ours_cps = median(ours_cps_runs)
        raw_cps = n / median(raw_s)
        out.update(
            chunks=n,
            pipeline_s=ours_s,
            pipeline_embed_s=embed_s,
            raw_encode_s=raw_s,
            chunks_per_s_ours=ours_cps,
            chunks_per_s_embed_step=n / median(embed_s),
            chunks_per_s_raw=raw_cps,
            ratio=ratio(ours_cps, raw_cps),
            non_embedding_s=median(ours_s) - median(embed_s),
        )
        if ctx.plan.conditionalqa:
            out["conditionalqa"] = _index_conditionalqa(settings, embedder, root / "cqa")
            bar.update(1)
        bar.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out


def _index_conditionalqa(settings: Settings, embedder, path: Path) -> dict:
    from rag.indexer import Indexer

    from .suites import conditionalqa_documents

    t0 = time.perf_counter()
    docs, spans = conditionalqa_documents()
    load_s = time.perf_counter() - t0
    _, report = Indexer(settings.replace(index_dir=path), embedder).index_documents(docs, index_dir=path, progress=False)
    return {
        "documents": len(docs),
        "sentences": len(spans),
        "chunks": report.chunks_added,
        "load_s": load_s,
        "index_s": report.seconds,
        "embed_s": report.embed_seconds,
        "chunks_per_s": report.chunks_added / report.seconds if report.seconds else None,
        "non_embedding_s": report.seconds - report.embed_seconds,
    }


# ----- 3. cold start -------------------------------------------------------------------------------


def _rag_command() -> list[str]:
    script = Path(sys.executable).parent / "rag"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "rag.cli"]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def time_first_byte(cmd: list[str], timeout: float = 300.0) -> dict:
    """Run ``cmd``; seconds to its first stdout byte and to its exit, read byte by byte."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, bufsize=0, env=_child_env())
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            first = proc.stdout.read(1)
            t_first = time.perf_counter() - t0 if first else None
            rest = proc.stdout.read()
            rc = proc.wait()
            t_exit = time.perf_counter() - t0
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err.seek(0)
        stderr = err.read().decode("utf-8", errors="replace")
    out = (first + rest).decode("utf-8", errors="replace")
    return {"first_byte_s": t_first, "exit_s": t_exit, "rc": rc, "stdout_chars": len(out), "stdout_head": out[:200], "stderr_tail": stderr[-500:] if rc else ""}


def bench_cold_start(ctx: "Context") -> dict:
    settings = ctx.settings
    cmd = _rag_command() + ["ask", COLD_QUESTION]
    if ctx.args_model:
        cmd += ["--model", ctx.args_model]
    if Path(settings.index_dir).resolve() != DEFAULT_INDEX_DIR.resolve():
        cmd += ["--index", str(settings.index_dir)]
    bar = ctx.bar("cold start", ctx.plan.cold_runs + 2 * ctx.plan.import_runs, "run")
    imports, bare = [], []
    for _ in range(ctx.plan.import_runs):
        imports.append(time_first_byte([sys.executable, "-c", "import rag"])["exit_s"])
        bar.update(1)
        bare.append(time_first_byte([sys.executable, "-c", "pass"])["exit_s"])
        bar.update(1)
    runs = []
    for _ in range(ctx.plan.cold_runs):
        runs.append(time_first_byte(cmd))
        bar.update(1)
    bar.close()
    ok = [r for r in runs if r["rc"] == 0 and r["first_byte_s"] is not None]
    if not ok:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {runs[-1]['stderr_tail'] if runs else ''}")
    return {
        "command": " ".join(cmd),
        "note": "a fresh process each time; the OS file cache is warm (model and index files were read before)",
        "runs": runs,
        "first_byte_p50_s": median([r["first_byte_s"] for r in ok]),
        "exit_p50_s": median([r["exit_s"] for r in ok]),
        "import_rag_p50_s": median(imports),
        "python_bare_p50_s": median(bare),
    }


# ----- 7. peak RSS of rag serve --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree_peak(pid: int) -> tuple[int | None, int]:
    """Sum of VmHWM (bytes) over ``pid`` and its live descendants, and how many processes that is."""
    pids = [pid] + descendants(pid)
    vals = [proc_status_kb(p, "VmHWM") for p in pids]
    vals = [v for v in vals if v is not None]
    return (sum(vals) * 1024 if vals else None), len(vals)


def memory_breakdown(pid: int | str) -> dict:
    """Current RSS split (anonymous / file-backed) and PSS from /proc: file pages of a GGUF mapped by two
    llama.cpp instances count twice in RSS but once in PSS."""
    out: dict[str, int | None] = {
        "rss_bytes": _kb(proc_status_kb(pid, "VmRSS")),
        "rss_anon_bytes": _kb(proc_status_kb(pid, "RssAnon")),
        "rss_file_bytes": _kb(proc_status_kb(pid, "RssFile")),
    }
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                key = line.split(":")[0]
                if key in ("Pss", "Pss_Anon", "Pss_File"):
                    out[key.lower() + "_bytes"] = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def _kb(v: int | None) -> int | None:
    return None if v is None else v * 1024


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except Exception:
        return False


def _wait_rss_settled(pid: int, limit_s: float, quiet_s: float = 4.0) -> None:
    """Wait until the process's RSS stops growing (the background model warm-up is done)."""
    t_end = time.monotonic() + limit_s
    last = proc_status_kb(pid, "VmRSS") or 0
    still = time.monotonic()
    while time.monotonic() < t_end:
        time.sleep(0.5)
        now = proc_status_kb(pid, "VmRSS")
        if now is None:
            return
        if abs(now - last) > max(2048, last * 0.01):
            last, still = now, time.monotonic()
        elif time.monotonic() - still >= quiet_s:
            return


def _answer_with_gradio_client(url: str, question: str) -> str:
    from gradio_client import Client

    client = Client(url, verbose=False)
    api = client.view_api(print_info=False, return_format="dict") or {}
    named = api.get("named_endpoints") or {}
    for name, info in named.items():
        params = info.get("parameters") or []
        if params and any("question" in (p.get("parameter_name") or p.get("label") or "").lower() for p in params):
            client.predict(question, api_name=name)
            return f"gradio_client {name}"
    raise RuntimeError("the page exposes no public API endpoint taking a question (its events are api_visibility='private')")


def _answer_with_browser(url: str, question: str, timeout_s: float) -> str:
    """Ask through the page in Debian's Chromium, with the selectors of tests/test_ui_browser.py."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        raise RuntimeError("no /usr/bin/chromium for Playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = b.new_page()
            page.goto(url)
            page.fill("#question textarea", question, timeout=30_000)
            page.click("#ask-btn")
            sel = '#turn-0[data-state="done"], #turn-0[data-state="refused"], #turn-0[data-state="error"]'
            page.wait_for_selector(sel, timeout=int(timeout_s * 1000))
            state = page.get_attribute("#turn-0", "data-state")
        finally:
            b.close()
    if state == "error":
        raise RuntimeError("the page showed an error for the question")
    return f"browser (Playwright + Chromium), turn state {state}"


_LIB_PROCESS = """
import json, sys, time
from rag.pipeline import get_assistant
from rag.config import Settings
s = Settings.from_env()
a = get_assistant(settings=s)
_ = a.store, a.embedder.model, a.backend
ans = a.ask(sys.argv[1])
from eval.bench import memory_breakdown
from eval.bench_stats import peak_rss_bytes
print(json.dumps({"peak_rss_bytes": peak_rss_bytes(), "memory_now": memory_breakdown("self"), "abstained": ans.abstained}))
"""


def _library_process_rss(question: str, model: str | None = None) -> dict:
    t0 = time.perf_counter()
    env = _child_env()
    if model:
        env["RAG_MODEL"] = model
    r = subprocess.run([sys.executable, "-c", _LIB_PROCESS, question], capture_output=True, text=True, timeout=600, env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-500:])
    data = json.loads(r.stdout.strip().splitlines()[-1])
    data.update(
        label="library process (loads assistant, embedder and model, answers one question): not rag serve",
        seconds=time.perf_counter() - t0,
    )
    return data


def bench_serve_rss(ctx: "Context") -> dict:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    cmd = _rag_command() + ["serve", "--port", str(port)]
    if ctx.args_model:
        cmd += ["--model", ctx.args_model]
    out: dict[str, Any] = {"command": " ".join(cmd)}
    bar = ctx.bar("rag serve", 4, "step")
    logf = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_child_env())
    try:
        deadline = time.monotonic() + ctx.plan.serve_timeout_s
        while time.monotonic() < deadline and proc.poll() is None and not _http_ok(url):
            time.sleep(0.5)
        started = proc.poll() is None and _http_ok(url)
        out["started"] = started
        bar.update(1)
        if started:
            out["page_up_s"] = time.perf_counter() - t0
            _wait_rss_settled(proc.pid, limit_s=120)
            out["loaded_rss_bytes"], _ = _tree_peak(proc.pid)
            bar.update(1)
            errors = []
            for how in ("gradio_client", "browser"):
                try:
                    if how == "gradio_client":
                        out["answered_via"] = _answer_with_gradio_client(url, COLD_QUESTION)
                    else:
                        out["answered_via"] = _answer_with_browser(url, COLD_QUESTION, ctx.plan.serve_timeout_s)
                    break
                except Exception as exc:  # noqa: BLE001 - try the next way, keep the reason
                    errors.append(f"{how}: {type(exc).__name__}: {str(exc)[:200]}")
            out["answer_errors"] = errors
            out["answered"] = "answered_via" in out
            time.sleep(0.5)
            peak, nproc = _tree_peak(proc.pid)
            out.update(peak_rss_bytes=peak, processes=nproc, memory_now=memory_breakdown(proc.pid))
            out["label"] = "rag serve" + (", after answering one question" if out["answered"] else ", models loaded, no question answered")
        bar.update(1)
    finally:
        _stop(proc)
        logf.seek(0)
        log_tail = logf.read().decode("utf-8", errors="replace")[-800:]
        logf.close()
    if not out.get("started"):
        out["serve_log_tail"] = log_tail
    if not out.get("started") or not out.get("answered"):
        log.info("rag serve %s: measuring a library process instead", "did not start" if not out.get("started") else "was not asked")
        out["fallback"] = _library_process_rss(COLD_QUESTION, ctx.args_model)
        if not out.get("started"):
            out["peak_rss_bytes"] = out["fallback"]["peak_rss_bytes"]
            out["label"] = out["fallback"]["label"]
    bar.update(1)
    bar.close()
    return out


def _stop(proc: subprocess.Popen) -> None:
    """Terminate a process we started (and its children, by pid), politely first."""
    if proc.poll() is not None:
        return
    kids = descendants(proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for k in kids:
        try:
            os.kill(k, 15)
        except OSError:
            pass


# ----- 5. retrieval --------------------------------------------------------------------------------


def bench_retrieval_section(ctx: "Context") -> dict:
    from .bench_retrieval import bench_retrieval

    sizes = ctx.plan.retrieval_sizes
    bar = ctx.bar("retrieval", len(sizes), "size")
    res = bench_retrieval(sizes, n_queries=ctx.plan.retrieval_queries, on_size=lambda n: bar.update(1))
    bar.close()
    for r in res["sizes"]:
        if r["n"] == 1_000_000:
            res["1m_p50_ms"] = r["latency_ms"]["p50"]
            res["1m_recall"] = r["recall_at_k"]
    return res


# ----- running and reporting -----------------------------------------------------------------------


class Context:
    def __init__(self, settings: Settings, plan: Plan, args_model: str | None, progress: bool = True) -> None:
        self.settings = settings
        self.plan = plan
        self.args_model = args_model
        self.progress = progress

    def bar(self, desc: str, total: int, unit: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=f"  {desc}", unit=unit, leave=False, disable=not self.progress)


RUNNERS: dict[str, Callable[[Context], dict]] = {
    "ask": bench_ask,
    "judge": bench_judge,
    "generation": bench_generation,
    "indexing": bench_indexing,
    "cold_start": bench_cold_start,
    "serve_rss": bench_serve_rss,
    "retrieval": bench_retrieval_section,
}


def _get(results: dict, dotted: str):
    section, key = dotted.split(".", 1)
    return (results.get(section) or {}).get(key)


def evaluate_targets(results: dict) -> list[dict]:
    rows = []
    for key, label, op, threshold, unit in TARGETS:
        v = _get(results, key)
        if v is None:
            status = "n/a"
        else:
            ok = {"<=": v <= threshold, "<": v < threshold, ">=": v >= threshold}[op]
            status = "PASS" if ok else "MISS"
        rows.append({"key": key, "label": label, "value": v, "target": f"{op} {threshold:g}{(' ' + unit) if unit else ''}", "status": status})
    return rows


def _f(v, digits: int = 2, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}{unit}"
    return f"{v:,.{digits}f}{unit}"


def _mb(v) -> str:
    return "–" if v is None else f"{mib(v):,.0f} MiB"


def render_markdown(payload: dict) -> str:
    r = payload["results"]
    meta = payload["meta"]
    L = [f"# Speed benchmark{' (quick)' if meta['quick'] else ''}", ""]
    L.append(
        f"{meta['date']} · {meta['machine']} · {meta['cpus']} CPUs · model `{meta['model']}` · "
        f"{meta['elapsed_s']:.0f} s in all. Each figure is measured beside its raw baseline in the same process."
    )
    L += ["", "## Targets", "", "| target | value | goal | status |", "|---|---|---|---|"]
    for t in payload["targets"]:
        L.append(f"| {t['label']} | {_f(t['value'], 3)} | {t['target']} | {t['status']} |")
    L += ["", "## Figures", "", "| figure | ours | raw baseline | ratio / note |", "|---|---|---|---|"]

    a = r.get("ask") or {}
    if "by_judge" in a:
        for mode, s in a["by_judge"].items():
            ft, fa = s["first_token_s"], s["full_answer_s"]
            L.append(
                f"| ask, judge={mode}: first token p50 / p95 | {_f(ft['p50'])} / {_f(ft['p95'])} s | – | "
                f"{s['n_generated']} of {s['n']} questions generated |"
            )
            L.append(f"| ask, judge={mode}: full answer p50 / p95 | {_f(fa['p50'])} / {_f(fa['p95'])} s | – | {s['n_abstained']} abstained |")
            L.append(
                f"| ask, judge={mode}: prompt / cached tokens (mean) | {_f(s['prompt_tokens_mean'], 0)} / "
                f"{_f(s['cached_tokens_mean'], 0)} | – | {_f(s['completion_tokens_mean'], 0)} tokens written |"
            )
        L.append(f"| ask: verification cost (full answer p50, judge − off) | {_f(a.get('verification_p50_s'))} s | – | |")
    j = r.get("judge") or {}
    if "per_sentence_s" in j:
        L.append(f"| judge: s per sentence (passage not cached) | {_f(j['per_sentence_s'])} s | – | ~{_f(j['passage_tokens_mean'], 0)}-token passages |")
        L.append(f"| judge: s per sentence (passage cached) | {_f(j['per_sentence_cached_passage_s'])} s | – | |")
        L.append(f"| judge: s per relevance check | {_f(j['per_relevance_check_s'])} s | – | |")
    g = r.get("generation") or {}
    if "decode_tps_ours" in g:
        L.append(
            f"| generation: decode tokens/s ({g['decode_tokens']} tokens) | {_f(g['decode_tps_ours'], 1)} | "
            f"{_f(g['decode_tps_raw'], 1)} (llama_cpp.Llama) | {_f(g['decode_ratio'], 3)} |"
        )
        L.append(
            f"| generation: prompt tokens/s ({g['prompt_tokens']} tokens) | {_f(g['prefill_tps_ours_first_token'], 1)} "
            f"(to first token) | {_f(g['prefill_tps_raw'], 1)} (eval) | {_f(g['prefill_ratio'], 3)} |"
        )
    ix = r.get("indexing") or {}
    if "chunks_per_s_ours" in ix:
        L.append(
            f"| indexing: chunks/s ({ix['chunks']} chunks) | {_f(ix['chunks_per_s_ours'], 1)} | "
            f"{_f(ix['chunks_per_s_raw'], 1)} (SentenceTransformer.encode) | {_f(ix['ratio'], 3)}; "
            f"{_f(ix['non_embedding_s'])} s outside embedding |"
        )
        c = ix.get("conditionalqa")
        if c:
            L.append(
                f"| indexing: ConditionalQA pool ({c['sentences']:,} sentences, {c['chunks']:,} chunks) | "
                f"{_f(c['index_s'], 1)} s ({_f(c['chunks_per_s'], 1)} chunks/s) | – | embedding {_f(c['embed_s'], 1)} s, "
                f"{_f(c['non_embedding_s'], 1)} s outside embedding (chunking, tokenizer load, saving) |"
            )
    cs = r.get("cold_start") or {}
    if "first_byte_p50_s" in cs:
        L.append(
            f"| cold start: `rag ask` to first answer byte / exit (p50 of {len(cs['runs'])}) | "
            f"{_f(cs['first_byte_p50_s'])} / {_f(cs['exit_p50_s'])} s | {_f(cs['import_rag_p50_s'])} s "
            f"(`import rag`), {_f(cs['python_bare_p50_s'])} s (bare python) | |"
        )
    sv = r.get("serve_rss") or {}
    if "peak_rss_bytes" in sv:
        m = sv.get("memory_now") or (sv.get("fallback") or {}).get("memory_now") or {}
        L.append(
            f"| peak RSS: {sv.get('label', 'rag serve')} | {_mb(sv['peak_rss_bytes'])} | – | {sv.get('answered_via', '')}; "
            f"now: anon {_mb(m.get('rss_anon_bytes'))}, file {_mb(m.get('rss_file_bytes'))}, PSS {_mb(m.get('pss_bytes'))} |"
        )
        fb = sv.get("fallback")
        if fb and sv.get("started"):
            L.append(f"| peak RSS: {fb['label']} | {_mb(fb['peak_rss_bytes'])} | – | |")
    rt = r.get("retrieval") or {}
    for s in rt.get("sizes", []):
        ch = s["store_choice"]
        kind = f"{ch['type']}" + (f" nlist={s.get('nlist')} nprobe={s.get('nprobe')}" if ch["type"] == "ivf" else "")
        L.append(
            f"| retrieval {s['n']:,}: {kind}, p50 / p99 (1 thread p50) | {_f(s['latency_ms']['p50'])} / "
            f"{_f(s['latency_ms']['p99'])} ms ({_f(s['latency_ms_1_thread']['p50'])} ms) | "
            f"{_f(s['exact_latency_ms']['p50'])} / {_f(s['exact_latency_ms']['p99'])} ms (exact IndexFlatIP) | "
            f"recall@{rt['k']} {_f(s['recall_at_k'], 3)}; index {_mb(s['index_bytes'])}, RSS +{_mb(s['rss_delta_bytes'])}; "
            f"build {_f(s['build_s'], 1)} s |"
        )
    for s in rt.get("sizes", []):
        if s.get("nprobe_curve"):
            L += ["", f"nprobe curve at {s['n']:,} vectors (nlist {s['nlist']}, store nprobe {s['nprobe']}):", ""]
            L += ["| nprobe | p50 ms | p99 ms | recall@10 |", "|---|---|---|---|"]
            for row in s["nprobe_curve"]:
                L.append(f"| {row['nprobe']} | {_f(row['p50_ms'])} | {_f(row['p99_ms'])} | {_f(row['recall_at_k'], 3)} |")
            L.append(f"\nSmallest nprobe meeting p50 < 10 ms and recall >= 0.95: {s.get('smallest_nprobe_meeting_target')}")
    if rt.get("data"):
        L += ["", f"Synthetic vectors: {rt['data']}; {rt['n_queries']} single queries, k={rt['k']}."]
    errs = {k: v["error"] for k, v in r.items() if isinstance(v, dict) and "error" in v}
    if errs:
        L += ["", "## Sections that failed", ""] + [f"- **{k}**: {v.splitlines()[-1] if v else ''}" for k, v in errs.items()]
    return "\n".join(L) + "\n"


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


def _settings_from_args(args: argparse.Namespace) -> Settings:
    s = Settings.from_env()
    return s.replace(
        model=getattr(args, "model", None),
        backend=getattr(args, "backend", None),
        index_dir=getattr(args, "index", None),
    )


def main(args: argparse.Namespace) -> int:
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
    settings = _settings_from_args(args)
    payload = run(settings, Plan(quick), out, sections=sections, args_model=getattr(args, "model", None))
    print(render_markdown(payload))
    log.info("wrote %s and %s", out / "bench.json", out / "bench.md")
    failed = [k for k, v in payload["results"].items() if "error" in v]
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.bench", description="The speed benchmark (see rag bench).")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out")
    p.add_argument("--model")
    p.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    return p


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main(_parser().parse_args()))
