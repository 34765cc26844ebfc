from __future__ import annotations

import pytest

from conftest import ARTICLE, write_pdf
from rag.errors import LoadError
from rag.loaders import clean_text, doc_id_for, iter_files, load_document


def test_article_page_chrome_is_removed_and_content_kept():
    doc = load_document(ARTICLE)
    for chrome in ("top of page", "bottom of page", "Writer's picture", "Read more about", "To hear more about"):
        assert chrome.lower() not in doc.text.lower()
    assert doc.text.startswith("Levelling Up is a clarion call")
    assert "one third of swimming pools are at risk of closure" in doc.text
    assert doc.text.rstrip().endswith("work harder to do things together.")


def test_article_metadata_comes_from_the_sidecar():
    doc = load_document(ARTICLE)
    assert doc.title == "Levelling Up is a clarion call for better collaboration across public services"
    assert doc.metadata["author"] == "Luke Bevir"
    assert doc.metadata["date"] == "2023-03-16"
    assert doc.doc_id == doc_id_for(doc.text)


def test_markdown_headings_are_recorded_with_offsets(tmp_path):
    p = tmp_path / "policy.md"
    p.write_text("# Housing plan\n\nWe will build homes.\n\n## Funding\n\nThe fund is £5m.\n", encoding="utf-8")
    doc = load_document(p)
    assert doc.title == "Housing plan"
    offsets = dict((t, o) for o, t in doc.headings)
    assert doc.text[offsets["Funding"] :].startswith("## Funding")
    assert doc.heading_at(doc.text.index("£5m")) == "Funding"


def test_html_keeps_main_text_and_drops_navigation_and_scripts(tmp_path):
    p = tmp_path / "page.html"
    p.write_text(
        "<html><head><title>Bus strategy</title><script>var x=1;</script></head><body>"
        "<nav>Home | About</nav><main><h1>Bus strategy</h1><p>Fares are capped at £2.</p>"
        "<p>Routes are reviewed yearly.</p></main><footer>Cookie policy</footer></body></html>",
        encoding="utf-8",
    )
    doc = load_document(p)
    assert "Fares are capped at £2." in doc.text and "Routes are reviewed yearly." in doc.text
    assert "Cookie" not in doc.text and "var x" not in doc.text and "Home | About" not in doc.text
    assert doc.title == "Bus strategy"


def test_pdf_text_is_read_per_page_with_page_numbers(tmp_path):
    p = write_pdf(tmp_path / "plan.pdf", ["First page about parks.", "Second page about libraries."])
    doc = load_document(p)
    assert doc.page_starts == (0, doc.text.index("Second"))
    assert doc.page_at(doc.text.index("libraries")) == 2
    assert doc.page_at(0) == 1


def test_non_utf8_text_is_decoded_by_detection(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("Le café coûte 3 € à Montréal, déjà réglé.\n".encode("cp1252"))
    assert "café" in load_document(p).text


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"   \n\n ", "empty"),
        ("binary.txt", b"\x00\x01\x02binary\x00" * 20, "binary"),
        ("image.png", b"\x89PNG....", "unsupported file type"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "PDF"),
    ],
)
def test_bad_files_raise_a_clear_load_error(tmp_path, name, data, message):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(LoadError, match=message):
        load_document(p)


def test_oversized_files_are_refused(tmp_path):
    p = tmp_path / "big.txt"
    p.write_text("word " * 1000)
    with pytest.raises(LoadError, match="limit"):
        load_document(p, max_bytes=100)


def test_clean_text_collapses_blank_runs_and_control_characters():
    assert clean_text("a\r\n\r\n\r\n\r\nb\x07c") == "a\n\nbc"


def test_iter_files_finds_supported_files_recursively(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.txt", "sub/b.md", "sub/c.pdf", "d.docx", ".hidden.txt"):
        (tmp_path / name).write_text("x")
    names = sorted(p.name for p in iter_files([tmp_path]))
    assert names == ["a.txt", "b.md", "c.pdf"]
