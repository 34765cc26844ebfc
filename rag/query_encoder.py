"""A torch-free encoder for questions: the embedder's BERT forward pass in numpy.

Importing torch and sentence-transformers takes 4-6 s on a 2-core laptop, most of a cold start,
while one question is a few dozen word pieces: a forward pass of all-MiniLM-L6-v2 in numpy takes
milliseconds. ``QueryEncoder`` reads the same files sentence-transformers reads (``config.json``,
``model.safetensors``, ``tokenizer.json``, the pooling config) and gives the same unit vector
(cosine with sentence-transformers' vector above 0.99999; ``tests/test_query_encoder.py``).
Indexing still goes through sentence-transformers, which batches long chunks faster.

Only what a sentence-transformers BERT embedder with mean pooling (and optional normalisation)
needs is implemented; ``QueryEncoder.supports(path)`` says whether a model folder is one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

_ERF = np.frompyfunc(math.erf, 1, 1)


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU that BERT uses."""
    return (0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0)).astype(np.float32))).astype(np.float32)


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


class QueryEncoder:
    """Encode one text at a time with a BERT sentence embedder, in numpy.

    Args:
        path: The sentence-transformers model folder.
        max_tokens: Word pieces read before truncating, special tokens included (default: the
            folder's ``max_seq_length``, else 256).

    Raises:
        ValueError: the folder is not a BERT model with mean pooling.
    """

    def __init__(self, path: str | Path, max_tokens: int | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.path = Path(path)
        if not self.supports(self.path):
            raise ValueError(f"{self.path} is not a BERT sentence embedder with mean pooling")
        config = _json(self.path / "config.json")
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.max_tokens = max_tokens or int(_json(self.path / "sentence_bert_config.json").get("max_seq_length", 256))
        self.normalize = any(m.get("type", "").endswith("Normalize") for m in self._modules(self.path))
        self.weights = load_file(str(self.path / "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_tokens)

    @staticmethod
    def _modules(path: Path) -> list[dict]:
        modules = path / "modules.json"
        return json.loads(modules.read_text(encoding="utf-8")) if modules.is_file() else []

    @classmethod
    def supports(cls, path: str | Path) -> bool:
        """Whether ``path`` holds a BERT model, its fast tokenizer and mean pooling."""
        path = Path(path)
        config = _json(path / "config.json")
        pooling = _json(path / "1_Pooling" / "config.json")
        other_modes = ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
        return (
            config.get("model_type") == "bert"
            and config.get("hidden_act", "gelu") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and (path / "model.safetensors").is_file()
            and (path / "tokenizer.json").is_file()
            and bool(pooling.get("pooling_mode_mean_tokens"))
            and not any(pooling.get(k) for k in other_modes)
            and [m.get("type", "").rsplit(".", 1)[-1] for m in cls._modules(path)][:2] == ["Transformer", "Pooling"]
        )

    def encode(self, text: str) -> np.ndarray:
        """The float32 sentence vector of ``text`` (unit length when the model normalises)."""
        w = self.weights
        ids = np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: len(ids)]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        n, hidden = x.shape
        d = hidden // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(h: np.ndarray, name: str) -> np.ndarray:
                return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q = dense(x, "attention.self.query").reshape(n, self.heads, d).transpose(1, 0, 2)
            k = dense(x, "attention.self.key").reshape(n, self.heads, d).transpose(1, 0, 2)
            v = dense(x, "attention.self.value").reshape(n, self.heads, d).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            attn = (scores / scores.sum(-1, keepdims=True)) @ v
            attn = attn.transpose(1, 0, 2).reshape(n, hidden)
            x = _layer_norm(x + dense(attn, "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = dense(_gelu(dense(x, "intermediate.dense")), "output.dense")
            x = _layer_norm(x + h, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        vec = x.mean(0)
        if self.normalize:
            vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
        return vec.astype(np.float32)
