"""What a data folder holds: every file pinned by sha256, where each raw file comes from, and what each
file the book reads must contain (rows and class counts).

Three groups, paths relative to a data folder:

- ``BOOK_FILES``: what the pages read (SuperGLUE CB/RTE jsonl; BOSS ``Text<TAB>Label`` tsv);
- ``RAW_FILES``: what ``data download`` fetches (the SuperGLUE files above and the raw BOSS sources);
- ``BOSS_FILES``: what ``data build-boss`` writes from the raw sources;
- ``SST2_FILES``: what ``data build-sst2`` writes from the SST PTB trees (the loader derives the same rows
  from the trees, so the book needs only the trees).

Hashes are those of the files as first fetched from their official sources (listed in ``REMOTES``). No sha256 of the official
archives themselves is known (the 2014 Amazon file, stored as downloaded, is pinned whole); each file taken
out of an archive is checked against its pinned sha256 instead, so a changed upstream file is an error,
never a silent difference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class DataFile:
    """One file of a data folder: path relative to the folder, sha256 and size in bytes."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Remote:
    """One official download and the data-folder files it yields.

    ``kind``: ``zip`` (members extracted; a member is found by the path suffix given), ``gzip`` (decompressed
    into the one file) or ``file`` (stored as downloaded). ``sha256`` is that of the download itself, where
    its publisher or a verified copy gives one; otherwise ``None`` and only the files it yields are checked.
    """

    name: str
    url: str
    kind: str
    members: tuple[tuple[str, str], ...]  # (member path suffix in the download, data-folder path)
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return PurePosixPath(self.url.split("?")[0]).name


_SG = "https://dl.fbaipublicfiles.com/glue/superglue/data/v2"
_AMAZON_2018 = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/categoryFilesSmall"
_SEMEVAL = "sources/semeval2017/2017_English_final/GOLD/Subtask_A"
_SST = "sources/sst/stanfordSentimentTreebank"

REMOTES = (
    Remote(
        "SuperGLUE v2 CB",
        f"{_SG}/CB.zip",
        "zip",
        tuple((f"CB/{s}.jsonl", f"superglue/CB/{s}.jsonl") for s in ("train", "val", "test")),
    ),
    Remote(
        "SuperGLUE v2 RTE",
        f"{_SG}/RTE.zip",
        "zip",
        tuple((f"RTE/{s}.jsonl", f"superglue/RTE/{s}.jsonl") for s in ("train", "val", "test")),
    ),
    Remote(
        "DynaSent v1.1",
        "https://github.com/cgpotts/dynasent/raw/main/dynasent-v1.1.zip",
        "zip",
        tuple(
            (f"dynasent-v1.1/{f}", f"sources/dynasent-v1.1/{f}")
            for f in ("dynasent-v1.1-round01-yelp-test.jsonl", "dynasent-v1.1-round02-dynabench-test.jsonl")
        ),
    ),
    Remote(
        "SemEval-2017 Task 4 (2017_English_final)",
        "https://www.dropbox.com/s/byzr8yoda6bua1b/2017_English_final.zip?dl=1",
        "zip",
        tuple(
            (f"GOLD/Subtask_A/{f}", f"{_SEMEVAL}/{f}")
            for f in ("README.txt", "twitter-2016test-A.txt", "twitter-2016train-A.txt")
        ),
    ),
    Remote(
        "Stanford Sentiment Treebank",
        "https://nlp.stanford.edu/~socherr/stanfordSentimentTreebank.zip",
        "zip",
        tuple(
            (f"stanfordSentimentTreebank/{f}", f"{_SST}/{f}")
            for f in (
                "README.txt",
                "SOStr.txt",
                "datasetSentences.txt",
                "datasetSplit.txt",
                "sentiment_labels.txt",
            )
        ),
    ),
    Remote(
        "SST PTB trees",
        "https://nlp.stanford.edu/sentiment/trainDevTestTrees_PTB.zip",
        "zip",
        tuple(
            (f"trees/{s}.txt", f"sources/sst/trainDevTestTrees_PTB/trees/{s}.txt")
            for s in ("train", "dev", "test")
        ),
    ),
    *(
        Remote(
            f"Amazon Review Data (2018) 5-core {c}",
            f"{_AMAZON_2018}/{c}_5.json.gz",
            "gzip",
            (("", f"sources/amazon_reviews_2018_5core/{c}_5.json"),),
        )
        for c in ("All_Beauty", "AMAZON_FASHION", "Appliances", "Gift_Cards", "Magazine_Subscriptions")
    ),
    Remote(
        "Amazon product data (2014) 5-core Musical Instruments",
        "https://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Musical_Instruments_5.json.gz",
        "file",
        (("", "sources/amazon_reviews_2014_5core/reviews_Musical_Instruments_5.json.gz"),),
        sha256="03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748",
    ),
)

RAW_FILES = (
    DataFile(
        "superglue/CB/train.jsonl", "32017480d3a10508646e3efd64502c639f13d4d15077f278d2fd0992c33a3126", 99499
    ),
    DataFile(
        "superglue/CB/val.jsonl", "c6125587e9601560cb16ea223c33964c5a915568d2af68a81f651b6ef25395ec", 24598
    ),
    DataFile(
        "superglue/CB/test.jsonl", "860679c4ef6f56758f5530bfbcbf2fd7905667184144f3594ace9bb4c435618d", 99881
    ),
    DataFile(
        "superglue/RTE/train.jsonl",
        "fdfb03443abe3ec0424b7fc5d1a8863361719bc061338b7a63e56b94d615f201",
        977550,
    ),
    DataFile(
        "superglue/RTE/val.jsonl", "ab990507bf5f35dc176cba7770a72bfa2c50a88ed72b8cc95cfbf9db95ab1af1", 104895
    ),
    DataFile(
        "superglue/RTE/test.jsonl",
        "fb4025a8b072862f0323423dff1de8980a024bfb8775e09c80ff3cf1c77677b1",
        1056063,
    ),
    DataFile(
        "sources/dynasent-v1.1/dynasent-v1.1-round01-yelp-test.jsonl",
        "519f507ff6a030744abb29135397f14c9139f7ce371882cc057ccf73f914e291",
        1919419,
    ),
    DataFile(
        "sources/dynasent-v1.1/dynasent-v1.1-round02-dynabench-test.jsonl",
        "8924060e3abe8ac757517ff6b1c1557157ceb4fde07be902ab1b0ff54fb94832",
        490396,
    ),
    DataFile(
        f"{_SEMEVAL}/README.txt", "a083e7685ad02709cee8b6be4128d1f762b77f89342cd68f9636edb7d7de1280", 3511
    ),
    DataFile(
        f"{_SEMEVAL}/twitter-2016test-A.txt",
        "aa0b4c1a0fe595a965e4d4b8690e52a2dcdb1b221dd088725512198bd7de3bf8",
        2995083,
    ),
    DataFile(
        f"{_SEMEVAL}/twitter-2016train-A.txt",
        "f49f65cf5e94b47d077ab7715d3d0a656c09b5c71608678a672d7378ef79c932",
        864760,
    ),
    DataFile(f"{_SST}/README.txt", "beff30caea91d73bceadf57b582e0a267ec0b153a57e1fa54cdfae0635cdcf10", 2357),
    DataFile(
        f"{_SST}/SOStr.txt", "6135cedf169a822da93a6807b5655f99550d27e74a3e3961d20097ec2f764d37", 1226029
    ),
    DataFile(
        f"{_SST}/datasetSentences.txt",
        "f7ae959a5ff0565eb860c3f2e600dde118bcb49aee63df8fa9b9a806da235553",
        1290263,
    ),
    DataFile(
        f"{_SST}/datasetSplit.txt", "ad567db10ae5275963f1ac3dd5ec21214b1d688c7aab582e2616ef4b3f970a5a", 83764
    ),
    DataFile(
        f"{_SST}/sentiment_labels.txt",
        "20cbb150106bf334304a6f2076644eb7e1d8e17c7cd3d2d347e72bcaa2b4d322",
        3263577,
    ),
    DataFile(
        "sources/sst/trainDevTestTrees_PTB/trees/test.txt",
        "6e54806dee95cf80cd918e7dfb3f6770f6df24bf826f289a4d1f709e1c8f6761",
        559614,
    ),
    DataFile(
        "sources/sst/trainDevTestTrees_PTB/trees/train.txt",
        "e2f3f41b0b1e6d4dddc0effe3bfc2d27ed8928079aa9a03d652311614fc5feb7",
        2160058,
    ),
    DataFile(
        "sources/sst/trainDevTestTrees_PTB/trees/dev.txt",
        "0e9336aed6e4730e19f58d00a77b3f0297efdb755f7b5e598c98a05e3f97ea40",
        280825,
    ),
    DataFile(
        "sources/amazon_reviews_2018_5core/All_Beauty_5.json",
        "2216c07d74d92744fefcff3cfe9eac5831634bcc77bfb2a47352f7d51f96cb86",
        2457643,
    ),
    DataFile(
        "sources/amazon_reviews_2018_5core/AMAZON_FASHION_5.json",
        "89d01607b46760c41b2b22314973fac06b18a915977374ba02624dbe78d637ee",
        1413469,
    ),
    DataFile(
        "sources/amazon_reviews_2018_5core/Appliances_5.json",
        "86b193bf5338cf5818f97b7bd90a8df68059d6534555de711ae265e5fc4187c1",
        4232371,
    ),
    DataFile(
        "sources/amazon_reviews_2018_5core/Gift_Cards_5.json",
        "9a712964d5f4d6d6ce905efc63dd41fe1309dd02a6daa4e7e0570725a44261cf",
        906419,
    ),
    DataFile(
        "sources/amazon_reviews_2018_5core/Magazine_Subscriptions_5.json",
        "2092c2821ab8c720988443f1a1a2e203e6339595daa0f7bc1ca190e9181d7e7d",
        1389669,
    ),
    DataFile(
        "sources/amazon_reviews_2014_5core/reviews_Musical_Instruments_5.json.gz",
        "03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748",
        2460495,
    ),
)

_BOSS = "boss/SentimentAnalysis"
BOSS_FILES = (
    DataFile(
        f"{_BOSS}/amazon/train.tsv",
        "31a75be69bee51c7408665149f527e15e2c17342262b16a881960303fc311626",
        4857441,
    ),
    DataFile(
        f"{_BOSS}/amazon/test.tsv", "52126264299d634eb2c326bb8bedf56e1243b133c439280f0488982c6b33b089", 866061
    ),
    DataFile(
        f"{_BOSS}/dynasent/test.tsv",
        "ee21ab7d1d3d4ce0f967893ec013506a69b06276e83a077a0b0605daa9c63365",
        325213,
    ),
    DataFile(
        f"{_BOSS}/semeval/test.tsv",
        "0aaefb40a36f02cf9839504edbcb11ef1bdc8d35e12c540a427a3dc5b03a590c",
        2478964,
    ),
    DataFile(
        f"{_BOSS}/sst5/test.tsv", "ecabaf30e2d12c3b73992e9bc40e3385235ff0be27cd03a4482d8511346a5a5f", 109882
    ),
)

_SST2 = "sst2"
SST2_FILES = (
    DataFile(
        f"{_SST2}/train.tsv", "9ff7a03b77d6b0380b52842f425f1454db7796c7a243826bef33813421696266", 4316309
    ),
    DataFile(
        f"{_SST2}/train_sentences.tsv",
        "36ff6382b9c5afea04bffb179aaef2793689d2be630f7c79fc2d5aee07855c27",
        743397,
    ),
    DataFile(f"{_SST2}/test.tsv", "0083796907d63795f96bb8296daf143acc6a63b8178a606d94991ed032d25576", 94931),
)


@dataclass(frozen=True)
class Expected:
    """What ``data check`` requires of a file the book reads: rows (all of them, as pandas counts them) and,
    for labelled files, the class counts of the rows the pages load (BOSS rows with an empty text are
    skipped on load: 2 positive in Amazon train, 3 in Amazon test; README §4d)."""

    path: str
    rows: int
    classes: dict[str, int] | None  # None: an unlabelled file (SuperGLUE test)
    read_by_pages: bool = True  # False: kept for completeness (the unlabelled SuperGLUE test files)


_NEG_POS_NEU = ("negative", "positive", "neutral")
BOOK_FILES = (
    Expected("superglue/CB/train.jsonl", 250, {"entailment": 115, "contradiction": 119, "neutral": 16}),
    Expected("superglue/CB/val.jsonl", 56, {"entailment": 23, "contradiction": 28, "neutral": 5}),
    Expected("superglue/CB/test.jsonl", 250, None, read_by_pages=False),
    Expected("superglue/RTE/train.jsonl", 2490, {"entailment": 1249, "not_entailment": 1241}),
    Expected("superglue/RTE/val.jsonl", 277, {"entailment": 146, "not_entailment": 131}),
    Expected("superglue/RTE/test.jsonl", 3000, None, read_by_pages=False),
    Expected(f"{_BOSS}/amazon/train.tsv", 12232, dict(zip(_NEG_POS_NEU, (517, 9998, 1715)))),
    Expected(f"{_BOSS}/amazon/test.tsv", 2212, dict(zip(_NEG_POS_NEU, (65, 1948, 196)))),
    Expected(f"{_BOSS}/dynasent/test.tsv", 4320, dict(zip(_NEG_POS_NEU, (1440, 1440, 1440)))),
    Expected(f"{_BOSS}/semeval/test.tsv", 20622, dict(zip(_NEG_POS_NEU, (3229, 7059, 10334)))),
    Expected(f"{_BOSS}/sst5/test.tsv", 1067, dict(zip(_NEG_POS_NEU, (279, 399, 389)))),
)
# The SST-2 splits the loader derives from the trees (``sst2``), as ``data build-sst2`` writes them.
SST2_SPLITS = (
    Expected(f"{_SST2}/train.tsv", 77189, {"negative": 34785, "positive": 42404}),
    Expected(f"{_SST2}/train_sentences.tsv", 6920, {"negative": 3310, "positive": 3610}),
    Expected(f"{_SST2}/test.tsv", 872, {"negative": 428, "positive": 444}),
)

PINNED = {f.path: f for f in (*RAW_FILES, *BOSS_FILES, *SST2_FILES)}


def remote_of(path: str) -> Remote:
    """The official download a raw file comes from."""
    for remote in REMOTES:
        if any(target == path for _, target in remote.members):
            return remote
    raise KeyError(path)


def sha256_of(path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def matches_pin(path: Path, pinned: DataFile) -> bool:
    """True when `path` exists with the pinned size and sha256."""
    return path.is_file() and path.stat().st_size == pinned.size and sha256_of(path) == pinned.sha256


def unpinned_files(root: Path, files) -> list[str]:
    """The files among `files` (paths inside the data folder `root`) whose size or sha256 differs from its
    pin, as paths relative to `root`; files the manifest does not pin are not judged."""
    out = []
    for path in files:
        rel = Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        if rel in PINNED and not matches_pin(Path(path), PINNED[rel]):
            out.append(rel)
    return out
