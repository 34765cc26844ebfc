"""Where the evaluation's own files are: the question sets and the White Paper summary (one definition each)."""

from __future__ import annotations

from pathlib import Path

from rag import RELATED_SOURCES_DIR

#: The team's question sets, shipped with the project.
DATASETS = Path(__file__).resolve().parent / "datasets"
#: The White Paper executive summary (OGL v3.0), shipped in ``index/related/``.
WHITE_PAPER = RELATED_SOURCES_DIR / "levelling-up-white-paper-executive-summary.txt"
