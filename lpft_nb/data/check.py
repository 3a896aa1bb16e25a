"""Validate a data folder: every file present, rows, label sets and class counts, sha256 against the pins.

    python -m lpft_nb data check [DIR]

Prints one table (one row per file) and, for each problem, what is wrong and the command that fixes it.
The raw sources (``sources/``) are needed to rebuild the BOSS files and to load SST-2, which the loader
derives from the SST PTB trees: the ``sst2/`` rows show the splits so derived (rows, classes, and the sha256
of their GLUE-form file against its pin; a file ``data build-sst2`` wrote must match it too). A folder
without a ``sources`` folder is complete for the pages that read no SST-2, and the table says so.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import sst2
from .files import BOOK_FILES, PINNED, RAW_FILES, SST2_SPLITS, Expected, sha256_of
from .tasks import BOSS_CLASSES, SUPERGLUE, DataError, iter_jsonl, read_boss_tsv, read_sst2, read_superglue


@dataclass
class FileCheck:
    """One row of the table: what was found in one file and the problem, if any ('' = ok)."""

    path: str
    rows: str = "–"
    classes: str = "–"
    sha256: str = "–"
    problem: str = ""
    fix: str = ""


def _fix_command(path: str, folder: Path) -> str:
    if path.startswith("boss/"):
        return f"python -m lpft_nb data build-boss --to {folder}"
    if path.startswith("sst2/"):
        return f"python -m lpft_nb data build-sst2 --to {folder}"
    return f"python -m lpft_nb data download --to {folder}"


def _superglue_classes(path: str) -> tuple[str, ...]:
    task = path.split("/")[1].lower()
    return SUPERGLUE[task][1]


def _count_unlabelled_jsonl(path: Path) -> int:
    return sum(1 for _ in iter_jsonl(path, ("premise", "hypothesis")))


def _read_counts(path: Path, expected: Expected) -> tuple[int, Counter, int]:
    """(rows, class counts of the rows the pages load, rows with an empty text) of one book file."""
    if expected.path.startswith("superglue/"):
        if expected.classes is None:
            return _count_unlabelled_jsonl(path), Counter(), 0
        names = _superglue_classes(expected.path)
        split = read_superglue(path, names)
        return len(split), Counter(names[i] for i in split.labels), 0
    split = read_boss_tsv(path)
    return (
        len(split) + split.dropped_empty,
        Counter(BOSS_CLASSES[i] for i in split.labels),
        split.dropped_empty,
    )


def _format_classes(counts: Counter, order) -> str:
    return " · ".join(f"{name} {counts.get(name, 0):,}" for name in order)


def check_book_file(folder: Path, expected: Expected) -> FileCheck:
    row = FileCheck(expected.path)
    path = folder / expected.path
    fix = _fix_command(expected.path, folder)
    if not path.is_file():
        row.problem, row.fix = "missing", fix
        return row
    pinned = PINNED.get(expected.path)
    if pinned is not None:
        row.sha256 = "= pinned" if sha256_of(path) == pinned.sha256 else "differs"
    try:
        rows, counts, empty = _read_counts(path, expected)
    except DataError as err:
        row.problem, row.fix = f"malformed: {err}", fix
        return row
    return _judge(row, expected, rows, counts, empty, fix)


def _judge(row: FileCheck, expected: Expected, rows: int, counts: Counter, empty: int, fix: str) -> FileCheck:
    """Fill `row` with what was found and every way it differs from `expected` (and its pin)."""
    row.rows = f"{rows:,}" + (
        f" ({empty} empty text{'s' if empty > 1 else ''}, skipped on load)" if empty else ""
    )
    if expected.classes is not None:
        row.classes = _format_classes(counts, expected.classes)
    problems = []
    if rows != expected.rows:
        problems.append(f"{rows:,} rows, expected {expected.rows:,}")
    if expected.classes is not None:
        unknown = sorted(set(counts) - set(expected.classes))
        if unknown:
            problems.append(f"labels {unknown} outside {list(expected.classes)}")
        elif dict(counts) != {k: v for k, v in expected.classes.items() if v}:
            problems.append(
                f"class counts differ from the expected {_format_classes(Counter(expected.classes), expected.classes)}"
            )
    if row.sha256 == "differs":
        problems.append("contents differ from the pinned file")
    if problems:
        row.problem, row.fix = "; ".join(problems), fix
    return row


_SST2_SPLIT = {name: split for split, name in sst2.SPLIT_FILES.items()}  # file name → split


def check_sst2_split(folder: Path, expected: Expected) -> FileCheck:
    """One SST-2 split as the loader derives it from the trees in `folder`, judged like a book file."""
    row = FileCheck(expected.path)
    split = _SST2_SPLIT[Path(expected.path).name]
    trees = folder / sst2.SOURCES["dev" if split == "test" else "train"]
    if not trees.is_file():
        row.problem, row.fix = f"{trees.relative_to(folder)} missing", _fix_command(str(trees), folder)
        return row
    try:
        data = read_sst2(trees, split)
    except DataError as err:
        row.problem, row.fix = f"malformed: {err}", _fix_command(str(trees), folder)
        return row
    pinned = PINNED[expected.path].sha256
    built = folder / expected.path
    derived = hashlib.sha256(sst2.glue_tsv(list(zip(data.texts, data.labels.tolist())))).hexdigest()
    same = derived == pinned and (not built.is_file() or sha256_of(built) == pinned)
    row.sha256 = "= pinned" if same else "differs"
    counts = Counter(sst2.SST2_CLASSES[i] for i in data.labels)
    return _judge(row, expected, len(data), counts, 0, _fix_command(expected.path, folder))


def check_raw_file(folder: Path, path: str) -> FileCheck:
    row = FileCheck(path)
    target = folder / path
    if not target.is_file():
        row.problem, row.fix = "missing", _fix_command(path, folder)
        return row
    row.rows = f"{target.stat().st_size:,} B"
    row.sha256 = "= pinned" if sha256_of(target) == PINNED[path].sha256 else "differs"
    if row.sha256 == "differs":
        row.problem, row.fix = "contents differ from the pinned file", _fix_command(path, folder)
    return row


def _unreadable_as_problem(check, folder: Path, path: str, *args) -> FileCheck:
    """`check(folder, *args)`, with a file the system will not let us read as a problem row."""
    try:
        return check(folder, *args)
    except OSError as err:
        return FileCheck(path, problem=f"cannot be read ({err.strerror})", fix=f"chmod u+r {folder / path}")


def check_folder(folder: Path) -> tuple[list[FileCheck], list[str]]:
    """Rows of the table and notes. The folder passes when no row has a problem."""
    if not folder.is_dir():
        raise DataError(
            f"data folder {folder} not found; create one with `python -m lpft_nb data download --to {folder}`"
        )
    rows = [_unreadable_as_problem(check_book_file, folder, e.path, e) for e in BOOK_FILES]
    notes = []
    raw_sources = [f.path for f in RAW_FILES if f.path.startswith("sources/")]
    if (folder / "sources").is_dir():
        rows += [_unreadable_as_problem(check_raw_file, folder, p, p) for p in raw_sources]
        rows += [_unreadable_as_problem(check_sst2_split, folder, e.path, e) for e in SST2_SPLITS]
    else:
        notes.append(
            f"no sources/ folder: the book does not need it unless a page trains on sst2; `data build-boss` "
            f"does, and the sst2 datasets ({len(raw_sources)} raw files, fetched by `data download`)"
        )
    return rows, notes


def format_report(folder: Path, rows: list[FileCheck], notes: list[str]) -> str:
    """The table, then the notes, then one line per problem with its fix."""
    header = ("file", "rows", "classes (rows the pages load)", "sha256", "status")
    cells = [(r.path, r.rows, r.classes, r.sha256, "ok" if not r.problem else "PROBLEM") for r in rows]
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header))]
    lines = [
        f"data folder: {folder}",
        "  ".join(h.ljust(w) for h, w in zip(header, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(cell, widths)).rstrip() for cell in cells]
    lines += [f"note: {n}" for n in notes]
    problems = [r for r in rows if r.problem]
    lines += [f"problem: {r.path}: {r.problem} — fix: {r.fix}" for r in problems]
    lines.append(f"{len(rows)} files checked, {len(problems)} problem(s)")
    return "\n".join(lines)
