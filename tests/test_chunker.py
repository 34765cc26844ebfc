from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ARTICLE, WHITE_PAPER
from rag.loaders import load_document


def _check(doc_text, spans, chunker):
    for s, e in spans:
        assert 0 <= s < e <= len(doc_text)
        piece = doc_text[s:e]
        assert piece.strip() == piece or not piece.strip()
        assert chunker.count_tokens(piece) + 2 <= chunker.config.max_tokens


def test_chunk_offsets_round_trip_on_the_article(chunker):
    doc = load_document(ARTICLE)
    chunks = chunker.run(doc)
    assert len(chunks) >= 4
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.doc_id == doc.doc_id


def test_no_chunk_exceeds_the_embedder_limit_on_the_white_paper(chunker, embedder):
    doc = load_document(WHITE_PAPER)
    chunks = chunker.run(doc)
    assert len(chunks) > 20
    for c in chunks:
        n = len(embedder.tokenizer(c.text)["input_ids"])  # with [CLS] and [SEP]
        assert n <= embedder.max_tokens, (n, c.text[:80])
        assert doc.text[c.start : c.end] == c.text


def test_chunks_cover_the_whole_text_with_overlap(chunker):
    doc = load_document(ARTICLE)
    chunks = chunker.run(doc)
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    words = [i for i, ch in enumerate(doc.text) if not ch.isspace()]
    assert all(i in covered for i in words)
    # A paragraph longer than a chunk is cut into overlapping pieces (the White Paper has such paragraphs).
    paper = chunker.run(load_document(WHITE_PAPER))
    assert any(b.start < a.end for a, b in zip(paper, paper[1:])), "neighbouring chunks of a long paragraph should overlap"


def test_a_giant_unbroken_token_run_is_cut_under_the_limit(chunker):
    text = "x" * 5000 + " tail"
    spans = chunker.split_text(text)
    _check(text, spans, chunker)


def test_chunks_record_their_nearest_heading(chunker, tmp_path):
    p = tmp_path / "h.md"
    p.write_text("# Intro\n\n" + "Intro words. " * 80 + "\n\n# Money\n\n" + "Money words. " * 80)
    doc = load_document(p)
    chunks = chunker.run(doc)
    assert chunks[0].heading == "Intro"
    assert chunks[-1].heading == "Money"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=3000))
def test_offsets_round_trip_on_arbitrary_text(chunker, text):
    spans = chunker.split_text(text)
    _check(text, spans, chunker)
    if text.strip():
        assert spans, "non-blank text must give at least one chunk"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["Housing.", "The fund is £5m.", "\n\n", "\n", " ", "Councils bid; some win.", "ü"]), max_size=400))
def test_offsets_round_trip_on_repetitive_text(chunker, parts):
    text = "".join(parts)
    _check(text, chunker.split_text(text), chunker)


def test_the_document_card_is_a_chunk_of_its_own_and_offsets_still_round_trip():
    from rag.chunker import Chunker, ChunkerConfig
    from rag.loaders import document_card
    from rag.types import Document

    card = document_card("Bus fares", {"author": "Jane Doe", "date": "2024-05-01"})
    body = "\n\n".join(f"Paragraph {i} says that single bus fares stay capped at two pounds." for i in range(30))
    text = f"{card}\n\n{body}"
    doc = Document("d", "/x.txt", "Bus fares", text)
    chunks = Chunker(lambda t: len(t.split()), ChunkerConfig(40, 8, 256)).run(doc)
    assert chunks[0].text == card and chunks[0].is_card and chunks[0].start == 0
    assert all(not c.is_card and "About this document" not in c.text for c in chunks[1:])
    assert len(chunks) > 2 and all(text[c.start : c.end] == c.text for c in chunks)


def _doc_with_headings():
    from rag.types import Document

    parts = [
        ("Levelling Up Missions", "Mission One: by 2030 pay will have risen. " * 6),
        ("Spread opportunities", "Mission Five: by 2030 more children will read well. " * 6),
        ("Next Steps", "Levelling up is a long-term endeavour. " * 6),
    ]
    text, headings = "", []
    for heading, body in parts:
        headings.append((len(text), heading))
        text += f"{heading}\n\n{body.strip()}\n\n"
    return Document("d", "/x.txt", "Plan", text.rstrip(), headings=tuple(headings))


def test_no_chunk_runs_across_a_heading_and_each_sits_under_its_own():
    from rag.chunker import Chunker, ChunkerConfig

    doc = _doc_with_headings()
    chunks = Chunker(lambda t: len(t.split()), ChunkerConfig(40, 8, 256)).run(doc)
    starts = [off for off, _ in doc.headings]
    for c in chunks:
        assert not any(c.start < s < c.end for s in starts), c.text
        assert doc.text[c.start : c.end] == c.text
    assert {c.heading for c in chunks} == {h for _, h in doc.headings}
    assert all("Mission Five" not in c.text for c in chunks if c.heading == "Levelling Up Missions")


def test_a_heading_with_nothing_under_it_joins_the_next_section():
    from rag.chunker import sections
    from rag.types import Document

    text = "Policy paper\n\nThe Plan\n\n" + "Body text that says something. " * 20
    doc = Document("d", "/x.txt", "Plan", text, headings=((0, "Policy paper"), (14, "The Plan")))
    assert sections(doc) == [(0, len(text))]


def test_a_chunk_is_embedded_under_its_heading():
    from rag.types import Chunk

    assert Chunk(1, "d", 0, 10, "By 2030, broadband everywhere.", heading="Digital connectivity").embed_text == (
        "Digital connectivity\nBy 2030, broadband everywhere."
    )
    assert Chunk(1, "d", 0, 10, "Digital connectivity\nBy 2030.", heading="Digital connectivity").embed_text == (
        "Digital connectivity\nBy 2030."
    )
    assert Chunk(1, "d", 0, 10, "No heading here.").embed_text == "No heading here."
