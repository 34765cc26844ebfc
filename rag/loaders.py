"""Load files into ``Document`` records: ``.txt``, ``.md``, ``.html``/``.htm`` and ``.pdf``.

Each loader returns the exact text that every later character offset refers to.
Page chrome saved with web pages ("top of page", "Writer's picture", share and
contact footers) is removed here, so it never becomes a passage. Metadata (title,
author, publisher, date) comes from a sidecar ``<file>.meta.json``, the PDF's document
information or the HTML ``<meta>`` tags; it opens the text as a one-line *document card*
("About this document: ..."), so questions about the document itself are answered from a
passage that can be cited and shown like any other.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LoadError
from .lists import NumberedList, numbered_lists
from .types import CARD_PREFIX, Document

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
    # GOV.UK's page footer.
    r"all content is available under the open government licen[cs]e v\d(?:\.\d)?, except where otherwise stated.{0,40}",
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


#: The fallback for legacy (non-UTF) text: by far the commonest legacy encoding of English text.
LEGACY_ENCODING = "cp1252"

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: it starts with the UTF-16 LE mark
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WORD_RE = re.compile(r"[^\W\d_]+")
_SAMPLE_CHARS = 100_000


def _is_latin(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


def _other_script_share(text: str) -> tuple[int, float]:
    """Letters of non-Latin scripts that stand in words of their own script, and their share of non-ASCII letters.

    Text in a Cyrillic, Greek or CJK encoding decodes to whole words of that script; Western text
    decoded with such an encoding gives Latin words with a stray foreign letter ("cafй").
    """
    own, non_ascii = 0, 0
    for word in _WORD_RE.findall(text):
        foreign = sum(1 for ch in word if not _is_latin(ch))
        non_ascii += sum(1 for ch in word if not ch.isascii())
        if foreign == len(word):
            own += foreign
    return own, (own / non_ascii if non_ascii else 0.0)


def _symbols_inside_words(text: str) -> int:
    """Symbols such as "¹" "³" "¿" between two letters: the mark of text decoded with the wrong code page."""
    n = 0
    for i in range(1, len(text) - 1):
        ch = text[i]
        if ch.isascii() or ch in "·’‘'":
            continue
        if unicodedata.category(ch)[0] in "SNP" and unicodedata.category(ch) not in ("Pd", "Pi", "Pf"):
            if text[i - 1].isalpha() and text[i + 1].isalpha():
                n += 1
    return n


def decode_bytes(data: bytes, name: str = "file") -> str:
    """Decode text bytes.

    UTF-8 (with or without a byte-order mark) and UTF-16/32 with a byte-order mark are read as
    such. Other bytes are read as Windows-1252 (which also reads Latin-1 text correctly) unless
    ``charset-normalizer`` finds an encoding that is clearly better: one that turns the text into
    whole words of another script (Cyrillic, Greek, CJK...), or a Latin code page when Windows-1252
    would put symbols inside words ("Zaż" read as "Za¿"). A few high bytes, such as a pound sign,
    never make a Central European code page win ("£" must not become "Ł").
    """
    if not data.strip():
        raise LoadError(f"{name}: the file is empty")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise LoadError(f"{name}: the file starts with a {encoding.upper()} mark but is not valid {encoding.upper()}") from exc
    if b"\x00" in data[:8192]:
        raise LoadError(f"{name}: this looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        legacy: str | None = data.decode(LEGACY_ENCODING)
    except UnicodeDecodeError:  # bytes that Windows-1252 leaves undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d)
        legacy = None
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None and best.encoding != LEGACY_ENCODING:
        guess = str(best)
        # The first 100,000 characters are plenty to judge by, and keep this fast on large files.
        sample, legacy_sample = guess[:_SAMPLE_CHARS], (legacy or "")[:_SAMPLE_CHARS]
        own, share = _other_script_share(sample)
        if legacy is None or (own >= 8 and share >= 0.8) or (
            _symbols_inside_words(legacy_sample) >= 2 and _symbols_inside_words(sample) == 0
        ):
            log.info("%s: decoded as %s", name, best.encoding)
            return guess
    if legacy is None:
        raise LoadError(f"{name}: could not detect the text encoding")
    log.info("%s: decoded as %s", name, LEGACY_ENCODING)
    return legacy


def _headings_plain(text: str) -> list[tuple[int, str]]:
    """Headings of plain text: short lines standing alone, without final punctuation (a short
    question, "What are the drivers?", may be one)."""
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
            and not s.endswith((".", "!", ":", ";", ","))
            and not (s.endswith("?") and len(s) > 100)
            and not s[0].islower()
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


@dataclass
class _PdfText:
    text: str
    page_starts: list[int]
    headings: list[tuple[int, str]]
    info: dict[str, Any]
    warnings: list[str]


def _page_has_image(page) -> bool:
    try:
        return len(page.images) > 0
    except Exception:  # a broken image dictionary is still an image, but we cannot tell: say no
        return False


def _font_size(cm, tm, font_size: float) -> float:
    scale = math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3])
    return round(font_size * (scale or 1.0), 1)


def _pdf_headings(page_runs: list[list[tuple[str, float]]], page_texts: list[str], starts: list[int]) -> list[tuple[int, str]]:
    """Lines set larger than the body text (the size that holds the most characters) are headings."""
    weight: dict[float, int] = {}
    for runs in page_runs:
        for text, size in runs:
            weight[size] = weight.get(size, 0) + len(text.strip())
    if not weight:
        return []
    body = max(weight, key=lambda k: weight[k])
    out: list[tuple[int, str]] = []
    for runs, page_text, page_start in zip(page_runs, page_texts, starts):
        cursor = 0
        buffer: list[str] = []

        def flush() -> None:
            nonlocal cursor
            lines = [" ".join(x.split()) for x in "".join(buffer).split("\n")]
            lines = [x for x in lines if x]
            buffer.clear()
            if not lines or not any(ch.isalpha() for ch in lines[0]):
                return
            at = page_text.find(lines[0], cursor)
            heading = " ".join(lines)
            if at >= 0 and len(heading) <= 200:
                out.append((page_start + at, heading))
                cursor = at + len(lines[0])

        for text, size in runs:
            if not text.strip():
                if buffer:
                    buffer.append(text)
                continue
            if size >= body * 1.15:
                buffer.append(text)
            elif buffer:
                flush()
        if buffer:
            flush()
    return out


def _load_pdf(path: Path) -> _PdfText:
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
        page_runs: list[list[tuple[str, float]]] = []
        warnings: list[str] = []
        for number, page in enumerate(reader.pages, 1):
            runs: list[tuple[str, float]] = []

            def visit(text, cm, tm, font_dict, font_size, runs=runs) -> None:
                if text:
                    runs.append((text, _font_size(cm, tm, font_size or 0.0)))

            pages.append(clean_text(page.extract_text(visitor_text=visit) or ""))
            page_runs.append(runs)
            if not pages[-1] and _page_has_image(page):
                warnings.append(f"page {number} has no text layer (scanned?); OCR it to index it")
        info: dict[str, Any] = {}
        md = reader.metadata
        if md:
            for key, value in (("title", md.title), ("author", md.author), ("date", md.creation_date)):
                if value:
                    info[key] = value.date().isoformat() if hasattr(value, "date") else str(value).strip()
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise LoadError(f"{path.name}: the PDF is corrupt or unreadable ({exc.__class__.__name__})") from exc
    except Exception as exc:  # pypdf has many internal failure modes on broken files
        raise LoadError(f"{path.name}: the PDF could not be read ({exc.__class__.__name__})") from exc
    if not any(p.strip() for p in pages):
        raise LoadError(f"{path.name}: the PDF has no text layer (a scan?); run OCR first")
    # Pages without text add no characters: their start is the next page's start.
    text_parts: list[str] = []
    starts: list[int] = []
    pos = 0
    for p in pages:
        if p and text_parts:
            pos += 2
        starts.append(pos)
        if p:
            text_parts.append(p)
            pos += len(p)
    text = "\n\n".join(text_parts)
    headings = _pdf_headings(page_runs, pages, starts) or _headings_plain(text)
    return _PdfText(text, starts, headings, info, warnings)


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


#: HTML ``<meta>`` names (and Open Graph / Dublin Core properties) that carry document facts.
_HTML_META = {
    "author": "author",
    "dc.creator": "author",
    "article:author": "author",
    "publisher": "publisher",
    "dc.publisher": "publisher",
    "og:site_name": "publisher",
    "date": "date",
    "dc.date": "date",
    "article:published_time": "date",
    "og:title": "title",
    "dc.title": "title",
}


def _load_html(raw: str) -> tuple[str, list[tuple[int, str]], dict[str, Any]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    info: dict[str, Any] = {}
    if soup.title and soup.title.string:
        info["title"] = soup.title.string.strip()
    for tag in soup.find_all("meta"):
        key = str(tag.get("name") or tag.get("property") or "").lower()
        value = str(tag.get("content") or "").strip()
        field = _HTML_META.get(key)
        if field and value and field not in info:
            info[field] = value
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
    warnings: list[str] = []
    if suffix == ".pdf":
        pdf = _load_pdf(path)
        text, page_starts, info, headings, warnings = pdf.text, pdf.page_starts, pdf.info, pdf.headings, pdf.warnings
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
    metadata = {**{k: v for k, v in info.items() if k != "title"}, **{k: v for k, v in meta.items() if k != "title"}}
    card = document_card(title, metadata, numbered_lists(text))
    if card:
        # The card opens page 1; every offset found in the body moves by its length.
        shift = len(card) + 2
        text = f"{card}\n\n{text}"
        page_starts = [0] + [start + shift for start in page_starts[1:]] if page_starts else page_starts
        headings = [(start + shift, heading) for start, heading in headings]
    return Document(
        doc_id=doc_id_for(text),
        source=source or str(path.resolve()),
        title=title,
        text=text,
        metadata=metadata,
        page_starts=tuple(page_starts),
        headings=tuple(headings),
        warnings=tuple(warnings),
    )


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December")


def _readable_date(value: Any) -> str:
    """``2023-03-16`` -> ``16 March 2023``; anything else as given."""
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?", str(value).strip())
    if m and 1 <= int(m.group(2)) <= 12:
        return f"{int(m.group(3))} {_MONTHS[int(m.group(2)) - 1]} {m.group(1)}"
    return str(value).strip()


def document_card(title: str, metadata: dict[str, Any], lists: Sequence[NumberedList] = ()) -> str:
    """One line stating what a document is, from its metadata and the numbered lists of its text
    (``rag.lists.numbered_lists``); empty when there is nothing but a title.

    ``About this document: "TITLE", an article written by AUTHOR, published by PUBLISHER on DATE.
    Licence: LICENCE. It numbers 12 missions, Mission One to Mission Twelve.`` (``kind``, e.g.
    "article" or "report", defaults to "document").
    """
    author = str(metadata.get("author") or "").strip()
    publisher = str(metadata.get("publisher") or "").strip()
    date = str(metadata.get("date") or "").strip()
    if not (author or publisher or date or lists):
        return ""
    kind = str(metadata.get("kind") or "document").strip()
    line = f'{CARD_PREFIX}"{" ".join(title.split())}", a {kind}'
    if author:
        line += f" written by {author}"
    when = _readable_date(date) if date else ""
    if publisher or when:
        line += ", published" + (f" by {publisher}" if publisher else "")
        line += (f" on {when}" if when[:1].isdigit() else f" in {when}") if when else ""
    line += "."
    licence = str(metadata.get("licence") or metadata.get("license") or "").strip()
    if licence:
        line += f" Licence: {licence}."
    if lists:
        line += f" It numbers {'; '.join(n.describe() for n in lists)}."
    return " ".join(line.split())


#: Licence files kept beside the sources they cover: part of a folder, not a document of it.
_LICENCE_FILE = re.compile(r"(?i)^(?:licen[cs]e|copying|notice)(?:[-_.].*)?\.(?:txt|md)$")


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Yield the supported files named by ``paths`` (files, or folders searched recursively).

    In folders, hidden files and licence files (``LICENSE*.txt``, ``LICENCE.md``, ``COPYING``...)
    are left out; a file named on its own is always yielded.
    """
    seen: set[Path] = set()
    for p in paths:
        p = Path(p)
        if p.is_dir():
            candidates = sorted(x for x in p.rglob("*") if x.is_file())
            candidates = [
                x
                for x in candidates
                if x.suffix.lower() in SUPPORTED_SUFFIXES and not x.name.startswith(".") and not _LICENCE_FILE.match(x.name)
            ]
        else:
            candidates = [p]
        for c in candidates:
            r = c.resolve()
            if r not in seen:
                seen.add(r)
                yield c
