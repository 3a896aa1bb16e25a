"""SST-2 (GLUE) rebuilt from the Stanford Sentiment Treebank's PTB trees (``trainDevTestTrees_PTB``).

GLUE's SST-2 is binary sentiment over SST: labels 0, 1 → negative (0); 3, 4 → positive (1); 2 (neutral)
dropped. What this module derives, from the pinned tree files (``SOURCES``):

- ``test``: the dev trees' root sentences, binarised (872 sentences, 444 positive), in tree order. GLUE's
  SST-2 dev set is these sentences, and the paper (Table 7) uses GLUE's dev set as its test set.
- ``train`` (dataset ``sst2``): every labelled phrase (every subtree) of the train trees, binarised and
  de-duplicated by text, as GLUE builds its train set. A text seen with both binary labels (the trees label
  each phrase once, but lower-casing joins e.g. "The" and "the") is dropped as ambiguous: neither label is
  GLUE's by any rule that can be checked here. The rows are put in ``numpy.random.default_rng(0)`` order, so
  that the loader's 9:1 split (the last 10% as validation, the paper's ``shuffle=False``) draws its
  validation rows from all over the treebank, as it does on GLUE's shuffled file.
- ``train_sentences`` (dataset ``sst2_sentences``): the train trees' binary root sentences (6,920), in the
  same seeded order.

Text as GLUE has it: the PTB leaves joined by single spaces, lower-cased, ``-LRB-``/``-RRB-`` as ``(``/``)``,
the PTB escapes ``\\/`` and ``\\*`` as ``/`` and ``*``, and one trailing space.

What could not be checked against GLUE's own files (not available here): the row order of GLUE's files
(GLUE's dev order is not the trees' order; its train order is a shuffle of unknown seed); GLUE's filter
of the train phrases (GLUE has 67,349 train rows, these trees give more, see ``data check``), so the paper's
60,614 / 6,735 train/validation sizes are not reproduced; GLUE's handling of phrases with conflicting labels.
The text form was checked on a few GLUE rows quoted in public code (trailing space, lower case, ``/``).

The loader (``tasks.load_task``) derives the splits from the trees at load time (once per process), so a
data folder needs only the pinned trees; ``data build-sst2`` writes the same rows as GLUE-form
``sentence<TAB>label`` files into ``sst2/`` (``files.SST2_FILES`` pins them) for inspection and comparison.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..atomic import write_atomically

TREES = Path("sst/trainDevTestTrees_PTB/trees")  # relative to a sources folder
SOURCES = {split: Path("sources") / TREES / f"{split}.txt" for split in ("train", "dev")}  # to a data folder
SST2_DIR = Path("sst2")
SST2_CLASSES = ("negative", "positive")
SPLIT_FILES = {"train": "train.tsv", "train_sentences": "train_sentences.tsv", "test": "test.tsv"}
BINARY = {0: 0, 1: 0, 3: 1, 4: 1}  # SST class → SST-2 label; 2 (neutral) is dropped
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_LEAF_TEXT = {"-LRB-": "(", "-RRB-": ")"}

Rows = list[tuple[str, int]]


class TreeError(ValueError):
    """A malformed PTB tree; the message names the file and line."""


def leaf_text(token: str) -> str:
    """A PTB leaf in GLUE's form: brackets restored, ``\\/`` and ``\\*`` unescaped, lower-cased."""
    return _LEAF_TEXT.get(token, token).replace("\\/", "/").replace("\\*", "*").lower()


def glue_text(leaves: list[str]) -> str:
    """GLUE's text of a phrase: its leaves joined by spaces, with one trailing space."""
    return " ".join(leaves) + " "


Tree = tuple[list[str], list[tuple[int, int, int]]]  # leaves; nodes as (SST class, first leaf, end leaf)


def parse_tree(line: str, where: str) -> Tree:
    """One PTB tree: its leaves in GLUE form and every node as (SST class 0–4, first leaf, end leaf), the
    root first; a node's phrase is ``leaves[first:end]``. ``where`` ("file:line") names it in an error."""
    tokens = _TOKEN.findall(line)
    leaves: list[str] = []
    nodes: list[list[int]] = []
    stack: list[int] = []  # indices into nodes of the open subtrees
    pos = 0
    while pos < len(tokens):
        token = tokens[pos]
        if token == "(":
            label = tokens[pos + 1] if pos + 1 < len(tokens) else ""
            if len(label) != 1 or label not in "01234":
                raise TreeError(f"{where}: expected a class 0–4 after '(' (token {pos + 1})")
            nodes.append([int(label), len(leaves), -1])
            stack.append(len(nodes) - 1)
            pos += 2
        elif token == ")":
            if not stack:
                raise TreeError(f"{where}: unbalanced ')' (token {pos})")
            nodes[stack.pop()][2] = len(leaves)
            pos += 1
        elif stack:
            leaves.append(leaf_text(token))
            pos += 1
        else:
            raise TreeError(f"{where}: word {token!r} outside a subtree")
        if not stack and pos < len(tokens):
            raise TreeError(f"{where}: text after the tree's closing ')'")
    if stack or not nodes:
        raise TreeError(f"{where}: unbalanced '(' or empty tree")
    return leaves, [(label, first, end) for label, first, end in nodes]


def parse_trees(lines: list[str], source: str) -> list[Tree]:
    """The trees of a PTB file's lines (one tree per non-blank line), each as ``parse_tree`` gives it."""
    return [parse_tree(line, f"{source}:{n}") for n, line in enumerate(lines, 1) if line.strip()]


def root_rows(trees: list[Tree]) -> Rows:
    """The binary root sentences as (text, label), in tree order."""
    return [(glue_text(leaves), BINARY[nodes[0][0]]) for leaves, nodes in trees if nodes[0][0] in BINARY]


def phrase_rows(trees: list[Tree]) -> tuple[Rows, int]:
    """Every binary phrase as (text, label), de-duplicated by text in first-seen order, and the number of
    texts dropped because they occur with both labels."""
    labels: dict[str, set[int]] = {}
    for leaves, nodes in trees:
        for sst_class, first, end in nodes:
            if sst_class in BINARY:
                labels.setdefault(glue_text(leaves[first:end]), set()).add(BINARY[sst_class])
    rows = [(text, seen.pop()) for text, seen in labels.items() if len(seen) == 1]
    return rows, len(labels) - len(rows)


def seeded_order(rows: Rows, seed: int = 0) -> Rows:
    """The rows in ``numpy.random.default_rng(seed).permutation(n)`` order."""
    return [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))]


def train_splits(lines: list[str], source: str) -> dict[str, Rows]:
    """``train`` (phrases) and ``train_sentences`` (roots) from the train trees' lines, in seeded order."""
    trees = parse_trees(lines, source)
    return {"train": seeded_order(phrase_rows(trees)[0]), "train_sentences": seeded_order(root_rows(trees))}


def test_split(lines: list[str], source: str) -> Rows:
    """``test``: the dev trees' binary root sentences, in tree order."""
    return root_rows(parse_trees(lines, source))


def tree_paths(sources: Path) -> dict[str, Path]:
    """The train and dev tree files in the sources folder `sources`."""
    return {split: sources / TREES / f"{split}.txt" for split in ("train", "dev")}


def build_splits(sources: Path) -> dict[str, Rows]:
    """The three SST-2 splits (``SPLIT_FILES`` keys) from the tree files in the sources folder `sources`."""
    paths = tree_paths(sources)
    lines = {split: path.read_text(encoding="utf-8").splitlines() for split, path in paths.items()}
    return {
        **train_splits(lines["train"], str(paths["train"])),
        "test": test_split(lines["dev"], str(paths["dev"])),
    }


def glue_tsv(rows: Rows) -> bytes:
    """GLUE's SST-2 file form: a ``sentence<TAB>label`` header, then one unquoted row per line."""
    return "".join(f"{line}\n" for line in ["sentence\tlabel", *(f"{t}\t{y}" for t, y in rows)]).encode()


def write_sst2(sources: Path, to: Path) -> dict[str, int]:
    """Derive the splits from the trees in the sources folder `sources`; write them as
    ``to/sst2/<split>.tsv`` (``to``: a data folder). Returns rows per written file (paths relative to `to`).
    """
    splits = build_splits(sources)
    written = {}
    for split, name in SPLIT_FILES.items():
        path = to / SST2_DIR / name
        data = glue_tsv(splits[split])
        write_atomically(path, lambda tmp, data=data: Path(tmp).write_bytes(data))
        written[str(path.relative_to(to))] = len(splits[split])
    return written
