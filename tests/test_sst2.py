"""SST-2 from the SST PTB trees: binarisation, phrase de-duplication, GLUE's text form, the real counts."""

from pathlib import Path

import pytest

from lpft_nb.config import PAPER_HPARAMS, RunConfig
from lpft_nb.data import sst2
from lpft_nb.data.check import check_folder, format_report
from lpft_nb.data.download import build_and_verify_sst2
from lpft_nb.data.files import SST2_FILES
from lpft_nb.data.tasks import DataError, load_task

# Train trees: a positive root with a negative and a neutral phrase; a neutral root; a root with "The"
# (positive) whose lower-cased "the film " also occurs negative (so it is ambiguous and dropped);
# brackets and PTB escapes. Dev trees: one positive, one neutral, one negative root.
TRAIN = [
    "(4 (1 (1 Not) (2 bad)) (3 (2 -LRB-) (4 (3 great) (2 -RRB-))))",
    "(2 (2 It) (2 is))",
    "(3 (3 (2 The) (3 film)) (3 (2 A\\/B) (2 \\*)))",
    "(0 (0 (2 the) (2 film)) (2 .))",
]
DEV = ["(3 (2 A) (3 joy))", "(2 (2 so) (2 so))", "(1 (1 Dull) (2 .))"]


def _sources(tmp_path: Path) -> Path:
    trees = tmp_path / "sources" / sst2.TREES
    trees.mkdir(parents=True)
    (trees / "train.txt").write_text("\n".join(TRAIN) + "\n")
    (trees / "dev.txt").write_text("\n".join(DEV) + "\n")
    return tmp_path / "sources"


def test_splits_binarise_drop_neutral_and_deduplicate(tmp_path):
    splits = sst2.build_splits(_sources(tmp_path))
    assert splits["test"] == [("a joy ", 1), ("dull . ", 0)]  # tree order; the neutral root dropped
    assert sorted(splits["train_sentences"]) == [
        ("not bad ( great ) ", 1),
        ("the film . ", 0),
        ("the film a/b * ", 1),
    ]
    assert sorted(splits["train"]) == [
        ("( great ) ", 1),
        ("a/b * ", 1),
        ("film ", 1),
        ("great ", 1),
        ("great ) ", 1),
        ("not ", 0),
        ("not bad ", 0),
        ("not bad ( great ) ", 1),
        ("the film . ", 0),
        ("the film a/b * ", 1),
    ]
    texts = [text for text, _ in splits["train"]]
    assert len(texts) == len(set(texts)) and "the film " not in texts  # conflicting labels: dropped


def test_phrase_counts_and_the_conflict_count(tmp_path):
    trees = sst2.parse_trees(TRAIN, "train.txt")
    rows, conflicts = sst2.phrase_rows(trees)
    assert (len(rows), conflicts) == (10, 1)
    assert sst2.root_rows(trees) == [("not bad ( great ) ", 1), ("the film a/b * ", 1), ("the film . ", 0)]


def test_glue_file_form():
    assert sst2.glue_tsv([("a joy ", 1), ("dull . ", 0)]) == b"sentence\tlabel\na joy \t1\ndull . \t0\n"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("(4 (2 a) (2 b)", "unbalanced '\\('"),
        ("(4 (2 a)) (2 b)", "text after the tree's closing"),
        ("(7 (2 a))", "expected a class 0–4"),
        ("a (2 b)", "word 'a' outside a subtree"),
    ],
)
def test_malformed_trees_name_file_and_line(line, message):
    with pytest.raises(sst2.TreeError, match=f"dev.txt:2: {message}"):
        sst2.parse_trees(["(3 (2 A) (3 joy))", line], "dev.txt")


def test_loader_reads_the_trees_with_the_papers_split(tmp_path):
    _sources(tmp_path)
    data = load_task("sst2", data_dir=tmp_path)
    assert data.class_names == ("negative", "positive")
    assert (len(data.train), len(data.val), len(data.test)) == (9, 1, 2)  # 9:1, the last row as validation
    assert data.test.texts == ["a joy ", "dull . "]
    sentences = load_task("sst2_sentences", data_dir=tmp_path)
    assert (len(sentences.train), len(sentences.val)) == (2, 1)
    assert {p.name for p in data.files} == {"train.txt", "dev.txt"}


def test_loader_names_a_malformed_tree_and_missing_trees(tmp_path):
    trees = _sources(tmp_path) / sst2.TREES
    (trees / "dev.txt").write_text("(3 (2 A) (3 joy)\n")
    with pytest.raises(DataError, match=r"dev.txt:1: unbalanced"):
        load_task("sst2", data_dir=tmp_path)
    (trees / "train.txt").unlink()
    with pytest.raises(DataError, match=r"train.txt not found"):
        load_task("sst2_sentences", data_dir=tmp_path)


def test_sst2_is_a_training_dataset_with_the_papers_table_6_values():
    assert RunConfig.from_dict({"dataset": "sst2", "method": "ft"}).resolved_batch_size() == 32
    assert RunConfig.from_dict({"dataset": "sst2_sentences", "method": "lora"}).resolved_lr() == 5e-4
    assert {m: PAPER_HPARAMS[m]["sst2"] for m in PAPER_HPARAMS} == {
        "ft": (32, 1e-5),
        "lora": (32, 5e-4),
        "lp_ft": (8, 1e-5),
        "lp_lora": (8, 1e-3),
    }


def test_build_names_missing_trees_before_writing(tmp_path):
    with pytest.raises(DataError, match=r"SST PTB tree file\(s\) missing: .*train.txt.*data download"):
        build_and_verify_sst2(tmp_path / "sources", tmp_path)
    assert not (tmp_path / "sst2").exists()


def test_real_trees_build_the_pinned_files_and_check_counts(data_dir, tmp_path):
    built = build_and_verify_sst2(data_dir / "sources", tmp_path)
    assert [(path, rows) for path, rows, _ in built] == [
        ("sst2/train.tsv", 77189),
        ("sst2/train_sentences.tsv", 6920),
        ("sst2/test.tsv", 872),
    ]
    assert [verdict for _, _, verdict in built] == ["= pinned sha256"] * len(SST2_FILES)
    checks, notes = check_folder(data_dir)
    rows = {r.path: r for r in checks}
    test = rows["sst2/test.tsv"]
    assert (test.rows, test.classes, test.sha256, test.problem) == (
        "872",
        "negative 428 · positive 444",
        "= pinned",
        "",
    )
    assert rows["sst2/train.tsv"].rows == "77,189" and rows["sst2/train.tsv"].sha256 == "= pinned"
    assert "sst2/test.tsv" in format_report(data_dir, checks, notes)


def test_check_flags_a_built_file_that_differs(data_dir, tmp_path):
    folder = tmp_path / "data"
    (folder / "sources" / sst2.TREES).mkdir(parents=True)
    for name in ("train.txt", "dev.txt"):
        (folder / "sources" / sst2.TREES / name).write_bytes(
            (data_dir / "sources" / sst2.TREES / name).read_bytes()
        )
    (folder / "sst2").mkdir()
    (folder / "sst2/test.tsv").write_text("sentence\tlabel\n")
    rows = {r.path: r for r in check_folder(folder)[0]}
    assert rows["sst2/test.tsv"].sha256 == "differs" and "build-sst2" in rows["sst2/test.tsv"].fix
    assert rows["sst2/train.tsv"].problem == ""
