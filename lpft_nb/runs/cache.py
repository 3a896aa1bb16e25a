"""Memoisation on disk, keyed by the code that computes a value.

Two functions serve every cache of the package:

- `code_key(*sources)`: a hash of the source text of modules, functions or classes. Each cached value
  puts the `code_key` of the code that computes it into its key or file name, so an edit to that code
  recomputes it, and an edit elsewhere (plots, pages, claim rules) does not.
- `memoize(path, compute)`: the value stored at `path` (``.npz`` arrays or ``.json``), else ``compute()``
  written there atomically. A file that does not load, lacks a required key or fails the caller's schema
  check (types, shapes), is recomputed, never served.

Training runs are whole folders (metrics, history, arrays) and keep their own entry format in
`runs.run`, keyed by `code_key` as well.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomically
from ..config import ConfigError


def source_text(obj: Any) -> str:
    """The source of a module (its file; given as the module or as its dotted name, which is then read
    without importing it) or of a function or class (`inspect.getsource`)."""
    if isinstance(obj, str):
        spec = importlib.util.find_spec(obj)
        if spec is None or not spec.origin:
            raise ModuleNotFoundError(f"no module named {obj!r}")
        return Path(spec.origin).read_text(encoding="utf-8")
    if isinstance(obj, types.ModuleType):
        return Path(obj.__file__).read_text(encoding="utf-8")
    return inspect.getsource(obj)


def code_key(*sources: Any) -> str:
    """16 hex digits of sha256 over the qualified names and source texts of `sources` (modules, or their
    dotted names, functions, classes), in the order given; a module and its name give the same key."""
    h = hashlib.sha256()
    for obj in sources:
        if isinstance(obj, str):
            h.update(f".{obj}\n".encode())
        else:
            name = getattr(obj, "__qualname__", None) or obj.__name__
            h.update(f"{getattr(obj, '__module__', '') or ''}.{name}\n".encode())
        h.update(source_text(obj).encode())
    return h.hexdigest()[:16]


def ensure_writable(folder: Path) -> Path:
    """Create `folder` if needed and check that files can be written in it, before any compute is spent
    on a result that could not be stored (one-line ConfigError otherwise)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(
            f"cache folder {folder} is a file or lies under one; set cache_dir or LPFT_CACHE_DIR"
        ) from None
    except OSError as err:
        raise ConfigError(
            f"cache folder {folder} cannot be created ({err.strerror}); set cache_dir or LPFT_CACHE_DIR"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"cache folder {folder} is not writable; set cache_dir or LPFT_CACHE_DIR")
    return folder


def _load(path: Path) -> dict:
    if path.suffix == ".npz":
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    return json.loads(path.read_text(encoding="utf-8"))


def _save(path: Path, value: dict) -> None:
    if path.suffix == ".npz":  # the temporary name ends in .npz so numpy keeps it
        write_atomically(path, lambda tmp: np.savez(tmp, **value), suffix=".npz")
    else:
        text = json.dumps(value)
        write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def memoize(
    path: Path,
    compute: Callable[[], dict],
    required: Iterable[str] = (),
    refresh: bool = False,
    check: Callable[[dict], str | None] | None = None,
) -> tuple[dict, bool]:
    """(value, cache_hit): the dict stored at `path` (``.npz`` or ``.json`` by suffix), else
    ``compute()`` stored there atomically. A file that does not load, lacks a `required` key, or for
    which `check(value)` names a problem (a wrong type or shape) is recomputed and replaced; `refresh`
    recomputes regardless. The stored file is replaced only once the new value is written."""
    path = Path(path)
    ensure_writable(path.parent)
    if path.is_file() and not refresh:
        try:
            value = _load(path)
            if isinstance(value, dict) and set(required) <= set(value) and not (check and check(value)):
                return value, True
        except Exception:  # a truncated or foreign file, whatever numpy or json (or `check`) raise for it
            pass
    value = compute()
    _save(path, value)
    return value, False
