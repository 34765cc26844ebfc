"""Retrieval logic without models: which words of a question are searched, and how rankings are fused."""

from __future__ import annotations

import pytest

from fakes import fake_passages, write_one_sentence_answer_corpus
from rag.retriever import FusedRetriever, RetrievalResult, content_query, named_document
from rag.types import Chunk, Document, Passage


@pytest.mark.parametrize(
    ("question", "content"),
    [
        ("What health mission does the White Paper set?", "What health mission does set?"),
        ("What is the White Paper's devolution target for 2030?", "What is devolution target for 2030?"),
        ("Which example does the article give of leisure centres closing?", "Which example does give of leisure centres closing?"),
        ("According to the author, who should collaborate?", "who should collaborate?"),
        ("How big is the fund in this White Paper summary?", "How big is the fund in?"),
    ],
)
def test_a_phrase_naming_the_document_is_left_out_of_the_content_query(question, content):
    assert content_query(question) == content


@pytest.mark.parametrize(
    "question",
    [
        "How many civil servants will move out of London?",  # names no document
        "Who wrote the article?",  # too little would be left: the question is about the document
        "What will the health disparities White Paper address?",  # a named White Paper keeps its content words
    ],
)
def test_a_question_without_a_removable_document_reference_is_searched_as_asked(question):
    assert content_query(question) == question


class RankingRetriever(FusedRetriever):
    """Returns a fixed ranking per query (chunk ids), recording the queries."""

    def __init__(self, rankings: dict[str, list[int]]) -> None:
        store, self.passages = fake_passages(["alpha text"] * 6)
        super().__init__(store, None)
        self.rankings, self.queries = rankings, []

    def _search(self, question: str, k: int) -> RetrievalResult:
        self.queries.append(question)
        return RetrievalResult([self.passages[i] for i in self.rankings[question][:k]], True, 0.5, 1.0, timings={"dense_s": 0.01})


def test_a_question_naming_a_document_is_searched_with_and_without_the_name_and_the_rankings_fused():
    asked = "What health mission does the White Paper set?"
    retriever = RankingRetriever({asked: [0, 1, 2, 3], content_query(asked): [3, 4, 2, 5]})
    result = retriever.run(asked, k=3)
    assert retriever.queries == [asked, "What health mission does set?"]
    # 3 and 2 are found by both searches and rise above 0, the first hit of the question as asked.
    assert [p.chunk.chunk_id for p in result.passages] == [3, 2, 0]
    assert result.relevant and result.best_dense == 0.5 and result.timings == {"dense_s": 0.02}


def test_a_question_naming_no_document_is_searched_once():
    retriever = RankingRetriever({"Which pools may close?": [2, 0, 1]})
    result = retriever.run("Which pools may close?", k=2)
    assert retriever.queries == ["Which pools may close?"] and [p.chunk.chunk_id for p in result.passages] == [2, 0]


BLOG = Document("blog", "/docs/blog.txt", "Levelling Up is a call for collaboration", "", {"kind": "blog article", "author": "Luke Bevir", "publisher": "Mutual Ventures (blog)"})
PAPER = Document("paper", "/docs/paper.txt", "Levelling Up the United Kingdom: executive summary", "", {"kind": "policy paper", "publisher": "DLUHC"})


@pytest.mark.parametrize(
    ("question", "named"),
    [
        ("When was the blog post updated?", "blog"),
        ("When was the article published?", "blog"),
        ("According to the author, who should collaborate?", "blog"),  # the one document with an author
        ("What health mission does the White Paper set?", "paper"),  # its kind is a paper
        ("How big is the fund in this White Paper summary?", "paper"),
        ("What is the summary's first mission?", "paper"),
        ("What does the article say about the White Paper?", None),  # two documents named
        ("Which missions does the report list?", None),  # no document is a report
        ("What is in the document?", None),  # every document is a document
        ("How many missions are there?", None),  # names none
    ],
)
def test_a_phrase_naming_a_document_is_matched_to_its_title_kind_publisher_or_author(question, named):
    assert named_document(question, [BLOG, PAPER]) == named


def test_with_one_document_there_is_nothing_to_choose():
    assert named_document("When was the article published?", [BLOG]) is None


class TwoDocumentRetriever(RankingRetriever):
    """Chunks 0-2 are the paper's, 3-5 the blog's."""

    def __init__(self, rankings: dict[str, list[int]]) -> None:
        super().__init__(rankings)
        self.store.documents = {"paper": PAPER, "blog": BLOG}
        for p in self.passages:
            doc = PAPER if p.chunk.chunk_id < 3 else BLOG
            chunk = Chunk(p.chunk.chunk_id, doc.doc_id, p.chunk.start, p.chunk.end, p.chunk.text)
            self.store.chunks[chunk.chunk_id] = chunk
            self.passages[chunk.chunk_id] = Passage(chunk, doc.source, doc.title, p.score, dense_score=p.dense_score)


def test_the_named_documents_passages_come_first_in_their_order_and_the_result_says_which_document():
    asked = "When was the article published?"
    retriever = TwoDocumentRetriever({asked: [0, 4, 1, 3, 2, 5], content_query(asked): [1, 0, 2, 4, 3, 5]})
    result = retriever.run(asked, k=4)
    ids = [p.chunk.chunk_id for p in result.passages]
    assert result.document == "blog"
    # Fused, the paper's 0 and 1 lead; the blog's three passages (4, 3, 5 in fused order) now come first.
    assert ids == [4, 3, 5, 0]


def test_a_question_naming_no_document_keeps_the_fused_order_and_names_no_document():
    retriever = TwoDocumentRetriever({"Which pools may close?": [0, 4, 1]})
    result = retriever.run("Which pools may close?", k=3)
    assert result.document is None and [p.chunk.chunk_id for p in result.passages] == [0, 4, 1]


def test_k_below_one_is_refused():
    with pytest.raises(ValueError):
        RankingRetriever({}).run("Which pools may close?", k=0)


def test_a_chunk_whose_one_sentence_answers_ranks_higher_with_the_sentence_ranking(tmp_path, embedder):
    from rag.config import Settings
    from rag.indexer import Indexer
    from rag.storage import make_retriever

    docs, question = write_one_sentence_answer_corpus(tmp_path / "docs")
    settings = Settings().replace(index_dir=tmp_path / "idx")
    store, _ = Indexer(settings, embedder).run([docs], progress=False)

    def rank(on: bool) -> int:
        retriever = make_retriever(store, embedder, settings.replace(sentence_ranking=on))
        sources = [p.source for p in retriever.run(question, k=7).passages]
        return next(i for i, s in enumerate(sources) if s.endswith("economy.txt"))

    on, off = rank(True), rank(False)
    assert on < off, (on, off)


def test_a_question_paraphrasing_one_sentence_counts_as_relevant_though_its_chunk_is_below_the_floor(tmp_path, embedder):
    from fakes import write_paraphrase_corpus
    from rag.config import Settings
    from rag.indexer import Indexer
    from rag.storage import make_retriever

    settings = Settings().replace(index_dir=tmp_path / "idx")
    store, _ = Indexer(settings, embedder).run([write_paraphrase_corpus(tmp_path / "docs")], progress=False)
    retriever = make_retriever(store, embedder, settings)
    result = retriever.run("What does joint working require?")
    assert result.best_dense < settings.min_dense_score and result.best_bm25 < settings.min_bm25_score
    assert result.best_sentence >= settings.min_sentence_score and result.relevant
    # Without the sentence floor, the same question is found irrelevant and would be declined unread.
    strict = make_retriever(store, embedder, settings.replace(min_sentence_score=1.0)).run("What does joint working require?")
    assert not strict.relevant
    for off_topic in ("What is the capital of France?", "Write me a poem about the sea."):
        res = retriever.run(off_topic)
        assert res.best_sentence < settings.min_sentence_score and not res.relevant, off_topic
