"""The HTML check: its page rules on small hand-written pages, and on a tiny book built with the book's own
`_config.yml` and rendered offline in headless Chromium (skipped where Chromium is not installed)."""

import html
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lpft_nb.book.build import CODE_WIDTH, find_jupyter_book, notebook_pages, parameters_for_reading
from lpft_nb.book.html_check import (
    broken_anchors,
    check_book,
    check_page,
    external_assets,
    outside,
    page_requests,
)
from lpft_nb.book.params import BOOK_DIR, ROOT, check_profile, profiles, read_page


def _probed(math: dict | None = None) -> str:
    """The <body> attributes the in-page probe leaves once it has run (no equations unless `math`)."""
    record = {"mathjax": "absent", "sources": 0, "untypeset": [], "errors": [], "raw": [], **(math or {})}
    return f'<body data-checked="1" data-math="{html.escape(json.dumps(record))}">'


GOOD = f"<html>{_probed()}<table><tr><th>n</th><td>52</td><td>–</td></tr></table></body></html>"


def test_a_clean_page_passes():
    assert check_page(Path("p.html"), GOOD, expect_figures=False) == []


def test_nan_cells_and_the_injected_parameters_cell_are_problems():
    bad = GOOD.replace("<td>52</td>", "<td>NaN</td>").replace(
        "<table>", '<div class="cell tag_injected-parameters docutils container">x</div><table>'
    )
    problems = check_page(Path("p.html"), bad, expect_figures=False)
    assert any("a table shows NaN" in p for p in problems)
    assert any("injected-parameters" in p for p in problems)


def test_a_traceback_and_a_missing_figure_are_problems():
    page = GOOD.replace("<table>", "Traceback (most recent call last)<table>")
    problems = check_page(Path("p.html"), page, expect_figures=True)
    assert any("traceback" in p for p in problems) and any("no figure images" in p for p in problems)


def test_a_section_page_without_a_typeset_equation_is_a_problem():
    assert any("no typeset equation" in p for p in check_page(Path("p.html"), GOOD, False, expect_math=True))
    source_only = GOOD.replace("<table>", '<div class="math notranslate nohighlight">\\[x\\]</div><table>')
    assert any("no typeset equation" in p for p in check_page(Path("p.html"), source_only, False, True))
    typeset = GOOD.replace("<table>", '<div class="math"><mjx-container>x</mjx-container></div><table>')
    assert check_page(Path("p.html"), typeset, False, expect_math=True) == []


def test_untypeset_or_unparsed_equations_and_an_unfinished_page_are_problems():
    record = {"mathjax": "absent", "sources": 2, "untypeset": ["\\[ x \\]"], "errors": ["Missing }"]}
    problems = check_page(Path("p.html"), GOOD.replace(_probed(), _probed(record)), False)
    assert problems == [
        "p.html: MathJax did not typeset 1 of 2 equations (\\[ x \\])",
        "p.html: MathJax could not parse 1 of 2 equations (Missing })",
        "p.html: MathJax is absent (does every script load offline?)",
    ]
    unfinished = GOOD.replace(_probed(), "<body>")
    assert any("not done" in p for p in check_page(Path("p.html"), unfinished, False))


def test_assets_from_outside_the_build_folder_are_problems(tmp_path):
    site = tmp_path / "html"
    (site / "_static").mkdir(parents=True)
    assert not outside("_static/a.css?v=1", site, site) and not outside("data:image/png;base64,x", site, site)
    assert outside("https://cdn.example/x.js", site, site) and outside("//cdn.example/x.js", site, site)
    assert outside("../secret.png", site, site) and outside((tmp_path / "x.png").as_uri(), site, site)
    (site / "_static" / "theme.css").write_text(
        "@font-face { src: url('fonts/a.woff2') } @import 'https://fonts.example/css';"
    )
    assets = [
        ("link stylesheet", "_static/theme.css"),
        ("script", "_static/x.js"),
        ("img", "https://a/b.png"),
    ]
    assert external_assets(site / "p.html", assets) == [
        "p.html: _static/theme.css loads https://fonts.example/css from outside the book",
        "p.html: img https://a/b.png comes from outside the book",
    ]
    page = GOOD.replace("<table>", '<script src="https://cdn.example/mathjax.js"></script><table>')
    problems = check_page(site / "p.html", page, False, requests=["https://cdn.example/mathjax.js"])
    assert problems == [
        "p.html: fetched https://cdn.example/mathjax.js from the network",
        "p.html: script https://cdn.example/mathjax.js comes from outside the book",
    ]


def test_only_the_pages_own_requests_count_from_the_netlog(tmp_path):
    event = {
        "type": 7,
        "params": {"url": "https://cdn.example/x.js", "network_isolation_key": "file:// file://"},
    }
    browser = {"type": 7, "params": {"url": "https://update.example/", "network_isolation_key": "null null"}}
    other = {"type": 3, "params": {"url": "https://cdn.example/y.js", "network_isolation_key": "file://"}}
    log = {"constants": {"logEventTypes": {"URL_REQUEST_START_JOB": 7}}, "events": [event, browser, other]}
    (tmp_path / "netlog.json").write_text(json.dumps(log))
    assert page_requests(tmp_path / "netlog.json") == ["https://cdn.example/x.js"]


def test_an_image_outside_a_captioned_figure_is_a_problem(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "a.png").write_bytes(b"x" * 2000)
    bare = GOOD.replace("<table>", '<img src="_images/a.png"><table>')
    assert any(
        "1 of 1 images have no captioned figure" in p for p in check_page(tmp_path / "p.html", bare, True)
    )
    captioned = GOOD.replace(
        "<table>",
        '<figure><div><img src="_images/a.png"></div><figcaption>What it shows.</figcaption></figure><table>',
    )
    assert check_page(tmp_path / "p.html", captioned, True) == []


def test_a_link_to_an_anchor_the_target_page_lacks_is_a_problem(tmp_path):
    (tmp_path / "dynamics.html").write_text('<figure id="fig-lp-path"></figure><table id="T_data"></table>')
    links = '<a href="dynamics.html#fig-lp-path">M1</a><a href="#top">up</a><div id="top"></div>'
    (tmp_path / "claims.html").write_text(links)
    assert broken_anchors(tmp_path, ["claims", "dynamics"]) == []
    (tmp_path / "claims.html").write_text(links + '<a href="dynamics.html#fig-gone">M2</a>')
    assert broken_anchors(tmp_path, ["claims"]) == [
        "claims.html: link to dynamics.html#fig-gone, which that page lacks"
    ]


def test_the_parameters_cell_of_every_page_and_profile_fits_the_column():
    """The parameters cell a reader sees: the page's own lines and comments with each profile's values."""
    too_long = []
    for page in notebook_pages():
        cell = next(
            c for c in read_page(BOOK_DIR / f"{page}.md").cells if "parameters" in c.metadata.get("tags", [])
        )
        for profile in profiles():
            shown = parameters_for_reading(cell.source, check_profile(page, profile))
            too_long += [f"{profile}/{page}: {line}" for line in shown.splitlines() if len(line) > CODE_WIDTH]
    assert not too_long, f"parameter lines over {CODE_WIDTH} characters: " + "; ".join(too_long)


def test_a_long_parameter_line_puts_its_comment_above():
    source = "seeds: list = [1]  # one run per seed\nn: int = 3"
    assert parameters_for_reading(source, {"seeds": [1001, 2002]}) == (
        "seeds: list = [1001, 2002]  # one run per seed\nn: int = 3"
    )
    seeds = list(range(1000, 1012))
    assert parameters_for_reading(source, {"seeds": seeds, "n": 5}) == (
        f"# one run per seed\nseeds: list = {seeds!r}\nn: int = 5"
    )


TINY_PAGES = {
    "good": "# Good\n\n$$\n\\|w\\|_2 = \\sqrt{\\sum_i w_i^2}\n$$\n\nand inline, $x^2$.\n",
    "broken": "# Broken\n\n<p>Left as text: \\[ \\frac{a}{b} \\]</p>\n\n$$\n\\frac{a}\n$$\n",
    "external": '# External\n\n<img src="https://example.org/logo.png" alt="logo">\n',
}


@pytest.fixture(scope="module")
def tiny_book(tmp_path_factory) -> Path:
    """A three-page book built by Jupyter Book with the book's `_config.yml`: its `_build/html`."""
    site = tmp_path_factory.mktemp("tiny-book")
    shutil.copy(ROOT / "_config.yml", site / "_config.yml")
    (site / "_toc.yml").write_text(
        "format: jb-book\nroot: good\nchapters:\n- file: broken\n- file: external\n"
    )
    for name, text in TINY_PAGES.items():
        (site / f"{name}.md").write_text(text)
    proc = subprocess.run(
        [find_jupyter_book(), "build", str(site), "-W", "-n", "--quiet"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return site / "_build" / "html"


needs_chromium = pytest.mark.skipif(
    not any(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")),
    reason="headless Chromium not installed (Debian: apt-get install chromium; .ci/run installs it)",
)


@needs_chromium
def test_the_books_mathjax_typesets_offline(tiny_book, capsys):
    assert (tiny_book / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert 'src="_static/mathjax/tex-chtml.js"' in (tiny_book / "good.html").read_text()
    assert check_book(tiny_book, {"good": False}, math_pages=("good",)) == []
    assert "good.html                ok (0 images, 2 equations)" in capsys.readouterr().out


@needs_chromium
def test_raw_and_unparsed_tex_and_an_external_asset_fail_in_chromium(tiny_book):
    problems = check_book(tiny_book, {"broken": False, "external": False})
    assert problems == [
        "broken.html: MathJax could not parse 1 of 1 equations (Missing argument for \\frac)",
        "broken.html: TeX left as text: \\[ \\frac{a}{b} \\]",
        "external.html: fetched https://example.org/logo.png from the network",
        "external.html: img https://example.org/logo.png comes from outside the book",
    ]
