"""Rebuild the BOSS SentimentAnalysis ``Text<TAB>Label`` files from raw sources, by BOSS's own procedure.

Follows ``lifan-yuan/OOD_NLP:src/dataset_processing/SentimentAnalysis/{dynasent,semeval,sst,amazon}.py``
: text cleaned with tab → space and runs of spaces collapsed; labels
negative = 0, positive = 1, neutral = 2; BOSS's seeded shuffles (Python ``random.seed(0)`` as-is, HF
``Dataset.shuffle(0)`` as ``numpy.random.default_rng(0).permutation``); written by pandas ``to_csv`` as BOSS's
``save_data`` does. Run on the pinned sources it reproduces the pinned BOSS files byte for byte (a test checks it).

Raw inputs, relative to the sources folder, are listed in ``SOURCES``; the outputs and their pinned sha256
in ``files.BOSS_FILES``.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_atomically
from .tasks import BOSS_DIR, DataError

LABELS = {"negative": 0, "positive": 1, "neutral": 2}
AMAZON_STARS = {1: 0, 2: -1, 3: 2, 4: -1, 5: 1}  # BOSS: 1★ negative, 3★ neutral, 5★ positive, 2★/4★ dropped
AMAZON_PER_FILE = 20_000  # BOSS's subset_max_length
AMAZON_PER_CLASS = 10_000  # BOSS's cap on training rows per class

SEMEVAL_DIR = Path("semeval2017/2017_English_final/GOLD/Subtask_A")
SST_DIR = Path("sst/stanfordSentimentTreebank")
SST_TREES = Path("sst/trainDevTestTrees_PTB/trees/test.txt")
DYNASENT_DIR = Path("dynasent-v1.1")
# Amazon files in BOSS's processing order: the sorted names BOSS gives them (``X_5.json`` → ``x.json``).
# The 2014 Musical Instruments file stands in for the 2018 category of the same name (README §4d).
AMAZON_FILES = (
    ("all_beauty", Path("amazon_reviews_2018_5core/All_Beauty_5.json")),
    ("amazon_fashion", Path("amazon_reviews_2018_5core/AMAZON_FASHION_5.json")),
    ("appliances", Path("amazon_reviews_2018_5core/Appliances_5.json")),
    ("gift_cards", Path("amazon_reviews_2018_5core/Gift_Cards_5.json")),
    ("magazine_subscriptions", Path("amazon_reviews_2018_5core/Magazine_Subscriptions_5.json")),
    ("musical_instruments", Path("amazon_reviews_2014_5core/reviews_Musical_Instruments_5.json.gz")),
)

SOURCES = {
    "dynasent": (
        DYNASENT_DIR / "dynasent-v1.1-round01-yelp-test.jsonl",
        DYNASENT_DIR / "dynasent-v1.1-round02-dynabench-test.jsonl",
    ),
    "semeval": (SEMEVAL_DIR / "twitter-2016train-A.txt", SEMEVAL_DIR / "twitter-2016test-A.txt"),
    "sst5": (SST_DIR / "datasetSentences.txt", SST_DIR / "datasetSplit.txt", SST_TREES),
    "amazon": tuple(path for _, path in AMAZON_FILES),
}

Rows = list[tuple[str, int]]


def clean_text(text: str) -> str:
    """BOSS's ``text_process``: tabs → spaces, then runs of spaces → one space."""
    return re.sub(" +", " ", re.sub("\t", " ", text))


def hf_shuffle(rows: list, seed: int = 0) -> list:
    """HF ``Dataset.shuffle(seed)``: the rows in ``numpy.random.default_rng(seed).permutation(n)`` order."""
    return [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]


def _open_text(path: Path):
    """Text mode with universal newlines, as BOSS's ``open(path, 'r')``; ``.gz`` files decompressed."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def _label(name: str, path: Path, lineno: int) -> int:
    try:
        return LABELS[name.strip()]
    except KeyError:
        raise DataError(
            f"{path}:{lineno}: unknown label {name.strip()!r}; expected one of {sorted(LABELS)}"
        ) from None


def _jsonl(path: Path) -> list[dict]:
    rows = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
    return rows


def build_dynasent(src: Path) -> dict[str, Rows]:
    """DynaSent v1.1 R1 + R2 test, concatenated, then HF-shuffled with seed 0."""
    rows: Rows = []
    for rel in SOURCES["dynasent"]:
        for lineno, row in enumerate(_jsonl(src / rel), 1):
            rows.append((clean_text(row["sentence"]), _label(row["gold_label"], src / rel, lineno)))
    return {"test": hf_shuffle(rows)}


def _semeval_file(path: Path) -> Rows:
    """BOSS's ``read_data``: lines that split into exactly 3 tab-separated fields (others are skipped)."""
    rows: Rows = []
    with _open_text(path) as f:
        for lineno, line in enumerate(f.readlines(), 1):
            fields = line.strip().split("\t")
            if len(fields) != 3:
                continue
            rows.append((clean_text(fields[2].strip()), _label(fields[1], path, lineno)))
    return rows


def build_semeval(src: Path) -> dict[str, Rows]:
    """SemEval-2017 4A: ``random.seed(0)``, shuffle the 2016 train list (for the RNG state), then the test list."""
    train, test = (_semeval_file(src / rel) for rel in SOURCES["semeval"])
    rng = random.Random(0)
    rng.shuffle(train)
    rng.shuffle(test)
    return {"test": test}


SST_ROOT_LABELS = {0: 0, 4: 1, 2: 2}  # PTB root class → BOSS label; classes 1 and 3 are dropped


def build_sst5(src: Path) -> dict[str, Rows]:
    """SST test split (``splitset_label == 2``) with PTB root labels, HF-shuffled with seed 0, then filtered.

    The text is ``datasetSentences.txt`` with its latin-1 mojibake repaired (README §4c).
    """
    sentences_path, split_path, trees_path = (src / rel for rel in SOURCES["sst5"])
    split = {}
    with _open_text(split_path) as f:
        next(f)
        for lineno, line in enumerate(f, 2):
            fields = line.strip().split(",")
            if len(fields) != 2:
                raise DataError(f"{split_path}:{lineno}: expected 'sentence_index,splitset_label'")
            split[fields[0]] = fields[1]
    texts = []
    with _open_text(sentences_path) as f:
        next(f)
        for lineno, line in enumerate(f, 2):
            index, _, sentence = line.rstrip("\n").partition("\t")
            if index not in split:
                raise DataError(f"{sentences_path}:{lineno}: sentence {index} is missing from {split_path}")
            if split[index] == "2":
                texts.append(_repair_mojibake(sentence))
    with _open_text(trees_path) as f:
        roots = [int(line[1]) for line in f if line.strip()]
    if len(roots) != len(texts):
        raise DataError(
            f"{trees_path}: {len(roots)} trees for {len(texts)} test sentences in {sentences_path}"
        )
    rows = [(clean_text(text), SST_ROOT_LABELS.get(root, -1)) for text, root in zip(texts, roots)]
    return {"test": [row for row in hf_shuffle(rows) if row[1] != -1]}


def _repair_mojibake(text: str) -> str:
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def build_amazon(src: Path) -> dict[str, Rows]:
    """BOSS's amazon.py on the files present: per-file shuffle and 20k cap, pool shuffle, 90/10, ≤10k per class."""
    rng = random.Random(0)
    pool = []
    for _, rel in AMAZON_FILES:
        with _open_text(src / rel) as f:
            lines = f.readlines()
        rng.shuffle(lines)
        reviews = []
        for line in lines[: 2 * AMAZON_PER_FILE]:
            if "reviewText" in line:
                try:
                    reviews.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise DataError(f"{src / rel}: a review line is not valid JSON ({err.msg})") from None
        pool.extend((r["reviewText"], int(r["overall"])) for r in reviews[:AMAZON_PER_FILE])
    labelled = [(clean_text(text), AMAZON_STARS[stars]) for text, stars in pool]
    labelled = [row for row in labelled if row[1] != -1]
    rng.shuffle(labelled)
    train_len = int(0.9 * len(labelled))
    counts = {0: 0, 1: 0, 2: 0}
    train = []
    for text, label in labelled[:train_len]:
        if counts[label] < AMAZON_PER_CLASS:
            train.append((text, label))
            counts[label] += 1
    return {"train": train, "test": labelled[train_len:]}


BUILDERS: dict[str, Callable[[Path], dict[str, Rows]]] = {
    "dynasent": build_dynasent,
    "semeval": build_semeval,
    "sst5": build_sst5,
    "amazon": build_amazon,
}


def write_tsv(rows: Rows, path: Path) -> None:
    """BOSS's ``save_data``: pandas ``to_csv(sep='\\t', index=False, header=['Text', 'Label'])``, atomically."""
    frame = pd.DataFrame(rows, columns=["Text", "Label"])
    write_atomically(path, lambda tmp: frame.to_csv(tmp, sep="\t", index=False, header=["Text", "Label"]))


def build_boss(sources: Path, to: Path, names: tuple[str, ...] = tuple(BUILDERS)) -> dict[str, int]:
    """Build the BOSS files of ``names`` from ``sources`` into ``to`` (a data folder); returns rows per file.

    Every raw input is checked for presence before anything is built.
    """
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise DataError(f"unknown BOSS set(s) {unknown}; valid: {list(BUILDERS)}")
    missing = [sources / rel for name in names for rel in SOURCES[name] if not (sources / rel).is_file()]
    if missing:
        listed = ", ".join(str(p) for p in missing[:3]) + (" …" if len(missing) > 3 else "")
        raise DataError(
            f"{len(missing)} raw source file(s) missing: {listed}; "
            "fetch them with `python -m lpft_nb data download`"
        )
    written = {}
    for name in names:
        for split, rows in BUILDERS[name](sources).items():
            path = to / BOSS_DIR / name / f"{split}.tsv"
            write_tsv(rows, path)
            written[str(path.relative_to(to))] = len(rows)
    return written
