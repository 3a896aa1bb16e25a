"""Check the built HTML in headless Chromium: every page loads, figures are images, no tracebacks.

python -m lpft_nb check-html [_build/html] [--screenshots DIR]
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MISSING_CELLS = {"NaN", "nan", "None", "<NA>"}
FORBIDDEN = {
    "a Python traceback": "Traceback (most recent call last)",
    "a matplotlib placeholder instead of an image": "<Figure size",
}


class _Images(HTMLParser):
    """Image sources, element classes and the text of every table cell of a page."""

    def __init__(self):
        super().__init__()
        self.sources: list[str] = []
        self.classes: list[str] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "img":
            self.sources.append(attrs.get("src") or "")
        if attrs.get("class"):
            self.classes.append(attrs["class"])
        if tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None


def draws_figures(page_text: str) -> bool:
    """Whether a page's source draws figures (so its HTML must hold images)."""
    return "plt.show()" in page_text or "show_panels(" in page_text


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise FileNotFoundError("headless Chromium not found (Debian: apt-get install chromium)")


# Run in the page once it has loaded, at the window width a reader has: every table wider than the content
# column is recorded on <body data-overflow="...">, which the dumped DOM carries back.
MEASURE_TABLES = """<script>
window.addEventListener("load", () => {
  const column = document.querySelector("article") || document.querySelector("main") || document.body;
  const wide = [];
  document.querySelectorAll("table").forEach((table, i) => {
    if (column.contains(table) && table.scrollWidth > column.clientWidth + 1) {
      const caption = table.querySelector("caption");
      wide.push(`table ${i + 1} (${caption ? caption.textContent.slice(0, 40) : "no caption"}): `
                + `${table.scrollWidth} px > ${column.clientWidth} px`);
    }
  });
  document.body.setAttribute("data-overflow", wide.join("; "));
});
</script>"""
WINDOW = "1200,3000"


def render_dom(page: Path, binary: str) -> str:
    """The page's DOM after Chromium loaded it at `WINDOW` (scripts run, tables measured)."""
    probe = page.with_name(f".check-{page.name}")  # beside the page, so its relative links resolve
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", MEASURE_TABLES + "</body>"), "utf-8")
    try:
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run(
                [
                    binary,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    f"--window-size={WINDOW}",
                    "--virtual-time-budget=5000",
                    "--dump-dom",
                    probe.resolve().as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
    finally:
        probe.unlink(missing_ok=True)
    if proc.returncode != 0 or "<body" not in proc.stdout:
        raise RuntimeError(f"{page.name}: Chromium did not load it ({proc.stderr.strip().splitlines()[-1:]})")
    return proc.stdout


def screenshot(page: Path, out: Path, binary: str, size: str = WINDOW) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size}",
                "--hide-scrollbars",
                f"--screenshot={out}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=120,
        )


def check_page(page: Path, dom: str, expect_figures: bool, expect_math: bool = False) -> list[str]:
    """Problems found on one page (empty when it is fine)."""
    problems = [f"{page.name}: shows {what}" for what, text in FORBIDDEN.items() if text in dom]
    parser = _Images()
    parser.feed(dom)
    if any(re.search(r"\boutput traceback\b|\berror\b.*\boutput\b", c) for c in parser.classes):
        problems.append(f"{page.name}: has an error output cell")
    overflow = re.search(r'data-overflow="([^"]+)"', dom)
    if overflow:
        problems.append(f"{page.name}: wider than the content column: {html.unescape(overflow.group(1))}")
    missing = sorted({c for c in parser.cells if c in MISSING_CELLS})
    if missing:
        problems.append(f"{page.name}: a table shows {', '.join(missing)} (a missing value is shown as '–')")
    if any("tag_injected-parameters" in c for c in parser.classes):
        problems.append(f"{page.name}: shows papermill's injected-parameters cell")
    figures = [src for src in parser.sources if "_images/" in src or src.startswith("data:image")]
    for src in figures:
        if src.startswith("data:image"):
            continue
        target = (page.parent / src.split("#")[0].split("?")[0]).resolve()
        if not target.is_file() or target.stat().st_size < 1000:
            problems.append(f"{page.name}: image {src} is missing or empty")
    if expect_math and not any(re.search(r"\bmath\b", c) for c in parser.classes):
        problems.append(f"{page.name}: no typeset equation, though it is a section page of the paper")
    captioned = sum(
        len(re.findall(r"<img\b[^>]*src=\"(?:[^\"]*_images/|data:image)", block))
        for block in re.findall(r"<figure\b.*?</figure>", dom, flags=re.S)
        if "<figcaption" in block
    )
    if captioned < len(figures):
        problems.append(
            f"{page.name}: {len(figures) - captioned} of {len(figures)} images have no captioned figure"
        )
    if expect_figures and not figures:
        problems.append(f"{page.name}: no figure images, though the page draws figures")
    return problems


_LINK = re.compile(r'<a\b[^>]*\bhref="(?P<file>[^"#:]*)#(?P<fragment>[^"]+)"')
_ID = re.compile(r'\bid="([^"]+)"')


def broken_anchors(html_dir: Path, names) -> list[str]:
    """Links from the pages `names` to an anchor (`page.html#id` or `#id`) that the target page lacks — e.g.
    a claim linked to a figure or table that this build did not draw."""
    ids: dict[str, set[str]] = {}

    def ids_of(name: str) -> set[str]:
        if name not in ids:
            target = html_dir / name
            ids[name] = set(_ID.findall(target.read_text(encoding="utf-8"))) if target.is_file() else set()
        return ids[name]

    problems = []
    for name in names:
        page = html_dir / f"{name}.html"
        if not page.is_file():
            continue
        for link in _LINK.finditer(page.read_text(encoding="utf-8")):
            target = link["file"] or page.name
            fragment = html.unescape(link["fragment"])
            if target.endswith(".html") and fragment not in ids_of(target):
                problems.append(f"{page.name}: link to {target}#{fragment}, which that page lacks")
    return problems


def check_book(
    html_dir: Path, pages: dict[str, bool], screenshots: Path | None = None, math_pages: tuple[str, ...] = ()
) -> list[str]:
    """Check each page (name → whether it should hold figures; `math_pages` must show an equation); print
    one line per page; return problems."""
    binary = chromium_binary()
    problems: list[str] = []
    for name, expect_figures in pages.items():
        page = html_dir / f"{name}.html"
        if not page.is_file():
            problems.append(f"{name}.html: not built")
            continue
        try:
            dom = render_dom(page, binary)
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            problems.append(str(err))
            continue
        found = check_page(page, dom, expect_figures, expect_math=name in math_pages)
        n_images = dom.count("<img")
        print(f"html check {name + '.html':<24} {'ok' if not found else 'PROBLEMS'} ({n_images} images)")
        problems += found
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            screenshot(page, screenshots / f"{name}.png", binary)
    return problems + broken_anchors(html_dir, pages)
