"""Load files into ``Document`` records: ``.txt``, ``.md``, ``.html``/``.htm`` and ``.pdf``.

Each loader returns the exact text that every later character offset refers to.
Page chrome saved with web pages ("top of page", "Writer's picture", share and
contact footers) is removed here, so it never becomes a passage. Optional metadata
(title, author, date) is read from a sidecar ``<file>.meta.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .errors import LoadError
from .types import Document

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")
META_SUFFIX = ".meta.json"
DEFAULT_MAX_BYTES = 20 * 1024 * 1024

# Whole lines that are page furniture, not content (matched case-insensitively after stripping).
_CHROME_LINES = [
    r"top of page",
    r"bottom of page",
    r"(?:[•·*\-]\s*)?writer'?’?s picture.*",
    r"skip to (?:main )?content",
    r"read more about .{0,200}\bhere\.?",
    r"to hear more about .{0,200}\bcontact\b.*",
    r"share (?:this|on) .{0,40}",
    r"(?:[•·*\-]\s*)?\d+ min read",
]
_CHROME_RE = re.compile(r"^\s*(?:" + "|".join(_CHROME_LINES) + r")\s*$", re.IGNORECASE)


def doc_id_for(text: str) -> str:
    """The content hash used as a document id (first 16 hex digits of sha256)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def clean_text(text: str) -> str:
    """Normalise newlines, drop page-chrome lines and runs of blank lines, strip the ends."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    # Control characters other than tab/newline/form feed are noise in text files.
    text = re.sub(r"[\x01-\x08\x0b\x0e-\x1f\x7f]", "", text)
    lines = [ln.rstrip() for ln in text.split("\n") if not _CHROME_RE.match(ln)]
    out = "\n".join(lines)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip()


def decode_bytes(data: bytes, name: str = "file") -> str:
    """Decode text bytes: UTF-8 first, else the encoding ``charset-normalizer`` detects."""
    if not data.strip():
        raise LoadError(f"{name}: the file is empty")
    if b"\x00" in data[:8192] and not (data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff")):
        raise LoadError(f"{name}: this looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is None:
        raise LoadError(f"{name}: could not detect the text encoding")
    # Western European text (French, Spanish...) decodes cleanly in several code pages, and the
    # detector often ranks a Baltic or Central European one first ("coûte" -> "coūte"). Windows-1252,
    # by far the commonest legacy encoding, wins when it is nearly as clean and at least as coherent.
    for match in results:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + 0.1 and match.coherence >= best.coherence:
            best = match
            break
    log.info("%s: decoded as %s", name, best.encoding)
    return str(best)


def _headings_plain(text: str) -> list[tuple[int, str]]:
    """Headings of plain text: short lines without final punctuation, standing alone."""
    out: list[tuple[int, str]] = []
    pos = 0
    lines = text.split("\n")
    for i, line in enumerate(lines):
        s = line.strip()
        prev_blank = i == 0 or not lines[i - 1].strip()
        next_blank = i + 1 >= len(lines) or not lines[i + 1].strip()
        if (
            s
            and prev_blank
            and next_blank
            and len(s) <= 120
            and not s.endswith((".", "?", "!", ":", ";", ","))
            and len(s.split()) >= 2
            and not re.match(r"(?i)(updated|published|posted|date|by)\b", s)
        ):
            out.append((pos + line.index(s[0]), s))
        pos += len(line) + 1
    return out


def _headings_markdown(text: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group(2).strip()) for m in re.finditer(r"^(#{1,6})\s+(.+)$", text, re.MULTILINE)]


def _read_meta(path: Path) -> dict[str, Any]:
    meta_path = path.with_name(path.name + META_SUFFIX)
    if not meta_path.exists():
        return {}
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: ignoring unreadable metadata file (%s)", meta_path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _load_pdf(path: Path) -> tuple[str, list[int], dict[str, Any]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as exc:  # pypdf raises several types for unsupported crypto
                raise LoadError(f"{path.name}: the PDF is encrypted ({exc})") from exc
            if not ok:
                raise LoadError(f"{path.name}: the PDF is password-protected")
        pages: list[str] = []
        for page in reader.pages:
            pages.append(clean_text(page.extract_text() or ""))
        info: dict[str, Any] = {}
        if reader.metadata and reader.metadata.title:
            info["title"] = str(reader.metadata.title)
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise LoadError(f"{path.name}: the PDF is corrupt or unreadable ({exc.__class__.__name__})") from exc
    except Exception as exc:  # pypdf has many internal failure modes on broken files
        raise LoadError(f"{path.name}: the PDF could not be read ({exc.__class__.__name__})") from exc
    if not any(p.strip() for p in pages):
        raise LoadError(f"{path.name}: the PDF has no text layer (a scan?); run OCR first")
    text_parts: list[str] = []
    starts: list[int] = []
    pos = 0
    for p in pages:
        starts.append(pos)
        text_parts.append(p)
        pos += len(p) + 2
    return "\n\n".join(text_parts), starts, info


_HIDDEN_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|font-size\s*:\s*0(?:\.0*)?(?:px|pt|em|rem|%)?\s*(?:!important)?\s*(?:;|$)"
    r"|opacity\s*:\s*0(?:\.0*)?\s*(?:!important)?\s*(?:;|$))",
    re.IGNORECASE,
)


def _is_hidden(tag) -> bool:
    attrs = getattr(tag, "attrs", None) or {}
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).lower() == "true":
        return True
    return bool(_HIDDEN_STYLE.search(str(attrs.get("style", ""))))


def _load_html(raw: str) -> tuple[str, list[tuple[int, str]], dict[str, Any]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    info: dict[str, Any] = {}
    if soup.title and soup.title.string:
        info["title"] = soup.title.string.strip()
    for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template", "svg"]):
        tag.decompose()
    # Text a browser never shows (a classic place to plant instructions for AI readers) is not content.
    for tag in soup.find_all(_is_hidden):
        if not tag.decomposed:
            tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    blocks: list[str] = []
    heads: list[tuple[int, str]] = []
    block_tags = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "blockquote", "pre", "td", "th", "dt", "dd"]
    found = root.find_all(block_tags)
    if not found:
        text = clean_text(root.get_text("\n"))
        return text, _headings_plain(text), info
    pos = 0
    for el in found:
        # Skip blocks nested inside another collected block (e.g. <p> in <li>).
        if el.find_parent(block_tags) is not None:
            continue
        t = re.sub(r"\s+", " ", el.get_text(" ")).strip()
        if not t or _CHROME_RE.match(t):
            continue
        if el.name and el.name[0] == "h" and el.name[1:].isdigit():
            heads.append((pos, t))
        blocks.append(t)
        pos += len(t) + 2
    text = "\n\n".join(blocks)
    return text, heads, info


def load_document(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES, source: str | None = None) -> Document:
    """Load one file into a ``Document``.

    Args:
        path: The file to read.
        max_bytes: Larger files are refused (default 20 MB).
        source: The source string recorded on the document (default: the resolved path).

    Raises:
        LoadError: unsupported type, empty, binary, oversized, corrupt or encrypted file.
    """
    path = Path(path)
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(f"{name}: unsupported file type {suffix or '(none)'}; use .txt, .md, .html or .pdf")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"{name}: cannot read the file ({exc.strerror})") from exc
    if size > max_bytes:
        raise LoadError(f"{name}: the file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit")
    if size == 0:
        raise LoadError(f"{name}: the file is empty")

    meta = _read_meta(path)
    page_starts: list[int] = []
    headings: list[tuple[int, str]]
    info: dict[str, Any] = {}
    if suffix == ".pdf":
        text, page_starts, info = _load_pdf(path)
        headings = _headings_plain(text)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LoadError(f"{name}: cannot read the file ({exc.strerror})") from exc
        raw = decode_bytes(data, name)
        if suffix in (".html", ".htm"):
            text, headings, info = _load_html(raw)
        else:
            text = clean_text(raw)
            headings = _headings_markdown(text) if suffix in (".md", ".markdown") else _headings_plain(text)
    if not text.strip():
        raise LoadError(f"{name}: no text found in the file")

    title = str(meta.get("title") or info.get("title") or (headings[0][1] if headings else "") or path.stem)
    metadata = {k: v for k, v in meta.items() if k != "title"}
    return Document(
        doc_id=doc_id_for(text),
        source=source or str(path.resolve()),
        title=title,
        text=text,
        metadata=metadata,
        page_starts=tuple(page_starts),
        headings=tuple(headings),
    )


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Yield the supported files named by ``paths`` (files, or folders searched recursively)."""
    seen: set[Path] = set()
    for p in paths:
        p = Path(p)
        if p.is_dir():
            candidates = sorted(x for x in p.rglob("*") if x.is_file())
            candidates = [x for x in candidates if x.suffix.lower() in SUPPORTED_SUFFIXES and not x.name.startswith(".")]
        else:
            candidates = [p]
        for c in candidates:
            r = c.resolve()
            if r not in seen:
                seen.add(r)
                yield c
