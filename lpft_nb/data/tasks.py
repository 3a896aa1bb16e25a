"""Datasets read from a local data folder, split by the paper's protocol, with seeded CPU-sized caps.

Layout of the data folder (``python -m lpft_nb data download`` fills it; ``files`` pins every file)::

    superglue/{CB,RTE}/{train,val}.jsonl            SuperGLUE v2 jsonl
    boss/SentimentAnalysis/<name>/{train,test}.tsv   BOSS Text<TAB>Label files
    sources/sst/trainDevTestTrees_PTB/trees/{train,dev}.txt   SST PTB trees: SST-2 is derived from them (``sst2``)

Protocol (paper §1.2; authors' code ``train_test_split(test_size=0.1, shuffle=False)``): the official
train file is split 9:1 with the *last* 10% as validation; the official validation file is the test set.
Amazon ``train.tsv`` is split the same way and ``test.tsv`` is the ID test; DynaSent, SemEval and SST-5
are OOD test sets for a model trained on Amazon. SST-2 (GLUE's, rebuilt from the trees by ``sst2``): the
train phrases (``sst2``) or the train sentences (``sst2_sentences``) split the same way; the test set is
GLUE's dev set (the paper's Table 7).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import DATASETS, EVAL_ONLY_DATASETS, resolve_data_dir
from . import sst2

SUPERGLUE = {
    "cb": ("CB", ("entailment", "contradiction", "neutral")),
    "rte": ("RTE", ("entailment", "not_entailment")),
}
BOSS_CLASSES = ("negative", "positive", "neutral")  # BOSS label ids 0, 1, 2
BOSS_DIR = Path("boss") / "SentimentAnalysis"
OOD_SETS = {"amazon": EVAL_ONLY_DATASETS}
SST2_TRAIN = {"sst2": "train", "sst2_sentences": "train_sentences"}  # dataset → its train split


def class_names(dataset: str) -> tuple[str, ...]:
    """Label names in label-id order."""
    if dataset in SUPERGLUE:
        return SUPERGLUE[dataset][1]
    if dataset in ("amazon", *EVAL_ONLY_DATASETS):
        return BOSS_CLASSES
    if dataset in SST2_TRAIN:
        return sst2.SST2_CLASSES
    raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")


WHERE_DATA_COMES_FROM = (
    "fetch a data folder with `python -m lpft_nb data download --to DIR` and point LPFT_DATA_DIR (or data_dir) "
    "at DIR; `python -m lpft_nb data check DIR` says what a folder lacks"
)


class DataError(ValueError):
    """A missing or malformed data file; the message names the file (and line) and where data comes from."""


@dataclass
class Split:
    """One split: texts (and second segments for pairs), integer labels, and where they came from."""

    name: str
    texts: list[str]
    labels: np.ndarray  # (n,) int64
    pairs: list[str] | None = None
    source: str = ""
    dropped_empty: int = 0

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, idx: np.ndarray) -> Split:
        idx = np.asarray(idx, dtype=np.int64)
        return Split(
            name=self.name,
            texts=[self.texts[i] for i in idx],
            labels=self.labels[idx],
            pairs=None if self.pairs is None else [self.pairs[i] for i in idx],
            source=self.source,
            dropped_empty=self.dropped_empty,
        )

    def class_counts(self, num_classes: int) -> list[int]:
        return np.bincount(self.labels, minlength=num_classes).tolist()


@dataclass
class TaskData:
    """All splits of one training task: train / val / test and OOD test sets keyed by name."""

    dataset: str
    class_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    ood: dict[str, Split] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def eval_splits(self) -> dict[str, Split]:
        """val, test and every OOD set, keyed by name (OOD keys are the set names)."""
        return {"val": self.val, "test": self.test, **self.ood}

    def summary(self) -> list[dict]:
        """One row per split: name, size, class counts actually used."""
        rows = []
        for key, split in {"train": self.train, **self.eval_splits()}.items():
            rows.append(
                {
                    "split": key,
                    "n": len(split),
                    **dict(zip(self.class_names, split.class_counts(self.num_classes))),
                }
            )
        return rows

    def fingerprint(self) -> str:
        """sha256 over the contents of the files read (part of the run cache key)."""
        h = hashlib.sha256()
        for path in sorted(self.files):
            h.update(path.name.encode())
            h.update(_once(_file_digest, path))
        return h.hexdigest()[:16]


# ---- per-process memo -------------------------------------------------------------------------
# A page asks for the same files once per run (dozens of times); each is read, parsed and hashed once per
# process while it is unchanged on disk (same size, modification time and inode).
_MEMO: dict[tuple, tuple[tuple, object]] = {}


def _once(read, path: Path, *args):
    """`read(path, *args)`, computed once per process while the file at `path` is unchanged."""
    st = _need(path).stat()
    stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
    key = (read.__qualname__, str(path), args)
    if key not in _MEMO or _MEMO[key][0] != stamp:
        _MEMO[key] = (stamp, read(path, *args))
    return _MEMO[key][1]


def _file_digest(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def _read_split(read, path: Path, *args) -> Split:
    """A fresh `Split` (its name may be changed) over the once-parsed, read-only rows of `path`."""
    split = _once(read, path, *args)
    split.labels.flags.writeable = False
    return dataclasses.replace(split)


# ---- readers ----------------------------------------------------------------------------------
def _need(path: Path) -> Path:
    if not path.parent.exists():
        raise DataError(f"data folder {path.parent} not found; {WHERE_DATA_COMES_FROM}")
    if not path.is_file():
        raise DataError(f"data file {path} not found; {WHERE_DATA_COMES_FROM}")
    if not os.access(path, os.R_OK):
        raise DataError(f"data file {path} cannot be read (permission denied)")
    return path


def read_text_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 file (ends kept); a byte that is not UTF-8 is an error naming file and line."""
    data = _need(path).read_bytes()
    try:
        return list(io.StringIO(data.decode("utf-8"), newline=""))  # split at \n, \r\n, \r only
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x})") from None


def iter_jsonl(path: Path, fields: tuple[str, ...] = ()):
    """Yield (line number, object) for each non-blank line; an error names the file and line."""
    for lineno, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object")
        for key in fields:
            if key not in row:
                raise DataError(f"{path}:{lineno}: missing field '{key}'")
        yield lineno, row


def read_superglue(path: Path, class_names: tuple[str, ...]) -> Split:
    """Read a SuperGLUE (premise, hypothesis, label) jsonl file; labels mapped in `class_names` order."""
    _need(path)
    label_id = {name: i for i, name in enumerate(class_names)}
    texts, pairs, labels = [], [], []
    for lineno, row in iter_jsonl(path, ("premise", "hypothesis", "label")):
        if row["label"] not in label_id:
            raise DataError(f"{path}:{lineno}: label {row['label']!r} not in {list(class_names)}")
        if not isinstance(row["premise"], str) or not isinstance(row["hypothesis"], str):
            raise DataError(f"{path}:{lineno}: premise and hypothesis must be strings")
        texts.append(row["premise"])
        pairs.append(row["hypothesis"])
        labels.append(label_id[row["label"]])
    if not texts:
        raise DataError(f"{path}: no examples")
    return Split(
        name=path.stem, texts=texts, pairs=pairs, labels=np.array(labels, dtype=np.int64), source=str(path)
    )


def read_boss_tsv(path: Path, num_classes: int = 3) -> Split:
    """Read a BOSS ``Text<TAB>Label`` file (header row, CSV quoting, newlines inside quotes).

    Rows with an empty text are dropped, as the authors' loader does (their count is kept in
    ``dropped_empty``); any other malformed row is an error naming the file and line.
    """
    _need(path)
    texts, labels, dropped = [], [], 0
    reader = csv.reader(
        io.StringIO("".join(read_text_lines(path)), newline=""), delimiter="\t", quotechar='"'
    )
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path}: empty file") from None
    if header != ["Text", "Label"]:
        raise DataError(f"{path}:1: header must be 'Text<TAB>Label', found {header!r}")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise DataError(f"{path}:{reader.line_num}: {err}") from None
        if len(row) != 2:
            raise DataError(f"{path}:{reader.line_num}: expected 2 tab-separated fields, found {len(row)}")
        text, raw_label = row
        try:
            label = int(raw_label)
        except ValueError:
            raise DataError(f"{path}:{reader.line_num}: label {raw_label!r} is not an integer") from None
        if not 0 <= label < num_classes:
            raise DataError(f"{path}:{reader.line_num}: label {label} outside 0..{num_classes - 1}")
        if text == "":
            dropped += 1
            continue
        texts.append(text)
        labels.append(label)
    if not texts:
        raise DataError(f"{path}: no examples")
    return Split(
        name=path.stem,
        texts=texts,
        labels=np.array(labels, dtype=np.int64),
        source=str(path),
        dropped_empty=dropped,
    )


def _sst2_train_rows(path: Path) -> dict[str, sst2.Rows]:
    return _parsed_trees(sst2.train_splits, path)


def _parsed_trees(build, path: Path):
    try:
        return build(read_text_lines(path), str(path))
    except sst2.TreeError as err:
        raise DataError(str(err)) from None


def read_sst2(path: Path, split: str) -> Split:
    """One SST-2 split derived from a PTB tree file: ``train`` or ``train_sentences`` from the train trees
    (parsed once per process for both), ``test`` from the dev trees."""
    if split == "test":
        rows = _parsed_trees(sst2.test_split, path)
    else:
        rows = _once(_sst2_train_rows, path)[split]
    return Split(
        name=split,
        texts=[text for text, _ in rows],
        labels=np.array([label for _, label in rows], dtype=np.int64),
        source=str(path),
    )


# ---- protocol ---------------------------------------------------------------------------------
def split_train_val(split: Split) -> tuple[Split, Split]:
    """9:1 split with the last 10% as validation (sklearn ``train_test_split(test_size=0.1, shuffle=False)``)."""
    n = len(split)
    n_val = math.ceil(0.1 * n)
    train = split.take(np.arange(n - n_val))
    val = split.take(np.arange(n - n_val, n))
    train.name, val.name = "train", "val"
    return train, val


def subsample(split: Split, max_n: int | None, max_per_class: int | None, seed: int) -> Split:
    """Seeded cap per class, then a cap on the total; the kept rows stay in file order."""
    rng = np.random.default_rng(seed)
    idx = np.arange(len(split))
    if max_per_class is not None:
        keep = []
        for c in np.unique(split.labels):
            members = idx[split.labels == c]
            if len(members) > max_per_class:
                members = rng.choice(members, max_per_class, replace=False)
            keep.append(members)
        idx = np.sort(np.concatenate(keep))
    if max_n is not None and len(idx) > max_n:
        kept = rng.choice(idx, max_n, replace=False)
        idx = np.sort(_keep_every_class(kept, idx, split.labels, rng))
    return split.take(idx)


def _keep_every_class(kept: np.ndarray, pool: np.ndarray, labels: np.ndarray, rng) -> np.ndarray:
    """`kept` with one example of each class of `pool` that it lacks swapped in for an example of its
    most frequent class (a capped draw can miss a rare class: CB's 'neutral'). Unchanged when the draw has
    every class; needs as many kept examples as classes."""
    kept = kept.copy()
    for c in np.setdiff1d(np.unique(labels[pool]), np.unique(labels[kept])):
        if len(kept) < len(np.unique(labels[pool])):
            break  # too few examples to hold every class: the caller names the missing class
        counts = np.bincount(labels[kept])
        donor = np.flatnonzero(labels[kept] == counts.argmax())
        kept[rng.choice(donor)] = rng.choice(pool[labels[pool] == c])
    return kept


def load_task(
    dataset: str,
    data_dir: str | Path | None = None,
    max_train: int | None = None,
    max_eval: int | None = None,
    max_per_class: int | None = None,
    subset_seed: int = 0,
) -> TaskData:
    """Load `dataset` (one of ``config.DATASETS``) with the paper's splits and the given caps.

    Caps: `max_per_class` applies to train and val (BOSS's own balancing mechanism); `max_train` to
    train; `max_eval` to val, test and each OOD set. Subsets depend on `subset_seed` only, so every
    method and training seed sees the same examples.
    """
    root = resolve_data_dir(str(data_dir) if data_dir else None)
    if not root.is_dir():
        raise DataError(f"data folder {root} not found; {WHERE_DATA_COMES_FROM}")
    files: list[Path] = []
    if dataset in SUPERGLUE:
        folder, class_names = SUPERGLUE[dataset]
        full_train = _read_split(read_superglue, root / "superglue" / folder / "train.jsonl", class_names)
        test = _read_split(read_superglue, root / "superglue" / folder / "val.jsonl", class_names)
        files += [Path(full_train.source), Path(test.source)]
        ood: dict[str, Split] = {}
    elif dataset == "amazon":
        class_names = BOSS_CLASSES
        full_train = _read_split(read_boss_tsv, root / BOSS_DIR / "amazon" / "train.tsv")
        test = _read_split(read_boss_tsv, root / BOSS_DIR / "amazon" / "test.tsv")
        files += [Path(full_train.source), Path(test.source)]
        ood = {}
        for name in OOD_SETS["amazon"]:
            ood[name] = _read_split(read_boss_tsv, root / BOSS_DIR / name / "test.tsv")
            files.append(Path(ood[name].source))
    elif dataset in SST2_TRAIN:
        class_names = sst2.SST2_CLASSES
        full_train = _read_split(read_sst2, root / sst2.SOURCES["train"], SST2_TRAIN[dataset])
        test = _read_split(read_sst2, root / sst2.SOURCES["dev"], "test")
        files += [Path(full_train.source), Path(test.source)]
        ood = {}
    else:
        raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    train, val = split_train_val(full_train)
    test.name = "test"
    train = subsample(train, max_train, max_per_class, subset_seed)
    val = subsample(val, max_eval, max_per_class, subset_seed + 1)
    test = subsample(test, max_eval, None, subset_seed + 2)
    ood = {name: subsample(s, max_eval, None, subset_seed + 3 + i) for i, (name, s) in enumerate(ood.items())}
    for name, s in ood.items():
        s.name = name
    return TaskData(
        dataset=dataset, class_names=class_names, train=train, val=val, test=test, ood=ood, files=files
    )
