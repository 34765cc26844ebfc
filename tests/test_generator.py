"""Backends: llama.cpp plumbing with the tiny packaged model, and the OpenAI-compatible client."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rag.generator import GenerationStats, LlamaCppBackend, OpenAIBackend, yes_share
from rag.models import MODELS, model_path, tiny_model_path
from rag.prompts import SYSTEM, ChatPrompt, format_context, answer_tail

PROMPT = ChatPrompt(SYSTEM, format_context([("Doc", "Bus fares are capped at £2.", None)]), answer_tail("How much is a bus fare?"))


@pytest.fixture(scope="module")
def tiny():
    return LlamaCppBackend(tiny_model_path(), n_ctx=1024)


def test_llama_backend_streams_text_and_counts_tokens(tiny):
    stats = GenerationStats()
    pieces = list(tiny.stream(PROMPT, max_tokens=12, stats=stats))
    assert pieces and all(isinstance(p, str) for p in pieces)
    assert 0 < stats.completion_tokens <= 12
    assert stats.prompt_tokens > 20 and stats.first_token_s is not None


def test_an_answer_stopped_by_the_token_limit_says_so(tiny):
    stats = GenerationStats()
    list(tiny.stream(PROMPT, max_tokens=2, stats=stats))
    assert stats.completion_tokens == 2 and stats.hit_limit


def test_a_shared_prompt_head_is_reused_from_the_kv_cache(tiny):
    list(tiny.stream(PROMPT, max_tokens=4))
    stats = GenerationStats()
    other = ChatPrompt(PROMPT.system, PROMPT.context, answer_tail("Who caps bus fares?"))
    list(tiny.stream(other, max_tokens=4, stats=stats))
    head = len(tiny.head_tokens(PROMPT))
    assert stats.cached_tokens >= head


def test_the_prompt_head_is_saved_and_loaded_from_a_state_file(tiny, tmp_path):
    cache = tmp_path / "head.llama-state"
    tiny.llm.reset()
    assert tiny.ensure_prefix(PROMPT, cache) == "computed" and cache.is_file()
    assert tiny.ensure_prefix(PROMPT, cache) == "cached"
    tiny.llm.reset()
    assert tiny.ensure_prefix(PROMPT, cache) == "loaded"
    # The loaded state answers exactly like a freshly computed one (greedy decoding).
    loaded = "".join(tiny.stream(PROMPT, max_tokens=8))
    tiny.llm.reset()
    fresh = "".join(tiny.stream(PROMPT, max_tokens=8))
    assert loaded == fresh


def test_a_state_file_for_another_prompt_is_ignored(tiny, tmp_path):
    cache = tmp_path / "head.llama-state"
    tiny.ensure_prefix(PROMPT, cache)
    other = ChatPrompt(SYSTEM, format_context([("Doc", "Libraries open at 9am.", None)]), "")
    tiny.llm.reset()
    assert tiny.ensure_prefix(other, cache) == "computed"


def test_yes_probability_is_a_probability(tiny):
    p = tiny.yes_probability(ChatPrompt("Answer Yes or No.", "", "Is the sky usually blue on a clear day?"))
    assert 0.0 <= p <= 1.0


@pytest.mark.models
def test_a_yes_no_prompt_head_read_before_is_restored_and_gives_the_same_probability(tmp_path):
    backend = LlamaCppBackend(tiny_model_path(), n_ctx=1024, head_state_cache_mb=64)
    plain = LlamaCppBackend(tiny_model_path(), n_ctx=1024, head_state_cache_mb=0)
    passages = [f"Passage {i}: the council opened {i + 2} new libraries in the north of the county." for i in range(3)]
    prompts = [ChatPrompt("Answer Yes or No.", p, "Did the council open new libraries?") for p in passages]
    first = [backend.yes_probability(p) for p in prompts]
    assert backend.head_state_hits == 0
    again = [backend.yes_probability(p) for p in prompts]  # each head was evicted from the KV cache by the next
    assert backend.head_state_hits == 3
    assert again == first == [plain.yes_probability(p) for p in prompts]
    # A new tail on a restored head is read afresh, like one on a head still in the cache.
    other = ChatPrompt("Answer Yes or No.", passages[1], "Did the council close a library?")
    assert backend.yes_probability(other) == plain.yes_probability(other)
    assert backend.head_state_hits == 4
    backend.forget_cache()  # benchmarks start cold: saved heads go too
    backend.yes_probability(prompts[0])
    assert backend.head_state_hits == 4


@pytest.mark.models
def test_a_saved_head_that_fails_to_load_is_read_again_from_its_first_token(monkeypatch):
    import llama_cpp

    backend = LlamaCppBackend(tiny_model_path(), n_ctx=1024, head_state_cache_mb=64)
    plain = LlamaCppBackend(tiny_model_path(), n_ctx=1024, head_state_cache_mb=0)
    first, second = (ChatPrompt("Answer Yes or No.", f"Passage {i}: the pool reopened in May.", "Did it reopen?") for i in (1, 2))
    backend.yes_probability(first)
    backend.yes_probability(second)  # shares the system prompt with the first: only that stays cached
    monkeypatch.setattr(llama_cpp, "llama_state_seq_set_data", lambda *args: 0)
    assert backend.yes_probability(first) == plain.yes_probability(first)
    assert backend.head_state_hits == 0


@pytest.mark.models
def test_the_head_state_budget_keeps_the_most_recent_heads_only():
    backend = LlamaCppBackend(tiny_model_path(), n_ctx=1024, head_state_cache_mb=8)  # a few 2 MB heads
    heads = [ChatPrompt("Answer Yes or No.", f"Passage {i}: " + "words " * 60, "Is it so?") for i in range(12)]
    for prompt in heads:
        backend.yes_probability(prompt)
    saved = sum(map(len, backend._head_states.values()))
    assert 0 < saved <= 8 * 1024 * 1024 and 1 < len(backend._head_states) < 12
    assert list(backend._head_states)[-1] == tuple(backend.head_tokens(heads[-1]))
    with pytest.raises(ValueError, match="head_state_cache_mb"):
        LlamaCppBackend(tiny_model_path(), n_ctx=1024, head_state_cache_mb=-1)


def test_yes_share_reads_yes_against_no():
    import numpy as np

    logits = np.zeros(10)
    logits[3], logits[7] = 2.0, 0.0
    assert yes_share(logits, [3], [7]) == pytest.approx(1 / (1 + np.exp(-2.0)))


def test_known_models_assemble_and_match_their_checksum(tmp_path):
    spec = MODELS["qwen2.5-0.5b"]
    path = model_path(spec.name, tmp_path)
    assert path.is_file() and path.with_suffix(".sha256").read_text().startswith(spec.sha256)
    assert model_path(spec.name, tmp_path) == path  # reused, not rebuilt


class _FakeOpenAI(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        if body["model"] == "missing":
            data = json.dumps({"error": {"message": "model 'missing' not found\ntry another", "type": "invalid_request_error"}}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for i, piece in enumerate(["Fares are ", "capped at £2 [1]."]):
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": "stop" if i else None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
        else:
            out = {"id": "c2", "object": "chat.completion", "created": 0, "model": body["model"], "choices": [{
                "index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Yes"},
                "logprobs": {"content": [{"token": "Yes", "logprob": -0.1, "bytes": None, "top_logprobs": [
                    {"token": "Yes", "logprob": -0.1, "bytes": None}, {"token": "No", "logprob": -2.4, "bytes": None}]}]}}]}
            data = json.dumps(out).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)


@pytest.fixture()
def fake_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    server.requests = []
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()


def test_openai_backend_streams_from_a_compatible_server(fake_server):
    b = OpenAIBackend(f"http://127.0.0.1:{fake_server.server_address[1]}/v1", "test-model")
    assert "".join(b.stream(PROMPT, max_tokens=20)) == "Fares are capped at £2 [1]."
    sent = fake_server.requests[-1]
    assert sent["model"] == "test-model" and sent["temperature"] == 0
    assert sent["messages"][0]["role"] == "system" and "Bus fares" in sent["messages"][1]["content"]


def test_openai_backend_reads_yes_probability_from_logprobs(fake_server):
    import math

    b = OpenAIBackend(f"http://127.0.0.1:{fake_server.server_address[1]}/v1", "m")
    p = b.yes_probability(PROMPT)
    assert p == pytest.approx(math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.4)))


def test_openai_backend_reports_a_refused_request_in_one_line(fake_server):
    from rag.errors import ModelServerError

    b = OpenAIBackend(f"http://127.0.0.1:{fake_server.server_address[1]}/v1", "missing")
    with pytest.raises(ModelServerError) as info:
        list(b.stream(PROMPT, max_tokens=5))
    assert str(info.value).endswith("refused the request for model 'missing' (HTTP 404: model 'missing' not found try another)")
    assert fake_server.requests[-1]["stream_options"] == {"include_usage": True}


def test_openai_backend_reports_an_unreachable_server_clearly():
    from rag.errors import ModelError

    b = OpenAIBackend("http://127.0.0.1:9/v1", "m", timeout=2)
    with pytest.raises(ModelError, match="is not reachable"):
        list(b.stream(PROMPT, max_tokens=5))


def test_the_openai_timeout_comes_from_settings():
    from rag.config import Settings
    from rag.registry import get_backend

    settings = Settings(backend="openai", openai_base_url="http://127.0.0.1:9/v1", openai_model="m", openai_timeout_s=7.5)
    backend = get_backend(settings)
    assert isinstance(backend, OpenAIBackend) and backend.timeout == 7.5
    assert Settings.from_env({"RAG_OPENAI_TIMEOUT_S": "3"}).openai_timeout_s == 3.0
    with pytest.raises(ValueError, match="openai_timeout_s"):
        Settings(openai_timeout_s=0)
