"""The verifier: is each answer sentence supported by the passages it cites?

A sentence goes through three checks, cheapest first, and the first that decides wins:

1. **Invented numbers.** A number the cited passages do not contain fails the sentence.
2. **Quotes.** A sentence essentially copied from a cited passage (``citations.is_extractive``)
   is supported without asking the judge; one copied from another passage of the prompt is
   re-cited to that passage (marked as an inferred citation).
3. **The judge.** Otherwise the claim-support judge (``rag.judge``) decides, or with
   ``mode="lexical"`` the share of the sentence's content words found in its passages.

Checks 2 and 3 read what the sentence claims without its attribution ("The White Paper says that X"
is checked as "X"; ``citations.claim_content``): the citation already names the document.

``answers_question`` asks the judge whether the supported text answers the question at all (a
question asking how many or how much needs a number or amount in it first).
Every threshold used here is a ``Settings`` field (see ``Verifier.from_settings``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .citations import (
    CitedSentence,
    claim_content,
    content_overlap,
    is_extractive,
    names_in,
    names_near,
    states_quantity,
    states_time,
    strip_markers,
    unsupported_numbers,
)
from .decompose import asked_kind, asked_place_or_body, asks_for_quantity, asks_for_time, is_polar
from .retriever import tokenize
from .types import Passage, Sentence

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from .config import Settings
    from .judge import Judge

MODES = ("llm", "lexical", "off")

#: Words that point at the passages instead of saying something ("as mentioned in the passage").
_POINTERS = frozenset(tokenize(
    "passage passages document documents text article paper source sources mentioned listed stated "
    "described given shown provided above following say says said found find information details "
    "located refer see contains explained "
    "first second third fourth fifth last previous next below earlier later section page"
))


def says_something(sentence: str, question: str) -> bool:
    """Whether ``sentence`` has a content word beyond the question's and words that point at passages.

    To a yes/no question ("Do leisure centres qualify for energy support?") a sentence restating it,
    affirmed or negated ("Leisure centres do not qualify for energy support."), is the answer, so
    there the question's words count too; only words that point at passages never do.
    """
    words = set(tokenize(strip_markers(sentence))) - _POINTERS
    return bool(words) if is_polar(question) else bool(words - set(tokenize(question)))


@dataclass(frozen=True)
class VerifierThresholds:
    """The verifier's thresholds (defaults as in ``Settings``)."""

    #: Share of a sentence's content words that must be in its passages with ``mode="lexical"`` (0.5).
    lexical: float = 0.5
    #: Share of a sentence copied in runs of 4+ words for it to count as a quote (0.6).
    quote_min_coverage: float = 0.6
    #: Shorter sentences always go to the judge (8 words).
    quote_min_words: int = 8
    #: P(Yes) at or above which the answer counts as answering the question (0.5).
    relevance: float = 0.5
    #: P(Yes) a name needs to count as one of the asked kind of place or body (0.5).
    kind: float = 0.5
    #: Share of an unsupported sentence's content words another passage must hold to be checked too (0.6).
    repoint_overlap: float = 0.6


class Verifier:
    """Check answer sentences against their cited passages.

    Args:
        judge: The claim-support judge; needed only for ``mode="llm"`` (default None).
        mode: ``llm`` (default), ``lexical`` or ``off`` (numbers are still checked).
        thresholds: See ``VerifierThresholds``.
    """

    def __init__(self, judge: Judge | None = None, *, mode: str = "llm", thresholds: VerifierThresholds | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown judge mode {mode!r}: use llm, lexical or off")
        if mode == "llm" and judge is None:
            raise ValueError("mode 'llm' needs a judge")
        self.judge = judge
        self.mode = mode
        self.thresholds = thresholds or VerifierThresholds()

    @staticmethod
    def thresholds_from(settings: Settings) -> VerifierThresholds:
        return VerifierThresholds(
            lexical=settings.lexical_threshold,
            quote_min_coverage=settings.quote_min_coverage,
            quote_min_words=settings.quote_min_words,
            relevance=settings.relevance_threshold,
            kind=settings.kind_threshold,
            repoint_overlap=settings.repoint_overlap,
        )

    def _quoted(self, sentence: str, passage: str, question: str) -> bool:
        t = self.thresholds
        claim = claim_content(sentence)
        return is_extractive(claim, passage, question, min_coverage=t.quote_min_coverage, min_words=t.quote_min_words)

    def check(self, s: CitedSentence, passages: Sequence[Passage], question: str = "") -> Sentence:
        """Support of one sentence by its cited passages (``passages`` are the prompt's, numbered from 1).

        A sentence its cited passages do not support is checked once more against the one other
        passage that shares most of its content words (at least ``repoint_overlap``): a small model
        often gives the right fact the wrong number in a long prompt. Supported there, it is re-cited
        to that passage (marked as an inferred citation).
        """
        if s.refusal:
            return Sentence(s.text, (), None, None, False)
        if not s.cites:
            return Sentence(s.text, (), 0.0, False, False)
        if question and not says_something(s.text, question):
            # "The nine areas are [3]." restates the question and points at a passage: no claim to check.
            return Sentence(s.text, s.cites, 0.0, False, s.inferred)
        if self.mode != "off" and not any(self._quoted(s.text, passages[n - 1].text, question) for n in s.cites):
            # A quote given the wrong number is re-pointed at the passage it is quoted from, before any judging.
            quoted = self._quoted_elsewhere(s, passages, question)
            if quoted and not unsupported_numbers(s.text, [passages[quoted[0] - 1].text]):
                return Sentence(s.text, (quoted[0],), 1.0, True, True)
        result = self._check_cited(s, passages, question)
        if result.supported is False:
            return self._repoint(s, passages, question) or result
        return result

    def _quoted_elsewhere(self, s: CitedSentence, passages: Sequence[Passage], question: str) -> list[int]:
        """Numbers of the passages, other than those cited, that ``s`` is quoted from."""
        return [i for i, p in enumerate(passages, 1) if i not in s.cites and self._quoted(s.text, p.text, question)]

    def _repoint(self, s: CitedSentence, passages: Sequence[Passage], question: str) -> Sentence | None:
        quoted = self._quoted_elsewhere(s, passages, question)
        if quoted:
            return Sentence(s.text, (quoted[0],), 1.0, True, True)
        overlaps = [
            (content_overlap(s.text, p.text), i)
            for i, p in enumerate(passages, 1)
            if i not in s.cites and not unsupported_numbers(s.text, [p.text])
        ]
        overlaps = [(o, i) for o, i in overlaps if o >= self.thresholds.repoint_overlap]
        if not overlaps:
            return None
        _, best = max(overlaps)
        other = self._check_cited(CitedSentence(s.text, (best,), inferred=True), passages, question)
        return Sentence(s.text, (best,), other.support, True, True) if other.supported else None

    def _check_cited(self, s: CitedSentence, passages: Sequence[Passage], question: str) -> Sentence:
        cited = [passages[n - 1].text for n in s.cites]
        if unsupported_numbers(s.text, cited):
            return Sentence(s.text, s.cites, 0.0, False, s.inferred)
        if self.mode == "off":
            return Sentence(s.text, s.cites, None, True, s.inferred)
        if any(self._quoted(s.text, t, question) for t in cited):
            return Sentence(s.text, s.cites, 1.0, True, s.inferred)
        if self.mode == "lexical":
            overlap = content_overlap(s.text, " ".join(cited))
            return Sentence(s.text, s.cites, overlap, overlap >= self.thresholds.lexical, s.inferred)
        assert self.judge is not None
        # The judge reads the passages, not their titles: it is asked about what the sentence claims,
        # without "According to the article," (the citation says which document it is from).
        score = self.judge.support_union(claim_content(s.text), cited)
        return Sentence(s.text, s.cites, score, self.judge.is_supported(score), s.inferred)

    def answers_question(self, question: str, text: str) -> float | None:
        """P(``text`` answers ``question``), or None when this mode has no judge to ask.

        A question that asks how many or how much is not answered by text that states no number or
        amount (``decompose.asks_for_quantity``, ``citations.states_quantity``): that is 0.0 in any
        mode, without asking the judge, which reads "Fifth, the government will create a new regime
        to oversee its missions" as an answer to "How many missions are there?". A question asking
        when is not answered by text that places nothing in time (``decompose.asks_for_time``,
        ``citations.states_time``). Likewise a question
        asking which councils, towns, organisations … is not answered by text that mentions them
        with no name near (``decompose.asked_kind``, ``citations.names_near``): "We will pilot …
        new agreements between councils, public bodies and communities" to "Which councils will
        pilot the Community Covenant approaches?".

        When the text never uses the kind's word, it must still name one: with no name at all it is
        0.0 in any mode, and for a kind of place or body the judge is asked, of each name alone,
        whether it is one (``Judge.is_kind``); when none reaches ``thresholds.kind`` it is 0.0.
        "These pilots will be centred on Greater Manchester, the West Midlands, and Glasgow
        City-Region" does not answer "Which universities will lead the new Innovation Accelerators?".
        People's names are not checked this way (the judge cannot know every mayor).
        """
        if asks_for_quantity(question) and not states_quantity(text):
            log.debug("not an answer: %r asks for a number and the text states none", question)
            return 0.0
        if asks_for_time(question) and not states_time(text):
            log.debug("not an answer: %r asks when and the text places nothing in time", question)
            return 0.0
        kind = asked_kind(question)
        if kind is not None:
            near = names_near(text, kind, question)
            if near is False:
                log.debug("not an answer: %r asks which ones and the text mentions them without a name", question)
                return 0.0
            if near is None and not self._names_kind(question, text):
                log.debug("not an answer: %r asks which ones and the text names none of that kind", question)
                return 0.0
        if self.mode != "llm" or self.judge is None:
            return None
        return self.judge.answers_question(question, text)

    def _names_kind(self, question: str, text: str) -> bool:
        """Whether ``text``, which never uses the word of the kind ``question`` asks for, names one."""
        names = names_in(text, question)
        if not names:
            return False
        place_or_body = asked_place_or_body(question)
        if place_or_body is None or self.mode != "llm" or self.judge is None:
            return True
        return any(self.judge.is_kind(name, place_or_body) >= self.thresholds.kind for name in names)

    def says_yes(self, question: str, text: str) -> float | None:
        """P(``text`` answers the yes/no ``question`` with yes), or None when this mode has no judge."""
        if self.mode != "llm" or self.judge is None:
            return None
        return self.judge.says_yes(question, text)

    def reply_says(self, question: str, text: str, verdict: str) -> float | None:
        """P(``text`` says the answer to the yes/no ``question`` is ``verdict``), or None without a judge."""
        if self.mode != "llm" or self.judge is None:
            return None
        return self.judge.reply_says(question, text, verdict)

    def polar_statements(self, question: str) -> tuple[str, str] | None:
        """The statements that answer the yes/no ``question`` yes and no (``Judge.polar_statements``),
        or None without a judge."""
        if self.mode != "llm" or self.judge is None:
            return None
        return self.judge.polar_statements(question)

    def entails(self, claim: str, text: str) -> float | None:
        """P(``text`` supports ``claim``), the claim-support judge's probability, or None without a judge."""
        if self.mode != "llm" or self.judge is None:
            return None
        return self.judge.support(claim, text)

    def is_answer(self, relevance: float | None) -> bool:
        """Whether a relevance score passes (no score, no check: True)."""
        return relevance is None or relevance >= self.thresholds.relevance
