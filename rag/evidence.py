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
the text that sentence rests on, not a new claim. Nothing is added from a document's card.

Any other checked answer gets the same when it leaves out the sentence it rests on. "Why are leisure
centres struggling to get help with their energy costs?" was answered "… due to high energy bills [5]":
true, but the reason the passage gives ("as leisure centres don't meet the current criteria for the
UK government's energy support scheme") is in the same sentence of [5], unsaid. So the cited passages'
sentence that shares most words with the question and the answer (at least ``min_shared_any`` with the
question) follows the answer, verbatim and cited, when the answer holds less than ``max_cover`` of its
content words. An answer drawn from that sentence (most of its words, or ``quoted_run`` of them in a
row) gets nothing added, and no other sentence is looked for: the next best match is about
something else.

One exception: an answer that quotes a denial gets the sentence that says what is so instead. "Is
system change about launching a string of new policy initiatives?" was answered "No. System change
is not about a string of shiny, but ultimately short-lived, new policy initiatives [3]." The passage
goes on "It is about root and branch reform of government and governance of the UK.": what the
denial points to. So when the answer quotes a passage sentence (``quoted_run`` words in a row) that
negates a verb ("is not about", "isn't about", "cannot be") and the passage's next sentence opens with
a pronoun and the same words without the negation ("It is about …"), that sentence follows, verbatim
and cited. A next sentence that comments ("This is a concern …") or denies again ("Nor does it …")
is not a correction and is not added.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .citations import negation_count, split_sentences, strip_markers
from .decompose import asked_sentence, is_polar
from .fallback import quotable_sentences
from .retriever import tokenize
from .types import Passage, Sentence

_VERDICT_WORDS = frozenset({"yes", "no"})
#: A negated verb and the word after it: "is not about", "isn't about", "cannot be".
_DENIAL = re.compile(r"\b(\w+)\s+not\s+(\w+)|\b(\w+?)n[’']t\s+(\w+)|\b(can)not\s+(\w+)", re.IGNORECASE)
#: A sentence that opens by referring back to the subject of the one before.
_REFERS_BACK = r"^(?:it|this|they|these|that)\s+"


def denied(text: str) -> set[tuple[str, str]]:
    """The (verb, next word) pairs ``text`` negates, lower-case: ("is", "about") for "X is not about Y"."""
    out = set()
    for m in _DENIAL.finditer(text):
        verb, word = next((m[i], m[i + 1]) for i in (1, 3, 5) if m[i])
        out.add((verb.lower(), word.lower()))
    return out


def _cited(sentences: Sequence[Sentence], passages: Sequence[Passage]) -> list[tuple[int, Passage]]:
    """(number, passage) of each passage ``sentences`` cite, in citing order, once each; numbers
    outside ``passages`` and document cards left out."""
    numbers = dict.fromkeys(c for s in sentences for c in s.citations)
    return [(n, passages[n - 1]) for n in numbers if 1 <= n <= len(passages) and not passages[n - 1].chunk.is_card]


def _answer_plain(sentences: Sequence[Sentence]) -> list[str]:
    """The answer's words, markers removed, for finding runs of them in a passage sentence."""
    return _plain(" ".join(strip_markers(s.text) for s in sentences))


def _plain(text: str) -> list[str]:
    """Lower-case words only, for finding one text inside another."""
    return re.findall(r"\w+", text.lower())


def longest_common_run(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest run of words ``a`` and ``b`` share, in the same order and adjacent."""
    best, prev = 0, [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                best = max(best, cur[j])
        prev = cur
    return best


class EvidenceQuote:
    """Follow an answer that leaves out the passage sentence it rests on with that sentence, verbatim.

    Args:
        max_new_words: Most content words a sentence may have beyond the question's and still count as
            a restatement (default 1: "Levelling Up cannot be left to individual organisations" for
            "Can Levelling Up be left to individual organisations?").
        min_shared: Content words the quoted sentence must share with the question (default 2).
        min_added: Content words the quoted sentence must add to the question and the answer (default 2;
            for any other answer one is enough, ``max_cover`` being its bar).
        min_words: Shorter passage sentences (headings, fragments) are never quoted (default 6).
        min_shared_any: For any other answer: content words the quoted sentence must share with the
            question (default 3).
        max_cover: For any other answer: the sentence is quoted when the answer holds less than this
            share of its content words (default 0.7; an answer drawn from the sentence holds most).
        quoted_run: A sentence sharing this many words in a row with the answer is one the answer
            already quotes, and is never quoted after it (default 8).
    """

    def __init__(
        self,
        *,
        max_new_words: int = 1,
        min_shared: int = 2,
        min_added: int = 2,
        min_words: int = 6,
        min_shared_any: int = 3,
        max_cover: float = 0.7,
        quoted_run: int = 8,
    ) -> None:
        if max_new_words < 0 or min_shared < 1 or min_added < 1 or min_words < 1 or min_shared_any < 1:
            raise ValueError("max_new_words must be at least 0; min_shared, min_added, min_words and min_shared_any at least 1")
        if not 0.0 < max_cover <= 1.0:
            raise ValueError("max_cover must be above 0 and at most 1")
        if quoted_run < 2:
            raise ValueError("quoted_run must be at least 2")
        self.max_new_words = max_new_words
        self.min_shared = min_shared
        self.min_added = min_added
        self.min_words = min_words
        self.min_shared_any = min_shared_any
        self.max_cover = max_cover
        self.quoted_run = quoted_run

    def restates(self, question: str, sentences: Sequence[Sentence]) -> bool:
        """Whether ``sentences`` (an answer) are all supported and all restate ``question``."""
        if not sentences or not all(s.supported for s in sentences):
            return False
        asked = set(tokenize(asked_sentence(question))) | _VERDICT_WORDS
        return all(len(set(tokenize(strip_markers(s.text))) - asked) <= self.max_new_words for s in sentences)

    def _candidates(
        self, question: str, sentences: Sequence[Sentence], passages: Sequence[Passage], min_shared: int, min_added: int
    ) -> list[tuple[int, int, int, str, float]]:
        """(score, -position, passage number, sentence, share of its words the answer holds) for each
        sentence of the cited passages sharing ``min_shared`` content words with the question and
        adding ``min_added`` of its own; score: words shared with the question plus with the answer.
        A sentence with ``quoted_run`` words in a row in the answer counts as wholly held by it (share
        1.0): the answer already quotes it, and what else it says was left out on purpose."""
        q_words = set(tokenize(asked_sentence(question)))
        a_words = {w for s in sentences for w in tokenize(strip_markers(s.text))}
        a_plain = _answer_plain(sentences)
        found = []
        for n, passage in _cited(sentences, passages):
            for text in quotable_sentences(passage, self.min_words):
                if text[:1].islower():
                    continue  # a list item's tail ("and the movement of …"), not a sentence to show alone
                words = set(tokenize(text))
                shared = len(words & q_words)
                if shared >= min_shared and len(words - q_words - a_words) >= min_added:
                    cover = len(words & a_words) / len(words)
                    if longest_common_run(_plain(text), a_plain) >= self.quoted_run:
                        cover = 1.0  # the answer already quotes it
                    found.append((shared + len(words & a_words), -len(found), n, " ".join(text.split()), cover))
        return found

    def pick(self, question: str, sentences: Sequence[Sentence], passages: Sequence[Passage]) -> tuple[int, str] | None:
        """(passage number, sentence) to quote after a yes/no answer that restates the question, or None
        when no cited passage has one."""
        found = self._candidates(question, sentences, passages, self.min_shared, self.min_added)
        return max(found)[2:4] if found else None

    def pick_left_out(self, question: str, sentences: Sequence[Sentence], passages: Sequence[Passage]) -> tuple[int, str] | None:
        """(passage number, sentence) that any answer rests on but leaves out, or None: the cited
        passages' sentence that best matches the question and the answer, when the answer holds less
        than ``max_cover`` of its content words."""
        found = self._candidates(question, sentences, passages, self.min_shared_any, 1)
        if not found:
            return None
        best = max(found)
        return best[2:4] if best[4] < self.max_cover else None

    def pick_correction(self, sentences: Sequence[Sentence], passages: Sequence[Passage]) -> tuple[int, str] | None:
        """(passage number, sentence) that says what is so after a denial the answer quotes, or None: in a
        cited passage, the sentence after one the answer quotes (``quoted_run`` words in a row) that
        negates a verb, when it opens with a pronoun and the same verb and word, unnegated."""
        a_plain = _answer_plain(sentences)
        for n, passage in _cited(sentences, passages):
            quotable = set(quotable_sentences(passage, self.min_words))
            texts = split_sentences(passage.text)
            for before, after in zip(texts, texts[1:]):
                if after not in quotable or negation_count(after) or longest_common_run(_plain(before), a_plain) < self.quoted_run:
                    continue
                if longest_common_run(_plain(after), a_plain) >= self.quoted_run:
                    continue  # the answer says it already
                if any(re.match(rf"{_REFERS_BACK}{re.escape(verb)}\s+{re.escape(word)}\b", after, re.IGNORECASE) for verb, word in denied(before)):
                    return n, " ".join(after.split())
        return None

    def run(self, question: str, sentences: list[Sentence], passages: Sequence[Passage]) -> list[Sentence]:
        """``sentences`` followed by the passage sentence they rest on when they only restate a yes/no
        ``question`` or leave that sentence out, or by the sentence that corrects a denial they quote;
        ``sentences`` unchanged otherwise."""
        if not sentences or not all(s.supported for s in sentences):
            return sentences
        if is_polar(question) and self.restates(question, sentences):
            found = self.pick(question, sentences, passages)
        else:
            found = self.pick_left_out(question, sentences, passages)
        found = found or self.pick_correction(sentences, passages)
        if found is None:
            return sentences
        n, text = found
        return [*sentences, Sentence(text, (n,), 1.0, True, False)]
