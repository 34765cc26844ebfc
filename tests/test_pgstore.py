"""rag/pgstore.py against a real PostgreSQL 18 + pgvector server (marker ``pg``).

Most tests use small fake vectors (dimension 16) so they run in milliseconds; the
tests marked ``models`` too index real files with the packaged MiniLM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import psycopg
import pytest

from rag.config import PROJECT_ROOT, Settings
from rag.errors import IndexFormatError, RagError
from rag.pgstore import PgHybridRetriever, PgVectorStore
from rag.retriever import content_query
from rag.store import IndexSettings
from rag.types import Chunk, Document

DIM = 16
SETTINGS = IndexSettings(embedder="fake", dim=DIM, max_tokens=256, chunk_tokens=160, chunk_overlap=32, chunking="sections-1")


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def basis(i: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A unit vector near axis ``i``."""
    v = np.zeros(DIM, dtype=np.float32)
    v[i % DIM] = 1.0
    if noise:
        v += np.random.default_rng(seed).normal(scale=noise, size=DIM).astype(np.float32)
    return unit(v)


def make_doc(
    name: str, paragraphs: list[str], first_id: int, heading: str | None = None
) -> tuple[Document, list[Chunk]]:
    text = "\n\n".join(paragraphs)
    doc = Document(doc_id=f"id-{name}", source=f"/docs/{name}", title=name.title(), text=text, metadata={"k": name})
    chunks, pos = [], 0
    for i, p in enumerate(paragraphs):
        chunks.append(Chunk(first_id + i, doc.doc_id, pos, pos + len(p), p, page=None, heading=heading))
        pos += len(p) + 2
    return doc, chunks


class FixedEmbedder:
    """Maps known questions to given vectors (stands in for MiniLM)."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def encode_query(self, text: str) -> np.ndarray:
        if text not in self.vectors:  # the question searched without a document's name (content_query)
            return next(v for q, v in self.vectors.items() if content_query(q) == text)
        return self.vectors[text]


@pytest.fixture()
def dsn(pg_server) -> str:
    return pg_server.dsn


def saved_state(dsn: str, schema: str) -> tuple[int, list[str], list[int]]:
    """(generation, doc ids, chunk ids) as committed in the database."""
    store = PgVectorStore.load(dsn, SETTINGS, schema=schema)
    try:
        return store.generation, sorted(store.documents), sorted(store.chunks)
    finally:
        store.close()


def two_docs(dsn: str, schema: str) -> PgVectorStore:
    store = PgVectorStore.create(dsn, SETTINGS, schema=schema)
    parks, pc = make_doc("parks", ["The council maintains 40 parks.", "Two more parks open by 2027."], 0, "Parks")
    bins, bc = make_doc("bins", ["General waste bins are collected every two weeks."], 2)
    store.add_document(parks, pc, np.stack([basis(0), basis(1)]))
    store.add_document(bins, bc, np.stack([basis(2)]))
    store.save()
    return store


# ----- round trip ---------------------------------------------------------------------------------


@pytest.mark.pg
def test_add_search_delete_update_round_trip(dsn, pg_schema):
    store = two_docs(dsn, pg_schema)
    assert store.generation == 1 and store.exists()

    loaded = PgVectorStore.load(dsn, SETTINGS, schema=pg_schema)
    assert list(loaded.documents) == ["id-parks", "id-bins"]  # insertion order kept
    assert loaded.documents == store.documents
    assert loaded.chunks == store.chunks
    assert loaded.next_chunk_id == 3
    for c in loaded.chunks.values():
        assert loaded.documents[c.doc_id].text[c.start : c.end] == c.text
    scores, ids = loaded.search(basis(1, 0.1)[None, :], 2)
    assert ids[0, 0] == 1 and scores[0, 0] > 0.9
    sims = loaded.similarities(basis(2), [0, 2])
    assert sims[2] == pytest.approx(1.0, abs=1e-5) and sims[0] == pytest.approx(0.0, abs=1e-5)

    # Update parks (new content = new doc id, new chunk ids), delete bins, in one save.
    loaded.remove_document("id-parks")
    parks2, pc2 = make_doc("parks", ["The council maintains 41 parks now."], loaded.next_chunk_id)
    loaded.add_document(parks2, pc2, np.stack([basis(3)]))
    assert loaded.remove_document("id-bins") == 1
    # Not saved yet: the database still holds generation 1.
    assert saved_state(dsn, pg_schema) == (1, ["id-bins", "id-parks"], [0, 1, 2])
    loaded.save()
    assert saved_state(dsn, pg_schema) == (2, ["id-parks"], [3])
    again = PgVectorStore.load(dsn, SETTINGS, schema=pg_schema)
    assert again.documents["id-parks"].text == "The council maintains 41 parks now."
    assert again.documents["id-parks"].metadata == {"k": "parks"}
    scores, ids = again.search(basis(1)[None, :], 5)
    assert [i for i in ids[0] if i >= 0] == [3]  # no stale vectors of removed chunks
    with pytest.raises(KeyError):
        again.remove_document("id-bins")
    with pytest.raises(ValueError, match="already in use"):
        again.add_document(*make_doc("x", ["Reused id."], 3), np.stack([basis(4)]))


@pytest.mark.pg
def test_rebuilds_replace_the_index_and_generations_keep_increasing(dsn, pg_schema):
    two_docs(dsn, pg_schema)
    for i in range(3):
        store = PgVectorStore.create(dsn, SETTINGS, schema=pg_schema)
        store.add_document(*make_doc(f"r{i}", [f"Rebuild number {i}."], 0), np.stack([basis(i)]))
        store.save()
        assert saved_state(dsn, pg_schema) == (2 + i, [f"id-r{i}"], [0])
    store = PgVectorStore.load(dsn, SETTINGS, schema=pg_schema)
    store.add_document(*make_doc("more", ["Added after the rebuilds."], store.next_chunk_id), np.stack([basis(9)]))
    store.save()
    assert saved_state(dsn, pg_schema) == (5, ["id-more", "id-r2"], [0, 1])
    assert store.search(basis(9)[None, :], 1)[1][0, 0] == 1
    with psycopg.connect(dsn, autocommit=True) as conn:  # no staging tables left behind
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (pg_schema,)).fetchall()
    assert sorted(t for (t,) in tables) == ["chunks", "documents", "meta", "sentences"]


@pytest.mark.pg
def test_a_second_writer_with_a_stale_view_is_refused(dsn, pg_schema):
    two_docs(dsn, pg_schema)
    a = PgVectorStore.load(dsn, SETTINGS, schema=pg_schema)
    b = PgVectorStore.load(dsn, SETTINGS, schema=pg_schema)
    a.remove_document("id-bins")
    a.save()
    b.remove_document("id-parks")
    with pytest.raises(RagError, match="changed by another process"):
        b.save()
    assert saved_state(dsn, pg_schema) == (2, ["id-parks"], [0, 1])
    assert b.stored_generation() == 2


# ----- hybrid retrieval ---------------------------------------------------------------------------


def keyword_corpus(dsn: str, schema: str) -> tuple[PgVectorStore, np.ndarray]:
    """40 filler passages close to the query vector and one far from it with the exact keyword."""
    rng = np.random.default_rng(1)
    q = basis(0)
    store = PgVectorStore.create(dsn, SETTINGS, schema=schema)
    paragraphs = [f"Filler paragraph {i} about regional growth and local services." for i in range(40)]
    paragraphs.append("The white paper sets twelve missions to level up every part of the country.")
    doc, chunks = make_doc("paper", paragraphs, 0)
    noise = np.zeros((41, DIM), dtype=np.float32)
    noise[:, 1 : DIM // 2] = rng.normal(scale=0.5, size=(41, DIM // 2 - 1))  # dims >= DIM/2 stay empty
    vecs = unit(q + noise)
    vecs[40] = unit(-q + 0.2 * noise[40])  # dense ranks it last
    store.add_document(doc, chunks, vecs)
    store.save()
    return store, q


@pytest.mark.pg
def test_hybrid_fusion_finds_an_exact_keyword_passage_that_dense_alone_ranks_low(dsn, pg_schema):
    store, q = keyword_corpus(dsn, pg_schema)
    question = "How many missions does the white paper set?"
    _, dense_ids = store.search(q[None, :], 41)
    assert list(dense_ids[0]).index(40) == 40  # dense alone: the very last

    result = PgHybridRetriever(store, FixedEmbedder({question: q}), candidates=10).run(question, k=4)
    ids = [p.chunk.chunk_id for p in result.passages]
    assert 40 in ids
    hit = result.passages[ids.index(40)]
    assert hit.bm25_score > 0 and hit.dense_score < 0  # its true cosine, although dense did not find it
    assert "twelve missions" in hit.text and hit.source == "/docs/paper" and hit.title == "Paper"
    assert result.passages == sorted(result.passages, key=lambda p: -p.score)
    assert result.query_vector is not None and result.relevant


@pytest.mark.pg
def test_relevance_floor_rejects_an_off_topic_question_and_keeps_on_topic_ones(dsn, pg_schema):
    store, q = keyword_corpus(dsn, pg_schema)
    off = "What is the capital of France?"
    incidental = "Which services does France run?"  # one corpus word ("services"), once per passage
    keyword_heavy = "Paper missions: white paper, twelve missions, level up the country"
    far = basis(DIM - 1)  # orthogonal to every passage: cosine 0
    emb = FixedEmbedder({off: far, incidental: far, keyword_heavy: far, "on topic": q})
    r = PgHybridRetriever(store, emb)

    res = r.run(off)
    assert not res.relevant and res.best_dense < 0.25 and res.best_bm25 == 0.0
    res = r.run(incidental)
    assert not res.relevant and 0 < res.best_bm25 < r.min_keyword_score
    res = r.run(keyword_heavy)  # dense says no, strong keyword evidence says yes
    assert res.best_dense < 0.25 and res.best_bm25 >= r.min_keyword_score and res.relevant
    assert 40 in [p.chunk.chunk_id for p in res.passages]
    res = r.run("on topic")
    assert res.relevant and res.best_dense >= 0.25


@pytest.mark.pg
@pytest.mark.parametrize(
    "question",
    [
        "What's the council's 'plan' \\ for C:\\dir and a&b|c !x (y) <-> *:AB?",
        "http://example.com/a?b=1 e-mail@x.org costs 12.5% -- ; DROP TABLE chunks",
        "What is it?",  # stop words only: no keyword query at all
        "",
    ],
)
def test_questions_with_quotes_operators_or_only_stop_words_are_searched_safely(dsn, pg_schema, question):
    store, q = keyword_corpus(dsn, pg_schema)
    res = PgHybridRetriever(store, FixedEmbedder({question: q})).run(question, k=3)
    assert len(res.passages) == 3  # the dense ranking still answers
    assert PgVectorStore.load(dsn, SETTINGS, schema=pg_schema).search(q[None, :], 1)[1][0, 0] >= 0


@pytest.mark.pg
def test_empty_index_returns_nothing_relevant(dsn, pg_schema):
    store = PgVectorStore.create(dsn, SETTINGS, schema=pg_schema)
    store.save()
    res = PgHybridRetriever(store, FixedEmbedder({"q": basis(0)})).run("q")
    assert res.passages == [] and not res.relevant


# ----- format and settings checks -----------------------------------------------------------------


@pytest.mark.pg
def test_schema_version_mismatch_is_refused_with_the_rebuild_command(dsn, pg_schema):
    two_docs(dsn, pg_schema)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"UPDATE \"{pg_schema}\".meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(IndexFormatError, match="schema version 99") as err:
        PgVectorStore.load(dsn, SETTINGS, schema=pg_schema)
    assert f"RAG_STORE=pgvector RAG_PG_SCHEMA={pg_schema} rag index PATH --rebuild" in str(err.value)


@pytest.mark.pg
def test_other_embedder_settings_or_no_index_are_refused(dsn, pg_schema):
    with pytest.raises(IndexFormatError, match="no pgvector index"):
        PgVectorStore.load(dsn, SETTINGS, schema=pg_schema)
    two_docs(dsn, pg_schema)
    other = IndexSettings(embedder="other", dim=DIM, max_tokens=256, chunk_tokens=100, chunk_overlap=32, chunking="sections-1")
    with pytest.raises(IndexFormatError, match="chunk_tokens: index has 160, settings ask for 100") as err:
        PgVectorStore.load(dsn, other, schema=pg_schema)
    assert "rag index PATH --rebuild" in str(err.value)


def test_pgvector_settings_and_their_errors():
    s = Settings.from_env({"RAG_STORE": "pgvector", "RAG_PG_DSN": "host=127.0.0.1", "RAG_MIN_KEYWORD_SCORE": "0.4"})
    assert (s.store, s.pg_dsn, s.pg_schema, s.min_keyword_score) == ("pgvector", "host=127.0.0.1", "rag", 0.4)
    assert Settings().store == "faiss" and Settings().pg_ef_search == 100
    assert Settings.from_env({"RAG_PG_EF_SEARCH": "200"}).pg_ef_search == 200
    with pytest.raises(ValueError, match="pg_ef_search"):
        Settings(pg_ef_search=0)
    with pytest.raises(ValueError, match="unknown store"):
        Settings(store="milvus")
    with pytest.raises(ValueError, match="invalid PostgreSQL schema"):
        PgVectorStore("host=127.0.0.1", SETTINGS, schema="x; drop table")
    from rag.storage import store_exists

    with pytest.raises(RagError, match="set RAG_PG_DSN"):
        store_exists(s.replace(pg_dsn=""))


def test_an_unreachable_server_gives_a_one_line_error():
    from eval.pgserver import free_port

    store = PgVectorStore(f"host=127.0.0.1 port={free_port()} user=postgres connect_timeout=5", SETTINGS)
    with pytest.raises(RagError, match="cannot connect to PostgreSQL") as err:
        store.exists()
    assert "\n" not in str(err.value) and "RAG_PG_DSN" in str(err.value)


# ----- crashes ------------------------------------------------------------------------------------


@pytest.mark.pg
@pytest.mark.parametrize("rebuild", [False, True], ids=["update", "rebuild"])
def test_an_exception_between_inserts_leaves_the_previous_state(dsn, pg_schema, monkeypatch, rebuild):
    two_docs(dsn, pg_schema)
    before = saved_state(dsn, pg_schema)
    store = (
        PgVectorStore.create(dsn, SETTINGS, schema=pg_schema)
        if rebuild
        else PgVectorStore.load(dsn, SETTINGS, schema=pg_schema)
    )
    if not rebuild:
        store.remove_document("id-bins")
    doc, chunks = make_doc("roads", ["Roads are resurfaced every ten years."], 10)
    store.add_document(doc, chunks, np.stack([basis(5)]))

    seen_meanwhile: list = []

    def boom():
        # Inside the open transaction (a rebuild fills staging tables): another thread's reads are
        # neither blocked nor shown the changes.
        import threading

        reader = threading.Thread(target=lambda: seen_meanwhile.append(store.search(basis(5)[None, :], 5)[1][0]))
        reader.start()
        reader.join(timeout=20)
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_before_chunks", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        store.save()
    assert saved_state(dsn, pg_schema) == before
    assert len(seen_meanwhile) == 1 and 10 not in seen_meanwhile[0] and 2 in seen_meanwhile[0]
    monkeypatch.undo()
    store.save()  # the same changes, saved for real this time
    expected_docs = ["id-roads"] if rebuild else ["id-parks", "id-roads"]
    gen, docs, _ = saved_state(dsn, pg_schema)
    assert docs == expected_docs and gen == before[0] + 1


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_pgstore import SETTINGS, basis, make_doc
    from rag.pgstore import PgVectorStore

    store = PgVectorStore.load({dsn!r}, SETTINGS, schema={schema!r})
    store.remove_document("id-parks")
    docs = [make_doc(f"d{{i}}", [f"Paragraph {{i}}."], 100 + i) for i in range(50)]
    for d, c in docs:
        store.add_document(d, c, np.stack([basis(i) for i in range(len(c))]))

    def wait_to_be_killed():
        open({marker!r}, "w").close()
        time.sleep(60)

    store._before_chunks = wait_to_be_killed
    store.save()
    """
)


@pytest.mark.pg
def test_a_writer_killed_mid_transaction_leaves_the_previous_state(dsn, pg_schema, tmp_path):
    two_docs(dsn, pg_schema)
    before = saved_state(dsn, pg_schema)
    marker = tmp_path / "inside-transaction"
    script = _KILLED_WRITER.format(tests=str(PROJECT_ROOT / "tests"), dsn=dsn, schema=pg_schema, marker=str(marker))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, f"the writer exited early: {proc.stderr.read()[-2000:]}"
            assert time.monotonic() < deadline, "the writer never reached the transaction"
            time.sleep(0.05)
        # Documents deleted and 50 inserted, not committed: the database still shows the old state.
        assert saved_state(dsn, pg_schema) == before
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert saved_state(dsn, pg_schema) == before
    # The server rolled the dead transaction back and released its locks: a new writer proceeds.
    store = PgVectorStore.load(dsn, SETTINGS, schema=pg_schema)
    store.remove_document("id-bins")
    store.save()
    assert saved_state(dsn, pg_schema)[:2] == (before[0] + 1, ["id-parks"])


# ----- with the real embedder ---------------------------------------------------------------------


@pytest.mark.pg
@pytest.mark.models
def test_indexer_and_retriever_on_pgvector_with_minilm(dsn, pg_schema, embedder, tmp_path):
    from rag.indexer import Indexer
    from rag.storage import load_store, make_retriever, store_exists, stored_generation

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "parks.txt").write_text("Parks policy.\n\nThe council maintains 40 parks and plans two more by 2027.")
    (docs / "bins.md").write_text("# Waste\n\nGeneral waste bins are collected every two weeks.")
    settings = Settings().replace(store="pgvector", pg_dsn=dsn, pg_schema=pg_schema, index_dir=tmp_path / "unused")
    assert not store_exists(settings)
    indexer = Indexer(settings, embedder)
    store, report = indexer.run([docs], progress=False)
    assert len(report.added) == 2 and store.kind == "pgvector" and store_exists(settings)
    assert not (tmp_path / "unused").exists()
    gen = stored_generation(settings)

    probe = load_store(settings.replace(pg_ef_search=37), embedder)  # RAG_PG_EF_SEARCH reaches the store
    assert probe.ef_search == 37
    probe.close()
    store = load_store(settings, embedder)
    retriever = make_retriever(store, embedder, settings)
    assert isinstance(retriever, PgHybridRetriever)
    res = retriever.run("How often are bins collected?", k=2)
    assert res.relevant and "every two weeks" in res.passages[0].text
    assert res.passages[0].dense_score == pytest.approx(
        float(embedder.encode(["How often are bins collected?"])[0] @ embedder.encode([res.passages[0].chunk.embed_text])[0]),
        abs=1e-3,
    )
    sims = retriever.similarities(res.query_vector, [p.chunk.chunk_id for p in res.passages])
    assert sims == {p.chunk.chunk_id: pytest.approx(p.dense_score, abs=1e-5) for p in res.passages}
    assert not retriever.run("Who painted the Mona Lisa?").relevant

    _, report = indexer.run([docs], progress=False)  # unchanged: nothing written
    assert report.unchanged and not report.changed and stored_generation(settings) == gen
    (docs / "bins.md").write_text("# Waste\n\nGeneral waste bins are collected every week from May.")
    (docs / "parks.txt").unlink()
    store, report = indexer.run([docs], progress=False)
    assert len(report.updated) == 1 and len(report.removed) == 1 and stored_generation(settings) == gen + 1
    res = make_retriever(load_store(settings, embedder), embedder, settings).run("How often are bins collected?", k=4)
    bins = [p.text for p in res.passages if "bins" in p.text]
    assert len(bins) == 1 and "every week from May" in bins[0]  # the old version's chunk is gone
    assert all("parks" not in p.text for p in res.passages)


@pytest.mark.pg
def test_the_fused_query_can_use_the_hnsw_and_gin_indexes(dsn, pg_schema):
    from psycopg import sql

    from rag.pgstore import _HYBRID_SQL, KEYWORD_NORMALIZATION, TS_CONFIG

    keyword_corpus(dsn, pg_schema)
    stmt = sql.SQL("EXPLAIN " + _HYBRID_SQL.format(ts=TS_CONFIG, norm=KEYWORD_NORMALIZATION)).format(
        s=sql.Identifier(pg_schema)
    )
    params = {"qv": basis(0), "question": "twelve missions", "n": 30, "rrf_k": 60, "k": 4, "sentences": True, "ns": 240}
    with psycopg.connect(dsn, autocommit=True) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        conn.execute("SET enable_seqscan = off")  # 41 rows: the planner would scan; can it use the indexes?
        plan = "\n".join(r[0] for r in conn.execute(stmt, params).fetchall())
    assert "chunks_embedding_hnsw" in plan and "chunks_tsv_gin" in plan and "sentences_embedding_hnsw" in plan, plan


@pytest.mark.pg
def test_a_command_runs_against_a_throw_away_server_that_is_gone_afterwards(tmp_path):
    from eval.pgserver import main

    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent("""
        import os, sys, psycopg
        assert os.environ["RAG_STORE"] == "pgvector"
        with psycopg.connect(os.environ["RAG_PG_DSN"]) as conn:
            conn.execute("select '[1,2,3]'::vector")
        print(os.environ["RAG_PG_DSN"])
        sys.exit(3)
    """))
    out = tmp_path / "out.txt"
    code = main(["sh", "-c", f'"{sys.executable}" "{probe}" > "{out}"'])
    assert code == 3  # the command's own exit status
    dsn = out.read_text().strip()
    assert "host=127.0.0.1" in dsn
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=3)


def test_the_server_runner_without_a_command_prints_its_usage(capsys):
    from eval.pgserver import main

    assert main([]) == 2 and "usage" in capsys.readouterr().err


@pytest.mark.pg
def test_pgvector_ranks_by_the_best_sentence_too_and_drops_a_chunks_sentences_with_it(dsn, pg_schema, embedder, tmp_path):
    from fakes import write_one_sentence_answer_corpus

    from rag.indexer import Indexer
    from rag.sentences import chunk_sentences
    from rag.storage import load_store, make_retriever

    docs, question = write_one_sentence_answer_corpus(tmp_path / "docs")
    settings = Settings().replace(store="pgvector", pg_dsn=dsn, pg_schema=pg_schema, index_dir=tmp_path / "unused")
    store, _ = Indexer(settings, embedder).run([docs], progress=False)
    store = load_store(settings, embedder)

    def sentence_rows() -> set[int]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return {c for (c,) in conn.execute(f'SELECT chunk_id FROM "{pg_schema}".sentences').fetchall()}

    assert sentence_rows() == {c.chunk_id for c in store.chunks.values() if chunk_sentences(c)}

    def rank(on: bool) -> int:
        sources = [p.source for p in make_retriever(store, embedder, settings.replace(sentence_ranking=on)).run(question, k=7).passages]
        return next(i for i, s in enumerate(sources) if s.endswith("economy.txt"))

    on, off = rank(True), rank(False)
    assert on < off, (on, off)

    (docs / "economy.txt").unlink()
    Indexer(settings, embedder).run([docs], progress=False)
    kept = {c.chunk_id for c in load_store(settings, embedder).chunks.values()}
    assert sentence_rows() and sentence_rows() <= kept  # the removed file's sentences went with its chunks


@pytest.mark.pg
def test_pgvector_counts_a_question_paraphrasing_one_sentence_as_relevant_as_faiss_does(dsn, pg_schema, embedder, tmp_path):
    from fakes import write_paraphrase_corpus
    from rag.indexer import Indexer
    from rag.storage import make_retriever

    docs = write_paraphrase_corpus(tmp_path / "docs")
    results = {}
    for kind in ("faiss", "pgvector"):
        settings = Settings().replace(store=kind, pg_dsn=dsn, pg_schema=pg_schema, index_dir=tmp_path / "idx")
        store, _ = Indexer(settings, embedder).run([docs], progress=False)
        results[kind] = make_retriever(store, embedder, settings).run("What does joint working require?")
        if kind == "pgvector":
            store.close()
    pg, faiss = results["pgvector"], results["faiss"]
    assert pg.best_sentence == pytest.approx(faiss.best_sentence, abs=1e-3)
    assert pg.best_dense < Settings().min_dense_score <= Settings().min_sentence_score <= pg.best_sentence and pg.relevant
