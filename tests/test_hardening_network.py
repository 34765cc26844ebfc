"""Offline by construction: no outbound connection while indexing or answering, a local-only UI, no pickle.

A socket guard replaces ``socket.socket.connect`` / ``connect_ex``, ``socket.create_connection`` and
``socket.getaddrinfo``: every attempt to reach a non-loopback address (or to resolve a non-local
name) is recorded and refused. Loopback and Unix sockets pass through untouched.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import DEFAULT_SOURCES_DIR, PROJECT_ROOT, Settings

# Not imported from conftest: the guarded subprocess below imports this module, and conftest
# would switch the hub off for it (the point there is that the library does so itself).
ARTICLE = DEFAULT_SOURCES_DIR / "levelling-up-collaboration.txt"

LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host) -> bool:
    if host is None:
        return True
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name other than localhost
    return addr.is_loopback or addr.is_unspecified


class SocketGuard:
    """Records (and refuses) every non-loopback connection attempt and name lookup."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._saved: dict[str, object] = {}

    def _check(self, kind: str, address) -> None:
        if isinstance(address, (str, bytes)):  # AF_UNIX path
            return
        host = address[0] if isinstance(address, tuple) and address else address
        if not _is_local(host):
            self.attempts.append(f"{kind} {address!r}")
            raise ConnectionRefusedError(f"socket guard: outbound {kind} to {address!r} refused")

    def install(self) -> "SocketGuard":
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
        real_create, real_getaddrinfo = socket.create_connection, socket.getaddrinfo
        guard = self

        def connect(sock, address):
            guard._check("connect", address)
            return real_connect(sock, address)

        def connect_ex(sock, address):
            guard._check("connect_ex", address)
            return real_connect_ex(sock, address)

        def create_connection(address, *args, **kwargs):
            guard._check("create_connection", address)
            return real_create(address, *args, **kwargs)

        def getaddrinfo(host, *args, **kwargs):
            guard._check("getaddrinfo", (host,))
            return real_getaddrinfo(host, *args, **kwargs)

        self._saved = {"connect": real_connect, "connect_ex": real_connect_ex}
        socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
        self._saved_module = {"create_connection": real_create, "getaddrinfo": real_getaddrinfo}
        socket.create_connection, socket.getaddrinfo = create_connection, getaddrinfo
        return self

    def remove(self) -> None:
        socket.socket.connect = self._saved["connect"]
        socket.socket.connect_ex = self._saved["connect_ex"]
        socket.create_connection = self._saved_module["create_connection"]
        socket.getaddrinfo = self._saved_module["getaddrinfo"]


@pytest.fixture()
def guard():
    g = SocketGuard().install()
    try:
        yield g
    finally:
        g.remove()


def test_the_socket_guard_records_and_refuses_outbound_attempts(guard):
    # The guard must catch what it claims to, or the zero counts below would prove nothing.
    import urllib.request

    with pytest.raises(OSError):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(OSError):
            s.connect(("198.51.100.9", 80))
        with pytest.raises(OSError):
            s.connect_ex(("2001:db8::1", 80))
    finally:
        s.close()
    with pytest.raises(OSError):
        urllib.request.urlopen("http://huggingface.co/api/models", timeout=1)
    assert len(guard.attempts) == 4, guard.attempts
    # Loopback is allowed: a local server and client talk freely.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=5)
    client.close()
    server.close()
    assert len(guard.attempts) == 4


@pytest.mark.models
def test_indexing_with_a_freshly_loaded_embedder_opens_no_outbound_connection(guard, tmp_path):
    from rag.embedder import Embedder
    from rag.indexer import Indexer
    from rag.store import IndexStore

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "parks.txt").write_text("Parks policy\n\nThe council maintains 40 parks.", encoding="utf-8")
    settings = Settings().replace(index_dir=tmp_path / "idx")
    embedder = Embedder()  # a new instance: its weights and tokenizer load inside the guard
    _ = embedder.model, embedder.tokenizer
    _, report = Indexer(settings, embedder).run([tmp_path / "docs", ARTICLE], progress=False)
    assert len(report.added) == 2
    IndexStore.load(settings.index_dir)
    assert guard.attempts == []


@pytest.mark.models
def test_answering_opens_no_outbound_connection(guard, assistant):
    answer = assistant.ask("What share of swimming pools are at risk of closure?")
    assert not answer.abstained and "third" in answer.text.lower()
    assistant.ask("What is the capital of Australia?")
    assert guard.attempts == []


GUARDED_RUN = """
import json, sys
sys.path.insert(0, {tests!r})
from test_hardening_network import SocketGuard
guard = SocketGuard().install()
try:
    from rag.pipeline import Assistant
    from rag.config import Settings
    from rag.registry import loaded_backends
    assistant = Assistant(Settings.from_env().replace(index_dir={index!r}))
    report = assistant.index([{article!r}], progress=False)
    answer = assistant.ask("Why are leisure centres at risk?")
    result = {{"added": len(report.added), "abstained": answer.abstained, "text": answer.text,
              "backends": loaded_backends(), "attempts": guard.attempts}}
except BaseException as exc:
    result = {{"error": repr(exc), "attempts": guard.attempts}}
print("RESULT " + json.dumps(result))
"""


@pytest.mark.models
def test_a_cold_process_loads_every_model_indexes_and_answers_without_the_network(tmp_path):
    # A fresh interpreter: importing torch/transformers/llama.cpp, loading the embedder, the
    # generator and the judge, indexing and answering all happen inside the guard.
    code = GUARDED_RUN.format(tests=str(Path(__file__).parent), index=str(tmp_path / "idx"), article=str(ARTICLE))
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1200, env=env, cwd=tmp_path)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, proc.stderr[-3000:]
    result = json.loads(line[len("RESULT ") :])
    print(result)
    assert "error" not in result, result
    assert result["attempts"] == []
    assert result["added"] == 1 and not result["abstained"] and "energy" in result["text"].lower()


def test_the_chat_listens_on_loopback_by_default(monkeypatch):
    from rag.cli import build_parser, settings_from_args

    monkeypatch.delenv("RAG_HOST", raising=False)
    args = build_parser().parse_args(["serve"])
    assert args.host is None  # no flag: the setting decides
    assert Settings().host == "127.0.0.1"
    assert settings_from_args(args).replace(host=args.host).host == "127.0.0.1"
    monkeypatch.setenv("RAG_HOST", "0.0.0.0")
    assert settings_from_args(args).host == "0.0.0.0"  # only when asked for


_PICKLE_PATTERNS = [
    (re.compile(r"^\s*(?:import|from)\s+(?:c?pickle|dill|cloudpickle|joblib|shelve|marshal)\b", re.M), "pickle-like module"),
    (re.compile(r"\bpickle\.loads?\("), "pickle.load"),
    (re.compile(r"\btorch\.load\((?![^)]*weights_only\s*=\s*True)[^)]*\)"), "torch.load without weights_only=True"),
    (re.compile(r"allow_pickle\s*=\s*True"), "np.load(allow_pickle=True)"),
    (re.compile(r"weights_only\s*=\s*False"), "weights_only=False"),
    (re.compile(r"\b(?:pd\.read_pickle|joblib\.load)\("), "pickle reader"),
    (re.compile(r"trust_remote_code\s*=\s*True"), "trust_remote_code=True"),
]


def _sources() -> list[Path]:
    return sorted(p for folder in ("rag", "ui") for p in (PROJECT_ROOT / folder).rglob("*.py"))


def test_the_pickle_scanner_finds_what_it_looks_for():
    bad = "import pickle\nx = torch.load(path)\nnp.load(f, allow_pickle=True)\nAutoModel.from_pretrained(p, trust_remote_code=True)\n"
    found = {label for rx, label in _PICKLE_PATTERNS if rx.search(bad)}
    assert found >= {"pickle-like module", "torch.load without weights_only=True", "np.load(allow_pickle=True)", "trust_remote_code=True"}
    assert not any(rx.search("torch.load(path, weights_only=True)") for rx, _ in _PICKLE_PATTERNS)


def test_nothing_in_the_library_or_ui_loads_pickles_or_remote_code():
    files = _sources()
    assert len(files) > 10 and any(p.name == "store.py" for p in files)
    hits = [
        f"{p.relative_to(PROJECT_ROOT)}: {label}"
        for p in files
        for rx, label in _PICKLE_PATTERNS
        if rx.search(p.read_text(encoding="utf-8"))
    ]
    assert hits == []


def test_packaged_embedder_weights_are_safetensors_not_pickles():
    from rag.embedder import embedder_path

    folder = embedder_path()
    weights = [p.name for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt", ".safetensors")]
    assert "model.safetensors" in weights
    assert [w for w in weights if not w.endswith(".safetensors")] == []


def test_index_files_are_plain_json_and_faiss_never_pickle(article_settings):
    files = sorted(Path(article_settings.index_dir).iterdir())
    assert {p.suffix for p in files} == {".json", ".jsonl", ".faiss"}
    for p in files:
        data = p.read_bytes()
        if p.suffix == ".faiss":
            assert data[:4] in (b"IxM2", b"IwFl", b"IwF2"), f"{p.name} is not a FAISS index file"
        elif p.suffix == ".jsonl":
            for line in data.decode("utf-8").splitlines():
                assert isinstance(json.loads(line), dict)
        else:
            assert isinstance(json.loads(data), dict)


def test_no_secret_from_the_environment_reaches_the_index(tmp_path, monkeypatch, embedder):
    from rag.indexer import Indexer

    secret = "sk-test-" + "0123456789abcdef" * 2
    monkeypatch.setenv("RAG_OPENAI_API_KEY", secret)
    settings = Settings.from_env().replace(index_dir=tmp_path / "idx")
    Indexer(settings, embedder).run([ARTICLE], progress=False)
    files = list((tmp_path / "idx").iterdir())
    assert files and all(secret.encode() not in p.read_bytes() for p in files)
    assert secret not in repr(settings)
