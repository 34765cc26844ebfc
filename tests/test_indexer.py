"""The indexer on PDFs: page numbers and headings reach the chunks; a scanned page is reported.

The embedder is replaced by a small stand-in (words as tokens, hashed word counts as vectors): these
tests check what the indexer records, not what the model makes of it.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from conftest import WHITE_PAPER_SECTIONS, white_paper_pages, write_pdf
from rag.config import Settings
from rag.indexer import Indexer
from rag.store import IndexStore


class WordEmbedder:
    """Stands in for ``rag.embedder.Embedder``: same attributes, no model."""

    dim = 64
    max_tokens = 256

    def tokenizer(self, text, add_special_tokens=False, truncation=False, return_offsets_mapping=False):
        spans = [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]
        out = {"input_ids": list(range(len(spans)))}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out

    def encode(self, texts, *, progress=False):
        vecs = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                vecs[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        return vecs / np.where(norms == 0, 1, norms)


def _indexer(tmp_path) -> Indexer:
    return Indexer(Settings().replace(index_dir=tmp_path / "index"), WordEmbedder())


def test_a_printed_pdf_is_indexed_with_the_page_and_heading_of_every_chunk(tmp_path):
    pages = white_paper_pages()
    pdf = write_pdf(tmp_path / "white-paper.pdf", pages)
    store, report = _indexer(tmp_path).run([pdf], progress=False)
    assert report.added == [str(pdf.resolve())] and not report.skipped and not report.warnings
    chunks = list(store.chunks.values())
    assert len(chunks) > 20
    # A line from the middle of page 3 is in chunks that say page 3.
    phrase = next(text for text, _ in pages[2][20:] if len(text) > 50)
    holding = [c for c in chunks if phrase in c.text]
    assert holding and all(c.page == 3 for c in holding), [(c.page, c.text[:60]) for c in holding]
    # Every page's middle line is found on that page, and every chunk's page is where it starts.
    doc = next(iter(store.documents.values()))
    for number, page in enumerate(pages, 1):
        line = page[len(page) // 2][0]
        assert any(line in c.text and c.page == number for c in chunks), (number, line)
    assert all(c.page == doc.page_at(c.start) for c in chunks)
    # Headings were found, and the chunks of a section carry its heading.
    assert {text for _, text in doc.headings} >= set(WHITE_PAPER_SECTIONS)
    after = next(text for text, _ in pages[next(i for i, p in enumerate(pages) if p[0][0] == "Next Steps")][1:3])
    assert any(after in c.text and c.heading == "Next Steps" for c in chunks)
    # What was saved reads back the same.
    reloaded = IndexStore.load(tmp_path / "index")
    assert sorted((c.chunk_id, c.page, c.heading) for c in reloaded.chunks.values()) == sorted(
        (c.chunk_id, c.page, c.heading) for c in chunks
    )


def test_a_scanned_page_is_reported_and_the_other_pages_are_indexed(tmp_path):
    pages = white_paper_pages()[:3]
    pdf = write_pdf(tmp_path / "part-scanned.pdf", [pages[0], None, pages[1], pages[2]])
    store, report = _indexer(tmp_path).run([pdf], progress=False)
    message = "page 2 has no text layer (scanned?); OCR it to index it"
    assert report.added == [str(pdf.resolve())]
    assert report.warnings == [(str(pdf), message)]
    assert report.ok  # a warning, not a failure: the rest of the file is in the index
    assert f"warning   {pdf}: {message}" in report.summary()
    assert "1 warning;" in report.summary().splitlines()[-1]
    chunks = list(store.chunks.values())
    assert {c.page for c in chunks} == {1, 3, 4}
    assert any(pages[1][10][0] in c.text and c.page == 3 for c in chunks)
    doc = next(iter(store.documents.values()))
    assert doc.warnings == (message,)
    assert IndexStore.load(tmp_path / "index").documents[doc.doc_id].warnings == (message,)


def test_re_indexing_an_unchanged_pdf_reports_its_scanned_page_again(tmp_path):
    pdf = write_pdf(tmp_path / "scan.pdf", ["Parks open at dawn.", None])
    indexer = _indexer(tmp_path)
    indexer.run([pdf], progress=False)
    _, report = indexer.run([pdf], progress=False)
    assert report.unchanged == [str(pdf.resolve())]
    assert report.warnings == [(str(pdf), "page 2 has no text layer (scanned?); OCR it to index it")]


def test_a_file_moved_to_another_folder_is_reindexed_there_when_the_old_place_is_pruned(tmp_path):
    text = "Bus fares\n\nSingle bus fares stay capped at two pounds until the end of the year."
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    new_dir.mkdir()
    (old_dir / "fares.txt").write_text(text, encoding="utf-8")
    indexer = _indexer(tmp_path)
    store, _ = indexer.run([old_dir], progress=False)
    # The same text now also sits in another folder; indexing only that folder with --prune moves it.
    (new_dir / "fares.txt").write_text(text, encoding="utf-8")
    store, report = indexer.run([new_dir], prune=True, progress=False, store=store)
    assert [s for s, _ in report.skipped] == []
    assert report.removed == [str((old_dir / "fares.txt").resolve())]
    assert report.added == [str((new_dir / "fares.txt").resolve())]
    assert [d.source for d in IndexStore.load(tmp_path / "index").documents.values()] == report.added
    # Without prune, a copy under another name is still refused as a duplicate.
    (old_dir / "copy.txt").write_text(text, encoding="utf-8")
    _, again = indexer.run([old_dir], progress=False, store=store)
    assert again.skipped and "duplicate of" in again.skipped[0][1]
