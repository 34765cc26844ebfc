"""The index in PostgreSQL with pgvector: the same contract as the FAISS ``IndexStore``.

Tables, in one PostgreSQL schema per index (``rag`` by default)::

    meta       key -> jsonb: schema_version, settings (embedder, chunker), state (generation, next_chunk_id)
    documents  one row per Document (insertion order kept in ``seq``)
    chunks     one row per Chunk: its vector in ``embedding vector(dim)`` (HNSW index, inner product on
               unit vectors = cosine) and a generated ``tsv tsvector`` column (GIN index) for keyword search
    sentences  one row per embedded sentence of a chunk (``rag.sentences``): its vector (HNSW index),
               deleted with its chunk

Writes follow the ``IndexStore`` life cycle: ``add_document`` / ``remove_document`` change the
in-memory view only, and ``save()`` applies all of them in ONE transaction that also bumps the
generation in ``meta``. A process killed (or an exception raised) before the commit leaves the
previous state; after it, the complete new state. ``save()`` on a store made with ``create`` (a
rebuild) fills new tables under staging names and, at the end of that same transaction, drops the
old tables and renames the new ones: readers wait only for that last step.

``PgHybridRetriever`` fuses dense (HNSW), sentence (HNSW) and keyword (``ts_rank_cd``) rankings by
reciprocal rank inside one SQL query and returns the same ``RetrievalResult`` / ``Passage`` records as
``HybridRetriever``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from .config import Settings
from .errors import IndexFormatError, RagError
from .retriever import FusedRetriever, RetrievalResult
from .sentences import chunk_of
from .store import IndexSettings, SentenceVectors, check_addition, drop_document
from .types import Chunk, Document, Passage

log = logging.getLogger(__name__)

#: Version of the table layout below; another version in the database means "rebuild".
#: 2: the sentences table.
PG_SCHEMA_VERSION = 2
#: Text search configuration of the keyword column and of queries.
TS_CONFIG = "english"
#: HNSW candidate list size per query (pgvector's default is 40): the ``pg_ef_search`` setting's default.
DEFAULT_EF_SEARCH: int = Settings.pg_ef_search
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: Suffix of the tables a rebuild fills before they replace the live ones.
_STAGING = "__rebuild"
_TABLES = ("meta", "documents", "chunks", "sentences")
_NO_SENTENCES: SentenceVectors = (np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64))


def _rebuild_hint(schema: str) -> str:
    env = "RAG_STORE=pgvector" + ("" if schema == "rag" else f" RAG_PG_SCHEMA={schema}")
    return f"rebuild it with `{env} rag index PATH --rebuild`"


def _connect(dsn: str):
    """A connection with the pgvector types registered (autocommit: reads see the latest commit)."""
    import psycopg
    from pgvector.psycopg import register_vector

    if not dsn:
        raise RagError("no PostgreSQL connection string: set RAG_PG_DSN (e.g. 'host=127.0.0.1 port=5432 dbname=rag')")
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RagError(f"cannot connect to PostgreSQL ({first}): check RAG_PG_DSN and that the server runs") from exc
    try:
        register_vector(conn)
    except psycopg.ProgrammingError as exc:
        conn.close()
        raise RagError(
            "the pgvector extension is not installed in this database: run `CREATE EXTENSION vector` as its owner"
        ) from exc
    return conn


class PgVectorStore:
    """An index held in PostgreSQL, with the interface of ``IndexStore``.

    ``documents`` (doc_id -> Document) and ``chunks`` (chunk_id -> Chunk) are read from the
    database on first use (retrieval alone never loads them) and then kept in step with
    ``add_document`` / ``remove_document``. ``search`` and ``PgHybridRetriever`` read the
    committed state: changes are visible to them after ``save()``.

    Args:
        dsn: libpq connection string (``RAG_PG_DSN``).
        settings: What the vectors depend on; ``load`` refuses an index built with others.
        schema: PostgreSQL schema holding the tables of this index (default ``rag``).
        ef_search: HNSW candidate list per query (default 100; higher = better recall, slower).
    """

    kind = "pgvector"

    def __init__(self, dsn: str, settings: IndexSettings, *, schema: str = "rag", ef_search: int = DEFAULT_EF_SEARCH) -> None:
        if not _SCHEMA_RE.match(schema):
            raise ValueError(f"invalid PostgreSQL schema name {schema!r}: use lower-case letters, digits and _")
        if ef_search < 1:
            raise ValueError("ef_search must be at least 1")
        self.dsn = dsn
        self.settings = settings
        self.schema = schema
        self.ef_search = ef_search
        self.generation = 0
        self.next_chunk_id = 0
        self._documents: dict[str, Document] | None = None
        self._chunks: dict[int, Chunk] | None = None
        self._fresh = False  # True: save() replaces whatever the schema holds (create / rebuild)
        self._added: dict[str, tuple[Document, list[Chunk], np.ndarray, SentenceVectors]] = {}
        self._removed: set[str] = set()
        self._lock = threading.RLock()  # the in-memory view and writes
        self._read_lock = threading.RLock()  # the shared read connection (never held during a save)
        self._conn = None
        #: Seconds spent by the last ``save``: ``total_s`` and, for a rebuild, ``index_build_s``.
        self.last_save_timings: dict[str, float] = {}

    # ----- connection ------------------------------------------------------------------------

    def _q(self, template: str, *, staging: bool = False):
        """SQL with ``{s}`` replaced by the quoted schema name and ``{x}`` by the staging suffix (or nothing)."""
        from psycopg import sql

        return sql.SQL(template).format(s=sql.Identifier(self.schema), x=sql.SQL(_STAGING if staging else ""))

    def connection(self):
        """The store's shared read connection (opened on first use, reopened if broken).

        Hold ``read_lock`` while using it: one query at a time goes through it.
        """
        with self._read_lock:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = _connect(self.dsn)
                self._conn.execute(f"SET hnsw.ef_search = {int(self.ef_search)}")
            return self._conn

    @property
    def read_lock(self):
        """The lock that serialises use of ``connection()``."""
        return self._read_lock

    def close(self) -> None:
        with self._read_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ----- life cycle -------------------------------------------------------------------------

    @classmethod
    def create(cls, dsn: str, settings: IndexSettings, *, schema: str = "rag", **kw: Any) -> "PgVectorStore":
        """A new, empty index; nothing changes in the database until ``save`` (which replaces the schema's tables)."""
        store = cls(dsn, settings, schema=schema, **kw)
        store._documents, store._chunks, store._fresh = {}, {}, True
        return store

    def exists(self, path: Any = None) -> bool:
        """Whether the schema holds a saved index (``path`` is accepted for ``IndexStore.exists`` parity)."""
        with self._read_lock:
            row = self.connection().execute(
                "SELECT to_regclass(%s) IS NOT NULL", (f'"{self.schema}".meta',)
            ).fetchone()
            return bool(row and row[0])

    def read_meta(self) -> dict[str, Any]:
        """The ``meta`` table as a dict; IndexFormatError when there is no index in the schema."""
        with self._read_lock:
            if not self.exists():
                raise IndexFormatError(
                    f"no pgvector index in schema {self.schema!r}: build one with "
                    f"`RAG_STORE=pgvector{'' if self.schema == 'rag' else ' RAG_PG_SCHEMA=' + self.schema} rag index PATH`"
                )
            rows = self.connection().execute(self._q("SELECT key, value FROM {s}.meta")).fetchall()
        return {k: v for k, v in rows}

    def stored_generation(self) -> int:
        """The generation last committed to the database (a newer one means: load again)."""
        return int((self.read_meta().get("state") or {}).get("generation", 0))

    @classmethod
    def load(
        cls, dsn: str, expected: IndexSettings | None = None, *, schema: str = "rag", **kw: Any
    ) -> "PgVectorStore":
        """Open the index in ``schema``, checking its table layout version and its settings.

        Raises:
            IndexFormatError: no index, another schema version, or other embedder/chunker settings;
                the message gives the command that rebuilds it.
        """
        probe = cls(dsn, expected or IndexSettings("", 0, 0, 0, 0, ""), schema=schema, **kw)
        try:
            meta = probe.read_meta()
            rebuild = _rebuild_hint(schema)
            version = meta.get("schema_version")
            if version != PG_SCHEMA_VERSION:
                raise IndexFormatError(
                    f"the pgvector index in schema {schema!r} has schema version {version!r}, this program reads "
                    f"version {PG_SCHEMA_VERSION}: {rebuild}"
                )
            settings = IndexSettings.checked(meta.get("settings"), expected, f"the pgvector index in schema {schema!r}", rebuild)
        except BaseException:
            probe.close()
            raise
        probe.settings = settings
        state = meta.get("state") or {}
        probe.generation = int(state.get("generation", 0))
        probe.next_chunk_id = int(state.get("next_chunk_id", 0))
        log.info("opened pgvector index in schema %s (generation %d)", schema, probe.generation)
        return probe

    # ----- in-memory view ---------------------------------------------------------------------

    def _read_tables(self) -> tuple[list, list]:
        conn = self.connection()
        with conn.transaction():  # one snapshot for both tables
            docs = conn.execute(
                self._q("SELECT doc_id, source, title, text, metadata, page_starts, headings FROM {s}.documents ORDER BY seq")
            ).fetchall()
            chunks = conn.execute(
                self._q("SELECT chunk_id, doc_id, start_char, end_char, text, page, heading FROM {s}.chunks ORDER BY chunk_id")
            ).fetchall()
        return docs, chunks

    def _load_view(self) -> None:
        with self._lock:
            if self._documents is not None:
                return
            with self._read_lock:
                docs, chunks = self._read_tables()
            self._documents = {
                d[0]: Document(
                    doc_id=d[0], source=d[1], title=d[2], text=d[3], metadata=dict(d[4] or {}),
                    page_starts=tuple(d[5] or ()), headings=tuple((int(o), str(t)) for o, t in (d[6] or ())),
                )
                for d in docs
            }
            self._chunks = {c[0]: Chunk(*c) for c in chunks}

    @property
    def documents(self) -> dict[str, Document]:
        self._load_view()
        assert self._documents is not None
        return self._documents

    @property
    def chunks(self) -> dict[int, Chunk]:
        self._load_view()
        assert self._chunks is not None
        return self._chunks

    def source_map(self) -> dict[str, str]:
        """source -> doc_id of every indexed document."""
        return {d.source: d.doc_id for d in self.documents.values()}

    # ----- changes ----------------------------------------------------------------------------

    def add_document(
        self, doc: Document, chunks: list[Chunk], vectors: np.ndarray, sentences: SentenceVectors | None = None
    ) -> None:
        """Add a document with its chunks, their vectors and their sentences' vectors (``rag.sentences``;
        default none), stored by the next ``save``."""
        vectors = np.asarray(vectors)
        with self._lock:
            check_addition(self, doc, chunks, vectors, sentences)
            self.documents[doc.doc_id] = doc
            for c in chunks:
                self.chunks[c.chunk_id] = c
            if chunks:
                self.next_chunk_id = max(self.next_chunk_id, max(c.chunk_id for c in chunks) + 1)
            if sentences is not None:
                sentences = (np.ascontiguousarray(sentences[0], dtype=np.float32), np.asarray(sentences[1], dtype=np.int64))
            self._added[doc.doc_id] = (
                doc, list(chunks), np.ascontiguousarray(vectors, dtype=np.float32), sentences or _NO_SENTENCES
            )

    def remove_document(self, doc_id: str) -> int:
        """Remove a document and its chunks (from the database at the next ``save``); returns the chunks removed."""
        with self._lock:
            ids = drop_document(self, doc_id)
            if self._added.pop(doc_id, None) is None or not self._fresh:
                self._removed.add(doc_id)
            return len(ids)

    @property
    def dirty(self) -> bool:
        """Whether there are changes not yet saved."""
        return self._fresh or bool(self._added or self._removed)

    def _ddl(self) -> list[str]:
        """Statements creating the staging tables of a rebuild (``{x}`` = the staging suffix)."""
        dim = int(self.settings.dim)
        if dim < 1:
            raise ValueError("the embedding dimension must be positive")
        return [
            "CREATE SCHEMA IF NOT EXISTS {s}",
            "DROP TABLE IF EXISTS {s}.sentences{x}, {s}.chunks{x}, {s}.documents{x}, {s}.meta{x} CASCADE",
            "CREATE TABLE {s}.meta{x} (key text PRIMARY KEY, value jsonb NOT NULL)",
            """CREATE TABLE {s}.documents{x} (
                doc_id text PRIMARY KEY,
                seq bigint GENERATED ALWAYS AS IDENTITY,
                source text NOT NULL,
                title text NOT NULL,
                text text NOT NULL,
                metadata jsonb NOT NULL DEFAULT '{{}}',
                page_starts integer[] NOT NULL DEFAULT '{{}}',
                headings jsonb NOT NULL DEFAULT '[]')""",
            "CREATE INDEX ON {s}.documents{x} (source)",
            f"""CREATE TABLE {{s}}.chunks{{x}} (
                chunk_id bigint PRIMARY KEY,
                doc_id text NOT NULL REFERENCES {{s}}.documents{{x}} (doc_id) ON DELETE CASCADE,
                start_char integer NOT NULL,
                end_char integer NOT NULL,
                text text NOT NULL,
                page integer,
                heading text,
                embedding vector({dim}) NOT NULL,
                tsv tsvector GENERATED ALWAYS AS
                    (to_tsvector('{TS_CONFIG}'::regconfig, coalesce(heading, '') || ' ' || text)) STORED)""",
            "CREATE INDEX ON {s}.chunks{x} (doc_id)",
            f"""CREATE TABLE {{s}}.sentences{{x}} (
                sentence_id bigint PRIMARY KEY,
                chunk_id bigint NOT NULL REFERENCES {{s}}.chunks{{x}} (chunk_id) ON DELETE CASCADE,
                embedding vector({dim}) NOT NULL)""",
            "CREATE INDEX ON {s}.sentences{x} (chunk_id)",
        ]

    _SEARCH_INDEXES = (
        "CREATE INDEX chunks_embedding_hnsw{x} ON {s}.chunks{x} USING hnsw (embedding vector_ip_ops)",
        "CREATE INDEX chunks_tsv_gin{x} ON {s}.chunks{x} USING gin (tsv)",
        "CREATE INDEX sentences_embedding_hnsw{x} ON {s}.sentences{x} USING hnsw (embedding vector_ip_ops)",
    )

    #: The last step of a rebuild: the filled staging tables replace the live ones (a brief lock).
    _SWAP = (
        "DROP TABLE IF EXISTS {s}.sentences, {s}.chunks, {s}.documents, {s}.meta CASCADE",
        *(f"ALTER TABLE {{s}}.{t}{_STAGING} RENAME TO {t}" for t in _TABLES),
        f"ALTER INDEX {{s}}.chunks_embedding_hnsw{_STAGING} RENAME TO chunks_embedding_hnsw",
        f"ALTER INDEX {{s}}.chunks_tsv_gin{_STAGING} RENAME TO chunks_tsv_gin",
        f"ALTER INDEX {{s}}.sentences_embedding_hnsw{_STAGING} RENAME TO sentences_embedding_hnsw",
    )

    def _write_rows(
        self, conn, added: list[tuple[Document, list[Chunk], np.ndarray, SentenceVectors]], *, staging: bool = False
    ) -> None:
        from psycopg.types.json import Jsonb

        if not added:
            return
        with conn.cursor() as cur:
            cur.executemany(
                self._q(
                    "INSERT INTO {s}.documents{x} (doc_id, source, title, text, metadata, page_starts, headings) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    staging=staging,
                ),
                [
                    (d.doc_id, d.source, d.title, d.text, Jsonb(d.metadata), list(d.page_starts),
                     Jsonb([list(h) for h in d.headings]))
                    for d, _, _, _ in added
                ],
            )
            self._before_chunks()
            with cur.copy(
                self._q(
                    "COPY {s}.chunks{x} (chunk_id, doc_id, start_char, end_char, text, page, heading, embedding) "
                    "FROM STDIN WITH (FORMAT BINARY)",
                    staging=staging,
                )
            ) as copy:
                copy.set_types(["int8", "text", "int4", "int4", "text", "int4", "text", "vector"])
                for _, chunks, vecs, _ in added:
                    for c, v in zip(chunks, vecs):
                        copy.write_row((c.chunk_id, c.doc_id, c.start, c.end, c.text, c.page, c.heading, v))
            with cur.copy(
                self._q("COPY {s}.sentences{x} (sentence_id, chunk_id, embedding) FROM STDIN WITH (FORMAT BINARY)", staging=staging)
            ) as copy:
                copy.set_types(["int8", "int8", "vector"])
                for _, _, _, (svecs, sids) in added:
                    for sid, cid, v in zip(sids.tolist(), chunk_of(sids).tolist(), svecs):
                        copy.write_row((sid, cid, v))

    def _before_chunks(self) -> None:
        """Called inside the save transaction between the document and chunk inserts (a test hook)."""

    def save(self) -> None:
        """Apply every change since the last save in one transaction, and bump the generation.

        Raises:
            RagError: another process saved this index since it was loaded (run the command again).
        """
        from psycopg.types.json import Jsonb

        with self._lock:
            t0 = time.perf_counter()
            timings: dict[str, float] = {}
            conn = _connect(self.dsn)  # its own connection: readers keep theirs
            try:
                with conn.transaction():
                    state: dict[str, Any]
                    if self._fresh:
                        # Never reuse a generation number: readers compare it to notice a new index.
                        previous = 0
                        if conn.execute("SELECT to_regclass(%s)", (f'"{self.schema}".meta',)).fetchone()[0]:
                            row = conn.execute(
                                self._q("SELECT value FROM {s}.meta WHERE key = 'state' FOR UPDATE")
                            ).fetchone()
                            previous = int(((row[0] if row else None) or {}).get("generation", 0))
                        # Filled under other names, so readers keep using the live tables until the swap.
                        for stmt in self._ddl():
                            conn.execute(self._q(stmt, staging=True))
                        added = [self._added[d] for d in self.documents if d in self._added]
                        self._write_rows(conn, added, staging=True)
                        t_rows = time.perf_counter()
                        for stmt in self._SEARCH_INDEXES:  # built once over all rows: faster than row by row
                            conn.execute(self._q(stmt, staging=True))
                        timings["index_build_s"] = time.perf_counter() - t_rows
                        conn.execute(
                            self._q("INSERT INTO {s}.meta{x} VALUES ('schema_version', %s), ('settings', %s)", staging=True),
                            (Jsonb(PG_SCHEMA_VERSION), Jsonb(asdict(self.settings))),
                        )
                        gen = max(self.generation, previous) + 1
                        conn.execute(self._q("INSERT INTO {s}.meta{x} VALUES ('state', '{{}}')", staging=True))
                        for stmt in self._SWAP:
                            conn.execute(self._q(stmt))
                    else:
                        row = conn.execute(
                            self._q("SELECT value FROM {s}.meta WHERE key = 'state' FOR UPDATE")
                        ).fetchone()
                        stored = int(((row[0] if row else None) or {}).get("generation", 0))
                        if stored != self.generation:
                            raise RagError(
                                f"the index in schema {self.schema!r} was changed by another process "
                                f"(generation {stored}, loaded {self.generation}): run the command again"
                            )
                        if self._removed:
                            conn.execute(
                                self._q("DELETE FROM {s}.documents WHERE doc_id = ANY(%s)"), (sorted(self._removed),)
                            )
                        added = [self._added[d] for d in self.documents if d in self._added]
                        self._write_rows(conn, added)
                        gen = stored + 1
                    state = {
                        "generation": gen,
                        "next_chunk_id": self.next_chunk_id,
                        "n_chunks": len(self.chunks),
                        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                    conn.execute(self._q("UPDATE {s}.meta SET value = %s WHERE key = 'state'"), (Jsonb(state),))
            finally:
                conn.close()
            timings["total_s"] = time.perf_counter() - t0
            self.last_save_timings = timings
            self.generation = gen
            self._fresh = False
            self._added.clear()
            self._removed.clear()
            log.info("saved pgvector index in schema %s: generation %d, %d chunks", self.schema, gen, state["n_chunks"])

    # ----- search -----------------------------------------------------------------------------

    def search(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product search over the saved vectors (HNSW): (scores, chunk ids), -1 ids where fewer than k."""
        q = np.ascontiguousarray(np.atleast_2d(query_vectors), dtype=np.float32)
        k = max(1, int(k))
        scores = np.zeros((len(q), k), dtype=np.float32)
        ids = np.full((len(q), k), -1, dtype=np.int64)
        with self._read_lock:
            conn = self.connection()
            for i, v in enumerate(q):
                rows = conn.execute(
                    self._q("SELECT chunk_id, -(embedding <#> %s) FROM {s}.chunks ORDER BY embedding <#> %s LIMIT %s"),
                    (v, v, k),
                ).fetchall()
                for j, (cid, s) in enumerate(rows):
                    ids[i, j], scores[i, j] = cid, s
        return scores, ids

    def similarities(self, query_vector: np.ndarray, chunk_ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to each given saved chunk (vectors are unit length)."""
        if not chunk_ids:
            return {}
        with self._read_lock:
            rows = self.connection().execute(
                self._q("SELECT chunk_id, -(embedding <#> %s) FROM {s}.chunks WHERE chunk_id = ANY(%s)"),
                (np.asarray(query_vector, dtype=np.float32), [int(c) for c in chunk_ids]),
            ).fetchall()
        return {int(c): float(s) for c, s in rows}


# The dense, sentence and keyword rankings, fused by reciprocal rank, in one statement (as
# ``HybridRetriever``: a chunk's sentence rank is that of its best sentence among the nearest ones).
# Keyword query: the question's own lexemes (same text search config as the column) OR-ed together,
# so a passage matching some of the words is found, as with BM25 (plainto_tsquery would AND them).
_HYBRID_SQL = """
WITH params AS (
    SELECT (SELECT string_agg('''' || replace(replace(l, '\\', '\\\\'), '''', '''''') || '''', ' | ')
              FROM unnest(tsvector_to_array(to_tsvector('{ts}'::regconfig, %(question)s))) AS l)::tsquery AS tsq
),
dense AS (
    SELECT chunk_id, dist, row_number() OVER (ORDER BY dist, chunk_id) AS rnk
    FROM (SELECT c.chunk_id, c.embedding <#> %(qv)s::vector AS dist
          FROM {{s}}.chunks c ORDER BY c.embedding <#> %(qv)s::vector LIMIT %(n)s) d
),
sent AS (
    SELECT chunk_id, best, row_number() OVER (ORDER BY best, chunk_id) AS rnk
    FROM (SELECT chunk_id, min(dist) AS best
          FROM (SELECT s.chunk_id, s.embedding <#> %(qv)s::vector AS dist
                FROM {{s}}.sentences s WHERE %(sentences)s
                ORDER BY s.embedding <#> %(qv)s::vector LIMIT %(ns)s) x
          GROUP BY chunk_id) y
    ORDER BY rnk LIMIT %(n)s
),
kw AS (
    SELECT chunk_id, kscore, row_number() OVER (ORDER BY kscore DESC, chunk_id) AS rnk
    FROM (SELECT c.chunk_id, ts_rank_cd(c.tsv, (SELECT tsq FROM params), {norm}) AS kscore
          FROM {{s}}.chunks c WHERE c.tsv @@ (SELECT tsq FROM params)
          ORDER BY kscore DESC, c.chunk_id LIMIT %(n)s) k
),
fused AS (
    SELECT chunk_id,
           coalesce(1.0 / (%(rrf_k)s + dense.rnk), 0) + coalesce(1.0 / (%(rrf_k)s + kw.rnk), 0)
               + coalesce(1.0 / (%(rrf_k)s + sent.rnk), 0) AS rrf,
           kw.kscore
    FROM dense FULL OUTER JOIN kw USING (chunk_id) FULL OUTER JOIN sent USING (chunk_id)
)
SELECT c.chunk_id, c.doc_id, c.start_char, c.end_char, c.text, c.page, c.heading, d.source, d.title,
       f.rrf::float8, -(c.embedding <#> %(qv)s::vector)::float8 AS cosine, coalesce(f.kscore, 0)::float8,
       (SELECT -min(dist) FROM dense)::float8 AS best_dense,
       (SELECT max(kscore) FROM kw)::float8 AS best_kw,
       (SELECT -min(best) FROM sent)::float8 AS best_sentence
FROM fused f
JOIN {{s}}.chunks c USING (chunk_id)
JOIN {{s}}.documents d ON d.doc_id = c.doc_id
ORDER BY f.rrf DESC, cosine DESC, c.chunk_id
LIMIT %(k)s
"""

#: ``ts_rank_cd`` normalisation 32: the raw rank r maps to r / (r + 1), into [0, 1). Chunks have
#: similar lengths (the chunker caps them), so no length normalisation is added.
KEYWORD_NORMALIZATION = 32
#: Default keyword relevance floor on that score (see ``PgHybridRetriever``).
DEFAULT_MIN_KEYWORD_SCORE = 0.3


class PgHybridRetriever(FusedRetriever):
    """Dense (HNSW) + keyword (``ts_rank_cd``) retrieval fused by reciprocal rank in one SQL query.

    Scores in the returned passages: ``score`` is the fused RRF score; ``dense_score`` is the
    cosine similarity of the question to the passage (computed for every fused passage, also those
    found by keywords only); ``bm25_score`` holds the KEYWORD score, which is not BM25. It is
    ``ts_rank_cd(tsv, q, 32)``: the question's lexemes (PostgreSQL's English stemmer and stop words)
    are OR-ed into ``q``; with an OR query every occurrence of a question word in the passage is a
    cover worth 0.1, and normalisation 32 maps that sum r to r / (r + 1). So 1 occurrence scores
    0.09, 3 score 0.23, 5 score 0.33, 10 score 0.5. There is no inverse document frequency: a
    common word counts as much as a rare one, so it is weaker evidence than BM25.

    ``relevant`` is True when the best cosine reaches ``min_dense_score`` (as with FAISS), the best
    single sentence's cosine reaches ``min_sentence_score`` (as with FAISS), a card reaches
    ``min_card_score``, or the best keyword score reaches ``min_keyword_score`` (default 0.3: five or
    more occurrences of the question's words in one passage; an incidental match of one or two words
    stays below it).

    Args:
        store: A ``PgVectorStore``.
        embedder: The embedder the index was built with (anything with ``encode_query``).
        candidates: Candidates taken from each ranking before fusion (default 30).
        rrf_k: Reciprocal-rank-fusion constant (default 60).
        min_dense_score: Relevance floor on the best cosine similarity (default 0.25).
        min_keyword_score: A keyword score that counts as relevant on its own (default 0.3).
        min_card_score: Relevance floor on the cosine similarity to a returned document card (default
            0.18, as with FAISS).
        min_sentence_score: Relevance floor on the best single sentence's cosine similarity (default
            0.28, as with FAISS).
        sentence_ranking: Also rank chunks by their best-matching sentence (default True).
    """

    def __init__(
        self, store: PgVectorStore, embedder: Any, *, min_keyword_score: float = DEFAULT_MIN_KEYWORD_SCORE, **common: Any
    ) -> None:
        super().__init__(store, embedder, **common)
        self.min_keyword_score = min_keyword_score

    def query(self, question: str, query_vector: np.ndarray, k: int) -> RetrievalResult:
        """Run the fused query for a question and its (unit) vector."""
        from psycopg import sql

        if k < 1:
            raise ValueError("k must be at least 1")
        t0 = time.perf_counter()
        qv = np.ascontiguousarray(query_vector, dtype=np.float32)
        stmt = sql.SQL(_HYBRID_SQL.format(ts=TS_CONFIG, norm=KEYWORD_NORMALIZATION)).format(
            s=sql.Identifier(self.store.schema)
        )
        n = max(self.candidates, k)
        params = {
            "qv": qv, "question": question, "n": n, "rrf_k": self.rrf_k, "k": k,
            "sentences": self.sentence_ranking, "ns": n * self.SENTENCES_PER_CANDIDATE,
        }
        with self.store.read_lock:
            rows = self.store.connection().execute(stmt, params).fetchall()
        passages = [
            Passage(
                chunk=Chunk(r[0], r[1], r[2], r[3], r[4], r[5], r[6]),
                source=r[7],
                title=r[8],
                score=float(r[9]),
                dense_score=float(r[10]),
                bm25_score=float(r[11]),
            )
            for r in rows
        ]
        best_dense = float(rows[0][12] or 0.0) if rows else 0.0
        best_kw = float(rows[0][13] or 0.0) if rows else 0.0
        best_sentence = float(rows[0][14] or 0.0) if rows else 0.0
        best_card = max((p.dense_score for p in passages if p.chunk.is_card), default=0.0)
        relevant = bool(rows) and (
            best_dense >= self.min_dense_score
            or best_kw >= self.min_keyword_score
            or best_card >= self.min_card_score
            or best_sentence >= self.min_sentence_score
        )
        return RetrievalResult(
            passages=passages,
            relevant=relevant,
            best_dense=best_dense,
            best_bm25=best_kw,
            best_sentence=best_sentence,
            timings={"sql_s": time.perf_counter() - t0},
            query_vector=qv,
        )

    def _search(self, question: str, k: int) -> RetrievalResult:
        """Top-``k`` passages for ``question``, fused from the dense and keyword rankings."""
        t0 = time.perf_counter()
        qv = self.embedder.encode_query(question)
        t1 = time.perf_counter()
        result = self.query(question, qv, k)
        result.timings = {"embed_s": t1 - t0, **result.timings}
        return result

    def similarities(self, query_vector: np.ndarray, chunk_ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to each given chunk (vectors are unit length)."""
        return self.store.similarities(query_vector, chunk_ids)
