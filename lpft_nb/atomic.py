"""Files that a reader never sees half-written: write a temporary file beside the target, then rename it.

Used for every single-file output (downloaded data, rebuilt BOSS files, memoised kernels and statistics).
Whole-folder outputs (run cache entries, the tiny model) are renamed as folders in ``runs.run`` and
``model.classifier``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


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
