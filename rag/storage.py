"""Pick the index store and its retriever from the settings (``RAG_STORE=faiss|pgvector``).

Both stores have the same interface (``documents``, ``chunks``, ``generation``,
``next_chunk_id``, ``source_map``, ``add_document``, ``remove_document``, ``save``,
``search``, ``exists``) and both retrievers return the same ``RetrievalResult``
(``run(question, k)``, ``similarities(query_vector, chunk_ids)``)::

    store = load_store(settings, embedder)            # an existing index (IndexFormatError if none / stale)
    retriever = make_retriever(store, embedder, settings)
    store = open_store(settings, embedder, rebuild=False)   # for indexing: created when missing
    stored_generation(settings, store)                # the last saved generation, to notice other writers
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

from .chunker import CHUNKING
from .config import Settings
from .errors import RagError
from .store import IndexSettings, IndexStore

if TYPE_CHECKING:
    from .pgstore import PgHybridRetriever, PgVectorStore
    from .retriever import HybridRetriever

AnyStore = Union[IndexStore, "PgVectorStore"]
AnyRetriever = Union["HybridRetriever", "PgHybridRetriever"]


def index_settings(settings: Settings, embedder: Any) -> IndexSettings:
    """What the stored vectors depend on (a mismatch means rebuild)."""
    return IndexSettings(
        embedder=settings.embedder,
        dim=embedder.dim,
        max_tokens=embedder.max_tokens,
        chunk_tokens=settings.chunk_tokens,
        chunk_overlap=settings.chunk_overlap,
        chunking=CHUNKING,
    )


def _pg(settings: Settings, expected: IndexSettings | None = None) -> "PgVectorStore":
    from .pgstore import PgVectorStore

    if not settings.pg_dsn:
        raise RagError("RAG_STORE=pgvector needs a database: set RAG_PG_DSN (e.g. 'host=127.0.0.1 port=5432 dbname=rag')")
    return PgVectorStore(settings.pg_dsn, expected or IndexSettings("", 0, 0, 0, 0, ""), **_pg_options(settings))


def _pg_options(settings: Settings) -> dict[str, Any]:
    """The store options that come from the settings (schema, HNSW ef_search)."""
    return {"schema": settings.pg_schema, "ef_search": settings.pg_ef_search}


def store_exists(settings: Settings) -> bool:
    """Whether a saved index exists where the settings point (index folder or PostgreSQL schema)."""
    if settings.store == "pgvector":
        probe = _pg(settings)
        try:
            return probe.exists()
        finally:
            probe.close()
    return IndexStore.exists(settings.index_dir)


def load_store(settings: Settings, embedder: Any) -> AnyStore:
    """The existing index, checked against the embedder/chunker settings.

    Raises:
        IndexFormatError: no index, or one of another format or built with other settings
            (the message gives the command that rebuilds it).
    """
    expected = index_settings(settings, embedder)
    if settings.store == "pgvector":
        from .pgstore import PgVectorStore

        _pg(settings).close()  # the DSN check, with its message
        return PgVectorStore.load(settings.pg_dsn, expected, **_pg_options(settings))
    return IndexStore.load(settings.index_dir, expected)


def open_store(settings: Settings, embedder: Any, *, rebuild: bool = False) -> AnyStore:
    """The index to update: a new empty one when ``rebuild`` or none exists, else the existing one."""
    expected = index_settings(settings, embedder)
    if settings.store == "pgvector":
        from .pgstore import PgVectorStore

        if rebuild or not store_exists(settings):
            return PgVectorStore.create(settings.pg_dsn, expected, **_pg_options(settings))
        return PgVectorStore.load(settings.pg_dsn, expected, **_pg_options(settings))
    if rebuild or not IndexStore.exists(settings.index_dir):
        return IndexStore.create(settings.index_dir, expected)
    return IndexStore.load(settings.index_dir, expected)


def stored_generation(settings: Settings, store: AnyStore | None = None) -> int | None:
    """The generation last saved (None when there is no index): differs from ``store.generation``
    when another process or assistant saved since ``store`` was loaded."""
    if settings.store == "pgvector":
        pg = store if store is not None and getattr(store, "kind", "") == "pgvector" else _pg(settings)
        try:
            return pg.stored_generation() if pg.exists() else None
        finally:
            if pg is not store:
                pg.close()
    if not IndexStore.exists(settings.index_dir):
        return None
    return int(IndexStore.read_manifest(settings.index_dir).get("generation", 0))


def make_retriever(store: AnyStore, embedder: Any, settings: Settings) -> AnyRetriever:
    """The hybrid retriever that matches ``store``, configured from ``settings``."""
    common = dict(
        candidates=settings.dense_candidates,
        rrf_k=settings.rrf_k,
        min_dense_score=settings.min_dense_score,
        min_card_score=settings.min_card_score,
        min_sentence_score=settings.min_sentence_score,
        sentence_ranking=settings.sentence_ranking,
    )
    if getattr(store, "kind", "") == "pgvector":
        from .pgstore import PgHybridRetriever

        return PgHybridRetriever(store, embedder, min_keyword_score=settings.min_keyword_score, **common)  # type: ignore[arg-type]
    from .retriever import HybridRetriever

    return HybridRetriever(store, embedder, min_bm25_score=settings.min_bm25_score, **common)  # type: ignore[arg-type]
