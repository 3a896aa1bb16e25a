"""The sweep: a profile's runs and kernels precomputed as a submitit job array (local executor here)."""

import dataclasses
import json
import multiprocessing

import pytest

from lpft_nb.analysis.kernels import KernelSpec
from lpft_nb.book.build import all_computed, cache_entries, execute_page
from lpft_nb.book.plans import Task, _frozen, plan_name, profile_tasks
from lpft_nb.cli import main
from lpft_nb.config import RunConfig
from lpft_nb.estimate import Costs, estimate_table
from lpft_nb.runs.run import get_run, is_cached, run_entry_path
from lpft_nb.sweep import SweepOptions, submit, wait

TINY = {"model": "tiny-random-bert", "max_train": 16, "max_eval": 8, "max_length": 32, "epochs": 1}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LPFT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_sweep_fills_the_cache_and_the_book_then_trains_nothing(cache, tmp_path, capsys):
    pages = ["dynamics"]  # kernels: the next test
    assert not all_computed("smoke", pages)  # the book would execute its pages one at a time
    assert main(["sweep", "--profile", "smoke", "--pages", *pages, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "failed         0" in out and "18 to compute" in out  # 16 of the grid, 2 LPs on full splits
    filled = cache_entries()
    assert len(filled) == 18 and all_computed("smoke", pages)  # now it may execute them at once
    for page in pages:  # the pages find every run and kernel they need
        result = execute_page(page, "smoke", tmp_path / "executed")
        assert result.ok, result.error
    assert cache_entries() == filled, "the book trained or computed something the sweep had not"
    assert main(["sweep", "--profile", "smoke", "--pages", *pages]) == 0
    assert "nothing to submit" in capsys.readouterr().out


def test_a_failing_task_is_reported_with_its_log_and_the_others_land(cache, tmp_path):
    good = RunConfig.from_dict({**TINY, "dataset": "cb", "method": "lp", "seed": 1})
    bad = good.replace(seed=2, data_dir=str(tmp_path / "no-data-here"))
    kernel = {"dataset": "cb", "setting": "lp_ft", "n": 4, "model": TINY["model"], "max_train": 16}
    tasks = [Task("run", _frozen(c.to_dict())) for c in (good, bad)]
    tasks.append(Task("kernel", _frozen(dataclasses.asdict(KernelSpec(**kernel, max_length=32)))))
    jobs, shards = submit(tasks, SweepOptions(workers=2), tmp_path / "logs")
    outcomes = {o.label: o for o in wait(jobs, shards, poll_s=0.2)}
    assert outcomes[tasks[0].label].ok and is_cached(good)
    assert outcomes[tasks[2].label].ok and tasks[2].cached()
    failed = outcomes[tasks[1].label]
    assert not failed.ok and "DataError" in failed.error
    assert "Traceback" in open(failed.log).read() + open(failed.log.replace(".out", ".err")).read()


def _train(values: dict, queue) -> None:
    try:
        queue.put(str(get_run(RunConfig.from_dict(values), progress=False).path))
    except Exception as err:  # reported to the test
        queue.put(repr(err))


def test_concurrent_writers_of_one_run_leave_one_complete_entry(cache):
    values = {**TINY, "dataset": "cb", "method": "ft", "seed": 3}
    queue = multiprocessing.get_context("spawn").Queue()
    workers = [
        multiprocessing.get_context("spawn").Process(target=_train, args=(values, queue)) for _ in range(2)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    paths = {queue.get(timeout=5) for _ in workers}
    entry = run_entry_path(RunConfig.from_dict(values))
    assert paths == {str(entry)}  # both see the same entry, whoever wrote it
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # no temporary folder left behind
    assert get_run(RunConfig.from_dict(values)).cache_hit


def test_tasks_come_from_the_pages_own_plans_and_each_once():
    assert plan_name("dynamics") == "dynamics" and plan_name("claims") is None
    from pathlib import Path

    tasks = profile_tasks("smoke", ["dynamics", "calibration", "norms"], Path("/d"), Path("/c"))
    runs = [t for t in tasks if t.kind == "run"]
    assert len({t.settings for t in runs}) == len(runs)  # dynamics and calibration share their runs
    shared = [t for t in runs if t.pages[:2] == ("dynamics", "calibration")]
    assert shared and all(t.values["cache_dir"] == "/c" for t in tasks)


def test_the_estimate_counts_each_shared_task_once():
    costs = Costs("m", "cpu", 1, 1e-3, 1e-3, 1e-4)
    run = Task("run", _frozen({**RunConfig.from_dict({**TINY, "dataset": "cb"}).to_dict(), "data_dir": None}))
    listed_twice = dataclasses.replace(run, pages=("b",))
    rows = estimate_table({"a": [run], "b": [listed_twice]}, costs)
    assert [r[:3] for r in rows] == [("a", 1, 0), ("b", 1, 0), ("all pages (shared once)", 1, 0)]
    assert rows[0][3] == rows[1][3] == rows[2][3] > 0


def test_plan_lists_a_profile_per_page(capsys):
    assert main(["plan", "--profile", "smoke", "--pages", "dynamics", "ntk"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["dynamics", "18", "0"] and lines[2].split()[0] == "ntk"
    assert main(["plan", "--profile", "smoke", "--params", "x.yaml"]) == 2
    assert main(["sweep", "--profile", "smoke", "--executor", "kubernetes"]) == 2


def test_a_run_records_where_it_was_computed(cache, capsys):
    args = ["run", "--dataset", "cb", "--method", "lp", "--json"] + [
        f"--set={k}={v}" for k, v in TINY.items()
    ]
    assert main(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["environment"]["device"] == "cpu" and record["environment"]["torch"]
    assert record["precision"] == "fp32"


def test_the_timed_costs_are_memoised_per_machine(tmp_path, monkeypatch):
    from lpft_nb import estimate

    monkeypatch.setenv("LPFT_CACHE_DIR", str(tmp_path))
    calls = []

    def timed(model, dev, repeats):
        calls.append(model)
        return {
            "model": model,
            "device": str(dev),
            "parameters": 1,
            "ft_example_s": 0.1,
            "lora_example_s": 0.05,
            "predict_example_s": 0.01,
            "measured_on": "2026-11-28",
        }

    monkeypatch.setattr(estimate, "_timed", timed)
    first = estimate.measure_costs("m", device="cpu", repeats=1)
    again = estimate.measure_costs("m", device="cpu", repeats=1)
    assert first == again and len(calls) == 1 and again.measured_on == "2026-11-28"
    estimate.measure_costs("m", device="cpu", repeats=2)  # other arguments: timed again
    estimate.measure_costs("m", device="cpu", repeats=1, refresh=True)
    assert len(calls) == 3 and len(list((tmp_path / "estimate").glob("costs-*.json"))) == 2
