"""The book as a website: build it (no notebook is executed) and read every page in Chromium.

The site is built with tools/build_book.py into a temporary folder (about half a minute),
served on 127.0.0.1, and every page is opened in headless Chromium through Playwright. A page
passes when nothing it loads leaves 127.0.0.1 or fails, every figure of the notebook's outputs
is drawn, every formula is typeset by MathJax (no raw TeX left), every Mermaid diagram is an
SVG, and no script error is raised.

Needs `pip install -e ".[book]"` and Chromium (Debian: `apt-get install chromium`; Playwright's
own browser download cannot work offline). Without them the tests skip and say why;
LLMBOOK_REQUIRE_BROWSER=1 (set by .ci/run) turns the skip into a failure. LLMBOOK_CHROMIUM
names another Chromium executable.
"""

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("LLMBOOK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
    *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
]
# Script errors and console errors a reader cannot see and that do no harm: (pattern, why).
# None so far; add one only with the reason it is harmless.
HARMLESS: list[tuple[str, str]] = []


def notebooks(folder: str) -> list[Path]:
    return sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb"))


# (test id, page of the site, source it was built from: a notebook, the README, or None)
PAGES = [
    ("index", "index.html", ROOT / "README.md"),
    *((nb.stem, f"chapters/{nb.stem}.html", nb) for nb in notebooks("chapters")),
    ("solutions", "chapters/solutions/index.html", None),
    *(
        (f"solutions/{nb.stem}", f"chapters/solutions/{nb.stem}.html", nb)
        for nb in notebooks("chapters/solutions")
    ),
]


def expected(source: Path | None) -> dict:
    """What a page must show, counted in its source: images, Mermaid diagrams, maths."""
    if source is None:
        return {"images": 0, "mermaid": 0, "maths": False, "code": False}
    if source.suffix == ".md":
        markdown, outputs, code = [source.read_text(encoding="utf-8")], [], False
    else:
        cells = json.loads(source.read_text(encoding="utf-8"))["cells"]
        markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
        outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
        code = any(c["cell_type"] == "code" for c in cells)
    text = "\n".join(markdown)
    prose = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.S)  # code is not maths
    return {
        "images": sum(1 for o in outputs if {"image/png", "image/jpeg"} & o.get("data", {}).keys()),
        "mermaid": len(re.findall(r"^\s*```mermaid\s*$", text, re.M)),
        "maths": bool(re.search(r"\$\$.+?\$\$|\$[^$\s][^$\n]*\$|\\begin\{", prose, re.S)),
        "code": code,
    }


def unavailable() -> str | None:
    try:
        import jupyter_book  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        return f"{error.name} is not installed (pip install -e '.[book]')"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set LLMBOOK_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if reason := unavailable():
        if os.environ.get("LLMBOOK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"LLMBOOK_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    output = tmp_path_factory.mktemp("book")
    result = subprocess.run(
        [sys.executable, "tools/build_book.py", "--path-output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return output / "_build" / "html"


@pytest.fixture(scope="module")
def server(site):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_no_page_names_an_outside_script_style_or_font(site):
    outside = r"""(?:https?:)?//[^"')\s]+"""
    patterns = [
        rf"""<script[^>]*\ssrc=["']?({outside})""",
        rf"""<link[^>]*\shref=["']?({outside})""",
        rf"""@import\s+(?:url\()?["']?({outside})""",
        rf"""url\(\s*["']?({outside})""",
    ]
    found = []
    for path in [*site.rglob("*.html"), *site.rglob("*.css")]:
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in patterns:
            found += [f"{path.relative_to(site)}: {url}" for url in re.findall(pattern, text)]
    # <link> to the W3C's schema is not a request; anything else is.
    found = [f for f in found if "www.w3.org" not in f]
    assert not found, found[:20]


def test_navigation_lists_every_page_in_order(browser, server):
    page = browser.new_page()
    page.goto(server + "index.html")
    links = page.eval_on_selector_all(
        "nav.bd-docs-nav a.reference.internal", "els => els.map(a => a.getAttribute('href'))"
    )
    page.close()
    wanted = [path for _, path, _ in PAGES if path != "index.html"]
    assert [link.split("#")[0] for link in links if link not in ("", "#")] == wanted


UNRENDERED_TEX = r"""() => {
    const skip = "pre, code, script, style, mjx-container, .cell_output, .mermaid";
    const walker = document.createTreeWalker(document.querySelector("main") || document.body, NodeFilter.SHOW_TEXT);
    const found = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node.parentElement.closest(skip)) continue;
        const m = node.textContent.match(/\\\(|\\\[|\$\$|\$[^$\s][^$\n]*\$|\\begin\{/);
        if (m) found.push(node.textContent.trim().slice(0, 80));
    }
    return found;
}"""


def harmless(message: str) -> bool:
    return any(re.search(pattern, message) for pattern, _ in HARMLESS)


@pytest.mark.parametrize(("path", "source"), [p[1:] for p in PAGES], ids=[p[0] for p in PAGES])
def test_page_reads_offline_with_figures_maths_and_diagrams(browser, server, path, source):
    want = expected(source)
    outside, failed, errors = [], [], []
    context = browser.new_context()
    page = context.new_page()

    def route(route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    page.on("requestfailed", lambda r: r.url not in outside and failed.append(f"failed {r.url}"))
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("console", lambda m: m.type == "error" and errors.append(f"console: {m.text}"))

    page.goto(server + path, wait_until="load")
    page.wait_for_function("() => [...document.images].every(i => i.complete)")
    if want["maths"]:
        page.wait_for_function("() => window.MathJax?.startup?.promise")
        page.evaluate("() => MathJax.startup.promise")
    if want["mermaid"]:
        page.wait_for_function(
            "n => document.querySelectorAll('.mermaid svg').length >= n",
            arg=want["mermaid"],
            timeout=30_000,
        )
    page.wait_for_load_state("networkidle")

    figures = page.eval_on_selector_all(".cell_output img", "els => els.map(i => i.naturalWidth)")
    assert len(figures) == want["images"], (
        f"{len(figures)} figures, the notebook has {want['images']}"
    )
    assert all(width > 0 for width in figures), f"figures not drawn: widths {figures}"
    broken = page.eval_on_selector_all(
        "img", "els => els.filter(i => !i.naturalWidth).map(i => i.src)"
    )
    assert not broken, broken

    mermaid = page.eval_on_selector_all(".mermaid", "els => els.map(e => !!e.querySelector('svg'))")
    assert mermaid == [True] * want["mermaid"], f"Mermaid blocks drawn: {mermaid}"

    typeset = page.locator("mjx-container").count()
    assert (typeset > 0) == want["maths"], (
        f"{typeset} formulas typeset; the source has maths: {want['maths']}"
    )
    assert page.locator(".math:not(:has(mjx-container))").count() == 0, "formulas left untypeset"
    assert page.locator("mjx-merror").count() == 0, page.locator("mjx-merror").first.inner_text()
    assert page.evaluate(UNRENDERED_TEX) == [], "raw TeX left in the text"

    if want["code"]:  # highlighted by Pygments: keywords, names, ... are spans
        assert page.locator(".cell_input .highlight span").count() > 0
        assert page.locator("nav.page-toc a").count() > 0, "no contents of the page"

    context.close()
    assert not outside, f"requests leaving 127.0.0.1: {outside}"
    assert not failed, failed
    assert [e for e in errors if not harmless(e)] == []
