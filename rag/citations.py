"""Turn the model's raw text into cited sentences.

* ``split_sentences`` cuts an answer into sentences, keeping each sentence's ``[n]`` markers.
* ``parse_markers`` reads markers in their common shapes: ``[2]``, ``[1, 3]``, ``[1][3]``, ``[Passage 2]``.
* ``attach_citations`` validates marker numbers against the passages given to the model
  (markers that point at no passage are removed), gives an uncited sentence the passage
  that best supports it (or leaves it flagged), and renumbers the cited passages 1..m in
  order of first use.
* ``is_refusal`` recognises "the documents don't say" in its many phrasings.
* ``claim_content`` removes a sentence's attribution to its document ("According to the article, …")
  before the sentence is judged against its passage.

Nothing here raises on odd model output: every function accepts any string.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .numbers import NUMBER_WORDS
from .retriever import tokenize

log = logging.getLogger(__name__)

_MARKER = re.compile(r"\[\s*(?:(?:passages?|sources?|p)\s*)?(\d{1,4}(?:\s*(?:,|;|and|&|-|–)\s*\d{1,4})*)\s*\]", re.IGNORECASE)
_ABBREV = {"e.g", "i.e", "etc", "mr", "mrs", "ms", "dr", "prof", "st", "no", "vs", "approx", "fig", "inc", "ltd", "co", "u.k", "u.s"}
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?%?")

_REFUSAL = re.compile(
    r"(documents?|passages?|texts?|articles?|sources?|context|information provided)\s+(?:provided\s+)?"
    r"(?:do(?:es)?\s*n[o']t|do(?:es)? not|did not|didn't|cannot|can't)\s+"
    r"(?:say|state|mention|contain|provide|specify|include|answer|give|discuss|address|cover|tell)"
    r"|\bnot (?:mentioned|stated|specified|provided|included|given|covered) in the (?:documents?|passages?|text|article)"
    r"|\bno (?:information|mention|details?) (?:about|on|of|regarding|is given|in the)"
    r"|\bI (?:can(?:no|')t|am unable to|'m unable to|do not|don't) (?:answer|help|assist|provide|comply|write)"
    r"|\bI'?m sorry\b|\bas an ai\b",
    re.IGNORECASE,
)


def parse_markers(text: str) -> list[int]:
    """All passage numbers in ``text``'s markers, in order (ranges like ``[1-3]`` expanded)."""
    out: list[int] = []
    for m in _MARKER.finditer(text):
        body = m.group(1)
        for part in re.split(r"\s*(?:,|;|and|&)\s*", body):
            rng = re.split(r"\s*[-–]\s*", part)
            try:
                if len(rng) == 2:
                    a, b = int(rng[0]), int(rng[1])
                    if 0 <= b - a <= 10:
                        out.extend(range(a, b + 1))
                    continue
                out.append(int(part))
            except ValueError:
                continue
    return out


def strip_markers(text: str) -> str:
    """``text`` without markers, with the space before punctuation tidied, and a comma, semicolon or
    colon left before a full stop by a removed marker dropped ("spend on Levelling Up, [2]." → "… Up.")."""
    t = _MARKER.sub("", text)
    t = re.sub(r"\s+([.,;:!?])", r"\1", t)
    t = re.sub(r"[,;:]+([.!?])", r"\1", t)
    return re.sub(r"\s{2,}", " ", t).strip()


def split_sentences(text: str) -> list[str]:
    """Split an answer into sentences; markers after a full stop stay with their sentence."""
    text = text.strip()
    if not text:
        return []
    out: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in ".!?" or ch == "\n":
            j = i + 1
            while j < n and text[j] in ".!?\"'”’)":
                j += 1
            # Markers may follow the punctuation: "... risk. [3] Next".
            while True:
                m = re.match(r"\s*(\[[^\]\n]{1,40}\])", text[j:])
                if m and _MARKER.fullmatch(m.group(1)):
                    j += m.end()
                else:
                    break
            if ch == "\n" or j >= n or text[j].isspace():
                word = re.findall(r"[\w.]+$", text[start : i])
                prev = word[0].lower().rstrip(".") if word else ""
                nxt = text[j:].lstrip()[:1]
                is_abbrev = ch == "." and (prev in _ABBREV or (len(prev) == 1 and prev.isalpha()))
                is_decimal = ch == "." and i + 1 < n and text[i + 1].isdigit()
                if ch == "\n" or not (is_abbrev or is_decimal) and (not nxt or not nxt.islower()):
                    piece = text[start:j].strip()
                    if piece:
                        out.append(piece)
                    start = j
                    i = j
                    continue
        i += 1
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


_LEAD_IN = re.compile(
    r"^(?:according to (?:the )?(?:passages?|documents?|article|text)(?:\s*\[[\d,\s]+\])*,?\s*"
    r"|(?:the )?(?:passages?|documents?|article|text)(?:\s*\[[\d,\s]+\])* (?:states?|says?|mentions?|notes?|explains?) that\s+)",
    re.IGNORECASE,
)


#: "This can be seen in the passage where it states "…"", "This is evident from the passage, which states
#: that …": a lead-in that points at a passage before quoting it. Only removed when a clause or a quote follows.
_POINTER_LEAD_IN = re.compile(
    r"^(?:this|that|it)\s+(?:is|can\s+be|may\s+be)\s+(?:seen|evident|shown|stated|mentioned|supported|found|clear)\s+"
    r"(?:in|from|by)\s+(?:the\s+|this\s+)?(?:passages?|text|documents?)\s*,?\s*(?:where|which|that|as)\s+(?:it\s+)?"
    r"(?:states?|says?|mentions?|notes?|explains?|reads?)(?:\s+that\s+|\s*:\s*|\s+(?=[\"“‘']))",
    re.IGNORECASE,
)
#: ", as stated in [3]." once its marker is gone: ", as stated in." A pointer with nothing left to point at.
_TRAILING_POINTER = re.compile(
    r"\s*,?\s*(?:as\s+(?:stated|mentioned|noted|shown|described|explained|cited|seen|set\s+out|outlined|indicated)\s+in"
    r"|according\s+to|as\s+per|,\s*see)(?:\s+(?:the\s+)?passages?)?\s*(?P<end>[.!?]?)\s*$",
    re.IGNORECASE,
)
#: Words of a sentence that only points at a passage ("This is cited in passage [7].").
_POINTER_WORDS = frozenset(tokenize(
    "passage passages cited cites citing stated states mentioned supported supports evident seen shown quoted "
    "see refer refers reference source sources text document documents information detail details found"
))
_POINTED_AT = frozenset(tokenize("passage passages source sources text document documents cited cites citing"))


def is_pointer_only(sentence: str) -> bool:
    """Whether ``sentence`` (markers removed) only points at a passage: "This is cited in passage.",
    "See the passage for details." It says nothing, so it carries no claim of its own."""
    words = set(tokenize(sentence))
    return bool(words & _POINTED_AT) and words <= _POINTER_WORDS


def drop_lead_in(sentence: str) -> str:
    """Remove a lead-in such as "According to passage [4],", "The passage states that" or "This can be seen
    in the passage where it states", a dangling ", as stated in" (its marker removed) at the end, and the
    closing mark of a quote that an earlier sentence opened."""
    sentence = _TRAILING_POINTER.sub(lambda m: m["end"] or ".", sentence) if _TRAILING_POINTER.search(sentence) else sentence
    if re.search(r"[\"”]$", sentence) and sentence.count('"') + sentence.count("“") + sentence.count("”") == 1:
        sentence = sentence[:-1]  # the closing mark of a quote opened in an earlier sentence
    m = _LEAD_IN.match(sentence) or _POINTER_LEAD_IN.match(sentence)
    if not m or len(sentence) - m.end() < 3:
        return sentence
    rest = sentence[m.end() :]
    if m.re is _POINTER_LEAD_IN and rest[0] in "\"“‘'":
        # the quote it introduced: its opening mark, and the closing one at the end
        rest = re.sub(r"[\"”’']([.!?]?)$", r"\1", rest[1:].rstrip())
    return rest[0].upper() + rest[1:]


# ----- attribution ---------------------------------------------------------------------------------

#: Nouns that name a whole document or its author.
_DOCUMENT = r"(?:article|white\s+paper|paper|document|summary|report|author)"
#: A reference to a document or its author: "the article", "the White Paper's Next Steps section", "the author".
_SOURCE = (
    r"(?:the|this|that|its|his|her|their)\s+(?:[\w’'-]+\s+){0,4}?"
    rf"(?:{_DOCUMENT}|writer|blog(?:\s+post)?|post|passage|text|section|strategy|guidance|plan|chapter)"
    r"(?:['’]s\s+(?:[\w-]+\s+){0,3}?(?:section|summary|chapter|introduction|conclusion))?"
)
#: Verbs that report what a source says; they take a clause ("… says that X is Y").
_REPORTING = (
    r"(?:also\s+)?(?:says|said|states|stated|notes|noted|argues|argued|explains|explained|suggests|suggested|"
    r"points\s+out|pointed\s+out|emphasi[sz]es|emphasi[sz]ed|stresses|stressed|claims|claimed|reports|reported|"
    r"acknowledges|acknowledged|recogni[sz]es|recogni[sz]ed|concludes|concluded|makes\s+clear|made\s+clear|"
    r"indicates|indicated|observes|observed|writes|wrote|believes|thinks|warns|warned|adds|added|means|meant|"
    r"mentions|mentioned|highlights|highlighted|shows|showed|outlines|outlined|sets\s+out|finds|found|asserts|"
    r"asserted|maintains|maintained|contends|contended)"
)
_DEFINES = re.compile(
    rf"^{_SOURCE}\s+(?:defines|defined|describes|described|characteri[sz]es|characteri[sz]ed)\s+(?P<x>.+?)\s+as\s+(?P<y>.+)$",
    re.IGNORECASE | re.DOTALL,
)
#: "By human capital, the White Paper means the skills …": a definition told the other way round.
_BY_MEANS = re.compile(
    rf"^by\s+(?P<x>[^,\d]+?),\s+(?:the|this|its)\s+(?:[\w’'-]+\s+){{0,3}}?{_DOCUMENT}\s+(?:means|meant)\s+(?P<y>.+)$",
    re.IGNORECASE | re.DOTALL,
)
_ACCORDING = re.compile(
    rf"^(?:according\s+to|as\s+(?:stated|noted|set\s+out|described|explained)\s+in|in)\s+{_SOURCE}\s*,\s*(?P<rest>.+)$",
    re.IGNORECASE | re.DOTALL,
)
_SAYS = re.compile(rf"^{_SOURCE}\s+{_REPORTING}\s+(?P<that>that\s+)?(?P<rest>.+)$", re.IGNORECASE | re.DOTALL)
_TRAILING = re.compile(
    rf"\s*,\s*(?:according\s+to|as\s+(?:stated|noted|set\s+out)\s+in)\s+{_SOURCE}\s*(?P<end>[.!?]?)\s*$", re.IGNORECASE
)
#: A clause has a finite verb; these are the ones a reported clause without "that" is recognised by.
_FINITE = re.compile(
    r"\b(?:is|are|was|were|will|would|has|have|had|can|could|should|must|may|might|do|does|did|isn['’]t|aren['’]t|"
    r"won['’]t|can['’]t|don['’]t|doesn['’]t|didn['’]t)\b",
    re.IGNORECASE,
)


def claim_content(sentence: str) -> str:
    """What ``sentence`` claims, without its attribution to a document or its author.

    "According to the article, X", "The White Paper says (that) X", "X, according to the report",
    "The paper defines X as Y" and "By X, the paper means Y" become "X" and "X is Y": the citation
    already says which document a sentence comes from, and the claim-support judge reads the passage,
    not its title, so a frame naming the document only gets in its way. A negated frame ("The article does not say …") and a
    frame whose remainder is not a clause ("The report mentions the fund") are kept: there the frame
    is the claim. Returns ``sentence`` unchanged when nothing is removed or fewer than 3 words remain.
    """
    text = sentence.strip()
    if m := _DEFINES.match(text) or _BY_MEANS.match(text):
        out = f"{m['x']} is {m['y']}"
    elif m := _ACCORDING.match(text):
        out = m["rest"]
    elif (m := _SAYS.match(text)) and (m["that"] or _FINITE.search(m["rest"])):
        out = m["rest"]
    else:
        out = _TRAILING.sub(lambda t: t["end"] or ".", text)
    out = out.strip()
    if out == text or len(out.split()) < 3:
        return text
    return out[0].upper() + out[1:]


def is_refusal(text: str) -> bool:
    """True when ``text`` says the documents don't answer (or declines the request)."""
    return bool(_REFUSAL.search(text))


def content_overlap(sentence: str, passage: str) -> float:
    """Share of the sentence's content words (light-stemmed) that appear in ``passage`` (0..1)."""
    s = set(tokenize(sentence))
    if not s:
        return 0.0
    p = set(tokenize(passage))
    return len(s & p) / len(s)


_WORDS = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_NEGATIONS = frozenset({"not", "no", "never", "none", "nor", "neither", "without", "cannot"})


def _words(text: str) -> list[str]:
    return [w.replace("’", "'") for w in _WORDS.findall(text.lower())]


def _is_negation(word: str) -> bool:
    return word in _NEGATIONS or word.endswith("n't")


#: The hyphen inside a compound ("no-fault", "not-for-profit"): the compound is one word, not a negation.
_COMPOUND_HYPHEN = re.compile(r"(?<=\w)[-‐‑](?=\w)")


#: Words after which "not" narrows nothing away: "not only A but also B" affirms A.
FOCUS_WORDS = frozenset({"only", "just", "merely", "simply", "solely", "exclusively"})


def negation_count(text: str, *, focus: bool = True) -> int:
    """How many negating words ("not", "no", "never", "cannot", "don't", ...) ``text`` has. A
    hyphenated compound counts as one word: "no-fault evictions" negates nothing.

    ``focus`` (default True) counts "not" before a focusing word ("not only", "not just") too. Pass
    False where the text answers a question that asks nothing about "only": "Effective collaboration
    requires not only creative thinking but also …" affirms that it needs creative thinking, and more.
    """
    words = _words(_COMPOUND_HYPHEN.sub("", text))
    return sum(
        _is_negation(w) and (focus or w != "not" or i + 1 == len(words) or words[i + 1] not in FOCUS_WORDS)
        for i, w in enumerate(words)
    )


def verbatim_coverage(sentence: str, passage: str, n: int = 4) -> float:
    """Share of the sentence's words (0..1) that lie inside a run of ``n`` or more words copied
    in order from ``passage`` (default n=4).

    A sentence mostly quoted from its passage is supported by it, whatever a small judge model
    makes of the paraphrased rest. A negation the passage does not have in that place is never
    covered (and then the result is 0): "X is not Y" is not a quote of "X is Y".
    """
    words = _words(sentence)
    if len(words) < n:
        return 0.0
    pw = _words(passage)
    grams = {tuple(pw[i : i + n]) for i in range(len(pw) - n + 1)}
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if tuple(words[i : i + n]) in grams:
            for j in range(i, i + n):
                covered[j] = True
    if any(_is_negation(w) and not c for w, c in zip(words, covered)):
        return 0.0
    return sum(covered) / len(words)


#: Share of an answer sentence that must be copied from its passage in runs of 4+ words to count as a quote.
EXTRACTIVE_MIN_COVERAGE = 0.6
#: Shorter sentences are left to the judge: a few copied words (a link, a planted sign-off) are not a claim.
EXTRACTIVE_MIN_WORDS = 8


def is_extractive(
    sentence: str,
    passage: str,
    question: str = "",
    *,
    min_coverage: float = EXTRACTIVE_MIN_COVERAGE,
    min_words: int = EXTRACTIVE_MIN_WORDS,
) -> bool:
    """True when ``sentence`` (``min_words``, default 8, or more) is essentially quoted from ``passage``:
    at least ``min_coverage`` (default 60%) of its words lie in runs of 4+ words copied from it (no
    negation of its own), and it adds content words beyond the question, all of them from the passage.
    Such a sentence adds nothing the passage does not say.
    """
    if len(_words(sentence)) < min_words or verbatim_coverage(sentence, passage) < min_coverage:
        return False
    words, asked = set(tokenize(sentence)), set(tokenize(question))
    # It must add something beyond the question (an echo of the question answers nothing) and all of it
    # must come from the passage.
    return bool(words - asked) and words - asked <= set(tokenize(passage))


#: Numbers a passage may spell out ("three new Innovation Accelerators", "Mission Twelve") that an
#: answer writes in digits.
_NUMBER_WORDS = {w: str(v) for w, v in NUMBER_WORDS.items()}
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)


def numbers_in(text: str) -> set[str]:
    """The numbers written in digits in ``text`` ("£2,500" -> "2500", "40%" -> "40")."""
    return {m.group(0).rstrip("%").replace(",", "") for m in _NUMBER.finditer(text)}


#: Words that state an exact amount besides the number words: fractions and multiples.
_AMOUNT_WORD = re.compile(
    r"\b(?:half|halve[sd]?|a\s+(?:third|quarter|fifth|tenth)\s+of|twice|double[sd]?|doubling|triple[sd]?|treble[sd]?|"
    r"million|billion|trillion|per\s*cent|percent)\b",
    re.IGNORECASE,
)


def states_quantity(text: str) -> bool:
    """Whether ``text`` states a number or amount: digits ("£2,500", "40%"), a number word ("twelve"),
    a fraction or multiple ("one third", "doubled"). An ordinal alone ("Fifth, …") and a vague
    quantifier ("a small fraction", "many") are not amounts."""
    return bool(_NUMBER.search(text) or _NUMBER_WORD.search(text) or _AMOUNT_WORD.search(text))


#: Words and forms that place something in time: years, decades, months, days, seasons, clock times and the
#: words that relate one time to another ("after", "since", "next", "ago" …).
_TIME = re.compile(
    r"\b(?:1[5-9]\d\d|2[01]\d\d|\d{2,4}s|"
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|"
    r"nov(?:ember)?|dec(?:ember)?|(?:mon|tues|wednes|thurs|fri|satur|sun)days?|weekends?|weekdays?|"
    r"morning|afternoon|evening|night|noon|midday|midnight|hours?|o'clock|"
    r"spring|summer|autumn|winter|today|yesterday|tomorrow|tonight|now|currently|recently|soon|shortly|already|"
    r"immediately|eventually|initially|later|earlier|once|when|whenever|if|unless|provided|after|afterwards|before|"
    r"during|following|since|until|till|ago|next|last|previous|previously|future|past|end\s+of|"
    r"years?|months?|weeks?|days?|decades?|centur(?:y|ies)|quarters?|annual(?:ly)?|yearly|monthly|weekly|daily|"
    r"deadline|dated?|period|phase|era)\b|(?-i:\bMay\b)|"
    r"\b\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)|\b\d{1,2}:\d{2}\b",
    re.IGNORECASE,
)


def states_time(text: str) -> bool:
    """Whether ``text`` places anything in time: a year, month, day, season or clock time ("in 2030",
    "on 16 March", "this spring", "at 9am on Saturdays"), a span ("over the next decade") or a word relating one time to another
    ("after Covid-19", "since the White Paper", "by the end of the Parliament"), or a condition
    ("if", "when", "unless": "When can I claim?" is answered by "You can claim if …"). Deliberately
    broad: a "when" question answered without any of them is not answered."""
    return bool(_TIME.search(strip_markers(text)))


_NAME = re.compile(r"\b[A-Z][\w'’&-]*")


def names_near(text: str, kind: re.Pattern[str], question: str, *, window: int = 6) -> bool | None:
    """Whether ``text`` names, near a mention of ``kind``, something ``question`` does not: a
    capitalised word within ``window`` words (default 6) of "councils", "towns" …, that is not a
    word of the question nor the first word of a sentence. None when ``text`` never mentions the
    kind: then it may name them without the word ("DLUHC's second headquarters in Wolverhampton" to
    "Which town is DLUHC moving to?"), and this test cannot tell.

    "… trailblazer deeper devolution deals with the West Midlands and Greater Manchester combined
    authorities" names; "… in our experience working with councils and their partners to develop
    place-based strategies …" does not, to "Which councils has Mutual Ventures worked with?"."""
    asked = {w.lower() for w in _words(question)}
    mentioned = False
    for sentence in split_sentences(strip_markers(text)):
        tokens = [(m.start(), m.group(0)) for m in re.finditer(r"[\w'’&-]+", sentence)]
        spans = [m.span() for m in kind.finditer(sentence)]
        if not spans:
            continue
        mentioned = True
        for i, (start, token) in enumerate(tokens):
            if not _NAME.fullmatch(token):
                continue
            word = token.rstrip("'’-").lower()
            if i == 0 or word in asked or word == "i":
                continue  # a sentence's first word is capitalised whatever it is
            if any(_word_gap(tokens, start, s, e) <= window for s, e in spans):
                return True
    return False if mentioned else None


#: Capitalised words that open a sentence or a clause without naming anything.
_NOT_NAMES = frozenset(
    "a an the this these that those it its they their there here we our us you your he she his her i "
    "in on at by for from to of with about amid as and but or so yet if when while where which who what "
    "however also such some many more most each every all one two three four five first second third "
    "next last then thus".split()
)


def names_in(text: str, question: str, *, limit: int = 6) -> list[str]:
    """The names ``text`` mentions that ``question`` does not, in order and at most ``limit`` (default
    6): runs of capitalised words, joined across "of" and "the" ("University of Manchester") and cut
    at punctuation and "and" ("Birmingham, Manchester and Leeds" gives three). A run made only of
    the question's words or of words that open sentences ("The", "These") is not a name.

    "These pilots will be centred on Greater Manchester, the West Midlands, and Glasgow City-Region"
    gives ["Greater Manchester", "West Midlands", "Glasgow City-Region"]."""
    asked = set(_words(question))
    found: list[str] = []
    for sentence in split_sentences(strip_markers(text)):
        run: list[str] = []
        last_end = 0
        for m in re.finditer(r"[\w'’&-]+", sentence):
            token = m.group(0)
            joined = not run or not sentence[last_end : m.start()].strip()  # no punctuation between
            last_end = m.end()
            if _NAME.fullmatch(token) and joined:
                run.append(token)
                continue
            if run and joined and token in ("of", "the"):
                run.append(token)
                continue
            _add_name(run, asked, found)
            run = [token] if _NAME.fullmatch(token) else []
        _add_name(run, asked, found)
    return found[:limit]


def asked_names(question: str) -> list[str]:
    """The names a question mentions (``names_in``), its sentences' first words aside: "At what
    level have Integrated Care Boards been established?" gives ["Integrated Care Boards"]."""
    lowered = re.sub(r"(^|[.?!]\s+)([A-Z])", lambda m: m.group(1) + m.group(2).lower(), question.strip())
    return names_in(lowered, "")


def mentions_name(text: str, name: str) -> bool:
    """Whether ``text`` mentions ``name``: one of its words as a whole word, in any case (a word of
    three letters or more, or an all-capitals one such as "UK"; "of", "the" and the like do not
    count), or its initials ("LUF" for "Levelling Up Fund").

    Deliberately loose: "the Boards" mentions "Integrated Care Boards"; what it rules out is text
    that never comes near the name."""
    words = [w.rstrip("'’-") for w in name.split() if w.lower() not in _NOT_NAMES]
    plain = strip_markers(text)
    low = plain.lower()
    for w in words:
        if (len(w) > 2 or w.isupper()) and re.search(rf"(?<![\w&]){re.escape(w.lower())}(?![\w&])", low):
            return True
    initials = "".join(w[0] for w in words if w[:1].isupper())
    return len(initials) >= 2 and re.search(rf"\b{re.escape(initials)}\b", plain) is not None


def _add_name(run: list[str], asked: set[str], found: list[str]) -> None:
    while run and run[-1] in ("of", "the"):
        run.pop()
    words = [w.rstrip("'’-").lower() for w in run]
    if not run or all(w in asked or w in _NOT_NAMES for w in words):
        return
    while run and run[0].lower() in _NOT_NAMES:  # "The West Midlands" → "West Midlands"
        run.pop(0)
    name = " ".join(run)
    if name and name not in found:
        found.append(name)


def _word_gap(tokens: list[tuple[int, str]], at: int, start: int, end: int) -> int:
    """How many tokens lie between the token starting at ``at`` and the span ``start:end``."""
    if start <= at < end:
        return 0
    lo, hi = (at, start) if at < start else (end - 1, at)
    return sum(1 for pos, _ in tokens if lo < pos < hi)


def unsupported_numbers(sentence: str, passages: Sequence[str]) -> set[str]:
    """Numbers in ``sentence`` that none of ``passages`` contains (a sign of invented figures).

    A passage's number may be spelt out: "three" in a passage supports "3" in the sentence.
    """
    have: set[str] = set()
    for p in passages:
        have |= numbers_in(p) | {_NUMBER_WORDS[m.group(1).lower()] for m in _NUMBER_WORD.finditer(p)}
    return {x for x in numbers_in(sentence) if x not in have}


@dataclass(frozen=True)
class CitedSentence:
    """A sentence with the prompt passage numbers (1-based) it cites."""

    text: str
    cites: tuple[int, ...]
    inferred: bool = False
    refusal: bool = False


def attach_citations(raw: str, passages: Sequence[str], *, min_overlap: float = 0.5) -> list[CitedSentence]:
    """Parse ``raw`` into sentences with valid citations into ``passages`` (numbered from 1).

    Markers outside 1..len(passages) are dropped. A sentence left without a marker gets
    the passage with the highest content-word overlap when that overlap reaches
    ``min_overlap`` (default 0.5), marked ``inferred``; otherwise it stays uncited.
    """
    out: list[CitedSentence] = []
    for sent in split_sentences(raw):
        cites = []
        for n in parse_markers(sent):
            if 1 <= n <= len(passages) and n not in cites:
                cites.append(n)
        clean = drop_lead_in(strip_markers(sent))
        if not clean or not re.search(r"\w", clean) or is_pointer_only(clean):
            # A bare marker line ("[2]"), or a sentence that only points at a passage ("This is cited in
            # passage [2]."), belongs to the previous sentence.
            if out and cites:
                prev = out[-1]
                merged = tuple(dict.fromkeys(prev.cites + tuple(cites)))
                out[-1] = CitedSentence(prev.text, merged, prev.inferred and not cites, prev.refusal)
            continue
        refusal = is_refusal(clean)
        inferred = False
        if not cites and not refusal and passages:
            scores = [content_overlap(clean, p) for p in passages]
            best = max(range(len(passages)), key=lambda i: scores[i])
            if scores[best] >= min_overlap:
                cites = [best + 1]
                inferred = True
        out.append(CitedSentence(clean, tuple(cites), inferred, refusal))
    return out


def drop_cut_off(sentences: Sequence[CitedSentence]) -> list[CitedSentence]:
    """``sentences`` without the last one when it does not end a sentence.

    For an answer that stopped at the token limit: its last words ("These pilots will be cent")
    may be cut mid-word, and a fragment is not something to cite, check or show.
    """
    out = list(sentences)
    if out and not re.search(r"[.!?…:;][\"'”’)\]]*$", out[-1].text.rstrip()):
        log.info("answer cut off at the token limit: dropped %r", out[-1].text)
        out.pop()
    return out


def render(sentences: Sequence[CitedSentence]) -> str:
    """Answer text with each sentence's markers placed before its final punctuation."""
    parts = []
    for s in sentences:
        marks = "".join(f"[{c}]" for c in s.cites)
        text = s.text
        if marks:
            m = re.search(r"([.!?]+[\"'”’)]*)$", text)
            text = f"{text[: m.start()]} {marks}{m.group(1)}" if m else f"{text} {marks}"
        parts.append(text)
    return " ".join(parts)
