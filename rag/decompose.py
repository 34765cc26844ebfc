"""Questions that ask two or three things at once, cut into parts that are answered one by one.

"What share of pools does the article say are at risk, and how much has the government committed to
pitches according to the White Paper?" needs two passages, often from two documents. One prompt
holds one run of one document, and a small model answers the first part and drops the rest. So
``QuestionSplitter`` cuts such a question where a coordinating "and" opens a new question
("…, and how much …", "… and when was it published?") or between two question sentences, and
carries any statement before the question ("The article mentions X.") into every part. Each part
then goes through retrieval, generation and the checks on its own (``Assistant.stream``).

Only a question whose parts stand on their own is cut. "Which mission covers well-being, and what
does it aim for?" stays whole: its second part points back ("it", ``refers_back``), and answered
alone it would be a different question (on the dev questions, rewriting such parts with the first
part's answer lost as many answers as it gained).
"""

from __future__ import annotations

import re

#: Words that open a question.
_WH = r"(?:what|which|who|whom|whose|when|where|why|how)"
_AUX = r"(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had)"
#: "…, and what …", "… and when …", "…, and is …": a coordinating "and" that starts a new question.
_JOIN = re.compile(rf"(?:\s*,\s*(?:and|but)\s+(?={_WH}\b|{_AUX}\b)|\s+and\s+(?={_WH}\b))", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[\"'‘“(]?[A-Z0-9])")
#: Pronouns and demonstratives that point back to something named in an earlier part.
_BACK = re.compile(r"\b(?:it|its|they|them|their|theirs|this|that|these|those|he|she|him|his|her|hers)\b", re.IGNORECASE)


def refers_back(part: str) -> bool:
    """Whether the question sentence of ``part`` points back with a pronoun ("What does it aim for?")."""
    return bool(_BACK.search(question_sentence(part)))


#: Quotes and brackets that may open a question.
_OPENING = r"[\"'‘“(]*"
#: A question that asks for a yes or no opens with an auxiliary verb ("Does the article say…?").
_POLAR = re.compile(rf"^{_OPENING}(?:{_AUX}|am|shall|may|might|must|isn't|aren't|wasn't|weren't|doesn't|don't|didn't|can't|"
                    rf"couldn't|won't|wouldn't|shouldn't|hasn't|haven't|hadn't)\b", re.IGNORECASE)


#: "According to the article, how many …?": a frame before the question word.
_FRAME = re.compile(rf"^{_OPENING}(?:according\s+to|in)\s+[^,?]{{1,60}},\s*", re.IGNORECASE)
_QUANTITY_QUESTION = re.compile(
    rf"^{_OPENING}(?:how\s+(?:many|much)|by\s+how\s+much|what\s+(?:percentage|proportion|share|fraction|number\s+of|amount\s+of))\b",
    re.IGNORECASE,
)


def asks_for_quantity(question: str) -> bool:
    """Whether the (last) question sentence of ``question`` asks for a number or amount: "How many …?",
    "How much …?", "By how much …?", "What percentage / proportion / share / number of …?"."""
    return bool(_QUANTITY_QUESTION.match(asked_sentence(question)))


_TIME_QUESTION = re.compile(
    rf"^{_OPENING}(?:(?:since\s+|until\s+|by\s+)?when\s+(?:{_AUX}|shall|may|might|must)\b|"
    rf"(?:in|by|from|until|since)?\s*(?:what|which)\s+(?:year|date|month|day|decade|time)\b|by\s+when\b)",
    re.IGNORECASE,
)


def asks_for_time(question: str) -> bool:
    """Whether the (last) question sentence of ``question`` asks when: "When was …?", "When will …?",
    "In what year …?", "What date …?", "By when …?". A clause opening with "when" ("When the
    article was written, which round …?") is not a question about time."""
    return bool(_TIME_QUESTION.match(asked_sentence(question)))


def is_polar(question: str) -> bool:
    """Whether ``question`` (its last question sentence) asks for a yes or no: "Is …?", "Does …?",
    "Can …?", also behind a frame ("According to Michael Gove, is the fund meant to work alone?");
    a story before the question does not count. "What …?" and "Is it A or B?" are not told apart
    from yes/no by this test alone, so callers use it only to *keep* a claim, never to drop one."""
    return bool(_POLAR.match(asked_sentence(question)))


#: Kinds of thing a document names one by one: "Which councils …?" is answered by naming councils.
#: One pattern per kind, singular and plural.
NAMED_KINDS: tuple[str, ...] = (
    r"leisure\s+centres?", r"town\s+centres?", r"councils?", r"(?:local\s+|combined\s+)?authorit(?:y|ies)",
    r"towns?", r"cit(?:y|ies)", r"count(?:y|ies)", r"countr(?:y|ies)", r"nations?", r"regions?", r"organi[sz]ations?",
    r"compan(?:y|ies)", r"firms?", r"charit(?:y|ies)", r"universit(?:y|ies)", r"colleges?", r"schools?",
    r"hospitals?", r"departments?", r"ministers?", r"ministr(?:y|ies)", r"mayors?", r"MPs?",
)
_NAMES_QUESTION = re.compile(
    rf"^{_OPENING}(?:(?:with|in|at|from|for|to|by|under|on|into|of)\s+)?(?:which|what)\s+(?:of\s+the\s+)?"
    rf"(?:(?!(?:of|the|an?|{_AUX}|shall|may|might|must)\b)[\w'’-]+\s+){{0,3}}?"
    rf"(?:{'|'.join(f'({k})' for k in NAMED_KINDS)})\b",
    re.IGNORECASE,
)


def asked_kind(question: str) -> re.Pattern[str] | None:
    """The kind of named thing the (last) question sentence of ``question`` asks for, as a pattern
    that finds it in a text ("Which councils will pilot …?" → councils or council), or None.

    "Which councils will pilot …?", "Which 20 towns …?", "With which combined authorities …?" ask
    for names; a text that mentions the kind with no name near it ("… new agreements between
    councils, public bodies and communities …") does not answer them (``citations.names_near``)."""
    asked = _asked_kind_match(question)
    return None if asked is None else re.compile(rf"\b{asked[0]}\b", re.IGNORECASE)


def _asked_kind_match(question: str) -> tuple[str, str] | None:
    """(the ``NAMED_KINDS`` pattern, the words the question used for it) of a "which <kind>"
    question ("Which local authority areas …?" → (the authorities pattern, "local authority")), or None."""
    match = _NAMES_QUESTION.match(asked_sentence(question))
    if not match:
        return None
    i = next(i for i, g in enumerate(match.groups()) if g is not None)
    return NAMED_KINDS[i], match.group(i + 1)


#: Kinds named after people ("Which minister …?"): a small model cannot tell whether a person's name
#: is a mayor's or an MP's, so answers naming them are not checked by kind (``asked_place_or_body``).
_PERSON_KINDS = frozenset({r"ministers?", r"mayors?", r"MPs?"})


def asked_place_or_body(question: str) -> str | None:
    """The kind of place or body the (last) question sentence of ``question`` asks for, singular and
    lower-case ("Which local authority areas …?" → "local authority", "Which universities …?" →
    "university"), or None: for other questions, and for kinds of people (ministers, mayors, MPs).

    The verifier asks the judge whether a name in the answer is one of these, when the answer never
    uses the kind's word (``Verifier.answers_question``)."""
    asked = _asked_kind_match(question)
    if asked is None or asked[0] in _PERSON_KINDS:
        return None
    return singular(" ".join(asked[1].lower().split()))


def singular(noun: str) -> str:
    """The singular of a plural kind noun ("authorities" → "authority", "leisure centres" → "leisure
    centre", "towns" → "town"); a singular noun is returned as it is."""
    for plural, one in (("ies", "y"), ("ches", "ch"), ("sses", "ss")):
        if noun.endswith(plural):
            return noun[: -len(plural)] + one
    return noun[:-1] if noun.endswith("s") and not noun.endswith("ss") else noun


def asked_sentence(question: str) -> str:
    """The (last) question sentence of ``question`` without a frame before it: "According to the
    article, how many pools are at risk?" → "how many pools are at risk?"."""
    return _FRAME.sub("", question_sentence(question).strip())


def question_sentence(part: str) -> str:
    """The (last) question sentence of ``part``, without the statements carried before it; ``part``
    itself when it has no question sentence."""
    questions = _question_sentences(part)[1]
    return questions[-1] if questions else part.strip()


def _sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped, in order."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def situation_and_question(text: str) -> tuple[str, str]:
    """``text`` cut into the situation told before its question and the question itself.

    "I am 67 and rent my flat. Can I get Housing Benefit?" gives ("I am 67 and rent my flat.",
    "Can I get Housing Benefit?"). The situation is empty when ``text`` is only questions, when it has
    no question sentence, or when a statement follows its last question (nothing is moved about).
    """
    sentences = _sentences(text)
    asked = [i for i, s in enumerate(sentences) if s.endswith("?")]
    if not asked or asked[0] == 0 or asked[-1] != len(sentences) - 1:
        return "", " ".join(text.split())
    first = asked[0]
    return " ".join(sentences[:first]), " ".join(sentences[first:])


def _question_sentences(text: str) -> tuple[list[str], list[str]]:
    """(statements, questions) of ``text``, in order."""
    sentences = _sentences(text)
    return [s for s in sentences if not s.endswith("?")], [s for s in sentences if s.endswith("?")]


class QuestionSplitter:
    """Cut a question that asks several things into standalone parts.

    Args:
        max_parts: A question that would give more parts than this is left whole (default 3).
        min_words: Every part must keep at least this many words of its own, so "Who wrote it and
            when?" stays whole (default 3).
    """

    def __init__(self, *, max_parts: int = 3, min_words: int = 3) -> None:
        if max_parts < 2 or min_words < 1:
            raise ValueError("max_parts must be at least 2 and min_words at least 1")
        self.max_parts = max_parts
        self.min_words = min_words

    def run(self, question: str) -> list[str]:
        """The parts of ``question``, each a question of its own; ``[question]`` when it asks one thing."""
        statements, questions = _question_sentences(question)
        if len(questions) >= 2:
            asked = questions
        elif len(questions) == 1:
            asked = self._split_sentence(questions[0])
        else:
            return [question]
        if not 2 <= len(asked) <= self.max_parts or any(len(a.split()) < self.min_words for a in asked):
            return [question]
        if any(refers_back(a) for a in asked[1:]):
            return [question]  # a later part leans on an earlier one: asked alone it would change meaning
        context = " ".join(statements)
        return [f"{context} {a}".strip() for a in asked]

    @staticmethod
    def search_text(part: str) -> str:
        """The text a part of ``run`` is retrieved with: its own question sentence when that names what
        it asks about itself (no "it", "that", "they" …), the whole part otherwise.

        The statements carried before each part keep it a question of its own in the prompt, but they
        are about the first part as often as not: for "The article says reducing health inequalities
        is a stated priority. Which example does it give …, and what is the White Paper's health
        mission?" the second part searched with the statement found the article again, not the White
        Paper's mission. A part that leans on the statements ("Which example does it give …?") is
        searched with them.
        """
        return part if refers_back(part) else question_sentence(part)

    def _split_sentence(self, sentence: str) -> list[str]:
        pieces = [p.strip() for p in _JOIN.split(sentence)]
        if len(pieces) < 2:
            return [sentence]
        out = []
        for p in pieces:
            p = p.rstrip(" ,;?") + "?"
            out.append(p[0].upper() + p[1:])
        return out
