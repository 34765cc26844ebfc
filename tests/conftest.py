"""Shared fixtures. Models come from installed packages only: the hub is switched off."""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from rag.config import DEFAULT_SOURCES_DIR, PROJECT_ROOT, Settings  # noqa: E402

SHARED = PROJECT_ROOT.parent / "shared"
ARTICLE = DEFAULT_SOURCES_DIR / "levelling-up-collaboration.txt"
WHITE_PAPER = SHARED / "corpus" / "levelling-up-white-paper-executive-summary.txt"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def embedder():
    from rag.embedder import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def chunker(embedder):
    from rag.chunker import Chunker, ChunkerConfig

    s = Settings()
    return Chunker.for_tokenizer(embedder.tokenizer, ChunkerConfig(s.chunk_tokens, s.chunk_overlap, embedder.max_tokens))


@pytest.fixture(scope="session")
def article_settings(tmp_path_factory) -> Settings:
    """Settings whose index (in a temporary folder) holds the default corpus."""
    from rag.pipeline import Assistant

    settings = Settings.from_env().replace(index_dir=tmp_path_factory.mktemp("article-index"))
    report = Assistant(settings).index([DEFAULT_SOURCES_DIR], progress=False)
    assert report.added and not report.skipped
    return settings


@pytest.fixture(scope="session")
def assistant(article_settings):
    from rag.pipeline import get_assistant

    return get_assistant(settings=article_settings)


def write_pdf(path: Path, pages: list[str]) -> Path:
    """Write a minimal valid PDF with one line of Helvetica text per page."""
    objs: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_id = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        content_id = 4 + 2 * i
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode()
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    return path


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL 18 + pgvector server for the session (see eval/pgserver.py).

    Tests that use it are marked ``pg``; when the server cannot start they fail with the reason.
    """
    from eval.pgserver import PgUnavailable, start_server

    try:
        server = start_server()
    except PgUnavailable as exc:
        pytest.fail(f"cannot start the PostgreSQL test server: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture()
def pg_schema(pg_server, request) -> str:
    """A PostgreSQL schema of its own for one test (dropped afterwards)."""
    import re
    import uuid

    import psycopg

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:6]
    yield name
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
