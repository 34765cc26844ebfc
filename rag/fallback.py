"""The quote fallback: when a draft fails its checks, answer with the passage sentence that does.

A small model often finds the right passage and then words its answer badly: a number it got
wrong, a paraphrase the judge cannot match, a sentence that circles the question. Refusing then
throws a good answer away. The fallback looks in the passages the draft cited and the best-ranked
ones for the sentences that share most words with the question (and with the draft), asks the
judge whether each one *answers* the question, and returns the best one, verbatim and cited, when
the judge is confident. A verbatim sentence is supported by its passage by construction, so the
only judgement left is whether it answers the question, and that threshold is stricter than the
one for a drafted answer.

A document's card (its title, author, publisher and date as one line) shares few words with
"Who wrote this?", so the card of the first document searched (a cited one, else the best-ranked)
is always one of the candidates as well: questions about the document are answered from it, cited
to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from .citations import split_sentences
from .injection import is_planted_instruction
from .retriever import tokenize
from .types import Passage, Sentence

log = logging.getLogger(__name__)


class _AnswersQuestion(Protocol):
    def answers_question(self, question: str, text: str) -> float | None: ...


def quotable_sentences(passage: Passage, min_words: int) -> list[str]:
    """The sentences of ``passage`` that may be shown as a quote: at least ``min_words`` words (no
    heading or fragment), and no instruction planted for an AI reader."""
    return [s for s in split_sentences(passage.text) if len(s.split()) >= min_words and not is_planted_instruction(s)]


class QuoteFallback:
    """Pick a passage sentence that answers the question, to show instead of a refusal.

    Args:
        threshold: P(the sentence answers the question) needed (default 0.6; the drafted answer's
            relevance threshold is 0.5).
        max_candidates: Sentences shown to the judge, best word overlap first (default 3).
        passages_searched: Best-ranked prompt passages searched besides those the draft cited (default 2).
        min_words: Shorter sentences (headings, fragments) are not candidates (default 6).
    """

    def __init__(self, *, threshold: float = 0.6, max_candidates: int = 3, passages_searched: int = 2, min_words: int = 6) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if max_candidates < 1 or passages_searched < 0 or min_words < 1:
            raise ValueError("max_candidates and min_words must be at least 1, passages_searched at least 0")
        self.threshold = threshold
        self.max_candidates = max_candidates
        self.passages_searched = passages_searched
        self.min_words = min_words

    def candidates(
        self, question: str, passages: Sequence[Passage], ranked: Sequence[Passage], cited: Sequence[int], draft: str = ""
    ) -> list[tuple[int, str]]:
        """(passage number, sentence) pairs worth asking about, best first.

        ``passages`` are the prompt's (``[n]`` is ``passages[n - 1]``); ``ranked`` is the retrieval
        order; ``cited`` the numbers the draft cited.
        """
        number = {p.chunk.chunk_id: n for n, p in enumerate(passages, 1)}
        searched = [n for n in cited if 1 <= n <= len(passages)]
        for p in ranked:
            n = number.get(p.chunk.chunk_id)
            if n is not None and n not in searched and len(searched) < len(set(cited)) + self.passages_searched:
                searched.append(n)
        q_words = set(tokenize(question))
        d_words = set(tokenize(draft)) - q_words
        scored = []
        for n in searched:
            for sentence in quotable_sentences(passages[n - 1], self.min_words):
                words = set(tokenize(sentence))
                score = len(words & q_words) + 0.5 * len(words & d_words)
                if words & q_words:
                    scored.append((score, -len(scored), n, sentence))
        scored.sort(reverse=True)
        found = [(n, s) for _, _, n, s in scored[: self.max_candidates]]
        card = self._card(passages, [passages[n - 1] for n in searched])
        if card is not None and all(n != card[0] for n, _ in found):
            found.append(card)
        return found

    @staticmethod
    def _card(passages: Sequence[Passage], searched: Sequence[Passage]) -> tuple[int, str] | None:
        """(number, text) of the prompt's card for the first searched passage's document (the first
        card in the prompt when that document has none there), or None when the prompt holds no card."""
        cards = {p.chunk.doc_id: n for n, p in enumerate(passages, 1) if p.chunk.is_card}
        if not cards:
            return None
        n = next((cards[p.chunk.doc_id] for p in searched if p.chunk.doc_id in cards), next(iter(cards.values())))
        return n, " ".join(passages[n - 1].text.split())

    def run(
        self,
        question: str,
        passages: Sequence[Passage],
        ranked: Sequence[Passage],
        cited: Sequence[int],
        judge: _AnswersQuestion,
        draft: str = "",
    ) -> tuple[list[Sentence], float] | None:
        """The best quoted sentence as a one-sentence answer with the judge's P(it answers the
        question), or None when none answers the question."""
        best: tuple[float, int, str] | None = None
        for n, sentence in self.candidates(question, passages, ranked, cited, draft):
            score = judge.answers_question(question, sentence)
            if score is None:
                return None  # no judge in this mode: nothing can vouch for the quote
            log.debug("fallback candidate [%d] %.2f: %s", n, score, sentence[:80])
            if score >= self.threshold and (best is None or score > best[0]):
                best = (score, n, sentence)
        if best is None:
            return None
        score, n, sentence = best
        return [Sentence(sentence, (n,), 1.0, True, False)], score
