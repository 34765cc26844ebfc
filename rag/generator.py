"""Generator backends: one interface, three engines.

* ``LlamaCppBackend`` (default on CPU): a GGUF model through ``llama-cpp-python``.
  The prompt head (system rules + passages) is tokenised separately from the tail,
  so consecutive prompts that share the head reuse llama.cpp's KV cache and only
  the tail is processed.
* ``TransformersBackend``: any local Hugging Face model folder, or a GGUF file
  loaded with ``gguf_file=`` (dequantised; meant for GPU machines).
* ``OpenAIBackend``: an OpenAI-compatible HTTP server (vLLM, llama.cpp server,
  Ollama) for when one machine is not enough.

Every backend streams text pieces (greedy decoding by default) and returns the
probability of "Yes" as the next token for the claim-support judge. One backend
instance serves a whole process; a lock queues generation so that concurrent
callers never interleave.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelError, ModelServerDisconnected, ModelServerError, ModelServerTimeout, ModelServerUnavailable
from .prompts import ChatPrompt

log = logging.getLogger(__name__)

#: Serialises all llama.cpp work in the process (answer and judge contexts use the same cores).
LLAMA_CPU_LOCK = threading.RLock()

_YES = ("Yes", " Yes", "yes", " yes", "YES")
_NO = ("No", " No", "no", " no", "NO")


@dataclass
class GenerationStats:
    """Filled in while a generation runs: token counts and timings in seconds."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float | None = None
    total_s: float = 0.0
    wait_s: float = 0.0
    #: True when the answer stopped because it reached ``max_tokens``, so its last words may be cut off.
    hit_limit: bool = False
    extra: dict[str, float] = field(default_factory=dict)


class Backend(Protocol):
    """What the pipeline needs from a language model."""

    name: str

    def stream(self, prompt: ChatPrompt, *, max_tokens: int, stats: GenerationStats | None = None) -> Iterator[str]:
        """Yield the answer text piece by piece (greedy)."""
        ...

    def yes_probability(self, prompt: ChatPrompt) -> float:
        """P(next token is Yes) / (P(Yes) + P(No)) after the prompt."""
        ...

    def count_tokens(self, text: str) -> int: ...


def chatml_head(prompt: ChatPrompt) -> str:
    return f"<|im_start|>system\n{prompt.system}<|im_end|>\n<|im_start|>user\n{prompt.context}"


def chatml_tail(prompt: ChatPrompt) -> str:
    return f"{prompt.tail}<|im_end|>\n<|im_start|>assistant\n{prompt.answer_prefix}"


class LlamaCppBackend:
    """A GGUF chat model (ChatML template) run by llama.cpp on the CPU.

    Args:
        model_path: The GGUF file.
        n_ctx: Context length in tokens (default 4096).
        n_threads: CPU threads (default: all cores).
        n_batch: Prompt tokens processed per batch (default 512).
        head_state_cache_mb: Memory for saved prompt-head states, in MB (default 256; 0: none). A
            yes/no prompt (the judge's) whose head was read before restores that head's KV state in
            milliseconds instead of reading it again; the least recently used states go first.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        head_state_cache_mb: int = 256,
    ) -> None:
        import os
        from collections import OrderedDict

        from llama_cpp import Llama

        if head_state_cache_mb < 0:
            raise ValueError("head_state_cache_mb must be >= 0")
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist")
        self.name = path.stem
        t0 = time.perf_counter()
        self.llm = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads or os.cpu_count() or 2,
            n_batch=n_batch,
            logits_all=False,
            verbose=False,
        )
        self.load_s = time.perf_counter() - t0
        self.n_ctx = n_ctx
        self.n_threads = self.llm.n_threads
        self.n_batch = self.llm.n_batch
        # One lock for every llama.cpp context in the process: they share the same CPU cores.
        self.lock = LLAMA_CPU_LOCK
        self._stop_ids = {self.llm.token_eos()}
        for special in ("<|im_end|>", "<|endoftext|>"):
            ids = self.llm.tokenize(special.encode(), add_bos=False, special=True)
            if len(ids) == 1:
                self._stop_ids.add(ids[0])
        self._yes_ids = self._single_token_ids(_YES)
        self._no_ids = self._single_token_ids(_NO)
        #: Saved KV states of prompt heads: head tokens -> llama.cpp sequence state, least recent first.
        self._head_states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self._head_state_budget = head_state_cache_mb * 1024 * 1024
        self.head_state_hits = 0
        log.info("loaded %s in %.1fs", self.name, self.load_s)

    def forget_cache(self) -> None:
        """Drop the KV cache: the next prompt is processed from its first token (for benchmarks)."""
        with self.lock:
            self.llm.reset()
            self._head_states.clear()

    def close(self) -> None:
        """Free the llama.cpp context (also done at interpreter exit by the registry)."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            with self.lock:
                llm.close()
            self.llm = None

    def _single_token_ids(self, words: tuple[str, ...]) -> list[int]:
        out = []
        for w in words:
            ids = self.llm.tokenize(w.encode(), add_bos=False, special=False)
            if len(ids) == 1 and ids[0] not in out:
                out.append(ids[0])
        return out

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8", errors="replace"), add_bos=False, special=special)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text, special=False))

    def prompt_tokens(self, prompt: ChatPrompt) -> list[int]:
        """Head and tail tokenised apart, so a shared head always yields the same tokens."""
        return self._split_tokens(prompt)[0]

    def _split_tokens(self, prompt: ChatPrompt) -> tuple[list[int], int]:
        """The prompt's tokens and the length of its head."""
        head = self.head_tokens(prompt)
        tokens = head + self.tail_tokens(prompt)
        if len(tokens) >= self.n_ctx - 8:
            raise ModelError(f"the prompt has {len(tokens)} tokens, over the model's context of {self.n_ctx}")
        return tokens, len(head)

    def _reuse_head_only(self, tokens: list[int], head: int) -> int:
        """Keep at most the prompt head of what the KV cache holds; returns the tokens kept.

        The tail (question or claim) is then always evaluated afresh in one batch from the end of the
        head, so a prompt gives the same logits, and greedy decoding the same answer, whatever was
        asked before (reusing part of a previous tail changes the batching, and with it the floats).
        """
        keep = min(self._cached_prefix(tokens), head, len(tokens) - 1)
        if self.llm.n_tokens > keep:
            self.llm._ctx.kv_cache_seq_rm(-1, keep, -1)
            self.llm.n_tokens = keep
        return keep

    def _cached_prefix(self, tokens: list[int]) -> int:
        n = 0
        for a, b in zip(self.llm._input_ids, tokens):
            if a != b:
                break
            n += 1
        return n

    def stream(self, prompt: ChatPrompt, *, max_tokens: int = 160, stats: GenerationStats | None = None) -> Iterator[str]:
        stats = stats if stats is not None else GenerationStats()
        t_wait = time.perf_counter()
        with self.lock:
            t0 = time.perf_counter()
            stats.wait_s = t0 - t_wait
            tokens, head = self._split_tokens(prompt)
            stats.prompt_tokens = len(tokens)
            stats.cached_tokens = self._reuse_head_only(tokens, head)
            max_tokens = max(1, min(max_tokens, self.n_ctx - len(tokens) - 1))
            pending = b""
            n = 0
            gen = self.llm.generate(tokens, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True)
            try:
                for tok in gen:
                    if tok in self._stop_ids:
                        break
                    n += 1
                    pending += self.llm.detokenize([tok])
                    try:
                        piece = pending.decode("utf-8")
                        pending = b""
                    except UnicodeDecodeError:
                        if len(pending) > 8:
                            piece = pending.decode("utf-8", errors="replace")
                            pending = b""
                        else:
                            piece = ""
                    if piece:
                        if stats.first_token_s is None:
                            stats.first_token_s = time.perf_counter() - t0
                        yield piece
                    if n >= max_tokens:
                        stats.hit_limit = True
                        break
            finally:
                gen.close()
                stats.completion_tokens = n
                stats.total_s = time.perf_counter() - t0
            if pending:
                yield pending.decode("utf-8", errors="replace")

    # Only the chat template's own markers become special tokens. Text from documents and questions
    # is tokenised as plain text: a passage or question containing "<|im_end|><|im_start|>system"
    # stays data and cannot close the user turn or open a new system turn.

    def head_tokens(self, prompt: ChatPrompt) -> list[int]:
        """The tokens of the prompt's cacheable head (system rules + passages)."""
        return (
            self.tokenize("<|im_start|>system\n")
            + self.tokenize(prompt.system, special=False)
            + self.tokenize("<|im_end|>\n<|im_start|>user\n")
            + self.tokenize(prompt.context, special=False)
        )

    def tail_tokens(self, prompt: ChatPrompt) -> list[int]:
        """The tokens of the prompt's tail (question or claim, then the assistant turn's start)."""
        return (
            self.tokenize(prompt.tail, special=False)
            + self.tokenize("<|im_end|>\n<|im_start|>assistant\n")
            + self.tokenize(prompt.answer_prefix, special=False)
        )

    def ensure_prefix(self, prompt: ChatPrompt, cache_file: Path | None = None) -> str:
        """Make sure the KV cache holds the prompt head; returns ``cached``, ``loaded`` or ``computed``.

        With ``cache_file``, a head computed once is saved there (llama.cpp's own state format,
        written atomically) and later processes load it instead of processing the head again.
        """
        import ctypes
        import os

        import llama_cpp

        tokens = self.head_tokens(prompt)
        llm = self.llm
        with self.lock:
            if self._cached_prefix(tokens) >= len(tokens):
                return "cached"
            if cache_file is not None and cache_file.is_file():
                buf = (llama_cpp.llama_token * self.n_ctx)()
                n_out = ctypes.c_size_t(0)
                llm.reset()
                llm._ctx.kv_cache_clear()
                ok = llama_cpp.llama_state_seq_load_file(
                    llm._ctx.ctx, str(cache_file).encode(), 0, buf, self.n_ctx, ctypes.byref(n_out)
                )
                n = int(n_out.value)
                if ok and n == len(tokens) and list(buf[:n]) == tokens:
                    llm.input_ids[:n] = tokens
                    llm.n_tokens = n
                    return "loaded"
                log.warning("ignoring KV cache file %s (it does not match this prompt)", cache_file)
                llm._ctx.kv_cache_seq_rm(-1, 0, -1)
                llm.n_tokens = 0
            prefix = self._cached_prefix(tokens)
            llm.n_tokens = prefix
            llm.eval(tokens[prefix:])
            if cache_file is not None:
                cache_file.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
                arr = (llama_cpp.llama_token * len(tokens))(*tokens)
                if llama_cpp.llama_state_seq_save_file(llm._ctx.ctx, str(tmp).encode(), 0, arr, len(tokens)):
                    os.replace(tmp, cache_file)
                else:
                    tmp.unlink(missing_ok=True)
            return "computed"

    def next_token_logits(self, tokens: list[int], head: int | None = None) -> np.ndarray:
        """Evaluate ``tokens`` (reusing the cached prefix, at most the first ``head`` tokens) and return
        the next-token logits."""
        import llama_cpp

        llm = self.llm
        prefix = self._reuse_head_only(tokens, len(tokens) if head is None else head)
        # A head read before and since evicted is restored from its saved state (milliseconds, not
        # seconds); a head read now is saved after it, for the next prompt that shares it.
        save = head is not None and prefix < head < len(tokens) and self._head_state_budget > 0
        restored = self._restore_head(tokens[:head]) if save else None
        if restored is not None:  # the head, or nothing after a state that failed to load
            prefix, save = restored, restored == 0
        llm.eval(tokens[prefix:])
        ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()
        if save:
            self._save_head(tokens[:head])
        return logits

    def _restore_head(self, head_tokens: list[int]) -> int | None:
        """Bring the KV cache to exactly ``head_tokens`` from a saved state and return the tokens now
        cached: the head's length, or 0 when the state failed to load (the cache is then empty); None,
        with the cache untouched, when no state is saved. After a restore the tail is evaluated in a
        batch of its own, as when the head was still in the cache."""
        import ctypes

        import llama_cpp

        llm, key = self.llm, tuple(head_tokens)
        state = self._head_states.get(key)
        if state is None:
            return None
        self._head_states.move_to_end(key)
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        llm.n_tokens = 0
        src = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if not llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, src, len(state), 0):
            log.warning("a saved prompt-head state did not load; reading the head again")
            del self._head_states[key]
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)
            return 0
        llm._ctx.kv_cache_seq_rm(-1, len(key), -1)  # the state holds the tail it was saved with
        llm.input_ids[: len(key)] = head_tokens
        llm.n_tokens = len(key)
        self.head_state_hits += 1
        return len(key)

    def _save_head(self, head_tokens: list[int]) -> None:
        """Save the KV state just computed for a prompt whose head is ``head_tokens`` (its tail too:
        that is cut off on restore), dropping the least recently used states over the budget."""
        import ctypes

        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        if size > self._head_state_budget:
            return
        buf = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0) != size:
            return
        self._head_states[tuple(head_tokens)] = bytes(buf)
        while sum(map(len, self._head_states.values())) > self._head_state_budget:
            self._head_states.popitem(last=False)

    def yes_probability(self, prompt: ChatPrompt) -> float:
        with self.lock:
            tokens, head = self._split_tokens(prompt)
            logits = self.next_token_logits(tokens, head)
        return yes_share(logits, self._yes_ids, self._no_ids)


def yes_share(logits: np.ndarray, yes_ids: list[int], no_ids: list[int]) -> float:
    """P(yes) / (P(yes) + P(no)) from raw next-token logits."""
    ids = yes_ids + no_ids
    if not yes_ids or not no_ids:
        raise ModelError("the model's vocabulary has no single-token Yes/No")
    sub = logits[ids].astype(np.float64)
    sub -= sub.max()
    p = np.exp(sub)
    return float(p[: len(yes_ids)].sum() / p.sum())


class TransformersBackend:
    """A Hugging Face causal LM (a local folder, or a GGUF file via ``gguf_file=``); best on a GPU.

    Args:
        model: A local model folder, or a ``.gguf`` file (dequantised on load; needs the ``gguf`` package).
        device: ``cuda``, ``cpu`` or None for automatic.
    """

    def __init__(self, model: str | Path, *, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(model)
        kwargs = {}
        if path.suffix == ".gguf":
            kwargs["gguf_file"] = path.name
            folder = str(path.parent)
        else:
            folder = str(path)
        if not Path(folder).exists():
            raise ModelError(f"model {model} does not exist")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        self.model = AutoModelForCausalLM.from_pretrained(folder, **kwargs).to(self.device).eval()
        self.name = path.stem
        self.lock = threading.Lock()
        enc = lambda w: self.tokenizer.encode(w, add_special_tokens=False)  # noqa: E731
        self._yes_ids = [i[0] for i in map(enc, _YES) if len(i) == 1]
        self._no_ids = [i[0] for i in map(enc, _NO) if len(i) == 1]

    def _render(self, prompt: ChatPrompt) -> str:
        return chatml_head(prompt) + chatml_tail(prompt)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def stream(self, prompt: ChatPrompt, *, max_tokens: int = 160, stats: GenerationStats | None = None) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        stats = stats if stats is not None else GenerationStats()
        with self.lock:
            t0 = time.perf_counter()
            inputs = self.tokenizer(self._render(prompt), return_tensors="pt", add_special_tokens=False).to(self.device)
            stats.prompt_tokens = int(inputs["input_ids"].shape[1])
            streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            produced: list[int] = []

            def run() -> None:
                out = self.model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False, streamer=streamer)
                produced.append(int(out.shape[1]) - stats.prompt_tokens)

            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            n = 0
            for piece in streamer:
                if piece:
                    n += 1
                    if stats.first_token_s is None:
                        stats.first_token_s = time.perf_counter() - t0
                    yield piece
            worker.join()
            stats.completion_tokens = produced[0] if produced else n
            stats.hit_limit = stats.completion_tokens >= max_tokens
            stats.total_s = time.perf_counter() - t0

    def yes_probability(self, prompt: ChatPrompt) -> float:
        import torch

        with self.lock, torch.no_grad():
            inputs = self.tokenizer(self._render(prompt), return_tensors="pt", add_special_tokens=False).to(self.device)
            logits = self.model(**inputs).logits[0, -1].float().cpu().numpy()
        return yes_share(logits, self._yes_ids, self._no_ids)


class OpenAIBackend:
    """A chat model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    Talks to the server through the official ``openai`` client, using only the standard chat API
    (``stream=True`` for answers; ``logprobs=True, top_logprobs=N`` for the judge), so the same code
    works against vLLM, Ollama and llama.cpp servers. Every failure becomes a one-line
    ``ModelServerError``: ``ModelServerUnavailable`` (nothing listens), ``ModelServerDisconnected``
    (the server stopped mid-answer), ``ModelServerTimeout`` (no answer within ``timeout``).

    Args:
        base_url: E.g. ``http://127.0.0.1:8000/v1`` (vLLM) or ``http://127.0.0.1:11434/v1`` (Ollama).
        model: The model name the server knows.
        api_key: Sent as a bearer token when given (default: none).
        timeout: Seconds to wait for the connection and for each piece of the answer (default 120).
        top_logprobs: Alternatives asked for when reading P(Yes) (default 20, the OpenAI maximum).
    """

    def __init__(
        self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 120.0, top_logprobs: int = 20
    ) -> None:
        import openai

        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{model}"
        self.timeout = timeout
        self.top_logprobs = top_logprobs
        # A local server needs no key, but the client insists on one: send a placeholder then.
        # No retries: a down server is reported at once instead of after several back-offs.
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or "no-key", timeout=timeout, max_retries=0
        )
        self.lock = threading.Lock()  # kept for interface parity; servers queue on their own

    def _messages(self, prompt: ChatPrompt) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
        if prompt.answer_prefix:
            msgs.append({"role": "assistant", "content": prompt.answer_prefix})
        return msgs

    def _error(self, exc: BaseException, pieces: int = 0) -> ModelServerError:
        """One-line error for a failure of the server or of the connection to it."""
        import httpx
        import openai

        where = f"the model server at {self.base_url}"
        if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
            return ModelServerTimeout(
                f"{where} did not answer within {self.timeout:g} s (raise RAG_OPENAI_TIMEOUT_S if it is just slow)"
            )
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)) or (pieces and isinstance(exc, openai.APIConnectionError)):
            return ModelServerDisconnected(
                f"{where} closed the connection before the answer was complete ({pieces} pieces received): "
                "it stopped or crashed"
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = _one_line(str(exc.__cause__ or exc))
            return ModelServerUnavailable(f"{where} is not reachable ({cause}): start it or fix RAG_OPENAI_BASE_URL")
        if isinstance(exc, openai.APIStatusError):
            detail = exc.message
            if isinstance(exc.body, dict):
                detail = str(exc.body.get("message") or exc.body.get("error") or detail)
            return ModelServerError(f"{where} refused the request for model {self.model!r} (HTTP {exc.status_code}: {_one_line(detail)})")
        return ModelServerError(f"{where} failed: {_one_line(str(exc))}")

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)  # the server tokenises; this estimate only sizes prompts

    def stream(self, prompt: ChatPrompt, *, max_tokens: int = 160, stats: GenerationStats | None = None) -> Iterator[str]:
        import httpx
        import openai

        stats = stats if stats is not None else GenerationStats()
        t0 = time.perf_counter()
        n = 0
        finished = False
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=self._messages(prompt),
                max_tokens=max_tokens,
                temperature=0,
                stream=True,
                # Standard OpenAI option: vLLM and Ollama then report token counts in a last chunk.
                stream_options={"include_usage": True},
            )
            with response:
                for chunk in response:
                    usage = getattr(chunk, "usage", None)
                    if usage is not None:
                        stats.prompt_tokens = usage.prompt_tokens or stats.prompt_tokens
                        stats.completion_tokens = usage.completion_tokens or stats.completion_tokens
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    delta = choice.delta.content if choice.delta is not None else None
                    if delta:
                        n += 1
                        if stats.first_token_s is None:
                            stats.first_token_s = time.perf_counter() - t0
                        yield delta
                    if choice.finish_reason:
                        finished = True
                        stats.hit_limit = choice.finish_reason == "length"
        except (openai.APIError, httpx.HTTPError) as exc:
            raise self._error(exc, n) from exc
        finally:
            stats.completion_tokens = max(stats.completion_tokens, n)
            stats.total_s = time.perf_counter() - t0
        if not finished:
            # A stream that ends without a finish reason was cut off (the server went away between events).
            raise ModelServerDisconnected(
                f"the model server at {self.base_url} ended the answer without finishing it ({n} pieces received): "
                "it stopped, or dropped it for another request (llama_cpp.server does unless started with "
                "--interrupt_requests false)"
            )

    def yes_probability(self, prompt: ChatPrompt) -> float:
        import httpx
        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=self._messages(prompt),
                max_tokens=1,
                temperature=0,
                logprobs=True,
                top_logprobs=self.top_logprobs,
            )
        except (openai.APIError, httpx.HTTPError) as exc:
            raise self._error(exc) from exc
        if not response.choices:
            raise ModelServerError(f"the model server at {self.base_url} returned no choices")
        choice = response.choices[0]
        content = choice.logprobs.content if choice.logprobs is not None else None
        if content:
            yes = no = 0.0
            for top in content[0].top_logprobs or []:
                word = top.token.strip().lower()
                if word == "yes":
                    yes += math.exp(top.logprob)
                elif word == "no":
                    no += math.exp(top.logprob)
            if yes + no > 0:
                return yes / (yes + no)
        # No logprobs (the server does not return them) or neither word among the top tokens.
        text = (choice.message.content or "").strip().lower() if choice.message is not None else ""
        return 1.0 if text.startswith("yes") else 0.0


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
