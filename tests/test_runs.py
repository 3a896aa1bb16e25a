import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lpft_nb.config import RunConfig
from lpft_nb.runs import run as runs
from lpft_nb.runs.run import get_run


def test_fine_tuning_lowers_the_training_loss(tiny_run):
    cfg = RunConfig.from_dict({**tiny_run, "method": "ft", "epochs": 6, "lr": 1e-3, "batch_size": 8})
    history = get_run(cfg, progress=False).history
    per_epoch = np.array(history["loss"]).reshape(6, -1).mean(1)
    assert per_epoch[-1] < per_epoch[0] * 0.9
    assert len(history["val_accuracy"]) == 6 and 1 <= history["best_epoch"] <= 6
    assert history["lr"][0] == pytest.approx(1e-3) and history["lr"][-1] < history["lr"][0] / 3


@pytest.mark.parametrize("method", ["lp", "ft", "lp_ft", "lora", "lp_lora"])
def test_every_method_runs_and_records_what_pages_need(tiny_run, method):
    result = get_run(RunConfig.from_dict({**tiny_run, "method": method}), progress=False)
    m, a = result.metrics, result.arrays
    assert 0 <= m["test"]["accuracy"] <= 1 and m["test"]["n"] == 12
    assert a["logits_test"].shape == (12, 3) and a["features_after_test"].shape == (12, 32)
    assert a["head_weight_init"].shape == (3, 32)
    if method == "lp":
        np.testing.assert_array_equal(a["features_after_test"], a["features_before_test"])
        assert m["head_norm_init"] == m["head_norm_final"]
    else:
        steps_per_epoch = -(-30 // result.config.resolved_batch_size())
        assert len(result.history["loss"]) == 2 * steps_per_epoch
    if method.startswith("lp"):
        assert "lp_path" in result.history and m["lp"]["C"] > 0
    if method == "lora":  # only LoRA matrices move in the encoder: features change, but little
        assert not np.array_equal(a["features_after_test"], a["features_before_test"])


def test_amazon_run_evaluates_every_ood_set(tiny_run):
    cfg = RunConfig.from_dict({**tiny_run, "dataset": "amazon", "method": "lp", "max_per_class": 10})
    result = get_run(cfg, progress=False)
    assert set(result.metrics["ood"]) == {"dynasent", "semeval", "sst5"}
    assert result.arrays["features_after_sst5"].shape == (12, 32)
    assert result.summary()["metrics"]["ood"]["semeval"] == result.metrics["ood"]["semeval"]["accuracy"]


def test_cache_hit_miss_and_invalidation(tiny_run, monkeypatch):
    cfg = RunConfig.from_dict({**tiny_run, "method": "lp_ft", "epochs": 1})
    first = get_run(cfg, progress=False)
    second = get_run(cfg, progress=False)
    assert not first.cache_hit and second.cache_hit
    assert second.metrics == json.loads(json.dumps(first.metrics))
    np.testing.assert_array_equal(second.arrays["logits_test"], first.arrays["logits_test"])
    # a changed setting is a different entry
    assert not get_run(cfg.replace(lr=1e-4), progress=False).cache_hit
    # a change to the package's source is a different entry (tests/test_cache.py covers every memo)


def test_paths_do_not_enter_the_key_but_results_do(tiny_run, tmp_path):
    cfg = RunConfig.from_dict({**tiny_run, "method": "lp"})
    data = runs._load_data(cfg)
    assert runs.run_key(cfg, data) == runs.run_key(cfg.replace(cache_dir=str(tmp_path / "other")), data)
    assert runs.run_key(cfg, data) != runs.run_key(cfg.replace(lp_C=1.0), data)
    # settings that cannot change an LP run do not split its cache
    assert runs.run_key(cfg, data) == runs.run_key(cfg.replace(epochs=3), data)


def test_interrupted_write_leaves_no_entry(tiny_run, monkeypatch):
    cfg = RunConfig.from_dict({**tiny_run, "method": "lp"})

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs.np, "savez", boom)
    with pytest.raises(KeyboardInterrupt):
        get_run(cfg, progress=False)
    root = cfg.resolved_cache_dir() / "runs"
    assert list(root.iterdir()) == []  # neither a temporary folder nor a partial entry


def test_corrupt_entry_is_recomputed_not_served(tiny_run):
    cfg = RunConfig.from_dict({**tiny_run, "method": "lp"})
    first = get_run(cfg, progress=False)
    (first.path / "arrays.npz").write_bytes(b"truncated")
    again = get_run(cfg, progress=False)
    assert not again.cache_hit
    np.testing.assert_array_equal(again.arrays["logits_test"], first.arrays["logits_test"])
    shutil.rmtree(again.path / "meta.json", ignore_errors=True)
    (again.path / "meta.json").unlink()
    assert not get_run(cfg, progress=False).cache_hit


def test_same_seed_gives_identical_results_in_fresh_caches(tiny_run, tmp_path):
    cfg = RunConfig.from_dict({**tiny_run, "method": "ft", "epochs": 1})
    a = get_run(cfg, progress=False)
    b = get_run(cfg.replace(cache_dir=str(tmp_path / "fresh")), progress=False)
    assert not b.cache_hit
    np.testing.assert_array_equal(a.arrays["logits_test"], b.arrays["logits_test"])
    assert a.history["loss"] == b.history["loss"]
    c = get_run(cfg.replace(seed=2), progress=False)
    assert not np.array_equal(a.arrays["logits_test"], c.arrays["logits_test"])


def test_head_scale_multiplies_the_starting_head(tiny_run):
    base = get_run(RunConfig.from_dict({**tiny_run, "method": "lp"}), progress=False)
    scaled = get_run(RunConfig.from_dict({**tiny_run, "method": "lp", "head_scale": 10.0}), progress=False)
    np.testing.assert_allclose(
        scaled.arrays["head_weight_init"], 10 * base.arrays["head_weight_init"], rtol=1e-6
    )
    assert scaled.metrics["head_norm_init"] == pytest.approx(10 * base.metrics["head_norm_init"], rel=1e-5)


def _package_imports(root: str) -> set[str]:
    """`root` and every package module it imports, transitively (top-level and function-level imports)."""
    import ast
    import importlib

    seen, todo = set(), [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        module = importlib.import_module(name)
        package = name if module.__file__.endswith("__init__.py") else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                # `from . import x` names the module x; `from .x import y` names x
                todo += [f"{target}.{a.name}" for a in node.names] if node.module is None else [target]
    return seen


def test_the_cache_key_covers_every_module_a_run_imports():
    seen = _package_imports("lpft_nb.runs.run")
    assert seen <= set(runs.RUN_MODULES), f"add {sorted(seen - set(runs.RUN_MODULES))} to RUN_MODULES"


def test_the_kernel_key_covers_every_module_the_ntk_imports(monkeypatch):
    from lpft_nb.analysis import kernels
    from lpft_nb.runs import cache

    seen = _package_imports("lpft_nb.analysis.ntk")
    keyed = {*runs.RUN_MODULES, "lpft_nb.analysis.ntk", "lpft_nb.analysis.kernel_parts"}
    assert seen <= keyed, f"add {sorted(seen - keyed)} to kernel_code_key"
    before = kernels.kernel_code_key()
    real = cache.source_text
    for name in sorted(seen):  # an edit to any of them changes the key
        monkeypatch.setattr(cache, "source_text", lambda obj, n=name: real(obj) + ("#" if obj == n else ""))
        kernels.kernel_code_key.cache_clear()
        assert kernels.kernel_code_key() != before, name
    kernels.kernel_code_key.cache_clear()


def test_every_run_records_the_random_head_it_started_from(tiny_run):
    ft = get_run(RunConfig.from_dict({**tiny_run, "method": "ft", "epochs": 1}), progress=False)
    lp = get_run(RunConfig.from_dict({**tiny_run, "method": "lp"}), progress=False)
    # the same seed draws the same N(0, 0.02²) head; FT starts from it, LP replaces it
    assert (
        ft.summary()["head_norm_random"] == lp.summary()["head_norm_random"] == ft.metrics["head_norm_init"]
    )
    assert lp.metrics["head_norm_init"] == pytest.approx(lp.metrics["lp"]["weight_norm"], rel=1e-6)
    assert lp.metrics["head_norm_init"] != pytest.approx(lp.metrics["head_norm_random"], rel=1e-3)


def test_a_cached_run_is_served_without_importing_torch(tiny_run):
    import subprocess
    import sys

    cfg = RunConfig.from_dict({**tiny_run, "method": "lp"})
    get_run(cfg, progress=False)
    code = (
        "import json, sys\n"
        "import lpft_nb as lp\n"
        f"run = lp.get_run(lp.RunConfig.from_dict(json.loads({json.dumps(json.dumps(cfg.to_dict()))})))\n"
        "assert run.cache_hit and run.arrays['logits_test'].shape[1] == 3\n"
        "for name in ('page_plan', 'plots', 'tables', 'claims', 'ntk_claims', 'kernels', 'lora', 'span'):\n"
        "    getattr(lp, name)\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sklearn', 'peft') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr  # a warm page starts without them (seconds each)


def _entry_files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def _failing_device(cfg):
    from lpft_nb.device import DeviceError

    def fail(device):
        raise DeviceError(f"device={device!r}, but this machine has no usable GPU")

    return fail


@pytest.mark.parametrize(
    "failure",
    ["device", "sigint", "crash"],
)
def test_a_failed_refresh_leaves_the_old_entry_intact(tiny_run, monkeypatch, failure):
    """`--refresh` replaces an entry only once the new one is written: a missing device (before any work),
    Ctrl-C mid-run and a crash mid-run each leave the old entry, byte for byte, and no temporary folder."""
    from lpft_nb.device import DeviceError

    cfg = RunConfig.from_dict({**tiny_run, "method": "lp"})
    old = get_run(cfg, progress=False)
    before = _entry_files(old.path)
    trained = []
    if failure == "device":
        monkeypatch.setattr(runs, "resolve_device", _failing_device(cfg))
        expected = DeviceError
    else:
        expected = KeyboardInterrupt if failure == "sigint" else RuntimeError

        def interrupted(*args, **kwargs):
            trained.append(1)
            raise expected("mid-run")

        monkeypatch.setattr(runs, "execute_run", interrupted)
    with pytest.raises(expected):
        get_run(cfg.replace(device="cuda") if failure == "device" else cfg, progress=False, refresh=True)
    assert trained == ([] if failure == "device" else [1])
    assert [p.name for p in old.path.parent.iterdir()] == [old.path.name]
    assert _entry_files(old.path) == before
    assert get_run(cfg, progress=False).cache_hit


def test_a_refresh_replaces_the_entry_once_the_new_one_is_written(tiny_run, monkeypatch):
    cfg = RunConfig.from_dict({**tiny_run, "method": "lp"})
    old = get_run(cfg, progress=False)
    seen = []
    real = runs.execute_run

    def watched(*args, **kwargs):
        seen.append((old.path / "meta.json").is_file())  # the old entry is still there while training
        return real(*args, **kwargs)

    monkeypatch.setattr(runs, "execute_run", watched)
    new = get_run(cfg, progress=False, refresh=True)
    assert seen == [True] and not new.cache_hit and new.path == old.path
    assert [p.name for p in old.path.parent.iterdir()] == [old.path.name]
    np.testing.assert_array_equal(
        get_run(cfg, progress=False).arrays["logits_test"], new.arrays["logits_test"]
    )


def test_an_interrupted_replacement_puts_the_old_entry_back(tiny_run, monkeypatch):
    """Ctrl-C between moving the old entry aside and renaming the new one in: the old one is back."""
    cfg = RunConfig.from_dict({**tiny_run, "method": "lp"})
    old = get_run(cfg, progress=False)
    before = _entry_files(old.path)
    real_rename = runs.os.rename

    def rename(src, dst):
        if Path(src).name.startswith(runs.TMP_PREFIX):
            raise KeyboardInterrupt
        real_rename(src, dst)

    monkeypatch.setattr(runs.os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        get_run(cfg, progress=False, refresh=True)
    monkeypatch.setattr(runs.os, "rename", real_rename)
    assert [p.name for p in old.path.parent.iterdir()] == [old.path.name]
    assert _entry_files(old.path) == before


def test_stale_temporary_folders_are_cleaned_but_a_live_writers_are_not(tiny_run):
    import os
    import socket
    import subprocess
    import sys

    cfg = RunConfig.from_dict({**tiny_run, "method": "lp"})
    entry = get_run(cfg, progress=False)
    root = entry.path.parent
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(dead.stdout)
    host = socket.gethostname()
    live = root / f"{runs.TMP_PREFIX}{os.getpid()}@{host}.abcd"  # this process: a concurrent writer
    killed = root / f"{runs.TMP_PREFIX}{dead_pid}@{host}.efgh"
    other_host = root / f"{runs.TMP_PREFIX}{dead_pid}@elsewhere-node.ijkl"  # unknown: kept until old
    old_unknown = root / f"{runs.TMP_PREFIX}mnop1234"
    for folder in (live, killed, other_host, old_unknown):
        folder.mkdir()
        (folder / "metrics.json").write_text("{")
    os.utime(old_unknown, (0, 0))
    # an old entry moved aside by a writer that died before renaming its replacement in
    aside = root / f"{runs.ASIDE_PREFIX}{dead_pid}@{host}.{entry.path.name}"
    entry.path.rename(aside)
    assert get_run(cfg, progress=False).cache_hit  # put back at start-up, then served
    names = {p.name for p in root.iterdir()}
    assert names == {entry.path.name, live.name, other_host.name}


@pytest.mark.parametrize(
    "tamper",
    [
        ("metrics.json", lambda m: {**m, "head_norm_init": "big"}),
        ("metrics.json", lambda m: {**m, "test": {"accuracy": 0.5}}),
        ("metrics.json", lambda m: {**m, "ood": []}),
        ("metrics.json", lambda m: {**m, "data": 3}),
        ("metrics.json", lambda m: {**m, "lp": {"C": "cv", "cv": True, "train_accuracy": 1.0}}),
        ("metrics.json", lambda m: [m]),
        ("history.json", lambda h: []),
        ("arrays.npz", lambda a: {**a, "logits_test": a["logits_test"][:, :2]}),
        ("arrays.npz", lambda a: {**a, "labels_test": a["labels_test"][::-1].copy()}),
        ("arrays.npz", lambda a: {**a, "head_bias_final": a["head_bias_final"][None]}),
        ("meta.json", lambda m: {**m, "complete": "yes"}),
    ],
    ids=lambda t: t[0],
)
def test_an_entry_off_its_schema_is_recomputed_not_served(tiny_run, tamper):
    name, change = tamper
    cfg = RunConfig.from_dict({**tiny_run, "method": "lp"})
    first = get_run(cfg, progress=False)
    path = first.path / name
    if name.endswith(".npz"):
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        np.savez(path, **change(arrays))
    else:
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    again = get_run(cfg, progress=False)
    assert not again.cache_hit
    assert again.summary()["metrics"] == first.summary()["metrics"]
    assert get_run(cfg, progress=False).cache_hit


def test_a_served_run_reports_and_warns_of_changed_data(tiny_run, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(Path(tiny_run["data_dir"]) / "superglue", data / "superglue")
    train = data / "superglue/CB/train.jsonl"
    train.write_text(train.read_text().replace('"neutral"', '"contradiction"', 3))
    cfg = RunConfig.from_dict({**tiny_run, "method": "lp", "data_dir": str(data)})
    assert get_run(cfg, progress=False).summary()["data_verified"] is False
    capsys.readouterr()
    runs._UNPINNED.clear()  # a new command
    served = get_run(cfg, progress=False)
    assert served.cache_hit and served.summary()["data_verified"] is False
    assert "differ from their pinned sha256" in capsys.readouterr().err
