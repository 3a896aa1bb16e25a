"""Precompute a profile's runs and kernels as a job array on submitit: local workers or a Slurm cluster.

``python -m lpft_nb sweep --profile P [--pages ...] --executor local|slurm [--workers N] ...`` lists every
training run and kernel that the profile's pages ask for (`book.plans.page_plan`, the code the pages
themselves call), skips what the cache holds, submits the rest, waits with a progress bar and ends with a
table: done, cached before, failed (each failure with its log). Every job writes into the shared cache
folder; entries are written atomically, so concurrent writers are safe. Afterwards ``book --profile P``
trains nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .book.params import check_profile_name
from .book.plans import Task, profile_tasks
from .config import ConfigError, resolve_cache_dir


@dataclass
class Outcome:
    label: str
    ok: bool
    seconds: float
    error: str = ""
    log: str = ""


def run_tasks(tasks: list[Task], threads: int | None = None) -> list[Outcome]:
    """Execute `tasks` one after another in this process (a job of the array); a failing task is recorded
    with its error and the others still run."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    outcomes = []
    for task in tasks:
        start = time.perf_counter()
        print(f"start {task.label}", flush=True)
        try:
            task.execute()
            outcomes.append(Outcome(task.label, True, time.perf_counter() - start))
            print(f"done  {task.label} in {time.perf_counter() - start:.0f} s", flush=True)
        except Exception as err:  # reported in the sweep's table; the job goes on with the next task
            traceback.print_exc()
            message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            outcomes.append(Outcome(task.label, False, time.perf_counter() - start, message))
    return outcomes


@dataclass
class SweepOptions:
    executor: str = "local"
    workers: int = 2
    slurm_partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    timeout_min: int = 240
    array_parallelism: int = 32
    wait: bool = True


def _executor(options: SweepOptions, folder: Path):
    import submitit

    if options.executor == "local":
        executor = submitit.AutoExecutor(folder=folder, cluster="local")
        executor.update_parameters(timeout_min=options.timeout_min, gpus_per_node=options.gpus_per_job)
        return executor
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    parameters = {
        "timeout_min": options.timeout_min,
        "gpus_per_node": options.gpus_per_job,
        "slurm_array_parallelism": options.array_parallelism,
    }
    if options.slurm_partition:
        parameters["slurm_partition"] = options.slurm_partition
    if options.cpus_per_job:
        parameters["cpus_per_task"] = options.cpus_per_job
    executor.update_parameters(**parameters)
    return executor


def submit(tasks: list[Task], options: SweepOptions, folder: Path) -> tuple[list, list[list[Task]]]:
    """Submit `tasks` as one job array: `workers` shards on the local executor (threads split between
    them), one task per job on Slurm. Returns (jobs, the tasks of each job)."""
    if options.executor == "local":
        shards = [tasks[i :: options.workers] for i in range(options.workers)]
        shards = [s for s in shards if s]
        threads = max(1, (os.cpu_count() or 1) // len(shards))
    else:
        shards, threads = [[t] for t in tasks], options.cpus_per_job
    executor = _executor(options, folder)
    jobs = executor.map_array(run_tasks, shards, [threads] * len(shards))
    return jobs, shards


def wait(jobs, shards: list[list[Task]], poll_s: float = 2.0) -> list[Outcome]:
    """Wait for every job with a progress bar over tasks; a job that died is reported for each of its
    tasks with the job's log."""
    from tqdm import tqdm

    total = sum(map(len, shards))
    with tqdm(total=total, desc="sweep", unit="task") as bar:
        while not all(job.done() for job in jobs):
            finished = sum(t.cached() for shard in shards for t in shard)
            bar.update(max(0, finished - bar.n))
            time.sleep(poll_s)
        bar.update(total - bar.n)
    outcomes = []
    for job, shard in zip(jobs, shards):
        log = str(job.paths.stdout)
        try:
            results = job.result()
        except Exception as err:  # the job itself died (killed, out of memory, timeout)
            reason = f"job {job.job_id} failed: {str(err).strip().splitlines()[-1] if str(err) else err}"
            results = [Outcome(t.label, False, 0.0, reason) for t in shard]
        for outcome in results:
            outcome.log = log
        outcomes += results
    return outcomes


def sweep(profile: str, pages: list[str] | None, options: SweepOptions) -> int:
    """The `sweep` command. Returns an exit code (1 when a task failed)."""
    from .book.build import selected_pages
    from .data.download import ensure_book_data
    from .model.hub import resolve_model_path

    check_profile_name(profile)
    pages = selected_pages(pages)
    if options.executor not in ("local", "slurm"):
        raise ConfigError(f"--executor {options.executor!r}: valid: local, slurm")
    if options.workers < 1:
        raise ConfigError(f"--workers {options.workers}: must be >= 1")
    data_dir, cache_dir = ensure_book_data(), resolve_cache_dir(None)
    tasks = profile_tasks(profile, pages, data_dir, cache_dir)
    for model in sorted({t.values["model"] for t in tasks}):  # fetched once, here, before any job starts
        resolve_model_path(model, str(cache_dir))
    todo = [t for t in tasks if not t.cached()]
    n_runs = sum(t.kind == "run" for t in tasks)
    print(
        f"sweep ({profile}): {n_runs} runs and {len(tasks) - n_runs} kernels; "
        f"{len(tasks) - len(todo)} in the cache ({cache_dir}), {len(todo)} to compute"
    )
    if not todo:
        print("nothing to submit")
        return 0
    folder = cache_dir / "sweep-logs" / time.strftime("%Y%m%d-%H%M%S")
    jobs, shards = submit(todo, options, folder)
    print(
        f"submitted {len(jobs)} job(s) to {options.executor}: {', '.join(j.job_id for j in jobs)}; logs: {folder}"
    )
    if not options.wait:
        return 0
    outcomes = wait(jobs, shards)
    failed = [o for o in outcomes if not o.ok]
    print(f"{'done':<14} {len(outcomes) - len(failed)}")
    print(f"{'cached before':<14} {len(tasks) - len(todo)}")
    print(f"{'failed':<14} {len(failed)}")
    for o in failed:
        print(f"  {o.label}: {o.error} (log: {o.log})")
    (folder / "outcomes.json").write_text(json.dumps([dataclasses.asdict(o) for o in outcomes], indent=1))
    return 1 if failed else 0


def computed_on(profile: str, pages: list[str] | None = None):
    """Where the cached runs and kernels of `profile`'s pages were computed: one row per (kind, device,
    device name, torch, CUDA) with its count; tasks not in the cache are counted as "not computed yet"."""
    import numpy as np
    import pandas as pd

    from .book.build import notebook_pages
    from .data.download import ensure_book_data

    rows = []
    for task in profile_tasks(
        profile, pages or notebook_pages(), ensure_book_data(), resolve_cache_dir(None)
    ):
        env = {}
        if task.cached():
            if task.kind == "run":
                env = json.loads((task.path() / "metrics.json").read_text()).get("environment") or {}
            else:
                with np.load(task.path()) as z:
                    env = json.loads(str(z["environment"])) if "environment" in z.files else {}
        where = (env.get("device", "not computed yet"), env.get("device_name", "–"))
        rows.append((task.kind, *where, env.get("torch", "–"), env.get("cuda") or "–"))
    table = pd.DataFrame(rows, columns=["kind", "device", "device name", "torch", "CUDA"])
    return table.value_counts().rename("count").reset_index()
