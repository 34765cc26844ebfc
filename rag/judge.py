"""The claim-support judge: does a passage fully support a claim?

No NLI or factual-consistency model can be installed here, so the judge asks the
local instruction model a yes/no question and reads the probabilities of its
"Yes" and "No" next tokens: ``support = P(Yes) / (P(Yes) + P(No))``. The prompt
shares its head (system rules + numbered passages) with the answer prompt, so in
``ask()`` the passages are already in the KV cache and judging a sentence costs only
the short claim tail. ``threshold`` was chosen on WiCE dev (see ``eval/`` and the
README for how, and for the balanced accuracy it gives).

Usage::

    from rag.judge import Judge
    j = Judge()
    j.support("One third of pools are at risk.", passage)   # -> 0..1
    j.support_batch([(claim, passage), ...])
    j.threshold
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from .config import Settings
from .generator import Backend
from .prompts import JUDGE_SYSTEM, ChatPrompt, judge_context, judge_tail, relevance_context, relevance_tail

log = logging.getLogger(__name__)

#: P(Yes) share at or above which a claim counts as supported; chosen on WiCE dev
#: (oracle chunks, max over a claim's rows) by maximising balanced accuracy.
DEFAULT_THRESHOLD = 0.5
#: Passages longer than this many model tokens are judged in overlapping windows (max taken).
MAX_PASSAGE_TOKENS = 2400


class Judge:
    """Score how well passages support claims, with a local model.

    Args:
        backend: A generator backend (default: the process's shared judge model, see ``rag.registry``).
        threshold: Decision threshold on the support score (default ``DEFAULT_THRESHOLD``).
    """

    def __init__(self, backend: Backend | None = None, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("threshold must be between 0 and 1")
        if backend is None:
            from .registry import get_backend

            backend = get_backend(Settings.from_env(), role="judge")
        self.backend = backend
        self.threshold = threshold

    def is_supported(self, score: float) -> bool:
        return score >= self.threshold

    def _windows(self, passage: str) -> list[str]:
        n = self.backend.count_tokens(passage)
        if n <= MAX_PASSAGE_TOKENS:
            return [passage]
        # Overlapping character windows sized from the token ratio.
        size = int(len(passage) * MAX_PASSAGE_TOKENS / n * 0.9)
        step = max(1, int(size * 0.75))
        return [passage[i : i + size] for i in range(0, max(1, len(passage) - size + step), step)]

    def support(self, claim: str, passage: str) -> float:
        """Probability (0..1) that ``passage`` fully supports ``claim``."""
        if not claim.strip() or not passage.strip():
            return 0.0
        return max(
            self.backend.yes_probability(ChatPrompt(JUDGE_SYSTEM, judge_context([w]), judge_tail(claim, 1)))
            for w in self._windows(passage)
        )

    def support_batch(self, pairs: Iterable[tuple[str, str]]) -> list[float]:
        """Scores for (claim, passage) pairs; pairs sharing a passage reuse its cached prompt head."""
        pairs = list(pairs)
        out = [0.0] * len(pairs)
        for i in sorted(range(len(pairs)), key=lambda i: pairs[i][1]):
            out[i] = self.support(*pairs[i])
        return out

    def support_union(self, claim: str, passages: Sequence[str]) -> float:
        """Support of ``claim`` by ``passages`` taken together (ALCE citation recall)."""
        passages = [p for p in passages if p.strip()]
        if not passages or not claim.strip():
            return 0.0
        if len(passages) == 1:
            return self.support(claim, passages[0])
        prompt = ChatPrompt(JUDGE_SYSTEM, judge_context(passages), judge_tail(claim, len(passages)))
        return self.backend.yes_probability(prompt)

    def answers_question(self, question: str, answer: str) -> float:
        """Probability that ``answer`` actually answers ``question`` (not merely related text)."""
        prompt = ChatPrompt(JUDGE_SYSTEM, relevance_context(question), relevance_tail(answer))
        return self.backend.yes_probability(prompt)
