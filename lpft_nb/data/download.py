"""Fetch the raw data files into a data folder with pooch: progress bars, retries, sha256 per file.

    python -m lpft_nb data download [--to DIR] [--mirror URL]

Official mode downloads each archive of ``REMOTES`` into ``DIR/.downloads`` and takes out the files the
book needs; every file is checked against its pinned sha256 (``files``) before it is moved into
place, so a failed, interrupted or corrupt download never leaves a half-written file at a data path.
The BOSS files (``boss``) and the SST-2 files (``sst2``) are then built from the raw sources.
Mirror mode fetches the files themselves from ``URL/<path in the data folder>``: any verified data
folder served over HTTP (``python -m http.server``) is a mirror. Files already present and verified are
skipped. ``ensure_book_data`` is what ``python -m lpft_nb book`` runs first.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

from ..atomic import write_atomically
from ..config import default_data_dir, resolve_data_dir
from .boss import build_boss
from .files import (
    BOOK_FILES,
    BOSS_FILES,
    PINNED,
    RAW_FILES,
    REMOTES,
    SST2_FILES,
    DataFile,
    Remote,
    matches_pin,
    remote_of,
    sha256_of,
)
from .sst2 import SOURCES as SST2_SOURCES
from .sst2 import tree_paths, write_sst2
from .tasks import DataError

DOWNLOADS = ".downloads"  # archives, inside the data folder, until their files are taken out
MIRROR_ENV = "LPFT_DATA_MIRROR"
TIMEOUT_S = 60


class DownloadError(DataError):
    """A download that failed or did not verify; the message names the file and what to do."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _fetch(
    base_url: str,
    folder: Path,
    name: str,
    known_sha256: str | None,
    url: str | None,
    retries: int,
    progress: bool,
) -> Path:
    """pooch: download `url` (default ``base_url + name``) to ``folder/name`` if absent or not matching."""
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")
    pup = pooch.create(
        path=folder,
        base_url=base_url,
        retry_if_failed=retries,
        registry={name: f"sha256:{known_sha256}" if known_sha256 else None},
        urls={name: url} if url else None,
    )
    source = url or base_url + name
    try:
        return Path(
            pup.fetch(
                name,
                progressbar=progress,
                downloader=pooch.HTTPDownloader(progressbar=progress, timeout=TIMEOUT_S),
            )
        )
    except ValueError as err:  # pooch's hash mismatch
        raise DownloadError(
            f"{name}: the file downloaded from {source} does not match its pinned sha256 "
            f"({_first_line(err)}); nothing was written"
        ) from None
    except requests.RequestException as err:
        raise DownloadError(
            f"{name}: download from {source} failed after {retries + 1} attempt(s): "
            f"{type(err).__name__}: {_first_line(err)}; nothing was written"
        ) from None


def _place(data: bytes, target: Path, pinned: DataFile, origin: str) -> None:
    """Check `data` against the pin, then write it to `target` atomically (temp file + rename)."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != pinned.sha256:
        raise DownloadError(
            f"{pinned.path}: taken from {origin}, its sha256 {digest[:12]}… differs from the pinned "
            f"{pinned.sha256[:12]}…; nothing was written (the upstream file changed, or the "
            "download is corrupt: run again, or use --mirror)"
        )
    write_atomically(target, lambda tmp: Path(tmp).write_bytes(data))


def _zip_member(archive: zipfile.ZipFile, suffix: str, origin: str) -> str:
    names = [n for n in archive.namelist() if not n.startswith("__MACOSX") and not n.endswith("/")]
    found = [n for n in names if n == suffix or n.endswith("/" + suffix)]
    if len(found) != 1:
        raise DownloadError(f"{origin}: expected one member ending in {suffix!r}, found {len(found)}")
    return found[0]


def _fetch_remote(remote: Remote, files: list[DataFile], to: Path, retries: int, progress: bool) -> None:
    """Download one official source and place the given files it yields, each verified."""
    if remote.kind == "file":
        for f in files:
            target = to / f.path
            _fetch("", target.parent, target.name, f.sha256, remote.url, retries, progress)
        return
    archive = _fetch("", to / DOWNLOADS, remote.filename, remote.sha256, remote.url, retries, progress)
    wanted = {f.path for f in files}
    try:
        if remote.kind == "zip":
            try:
                with zipfile.ZipFile(archive) as zf:
                    for suffix, path in remote.members:
                        if path in wanted:
                            member = _zip_member(zf, suffix, remote.url)
                            _place(zf.read(member), to / path, PINNED[path], f"{remote.url} ({member})")
            except zipfile.BadZipFile as err:
                raise DownloadError(
                    f"{remote.url}: not a valid zip archive ({err}); removed, run again"
                ) from None
        elif remote.kind == "gzip":
            ((_, path),) = remote.members
            try:
                data = gzip.decompress(archive.read_bytes())
            except (OSError, EOFError) as err:
                raise DownloadError(
                    f"{remote.url}: not a valid gzip file ({err}); removed, run again"
                ) from None
            _place(data, to / path, PINNED[path], remote.url)
        else:
            raise ValueError(f"unknown remote kind {remote.kind!r}")
    finally:
        archive.unlink(missing_ok=True)  # its files are placed (or it failed and must be fetched afresh)


def download(
    to: Path,
    mirror: str | None = None,
    retries: int = 2,
    progress: bool = True,
    files: Iterable[DataFile] = RAW_FILES,
) -> list[tuple[str, str]]:
    """Fetch every file of `files` that is absent or unverified into the data folder `to`.

    Returns (path, what happened) per file: ``present (sha256 ✓)`` or ``downloaded (sha256 ✓)``.
    """
    if retries < 0:
        raise DownloadError(f"--retries must be ≥ 0, got {retries}")
    to.mkdir(parents=True, exist_ok=True)
    files = list(files)
    needed = [f for f in files if not matches_pin(to / f.path, f)]
    if mirror:
        base = mirror.rstrip("/") + "/"
        for f in needed:
            _fetch(base, to, f.path, f.sha256, None, retries, progress)
    else:
        for remote in REMOTES:
            group = [f for f in needed if remote_of(f.path) is remote]
            if group:
                _fetch_remote(remote, group, to, retries, progress)
        downloads = to / DOWNLOADS
        if downloads.is_dir() and not any(downloads.iterdir()):
            downloads.rmdir()
    fetched = {f.path for f in needed}
    return [(f.path, "downloaded (sha256 ✓)" if f.path in fetched else "present (sha256 ✓)") for f in files]


def _verified(rows: dict[str, int], pinned: tuple[DataFile, ...], to: Path) -> list[tuple[str, int, str]]:
    """(path, rows, verdict) per built file of `pinned`: whether it matches its pinned sha256."""
    out = []
    for f in pinned:
        verdict = "= pinned sha256" if sha256_of(to / f.path) == f.sha256 else "differs from the pinned build"
        out.append((f.path, rows[f.path], verdict))
    return out


def build_and_verify_boss(sources: Path, to: Path) -> list[tuple[str, int, str]]:
    """``build_boss``, then compare each output with its pinned sha256: (path, rows, verdict) per file."""
    return _verified(build_boss(sources, to), BOSS_FILES, to)


def build_and_verify_sst2(sources: Path, to: Path) -> list[tuple[str, int, str]]:
    """``sst2.write_sst2`` (the trees must be present), then compare each output with its pinned sha256."""
    missing = [path for path in tree_paths(sources).values() if not path.is_file()]
    if missing:
        raise DataError(
            f"SST PTB tree file(s) missing: {', '.join(map(str, missing))}; "
            "fetch them with `python -m lpft_nb data download`"
        )
    return _verified(write_sst2(sources, to), SST2_FILES, to)


def build_and_verify(sources: Path, to: Path) -> list[tuple[str, int, str]]:
    """The build step of ``data download`` and of the book's data step: the BOSS files, then SST-2's."""
    return build_and_verify_boss(sources, to) + build_and_verify_sst2(sources, to)


def network_reachable(url: str, timeout_s: float = 5.0) -> tuple[bool, str]:
    """One HEAD request to `url`: (reachable, reason if not)."""
    import requests

    try:
        requests.head(url, timeout=timeout_s, allow_redirects=True)
        return True, ""
    except requests.RequestException as err:
        return False, f"{type(err).__name__}"


def ensure_book_data(progress: bool = True) -> Path:
    """The data folder the book reads, fetched and built first if needed.

    ``$LPFT_DATA_DIR`` set: that folder, which must hold the pages' files (no network used). Unset: the
    default folder (``default_data_dir()``); if its files are not all present and verified, they are downloaded
    (from ``$LPFT_DATA_MIRROR`` if set) and the BOSS files built, when the network is reachable; offline,
    a one-line ``DataError`` says what to do.
    """
    needed = [e.path for e in BOOK_FILES if e.read_by_pages] + [str(p) for p in SST2_SOURCES.values()]
    if os.environ.get("LPFT_DATA_DIR"):
        folder = resolve_data_dir(None)
        missing = [p for p in needed if not (folder / p).is_file()]
        if missing:
            raise DataError(
                f"LPFT_DATA_DIR={folder} lacks {missing[0]}"
                + (f" and {len(missing) - 1} more file(s)" if len(missing) > 1 else "")
                + f"; run `python -m lpft_nb data download --to {folder}`"
                " or unset LPFT_DATA_DIR to fetch the data into the default folder"
            )
        return folder
    folder = default_data_dir()
    if all(matches_pin(folder / p, PINNED[p]) for p in needed):
        return folder
    mirror = os.environ.get(MIRROR_ENV)
    probe = mirror or REMOTES[0].url
    ok, reason = network_reachable(probe)
    if not ok:
        raise DataError(
            f"no data folder: LPFT_DATA_DIR is not set, {folder} is incomplete, and {probe} cannot be "
            f"reached ({reason}); set LPFT_DATA_DIR to a prepared data folder, or run `python -m lpft_nb "
            f"data download` where the network is reachable (--mirror URL for a local mirror)"
        )
    print(
        f"data: fetching into {folder}"
        + (f" from the mirror {mirror}" if mirror else " from the official hosts")
    )
    download(folder, mirror=mirror, progress=progress)
    differing = [
        path for path, _, verdict in build_and_verify(folder / "sources", folder) if "differs" in verdict
    ]
    if differing:
        module = "sst2" if differing[0].startswith("sst2/") else "boss"
        raise DataError(
            f"{folder / differing[0]}: built from verified sources but differs from the pinned build; "
            f"this is a bug in lpft_nb.data.{module}"
        )
    return folder


__all__ = [
    "DownloadError",
    "build_and_verify",
    "build_and_verify_boss",
    "build_and_verify_sst2",
    "download",
    "ensure_book_data",
    "network_reachable",
]
