from __future__ import annotations

import pytest

from conftest import ARTICLE, WHITE_PAPER, WHITE_PAPER_SECTIONS, WHITE_PAPER_TITLE, white_paper_pages, write_pdf
from rag.config import DEFAULT_SOURCES_DIR, PROJECT_ROOT
from rag.errors import LoadError
from rag.loaders import clean_text, decode_bytes, doc_id_for, iter_files, load_document


def test_article_page_chrome_is_removed_and_content_kept():
    doc = load_document(ARTICLE)
    for chrome in ("top of page", "bottom of page", "Writer's picture", "Read more about", "To hear more about"):
        assert chrome.lower() not in doc.text.lower()
    body = doc.text.split("\n\n", 1)[1]  # after the document card
    assert body.startswith("Levelling Up is a clarion call")
    assert "one third of swimming pools are at risk of closure" in doc.text
    assert doc.text.rstrip().endswith("work harder to do things together.")


def test_the_document_card_states_the_sidecar_facts_in_the_citable_text():
    doc = load_document(ARTICLE)
    card = doc.text.split("\n\n", 1)[0]
    assert card == (
        'About this document: "Levelling Up is a clarion call for better collaboration across public services", '
        "a blog article written by Luke Bevir, published by Mutual Ventures (blog) on 16 March 2023."
    )
    # Offsets found in the body moved with it: the heading still points at its own text.
    start, heading = doc.headings[0]
    assert doc.text[start : start + len(heading)] == heading


def test_html_meta_tags_and_pdf_information_feed_the_document_card(tmp_path):
    page = tmp_path / "notice.html"
    page.write_text(
        "<html><head><title>Bus fares notice</title><meta name='author' content='Jane Doe'>"
        "<meta property='og:site_name' content='Anytown Council'><meta name='date' content='2024-05-01'></head>"
        "<body><main><p>Single bus fares are capped at two pounds from June.</p></main></body></html>",
        encoding="utf-8",
    )
    doc = load_document(page)
    assert doc.text.startswith(
        'About this document: "Bus fares notice", a document written by Jane Doe, published by Anytown Council on 1 May 2024.'
    )
    assert doc.metadata["author"] == "Jane Doe" and "capped at two pounds" in doc.text


def test_a_document_without_author_publisher_or_date_gets_no_card(tmp_path):
    plain = tmp_path / "notes.txt"
    plain.write_text("Notes\n\nThe library opens at nine.", encoding="utf-8")
    assert load_document(plain).text.startswith("Notes")


def test_the_card_names_the_numbered_lists_of_the_text_so_their_length_is_citable(tmp_path):
    doc = load_document(WHITE_PAPER)
    card = doc.text.split("\n\n", 1)[0]
    assert card.endswith("Licence: Open Government Licence v3.0. It numbers 12 missions, Mission One to Mission Twelve.")
    plain = tmp_path / "steps.txt"
    plain.write_text("How to apply\n\nStep 1: register.\n\nStep 2: fill in the form.\n\nStep 3: send it.\n", encoding="utf-8")
    assert load_document(plain).text.startswith('About this document: "How to apply", a document. It numbers 3 steps, Step 1 to Step 3.')


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


# ----- encodings ----------------------------------------------------------------------------------

CP1252_TEXTS = [
    "The scheme pays £12,500 per home, and £2,000 for each extra room.",  # was read as "Ł12,500"
    "The grant is £12,500 per year.",
    "Salary: £12,500. Bonus: £1,000.",
    "The fund pays €4 million to each region.",
    "The council’s ‘levelling up’ plan is “ambitious” – and costly — they said.",
    "Budget 2024–2025: £5.7bn — “a turning point”, said the Mayor’s office; ‘not enough’, said others…",
    "Smörgåsbord på Göteborgs stadsbibliotek, öppet året runt.",
    "Café",
    "£",
    "– —",
    "“quoted”",
]


@pytest.mark.parametrize("text", CP1252_TEXTS)
def test_windows_1252_files_keep_pound_euro_quotes_and_dashes(tmp_path, text):
    p = tmp_path / "old.txt"
    p.write_bytes(text.encode("cp1252"))
    assert load_document(p).text == text


def test_a_pound_sign_is_never_read_as_a_central_european_letter():
    assert decode_bytes("£12,500".encode("cp1252")) == "£12,500"


def test_latin_1_files_keep_pound_and_accented_letters(tmp_path):
    text = "Le loyer est de £450 par mois; l'été, le café ferme à midi."
    p = tmp_path / "latin1.txt"
    p.write_bytes(text.encode("latin-1"))
    assert load_document(p).text == text


def test_utf8_files_with_a_byte_order_mark_lose_only_the_mark(tmp_path):
    text = "Funding of £4.8bn – “for every region”."
    p = tmp_path / "bom.txt"
    p.write_bytes(text.encode("utf-8-sig"))
    assert load_document(p).text == text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_files_with_a_byte_order_mark_are_decoded(tmp_path, encoding):
    text = "Die Stadt schließt zwei Schwimmbäder; der Eintritt kostet 4 € – „zu viel“."
    p = tmp_path / "utf16.txt"
    data = text.encode(encoding)
    if encoding != "utf-16":  # the plain codec writes its own mark
        data = ("\ufeff" + text).encode(encoding)
    p.write_bytes(data)
    assert load_document(p).text == text


RUSSIAN = (
    "Городской совет объявил, что в следующем году два муниципальных бассейна будут закрыты, "
    "потому что расходы на электроэнергию выросли почти вдвое. Жители могут высказать своё мнение "
    "на публичных слушаниях в марте."
)
JAPANESE = "図書館は毎週月曜日に休館します。市の公園は毎日午前六時から午後九時まで開いています。予算は来年度に見直されます。"


@pytest.mark.parametrize("text,encoding", [(RUSSIAN, "cp1251"), (RUSSIAN, "koi8_r"), (JAPANESE, "shift_jis"), (JAPANESE, "euc_jp")])
def test_non_latin_legacy_encodings_still_decode(tmp_path, text, encoding):
    p = tmp_path / "legacy.txt"
    p.write_bytes(text.encode(encoding))
    assert load_document(p).text == text


def test_polish_in_a_central_european_code_page_is_not_forced_into_windows_1252(tmp_path):
    text = "Zażółć gęślą jaźń. Rada miasta zamknie dwa baseny, ponieważ koszty energii wzrosły."
    p = tmp_path / "polish.txt"
    p.write_bytes(text.encode("cp1250"))
    assert load_document(p).text == text


# ----- the White Paper summary shipped in index/sources ----------------------------------------


def test_the_white_paper_summary_ships_in_the_project_with_its_metadata():
    assert WHITE_PAPER.is_file() and DEFAULT_SOURCES_DIR in WHITE_PAPER.parents
    assert PROJECT_ROOT in WHITE_PAPER.resolve().parents
    doc = load_document(WHITE_PAPER)
    assert doc.title == WHITE_PAPER_TITLE
    assert doc.metadata["publisher"] == "Department for Levelling Up, Housing and Communities"
    assert doc.metadata["date"] == "2022-02-02"
    assert doc.metadata["licence"] == "Open Government Licence v3.0"
    assert doc.metadata["attribution"] == "Contains public sector information licensed under the Open Government Licence v3.0."


def test_the_white_paper_licence_file_holds_the_ogl_and_the_attribution():
    licence = (DEFAULT_SOURCES_DIR / "LICENSE-OGL-3.0.txt").read_text(encoding="utf-8")
    assert "Contains public sector information licensed under the Open Government Licence v3.0." in licence
    assert "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/" in licence
    for section in ("You are free to:", "Exemptions", "Non-endorsement", "No warranty", "Governing Law", "Definitions"):
        assert section in licence


def test_the_gov_uk_footer_of_the_white_paper_is_removed_and_its_text_kept():
    raw = WHITE_PAPER.read_text(encoding="utf-8")
    assert raw.rstrip().splitlines()[-1].startswith("All content is available under the Open Government Licence")
    doc = load_document(WHITE_PAPER)
    assert "All content is available under" not in doc.text
    assert doc.text.split("\n\n", 1)[1].startswith("Policy paper\nLevelling Up the United Kingdom: executive summary\nPublished 2 February 2022")
    assert doc.text.endswith("help restore their pride in the places where they live.")
    assert "This publication is licensed under the terms of the Open Government Licence v3.0" in doc.text


def test_licence_files_in_a_folder_are_not_indexed_as_documents(tmp_path):
    assert [p.name for p in iter_files([DEFAULT_SOURCES_DIR])] == [ARTICLE.name, WHITE_PAPER.name]
    (tmp_path / "LICENSE.md").write_text("MIT", encoding="utf-8")
    (tmp_path / "licence-ogl.txt").write_text("OGL", encoding="utf-8")
    (tmp_path / "licensing-plan.txt").write_text("A plan about licensing taxis.", encoding="utf-8")
    assert [p.name for p in iter_files([tmp_path])] == ["licensing-plan.txt"]
    assert [p.name for p in iter_files([tmp_path / "LICENSE.md"])] == ["LICENSE.md"]  # named on its own: read it


# ----- PDFs: pages, headings, scanned pages -------------------------------------------------------


def test_a_printed_white_paper_pdf_keeps_page_numbers_and_headings(tmp_path):
    pages = white_paper_pages()
    assert len(pages) >= 8
    doc = load_document(write_pdf(tmp_path / "white-paper.pdf", pages))
    assert len(doc.page_starts) == len(pages)
    for number, page in enumerate(pages, 1):
        middle = page[len(page) // 2][0]
        assert doc.page_at(doc.text.index(middle)) == number, middle
    found = dict((text, offset) for offset, text in doc.headings)
    assert set(found) == {WHITE_PAPER_TITLE, *WHITE_PAPER_SECTIONS}
    for section in WHITE_PAPER_SECTIONS:
        number = next(i for i, page in enumerate(pages, 1) if page[0][0] == section)
        assert doc.text[found[section] :].startswith(section)
        assert doc.page_at(found[section]) == number
    line = next(text for text, _ in pages[5][1:] if len(text) > 40)
    expected = [p[0][0] for p in pages[:6] if p[0][0] in (WHITE_PAPER_TITLE, *WHITE_PAPER_SECTIONS)][-1]
    assert doc.heading_at(doc.text.index(line)) == expected


def test_a_scanned_page_in_the_middle_of_a_pdf_is_reported_and_the_rest_read(tmp_path):
    pages = white_paper_pages()[:3]
    doc = load_document(write_pdf(tmp_path / "scan.pdf", [pages[0], None, pages[1], pages[2]]))
    assert doc.warnings == ("page 2 has no text layer (scanned?); OCR it to index it",)
    assert doc.page_at(doc.text.index(pages[1][3][0])) == 3
    assert doc.page_at(doc.text.index(pages[2][3][0])) == 4
    assert doc.page_at(doc.text.index(pages[0][3][0])) == 1


def test_a_blank_page_without_an_image_is_not_reported(tmp_path):
    doc = load_document(write_pdf(tmp_path / "blank.pdf", ["Parks open at dawn.", [], "Libraries close at six."]))
    assert doc.warnings == ()
    assert doc.page_at(doc.text.index("Libraries")) == 3


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
