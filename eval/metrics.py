"""Metric functions of the evaluation harness (pure Python, no models).

Retrieval: recall@k, MRR, nDCG@10. Answers: SQuAD-style exact match and token F1,
required facts. Abstention: precision, recall, wrong-refusal rate. Judge: ROC AUC
and balanced accuracy, with the threshold that maximises balanced accuracy.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from rag import CARD_PREFIX

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)

#: Facts that are a yes/no question's verdict: they count only as the answer's first word.
_VERDICTS = frozenset({"yes", "no"})


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD normalisation), no [n] markers."""
    text = re.sub(r"\[\d+(?:\s*,\s*\d+)*\]", " ", text)
    text = text.lower().replace("’", "'").replace("‘", "'")
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction: str, reference: str) -> float:
    p = normalize_answer(prediction).split()
    r = normalize_answer(reference).split()
    if not p or not r:
        return float(p == r)
    common = Counter(p) & Counter(r)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(r)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def best_over(refs: Sequence[str], pred: str, fn) -> float:
    return max((fn(pred, r) for r in refs), default=0.0)


def contains_answer(prediction: str, reference: str) -> float:
    """1 when the normalised reference appears, as whole words, inside the normalised prediction.

    For short gold answers. A "yes" or "no" reference (a yes/no question's verdict) must be the
    prediction's first word: "You do not qualify" does not contain the answer "no", and neither
    does "There is no limit".
    """
    r = normalize_answer(reference)
    p = normalize_answer(prediction)
    if not r:
        return 0.0
    if r in _VERDICTS:
        return float(p.split()[:1] == [r])
    return float(re.search(rf"(?<!\S){re.escape(r)}(?!\S)", p) is not None)


def is_verdict_gold(references: Sequence[str]) -> bool:
    """Whether every gold answer is a bare "yes" or "no" (a yes/no question; ConditionalQA has both kinds)."""
    return bool(references) and all(normalize_answer(r) in _VERDICTS for r in references)


def opens_with_verdict(prediction: str) -> bool:
    """Whether ``prediction``'s first word is "Yes" or "No"."""
    return normalize_answer(prediction).split()[:1] in (["yes"], ["no"])


def gold_answered(prediction: str, references: Sequence[str]) -> bool:
    """Whether ``prediction`` holds one of the gold ``references``: it contains it (``contains_answer``),
    or, for a reference that is not a bare yes/no verdict, shares at least half its words (token F1 >= 0.5)."""
    return any(
        contains_answer(prediction, r)
        or (normalize_answer(r) not in _VERDICTS and token_f1(prediction, r) >= 0.5)
        for r in references
    )


def _squash(text: str) -> str:
    t = text.lower().replace("’", "'").replace("‘", "'").replace("–", "-").replace("—", "-")
    return " ".join(t.split())


def _has_fact(answer: str, alternative: str) -> bool:
    x = _squash(alternative)
    if x in _VERDICTS:
        return re.match(rf"{x}\b", answer) is not None
    return x in answer


def facts_present(answer: str, facts: Sequence[Sequence[str]]) -> tuple[bool, list[str]]:
    """Whether every fact (a list of alternatives) appears in ``answer``; and the missing facts.

    Alternatives match as substrings, case-insensitively, except a "Yes" or "No" fact (a yes/no
    question's verdict), which must open the answer: "Leisure centres do not qualify" has no "No".
    """
    a = _squash(answer)
    missing = [alts[0] for alts in facts if not any(_has_fact(a, x) for x in alts)]
    return not missing, missing


def quote_contains(quote: str, sentence: str) -> bool:
    """Whether a cited passage contains a supporting sentence (whitespace-insensitive)."""
    return _squash(sentence) in _squash(quote)


def holds_evidence(text: str, source: str, evidence: Sequence[str], item: dict) -> bool:
    """Whether a passage (or a citation's quote) holds the evidence for ``item``.

    It does when ``text`` contains one of the ``evidence`` sentences (whitespace-insensitive), or
    when it is the document card (``About this document: ...``, made from a source's metadata) of a
    file the item names in ``source`` and the card states every required fact (one alternative of
    each): "when was it published" is answered from the card, and the source view shows the card.
    """
    if any(quote_contains(text, s) for s in evidence):
        return True
    facts = item.get("required_facts") or []
    if not facts or not text.startswith(CARD_PREFIX) or Path(source).name not in set(item.get("source") or []):
        return False
    return facts_present(text, facts)[0]


def cites_evidence(citations: Sequence, evidence: Sequence[str], item: dict) -> bool:
    """Whether any of an answer's citations holds the evidence for ``item`` (see ``holds_evidence``)."""
    return any(holds_evidence(c.quote, c.source, evidence, item) for c in citations)


def recall_at_k(relevant: set, ranked: Sequence, k: int) -> float:
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[:k])) / len(relevant)


def reciprocal_rank(relevant: set, ranked: Sequence) -> float:
    for i, x in enumerate(ranked, 1):
        if x in relevant:
            return 1.0 / i
    return 0.0


def ndcg_at_k(relevant: set, ranked: Sequence, k: int = 10) -> float:
    dcg = sum(1.0 / math.log2(i + 1) for i, x in enumerate(ranked[:k], 1) if x in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal if ideal else 0.0


def abstention_scores(should_decline: Sequence[bool], declined: Sequence[bool]) -> dict[str, float]:
    """Precision and recall of declining, and the share of answerable questions wrongly refused."""
    tp = sum(1 for s, d in zip(should_decline, declined) if s and d)
    fp = sum(1 for s, d in zip(should_decline, declined) if not s and d)
    fn = sum(1 for s, d in zip(should_decline, declined) if s and not d)
    n_answerable = sum(1 for s in should_decline if not s)
    return {
        "abstention_precision": tp / (tp + fp) if tp + fp else 1.0,
        "abstention_recall": tp / (tp + fn) if tp + fn else 1.0,
        "wrong_refusal_rate": fp / n_answerable if n_answerable else 0.0,
    }


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (labels: 1 = positive), ties counted half."""
    pos = [s for l, s in zip(labels, scores) if l == 1]
    neg = [s for l, s in zip(labels, scores) if l == 0]
    if not pos or not neg:
        return float("nan")
    wins = 0.0
    for p in pos:
        for n in neg:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(pos) * len(neg))


def roc_curve(labels: Sequence[int], scores: Sequence[float]) -> tuple[list[float], list[float]]:
    """(false-positive rates, true-positive rates) over all thresholds."""
    P = sum(1 for l in labels if l == 1)
    N = len(labels) - P
    pts = [(0.0, 0.0)]
    for t in sorted(set(scores), reverse=True):
        tp = sum(1 for l, s in zip(labels, scores) if s >= t and l == 1)
        fp = sum(1 for l, s in zip(labels, scores) if s >= t and l == 0)
        pts.append((fp / N if N else 0.0, tp / P if P else 0.0))
    pts.append((1.0, 1.0))
    return [p[0] for p in pts], [p[1] for p in pts]


def balanced_accuracy(labels: Sequence[int], scores: Sequence[float], threshold: float) -> float:
    tp = sum(1 for l, s in zip(labels, scores) if l == 1 and s >= threshold)
    tn = sum(1 for l, s in zip(labels, scores) if l == 0 and s < threshold)
    P = sum(1 for l in labels if l == 1)
    N = len(labels) - P
    if not P or not N:
        return float("nan")
    return 0.5 * (tp / P + tn / N)


def best_threshold(labels: Sequence[int], scores: Sequence[float]) -> tuple[float, float]:
    """The threshold (midpoint between neighbouring scores) maximising balanced accuracy, and that accuracy."""
    cand = sorted(set(scores))
    thresholds = [0.5] + [(a + b) / 2 for a, b in zip(cand, cand[1:])] + ([cand[0]] if cand else [])
    best = max(thresholds, key=lambda t: (balanced_accuracy(labels, scores, t), -abs(t - 0.5)))
    return best, balanced_accuracy(labels, scores, best)


def mean(values: Iterable[float]) -> float:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(v) / len(v) if v else float("nan")


# ----- why answerable questions were missed -------------------------------------------------------

#: Why an answerable question was not answered correctly: key -> label, in a fixed order. The first five
#: are the abstention reasons of ``rag.Reason`` (stored in rows as their string values).
MISS_REASONS: dict[str, str] = {
    "no_relevant_passages": "nothing retrieved (abstained: no relevant passages)",
    "model_declined": "model declined",
    "unsupported": "sentences unsupported by their citations",
    "not_an_answer": "judged not an answer to the question",
    "off_topic": "treated as off topic",
    "missing_fact": "answered, but an asked fact is missing",
    "no_supporting_citation": "answered, but no citation contains the supporting sentence",
    "other": "other (abstained without a known reason)",
}


def miss_reason(row: dict) -> str | None:
    """Why an answerable row was missed (a ``MISS_REASONS`` key); ``None`` for a correct or non-answerable row.

    An abstention counts under its reason. An answer that misses a fact counts as ``missing_fact`` even
    when its citations are also wrong; ``no_supporting_citation`` is for answers with every fact.
    """
    if row.get("type") != "answerable" or row.get("correct"):
        return None
    if row.get("abstained"):
        reason = str(row.get("reason") or "")
        return reason if reason in MISS_REASONS else "other"
    if not row.get("facts_ok", True):
        return "missing_fact"
    if not row.get("cited_supporting", True):
        return "no_supporting_citation"
    return "other"


def misses_by_reason(rows: Iterable[dict]) -> dict[str, int]:
    """Counts of missed answerable rows per reason, every ``MISS_REASONS`` key, most frequent first."""
    counts = dict.fromkeys(MISS_REASONS, 0)
    for row in rows:
        reason = miss_reason(row)
        if reason is not None:
            counts[reason] += 1
    order = list(MISS_REASONS)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], order.index(kv[0]))))


def wrong_refusals(rows: Iterable[dict]) -> float:
    """Share of answerable rows that abstained (``nan`` without answerable rows)."""
    answerable = [r for r in rows if r.get("type") == "answerable"]
    return sum(1 for r in answerable if r.get("abstained")) / len(answerable) if answerable else float("nan")
