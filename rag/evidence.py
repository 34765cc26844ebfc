"""The passage sentence behind a yes/no answer that only says the question back.

"Does the author say that joint working across complex systems is easy?" was answered "No. The
author does not say that joint working across complex public service systems is easy [6]." The
verdict is right and the sentence is supported, but it tells the reader nothing the question did
not: what the author *does* say ("… will always be a difficult task") is in passage [6], unseen.
A yes/no answer should give the verdict, then the condition or the reason, then the passage.

So when every sentence of a checked answer to a yes/no question restates the question (at most
``max_new_words`` content words that the question lacks, "yes" and "no" aside), the sentence of the
passages it cites that shares most words with the question and the answer, and adds words of its
own, follows the answer, verbatim and cited. A verbatim sentence is supported by its passage by
construction; it is picked from the passage the checked sentence was found supported by, so it is
the text that sentence rests on, not a new claim. Nothing is added to an answer that says more than
the question (a reason, a number, a name), to a question that is not yes/no, or from a document's card.
"""

from __future__ import annotations

from collections.abc import Sequence

from .citations import strip_markers
from .decompose import asked_sentence, is_polar
from .fallback import quotable_sentences
from .retriever import tokenize
from .types import Passage, Sentence

_VERDICT_WORDS = frozenset({"yes", "no"})


class EvidenceQuote:
    """Follow a yes/no answer that only restates the question with the passage sentence it rests on.

    Args:
        max_new_words: Most content words a sentence may have beyond the question's and still count as
            a restatement (default 1: "Levelling Up cannot be left to individual organisations" for
            "Can Levelling Up be left to individual organisations?").
        min_shared: Content words the quoted sentence must share with the question (default 2).
        min_added: Content words the quoted sentence must add to the question and the answer (default 2).
        min_words: Shorter passage sentences (headings, fragments) are never quoted (default 6).
    """

    def __init__(self, *, max_new_words: int = 1, min_shared: int = 2, min_added: int = 2, min_words: int = 6) -> None:
        if max_new_words < 0 or min_shared < 1 or min_added < 1 or min_words < 1:
            raise ValueError("max_new_words must be at least 0; min_shared, min_added and min_words at least 1")
        self.max_new_words = max_new_words
        self.min_shared = min_shared
        self.min_added = min_added
        self.min_words = min_words

    def restates(self, question: str, sentences: Sequence[Sentence]) -> bool:
        """Whether ``sentences`` (an answer) are all supported and all restate ``question``."""
        if not sentences or not all(s.supported for s in sentences):
            return False
        asked = set(tokenize(asked_sentence(question))) | _VERDICT_WORDS
        return all(len(set(tokenize(strip_markers(s.text))) - asked) <= self.max_new_words for s in sentences)

    def pick(self, question: str, sentences: Sequence[Sentence], passages: Sequence[Passage]) -> tuple[int, str] | None:
        """(passage number, sentence) to quote after ``sentences``, or None when no cited passage has one."""
        q_words = set(tokenize(asked_sentence(question)))
        a_words = {w for s in sentences for w in tokenize(strip_markers(s.text))}
        found = []  # (score, -position, passage number, sentence): the best score, the first one on a tie
        for n in dict.fromkeys(c for s in sentences for c in s.citations):
            if not 1 <= n <= len(passages) or passages[n - 1].chunk.is_card:
                continue
            for text in quotable_sentences(passages[n - 1], self.min_words):
                words = set(tokenize(text))
                shared = len(words & q_words)
                if shared >= self.min_shared and len(words - q_words - a_words) >= self.min_added:
                    found.append((shared + len(words & a_words), -len(found), n, " ".join(text.split())))
        return max(found)[2:] if found else None

    def run(self, question: str, sentences: list[Sentence], passages: Sequence[Passage]) -> list[Sentence]:
        """``sentences`` with the quoted passage sentence after them when they only restate ``question``
        (a yes/no question); ``sentences`` unchanged otherwise."""
        if not is_polar(question) or not self.restates(question, sentences):
            return sentences
        found = self.pick(question, sentences, passages)
        if found is None:
            return sentences
        n, text = found
        return [*sentences, Sentence(text, (n,), 1.0, True, False)]
