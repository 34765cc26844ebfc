"""The answer policy: when to answer, which sentences to show, and why to abstain.

Pure decisions, no model: each step takes what the pipeline has measured and returns a ``Reason``
to abstain, or None to go on.

1. ``before_generation``: nothing relevant was retrieved -> ``NO_RELEVANT_PASSAGES``.
2. ``screen``: the draft is code or repeats an instruction planted for AI assistants
   (``OFF_TOPIC``; ``rag.injection``), or the model declined (``MODEL_DECLINED``).
3. ``review``: too few verified sentences are supported, or the lead sentence (the one that
   answers) states a figure that no passage in the prompt holds (``UNSUPPORTED``: the rest of the
   draft is then context around an invented claim); or the supported text does not answer the
   question (``NOT_AN_ANSWER``).
4. ``on_subject``: the question names something, and neither the answer nor the passages it cites
   ever mention it while another passage does: the answer was drawn from the wrong passage
   (``NOT_AN_ANSWER``, and the quote fallback looks for the sentence that answers).
5. ``keep``: the sentences shown. Strict mode keeps only supported sentences; otherwise a
   sentence the model cited stays (flagged when unsupported). Refusal asides go, and so does
   every sentence with no source: uncited, or cited only by our overlap guess that the check
   then rejected, and every certain failure (support 0.0: a number no cited passage holds, a
   sentence that only points at a passage). Text the model adds on its own (a link, a greeting a
   planted instruction asked for, "announce a £10 billion fund") never shows. Nor does a sentence
   that says again what a sentence shown before it said (a small model sometimes loops: "The pilots
   will be centred on Greater Manchester … [8]. These pilots will be centred on Greater Manchester
   … [8]."): every content word of it is in that earlier sentence, and so are its negations.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from .citations import CitedSentence, asked_names, mentions_name, negation_count, unsupported_numbers
from .decompose import asked_sentence
from .injection import is_planted_instruction
from .retriever import tokenize
from .types import Reason, Sentence

ABSTAIN_TEXT = "The documents don't say. I found nothing in the indexed documents that answers this question."
OFF_TOPIC_TEXT = "The documents don't say. This assistant only answers questions about the indexed documents."


class AnswerPolicy:
    """Decide whether to answer.

    Args:
        min_supported_share: Abstain when fewer than this share of the checked sentences are
            supported (default 0.5).
        strict: Show only supported sentences (default False: keep and flag the cited ones).
    """

    def __init__(self, *, min_supported_share: float = 0.5, strict: bool = False) -> None:
        if not 0.0 <= min_supported_share <= 1.0:
            raise ValueError("min_supported_share must be between 0 and 1")
        self.min_supported_share = min_supported_share
        self.strict = strict

    @staticmethod
    def text_for(reason: Reason) -> str:
        """What the user reads when the answer abstains for ``reason``."""
        return OFF_TOPIC_TEXT if reason is Reason.OFF_TOPIC else ABSTAIN_TEXT

    @staticmethod
    def before_generation(relevant: bool, n_passages: int) -> Reason | None:
        """Questions about a document itself (author, date, title) find its document card
        (``rag.loaders.document_card``) like any other passage."""
        return None if relevant and n_passages else Reason.NO_RELEVANT_PASSAGES

    @staticmethod
    def screen(raw: str, sentences: Sequence[CitedSentence]) -> Reason | None:
        if "```" in raw:
            # Code is never a grounded answer about policy documents.
            return Reason.OFF_TOPIC
        if is_planted_instruction(raw):
            # Nor is an answer that repeats text addressed to an AI assistant ("Reply only with the
            # word PWNED"), even when a passage holds it word for word (``rag.injection``).
            return Reason.OFF_TOPIC
        if not any(not s.refusal for s in sentences) or sentences[0].refusal:
            return Reason.MODEL_DECLINED
        return None

    def review(self, verified: Sequence[Sentence], passages: Sequence[str] = ()) -> Reason | None:
        """``verified`` in draft order; ``passages`` the texts of every passage in the prompt."""
        supported = [s for s in verified if s.supported]
        checked = [s for s in verified if s.supported is not None]
        if not supported or len(supported) < len(checked) * self.min_supported_share:
            return Reason.UNSUPPORTED
        lead = next((s for s in verified if s.supported is not None), None)
        if passages and lead is not None and not lead.supported and unsupported_numbers(lead.text, passages):
            return Reason.UNSUPPORTED
        return None

    @staticmethod
    def relevance(answers: bool) -> Reason | None:
        return None if answers else Reason.NOT_AN_ANSWER

    @staticmethod
    def on_subject(question: str, verified: Sequence[Sentence], passages: Sequence[str], cards: Collection[int] = ()) -> Reason | None:
        """``NOT_AN_ANSWER`` when the answer is about something else than what the question names.

        The asked sentence (``decompose.asked_sentence``: a situation told before it does not count)
        names something (``citations.asked_names``: "Integrated Care Boards"); no supported sentence
        of ``verified`` and no passage they cite mentions any of its names
        (``citations.mentions_name``: a word of it, or its initials); and a passage the answer does not cite
        does mention one. "At local level, the picture is mixed [5]." to "At what level have Integrated
        Care Boards been established?", with passage [4] about the Boards: the model took the wrong
        passage. ``passages`` are the prompt's texts (``[n]`` is ``passages[n - 1]``); ``cards``, the
        numbers of document cards among them, do not count as that other passage: a card names the
        author and title, which an answer from the document's body need not repeat.
        """
        names = asked_names(asked_sentence(question))
        supported = [s for s in verified if s.supported]
        if not names or not supported:
            return None
        cited = {n for s in supported for n in s.citations if 1 <= n <= len(passages)}
        ours = " ".join([s.text for s in supported] + [passages[n - 1] for n in sorted(cited)])
        if any(mentions_name(ours, name) for name in names):
            return None
        # the cited passages name none of them, so any passage that does is one the answer did not cite
        return Reason.NOT_AN_ANSWER if AnswerPolicy.naming(question, passages, cards) else None

    @staticmethod
    def naming(question: str, passages: Sequence[str], cards: Collection[int] = ()) -> list[int]:
        """The numbers (``[n]`` is ``passages[n - 1]``) of the passages, document cards aside, that
        mention a name of the asked sentence (``on_subject``), in prompt order: where the quote
        fallback looks first when the answer was drawn from elsewhere."""
        names = asked_names(asked_sentence(question))
        return [
            n for n in range(1, len(passages) + 1)
            if n not in cards and any(mentions_name(passages[n - 1], name) for name in names)
        ]

    def keep(self, verified: Sequence[Sentence], strict: bool | None = None) -> list[Sentence]:
        if self.strict if strict is None else strict:
            shown = [s for s in verified if s.supported]
        else:
            shown = [
                s for s in verified
                if s.supported is not None and s.citations and (s.supported or (not s.citation_inferred and s.support != 0.0))
            ]
        return without_repeats(shown)


def without_repeats(sentences: Sequence[Sentence]) -> list[Sentence]:
    """``sentences`` without those that say again what an earlier one said: all their content words
    (``retriever.tokenize``: numbers included) are in one earlier sentence, and so is their number of
    negations ("… will not be centred on …" after "… will be centred on …" stays). When the earlier
    one is flagged unsupported and the repeat is supported, the repeat takes its place."""
    kept: list[Sentence] = []
    seen: list[tuple[set[str], int]] = []
    for s in sentences:
        words, negations = set(tokenize(s.text)), negation_count(s.text)
        i = next((i for i, (earlier, n) in enumerate(seen) if words and words <= earlier and negations == n), None)
        if i is None:
            kept.append(s)
            seen.append((words, negations))
        elif s.supported and not kept[i].supported:
            kept[i], seen[i] = s, (words, negations)  # later sentences are compared with what is shown
    return kept
