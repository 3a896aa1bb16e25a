import json
import shutil

import numpy as np
import pytest

from lpft_nb.data.tasks import DataError, load_task, read_boss_tsv, read_superglue, split_train_val, subsample


def test_cb_splits_follow_the_paper(data_dir):
    task = load_task("cb", data_dir)
    assert (len(task.train), len(task.val), len(task.test)) == (225, 25, 56)
    assert task.class_names == ("entailment", "contradiction", "neutral")
    # test = official val: entailment 23, contradiction 28, neutral 5 (data README)
    assert task.test.class_counts(3) == [23, 28, 5]
    # train+val = official train: 115 / 119 / 16
    total = np.add(task.train.class_counts(3), task.val.class_counts(3))
    assert total.tolist() == [115, 119, 16]
    assert task.train.pairs is not None and len(task.train.pairs) == 225


def test_validation_is_the_last_tenth_of_the_train_file(data_dir):
    rows = [json.loads(line) for line in (data_dir / "superglue/CB/train.jsonl").open()]
    task = load_task("cb", data_dir)
    assert task.val.texts[0] == rows[225]["premise"]
    assert task.train.texts[-1] == rows[224]["premise"]


def test_rte_and_amazon_sizes(data_dir):
    rte = load_task("rte", data_dir)
    assert (len(rte.train), len(rte.val), len(rte.test)) == (2241, 249, 277)
    amazon = load_task("amazon", data_dir)
    assert set(amazon.ood) == {"dynasent", "semeval", "sst5"}
    assert len(amazon.ood["dynasent"]) == 4320 and amazon.ood["dynasent"].class_counts(3) == [
        1440,
        1440,
        1440,
    ]
    assert len(amazon.ood["semeval"]) == 20622 and len(amazon.ood["sst5"]) == 1067
    # 12,232 rows with 2 empty texts dropped (as the authors' loader does) → 12,230, split 9:1
    assert len(amazon.train) + len(amazon.val) == 12230 and len(amazon.val) == 1223
    assert amazon.test.dropped_empty == 3 and len(amazon.test) == 2209


def test_caps_are_seeded_and_per_class(data_dir):
    a = load_task("amazon", data_dir, max_per_class=50, max_eval=40, subset_seed=3)
    b = load_task("amazon", data_dir, max_per_class=50, max_eval=40, subset_seed=3)
    c = load_task("amazon", data_dir, max_per_class=50, max_eval=40, subset_seed=4)
    assert a.train.class_counts(3) == [50, 50, 50]
    assert a.train.texts == b.train.texts and a.train.texts != c.train.texts
    assert all(len(s) == 40 for s in a.ood.values()) and len(a.test) == 40
    capped = load_task("cb", data_dir, max_train=20)
    assert len(capped.train) == 20 and len(capped.test) == 56


def test_subsample_keeps_file_order():
    from lpft_nb.data.tasks import Split

    split = Split("x", [str(i) for i in range(100)], np.arange(100) % 2)
    out = subsample(split, 10, None, 0)
    assert [int(t) for t in out.texts] == sorted(int(t) for t in out.texts)


def test_split_train_val_rounds_validation_up():
    from lpft_nb.data.tasks import Split

    train, val = split_train_val(Split("x", list("abcdefghijk"), np.zeros(11, int)))
    assert (len(train), len(val)) == (9, 2)  # ceil(1.1) as sklearn's train_test_split


def test_missing_folder_and_file_are_clear(tmp_path):
    with pytest.raises(DataError, match="not found.*LPFT_DATA_DIR"):
        load_task("cb", tmp_path / "nowhere")
    (tmp_path / "superglue" / "CB").mkdir(parents=True)
    with pytest.raises(DataError, match="train.jsonl not found"):
        load_task("cb", tmp_path)
    with pytest.raises(DataError, match="unknown dataset"):
        load_task("mnli", tmp_path)


def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "train.jsonl"
    good = json.dumps({"premise": "a", "hypothesis": "b", "label": "entailment"})
    path.write_text(good + "\n" + good + "\n{not json\n")
    with pytest.raises(DataError, match=r"train.jsonl:3: not valid JSON"):
        read_superglue(path, ("entailment", "contradiction", "neutral"))
    path.write_text(good + "\n" + json.dumps({"premise": "a", "hypothesis": "b", "label": "maybe"}) + "\n")
    with pytest.raises(DataError, match=r"train.jsonl:2: label 'maybe'"):
        read_superglue(path, ("entailment", "contradiction", "neutral"))
    path.write_text(json.dumps({"premise": "a", "label": "entailment"}) + "\n")
    with pytest.raises(DataError, match=r":1: missing field 'hypothesis'"):
        read_superglue(path, ("entailment", "contradiction", "neutral"))


def test_malformed_tsv_names_file_and_line(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text('Text\tLabel\ngood one\t1\n"multi\nline"\t0\nbad\tx\n')
    with pytest.raises(DataError, match=r"test.tsv:5: label 'x' is not an integer"):
        read_boss_tsv(path)
    path.write_text("Text\tLabel\ngood\t1\ntoo\tmany\t2\n")
    with pytest.raises(DataError, match=r"test.tsv:3: expected 2 tab-separated fields"):
        read_boss_tsv(path)
    path.write_text("Text\tLabel\ngood\t7\n")
    with pytest.raises(DataError, match=r"test.tsv:2: label 7 outside"):
        read_boss_tsv(path)
    path.write_text("Sentence\tLabel\ngood\t1\n")
    with pytest.raises(DataError, match=r"test.tsv:1: header"):
        read_boss_tsv(path)
    path.write_text('Text\tLabel\n"multi\nline"\t0\n\t1\nok\t2\n')
    split = read_boss_tsv(path)
    assert split.texts == ["multi\nline", "ok"] and split.dropped_empty == 1


def test_a_data_file_is_parsed_once_per_process_until_it_changes(tmp_path, data_dir, monkeypatch):
    from lpft_nb.data import tasks

    shutil.copytree(data_dir / "superglue" / "CB", tmp_path / "superglue" / "CB")
    parsed = []
    real = tasks.read_superglue
    monkeypatch.setattr(tasks, "read_superglue", lambda path, *a: parsed.append(path.name) or real(path, *a))
    first, second = load_task("cb", tmp_path), load_task("cb", tmp_path)
    assert sorted(parsed) == ["train.jsonl", "val.jsonl"]  # each file once, not once per call
    assert first.test.texts == second.test.texts and first.test is not second.test
    first.test.labels[0] = (first.test.labels[0] + 1) % 3  # no caller can change another's data
    first.test.texts[0] = "changed"
    assert load_task("cb", tmp_path).test.labels[0] == second.test.labels[0] != first.test.labels[0]
    assert load_task("cb", tmp_path).test.texts[0] == second.test.texts[0] != "changed"
    before = first.fingerprint()
    val = tmp_path / "superglue" / "CB" / "val.jsonl"
    row = json.loads(val.read_text().splitlines()[0])
    with val.open("a") as fh:  # an edit on disk is seen at once
        fh.write(json.dumps({**row, "idx": 10_000}) + "\n")
    edited = load_task("cb", tmp_path)
    assert len(edited.test) == len(first.test) + 1 and parsed.count("val.jsonl") == 2
    assert edited.fingerprint() != before
