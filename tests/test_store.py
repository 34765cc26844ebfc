from __future__ import annotations

import json

import numpy as np
import pytest

from rag.config import Settings
from rag.errors import IndexFormatError
from rag.indexer import Indexer
from rag.store import MANIFEST, IndexSettings, IndexStore


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings().replace(index_dir=tmp_path / "idx")


@pytest.fixture()
def indexer(settings, embedder) -> Indexer:
    return Indexer(settings, embedder)


@pytest.fixture()
def docs(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "parks.txt").write_text("Parks policy.\n\nThe council maintains 40 parks and plans two more by 2027.")
    (d / "bins.md").write_text("# Waste\n\nGeneral waste bins are collected every two weeks.")
    return d


def _ids(store, name):
    return [c for c in store.chunks.values() if store.documents[c.doc_id].source.endswith(name)]


def test_index_round_trip_keeps_documents_chunks_and_vectors(indexer, settings, docs):
    store, report = indexer.run([docs], progress=False)
    assert sorted(p.rsplit("/", 1)[-1] for p in report.added) == ["bins.md", "parks.txt"]
    loaded = IndexStore.load(settings.index_dir, store.settings)
    assert loaded.documents.keys() == store.documents.keys()
    assert loaded.chunks == store.chunks
    vecs, ids = loaded.vectors()
    assert vecs.shape == (len(store.chunks), 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    for c in loaded.chunks.values():
        assert loaded.documents[c.doc_id].text[c.start : c.end] == c.text


def test_reindexing_unchanged_files_costs_nothing(indexer, settings, docs):
    indexer.run([docs], progress=False)
    gen = json.loads((settings.index_dir / MANIFEST).read_text())["generation"]
    _, report = indexer.run([docs], progress=False)
    assert len(report.unchanged) == 2 and not report.changed and report.chunks_added == 0
    assert json.loads((settings.index_dir / MANIFEST).read_text())["generation"] == gen


def test_changed_file_replaces_its_old_vectors(indexer, settings, docs):
    store, _ = indexer.run([docs], progress=False)
    old_ids = {c.chunk_id for c in _ids(store, "parks.txt")}
    (docs / "parks.txt").write_text("Parks policy.\n\nThe council now maintains 45 parks.")
    store, report = indexer.run([docs], progress=False)
    assert [p.rsplit("/", 1)[-1] for p in report.updated] == ["parks.txt"]
    loaded = IndexStore.load(settings.index_dir)
    texts = " ".join(c.text for c in _ids(loaded, "parks.txt"))
    assert "45 parks" in texts and "40 parks" not in texts
    assert not old_ids & set(loaded.chunks)
    assert loaded.index.ntotal == len(loaded.chunks)


def test_deleted_file_is_removed_with_no_stale_vectors(indexer, settings, docs, embedder):
    indexer.run([docs], progress=False)
    (docs / "bins.md").unlink()
    _, report = indexer.run([docs], progress=False)
    assert [p.rsplit("/", 1)[-1] for p in report.removed] == ["bins.md"]
    loaded = IndexStore.load(settings.index_dir)
    assert len(loaded.documents) == 1
    assert loaded.index.ntotal == len(loaded.chunks)
    q = embedder.encode_query("When are waste bins collected?")
    _, ids = loaded.search(q[None, :], 10)
    assert set(int(i) for i in ids[0] if i >= 0) <= set(loaded.chunks)


def test_remove_by_source_and_unknown_document_error(indexer, settings, docs):
    store, _ = indexer.run([docs], progress=False)
    removed = indexer.remove(store, [str(docs / "parks.txt")])
    assert removed and len(IndexStore.load(settings.index_dir).documents) == 1
    from rag.errors import RagError

    with pytest.raises(RagError, match="no indexed document"):
        indexer.remove(store, ["nope"])


def test_bad_files_are_skipped_and_the_rest_indexed(indexer, docs):
    (docs / "empty.txt").write_text("")
    (docs / "copy.txt").write_text((docs / "parks.txt").read_text())
    _, report = indexer.run([docs], progress=False)
    reasons = dict((p.rsplit("/", 1)[-1], why) for p, why in report.skipped)
    assert "empty" in reasons["empty.txt"]
    duplicates = [name for name, why in reasons.items() if "duplicate" in why]
    assert len(duplicates) == 1 and duplicates[0] in ("copy.txt", "parks.txt")
    assert len(report.added) == 2


@pytest.mark.parametrize("role", ["vectors", "sentences"])
def test_a_corrupted_or_missing_vector_file_is_detected(indexer, settings, docs, role):
    indexer.run([docs], progress=False)
    m = json.loads((settings.index_dir / MANIFEST).read_text())
    vec = settings.index_dir / m["files"][role]["name"]
    data = bytearray(vec.read_bytes())
    data[len(data) // 2] ^= 0xFF
    vec.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="corrupt"):
        IndexStore.load(settings.index_dir)
    vec.unlink()
    with pytest.raises(IndexFormatError, match="missing"):
        IndexStore.load(settings.index_dir)


def test_truncated_chunk_table_is_detected(indexer, settings, docs):
    indexer.run([docs], progress=False)
    m = json.loads((settings.index_dir / MANIFEST).read_text())
    chunks = settings.index_dir / m["files"]["chunks"]["name"]
    chunks.write_bytes(chunks.read_bytes()[:-10])
    with pytest.raises(IndexFormatError, match="truncated"):
        IndexStore.load(settings.index_dir)


def test_settings_or_format_mismatch_says_how_to_rebuild(indexer, settings, docs):
    store, _ = indexer.run([docs], progress=False)
    other = IndexSettings(**{**store.settings.__dict__, "chunk_tokens": 99})
    with pytest.raises(IndexFormatError, match="--rebuild"):
        IndexStore.load(settings.index_dir, other)
    mpath = settings.index_dir / MANIFEST
    m = json.loads(mpath.read_text())
    m["format_version"] = 999
    mpath.write_text(json.dumps(m))
    with pytest.raises(IndexFormatError, match="format version"):
        IndexStore.load(settings.index_dir)


def test_missing_index_gives_a_clear_error(tmp_path):
    with pytest.raises(IndexFormatError, match="rag index"):
        IndexStore.load(tmp_path / "nothing")


def test_every_chunk_sentence_is_stored_with_its_chunk_and_found_by_sentence_search(indexer, settings, docs, embedder):
    from rag.sentences import chunk_of, chunk_sentences

    store, _ = indexer.run([docs], progress=False)
    loaded = IndexStore.load(settings.index_dir)
    expected = sum(len(chunk_sentences(c)) for c in loaded.chunks.values())
    assert expected > 0 and loaded.sentence_index.ntotal == expected
    assert set(chunk_of(loaded.sentence_ids()).tolist()) <= set(loaded.chunks)
    q = embedder.encode_query("How often are general waste bins collected?")
    scores, ids = loaded.search_sentences(q[None, :], 3)
    best = loaded.chunks[int(chunk_of(ids[0][:1])[0])]
    assert "collected every two weeks" in best.text and scores[0][0] >= scores[0][-1]


def test_a_removed_or_changed_document_leaves_no_sentence_vectors(indexer, settings, docs):
    from rag.sentences import chunk_of

    indexer.run([docs], progress=False)
    (docs / "bins.md").unlink()
    (docs / "parks.txt").write_text("Parks policy.\n\nThe council now maintains 45 parks across the city.")
    indexer.run([docs], progress=False)
    loaded = IndexStore.load(settings.index_dir)
    assert len(loaded.documents) == 1
    owners = set(chunk_of(loaded.sentence_ids()).tolist())
    assert owners and owners <= set(loaded.chunks)
    texts = [loaded.chunks[c].text for c in owners]
    assert any("45 parks" in t for t in texts) and not any("40 parks" in t or "bins" in t for t in texts)


def test_sentence_vectors_of_a_chunk_not_being_added_are_refused(settings, embedder):
    from rag.sentences import sentence_ids
    from rag.types import Chunk, Document

    store = IndexStore.create(settings.index_dir, IndexSettings("e", 4, 256, 160, 32, "sections-1"))
    doc = Document(doc_id="d1", source="d1.txt", title="d1", text="One two three four five.")
    chunk = Chunk(chunk_id=0, doc_id="d1", start=0, end=len(doc.text), text=doc.text)
    vec = np.ones((1, 4), dtype=np.float32) / 2
    with pytest.raises(ValueError, match="sentence ids"):
        store.add_document(doc, [chunk], vec, (vec, sentence_ids(7, 1)))
    assert not store.documents and store.sentence_index.ntotal == 0
    store.add_document(doc, [chunk], vec, (vec, sentence_ids(0, 1)))
    assert store.sentence_index.ntotal == 1
