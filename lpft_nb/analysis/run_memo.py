"""Analyses memoised in memory and on disk: those of one training run beside it, in the run's cache folder
(`run_memo`), and those of no run in the cache's ``memo/`` folder (`cache_memo`).

A warm rebuild then reads each page's statistics instead of recomputing them. The file name carries the
analysis's name, a hash of its arguments and the `code_key` of the code that computes it, so a changed
argument or an edit to that code recomputes it; a run that has no folder (a test's fake run) is computed
every time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import resolve_cache_dir
from ..runs.cache import code_key, ensure_writable, memoize

_IN_MEMORY: dict[str, dict] = {}


def run_memo(
    run, name: str, arguments: dict, sources: tuple, compute: Callable[[], dict], suffix: str = ".json"
):
    """`compute()` (a dict; ``.json``: of JSON values, ``.npz``: of arrays) for `run`, memoised under
    `name` and `arguments`, keyed by the code in `sources` (modules, functions or classes)."""
    folder = Path(getattr(run, "path", "") or "")
    if not folder.is_dir():
        return compute()
    return _memo(folder, name, arguments, sources, compute, suffix)


def cache_memo(
    name: str,
    arguments: dict,
    sources: tuple,
    compute: Callable[[], dict],
    cache_dir: str | None = None,
    suffix: str = ".json",
):
    """`run_memo` for an analysis of no run: stored under ``<cache>/memo/``."""
    folder = ensure_writable(resolve_cache_dir(cache_dir) / "memo")  # one line before any compute
    return _memo(folder, name, arguments, sources, compute, suffix)


def _memo(folder: Path, name: str, arguments: dict, sources: tuple, compute: Callable[[], dict], suffix: str):
    digest = hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()[:12]
    path = folder / f"{name}-{digest}-{code_key(*sources)}{suffix}"
    if str(path) not in _IN_MEMORY:
        _IN_MEMORY[str(path)] = memoize(path, compute)[0]
    return _IN_MEMORY[str(path)]


def jsonable(value: Any) -> Any:
    """`value` with tuples as lists and numpy scalars as Python numbers (what JSON stores and gives back)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value.item() if hasattr(value, "item") else value
