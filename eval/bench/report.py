"""The benchmark report: targets met or missed, and ``bench.md``."""

from __future__ import annotations

import math

from .common import TARGETS
from .stats import mib


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
        for doc, s in (a.get("by_doc") or {}).items():
            L.append(
                f"| ask about the {doc}: first token / checked answer p50 | {_f(s['first_token_s']['p50'])} / "
                f"{_f(s['full_answer_s']['p50'])} s | – | {s['n']} questions, {_f(s['cached_share'], 2)} of prompt tokens cached |"
            )
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
            f"| indexing: chunks/s ({ix['chunks']} chunks, {ix.get('sentences', 0)} sentences embedded with them) | "
            f"{_f(ix['chunks_per_s_ours'], 1)} | "
            f"{_f(ix['chunks_per_s_raw'], 1)} (SentenceTransformer.encode of the same texts) | {_f(ix['ratio'], 3)}; "
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
        ph = cs.get("startup_phases_s") or {}
        if ph:
            parts = ", ".join(f"{k[:-2].replace('_', ' ')} {_f(v)} s" for k, v in ph.items() if k != "total_s")
            L.append(f"| cold start: where the time goes (one process) | {_f(ph.get('total_s'))} s | – | {parts} |")
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
    L += render_stores_side_by_side(rt, r.get("pgvector") or {})
    if rt.get("data"):
        L += ["", f"Synthetic vectors: {rt['data']}; {rt['n_queries']} single queries, k={rt['k']}."]
    L += render_concurrency(r.get("concurrency") or {})
    errs = {k: v["error"] for k, v in r.items() if isinstance(v, dict) and "error" in v}
    if errs:
        L += ["", "## Sections that failed", ""] + [f"- **{k}**: {v.splitlines()[-1] if v else ''}" for k, v in errs.items()]
    return "\n".join(L) + "\n"


def render_stores_side_by_side(retrieval: dict, pgvector: dict) -> list[str]:
    """FAISS (the ``retrieval`` section) and pgvector (the ``pgvector`` section), one row per size."""
    pg_rows = pgvector.get("sizes") or []
    if not pg_rows:
        return []
    faiss = {s["n"]: s for s in retrieval.get("sizes", [])}
    L = [
        "",
        "## Vector stores side by side: FAISS in-process and Postgres + pgvector (HNSW), same run, same clustered vectors",
        "",
        "| chunks | FAISS index | FAISS p50 | FAISS recall@10 | pgvector p50 | pgvector recall@10 | pgvector ingest | HNSW build | fused dense + keyword p50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in pg_rows:
        f = faiss.get(p["n"])
        if f:
            kind = f["store_choice"]["type"] + (f" (nprobe {f.get('nprobe')})" if f["store_choice"]["type"] == "ivf" else "")
            fa = f"{kind} | {_f(f['latency_ms']['p50'])} ms | {_f(f['recall_at_k'], 3)}"
        else:
            fa = "not in this run | – | –"
        L.append(
            f"| {p['n']:,} | {fa} | {_f(p['query_p50_ms'])} ms | {_f(p['recall_at_10'], 3)} | "
            f"{_f(p['ingest_chunks_per_s'], 0)} chunks/s | {_f(p.get('index_build_s'), 1)} s | {_f(p['hybrid_p50_ms'])} ms |"
        )
    L.append("")
    L.append("pgvector: one query per round trip over a local socket (psycopg 3), default ef_search; FAISS: in-process.")
    return L


def render_concurrency(c: dict) -> list[str]:
    """The ``concurrency`` section: one row per engine, side by side, then the comparison."""
    if c.get("skipped"):
        return ["", f"Many users at once (`concurrency`): skipped: {c['skipped']}"]
    engines = c.get("engines") or {}
    if not engines:
        return []
    rounds = c.get("rounds", 1)
    L = [
        "",
        f"## Many users at once: {c['questions']} questions sent together through `rag api`",
        "",
        f"Model `{c['model']}`, judge `{c['judge']}`, {c['n_threads']} threads; llama-server with --parallel {c['parallel']}. "
        + (
            f"{rounds} rounds, each with its own questions, the engines taking turns (A B, B A, ...); figures over all rounds."
            if rounds > 1
            else "One round."
        ),
        "",
        "| engine | questions/min | latency p50 / p95 | answered / declined / failed | peak RSS (API + server) | warm-up |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in engines.items():
        rss = (s.get("peak_rss_api_bytes") or 0) + (s.get("peak_rss_server_bytes") or 0)
        L.append(
            f"| {name} | {_f(s.get('throughput_qpm'))} | {_f(s.get('p50_s'), 1)} / {_f(s.get('p95_s'), 1)} s | "
            f"{s['answered']} / {s['declined']} / {s['errors']} | {_mb(rss or None)} | {_f(s.get('warmup_s'), 1)} s |"
        )
    cmp_ = c.get("comparison") or {}
    if cmp_.get("faster"):
        note = f"Faster: **{cmp_['faster']}**"
        if cmp_.get("throughput_ratio") is not None:
            names = list(engines)
            note += (
                f"; throughput {names[-1]} / {names[0]} = {_f(cmp_['throughput_ratio'])}, p95 ratio {_f(cmp_['p95_ratio'])}; "
                f"same answer-or-decline decision on {cmp_['same_decision']} of {cmp_['compared']} questions "
                f"(identical text on {cmp_['same_text']})"
            )
        L += ["", note + "."]
    if rounds > 1 and c.get("per_round"):
        L += ["", "| round | engine | questions/min | latency p50 / p95 | answered / declined | load average before |", "|---|---|---|---|---|---|"]
        for pr in c["per_round"]:
            load = pr.get("load_avg_before") or [None]
            L.append(
                f"| {pr['round'] + 1} | {pr['engine']} | {_f(pr.get('throughput_qpm'))} | {_f(pr.get('p50_s'), 1)} / "
                f"{_f(pr.get('p95_s'), 1)} s | {pr['answered']} / {pr['declined']} | {_f(load[0])} |"
            )
    for name, s in engines.items():
        w = s.get("server_work")
        if w and w.get("requests"):
            L.append(
                f"\n{name} did {w['requests']} requests (warm-up included): {w['prompt_tokens']:,} prompt tokens processed "
                f"(not cached) in {_f(w['prompt_s'], 1)} s and {w['decoded_tokens']:,} tokens decoded in {_f(w['decode_s'], 1)} s, "
                "summed over its slots."
            )
        if s.get("first_error"):
            L.append(f"\n{name}: first failure: {s['first_error']}")
    return L
