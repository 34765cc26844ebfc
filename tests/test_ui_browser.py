"""The chat page in a real browser: Debian's Chromium driven by Playwright, the real models.

One app (in this process, on a free localhost port, on a private copy of the
article's index) serves one test that walks through the page: a streamed, cited
answer; its source with the cited span highlighted; an uploaded document that is
then answerable; and an honest refusal. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest

from rag.config import PROJECT_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.models]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
README_SHOT = PROJECT_ROOT / "docs" / "screenshot.png"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ANSWER_TIMEOUT_MS = 180_000


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(article_settings, tmp_path_factory):
    """The page on 127.0.0.1, on a copy of the article's index (uploads must not leak into it)."""
    from ui.app import build_app, launch_app
    from ui.service import AssistantPool

    root = tmp_path_factory.mktemp("ui-browser")
    shutil.copytree(article_settings.index_dir, root / "index")
    settings = article_settings.replace(index_dir=root / "index", data_dir=root / "data")
    pool = AssistantPool(settings)
    pool.primary.warm_up()  # load the models before the clock of the browser starts
    app = build_app(settings, pool)
    url = launch_app(app, settings.replace(host="127.0.0.1", port=_free_port()), block=False, quiet=True)
    assert url.startswith("http://127.0.0.1:")
    yield url, settings
    app.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: `make test` installs it as root (`make system-deps`), "
                    "or run `sudo apt-get install -y chromium`; deselect with -m 'not browser'")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def _ask(page, question: str) -> None:
    page.fill("#question textarea", question)
    page.click("#ask-btn")


def _wait_finished(page, turn: int) -> str:
    sel = f'#turn-{turn}[data-state="done"], #turn-{turn}[data-state="refused"], #turn-{turn}[data-state="error"]'
    page.wait_for_selector(sel, timeout=ANSWER_TIMEOUT_MS)
    return page.get_attribute(f"#turn-{turn}", "data-state")


def _show(page, selector: str) -> None:
    page.eval_on_selector(selector, "e => e.scrollIntoView({block: 'start'})")
    time.sleep(0.3)


def test_chat_page_answers_cites_opens_sources_indexes_uploads_and_refuses(app_url, browser, tmp_path):
    url, settings = app_url
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None,
    )
    page.goto(url)
    page.wait_for_selector("#transcript .welcome", timeout=30_000)
    # The page renders in pieces; on a busy machine the example row can come after the welcome.
    page.wait_for_selector(".example-q", timeout=30_000)
    assert page.locator(".example-q").count() == 3
    page.screenshot(path=str(ARTIFACTS / "welcome.png"))

    # 1. A question about the article: streamed, then cited.
    t0 = time.monotonic()
    _ask(page, "What share of swimming pools are at risk of closure?")
    page.wait_for_selector('#turn-0[data-state="running"]', timeout=30_000)
    page.wait_for_selector("#turn-0 .answer-text.streaming", timeout=ANSWER_TIMEOUT_MS)  # tokens arrive one by one
    assert _wait_finished(page, 0) == "done", page.inner_text("#turn-0")
    answer = page.inner_text("#turn-0 .answer-text")
    assert "third" in answer.lower() or "1/3" in answer or "33" in answer, answer
    assert page.locator("#turn-0 a.cite-ref").count() >= 1
    assert page.locator("#turn-0 .source-card").count() >= 1
    assert page.locator("#turn-0 li.sent").count() >= 1  # the per-sentence check
    _show(page, "#turn-0")
    page.screenshot(path=str(ARTIFACTS / "answer.png"))
    answer_s = time.monotonic() - t0

    # 2. Clicking a marker opens its source, the cited span highlighted.
    marker = page.locator("#turn-0 a.cite-ref").first
    n = marker.get_attribute("data-n")
    marker.click()
    page.wait_for_selector(f'#source-viewer .source-view[data-n="{n}"] mark#cited-span', timeout=15_000)
    marked = page.eval_on_selector("#source-viewer mark#cited-span", "e => e.textContent")
    quote = page.eval_on_selector(f"#src-0-{n} blockquote.src-quote", "e => e.textContent")
    assert marked and marked == quote
    assert "swimming pools" in page.inner_text("#source-viewer .sv-body")
    page.wait_for_function(  # scrolled so the highlight is in view
        """() => { const m = document.querySelector('#source-viewer mark'), b = m.closest('.sv-body');
                   const r = m.getBoundingClientRect(), rb = b.getBoundingClientRect();
                   return r.top >= rb.top - 1 && r.top < rb.bottom; }""",
        timeout=5_000,
    )
    page.screenshot(path=str(ARTIFACTS / "source.png"))
    README_SHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ARTIFACTS / "source.png", README_SHOT)  # the answer with its source, for the README

    # 3. Upload a document; once indexed, it answers questions.
    doc = tmp_path / "riverside-library.txt"
    doc.write_text("The Riverside Library opens at 9am on Saturdays and closes at 5pm.\n", encoding="utf-8")
    page.get_by_role("tab", name="Documents").click()
    page.set_input_files("#upload input[type=file]", str(doc))
    page.wait_for_selector("#upload-status :text('is indexed')", timeout=120_000)
    assert "riverside-library.txt" in page.inner_text("#upload-status")
    assert "riverside-library.txt" in page.inner_text("#doc-list")
    assert (Path(settings.data_dir) / "uploads" / "riverside-library.txt").read_text(encoding="utf-8") == doc.read_text(
        encoding="utf-8"
    )

    page.click("#clear-btn")  # a fresh conversation: no follow-up rewriting needed below
    page.wait_for_selector("#transcript .welcome", timeout=10_000)
    _ask(page, "When does the Riverside Library open on Saturdays?")
    assert _wait_finished(page, 0) == "done", page.inner_text("#turn-0")
    assert "9" in page.inner_text("#turn-0 .answer-text")
    cards = page.locator("#turn-0 .source-card")
    assert cards.count() >= 1 and "Riverside" in " ".join(cards.all_inner_texts())
    page.screenshot(path=str(ARTIFACTS / "upload.png"))  # the uploaded document listed and cited

    # 4. A question the documents don't answer: a plain refusal, no sources.
    page.click("#clear-btn")
    page.wait_for_selector("#transcript .welcome", timeout=10_000)
    _ask(page, "What is the capital of Australia?")
    assert _wait_finished(page, 0) == "refused", page.inner_text("#turn-0")
    assert "documents don't" in page.inner_text("#turn-0 .refusal").replace("’", "'")
    assert page.locator("#turn-0 .source-card").count() == 0
    assert page.locator("#turn-0 a.cite-ref").count() == 0
    _show(page, "#turn-0")
    page.screenshot(path=str(ARTIFACTS / "refusal.png"))

    assert outside == [], f"the page reached outside localhost: {outside}"
    assert answer_s < ANSWER_TIMEOUT_MS / 1000
    page.close()
