"""The indexed documents of one index folder: loading, hot reload, indexing, deletion, retrieval.

A ``Collection`` owns the loaded ``IndexStore`` and the ``HybridRetriever`` over it. When another
process (or another ``Collection``) saves a newer generation of the same folder, the next read
reloads it, so a running chat sees documents indexed from the command line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import Settings
from .embedder import Embedder
from .errors import RagError
from .indexer import IndexReport, Indexer, index_settings
from .retriever import HybridRetriever
from .store import IndexStore


class Collection:
    """The documents of ``settings.index_dir``.

    Args:
        settings: The settings (index folder, chunking, retrieval parameters).
        embedder: A callable returning the embedder, called on first need (models load lazily).
    """

    def __init__(self, settings: Settings, embedder: Callable[[], Embedder]) -> None:
        self.settings = settings
        self._embedder = embedder
        self._store: IndexStore | None = None
        self._stamp: int | None = None
        self._retriever: HybridRetriever | None = None
        self._lock = threading.RLock()

    @property
    def embedder(self) -> Embedder:
        return self._embedder()

    @property
    def store(self) -> IndexStore:
        """The loaded index; reloaded when a newer generation has been saved to the folder."""
        with self._lock:
            manifest = Path(self.settings.index_dir) / "manifest.json"
            try:
                stamp = manifest.stat().st_mtime_ns
            except OSError:
                stamp = None
            if self._store is None or (stamp is not None and stamp != self._stamp and self._newer_on_disk()):
                self._store = IndexStore.load(self.settings.index_dir, index_settings(self.settings, self.embedder))
            self._stamp = stamp
            return self._store

    def _newer_on_disk(self) -> bool:
        try:
            generation = int(IndexStore.read_manifest(self.settings.index_dir).get("generation", 0))
        except RagError:
            return False
        return self._store is not None and generation != self._store.generation

    @property
    def retriever(self) -> HybridRetriever:
        """Hybrid retrieval over the current store (rebuilt when the store was reloaded)."""
        with self._lock:
            store = self.store
            if self._retriever is None or self._retriever.store is not store:
                s = self.settings
                self._retriever = HybridRetriever(
                    store,
                    self.embedder,
                    candidates=s.dense_candidates,
                    rrf_k=s.rrf_k,
                    min_dense_score=s.min_dense_score,
                    min_bm25_score=s.min_bm25_score,
                )
            return self._retriever

    def index(self, paths: Sequence[str | Path], *, rebuild: bool = False, prune: bool = False, progress: bool = True) -> IndexReport:
        """Index files or folders (incremental unless ``rebuild``); see ``Indexer.run``."""
        with self._lock:
            current = self._store if self._store is not None and not rebuild else None
            store, report = Indexer(self.settings, self.embedder).run(
                paths, index_dir=self.settings.index_dir, rebuild=rebuild, prune=prune, progress=progress, store=current
            )
            self._store = store
            return report

    def delete(self, ids_or_sources: Sequence[str]) -> list[str]:
        """Remove documents by doc id or source path; returns the sources removed."""
        with self._lock:
            return Indexer(self.settings, self.embedder).remove(self.store, ids_or_sources)

    def documents(self) -> list[dict]:
        """The indexed documents: doc_id, source, title, chunks."""
        store = self.store
        counts: dict[str, int] = {}
        for c in store.chunks.values():
            counts[c.doc_id] = counts.get(c.doc_id, 0) + 1
        return [
            {"doc_id": d.doc_id, "source": d.source, "title": d.title, "chunks": counts.get(d.doc_id, 0)}
            for d in store.documents.values()
        ]

    def document_text(self, doc_id: str) -> str:
        """The full text of a document (``KeyError`` when it is not indexed)."""
        return self.store.documents[doc_id].text
