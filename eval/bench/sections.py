"""The in-process sections: ``ask`` end to end, ``judge`` cost, ``generation`` speed, ``indexing`` speed, ``retrieval`` at scale."""

from __future__ import annotations

import gc
import json
import logging
import math
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rag import DEFAULT_INDEX_DIR, Settings

from .common import ARTICLE, SEED, WARMUP_QUESTION, WHITE_PAPER, WHITEPAPER_QUESTIONS, Context
from .stats import median, ratio, summarize

log = logging.getLogger(__name__)


# ----- 1. ask() end to end -------------------------------------------------------------------------


def load_ask_questions(limit: int) -> list[dict]:
    """``limit`` questions, alternating between the article's (seed) and the White Paper's, each
    tagged with ``doc``; the White Paper set's questions about the article are left out."""
    article = [dict(it, doc="article") for it in load_seed_questions(limit - limit // 2)]
    wp_items = [json.loads(line) for line in WHITEPAPER_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    wp_items = [it for it in wp_items if it.get("source") != [ARTICLE.name]]
    paper = [dict(it, doc="white paper") for it in load_seed_questions(limit // 2, wp_items)]
    mixed = [x for pair in zip(article, paper) for x in pair]
    return mixed + article[len(paper) :] + paper[len(article) :]


def load_seed_questions(limit: int | None = None, items: list[dict] | None = None) -> list[dict]:
    """Seed questions (or ``items``): every item, or ``limit`` of them: mostly answerable, then one of each other type."""
    if items is None:
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
    """One streamed answer: our own clock for the first draft piece and the final Answer, plus its stats."""
    from rag import DraftPiece, Final

    t0 = time.perf_counter()
    first = None
    pieces = 0
    answer = None
    t_answer = None
    for event in assistant.stream(question, judge=judge):
        if isinstance(event, Final):
            answer = event.answer
            t_answer = time.perf_counter() - t0
        elif isinstance(event, DraftPiece) and event.text:
            pieces += 1
            if first is None:
                first = time.perf_counter() - t0
    assert answer is not None
    st = answer.stats
    generated = bool(st.prompt_tokens)
    return {
        "first_token_s": first if generated else None,
        "full_answer_s": t_answer,
        "pieces": pieces,
        "generated": generated,
        "abstained": answer.abstained,
        "reason": answer.reason.value if answer.reason else None,
        "prompt_tokens": st.prompt_tokens,
        "cached_tokens": st.cached_tokens,
        "completion_tokens": st.completion_tokens,
        "pipeline_first_token_s": st.first_token_s,
        "retrieve_s": st.retrieve_s,
        "generate_s": st.generate_s,
        "judge_s": st.verify_s,
        "total_s": st.total_s,
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
    from rag import ensure_default_index, get_assistant

    settings = ctx.settings
    if Path(settings.index_dir).resolve() == DEFAULT_INDEX_DIR.resolve():
        ensure_default_index(settings, progress=False)
    assistant = get_assistant(settings=settings)
    items = load_ask_questions(ctx.plan.ask_questions)
    default_mode = settings.judge
    modes = [None, "off"]  # None: the settings' judge (llm by default)
    labels = {None: default_mode, "off": "off"}

    t0 = time.perf_counter()
    prefix = assistant.warm_up()  # models loaded, every window's KV state computed or loaded
    warm = timed_ask(assistant, WARMUP_QUESTION, None)
    log.info("ask warm-up (models loaded, windows %s) took %.1fs", prefix, time.perf_counter() - t0)

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
        r.update(id=it.get("id"), type=it.get("type"), judge=labels[mode], doc=it.get("doc"))
        rows[labels[mode]].append(r)
        bar.update(1)
    bar.close()
    by_mode = {m: _summ_ask(rs) for m, rs in rows.items()}
    main = by_mode[labels[None]]
    by_doc = {d: _summ_ask([r for r in rows[labels[None]] if r["doc"] == d]) for d in ("article", "white paper")}
    off = by_mode["off"]
    return {
        "questions": n,
        "judge_default": default_mode,
        "warmup": warm,
        "by_judge": by_mode,
        "by_doc": by_doc,
        "article_first_token_p50_s": by_doc["article"]["first_token_s"]["p50"],
        "article_full_answer_p50_s": by_doc["article"]["full_answer_s"]["p50"],
        "white_paper_first_token_p50_s": by_doc["white paper"]["first_token_s"]["p50"],
        "white_paper_full_answer_p50_s": by_doc["white paper"]["full_answer_s"]["p50"],
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
    from rag import Judge, get_assistant, get_backend

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
    judge = Judge.from_settings(settings, backend)

    def reset():
        forget = getattr(backend, "forget_cache", None)
        if forget is not None:
            forget()

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
    from rag import ChatPrompt

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

    from rag import GenerationStats, LlamaCppBackend, get_backend, model_path

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
        n_threads=backend.n_threads,
        n_batch=backend.n_batch,
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
        backend.forget_cache()
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
        "n_threads": backend.n_threads,
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
    from rag import Indexer, chunk_sentences, get_embedder

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
        chunks = [store.chunks[k] for k in sorted(store.chunks)]
        # What the pipeline embeds: each chunk (under its heading) and its sentences (``rag.sentences``).
        texts = [c.embed_text for c in chunks] + [t for c in chunks for t in chunk_sentences(c)]
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
                    if report.chunks_added != len(chunks):
                        log.warning("indexing run %d made %d chunks, the warm-up %d", rep + 1, report.chunks_added, len(chunks))
                else:
                    raw_s.append(raw_run())
                bar.update(1)
        n = len(chunks)
        ours_cps = median(ours_cps_runs)
        # The raw baseline encodes the same texts (chunks and sentences), so its chunks/s is comparable.
        raw_cps = n / median(raw_s)
        out.update(
            chunks=n,
            sentences=len(texts) - n,
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
    from rag import Indexer

    from .suites import conditionalqa_documents

    t0 = time.perf_counter()
    docs, spans = conditionalqa_documents(settings)
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


# ----- 5. retrieval --------------------------------------------------------------------------------


def bench_retrieval_section(ctx: "Context") -> dict:
    from .retrieval import bench_retrieval

    sizes = ctx.plan.retrieval_sizes
    bar = ctx.bar("retrieval", len(sizes), "size")
    res = bench_retrieval(sizes, n_queries=ctx.plan.retrieval_queries, on_size=lambda n: bar.update(1))
    bar.close()
    for r in res["sizes"]:
        if r["n"] == 1_000_000:
            res["1m_p50_ms"] = r["latency_ms"]["p50"]
            res["1m_recall"] = r["recall_at_k"]
    return res


def bench_pgvector_section(ctx: "Context") -> dict:
    """The Postgres + pgvector store beside FAISS in the same run: ingest rate, HNSW query p50 and
    recall@10 on clustered synthetic vectors (10k quick; 100k and 1M full), each size on a fresh
    throw-away local server. The FAISS rows of the same sizes come from the ``retrieval`` section."""
    from ..pgserver import start_server
    from .pgvector import BENCH_SERVER_CONF, bench_pgvector

    sizes = ctx.plan.pgvector_sizes
    bar = ctx.bar("pgvector", len(sizes), "size")
    rows = []
    for n in sizes:
        server = start_server(BENCH_SERVER_CONF, durable=True)
        try:
            report = bench_pgvector(server.dsn, n, n_queries=ctx.plan.retrieval_queries, data="clustered")
        finally:
            server.stop()
        default = next((r for r in report["dense"] if r.get("default")), report["dense"][0])
        rows.append(
            {
                "n": n,
                "ingest_chunks_per_s": report["bulk_ingest"]["chunks_per_s"],
                "index_build_s": report["bulk_ingest"]["index_build_s"],
                "query_p50_ms": default["p50_ms"],
                "recall_at_10": default["recall_at_k"],
                "hybrid_p50_ms": report["hybrid"]["p50_ms"],
                "report": report,
            }
        )
        bar.update(1)
    bar.close()
    return {"sizes": rows}
