"""Hybrid retrieval: dense (FAISS) + sentence + lexical (BM25), fused by reciprocal rank.

Dense search finds paraphrases; BM25 finds rare exact words and numbers that a small embedder
blurs ("12 missions"); the sentence ranking orders chunks by their best-matching sentence, which
the chunk's own vector blurs with its neighbours (``rag.sentences``). Reciprocal-rank fusion
combines the rankings without calibrating their scores. A relevance floor on the best dense
similarity (or a strong BM25 match) decides whether anything relevant was found.

A question that names a document ("What health mission does the White Paper set?") is searched
twice, as asked and without the document's name (``content_query``), and the two rankings fused:
the name says where to look, not what to find, and on its own it pulls up every passage that
happens to say "this White Paper".
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .embedder import Embedder
from .sentences import best_chunks
from .store import IndexStore
from .types import Chunk, Passage

log = logging.getLogger(__name__)

_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves tell says say said
    according does did""".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without stop words, with a light plural/verb-ending stemmer."""
    out = []
    for w in _WORD.findall(text.lower().replace("’", "'")):
        if w in _STOPWORDS or (len(w) == 1 and not w.isdigit()):
            continue
        out.append(stem(w))
    return out


def stem(w: str) -> str:
    """A deliberately light stemmer: plurals and common verb endings."""
    if w.isdigit() or len(w) <= 3:
        return w
    for suf, rep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            if suf == "s" and w.endswith(("ss", "us", "is")):
                return w
            return w[: len(w) - len(suf)] + rep
    return w


#: A phrase that points at a document or its author rather than at what is asked about: "the White
#: Paper's", "this article", "according to the author". Kept strict (no free words before the noun),
#: so "the health disparities White Paper" keeps its content words.
_DOCUMENT_REFERENCE = re.compile(
    r"\b(?:according\s+to\s+)?(?:the|this|that)\s+(?:white\s+paper(?:['’]s)?(?:\s+(?:executive\s+)?summary)?|"
    r"(?:executive\s+)?summary|article(?:['’]s)?|document(?:['’]s)?|paper(?:['’]s)?|report(?:['’]s)?|"
    r"author(?:['’]s)?|blog(?:\s+post)?|piece)\b",
    re.IGNORECASE,
)


def content_query(question: str) -> str:
    """``question`` without the phrases that point at a document ("the White Paper", "the article");
    ``question`` itself when none is found or fewer than 3 words would remain."""
    if not _DOCUMENT_REFERENCE.search(question):
        return question
    out = re.sub(r"\s+([?.,;:!])", r"\1", " ".join(_DOCUMENT_REFERENCE.sub(" ", question).split())).lstrip(",;: ")
    return out if len(re.findall(r"\w+", out)) >= 3 else question


#: Reference words that name no document in particular: any document is a document or a piece.
_GENERIC_REFERENCE = frozenset({"document", "piece"})


def named_document(question: str, documents: Iterable[Any]) -> str | None:
    """The ``doc_id`` of the one document ``question`` names, or None.

    Each phrase that points at a document ("the blog post", "the White Paper's summary", "according
    to the author") is matched against each document's title, kind and publisher (its metadata): the
    document sharing most of the phrase's words is the one named ("blog" → the document whose kind is
    "blog article"; "paper" → the "policy paper"); "the author" names the one document with an author.
    None when no phrase matches, when two documents tie, or when the question names two documents
    ("What does the article say about the White Paper?"): then every document is searched alike.
    """
    matches = list(_DOCUMENT_REFERENCE.finditer(question))
    documents = list(documents) if matches else []
    if len(documents) < 2:
        return None
    named: set[str] = set()
    for match in matches:
        words = set(tokenize(match.group(0))) - _GENERIC_REFERENCE
        if not words:
            continue
        if words == {"author"}:
            scores = {d.doc_id: float(bool((d.metadata or {}).get("author"))) for d in documents}
        else:
            scores = {d.doc_id: float(len(words & _descriptor(d))) for d in documents}
        best = max(scores.values())
        winners = [doc_id for doc_id, score in scores.items() if score == best]
        if best > 0 and len(winners) == 1:
            named.add(winners[0])
    return named.pop() if len(named) == 1 else None


def _descriptor(document: Any) -> set[str]:
    """The words a reader may call ``document`` by: its title, kind and publisher."""
    meta = document.metadata or {}
    return set(tokenize(" ".join(str(x) for x in (document.title, meta.get("kind", ""), meta.get("publisher", "")))))


def reciprocal_rank_fusion(rankings: Iterable[Sequence[int]], rrf_k: int) -> dict[int, float]:
    """Each id's fused score: the sum over ``rankings`` (ids, best first) of 1 / (``rrf_k`` + rank)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking, 1):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (rrf_k + rank)
    return fused


@dataclass
class RetrievalResult:
    """Passages in fused order, and whether anything passed the relevance floor."""

    passages: list[Passage]
    relevant: bool
    best_dense: float = 0.0
    best_bm25: float = 0.0
    best_sentence: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    query_vector: np.ndarray | None = None
    #: The ``doc_id`` of the one document the question names ("the article", "the White Paper"), if any.
    document: str | None = None


class BM25Index:
    """BM25 over the chunks of a store (built in memory with ``bm25s``)."""

    def __init__(self, chunks: list[Chunk]) -> None:
        import bm25s

        # bm25s pins its logger at DEBUG on import; let it follow the application's logging level.
        logging.getLogger("bm25s").setLevel(logging.NOTSET)

        self.ids = np.array([c.chunk_id for c in chunks], dtype=np.int64)
        corpus = [tokenize(f"{c.heading or ''} {c.text}") for c in chunks]
        # bm25s needs at least one token per document.
        corpus = [toks or ["\u2205"] for toks in corpus]
        self.retriever = bm25s.BM25()
        self.vocab: set[str] = set()
        if chunks:
            self.retriever.index(corpus, show_progress=False)
            self.vocab = set(self.retriever.vocab_dict)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        if not len(self.ids):
            return []
        toks = [t for t in tokenize(query) if t in self.vocab]
        if not toks:
            return []
        k = min(k, len(self.ids))
        docs, scores = self.retriever.retrieve([toks], k=k, show_progress=False)
        return [(int(self.ids[d]), float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]


class FusedRetriever:
    """What the hybrid retrievers share: candidates per ranking, the fusion constant, the relevance floors.

    Args:
        store: The loaded index.
        embedder: The embedder the index was built with.
        candidates: Candidates taken from each ranking before fusion (default 30).
        rrf_k: Reciprocal-rank-fusion constant (default 60).
        min_dense_score: Relevance floor on the best cosine similarity (default 0.25).
        min_card_score: Relevance floor on the cosine similarity to a document card, the one-line
            metadata passage of a document (default 0.18): questions about a document itself
            ("who wrote it?") share few words with anything, so a card counts at a lower similarity.
        min_sentence_score: Relevance floor on the cosine similarity to the best-matching single
            sentence (default 0.28; only with ``sentence_ranking``): a question that paraphrases one
            sentence ("What does joint working require?") matches that sentence better than the whole
            chunk around it, whose similarity can fall below ``min_dense_score``.
        sentence_ranking: Also rank chunks by their best-matching sentence (default True; ``rag.sentences``).
    """

    #: Sentence hits read per chunk candidate: enough to fill ``candidates`` distinct chunks.
    SENTENCES_PER_CANDIDATE = 8

    def __init__(
        self, store: Any, embedder: Any, *, candidates: int = 30, rrf_k: int = 60, min_dense_score: float = 0.25,
        min_card_score: float = 0.18, min_sentence_score: float = 0.28, sentence_ranking: bool = True,
    ) -> None:
        if candidates < 1:
            raise ValueError("candidates must be at least 1")
        if rrf_k < 1:
            raise ValueError("rrf_k must be at least 1")
        self.store = store
        self.embedder = embedder
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.min_dense_score = min_dense_score
        self.min_card_score = min_card_score
        self.min_sentence_score = min_sentence_score
        self.sentence_ranking = sentence_ranking

    def run(self, question: str, k: int = 4) -> RetrievalResult:
        """Top-``k`` passages for ``question``. A question naming a document is also searched without
        the name (``content_query``) and the two rankings are fused by reciprocal rank; relevance,
        scores and the query vector stay those of the question as asked. When the name points at one
        document of several (``named_document``), that document's passages come first, in their order,
        and ``RetrievalResult.document`` says which it is: "When was the article published?" is about
        the article, however well the other document's date matches."""
        if k < 1:
            raise ValueError("k must be at least 1")
        document = named_document(question, self.store.documents.values())
        content = content_query(question)
        # More than k when the ranking is reordered below (fused, or the named document first), then cut to k.
        n = k if content == question and document is None else max(k, self.candidates)
        if content == question:
            result = self._search(question, n)
        else:
            asked, without = self._search(question, n), self._search(content, n)
            fused = reciprocal_rank_fusion(([p.chunk.chunk_id for p in r.passages] for r in (asked, without)), self.rrf_k)
            passage = {p.chunk.chunk_id: p for p in without.passages} | {p.chunk.chunk_id: p for p in asked.passages}
            order = sorted(fused, key=lambda c: (-fused[c], -passage[c].dense_score))
            asked.passages = [passage[c] for c in order]
            asked.timings = {key: asked.timings.get(key, 0.0) + without.timings.get(key, 0.0) for key in asked.timings}
            result = asked
        if document is not None:
            result.passages.sort(key=lambda p: p.chunk.doc_id != document)  # stable: each part keeps its order
            result.document = document
            log.debug("the question names document %s", document)
        result.passages = result.passages[:k]
        return result

    def _search(self, question: str, k: int) -> RetrievalResult:  # pragma: no cover - abstract
        raise NotImplementedError


class HybridRetriever(FusedRetriever):
    """Find the passages of a FAISS store that answer a question: chunk vectors, sentence vectors and
    BM25, fused by reciprocal rank.

    Takes ``FusedRetriever``'s arguments, and:
        min_bm25_score: A best BM25 score that counts as relevant on its own (default 6.0).
    """

    def __init__(self, store: IndexStore, embedder: Embedder, *, min_bm25_score: float = 6.0, **common: Any) -> None:
        super().__init__(store, embedder, **common)
        self.min_bm25_score = min_bm25_score
        self._bm25: BM25Index | None = None
        self._bm25_key: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def _bm25_index(self) -> BM25Index:
        key = (self.store.generation, len(self.store.chunks))
        with self._lock:
            if self._bm25 is None or self._bm25_key != key:
                self._bm25 = BM25Index([self.store.chunks[i] for i in sorted(self.store.chunks)])
                self._bm25_key = key
            return self._bm25

    def _passage(self, chunk_id: int, fused: float, dense: float, bm25: float) -> Passage:
        chunk = self.store.chunks[chunk_id]
        doc = self.store.documents[chunk.doc_id]
        return Passage(chunk=chunk, source=doc.source, title=doc.title, score=fused, dense_score=dense, bm25_score=bm25)

    def _search(self, question: str, k: int) -> RetrievalResult:
        """Top-``k`` passages for ``question``, fused from dense and BM25 rankings."""
        import time

        t0 = time.perf_counter()
        if not self.store.chunks:
            return RetrievalResult([], False)
        qv = self.embedder.encode_query(question)
        scores, ids = self.store.search(qv[None, :], self.candidates)
        dense = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0 and int(i) in self.store.chunks]
        t1 = time.perf_counter()
        sentences = self._sentence_ranking(qv)
        t_sent = time.perf_counter()
        lexical = self._bm25_index().search(question, self.candidates)
        t2 = time.perf_counter()

        rankings = (dense, lexical, sentences) if sentences else (dense, lexical)
        fused = reciprocal_rank_fusion(([cid for cid, _ in r] for r in rankings), self.rrf_k)
        dense_of = dict(dense)
        bm25_of = dict(lexical)
        # Chunks found only by BM25 still get their true cosine similarity, for display and the floor.
        missing = [cid for cid in fused if cid not in dense_of]
        if missing:
            vecs = np.vstack([self.store.index.reconstruct(int(c)) for c in missing])
            for cid, s in zip(missing, vecs @ qv):
                dense_of[cid] = float(s)
        order = sorted(fused, key=lambda c: (-fused[c], -dense_of.get(c, 0.0)))[:k]
        passages = [self._passage(c, fused[c], dense_of.get(c, 0.0), bm25_of.get(c, 0.0)) for c in order]
        best_dense = max((s for _, s in dense), default=0.0)
        best_bm25 = max((s for _, s in lexical), default=0.0)
        best_card = max((sc for cid, sc in dense if self.store.chunks[cid].is_card), default=0.0)
        best_sentence = max((s for _, s in sentences), default=0.0)
        relevant = (
            best_dense >= self.min_dense_score
            or best_bm25 >= self.min_bm25_score
            or best_card >= self.min_card_score
            or best_sentence >= self.min_sentence_score
        )
        return RetrievalResult(
            passages=passages,
            relevant=relevant,
            best_dense=best_dense,
            best_bm25=best_bm25,
            best_sentence=best_sentence,
            timings={"dense_s": t1 - t0, "sentences_s": t_sent - t1, "bm25_s": t2 - t_sent},
            query_vector=qv,
        )

    def _sentence_ranking(self, query_vector: np.ndarray) -> list[tuple[int, float]]:
        """(chunk id, best sentence similarity) of the chunks whose sentences match best (empty when off)."""
        if not self.sentence_ranking:
            return []
        scores, ids = self.store.search_sentences(query_vector[None, :], self.candidates * self.SENTENCES_PER_CANDIDATE)
        return [(cid, s) for cid, s in best_chunks(scores[0], ids[0], self.candidates) if cid in self.store.chunks]

    def similarities(self, query_vector: np.ndarray, chunk_ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query to each given chunk (vectors are unit length)."""
        if not chunk_ids:
            return {}
        vecs = np.vstack([self.store.index.reconstruct(int(c)) for c in chunk_ids])
        return {c: float(s) for c, s in zip(chunk_ids, vecs @ query_vector)}
