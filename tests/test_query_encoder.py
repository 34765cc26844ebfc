"""The numpy question encoder gives sentence-transformers' vectors, without importing torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rag.query_encoder import QueryEncoder

QUESTIONS = [
    "What share of swimming pools are at risk of closure?",
    "By how much will domestic public investment in R&D outside the greater south east increase by 2030?",
    "",
    "Ünïcödé — £20 billion [3] ‘quotes’ 日本語 🙂",
    "levelling " * 400,  # far past 256 word pieces: truncated the same way
]


@pytest.mark.parametrize("text", QUESTIONS, ids=["pools", "r-and-d", "empty", "unicode", "truncated"])
def test_a_question_vector_equals_the_sentence_transformers_vector(embedder, text):
    mine = QueryEncoder(embedder.path).encode(text)
    reference = embedder.encode([text])[0]
    assert mine.dtype == np.float32 and mine.shape == reference.shape
    assert float(mine @ reference) > 0.99999 and abs(float(np.linalg.norm(mine)) - 1.0) < 1e-5


def test_the_embedder_encodes_questions_with_it_and_reads_its_sizes_without_loading_the_model(embedder):
    assert embedder.numpy_queries and embedder.dim == 384 and embedder.max_tokens == 256
    assert float(embedder.encode_query(QUESTIONS[0]) @ embedder.encode([QUESTIONS[0]])[0]) > 0.99999


def test_a_folder_that_is_not_a_bert_embedder_is_refused_by_name(embedder, tmp_path):
    with pytest.raises(ValueError, match="not a BERT sentence embedder"):
        QueryEncoder(tmp_path)


def test_retrieving_for_a_question_never_imports_torch(article_settings):
    script = (
        "import sys\n"
        "from rag.config import Settings\n"
        "from rag.pipeline import Assistant\n"
        "r = Assistant(Settings.from_env()).collection.retriever.run('What share of swimming pools are at risk of closure?', 4)\n"
        "print(json.dumps({'hits': len(r.passages), 'torch': 'torch' in sys.modules,\n"
        "                  'st': 'sentence_transformers' in sys.modules}))\n"
    )
    env = {**os.environ, "RAG_INDEX_DIR": str(article_settings.index_dir)}
    out = subprocess.run([sys.executable, "-c", "import json\n" + script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"hits": 4, "torch": False, "st": False}


def _folder(tmp_path, *, model_type="bert", mean=True, cls=False):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type, "hidden_act": "gelu"}))
    (tmp_path / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_mean_tokens": mean, "pooling_mode_cls_token": cls})
    )
    (tmp_path / "modules.json").write_text(json.dumps([
        {"type": "sentence_transformers.models.Transformer"}, {"type": "sentence_transformers.models.Pooling"},
    ]))
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "tokenizer.json").write_text("{}")
    return tmp_path


@pytest.mark.parametrize(
    "kwargs,supported",
    [({}, True), ({"model_type": "xlm-roberta"}, False), ({"mean": False, "cls": True}, False), ({"cls": True}, False)],
)
def test_only_a_bert_folder_with_mean_pooling_is_supported(tmp_path, kwargs, supported):
    assert QueryEncoder.supports(_folder(tmp_path, **kwargs)) is supported


def test_a_folder_without_the_model_files_is_not_supported(tmp_path):
    assert not QueryEncoder.supports(tmp_path / "missing")
