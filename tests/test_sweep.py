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
from lpft_nb.sweep import Submitted, SweepOptions, _ids, _in_range, local_states, parse_sbatch, submit, wait

TINY = {"model": "tiny-random-bert", "max_train": 16, "max_eval": 8, "max_length": 32, "epochs": 1}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LPFT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _dynamics_runs() -> list[Task]:
    """The smoke dynamics page's runs (the grid, the LPs on full splits, the SST-2 runs): all runs, no kernel."""
    from pathlib import Path

    tasks = profile_tasks("smoke", ["dynamics"], Path("/d"), Path("/c"))
    assert tasks and all(t.kind == "run" for t in tasks)
    return tasks


def test_a_sweep_fills_the_cache_and_the_book_then_trains_nothing(cache, tmp_path, capsys):
    pages = ["dynamics"]  # kernels: the next test
    assert not all_computed("smoke", pages)  # the book would execute its pages one at a time
    assert main(["sweep", "--profile", "smoke", "--pages", *pages, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    n_runs = len(_dynamics_runs())
    assert "failed         0" in out and f"{n_runs} to compute" in out
    filled = cache_entries()
    assert len(filled) == n_runs and all_computed("smoke", pages)  # now it may execute them at once
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
    options = SweepOptions(workers=2, poll_s=0.2)
    jobs = submit(tasks, options, tmp_path / "logs")
    waited = wait(jobs, options, local_states(jobs))
    outcomes = {o.label: o for o in waited.outcomes}
    assert not waited.unfinished
    assert outcomes[tasks[0].label].ok and is_cached(good)
    assert outcomes[tasks[2].label].ok and tasks[2].cached()
    failed = outcomes[tasks[1].label]
    assert not failed.ok and "DataError" in failed.error
    assert failed.log.endswith("_log.err") and "Traceback" in open(failed.log).read()
    assert "TasksFailed: 1 of 1 task(s) failed: DataError" in str(jobs[1].handle.exception())  # exit code 1
    assert jobs[0].handle.exception() is None


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
    assert lines[1].split() == ["dynamics", str(len(_dynamics_runs())), "0"] and lines[2].split()[0] == "ntk"
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


def _job(folder, job_id, n_tasks=1):
    task = Task(
        "run", _frozen({**RunConfig.from_dict({**TINY, "dataset": "cb"}).to_dict(), "data_dir": None})
    )
    return Submitted(job_id, folder, [task] * n_tasks)


def test_a_job_that_left_the_queue_without_a_result_fails_with_its_last_state(tmp_path):
    polls = iter([{"7_0": "PENDING", "7_1": "RUNNING"}, {"7_0": "CANCELLED"}, None])  # None: no answer
    options = SweepOptions(executor="slurm", poll_s=0.01, grace_s=0.05)
    waited = wait(
        [_job(tmp_path, "7_0"), _job(tmp_path, "7_1", 2)],
        options,
        lambda ids: next(polls, {}),
        lambda i: None,
    )
    errors = sorted(o.error for o in waited.outcomes)
    assert (
        errors
        == ["job 7_0 ended CANCELLED without a result"] + ["job 7_1 ended RUNNING without a result"] * 2
    )
    assert waited.outcomes[0].log == str(tmp_path / "7_0_0_log.err") and not waited.unfinished


def test_the_wait_is_bounded_and_sacct_names_a_job_squeue_forgot(tmp_path):
    options = SweepOptions(executor="slurm", poll_s=0.01, grace_s=0.0, max_wait_min=0.001)
    running = wait([_job(tmp_path, "8_0")], options, lambda ids: {"8_0": "RUNNING"})
    assert running.outcomes == [] and [j.job_id for j in running.unfinished] == ["8_0"]
    forgotten = wait([_job(tmp_path, "8_1")], options, lambda ids: {}, {"8_1": "OUT_OF_MEMORY"}.get)
    assert forgotten.outcomes[0].error == "job 8_1 ended OUT_OF_MEMORY without a result"


def test_slurm_options_are_checked_before_any_compute(tmp_path, monkeypatch, capsys):
    assert parse_sbatch(["begin=now+60", "--exclusive"]) == {"begin": "now+60", "exclusive": True}
    for bad in (["--sbatch", "=1"], ["--sbatch", "mem="], ["--mem", "4G"], ["--cpus-per-job", "0"]):
        capsys.readouterr()
        assert main(["sweep", "--profile", "smoke", *bad]) == 2
        assert len(capsys.readouterr().err.splitlines()) == 1
    monkeypatch.setenv("PATH", str(tmp_path))  # no Slurm here
    assert main(["sweep", "--profile", "smoke", "--executor", "slurm"]) == 2
    assert capsys.readouterr().err == "error: Slurm not found: no `sbatch` on PATH (use --executor local)\n"
    assert _in_range("4", "12_[0,3-5%2]") and not _in_range("2", "12_[0,3-5%2]")
    jobs = [_job(tmp_path, i) for i in ("12_0", "12_1", "12_2", "12_5", "13_0")] + [_job(tmp_path, "4242")]
    assert _ids(jobs) == "12_[0-2,5], 13_[0], 4242"
