"""Per-run memos: stored beside the run, keyed by arguments and code, recomputed when either changes."""

from types import SimpleNamespace

import numpy as np

from lpft_nb.analysis import features, run_memo


def _counting(value):
    calls = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def test_a_memo_is_stored_beside_the_run_and_read_back(tmp_path):
    run = SimpleNamespace(path=tmp_path)
    compute, calls = _counting({"x": 1.5})
    assert run_memo.run_memo(run, "stat", {"a": 1}, (features,), compute) == {"x": 1.5}
    run_memo._IN_MEMORY.clear()  # a new process: only the file remains
    assert run_memo.run_memo(run, "stat", {"a": 1}, (features,), compute) == {"x": 1.5}
    assert len(calls) == 1 and len(list(tmp_path.glob("stat-*.json"))) == 1
    run_memo.run_memo(run, "stat", {"a": 2}, (features,), compute)  # another argument: another entry
    assert len(calls) == 2 and len(list(tmp_path.glob("stat-*.json"))) == 2


def test_the_code_key_is_part_of_the_name(tmp_path):
    run = SimpleNamespace(path=tmp_path)
    compute, calls = _counting({"x": 1})
    run_memo.run_memo(run, "stat", {}, (features.feature_change,), compute)
    run_memo.run_memo(run, "stat", {}, (features.norm_change,), compute)  # other code: computed again
    assert len(calls) == 2


def test_a_run_without_a_folder_is_computed_every_time(tmp_path):
    run = SimpleNamespace(path=tmp_path / "missing")
    compute, calls = _counting({"x": 1})
    run_memo.run_memo(run, "stat", {}, (features,), compute)
    run_memo.run_memo(run, "stat", {}, (features,), compute)
    assert len(calls) == 2 and not (tmp_path / "missing").exists()


def test_arrays_round_trip_through_npz(tmp_path):
    run = SimpleNamespace(path=tmp_path)
    value = {"a": np.arange(6.0).reshape(3, 2)}
    run_memo.run_memo(run, "emb", {}, (features,), lambda: value, suffix=".npz")
    run_memo._IN_MEMORY.clear()
    back = run_memo.run_memo(run, "emb", {}, (features,), lambda: 1 / 0, suffix=".npz")
    np.testing.assert_array_equal(back["a"], value["a"])


def test_jsonable_gives_what_json_gives_back():
    assert run_memo.jsonable({"r": (1, np.float64(2.5)), "n": np.int64(3)}) == {"r": [1, 2.5], "n": 3}
