"""The index on disk: FAISS vectors, a chunk table, the documents and a manifest.

Layout of an index folder (all plain files, never pickle)::

    manifest.json            the commit point: settings, documents, and the data files below
    vectors-<gen>.faiss      FAISS index of chunk vectors, keyed by chunk id
    sentences-<gen>.faiss    FAISS index of the chunks' sentence vectors, keyed by sentence id
                             (``rag.sentences``: the chunk id shifted left, plus the position)
    chunks-<gen>.jsonl       one Chunk per line
    documents-<gen>.jsonl    one Document per line (with the text offsets refer to)

A write creates a new generation of data files, flushes them, and only then
replaces ``manifest.json`` atomically (temp file + rename). A process killed at
any moment leaves the previous manifest pointing at complete files. The manifest
records the sha256 of each data file, so a truncated or altered file is detected
on load instead of being read as garbage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexFormatError
from .sentences import chunk_of
from .types import Chunk, Document

log = logging.getLogger(__name__)

#: 2: sentence vectors (``sentences-<gen>.faiss``) beside the chunk vectors.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
#: Above this many vectors the index switches from exact (flat) search to IVF.
IVF_THRESHOLD = 200_000
_DATA_RE = re.compile(r"^(vectors|sentences|chunks|documents)-(\d+)\.(faiss|jsonl)$")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        remove_quietly(tmp)
        raise


def remove_quietly(path: str | Path) -> None:
    """Delete ``path`` if it exists (cleaning up a temporary file after a failed write)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    atomic_write_bytes(path, data)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError as exc:
                    raise IndexFormatError(f"{path.name} line {i} is not valid JSON; rebuild the index") from exc
    return out


@dataclass(frozen=True)
class IndexSettings:
    """What the vectors depend on: a mismatch means the index must be rebuilt."""

    embedder: str
    dim: int
    max_tokens: int
    chunk_tokens: int
    chunk_overlap: int
    #: The chunking scheme (``chunker.CHUNKING``).
    chunking: str

    @classmethod
    def checked(cls, stored: Any, expected: "IndexSettings | None", where: str, rebuild: str) -> "IndexSettings":
        """The settings an index was saved with (``stored``, a dict), checked against ``expected``.

        Raises:
            IndexFormatError: missing or malformed, or different from ``expected``; the message names
                ``where`` the index is and says how to ``rebuild`` it.
        """
        try:
            settings = cls(**stored)
        except (KeyError, TypeError) as exc:
            raise IndexFormatError(f"{where} lacks its settings: {rebuild}") from exc
        if expected is not None and settings != expected:
            diffs = [
                f"{k}: index has {getattr(settings, k)!r}, settings ask for {getattr(expected, k)!r}"
                for k in settings.__dataclass_fields__
                if getattr(settings, k) != getattr(expected, k)
            ]
            raise IndexFormatError(f"{where} was built with other settings ({'; '.join(diffs)}): {rebuild}")
        return settings


def check_addition(
    store: Any, doc: Document, chunks: list[Chunk], vectors: np.ndarray, sentences: "SentenceVectors | None" = None
) -> None:
    """Refuse an addition that would corrupt ``store`` (any store with ``documents``, ``chunks``, ``settings``).

    Raises:
        ValueError: not one vector per chunk, vectors of the wrong width, a document already indexed,
            chunk ids repeated or in use (reused ids leave more vectors than chunks: an index that
            cannot be loaded), a chunk of another document, or sentence vectors of the wrong width,
            with repeated ids or ids of no chunk being added.
    """
    if sentences is not None:
        svecs, sids = sentences
        if svecs.ndim != 2 or len(svecs) != len(sids) or (len(svecs) and svecs.shape[1] != store.settings.dim):
            raise ValueError(f"sentence vectors must have shape (n, {store.settings.dim}), one per id")
        if len(set(sids.tolist())) != len(sids) or not set(chunk_of(sids).tolist()) <= {c.chunk_id for c in chunks}:
            raise ValueError("sentence ids are repeated or belong to no chunk being added")
    if len(chunks) != len(vectors):
        raise ValueError("one vector per chunk is required")
    if vectors.ndim != 2 or (len(vectors) and vectors.shape[1] != store.settings.dim):
        raise ValueError(f"vectors must have shape (n, {store.settings.dim})")
    if doc.doc_id in store.documents:
        raise ValueError(f"document {doc.doc_id} is already indexed")
    new_ids = {c.chunk_id for c in chunks}
    if len(new_ids) != len(chunks) or new_ids & store.chunks.keys():
        raise ValueError(f"chunk ids of {doc.doc_id} are repeated or already in use")
    if any(c.doc_id != doc.doc_id for c in chunks):
        raise ValueError("chunk belongs to another document")


#: A chunk's sentence vectors and their ids (``rag.sentences.sentence_ids``).
SentenceVectors = tuple[np.ndarray, np.ndarray]


def new_sentence_index(dim: int):
    """Exact search over sentence vectors, keyed by sentence id."""
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def drop_document(store: Any, doc_id: str) -> list[int]:
    """Remove a document and its chunks from ``store``'s tables; returns the chunk ids (``KeyError`` if unknown)."""
    if doc_id not in store.documents:
        raise KeyError(doc_id)
    del store.documents[doc_id]
    ids = [cid for cid, c in store.chunks.items() if c.doc_id == doc_id]
    for cid in ids:
        del store.chunks[cid]
    return ids


def new_faiss_index(dim: int, n_expected: int):
    import faiss

    if n_expected >= IVF_THRESHOLD:
        nlist = int(4 * np.sqrt(n_expected))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        return index
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def ivf_nprobe(index) -> int:
    """Lists probed per IVF query: enough for recall@10 >= 0.95 on normalised text vectors."""
    return max(16, index.nlist // 32)


class IndexStore:
    """An index folder loaded in memory: documents, chunks and their vectors.

    Use ``IndexStore.create`` for a new, empty index and ``IndexStore.load`` for an
    existing one; change it with ``add_document`` / ``remove_document`` and make the
    changes durable with ``save``. Reads are safe from several threads; writes take a lock.
    """

    def __init__(self, path: Path, settings: IndexSettings) -> None:
        self.path = Path(path)
        self.settings = settings
        self.documents: dict[str, Document] = {}
        self.chunks: dict[int, Chunk] = {}
        self.next_chunk_id = 0
        self.generation = 0
        self.index = new_faiss_index(settings.dim, 0)
        self.sentence_index = new_sentence_index(settings.dim)
        self._lock = threading.RLock()
        self._pending_vectors: list[tuple[np.ndarray, np.ndarray]] = []

    # ----- life cycle -------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, settings: IndexSettings) -> "IndexStore":
        """A new, empty index (nothing is written until ``save``)."""
        return cls(Path(path), settings)

    @staticmethod
    def exists(path: str | Path) -> bool:
        return (Path(path) / MANIFEST).is_file()

    @staticmethod
    def read_manifest(path: str | Path) -> dict[str, Any]:
        mpath = Path(path) / MANIFEST
        if not mpath.is_file():
            raise IndexFormatError(f"no index at {path}: build one with `rag index PATH --index {path}`")
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexFormatError(
                f"the manifest of {path} is unreadable ({exc}); rebuild with `rag index PATH --index {path} --rebuild`"
            ) from exc
        if not isinstance(manifest, dict):
            raise IndexFormatError(f"the manifest of {path} is not a JSON object; rebuild the index")
        return manifest

    @classmethod
    def load(cls, path: str | Path, expected: IndexSettings | None = None, *, verify: bool = True) -> "IndexStore":
        """Load an index folder, checking its format, its settings and its files' checksums.

        Raises:
            IndexFormatError: missing, corrupt, other format version or other embedder/chunker settings;
                the message says how to rebuild.
        """
        import faiss

        path = Path(path)
        m = cls.read_manifest(path)
        rebuild = f"rebuild it with `rag index PATH --index {path} --rebuild`"
        if m.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(
                f"the index at {path} has format version {m.get('format_version')!r}, this program reads "
                f"version {FORMAT_VERSION}: {rebuild}"
            )
        settings = IndexSettings.checked(m.get("settings"), expected, f"the index at {path}", rebuild)
        files = m.get("files") or {}
        for role in ("vectors", "sentences", "chunks", "documents"):
            info = files.get(role)
            if not info:
                raise IndexFormatError(f"the manifest of {path} names no {role} file: {rebuild}")
            fpath = path / info["name"]
            if not fpath.is_file():
                raise IndexFormatError(f"{fpath.name} is missing from {path}: {rebuild}")
            if fpath.stat().st_size != info["bytes"]:
                raise IndexFormatError(f"{fpath.name} is truncated or altered (size differs): {rebuild}")
            if verify and _sha256(fpath) != info["sha256"]:
                raise IndexFormatError(f"{fpath.name} is corrupt (checksum differs): {rebuild}")
        store = cls(path, settings)
        store.generation = int(m.get("generation", 0))
        store.next_chunk_id = int(m.get("next_chunk_id", 0))
        for d in _read_jsonl(path / files["documents"]["name"]):
            doc = Document.from_dict(d)
            store.documents[doc.doc_id] = doc
        for c in _read_jsonl(path / files["chunks"]["name"]):
            ch = Chunk.from_dict(c)
            store.chunks[ch.chunk_id] = ch
        try:
            store.index = faiss.read_index(str(path / files["vectors"]["name"]))
        except RuntimeError as exc:
            raise IndexFormatError(f"the vector file of {path} cannot be read ({exc}): {rebuild}") from exc
        if store.index.ntotal != len(store.chunks):
            raise IndexFormatError(
                f"the index at {path} holds {store.index.ntotal} vectors for {len(store.chunks)} chunks: {rebuild}"
            )
        if store.index.d != settings.dim:
            raise IndexFormatError(f"the vectors of {path} have dimension {store.index.d}, not {settings.dim}: {rebuild}")
        try:
            store.sentence_index = faiss.read_index(str(path / files["sentences"]["name"]))
        except RuntimeError as exc:
            raise IndexFormatError(f"the sentence vector file of {path} cannot be read ({exc}): {rebuild}") from exc
        sids = store.sentence_ids()
        if store.sentence_index.d != settings.dim or not set(chunk_of(sids).tolist()) <= store.chunks.keys():
            raise IndexFormatError(f"the sentence vectors of {path} do not match its chunks: {rebuild}")
        log.info("loaded index %s: %d documents, %d chunks", path, len(store.documents), len(store.chunks))
        return store

    # ----- changes ----------------------------------------------------------------------------

    def source_map(self) -> dict[str, str]:
        """source -> doc_id of every indexed document."""
        return {d.source: d.doc_id for d in self.documents.values()}

    def add_document(
        self, doc: Document, chunks: list[Chunk], vectors: np.ndarray, sentences: SentenceVectors | None = None
    ) -> None:
        """Add a document with its chunks (ids from ``next_chunk_id``), their vectors, and the vectors of
        their sentences (``rag.sentences``; default none)."""
        with self._lock:
            check_addition(self, doc, chunks, vectors, sentences)
            self.documents[doc.doc_id] = doc
            ids = np.array([c.chunk_id for c in chunks], dtype=np.int64)
            for c in chunks:
                self.chunks[c.chunk_id] = c
            if len(ids):
                self.next_chunk_id = max(self.next_chunk_id, int(ids.max()) + 1)
                self._add_vectors(np.ascontiguousarray(vectors, dtype=np.float32), ids)
            if sentences is not None and len(sentences[1]):
                self.sentence_index.add_with_ids(
                    np.ascontiguousarray(sentences[0], dtype=np.float32), np.asarray(sentences[1], dtype=np.int64)
                )

    def _add_vectors(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if not self.index.is_trained:
            # An IVF index is trained when saved, on everything it will hold.
            self._pending_vectors.append((vectors, ids))
            return
        self.index.add_with_ids(vectors, ids)

    def remove_document(self, doc_id: str) -> int:
        """Remove a document, its chunks and their vectors; returns the number of chunks removed."""
        with self._lock:
            ids = drop_document(self, doc_id)
            if ids:
                id_arr = np.array(ids, dtype=np.int64)
                removed = self.index.remove_ids(id_arr)
                self._pending_vectors = [
                    (v[~np.isin(i, id_arr)], i[~np.isin(i, id_arr)]) for v, i in self._pending_vectors
                ]
                import faiss

                sids = self.sentence_ids()
                gone = sids[np.isin(chunk_of(sids), id_arr)]
                if len(gone):
                    self.sentence_index.remove_ids(faiss.IDSelectorBatch(gone))
                log.debug("removed %d vectors of %s, and %d sentence vectors", removed, doc_id, len(gone))
            return len(ids)

    def sentence_ids(self) -> np.ndarray:
        """The ids of every sentence vector held."""
        import faiss

        return faiss.vector_to_array(self.sentence_index.id_map).astype(np.int64)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """All (vectors, ids) held, in id order."""
        ids = np.array(sorted(self.chunks), dtype=np.int64)
        if not len(ids):
            return np.zeros((0, self.settings.dim), dtype=np.float32), ids
        vecs = np.vstack([self.index.reconstruct(int(i)) for i in ids]) if self.index.is_trained and self.index.ntotal else None
        if vecs is None or len(vecs) != len(ids):
            pending = {int(i): v for vs, is_ in self._pending_vectors for v, i in zip(vs, is_)}
            vecs = np.vstack([pending[int(i)] if int(i) in pending else self.index.reconstruct(int(i)) for i in ids])
        return vecs.astype(np.float32), ids

    def _retype_if_needed(self) -> None:
        """Switch between flat and IVF search when the size crosses ``IVF_THRESHOLD``."""
        import faiss

        n = len(self.chunks)
        is_ivf = isinstance(self.index, faiss.IndexIVF)
        want_ivf = n >= IVF_THRESHOLD
        if is_ivf == want_ivf and self.index.is_trained:
            if self._pending_vectors:
                for v, i in self._pending_vectors:
                    self.index.add_with_ids(v, i)
                self._pending_vectors = []
            return
        vecs, ids = self.vectors()
        index = new_faiss_index(self.settings.dim, n)
        if not index.is_trained:
            rng = np.random.default_rng(0)
            sample = vecs[rng.choice(len(vecs), size=min(len(vecs), 100 * index.nlist), replace=False)]
            index.train(sample)
        if len(ids):
            index.add_with_ids(vecs, ids)
        self.index = index
        self._pending_vectors = []

    def save(self) -> None:
        """Write a new generation of data files, then switch the manifest to it atomically."""
        import faiss

        with self._lock:
            self._retype_if_needed()
            self.path.mkdir(parents=True, exist_ok=True)
            # Never reuse a generation number that has files on disk (e.g. a rebuild starts from 0):
            # overwriting the files the current manifest points at would break it if killed now.
            on_disk = [int(m.group(2)) for p in self.path.iterdir() if (m := _DATA_RE.match(p.name))]
            gen = max([self.generation, *on_disk]) + 1
            names = {
                "vectors": f"vectors-{gen:06d}.faiss",
                "sentences": f"sentences-{gen:06d}.faiss",
                "chunks": f"chunks-{gen:06d}.jsonl",
                "documents": f"documents-{gen:06d}.jsonl",
            }
            for role, index in (("vectors", self.index), ("sentences", self.sentence_index)):
                tmp_vec = self.path / f".{names[role]}.tmp"
                faiss.write_index(index, str(tmp_vec))
                with open(tmp_vec, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(tmp_vec, self.path / names[role])
            _write_jsonl(self.path / names["chunks"], [self.chunks[k].to_dict() for k in sorted(self.chunks)])
            _write_jsonl(self.path / names["documents"], [d.to_dict() for d in self.documents.values()])
            files = {
                role: {"name": name, "bytes": (self.path / name).stat().st_size, "sha256": _sha256(self.path / name)}
                for role, name in names.items()
            }
            manifest = {
                "format_version": FORMAT_VERSION,
                "generation": gen,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "settings": self.settings.__dict__,
                "index_type": "ivf" if isinstance(self.index, faiss.IndexIVF) else "flat",
                "next_chunk_id": self.next_chunk_id,
                "n_chunks": len(self.chunks),
                "n_sentences": int(self.sentence_index.ntotal),
                "documents": [
                    {"doc_id": d.doc_id, "source": d.source, "title": d.title, "chars": len(d.text)}
                    for d in self.documents.values()
                ],
                "files": files,
            }
            atomic_write_bytes(self.path / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
            self.generation = gen
            self._remove_stale_files(set(names.values()))

    def _remove_stale_files(self, keep: set[str]) -> None:
        for p in self.path.iterdir():
            if (_DATA_RE.match(p.name) and p.name not in keep) or (p.name.startswith(".") and p.name.endswith(".tmp")):
                try:
                    p.unlink()
                except OSError:
                    pass

    # ----- search -----------------------------------------------------------------------------

    def search(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product search: (scores, chunk ids), -1 ids where fewer than k exist."""
        import faiss

        k = max(1, min(k, max(1, self.index.ntotal)))
        if isinstance(self.index, faiss.IndexIVF):
            self.index.nprobe = ivf_nprobe(self.index)
        q = np.ascontiguousarray(np.atleast_2d(query_vectors), dtype=np.float32)
        if self.index.ntotal == 0:
            return np.zeros((len(q), 0), dtype=np.float32), np.zeros((len(q), 0), dtype=np.int64)
        return self.index.search(q, k)

    def search_sentences(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product search over sentence vectors: (scores, sentence ids), -1 ids where fewer than k."""
        q = np.ascontiguousarray(np.atleast_2d(query_vectors), dtype=np.float32)
        if self.sentence_index.ntotal == 0:
            return np.zeros((len(q), 0), dtype=np.float32), np.zeros((len(q), 0), dtype=np.int64)
        return self.sentence_index.search(q, max(1, min(k, self.sentence_index.ntotal)))
