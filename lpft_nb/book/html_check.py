"""Check the built HTML in headless Chromium as a reader with no network sees it: every page loads from the
build folder alone, its equations are typeset, figures are images, nothing is wider than the column.

python -m lpft_nb check-html [_build/html] [--screenshots DIR]

Chromium runs with no host name resolvable (`OFFLINE`), records every request a page makes in a NetLog, and
dumps the page's DOM once MathJax's startup promise has settled and the page has been measured (`PROBE`).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND"  # every host fails to resolve: a reader with no network
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    OFFLINE,
]
MISSING_CELLS = {"NaN", "nan", "None", "<NA>"}
FORBIDDEN = {
    "a Python traceback": "Traceback (most recent call last)",
    "a matplotlib placeholder instead of an image": "<Figure size",
}
# Elements and attributes whose URL the browser fetches as the page loads (links to other pages are not).
FETCHED = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "iframe": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
}
FETCHED_LINKS = {"stylesheet", "icon", "preload", "modulepreload", "prefetch", "preconnect", "dns-prefetch"}
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")


class _Page(HTMLParser):
    """Image sources, element classes, the text of every table cell, and every URL fetched on load
    (`assets`: (what, url)) of a page."""

    def __init__(self):
        super().__init__()
        self.sources: list[str] = []
        self.classes: list[str] = []
        self.cells: list[str] = []
        self.assets: list[tuple[str, str]] = []
        self._cell: list[str] | None = None
        self._style = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "img":
            self.sources.append(attrs.get("src") or "")
        if attrs.get("class"):
            self.classes.append(attrs["class"])
        if tag in ("td", "th"):
            self._cell = []
        for name in FETCHED.get(tag, ()):
            for url in (attrs.get(name) or "").split(",") if name == "srcset" else [attrs.get(name) or ""]:
                if url.strip():
                    self.assets.append((tag, url.split()[0]))
        rels = set((attrs.get("rel") or "").lower().split())
        if tag == "link" and rels & FETCHED_LINKS and attrs.get("href"):
            self.assets.append((f"link {' '.join(sorted(rels & FETCHED_LINKS))}", attrs["href"]))
        self.assets += [("inline style", url) for url in css_urls(attrs.get("style") or "")]
        self._style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._style:
            self.assets += [("<style>", url) for url in css_urls(data)]

    def handle_endtag(self, tag: str) -> None:
        self._style = False
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None


def css_urls(css: str) -> list[str]:
    """Every `url(...)` and `@import` target of a stylesheet's text."""
    return [a or b for a, b in _CSS_URL.findall(css)]


def outside(url: str, base: Path, root: Path) -> bool:
    """Whether `url`, written in a file of folder `base`, is fetched from outside the folder `root`:
    from a host (http, https, //), or a file path that leaves `root`. Inline `data:` URLs are inside."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about", "javascript"):
        return False
    if parts.scheme or parts.netloc:
        if parts.scheme != "file" or parts.netloc:
            return True
        target = Path(unquote(parts.path))
    else:
        target = base / unquote(parts.path)
    return not target.resolve().is_relative_to(root.resolve())


def draws_figures(page_text: str) -> bool:
    """Whether a page's source draws figures (so its HTML must hold images)."""
    return "plt.show()" in page_text or "show_panels(" in page_text


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    raise FileNotFoundError("headless Chromium not found (Debian: apt-get install chromium)")


# Run in the page once it has loaded and MathJax's startup promise (its first typesetting) has settled, at
# the window width a reader has. Results go on <body> attributes, which the dumped DOM carries back:
# data-overflow: tables and code (cells' code and code blocks, not their printed output) wider than the
# content column (a horizontal scroll);
# data-math: JSON {sources: equations (Sphinx's `.math` elements), untypeset: those holding no MathJax
# output, errors: MathJax's error boxes, raw: TeX left as text outside code and equations, mathjax: ready |
# absent | failed};
# data-checked: set last, so a page dumped before the probe finished is told apart.
PROBE = r"""<script>
window.addEventListener("load", async () => {
  let mathjax = "absent";
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; mathjax = "ready"; } catch (err) { mathjax = "failed: " + err; }
  }
  const column = document.querySelector("article") || document.querySelector("main") || document.body;
  const wide = [];
  document.querySelectorAll("table").forEach((table, i) => {
    if (column.contains(table) && table.scrollWidth > column.clientWidth + 1) {
      const caption = table.querySelector("caption");
      wide.push(`table ${i + 1} (${caption ? caption.textContent.slice(0, 40) : "no caption"}): `
                + `${table.scrollWidth} px > ${column.clientWidth} px`);
    }
  });
  document.querySelectorAll("div.highlight pre").forEach((pre) => {
    if (!pre.closest(".cell_output") && pre.scrollWidth > pre.clientWidth + 1) {
      wide.push(`code (${pre.textContent.trim().split("\n")[0].slice(0, 40)}): `
                + `${pre.scrollWidth} px > ${pre.clientWidth} px`);
    }
  });
  document.body.setAttribute("data-overflow", wide.join("; "));
  const snippet = (text) => text.replace(/\s+/g, " ").trim().slice(0, 50);
  const math = [...document.querySelectorAll(".math")];
  const rawTex = /\\\[|\\\(|\$\$|\$[^$\s][^$]*[\\^_{][^$]*\$/;
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const match = node.data.match(rawTex);
    if (match && !node.parentElement.closest("script, style, pre, code, textarea, .math")) {
      raw.push(snippet(node.data.slice(match.index)));
    }
  }
  document.body.setAttribute("data-math", JSON.stringify({
    mathjax,
    sources: math.length,
    untypeset: math.filter((el) => !el.querySelector("mjx-container")).map((el) => snippet(el.textContent)),
    errors: [...document.querySelectorAll("mjx-merror")].map(
      (el) => snippet(el.getAttribute("data-mjx-error") || el.textContent)),
    raw,
  }));
  document.body.setAttribute("data-checked", "1");
});
</script>"""
WINDOW = "1200,3000"
BUDGET = "--virtual-time-budget=10000"  # ms of page time for scripts, fonts and MathJax to finish


def page_requests(netlog: Path) -> list[str]:
    """The URLs a page asked the network for, from Chromium's NetLog (file:// loads never reach it).
    Only requests made for the page (its network isolation key starts with the page's file:// site)
    count; the browser's own background requests do not."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return sorted(
        {
            event["params"]["url"]
            for event in log["events"]
            if event["type"] == start
            and str(event.get("params", {}).get("network_isolation_key", "")).startswith("file://")
        }
    )


def render_dom(page: Path, binary: str) -> tuple[str, list[str]]:
    """The page's DOM after Chromium loaded it offline at `WINDOW` (scripts run, MathJax settled, page
    measured), and the URLs it asked the network for."""
    probe = page.with_name(f".check-{page.name}")  # beside the page, so its relative links resolve
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), "utf-8")
    try:
        with tempfile.TemporaryDirectory() as profile:
            netlog = Path(profile) / "netlog.json"
            proc = subprocess.run(
                [
                    binary,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    f"--log-net-log={netlog}",
                    f"--window-size={WINDOW}",
                    BUDGET,
                    "--dump-dom",
                    probe.resolve().as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if proc.returncode != 0 or "<body" not in proc.stdout:
                last = proc.stderr.strip().splitlines()[-1:]
                raise RuntimeError(f"{page.name}: Chromium did not load it ({last})")
            try:
                return proc.stdout, page_requests(netlog)
            except (OSError, ValueError, KeyError) as err:
                raise RuntimeError(f"{page.name}: Chromium's NetLog is unreadable ({err!r})") from err
    finally:
        probe.unlink(missing_ok=True)


def screenshot(page: Path, out: Path, binary: str, size: str = WINDOW) -> None:
    """A PNG of the page as an offline reader sees it (MathJax given `BUDGET` to typeset)."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size}",
                BUDGET,
                "--hide-scrollbars",
                f"--screenshot={out}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=120,
        )


def math_problems(name: str, dom: str, expect_math: bool) -> list[str]:
    """Equations a reader would see as raw TeX, from the probe's `data-math` record in the dumped DOM."""
    if 'data-checked="1"' not in dom:
        return [f"{name}: the page was not done (MathJax still typesetting?) when Chromium's time ran out"]
    math = json.loads(html.unescape(re.search(r'data-math="([^"]*)"', dom).group(1)))
    problems = [
        f"{name}: {what} {len(items)} of {math['sources']} equations ({'; '.join(items[:3])})"
        for what, items in (
            ("MathJax did not typeset", math["untypeset"]),
            ("MathJax could not parse", math["errors"]),
        )
        if items
    ]
    if math["untypeset"] and math["mathjax"] != "ready":
        problems.append(f"{name}: MathJax is {math['mathjax']} (does every script load offline?)")
    if math["raw"]:
        problems.append(f"{name}: TeX left as text: {'; '.join(math['raw'][:3])}")
    if expect_math and "<mjx-container" not in dom:
        problems.append(f"{name}: no typeset equation, though it is a section page of the paper")
    return problems


def check_page(
    page: Path,
    dom: str,
    expect_figures: bool,
    expect_math: bool = False,
    requests: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """Problems found on one page (empty when it is fine) from its DOM as `render_dom` dumps it (with the
    `PROBE`'s record) and the network `requests` it made. The page's folder is the build folder."""
    problems = [f"{page.name}: shows {what}" for what, text in FORBIDDEN.items() if text in dom]
    parser = _Page()
    parser.feed(dom)
    problems += [f"{page.name}: fetched {url} from the network" for url in requests]
    problems += external_assets(page, parser.assets)
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
    problems += math_problems(page.name, dom, expect_math)
    figures = [src for src in parser.sources if "_images/" in src or src.startswith("data:image")]
    for src in figures:
        if src.startswith("data:image"):
            continue
        target = (page.parent / src.split("#")[0].split("?")[0]).resolve()
        if not target.is_file() or target.stat().st_size < 1000:
            problems.append(f"{page.name}: image {src} is missing or empty")
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


def external_assets(page: Path, assets: list[tuple[str, str]]) -> list[str]:
    """Assets of the page (and of the stylesheets it links in the build folder) that are fetched from
    outside the build folder (`page`'s folder)."""
    root = page.parent
    problems = []
    for what, url in assets:
        if outside(url, root, root):
            problems.append(f"{page.name}: {what} {url} comes from outside the book")
        elif what.startswith("link") and "stylesheet" in what:
            sheet = root / unquote(urlsplit(url).path)
            if sheet.is_file():
                problems += [
                    f"{page.name}: {url} loads {inner} from outside the book"
                    for inner in css_urls(sheet.read_text(encoding="utf-8", errors="replace"))
                    if outside(inner, sheet.parent, root)
                ]
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
            dom, requests = render_dom(page, binary)
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            problems.append(str(err))
            continue
        found = check_page(page, dom, expect_figures, expect_math=name in math_pages, requests=requests)
        n_images, n_math = dom.count("<img"), dom.count("<mjx-container")
        status = "ok" if not found else "PROBLEMS"
        print(f"html check {name + '.html':<24} {status} ({n_images} images, {n_math} equations)")
        problems += found
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            screenshot(page, screenshots / f"{name}.png", binary)
    return problems + broken_anchors(html_dir, pages)
