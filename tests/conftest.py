"""Shared fixtures. Models come from installed packages only: the hub is switched off."""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from rag.config import DEFAULT_SOURCES_DIR, PROJECT_ROOT, Settings  # noqa: E402

from eval.paths import WHITE_PAPER  # noqa: E402  (in the default corpus, index/sources/)

ARTICLE = DEFAULT_SOURCES_DIR / "levelling-up-collaboration.txt"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


#: Fixtures that load a real model (the embedder at least): a test using one is a ``models`` test.
MODEL_FIXTURES = frozenset({"embedder", "chunker", "article_settings", "assistant", "pool", "tiny"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.models)


def pytest_configure(config):
    """When ``models`` tests are deselected, loading any model fails loudly: the fast tier stays honest."""
    if "not models" not in (config.option.markexpr or ""):
        return
    from rag import embedder, generator, query_encoder

    def refuse(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__} loaded in a test outside the `models` tier: mark the test `models`")

    for cls in (embedder.Embedder, query_encoder.QueryEncoder, generator.LlamaCppBackend, generator.TransformersBackend):
        cls.__init__ = refuse


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
    """Settings whose index (in a temporary folder) holds the article (the whole-corpus prompt path)."""
    from rag.pipeline import Assistant

    settings = Settings.from_env().replace(index_dir=tmp_path_factory.mktemp("article-index"))
    report = Assistant(settings).index([ARTICLE], progress=False)
    assert report.added and not report.skipped
    return settings


@pytest.fixture(scope="session")
def assistant(article_settings):
    from rag.pipeline import get_assistant

    return get_assistant(settings=article_settings)


#: The White Paper summary's section headings, as they stand alone on a line of its text.
WHITE_PAPER_SECTIONS = (
    "The United Kingdom’s Geographical Disparities: Drivers and Potential Policy Approaches",
    "System Change: A New Policy Regime for Levelling Up",
    "The Policy Programme: Policy Initiatives to Level Up the United Kingdom",
    "Next Steps",
)
WHITE_PAPER_TITLE = "Levelling Up the United Kingdom: executive summary"


def white_paper_pages(lines_per_page: int = 45) -> list[list[tuple[str, float]]]:
    """The White Paper summary laid out as printed pages: a title, 16 pt section headings that start
    a new page, 10 pt body lines (front matter and the web page's footer left out)."""
    import textwrap

    lines = WHITE_PAPER.read_text(encoding="utf-8").splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("This is the executive summary from the white paper"))
    body = [ln.replace("\ufb01", "fi").replace("\ufb02", "fl").strip() for ln in lines[first:-1]]
    # Paragraphs set as printed lines; a heading stays one line.
    body = [w for ln in body for w in ([ln] if ln in WHITE_PAPER_SECTIONS else textwrap.wrap(ln, 90))]
    pages: list[list[tuple[str, float]]] = [[(WHITE_PAPER_TITLE, 18.0)]]
    for ln in body:
        if not ln:
            continue
        if ln in WHITE_PAPER_SECTIONS:
            pages.append([(ln, 16.0)])
        elif len(pages[-1]) >= lines_per_page:
            pages.append([(ln, 10.0)])
        else:
            pages[-1].append((ln, 10.0))
    return pages


#: A line of a generated PDF page: its text and font size in points.
PdfLine = tuple[str, float]


def write_pdf(path: Path, pages: list[str | list[PdfLine] | None]) -> Path:
    """Write a small valid PDF with a real text layer (Helvetica, Windows-1252 text).

    Each page is a string (one line of 12 pt text), a list of ``(text, size)`` lines set top to
    bottom, or None: a scanned page, i.e. an image and no text layer.
    """
    objs: list[bytes] = []
    n_pages = len(pages)
    page_ids = [3 + 2 * i for i in range(n_pages)]
    font_id = 3 + 2 * n_pages
    image_id = font_id + 1
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] /Count {n_pages} >>".encode())
    for i, page in enumerate(pages):
        content_id = 4 + 2 * i
        if page is None:
            resources = f"/XObject << /Im1 {image_id} 0 R >>"
            stream = b"q 468 0 0 648 72 72 cm /Im1 Do Q"
        else:
            resources = f"/Font << /F1 {font_id} 0 R >>"
            lines = [(page, 12.0)] if isinstance(page, str) else page
            ops, y = [], 740.0
            for text, size in lines:
                y -= size * 1.4
                ops.append(f"BT /F1 {size:g} Tf 72 {y:.1f} Td <{text.encode('cp1252').hex()}> Tj ET")
            stream = "\n".join(ops).encode()
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << {resources} >> >>".encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    pixels = bytes((x * 37 + y * 11) % 256 for y in range(16) for x in range(16))  # a grey 16x16 "scan"
    objs.append(
        b"<< /Type /XObject /Subtype /Image /Width 16 /Height 16 /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Length %d >>\nstream\n" % len(pixels) + pixels + b"\nendstream"
    )
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
