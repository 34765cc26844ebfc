"""The context builder: whole corpus, windows (with cards and extra passages), or top-k passages."""

from __future__ import annotations

import pytest

from fakes import FakeStore, ScriptedModel
from rag.context import ContextBuilder
from rag.types import Chunk, Document, Passage

CARD = 'About this document: "{title}", a report published by the council.'


def _store(docs: dict[str, list[str]]) -> FakeStore:
    """One document per title, each with a card chunk and one chunk per paragraph (a heading each)."""
    store = FakeStore()
    cid = 0
    for title, paragraphs in docs.items():
        card = CARD.format(title=title)
        text = card + "\n\n" + "\n\n".join(paragraphs)
        doc_id = title.lower().replace(" ", "-")
        store.documents[doc_id] = Document(doc_id, f"/docs/{doc_id}.txt", title, text)
        store.chunks[cid] = Chunk(cid, doc_id, 0, len(card), card)
        cid += 1
        pos = len(card) + 2
        for i, p in enumerate(paragraphs):
            store.chunks[cid] = Chunk(cid, doc_id, pos, pos + len(p), p, heading=f"Section {i // 2}")
            cid += 1
            pos += len(p) + 2
    return store


def _ranked(store: FakeStore, ids: list[int]) -> list[Passage]:
    out = []
    for r, i in enumerate(ids, 1):
        c = store.chunks[i]
        d = store.documents[c.doc_id]
        out.append(Passage(c, d.source, d.title, 1.0 / r, dense_score=0.5))
    return out


def _para(word: str, n: int = 30) -> str:
    return " ".join([word] * n) + "."


@pytest.fixture()
def two_docs() -> FakeStore:
    return _store({"Article": [_para("pools"), _para("leisure")], "White Paper": [_para(f"w{i}") for i in range(8)]})


def test_a_corpus_that_fits_is_one_whole_corpus_window(two_docs):
    builder = ContextBuilder(ScriptedModel(""), whole_corpus_tokens=10_000)
    windows = builder.windows(two_docs)
    assert [w.name for w in windows] == ["whole corpus"]
    assert builder.whole_corpus(two_docs) is not None
    ctx = builder.run("What about pools?", two_docs, _ranked(two_docs, [1]))
    assert ctx.whole_corpus and len(ctx.passages) == len(two_docs.chunks) and ctx.extra == 0


def test_a_larger_corpus_is_cut_into_windows_of_one_document_each_opening_with_its_card(two_docs):
    builder = ContextBuilder(ScriptedModel(""), whole_corpus_tokens=50, window_tokens=120)
    windows = builder.windows(two_docs)
    assert builder.whole_corpus(two_docs) is None
    assert len(windows) > 2
    for w in windows:
        assert w.passages[0].chunk.is_card
        assert len({p.chunk.doc_id for p in w.passages}) == 1
        body = [p.chunk.start for p in w.passages[1:]]
        assert body == sorted(body)
        assert builder.backend.count_tokens(w.context) <= 120 + 20
    # Every chunk is in some window.
    assert set().union(*(w.chunk_ids for w in windows)) == set(two_docs.chunks)


def test_the_window_with_the_best_ranked_hits_is_the_prompt_head_and_other_hits_follow_it(two_docs):
    model = ScriptedModel("")
    builder = ContextBuilder(model, whole_corpus_tokens=50, window_tokens=120, extra_passages=1)
    ranked = _ranked(two_docs, [9, 10, 2, 4])  # two White Paper chunks first, then the article
    ctx = builder.run("What does w6 say?", two_docs, ranked, k=4)
    assert not ctx.whole_corpus and ctx.window and ctx.window.startswith("White Paper")
    head_ids = [p.chunk.chunk_id for p in ctx.passages[: len(ctx.passages) - ctx.extra]]
    assert 9 in head_ids and ctx.extra == 1
    # The extra passage is the best-ranked one outside the window, numbered after the window's.
    n = len(ctx.passages)
    assert ctx.passages[-1].chunk.chunk_id not in head_ids
    assert f"[{n}]" in ctx.prompt.tail and ctx.prompt.tail.startswith("More passages:")
    assert ctx.prompt.tail.rstrip().endswith("with citations.")
    assert f"[{n}]" not in ctx.prompt.context


def test_by_default_the_tail_holds_only_the_question(two_docs):
    builder = ContextBuilder(ScriptedModel(""), whole_corpus_tokens=50, window_tokens=120)
    ctx = builder.run("What does w6 say?", two_docs, _ranked(two_docs, [9, 10, 2, 4]), k=4)
    assert ctx.extra == 0 and ctx.prompt.tail.startswith("Question: What does w6 say?")
    assert len(ctx.passages) == len(builder.pick(builder.windows(two_docs), _ranked(two_docs, [9, 10, 2, 4])).passages)


def test_a_question_about_a_document_picks_a_window_of_that_document(two_docs):
    builder = ContextBuilder(ScriptedModel(""), whole_corpus_tokens=50, window_tokens=120)
    ctx = builder.run("Who published the article?", two_docs, _ranked(two_docs, [0, 9, 11]), k=4)
    assert ctx.window == "Article"


def test_the_document_a_question_names_confines_the_window_to_it_whatever_the_ranking(two_docs):
    builder = ContextBuilder(ScriptedModel(""), whole_corpus_tokens=50, window_tokens=120)
    ranked = _ranked(two_docs, [3, 4, 5, 6, 7, 0, 1])  # the White Paper's hits outrank the article's
    assert builder.run("When was it published?", two_docs, ranked, k=4).window.startswith("White Paper")
    ctx = builder.run("When was the article published?", two_docs, ranked, k=4, document="article")
    assert ctx.window == "Article"


def test_without_windows_the_prompt_holds_the_top_k_passages(two_docs):
    builder = ContextBuilder(ScriptedModel(""), whole_corpus_tokens=50, window_tokens=0)
    ranked = _ranked(two_docs, [9, 10, 2, 4, 5])
    ctx = builder.run("q", two_docs, ranked, k=3)
    assert [p.chunk.chunk_id for p in ctx.passages] == [9, 10, 2]
    assert ctx.window is None and ctx.prompt.context.count("\n[") == 3


def test_warming_every_window_computes_each_head_once(two_docs, tmp_path):
    class CachingModel(ScriptedModel):
        def __init__(self):
            super().__init__("")
            self.heads: list[str] = []

        def ensure_prefix(self, prompt, cache_file=None):
            self.heads.append(prompt.context)
            return "computed"

    model = CachingModel()
    builder = ContextBuilder(model, whole_corpus_tokens=50, window_tokens=120, cache_dir=tmp_path)
    assert builder.warm(two_docs) == "none"  # many windows: only on request
    assert builder.warm(two_docs, every_window=True) == "computed"
    assert model.heads == [w.context for w in builder.windows(two_docs)]


def test_settings_out_of_range_are_refused():
    for kw in ({"whole_corpus_tokens": -1}, {"window_tokens": -1}, {"extra_passages": -1}):
        with pytest.raises(ValueError):
            ContextBuilder(ScriptedModel(""), **kw)


def test_a_corpus_needing_too_many_windows_gets_the_top_k_passages(two_docs):
    builder = ContextBuilder(ScriptedModel(""), whole_corpus_tokens=50, window_tokens=120, max_windows=2)
    assert builder.windows(two_docs) == []
    ctx = builder.run("q", two_docs, _ranked(two_docs, [9, 10, 2, 4, 5]), k=3)
    assert [p.chunk.chunk_id for p in ctx.passages] == [9, 10, 2] and ctx.window is None


def test_hints_name_the_best_ranked_passages_by_their_number_in_the_prompt(two_docs):
    builder = ContextBuilder(ScriptedModel(""), whole_corpus_tokens=10_000, hints=2)
    ctx = builder.run("What about pools?", two_docs, _ranked(two_docs, [9, 3, 1]), k=4)
    numbers = {p.chunk.chunk_id: n for n, p in enumerate(ctx.passages, 1)}
    # The White Paper's card ranked second is skipped; only a card ranked first is hinted.
    assert f"closest to the question: [{numbers[9]}], [{numbers[1]}]." in ctx.prompt.tail
    plain = ContextBuilder(ScriptedModel(""), whole_corpus_tokens=10_000).run("q", two_docs, _ranked(two_docs, [9]), k=4)
    assert "closest to the question" not in plain.prompt.tail
