"""Build the book: Jupytext → .ipynb → papermill (profile parameters) → Jupyter Book (no re-execution).

    python -m lpft_nb book --profile default [--pages NAME ...]

Executed notebooks and their logs are kept in ``_build/executed/<profile>/``; the HTML lands in
``_build/html``; the claim checks of every page are gathered into ``_build/claims.json``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..config import resolve_cache_dir, resolve_data_dir
from ..data.download import ensure_book_data
from .params import (
    BOOK_DIR,
    PARAMS_DIR,
    ROOT,
    ParamError,
    base_of,
    check_profile,
    check_profile_name,
    check_shared,
    differences_from_base,
    is_notebook_page,
    profiles,
)

BUILD_DIR = ROOT / "_build"
EXPLORATIONS = "Explorations"
EXECUTED_ENV = "LPFT_EXECUTED_DIR"
GATHERING_PAGES = ("claims", "reproduce")  # executed last: they read what the others left
READS_CACHE_ONLY = ("reproduce",)  # of those, the ones that read the run cache only, not the notebooks
CODE_WIDTH = 88  # characters of code the content column shows without a horizontal scroll
SECTION_PAGES = ("dynamics", "norms", "ntk", "calibration", "lora", "boss_ood")  # one per paper section
RESERVED_PAGE_NAMES = (
    "genindex",
    "index",
    "modindex",
    "py-modindex",
    "search",
    "searchindex",
)  # pages that read the others' executed notebooks: executed last


def executed_dir(default_profile: str = "default") -> Path:
    """The folder of this build's executed notebooks (set by the build; else the default profile's)."""
    return Path(os.environ.get(EXECUTED_ENV, BUILD_DIR / "executed" / default_profile))


@dataclass
class PageResult:
    name: str
    ok: bool
    seconds: float
    error: str = ""


def toc_files(toc_path: Path = BOOK_DIR / "_toc.yml") -> list[str]:
    """Page names in table-of-contents order (root first)."""
    toc = yaml.safe_load(toc_path.read_text())
    names = [toc["root"]]
    for part in toc.get("parts", []):
        names += [ch["file"] for ch in part.get("chapters", [])]
    names += [ch["file"] for ch in toc.get("chapters", [])]
    return names


def notebook_pages(book_dir: Path = BOOK_DIR) -> list[str]:
    return [n for n in toc_files(book_dir / "_toc.yml") if is_notebook_page(book_dir / f"{n}.md")]


def _failure_summary(err: Exception) -> str:
    """'cell N: ErrorName: message' from a papermill execution error, else the exception's first line."""
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:
        cell = getattr(err, "exec_count", None) or getattr(err, "cell_index", "?")
        return f"cell {cell}: {ename}: {str(evalue).splitlines()[0] if evalue else ''}"
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def execute_page(page: str, profile: str, out_dir: Path, book_dir: Path = BOOK_DIR) -> PageResult:
    """Check the profile's parameters, convert the page and execute it with papermill into `out_dir`."""
    import jupytext
    import papermill

    start = time.perf_counter()
    try:
        params = check_profile(page, profile, book_dir)
    except ParamError as err:
        return PageResult(page, False, 0.0, str(err))
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / f"{page}.source.ipynb"
    target = out_dir / f"{page}.ipynb"
    nb = jupytext.read(str(book_dir / f"{page}.md"))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    jupytext.write(nb, str(source), fmt="ipynb")
    env_backend = os.environ.pop("MPLBACKEND", None)  # Agg would hide the figures
    os.environ[EXECUTED_ENV] = str(out_dir.resolve())  # where the `claims` page finds the other pages
    try:
        with open(out_dir / f"{page}.log", "w") as log:
            papermill.execute_notebook(
                str(source),
                str(target),
                parameters=params,
                kernel_name="python3",
                progress_bar=False,
                log_output=True,
                stdout_file=log,
                stderr_file=log,
                cwd=str(book_dir),
                # the kernel's own log (its TCP warning; a ZMQ error when Ctrl-C stops it mid-reply) stays
                # off the terminal: a page's errors reach the build through papermill, not this log
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            )
        _prepare_for_reading(target, params)
        ok, error = True, ""
    except Exception as err:  # a failing page is reported, the others still run
        ok, error = False, _failure_summary(err)
    finally:
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
        source.unlink(missing_ok=True)
    return PageResult(page, ok, time.perf_counter() - start, error)


_PARAMETER_LINE = re.compile(
    r"^(?P<name>[A-Za-z_]\w*)(?P<type>\s*:[^=]+)?=\s*(?P<value>.*?)(?P<comment>\s+#.*)?$"
)


def _prepare_for_reading(path: Path, params: dict) -> None:
    """Fold the machinery of an executed page away for the reader.

    One parameters cell holds the values this build used: papermill's injected cell is removed from the
    rendered page and its values are written into the page's own `parameters` cell (whose comments say
    what each parameter means). Every other code cell shows its output with its input collapsed
    (`hide-input`: a click unfolds it), unless the page tags it `show-input` as code worth reading.
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        tags = cell.setdefault("metadata", {}).get("tags", [])
        if "parameters" not in tags and "injected-parameters" not in tags and "show-input" not in tags:
            cell["metadata"]["tags"] = [*tags, "hide-input"]
        if "injected-parameters" in tags:
            cell["metadata"]["tags"] = [*tags, "remove-cell"]
        elif "parameters" in tags:
            cell["source"] = parameters_for_reading("".join(cell["source"]), params)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")


def parameters_for_reading(source: str, params: dict) -> str:
    """A page's parameters cell with this build's values: each `name = value  # comment` line takes its
    value from `params`; where that line would run past `CODE_WIDTH`, its comment goes on a line above."""
    lines = []
    for line in source.splitlines():
        m = _PARAMETER_LINE.match(line)
        if not (m and m["name"] in params):
            lines.append(line)
            continue
        code = f"{m['name']}{m['type'] or ' '}= {params[m['name']]!r}"
        comment = m["comment"] or ""
        if comment and len(code + comment) > CODE_WIDTH:
            lines += [comment.strip(), code]
        else:
            lines.append(code + comment)
    return "\n".join(lines)


def repository_url() -> str | None:
    """The repository the book's buttons point to: $LPFT_REPOSITORY_URL, else the `origin` remote as an
    https URL, else None (no repository button: never a made-up address)."""
    url = os.environ.get("LPFT_REPOSITORY_URL")
    if not url:
        proc = subprocess.run(
            ["git", "-C", str(ROOT), "remote", "get-url", "origin"], capture_output=True, text=True
        )
        url = proc.stdout.strip() if proc.returncode == 0 else ""
        if url.startswith("git@") and ":" in url:  # git@host:owner/name.git → https://host/owner/name
            host, path = url[4:].split(":", 1)
            url = f"https://{host}/{path}"
        url = url.removesuffix(".git")
    return url if url.startswith(("https://", "http://")) else None


_NUMREF = re.compile(r"\{numref\}`[^`]*`")
UNDRAWN_FIGURE = "the figure (drawn when this page is executed)"


def _stage(profile: str, executed: Path, site: Path) -> None:
    """Lay out the Jupyter Book source: config, toc, prose pages and executed notebooks."""
    if site.exists():
        shutil.rmtree(site)
    site.mkdir(parents=True)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    url = repository_url()
    theme = config.setdefault("sphinx", {}).setdefault("config", {}).setdefault("html_theme_options", {})
    config.setdefault("html", {})["use_repository_button"] = bool(url)
    theme["use_repository_button"] = bool(url)
    if url:
        config.setdefault("repository", {})["url"] = url
        theme["repository_url"] = url
    else:
        config.pop("repository", None)
        theme.pop("repository_url", None)
    (site / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(BOOK_DIR / "_toc.yml", site / "_toc.yml")
    for name in toc_files():
        src = BOOK_DIR / f"{name}.md"
        if is_notebook_page(src):
            nb = executed / f"{name}.ipynb"
            if nb.is_file():
                shutil.copy(nb, site / f"{name}.ipynb")
            else:  # never executed under this profile: show the page unexecuted
                import jupytext

                notebook = jupytext.read(str(src))
                for cell in notebook.cells:  # its figures were never drawn, so no reference can resolve
                    if cell.cell_type == "markdown":
                        cell.source = _NUMREF.sub(UNDRAWN_FIGURE, cell.source)
                jupytext.write(notebook, str(site / f"{name}.ipynb"), fmt="ipynb")
        else:
            shutil.copy(src, site / f"{name}.md")
    for extra in ("references.bib", "_static"):
        if (BOOK_DIR / extra).exists():
            (shutil.copytree if (BOOK_DIR / extra).is_dir() else shutil.copy)(BOOK_DIR / extra, site / extra)


def gather_claims(executed: Path) -> list[dict]:
    """Every page's checks, each once, plus a `not run` record for each checklist id no page checked (as the
    claims page); each record has its `kind` (claim or identity)."""
    from ..paper import CHECKLIST, NOT_RUNNABLE
    from ..report.claims import gather_table

    pages = [n for n in notebook_pages() if n not in GATHERING_PAGES and (executed / f"{n}.ipynb").is_file()]
    table, _ = gather_table(executed, pages, CHECKLIST, NOT_RUNNABLE)
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def cache_entries() -> set[tuple[str, str]]:
    """(kind, name) of every run and kernel in the cache that pages use (`$LPFT_CACHE_DIR` or the default)."""
    root = resolve_cache_dir(None)
    return {
        (kind, p.name)
        for kind in ("runs", "ntk")
        if (root / kind).is_dir()
        for p in (root / kind).iterdir()
        if not p.name.startswith(".")
    }


def find_jupyter_book() -> str:
    """The `jupyter-book` command of this Python (beside `sys.executable`, as in a venv that is not
    activated), else the one on PATH; a one-line error before any page runs when there is none."""
    beside = Path(sys.executable).parent / "jupyter-book"
    found = str(beside) if beside.is_file() else shutil.which("jupyter-book")
    if not found:
        raise ParamError(
            f"jupyter-book not found beside {sys.executable} or on PATH; "
            "install it: pip install -r requirements.txt"
        )
    return found


def selected_pages(pages: list[str] | None) -> list[str]:
    """The notebook pages a command works on: `pages`, or all when None; one line for an empty list or an
    unknown name (`book`, `sweep` and `plan` share it)."""
    all_pages = notebook_pages()
    if pages is not None and not pages:
        raise ParamError("--pages needs at least one page name; pages: " + ", ".join(all_pages))
    unknown = [p for p in pages or [] if p not in all_pages]
    if unknown:
        raise ParamError(f"unknown page(s) {', '.join(unknown)}; pages: {', '.join(all_pages)}")
    return list(pages or all_pages)


def check_plans(profile: str, pages: list[str], params_dir: Path = PARAMS_DIR) -> None:
    """Build the run plan of each of `pages` under `profile`, as the page will: a value its plan rejects
    (e.g. LP-cause levels out of range) is one ParamError line before any page runs."""
    from .params import page_parameters
    from .plans import page_plan, plan_name

    for page in pages:
        name = plan_name(page)
        if name is None:
            continue
        values = {
            **page_parameters(BOOK_DIR / f"{page}.md"),
            **check_profile(page, profile, params_dir=params_dir),
        }
        try:
            page_plan(name, values)
        except (TypeError, ValueError) as err:
            raise ParamError(f"profile {profile!r}, page {page}: {' '.join(str(err).split())}") from None


def print_differences(profile: str, pages: list[str]) -> None:
    """Print, per page, each parameter whose value under `profile` differs from its base's, and the file
    it came from (nothing for a profile without a base; `book` and `plan` print it first)."""
    base = base_of(profile)
    if base is None:
        return
    lines = [line for page in pages for line in differences_from_base(page, profile)]
    print(f"profile {profile} (base {base}): {len(lines)} parameter(s) differ from the base")
    for line in lines:
        print(f"  {line}")


def all_computed(profile: str, pages: list[str]) -> bool:
    """Whether the cache holds every run and kernel that `pages` plan under `profile`."""
    from .plans import profile_tasks

    data_dir, cache_dir = resolve_data_dir(None), resolve_cache_dir(None)
    return all(task.cached() for task in profile_tasks(profile, pages, data_dir, cache_dir))


def _execute_pages(pages: list[str], profile: str, executed: Path, jobs: int, keep_going: bool) -> list:
    """Execute `pages` (`jobs` at a time), printing one line per page as it ends; their PageResults."""
    results = []

    def report(result: PageResult) -> bool:
        results.append(result)
        log = executed / f"{result.name}.log"
        status = "ok" if result.ok else f"FAILED ({result.error}; log: {log})"
        print(f"page {result.name:<16} {result.seconds:8.1f} s  {status}", flush=True)
        return result.ok or keep_going

    if jobs == 1:
        for page in pages:
            if not report(execute_page(page, profile, executed)):
                break
        return results
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in as_completed([pool.submit(execute_page, p, profile, executed) for p in pages]):
            report(future.result())
    return results


def build_book(
    profile: str = "default", pages: list[str] | None = None, keep_going: bool = True, jobs: int = 1
) -> int:
    """Execute pages and build the HTML; print one line per page and a summary. Returns an exit code.

    With `jobs` > 1 the pages that gather nothing run `jobs` at a time, but only when the cache already
    holds every run and kernel they need (else two pages could train the same run at once)."""
    check_profile_name(profile)
    all_pages = notebook_pages()
    selected = selected_pages(pages)
    jupyter_book = find_jupyter_book()
    check_shared(profile, all_pages)
    for page in selected:  # every parameter file is checked before anything runs
        check_profile(page, profile)
    check_plans(profile, selected)
    print_differences(profile, selected)
    data_dir = ensure_book_data()  # fetched first when no folder is set; offline: one-line error
    os.environ["LPFT_DATA_DIR"] = str(data_dir)  # what the pages' kernels read
    print(f"data {'':<16} {data_dir}", flush=True)
    independent = [p for p in selected if p not in GATHERING_PAGES]
    gathering = [p for p in selected if p in GATHERING_PAGES]
    executed = BUILD_DIR / "executed" / profile
    cached_before = cache_entries()
    total_start = time.perf_counter()
    if jobs > 1 and len(independent) > 1 and all_computed(profile, independent):
        print(f"pages {'':<15} {jobs} at a time: the cache holds every run and kernel they need", flush=True)
        # the reproduce page reads only the cache, complete now: it joins them, first (it is the longest)
        independent = [p for p in gathering if p in READS_CACHE_ONLY] + independent
        gathering = [p for p in gathering if p not in READS_CACHE_ONLY]
    else:
        jobs = 1
    env_backend = os.environ.pop("MPLBACKEND", None)  # Agg would hide the figures (set once: threads)
    os.environ[EXECUTED_ENV] = str(executed.resolve())
    try:
        results = _execute_pages(independent, profile, executed, jobs, keep_going)
        adjusted = adjust_claims(executed)
        if keep_going or all(r.ok for r in results):
            results += _execute_pages(gathering, profile, executed, 1, keep_going)
    finally:
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
    site = BUILD_DIR / "site"
    _stage(profile, executed, site)
    start = time.perf_counter()
    proc = subprocess.run(
        [
            jupyter_book,
            "build",
            str(site),
            "-W",
            "-n",
            "--keep-going",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    html_ok = proc.returncode == 0
    if html_ok:
        if (BUILD_DIR / "html").exists():
            shutil.rmtree(BUILD_DIR / "html")
        shutil.copytree(site / "_build" / "html", BUILD_DIR / "html")
    else:
        (BUILD_DIR / "jupyter-book.log").write_text(proc.stdout + proc.stderr)
    print(
        f"html {'':<16} {time.perf_counter() - start:8.1f} s  "
        f"{'ok: ' + str(BUILD_DIR / 'html' / 'index.html') if html_ok else 'FAILED (see _build/jupyter-book.log)'}"
    )
    if not html_ok:
        print("\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:]), file=sys.stderr)
    claims = gather_claims(executed)
    (BUILD_DIR / "claims.json").write_text(json.dumps(claims, indent=1))
    counts = {
        s: sum(c["status"] == s and c["kind"] == "claim" for c in claims)
        for s in ("holds", "does not hold", "inconclusive", "not run")
    }
    counts["book hypotheses"] = sum(c["kind"] == "hypothesis" for c in claims)
    counts["identities (tests of the code)"] = sum(c["kind"] == "identity" for c in claims)
    new = cache_entries() - cached_before
    trained = sum(kind == "runs" for kind, _ in new)
    print(f"cache: this build trained {trained} runs and computed {len(new) - trained} kernels")
    failed = [r.name for r in results if not r.ok]
    print(
        f"book ({profile}): {len(results) - len(failed)}/{len(results)} pages ok, "
        f"{time.perf_counter() - total_start:.1f} s in all; claims: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
        + " (_build/claims.json)"
    )
    return 0 if not failed and html_ok and adjusted else 1


def adjust_claims(executed: Path) -> bool:
    """The book-wide false-discovery control: every executed page of the book (not only this build's
    selection: one family per book) adjusted together, its tables and verdicts rewritten
    (`claims.adjust_notebooks`), before the gathering pages read them. False when the records conflict."""
    from ..paper import CHECKLIST
    from ..report.claims import adjust_notebooks

    paths = [
        executed / f"{n}.ipynb"
        for n in notebook_pages()
        if n not in GATHERING_PAGES and (executed / f"{n}.ipynb").is_file()
    ]
    try:
        counts = adjust_notebooks(paths, CHECKLIST)
    except ValueError as err:
        print(f"claims {'':<14} FAILED: {err}", flush=True)
        return False
    print(
        f"claims {'':<14} {counts['tested']} tested checks: {counts['nominal']} at p < 5 % alone, "
        f"{counts['adjusted']} after the Benjamini–Hochberg adjustment over all of them",
        flush=True,
    )
    return True


def fork_page(page: str, name: str, book_dir: Path = BOOK_DIR, params_dir: Path = PARAMS_DIR) -> None:
    """Copy `page` and its parameter files (every profile) to `name`; list it under Explorations."""
    src = book_dir / f"{page}.md"
    if not src.is_file() or not is_notebook_page(src):
        raise ParamError(f"no notebook page {page!r} in {book_dir}")
    if not (name[:1].isalpha() and name.replace("_", "").isalnum()):
        raise ParamError(f"page name {name!r} must start with a letter and hold letters, digits, underscores")
    if name.lower() in RESERVED_PAGE_NAMES:
        raise ParamError(
            f"page name {name!r} is reserved by Sphinx / Jupyter Book ({', '.join(RESERVED_PAGE_NAMES)})"
        )
    if (book_dir / f"{name}.md").exists():
        raise ParamError(f"page {name!r} exists already")
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    title = next(i for i, line in enumerate(lines) if line.startswith("# "))
    lines[title] = f"# Exploration `{name}` (forked from `{page}`)\n"
    (book_dir / f"{name}.md").write_text("".join(lines), encoding="utf-8")
    for profile in profiles(params_dir):
        params = params_dir / profile / f"{page}.yaml"
        if params.is_file():
            shutil.copy(params, params_dir / profile / f"{name}.yaml")
    toc_path = book_dir / "_toc.yml"
    toc = yaml.safe_load(toc_path.read_text())
    parts = toc.setdefault("parts", [])
    part = next((p for p in parts if p.get("caption") == EXPLORATIONS), None)
    if part is None:
        part = {"caption": EXPLORATIONS, "chapters": []}
        parts.append(part)
    part["chapters"].append({"file": name})
    toc_path.write_text(yaml.safe_dump(toc, sort_keys=False))
    print(f"forked {page} → book/{name}.md (+ params/<profile>/{name}.yaml); listed under {EXPLORATIONS}")
