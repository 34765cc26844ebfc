"""The indexed documents of one index: loading, hot reload, indexing, deletion, retrieval.

A ``Collection`` owns the loaded store (FAISS files in ``index_dir``, or PostgreSQL + pgvector with
``store=pgvector``; see ``rag.storage``) and the hybrid retriever over it. When another process (or
another ``Collection``) saves a newer generation of the same index, the next read reloads it, so a
running chat sees documents indexed from the command line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import Settings
from .embedder import Embedder
from .errors import RagError
from .indexer import IndexReport, Indexer
from .storage import AnyRetriever, AnyStore, load_store, make_retriever, stored_generation


class Collection:
    """The documents of ``settings.index_dir``.

    Args:
        settings: The settings (index folder, chunking, retrieval parameters).
        embedder: A callable returning the embedder, called on first need (models load lazily).
    """

    def __init__(self, settings: Settings, embedder: Callable[[], Embedder]) -> None:
        self.settings = settings
        self._embedder = embedder
        self._store: AnyStore | None = None
        self._stamp: int | None = None
        self._retriever: AnyRetriever | None = None
        self._lock = threading.RLock()

    @property
    def embedder(self) -> Embedder:
        return self._embedder()

    @property
    def store(self) -> AnyStore:
        """The loaded index; reloaded when a newer generation has been saved."""
        with self._lock:
            stamp = self._change_stamp()
            if self._store is None or (stamp is not None and stamp != self._stamp and self._newer_saved()):
                self._store = load_store(self.settings, self.embedder)
            self._stamp = stamp
            return self._store

    def _change_stamp(self) -> int | None:
        """A cheap sign that the index may have changed: the FAISS manifest's mtime (pgvector: always ask)."""
        if self.settings.store == "pgvector":
            return time.monotonic_ns()
        try:
            return (Path(self.settings.index_dir) / "manifest.json").stat().st_mtime_ns
        except OSError:
            return None

    def _newer_saved(self) -> bool:
        try:
            generation = stored_generation(self.settings, self._store)
        except RagError:
            return False
        return self._store is not None and generation is not None and generation != self._store.generation

    @property
    def retriever(self) -> AnyRetriever:
        """Hybrid retrieval over the current store (rebuilt when the store was reloaded)."""
        with self._lock:
            store = self.store
            if self._retriever is None or self._retriever.store is not store:
                self._retriever = make_retriever(store, self.embedder, self.settings)
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
