"""The one memo scheme (`runs.cache`): code keys, atomic memo files, and invalidation by a code change at
every place that memoises (training runs, kernels, calibration, the linearisation check)."""

import json

import numpy as np
import pytest

from lpft_nb.analysis import calibration, kernels, linearization, ntk
from lpft_nb.analysis.kernels import KernelSpec, get_kernels
from lpft_nb.analysis.linearization import linearization_check
from lpft_nb.config import RunConfig
from lpft_nb.model import train
from lpft_nb.runs import cache
from lpft_nb.runs.run import get_run, run_code_key


def test_code_key_follows_the_source_and_names(monkeypatch):
    key = cache.code_key(train, kernels.get_kernels)
    assert key == cache.code_key(train, kernels.get_kernels) and len(key) == 16
    assert key != cache.code_key(kernels.get_kernels, train)  # order is part of the key
    real = cache.source_text
    monkeypatch.setattr(cache, "source_text", lambda obj: real(obj) + ("# edit" if obj is train else ""))
    assert cache.code_key(train, kernels.get_kernels) != key


def test_a_module_and_its_name_give_the_same_code_key():
    assert cache.code_key("lpft_nb.model.train", kernels.get_kernels) == cache.code_key(
        train, kernels.get_kernels
    )
    with pytest.raises(ModuleNotFoundError):
        cache.code_key("lpft_nb.no_such_module")


def test_memoize_computes_once_and_recomputes_bad_files(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(3), "b": np.float64(2.5)}

    path = tmp_path / "x.npz"
    value, hit = cache.memoize(path, compute, required=("a", "b"))
    assert not hit and len(calls) == 1
    value, hit = cache.memoize(path, compute, required=("a", "b"))
    assert hit and len(calls) == 1 and float(value["b"]) == 2.5
    path.write_bytes(b"truncated")  # unreadable → recomputed
    assert not cache.memoize(path, compute)[1] and len(calls) == 2
    assert not cache.memoize(path, compute, required=("c",))[1]  # lacks a required key → recomputed
    wrong_shape = lambda v: None if v["a"].shape == (4,) else f"a has shape {v['a'].shape}"  # noqa: E731
    assert not cache.memoize(path, compute, check=wrong_shape)[1] and len(calls) == 4  # off its schema
    js = tmp_path / "y.json"
    assert cache.memoize(js, lambda: {"k": [1, 2]}) == ({"k": [1, 2]}, False)
    assert json.loads(js.read_text()) == {"k": [1, 2]} and cache.memoize(js, dict)[1]
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_an_interrupted_memo_leaves_nothing(tmp_path):
    def boom():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.memoize(tmp_path / "z.npz", boom)
    assert not list(tmp_path.iterdir())


@pytest.fixture()
def edit(monkeypatch):
    """edit(obj): from now on the source of `obj` (a module, given as itself or by its name, or a function)
    reads as edited, as it would after an edit and a restart (the process's code keys are recomputed)."""
    edited = []
    real = cache.source_text

    def source_text(obj):
        name = obj if isinstance(obj, str) else None
        hit = any(obj is e or (name is not None and getattr(e, "__name__", None) == name) for e in edited)
        return real(obj) + ("\n# edited" if hit else "")

    def add(obj):
        edited.append(obj)
        run_code_key.cache_clear()
        kernels.kernel_code_key.cache_clear()

    monkeypatch.setattr(cache, "source_text", source_text)
    yield add
    run_code_key.cache_clear()
    kernels.kernel_code_key.cache_clear()


def test_every_memo_recomputes_after_an_edit_of_its_code_and_only_then(tiny_run, edit):
    cfg = RunConfig.from_dict({**tiny_run, "method": "lp_ft", "epochs": 1})
    spec = KernelSpec(
        dataset="cb",
        setting="lp_ft",
        n=4,
        model=tiny_run["model"],
        max_train=30,
        max_length=64,
        data_dir=tiny_run["data_dir"],
        cache_dir=tiny_run["cache_dir"],
    )

    def memos():
        calibration._RUN_CALIBRATION.clear()
        run = get_run(cfg, progress=False)
        calibration.run_calibration(run, n_resamples=20)
        result = get_kernels(spec)
        linearization_check(spec, result)
        result.statistics("P")
        root = result.path.parent.parent
        return {
            "run": run.cache_hit,
            "kernel": result.cache_hit,
            "calibration": len(list(run.path.glob("calibration-*.json"))),
            "linearization": len(list((root / "linearization").glob("*-step*.npz"))),
            "statistics": len(list((root / "kernel-statistics").glob("*-P-*.json"))),
        }

    first = {"calibration": 1, "linearization": 1, "statistics": 1}
    assert memos() == {"run": False, "kernel": False, **first}
    assert memos() == {"run": True, "kernel": True, **first}
    edit(linearization._linearization_step)  # only the linearisation check is recomputed
    assert memos() == {"run": True, "kernel": True, **first, "linearization": 2}
    edit(calibration)  # a new calibration file beside the run
    assert memos() == {"run": True, "kernel": True, **first, "calibration": 2, "linearization": 2}
    edit(kernels.KernelResult._compute_statistics)  # only the kernel statistics are recomputed
    assert memos() == {"run": True, "kernel": True, "calibration": 2, "linearization": 2, "statistics": 2}
    edit(ntk)  # kernels (and the check and statistics stored beside them) recomputed, runs not
    assert memos() == {"run": True, "kernel": False, "calibration": 2, "linearization": 3, "statistics": 3}
    edit(train)  # a run module: runs and kernels recomputed
    out = memos()
    assert out["run"] is False and out["kernel"] is False
