"""Number words ("twelve", "forty", "dozen") and their values, shared by the modules that read them."""

from __future__ import annotations

#: Number words a document may spell out ("three new Innovation Accelerators", "Mission Twelve").
NUMBER_WORDS: dict[str, int] = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
} | {w: 10 * i for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)} | {
    "hundred": 100, "thousand": 1000, "dozen": 12,
}


def number_value(word: str) -> int | None:
    """The value of a number written in digits ("12") or as one number word ("Twelve"); else None."""
    return int(word) if word.isdigit() else NUMBER_WORDS.get(word.lower())
