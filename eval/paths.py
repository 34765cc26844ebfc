"""Where the evaluation's own files are: the question sets and the White Paper summary (one definition each)."""

from __future__ import annotations

from pathlib import Path

from rag import DEFAULT_SOURCES_DIR

#: The team's question sets, shipped with the project.
DATASETS = Path(__file__).resolve().parent / "datasets"
#: The article, in the default corpus (``index/sources/``).
ARTICLE = DEFAULT_SOURCES_DIR / "levelling-up-collaboration.txt"
#: The White Paper executive summary (OGL v3.0), in the default corpus beside the article.
WHITE_PAPER = DEFAULT_SOURCES_DIR / "levelling-up-white-paper-executive-summary.txt"
