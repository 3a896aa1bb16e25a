"""Files that a reader never sees half-written: write a temporary file beside the target, then rename it.

Used for every single-file output (downloaded data, rebuilt BOSS files, kernels, calibration results).
Whole-folder outputs (run cache entries, the tiny model) are renamed as folders in ``runs`` and ``model``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np


def write_atomically(path: Path, write: Callable[[str], None], suffix: str = ".part") -> None:
    """Call ``write(tmp)`` on a temporary file beside `path`, then rename it to `path`.

    On any failure (Ctrl-C included) the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_npz(path: Path, **arrays) -> None:
    """``numpy.savez`` to `path`, atomically (the temporary name ends in .npz so numpy keeps it)."""
    write_atomically(path, lambda tmp: np.savez(tmp, **arrays), suffix=".npz")


def load_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a cached .npz file; None when it is absent or unreadable. An unreadable file is
    deleted, so it is recomputed, never served."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except Exception:  # a truncated or foreign file, whatever numpy raises for it
        path.unlink(missing_ok=True)
        return None
