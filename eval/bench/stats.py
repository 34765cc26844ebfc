"""Small pure helpers of the speed benchmark: percentiles, summaries, synthetic vectors, recall, memory.

Nothing here imports torch, faiss or llama.cpp, so the helpers are cheap to test.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between ranks (NumPy's default).

    Returns NaN for no values.
    """
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    xs = sorted(float(v) for v in values)
    if not xs:
        return math.nan
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: Iterable[float]) -> float:
    return percentile(values, 50)


def summarize(values: Iterable[float], percentiles: Sequence[float] = (50, 95)) -> dict[str, float | int | None]:
    """n, mean, min, max and the given percentiles (keys ``p50``, ``p95``...); None where there are no values."""
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    out: dict[str, float | int | None] = {"n": len(xs)}
    for q in percentiles:
        out[f"p{q:g}"] = percentile(xs, q) if xs else None
    out["mean"] = sum(xs) / len(xs) if xs else None
    out["min"] = min(xs) if xs else None
    out["max"] = max(xs) if xs else None
    return out


def ratio(ours: float | None, raw: float | None) -> float | None:
    """ours / raw, or None when either is missing or raw is zero."""
    if ours is None or raw is None or raw == 0 or math.isnan(ours) or math.isnan(raw):
        return None
    return ours / raw


def jsonable(obj):
    """``obj`` with NaN/inf floats as None and NumPy scalars as Python numbers (for json.dumps)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


# ----- synthetic embeddings -------------------------------------------------------------------------


def cluster_centres(n_clusters: int, dim: int, seed: int = 0) -> np.ndarray:
    """``n_clusters`` random unit vectors (uniform on the sphere)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((n_clusters, dim), dtype=np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    return c


class ClusteredVectors:
    """A mixture of Gaussian clusters on the unit sphere, standing in for sentence embeddings.

    Each cluster has a random unit centre, a weight drawn from a log-normal (so cluster sizes are
    uneven, as topics are) and its own noise scale (``noise`` times 0.75..1.25 per dimension). A
    vector is ``centre + noise``, normalised. With ``noise=0.05`` in 384 dimensions the noise has
    about the norm of the centre, so two vectors of one cluster have cosine about 0.5 and vectors of
    different clusters about 0: neighbours are meaningful, unlike uniformly random vectors.

    Index vectors and queries come from the same mixture (``sample`` with different seeds).
    """

    def __init__(self, n_clusters: int = 2000, dim: int = 384, noise: float = 0.05, seed: int = 0) -> None:
        if n_clusters < 1 or dim < 1 or noise <= 0:
            raise ValueError("n_clusters and dim must be positive, noise > 0")
        self.n_clusters = n_clusters
        self.dim = dim
        self.noise = noise
        self.seed = seed
        rng = np.random.default_rng(seed + 1)
        self.centres = cluster_centres(n_clusters, dim, seed)
        w = rng.lognormal(0.0, 1.0, n_clusters)
        self.weights = w / w.sum()
        self.scales = (noise * rng.uniform(0.75, 1.25, n_clusters)).astype(np.float32)

    def describe(self) -> str:
        return (
            f"{self.n_clusters:,} Gaussian clusters around random unit centres in {self.dim} dimensions, "
            f"log-normal cluster sizes, per-dimension noise sd {self.noise} x U(0.75, 1.25) per cluster, "
            "normalised (same-cluster cosine ~0.5, other clusters ~0); queries drawn from the same mixture"
        )

    def sample(self, n: int, seed: int, block: int = 100_000) -> np.ndarray:
        """``n`` unit vectors (float32, C-contiguous), generated in blocks to bound temporary memory."""
        rng = np.random.default_rng(seed)
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, block):
            m = min(block, n - start)
            which = rng.choice(self.n_clusters, size=m, p=self.weights)
            v = rng.standard_normal((m, self.dim), dtype=np.float32)
            v *= self.scales[which][:, None]
            v += self.centres[which]
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            out[start : start + m] = v
        return out


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean over queries of |found[:k] ∩ truth[:k]| / k (ids of -1 never match)."""
    found = np.asarray(found)
    truth = np.asarray(truth)
    if found.shape[0] != truth.shape[0]:
        raise ValueError("found and truth must have one row per query")
    if k < 1:
        raise ValueError("k must be at least 1")
    if found.shape[0] == 0:
        return math.nan
    hits = 0
    for f, t in zip(found[:, :k], truth[:, :k]):
        hits += len({int(x) for x in f if x >= 0} & {int(x) for x in t if x >= 0})
    return hits / (k * found.shape[0])


# ----- memory of processes (Linux /proc) -------------------------------------------------------------


def proc_status_kb(pid: int | str, field: str) -> int | None:
    """A ``Vm*`` field of /proc/<pid>/status in kB (None if the process or field is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_bytes(pid: int | str = "self") -> int | None:
    kb = proc_status_kb(pid, "VmRSS")
    return None if kb is None else kb * 1024


def peak_rss_bytes(pid: int | str = "self") -> int | None:
    kb = proc_status_kb(pid, "VmHWM")
    return None if kb is None else kb * 1024


def descendants(pid: int) -> list[int]:
    """All live descendant process ids of ``pid`` (from /proc/<pid>/task/*/children)."""
    out: list[int] = []
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children", encoding="ascii") as f:
                    kids = [int(x) for x in f.read().split()]
            except (OSError, ValueError):
                continue
            for k in kids:
                if k not in out:
                    out.append(k)
                    stack.append(k)
    return out


def mib(n: float | int | None) -> float | None:
    return None if n is None else n / (1024 * 1024)
