"""The book as a website: build it (no notebook is executed) and read every page in Chromium.

The site is built with tools/build_book.py into a temporary folder (about half a minute),
served on 127.0.0.1, and every page is opened in headless Chromium through Playwright. A page
passes when nothing it loads leaves 127.0.0.1 or fails, every figure of the notebook's outputs
is drawn, every formula is typeset by MathJax (no raw TeX left), every Mermaid diagram is an
SVG, and no script error is raised. At 1280 and 390 px wide it must also read well: no page
scrolls sideways, every diagram's text is at least READABLE_PX high, no code block whose lines
fit the project's line length (100) scrolls at 1280 px, and no export or classroom marker is
shown. Diagrams keep contrast in dark mode, search ranks a section above the solutions, and
the staging rules of tools/build_book.py and tools/tag_figure_cells.py are tested on their own.

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
pytestmark = pytest.mark.slow  # a build and a browser: minutes (README: the quick subset)
sys.path.insert(0, str(ROOT / "tools"))
import build_book  # noqa: E402  (tools/build_book.py)
import tag_figure_cells  # noqa: E402  (tools/tag_figure_cells.py)

WIDTHS = (1280, 390)  # a laptop and a phone
READABLE_PX = 11  # the smallest diagram text a reader can read without zooming
LINE_LENGTH = 100  # ruff's line length: code up to it must fit the column at 1280 px
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
    """What a page must show, counted in its source: images, Mermaid diagrams, maths, code
    cells shown collapsed, and the link to the chapter's worked solutions."""
    nothing = {"images": 0, "mermaid": 0, "maths": False, "code": False, "hidden": 0}
    if source is None:
        return {**nothing, "solutions": None}
    if source.suffix == ".md":
        markdown, code_cells, outputs = [source.read_text(encoding="utf-8")], [], []
    else:
        cells = json.loads(source.read_text(encoding="utf-8"))["cells"]
        markdown = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
        code_cells = [c for c in cells if c["cell_type"] == "code"]
        outputs = [o for c in code_cells for o in c.get("outputs", [])]
    text = "\n".join(markdown)
    prose = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.S)  # code is not maths
    solution = source.parent / "solutions" / source.name
    exercises = re.search(r"^##\s+Exercises\s*$", text, re.M) and solution.exists()
    return {
        "images": sum(1 for o in outputs if {"image/png", "image/jpeg"} & o.get("data", {}).keys()),
        "mermaid": len(re.findall(r"^\s*```mermaid\s*$", text, re.M)),
        "maths": bool(re.search(r"\$\$.+?\$\$|\$[^$\s][^$\n]*\$|\\begin\{", prose, re.S)),
        "code": bool(code_cells),
        "hidden": sum(
            1
            for c in code_cells
            if "hide-input" in c["metadata"].get("tags", [])
            or c["metadata"].get("jupyter", {}).get("source_hidden")
        ),
        "solutions": f"solutions/{source.stem}.html" if exercises else None,
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


def load(page, url: str, want: dict) -> None:
    """Open url and wait until its images, formulas and diagrams are drawn."""
    page.goto(url, wait_until="load")
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

    load(page, server + path, want)

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
    code = page.eval_on_selector_all(
        "div.cell div.cell_input pre", "els => els.map(e => e.textContent)"
    )
    markers = [line for text in code for line in text.splitlines() if build_book.is_marker(line)]
    assert markers == [], f"export or classroom markers shown: {markers[:5]}"

    # Cells tagged hide-input: the code behind a closed toggle, the figure shown.
    hidden = page.eval_on_selector_all(
        "div.cell.tag_hide-input",
        """els => els.map(c => ({
            closed: !!c.querySelector('details.above-input:not([open]) .cell_input'),
            shown: [...c.querySelectorAll('.cell_output img')].every(i => i.offsetHeight > 0),
        }))""",
    )
    assert len(hidden) == want["hidden"], f"{len(hidden)} collapsed cells, {want['hidden']} tagged"
    assert all(h["closed"] and h["shown"] for h in hidden), hidden

    if want["solutions"]:  # a chapter with exercises links to their worked solutions
        links = page.eval_on_selector_all(
            "main a.reference.internal", "els => els.map(a => a.getAttribute('href'))"
        )
        assert want["solutions"] in links, f"no link to {want['solutions']}"

    context.close()
    assert not outside, f"requests leaving 127.0.0.1: {outside}"
    assert not failed, failed
    assert [e for e in errors if not harmless(e)] == []


LAYOUT = r"""lineLength => {
    const page = document.documentElement;
    const diagrams = [...document.querySelectorAll(".bd-article pre.mermaid > svg")].map(svg => {
        const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
        const sizes = [...svg.querySelectorAll(".nodeLabel, .edgeLabel, text")]
            .map(e => parseFloat(getComputedStyle(e).fontSize));
        return {scale: +scale.toFixed(3), text_px: +(Math.min(...sizes) * scale).toFixed(1)};
    });
    const scrolling = [...document.querySelectorAll(".bd-article div.highlight pre")]
        .filter(pre => pre.scrollWidth > pre.clientWidth)
        .map(pre => pre.textContent.replace(/\n$/, "").split("\n"))
        .filter(lines => lines.every(line => line.length <= lineLength))
        .map(lines => lines.reduce((a, b) => (b.length > a.length ? b : a)));
    return {overflow: page.scrollWidth - page.clientWidth, diagrams, scrolling};
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("path", "source"), [p[1:] for p in PAGES], ids=[p[0] for p in PAGES])
def test_page_fits_the_screen_with_readable_diagrams_and_code(browser, server, path, source, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    load(page, server + path, expected(source))
    layout = page.evaluate(LAYOUT, LINE_LENGTH)
    page.close()
    assert layout["overflow"] <= 0, f"the page scrolls sideways by {layout['overflow']} px"
    # Natural size: never blown up, never shrunk below readability (a wide one scrolls).
    assert all(d["scale"] <= 1.001 for d in layout["diagrams"]), layout["diagrams"]
    small = [d for d in layout["diagrams"] if d["text_px"] < READABLE_PX]
    assert not small, f"diagram text under {READABLE_PX} px: {small}"
    if width >= 1280:
        assert layout["scrolling"] == [], (
            f"{len(layout['scrolling'])} code blocks of lines <= {LINE_LENGTH} characters scroll "
            f"sideways, e.g. the line {layout['scrolling'][0]!r}"
        )


DIAGRAM_COLOURS = r"""() => {
    const rgb = c => (c.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
    const luminance = c => rgb(c)
        .map(v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
        .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
    const contrast = (a, b) => {
        const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
        return (hi + 0.05) / (lo + 0.05);
    };
    return [...document.querySelectorAll(".bd-article pre.mermaid > svg")].map(svg => {
        const nodes = [...svg.querySelectorAll("g.node")].map(node => {
            const fill = getComputedStyle(node.querySelector(".label-container, rect, polygon, path")).fill;
            const text = getComputedStyle(node.querySelector(".nodeLabel")).color;
            return {contrast: contrast(text, fill), fill: luminance(fill)};
        });
        const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
        return {
            filter: getComputedStyle(svg).filter,
            contrast: Math.min(...nodes.map(n => n.contrast)),
            darkest_fill: Math.min(...nodes.map(n => n.fill)),
            lightest_fill: Math.max(...nodes.map(n => n.fill)),
            scale,
        };
    });
}"""
DIAGRAM_PAGES = [p for p in PAGES if expected(p[2])["mermaid"]]


@pytest.mark.parametrize(
    ("path", "source"), [p[1:] for p in DIAGRAM_PAGES], ids=[p[0] for p in DIAGRAM_PAGES]
)
def test_diagrams_read_in_light_and_dark_mode(browser, server, path, source):
    """Mermaid's own theme for each mode (no colour inversion on top), WCAG AA contrast (4.5)
    between every node's label and its box, redrawn at natural size when the reader switches."""
    context = browser.new_context(color_scheme="light")
    page = context.new_page()
    load(page, server + path, expected(source))

    def check(mode: str) -> None:
        diagrams = page.evaluate(DIAGRAM_COLOURS)
        assert all(d["filter"] == "none" for d in diagrams), f"{mode}: {diagrams}"
        assert all(d["contrast"] >= 4.5 for d in diagrams), f"{mode}: {diagrams}"
        assert all(0.75 - 1e-3 <= d["scale"] <= 1 + 1e-3 for d in diagrams), f"{mode}: {diagrams}"
        if mode == "dark":  # dark boxes on the dark page, not light ones
            assert all(d["lightest_fill"] < 0.2 for d in diagrams), diagrams
        else:
            assert all(d["darkest_fill"] > 0.5 for d in diagrams), diagrams

    check("light")
    page.evaluate("() => { document.documentElement.dataset.theme = 'dark'; }")  # the switch
    page.wait_for_function(
        """n => [...document.querySelectorAll('.bd-article pre.mermaid > svg')]
            .filter(s => getComputedStyle(s.querySelector('g.node .label-container, g.node rect'))
                .fill === 'rgb(31, 32, 32)').length >= n""",
        arg=expected(source)["mermaid"],
        timeout=30_000,
    )
    check("dark")
    context.close()


def test_diagram_full_screen_button_draws_its_icon_and_opens(browser, server):
    path, source = DIAGRAM_PAGES[0][1:]
    page = browser.new_page()
    load(page, server + path, expected(source))
    page.wait_for_selector(".mermaid-fullscreen-btn")
    button = page.evaluate(
        """() => {
            const b = document.querySelector('.mermaid-fullscreen-btn');
            const icon = getComputedStyle(b, '::before');
            const font = [...document.fonts].find(f => f.family.replace(/"/g, '') ===
                'Font Awesome 6 Free' && f.weight === '900');
            return {text: b.textContent, icon: icon.content, family: icon.fontFamily,
                    loaded: font?.status};
        }"""
    )
    # U+26F6, the plugin's default, is missing from most fonts: Font Awesome's "expand" instead.
    assert button == {
        "text": "",
        "icon": '"\uf065"',
        "family": '"Font Awesome 6 Free"',
        "loaded": "loaded",
    }
    page.click(".mermaid-fullscreen-btn")
    assert page.locator(".mermaid-fullscreen-modal.active svg").count() == 1
    page.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("path", ["index.html", "chapters/04_attention.html"])
def test_one_search_box(browser, server, path, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(server + path, wait_until="load")
    visible = page.eval_on_selector_all(
        ".search-button-field, .search-button, form.bd-search",
        "els => els.filter(e => e.getClientRects().length && e.offsetParent !== null).length",
    )
    page.close()
    assert visible == 1


def test_search_ranks_the_kv_cache_section_above_the_solutions(browser, server):
    page = browser.new_page()
    page.goto(server + "search.html?q=KV+cache", wait_until="load")
    page.wait_for_selector("#search-results ul li a", timeout=30_000)
    page.wait_for_function("() => !document.querySelector('#search-progress')?.textContent")
    links = page.eval_on_selector_all(
        "#search-results ul li > a", "els => els.map(a => [a.getAttribute('href'), a.textContent])"
    )
    page.close()
    first_solution = next(i for i, (href, _) in enumerate(links) if "solutions/" in href)
    href, title = links[0]
    assert href.startswith("chapters/09_sampling.html#") and "KV cache" in title, links[:3]
    assert first_solution > 0, links


# The staging rules, on their own (no browser).


def cell(kind: str, text: str, **extra) -> dict:
    return {"cell_type": kind, "metadata": {}, "source": text, **extra}


def test_staging_strips_markers_and_keeps_the_rest():
    notebook = {
        "metadata": {},
        "cells": [
            cell("code", "#| default_exp attention", outputs=[]),
            cell(
                "code",
                "#| export\ndef mean_square(x):\n    ### BEGIN SOLUTION\n"
                "    # TASK: the mean of x squared\n    return x.pow(2).mean(-1)\n"
                "    ### END SOLUTION\n",
                outputs=[],
            ),
            {
                **cell("code", "plt.plot(x)", outputs=[]),
                "metadata": {"jupyter": {"source_hidden": True}},
            },
            cell("markdown", "Cells that start with `#| export` go into the package."),
        ],
    }
    staged = build_book.for_readers(notebook)["cells"]
    assert [c["source"] for c in staged] == [
        "def mean_square(x):\n    return x.pow(2).mean(-1)",
        "plt.plot(x)",
        "Cells that start with `#| export` go into the package.",  # prose is left alone
    ]
    assert [c["metadata"].get("tags") for c in staged] == [["export"], ["hide-input"], None]
    assert notebook["cells"][1]["source"].startswith("#| export")  # the source is untouched


def test_every_staged_chapter_is_free_of_markers_and_links_its_solutions():
    for path in [*build_book.chapters(), *build_book.solutions()]:
        staged = json.loads(build_book.staged_notebook(path))
        code = [
            line
            for c in staged["cells"]
            if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines()
        ]
        assert not [line for line in code if build_book.is_marker(line)], path.name
        markdown = "\n".join(
            "".join(c["source"]) for c in staged["cells"] if c["cell_type"] == "markdown"
        )
        assert "chapters/solutions/" not in markdown.replace("](solutions/", ""), path.name
        if path.parent.name == "chapters" and expected(path)["solutions"]:
            assert f"](solutions/{path.stem}.ipynb)" in markdown, path.name


def test_staging_adds_a_solutions_link_after_exercises_that_name_none():
    chapter = build_book.chapters()[0]
    notebook = {
        "metadata": {},
        "cells": [
            cell("markdown", "## Exercises\n\n1. Do it."),
            cell("markdown", "More exercises."),
            cell("markdown", "## Afterword"),
        ],
    }
    staged = build_book.link_solutions(notebook, chapter)["cells"]
    assert [c["source"].split(":")[0] for c in staged] == [
        "## Exercises\n\n1. Do it.",
        "More exercises.",
        "Worked solutions",
        "## Afterword",
    ]
    title = build_book.solution_titles()[chapter.stem]
    assert staged[2]["source"] == f"Worked solutions: [{title}](solutions/{chapter.stem}.ipynb)."
    named = {
        "metadata": {},
        "cells": [
            cell("markdown", f"## Exercises\n\nSee `chapters/solutions/{chapter.stem}.ipynb`.")
        ],
    }
    assert build_book.link_solutions(named, chapter)["cells"][0]["source"] == (
        f"## Exercises\n\nSee [{title}](solutions/{chapter.stem}.ipynb)."
    )


def test_front_page_leaves_out_the_readme_section_on_building_the_site():
    readme = "# Book\n\nIntro.\n\n## Read it as a website\n\nBuild it.\n\n## Chapters\n\nA.\n"
    assert build_book.without_sections(readme, ["Read it as a website"]) == (
        "# Book\n\nIntro.\n\n## Chapters\n\nA.\n"
    )
    with pytest.raises(SystemExit, match="no section 'Gone'"):
        build_book.without_sections(readme, ["Gone"])


# tools/tag_figure_cells.py on a small jupytext pair (tmp_path), nothing executed.

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
DRAWING = "\n".join(
    [
        "fig, ax = plt.subplots()",
        "for i in range(3):",
        "    _ = ax.plot([0, i])",
        "ax.set_xlabel('x')",
        "ax.set_ylabel('y')",
        "ax.set_title('t')",
        "fig.tight_layout()",
        "plt.show()",
        "plt.close(fig)",
    ]
)


def pair(tmp_path: Path, cells: list) -> Path:
    import jupytext
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=cells)
    path = tmp_path / "01_demo.ipynb"
    jupytext.write(notebook, path)
    jupytext.write(notebook, path.with_suffix(".py"), fmt="py:percent")
    return path


def figure(text: str, printed: str = "") -> dict:
    """A code cell whose stored outputs are an image, after the text it printed if any."""
    import nbformat

    image = nbformat.v4.new_output(
        "display_data", data={"image/png": PNG, "text/plain": "<Figure>"}
    )
    stream = [nbformat.v4.new_output("stream", name="stdout", text=printed)] if printed else []
    return nbformat.v4.new_code_cell(text, outputs=[*stream, image])


def test_tag_figure_cells_tags_only_drawing_cells_in_both_files(tmp_path, capsys):
    import jupytext
    import nbformat

    printed = nbformat.v4.new_output("stream", name="stdout", text="2\n")
    path = pair(
        tmp_path,
        [
            nbformat.v4.new_markdown_cell("# Demo"),
            figure(DRAWING),  # 1: only draws
            figure("data = [1, 2]\n" + DRAWING),  # 2: defines `data`, which cell 5 reads
            figure(DRAWING.replace("plt.show()", "print(3)\nplt.show()"), printed="3\n"),
            figure("plt.plot([1])\nplt.show()"),  # 4: too short to be in the way
            nbformat.v4.new_code_cell("print(len(data))", outputs=[printed]),
        ],
    )
    assert tag_figure_cells.figure_cells(path) == [1]
    assert "a later cell uses data" == tag_figure_cells.reason_to_keep(
        json.loads(path.read_text())["cells"], 2
    )
    before = jupytext.read(path)
    tag_figure_cells.main([str(path), "--apply"])
    assert "01_demo.ipynb cell 1: fig, ax = plt.subplots()" in capsys.readouterr().out
    after, script = jupytext.read(path), jupytext.read(path.with_suffix(".py"))
    want = {"tags": ["hide-input"], "jupyter": {"source_hidden": True}}
    assert after.cells[1].metadata == script.cells[1].metadata == want
    for i in (0, 2, 3, 4, 5):
        assert after.cells[i].metadata == script.cells[i].metadata == before.cells[i].metadata
    assert [c.get("outputs") for c in after.cells] == [c.get("outputs") for c in before.cells]
    assert '# %% tags=["hide-input"] jupyter={"source_hidden": true}\n' in (
        path.with_suffix(".py").read_text()
    )
    text = path.read_text(), path.with_suffix(".py").read_text()
    tag_figure_cells.main([str(path), "--apply"])  # a second run changes nothing
    assert (path.read_text(), path.with_suffix(".py").read_text()) == text


def test_tag_figure_cells_refuses_a_pair_out_of_step(tmp_path):
    path = pair(tmp_path, [figure(DRAWING)])
    script = path.with_suffix(".py")
    script.write_text(script.read_text() + "\n# %%\nx = 1\n")
    with pytest.raises(SystemExit, match="1 in the notebook; sync the pair"):
        tag_figure_cells.main([str(path), "--apply"])
