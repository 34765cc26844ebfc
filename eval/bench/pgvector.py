"""PostgreSQL + pgvector at scale: ingest rate, query latency and recall@10 against exact search.

Synthetic chunks (384-d unit vectors and short texts of random words) go through
``rag.pgstore.PgVectorStore`` exactly as the indexer's do: a rebuild (``create`` ->
``add_document`` -> ``save``: binary COPY, then the HNSW and GIN indexes built in the same
transaction), then an incremental save of 1% more chunks into the existing indexes. Queries
go through ``PgVectorStore.search`` (dense kNN on the HNSW index) for several ``hnsw.ef_search``
values, and through ``PgHybridRetriever.query`` (the fused dense + keyword SQL query). The
truth for recall@10 is exact inner-product search in numpy.

Without ``--dsn`` a throw-away server is started (``eval/pgserver.py``; fsync on, 1 GB shared
buffers, 2 GB maintenance_work_mem) and removed afterwards::

    python -m eval.bench.pgvector --n 100000 --out test-artifacts/pgvector-bench.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from .stats import ClusteredVectors, recall_at_k, summarize

log = logging.getLogger(__name__)

DIM = 384
#: Server settings for the throw-away benchmark server.
BENCH_SERVER_CONF = {
    "shared_buffers": "1GB",
    "maintenance_work_mem": "4GB",
    "max_parallel_maintenance_workers": "1",
    "max_wal_size": "4GB",
}


def random_unit(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    """``n`` uniformly random unit vectors (the hardest case for an approximate index)."""
    v = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def _vocab(size: int = 5000, seed: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=int(rng.integers(4, 10)))) for _ in range(size)]


def _docs(vectors: np.ndarray, first_id: int, per_doc: int, seed: int, vocab: list[str], prefix: str):
    """(Document, chunks, vectors) triples of synthetic text around the given vectors."""
    from rag import Chunk, Document

    rng = np.random.default_rng(seed)
    out = []
    for d0 in range(0, len(vectors), per_doc):
        block = vectors[d0 : d0 + per_doc]
        texts = [" ".join(vocab[i] for i in rng.integers(0, len(vocab), 30)) for _ in range(len(block))]
        text = "\n".join(texts)
        doc = Document(doc_id=f"{prefix}{d0}", source=f"/bench/{prefix}{d0}.txt", title=f"{prefix}{d0}", text=text)
        chunks, pos = [], 0
        for i, t in enumerate(texts):
            chunks.append(Chunk(first_id + d0 + i, doc.doc_id, pos, pos + len(t), t))
            pos += len(t) + 1
        out.append((doc, chunks, block))
    return out


def _exact_top_k(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(queries), k), dtype=np.int64)
    for i in range(0, len(queries), 50):
        s = queries[i : i + 50] @ data.T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1)
        out[i : i + 50] = np.take_along_axis(top, order, axis=1)
    return out


def bench_pgvector(
    dsn: str,
    n: int,
    *,
    n_queries: int = 200,
    k: int = 10,
    ef_values: tuple[int, ...] = (40, 100, 200),
    data: str = "random",
    schema: str = "bench",
    seed: int = 0,
) -> dict:
    """Ingest ``n`` synthetic chunks into ``schema`` (replacing it) and measure queries; returns a report dict."""
    from rag import DEFAULT_EF_SEARCH, IndexSettings, PgHybridRetriever, PgVectorStore

    if data == "random":
        vectors, queries = random_unit(n, seed), random_unit(n_queries, seed + 1)
        describe = f"uniformly random unit vectors in {DIM} dimensions; queries drawn the same way"
    elif data == "clustered":
        mix = ClusteredVectors(dim=DIM, seed=seed)
        vectors, queries = mix.sample(n, seed + 10), mix.sample(n_queries, seed + 11)
        describe = mix.describe()
    else:
        raise ValueError("data must be random or clustered")
    settings = IndexSettings(embedder="synthetic", dim=DIM, max_tokens=256, chunk_tokens=160, chunk_overlap=32, chunking="sections-1")
    vocab = _vocab()
    per_doc = 100
    report: dict = {"n": n, "dim": DIM, "k": k, "n_queries": n_queries, "data": describe}

    # Bulk ingest: one rebuild transaction.
    t0 = time.perf_counter()
    store = PgVectorStore.create(dsn, settings, schema=schema)
    for doc, chunks, vecs in _docs(vectors, 0, per_doc, seed, vocab, "d"):
        store.add_document(doc, chunks, vecs)
    t_prepared = time.perf_counter()
    store.save()
    t_saved = time.perf_counter()
    build = store.last_save_timings.get("index_build_s", 0.0)
    report["bulk_ingest"] = {
        "chunks": n,
        "prepare_s": t_prepared - t0,
        "save_s": t_saved - t_prepared,
        "rows_s": (t_saved - t_prepared) - build,
        "index_build_s": build,
        "chunks_per_s": n / (t_saved - t_prepared),
    }
    log.info("bulk ingest: %s", report["bulk_ingest"])

    # Incremental ingest: 1% more chunks into the existing HNSW and GIN indexes.
    extra_n = max(100, n // 100)
    extra = random_unit(extra_n, seed + 2) if data == "random" else ClusteredVectors(dim=DIM, seed=seed).sample(extra_n, seed + 12)
    store = PgVectorStore.load(dsn, settings, schema=schema)
    for doc, chunks, vecs in _docs(extra, n, per_doc, seed + 3, vocab, "e"):
        store.add_document(doc, chunks, vecs)
    t1 = time.perf_counter()
    store.save()
    dt = time.perf_counter() - t1
    report["incremental_ingest"] = {"chunks": extra_n, "save_s": dt, "chunks_per_s": extra_n / dt}
    log.info("incremental ingest: %s", report["incremental_ingest"])
    store.close()
    all_vectors = np.vstack([vectors, extra])

    truth = _exact_top_k(all_vectors, queries, k)
    curve = []
    for ef in ef_values:
        s = PgVectorStore.load(dsn, settings, schema=schema, ef_search=ef)
        for q in queries[:5]:
            s.search(q[None, :], k)
        times, found = [], []
        for q in queries:
            t = time.perf_counter()
            _, ids = s.search(q[None, :], k)
            times.append((time.perf_counter() - t) * 1000.0)
            found.append(ids[0])
        stats = summarize(times, (50, 95, 99))
        curve.append(
            {"ef_search": ef, "p50_ms": stats["p50"], "p95_ms": stats["p95"], "p99_ms": stats["p99"],
             "recall_at_k": recall_at_k(np.array(found), truth, k), "default": ef == DEFAULT_EF_SEARCH}
        )
        log.info("ef_search %d: %s", ef, curve[-1])
        s.close()
    report["dense"] = curve

    # The fused dense + keyword query, as the retriever runs it (store default ef_search).
    s = PgVectorStore.load(dsn, settings, schema=schema)
    retriever = PgHybridRetriever(s, embedder=None, candidates=30)
    rng = np.random.default_rng(seed + 4)
    questions = [" ".join(vocab[i] for i in rng.integers(0, len(vocab), 6)) for _ in range(len(queries))]
    for q, v in list(zip(questions, queries))[:5]:
        retriever.query(q, v, 4)
    times, found = [], []
    for q, v in zip(questions, queries):
        t = time.perf_counter()
        res = retriever.query(q, v, k)
        times.append((time.perf_counter() - t) * 1000.0)
        found.append(len(res.passages))
    stats = summarize(times, (50, 95, 99))
    report["hybrid"] = {
        "p50_ms": stats["p50"], "p95_ms": stats["p95"], "p99_ms": stats["p99"],
        "mean_passages": float(np.mean(found)), "candidates": 30,
    }
    with s.connection().cursor() as cur:
        cur.execute(
            "SELECT pg_total_relation_size(%s), pg_relation_size(%s), pg_relation_size(%s)",
            (f"{schema}.chunks", f"{schema}.chunks_embedding_hnsw", f"{schema}.chunks_tsv_gin"),
        )
        total, hnsw, gin = cur.fetchone()
    report["sizes_bytes"] = {"chunks_total": total, "hnsw_index": hnsw, "gin_index": gin}
    s.close()
    log.info("hybrid: %s", report["hybrid"])
    return report


def compare_with_faiss(dsn: str, *, floors: tuple[float, ...] = (0.2, 0.25, 0.3, 0.4, 0.5), schema: str = "compare") -> dict:
    """The FAISS + BM25 retriever and the pgvector retriever on the seed and whitepaper questions.

    Both hold the same chunks and MiniLM vectors (the article and the White Paper summary, indexed
    once with FAISS and copied into PostgreSQL). Reports recall@4/@10 and MRR of the supporting
    passages, and how often each retriever calls a question relevant, by question type, with the
    pgvector decision recomputed for several keyword floors.
    """
    import tempfile

    from rag import DEFAULT_SOURCES_DIR, Indexer, PgVectorStore, Settings, get_embedder, make_retriever

    from .. import metrics as M
    from ..suites import DATASETS, WHITE_PAPER, read_jsonl

    with tempfile.TemporaryDirectory(prefix="rag-compare-") as tmp:
        base = Settings().replace(index_dir=Path(tmp))
        embedder = get_embedder(base)
        faiss_store, _ = Indexer(base, embedder).run([DEFAULT_SOURCES_DIR, WHITE_PAPER], rebuild=True, progress=False)
        pg_settings = base.replace(store="pgvector", pg_dsn=dsn, pg_schema=schema)
        pg_store = PgVectorStore.create(dsn, faiss_store.settings, schema=schema)
        vecs, ids = faiss_store.vectors()
        row = {int(i): n for n, i in enumerate(ids)}
        for doc in faiss_store.documents.values():
            chunks = sorted((c for c in faiss_store.chunks.values() if c.doc_id == doc.doc_id), key=lambda c: c.chunk_id)
            pg_store.add_document(doc, chunks, vecs[[row[c.chunk_id] for c in chunks]])
        pg_store.save()
        retrievers = {"faiss": make_retriever(faiss_store, embedder, base), "pgvector": make_retriever(pg_store, embedder, pg_settings)}
        items = [dict(it, suite="seed") for it in read_jsonl(DATASETS / "seed.jsonl")]
        items += [dict(it, suite="whitepaper") for it in read_jsonl(DATASETS / "whitepaper.jsonl")]
        rows = []
        for it in items:
            out = {"id": it["id"], "type": it["type"]}
            for name, r in retrievers.items():
                t0 = time.perf_counter()
                res = r.run(it["question"], k=10)
                out[f"{name}_ms"] = (time.perf_counter() - t0) * 1000.0
                sup = it.get("supporting") or []
                rel = {i for i, p in enumerate(res.passages) if any(M.quote_contains(p.text, s) for s in sup)}
                ranked = list(range(len(res.passages)))
                out[name] = {
                    "relevant": res.relevant, "best_dense": res.best_dense, "best_keyword": res.best_bm25,
                    "recall@4": M.recall_at_k(rel, ranked, 4) if sup else None,
                    "recall@10": M.recall_at_k(rel, ranked, 10) if sup else None,
                    "mrr": M.reciprocal_rank(rel, ranked) if sup else None,
                }
            rows.append(out)
        pg_store.close()
    types = sorted({r["type"] for r in rows})
    summary: dict = {"questions": len(rows), "by_type": {t: sum(r["type"] == t for r in rows) for t in types}}
    with_gold = [r for r in rows if r["faiss"]["recall@4"] is not None]
    for name in retrievers:
        summary[name] = {
            "recall@4": M.mean(r[name]["recall@4"] for r in with_gold),
            "recall@10": M.mean(r[name]["recall@10"] for r in with_gold),
            "mrr": M.mean(r[name]["mrr"] for r in with_gold),
            "relevant_rate": {t: M.mean(float(r[name]["relevant"]) for r in rows if r["type"] == t) for t in types},
            "p50_ms": summarize([r[f"{name}_ms"] for r in rows])["p50"],
        }
    dense_floor = Settings().min_dense_score
    summary["pgvector_floor_sweep"] = [
        {
            "min_keyword_score": f,
            "relevant_rate": {
                t: M.mean(
                    float(r["pgvector"]["best_dense"] >= dense_floor or r["pgvector"]["best_keyword"] >= f)
                    for r in rows if r["type"] == t
                )
                for t in types
            },
            "relevant_by_keyword_only": sum(
                r["pgvector"]["best_dense"] < dense_floor and r["pgvector"]["best_keyword"] >= f for r in rows
            ),
        }
        for f in floors
    ]
    summary["faiss_relevant_by_bm25_only"] = sum(
        r["faiss"]["best_dense"] < dense_floor and r["faiss"]["relevant"] for r in rows
    )
    summary["decisions_differ"] = [
        r["id"] for r in rows if r["faiss"]["relevant"] != r["pgvector"]["relevant"]
    ]
    return {"summary": summary, "rows": rows}


def render(report: dict) -> str:
    b, inc = report["bulk_ingest"], report["incremental_ingest"]
    lines = [
        f"pgvector, {report['n']:,} chunks ({report['data']})",
        f"bulk ingest (COPY + HNSW + GIN in one transaction): {b['save_s']:.1f} s = {b['chunks_per_s']:,.0f} chunks/s "
        f"(rows {b['rows_s']:.1f} s, index build {b['index_build_s']:.1f} s)",
        f"incremental ingest of {inc['chunks']:,} chunks into the live indexes: {inc['save_s']:.2f} s = "
        f"{inc['chunks_per_s']:,.0f} chunks/s",
        "dense kNN (HNSW):",
    ]
    for row in report["dense"]:
        lines.append(
            f"  ef_search {row['ef_search']:4d}{' (default)' if row['default'] else '          '}: "
            f"p50 {row['p50_ms']:.2f} ms, p95 {row['p95_ms']:.2f} ms, recall@{report['k']} {row['recall_at_k']:.3f}"
        )
    h = report["hybrid"]
    lines.append(f"fused dense + keyword query: p50 {h['p50_ms']:.2f} ms, p95 {h['p95_ms']:.2f} ms")
    sz = report["sizes_bytes"]
    lines.append(f"sizes: table+indexes {sz['chunks_total'] / 2**20:,.0f} MiB, HNSW {sz['hnsw_index'] / 2**20:,.0f} MiB, GIN {sz['gin_index'] / 2**20:,.0f} MiB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eval.bench.pgvector", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="chunks to ingest (default 100000)")
    ap.add_argument("--queries", type=int, default=200, help="single queries timed (default 200)")
    ap.add_argument("--data", choices=["random", "clustered"], default="random", help="vector distribution")
    ap.add_argument("--ef", default="40,100,200", help="hnsw.ef_search values to try (default 40,100,200)")
    ap.add_argument("--dsn", default="", help="an existing database (default: start a throw-away server)")
    ap.add_argument("--schema", default="bench", help="schema to (re)create in that database (default bench)")
    ap.add_argument("--out", type=Path, help="write the report as JSON here")
    ap.add_argument(
        "--compare", action="store_true",
        help="instead: compare with the FAISS retriever on the seed and whitepaper questions (loads MiniLM)",
    )
    args = ap.parse_args(argv)
    if args.n < 100:
        print("--n must be at least 100", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ef_values = tuple(int(x) for x in args.ef.split(",") if x.strip())
    server = None
    dsn = args.dsn
    if not dsn:
        from ..pgserver import PgUnavailable, start_server

        try:
            server = start_server(BENCH_SERVER_CONF, durable=True)
        except PgUnavailable as exc:
            print(f"cannot start PostgreSQL: {exc}", file=sys.stderr)
            return 1
        dsn = server.dsn
    try:
        if args.compare:
            report = compare_with_faiss(dsn)
        else:
            report = bench_pgvector(dsn, args.n, n_queries=args.queries, ef_values=ef_values, data=args.data, schema=args.schema)
            report["server_conf"] = BENCH_SERVER_CONF if server else "given by --dsn"
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(report["summary"], indent=2) if args.compare else render(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
