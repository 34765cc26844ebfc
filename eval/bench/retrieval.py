"""Retrieval at scale: the store's own FAISS index types on synthetic clustered embeddings.

For each size the index is built the way ``rag.store.IndexStore`` builds it on ``save()``
(``rag.new_faiss_index`` for the type; for IVF, training on a sample of ``100 * nlist`` vectors drawn
with ``default_rng(0)``, then ``add_with_ids``), and queried through ``IndexStore.search`` (which
sets ``nprobe`` from ``ivf_nprobe``). Exact search (``IndexFlatIP``) gives the ground truth and
the raw latency baseline.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from .stats import ClusteredVectors, peak_rss_bytes, recall_at_k, rss_bytes, summarize

log = logging.getLogger(__name__)

#: nprobe values tried for the recall/latency curve of an IVF index (plus the store's own value).
NPROBE_CURVE = (8, 16, 32, 64, 128, 256)
TARGET_P50_MS = 10.0
TARGET_RECALL = 0.95


def store_choice(n: int, dim: int = 384) -> dict:
    """The index type ``IndexStore`` uses for ``n`` vectors (and nlist / nprobe for IVF)."""
    import faiss

    from rag import IVF_THRESHOLD, ivf_nprobe, new_faiss_index

    index = new_faiss_index(dim, n)
    out = {"class": type(index).__name__, "ivf_threshold": IVF_THRESHOLD}
    if isinstance(index, faiss.IndexIVF):
        out.update(type="ivf", nlist=int(index.nlist), nprobe=int(ivf_nprobe(index)))
    else:
        out.update(type="flat")
    return out


def build_store_index(vectors: np.ndarray, ids: np.ndarray):
    """Build the FAISS index ``IndexStore.save`` would write for these vectors.

    Mirrors ``IndexStore._retype_if_needed`` for a fresh index (the store has no public function
    for it; building a real ``IndexStore`` of a million chunks would spend minutes on Chunk objects).
    """
    from rag import new_faiss_index

    index = new_faiss_index(vectors.shape[1], len(vectors))
    if not index.is_trained:
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(len(vectors), size=min(len(vectors), 100 * index.nlist), replace=False)]
        index.train(sample)
        del sample
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


def _store_over(index, dim: int):
    """An ``IndexStore`` (in memory, never saved) whose FAISS index is ``index``: searches take the store's path."""
    from rag import IndexSettings, IndexStore

    store = IndexStore("/nonexistent-bench-index", IndexSettings("synthetic", dim, 256, 160, 32, "sections-1"))
    store.index = index
    return store


def _time_single(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, warmup: int = 5) -> tuple[list[float], np.ndarray]:
    """Latency (ms) of each single-query search and the ids found."""
    for q in queries[:warmup]:
        search(q[None, :])
    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        ids = search(q[None, :])
        times.append((time.perf_counter() - t0) * 1000.0)
        found.append(ids[0])
    return times, np.vstack(found)


def _index_bytes(index) -> int:
    import faiss

    return int(faiss.serialize_index(index).nbytes)


def bench_size(n: int, gen: ClusteredVectors, queries: np.ndarray, *, k: int = 10, seed: int = 1, curve: Sequence[int] = NPROBE_CURVE) -> dict:
    """Build the store's index for ``n`` synthetic vectors; latency, recall@k and memory of its search."""
    import faiss

    from rag import ivf_nprobe

    dim = gen.dim
    t0 = time.perf_counter()
    vectors = gen.sample(n, seed=seed)
    ids = np.arange(n, dtype=np.int64)
    gen_s = time.perf_counter() - t0

    # Exact search: ground truth (batched) and the raw latency baseline (single queries).
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    _, truth = exact.search(queries, k)
    exact_ms, exact_found = _time_single(lambda q: exact.search(q, k)[1], queries)
    del exact
    gc.collect()

    choice = store_choice(n, dim)
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    index = build_store_index(vectors, ids)
    build_s = time.perf_counter() - t0
    gc.collect()
    rss1 = rss_bytes()
    store = _store_over(index, dim)
    store_ms, found = _time_single(lambda q: store.search(q, k)[1], queries)
    # FAISS parallelises even a single query with OpenMP; on 2 busy cores the threads wait for each
    # other (scheduler ticks of ~4 ms), so the same search on one thread is shown beside it.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        one_ms, _ = _time_single(lambda q: store.search(q, k)[1], queries)
    finally:
        faiss.omp_set_num_threads(threads)
    out = {
        "n": n,
        "store_choice": choice,
        "index_class": type(index).__name__,
        "generate_s": gen_s,
        "build_s": build_s,
        "latency_ms": summarize(store_ms, (50, 95, 99)),
        "recall_at_k": recall_at_k(found, truth, k),
        "faiss_threads": threads,
        "latency_ms_1_thread": summarize(one_ms, (50, 95, 99)),
        "exact_latency_ms": summarize(exact_ms, (50, 95, 99)),
        "exact_recall_check": recall_at_k(exact_found, truth, k),
        "index_bytes": _index_bytes(index),
        "vector_bytes": int(vectors.nbytes),
        "rss_delta_bytes": (rss1 - rss0) if rss0 is not None and rss1 is not None else None,
    }
    if isinstance(index, faiss.IndexIVF):
        out["nprobe"] = int(ivf_nprobe(index))
        out["nlist"] = int(index.nlist)
        rows = []
        for nprobe in sorted(set(curve) | {out["nprobe"]}):
            if nprobe > index.nlist:
                continue
            index.nprobe = nprobe
            ms, f = _time_single(lambda q: index.search(q, k)[1], queries)
            s = summarize(ms, (50, 95, 99))
            rows.append({"nprobe": nprobe, "p50_ms": s["p50"], "p99_ms": s["p99"], "recall_at_k": recall_at_k(f, truth, k)})
        out["nprobe_curve"] = rows
        ok = [r for r in rows if r["recall_at_k"] >= TARGET_RECALL and r["p50_ms"] < TARGET_P50_MS]
        out["smallest_nprobe_meeting_target"] = ok[0]["nprobe"] if ok else None
    del index, store, vectors
    gc.collect()
    return out


def bench_retrieval(
    sizes: Sequence[int],
    *,
    n_queries: int = 200,
    k: int = 10,
    dim: int = 384,
    n_clusters: int = 2000,
    noise: float = 0.05,
    seed: int = 0,
    on_size: Callable[[int], None] | None = None,
) -> dict:
    """Retrieval latency, recall@k and memory at each of ``sizes`` (see ``bench_size``)."""
    gen = ClusteredVectors(n_clusters=n_clusters, dim=dim, noise=noise, seed=seed)
    queries = gen.sample(n_queries, seed=seed + 10_000)
    results = []
    for i, n in enumerate(sizes):
        log.info("retrieval at %s vectors: %s", f"{n:,}", store_choice(n, dim)["type"])
        results.append(bench_size(n, gen, queries, k=k, seed=seed + 1 + i))
        if on_size:
            on_size(n)
    return {
        "data": gen.describe(),
        "n_queries": n_queries,
        "k": k,
        "dim": dim,
        "single_query": True,
        "sizes": results,
        "process_peak_rss_bytes": peak_rss_bytes(),
    }
