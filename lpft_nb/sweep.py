"""Precompute a profile's runs and kernels as a job array on submitit: local workers or a Slurm cluster.

``python -m lpft_nb sweep --profile P [--pages ...] --executor local|slurm [--workers N] ...`` lists every
training run and kernel that the profile's pages ask for (`book.plans.page_plan`, the code the pages
themselves call), skips what the cache holds and (on Slurm) what an earlier sweep's jobs are still computing,
submits the rest, waits with a progress bar and ends with a table: done, cached before, failed (each failure
with the log that holds its traceback). Every job writes into the shared cache folder; entries are written
atomically, so concurrent writers are safe. Afterwards ``book --profile P`` trains nothing.

On Slurm the sweep asks `squeue` (and `sacct` where accounting runs), never submitit's watcher, and always
ends: a job that left the queue without a result is failed, after `grace_s`, with the state Slurm last
reported; `max_wait_min` bounds the whole wait. Submitted tasks are recorded in
``<cache>/sweep-jobs.json`` (task key -> job id and log folder), so a second sweep waits for them instead of
submitting them again; a record whose job has left the queue is dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import json
import os
import re
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .book.params import check_profile_name
from .book.plans import Task, profile_tasks
from .config import ConfigError, resolve_cache_dir

LEDGER = "sweep-jobs.json"
# squeue states of a job that may still write its result (any other state is final)
ACTIVE_STATES = {
    "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
    "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
}  # fmt: skip


class SlurmError(ConfigError):
    """Slurm is missing, does not answer, or refused a submission: one line with Slurm's own message."""


class TasksFailed(RuntimeError):
    """Raised at the end of a job whose tasks failed, so that the job exits non-zero (FAILED in sacct)."""


@dataclass
class Outcome:
    label: str
    ok: bool
    seconds: float
    error: str = ""
    log: str = ""


def run_tasks(tasks: list[Task], threads: int) -> list[Outcome]:
    """Execute `tasks` one after another in this process (a job of the array) on `threads` torch threads; a
    failing task is recorded with its error and the others still run. The outcomes go to the job's
    ``<job id>_outcomes.json`` in the log folder; the job then raises `TasksFailed` if any task failed."""
    import submitit
    import torch

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
    env = submitit.JobEnvironment()
    path = _outcomes_path(env.paths.folder, str(env.job_id))
    tmp = path.with_suffix(".tmp")  # the sweep reads the file once it exists: written whole, then renamed
    tmp.write_text(json.dumps([dataclasses.asdict(o) for o in outcomes]))
    os.replace(tmp, path)
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise TasksFailed(f"{len(failed)} of {len(outcomes)} task(s) failed: {failed[0].error}")
    return outcomes


def _outcomes_path(folder: Path, job_id: str) -> Path:
    return Path(folder) / f"{job_id}_outcomes.json"


@dataclass
class SweepOptions:
    executor: str = "local"
    workers: int = 2
    slurm_partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int = 1
    timeout_min: int = 240
    array_parallelism: int = 32
    mem: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch: dict = field(default_factory=dict)  # extra #SBATCH lines: key -> value (True for a flag)
    wait: bool = True
    max_wait_min: float | None = None
    grace_s: float = 30.0
    poll_s: float = 2.0

    def slurm_only(self) -> list[str]:
        """The Slurm options that are set (refused with the local executor)."""
        names = ("slurm_partition", "mem", "account", "qos", "constraint", "sbatch")
        return ["--" + n.replace("slurm_", "slurm-") for n in names if getattr(self, n)]

    def check(self) -> None:
        if self.executor not in ("local", "slurm"):
            raise ConfigError(f"--executor {self.executor!r}: valid: local, slurm")
        if self.executor == "local" and self.slurm_only():
            raise ConfigError(
                f"{', '.join(self.slurm_only())}: Slurm options; use them with --executor slurm"
            )
        for name in ("workers", "cpus_per_job", "timeout_min", "array_parallelism"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be >= 1")
        if self.gpus_per_job < 0:
            raise ConfigError(f"--gpus-per-job {self.gpus_per_job}: must be >= 0")
        if self.max_wait_min is not None and self.max_wait_min <= 0:
            raise ConfigError(f"--max-wait {self.max_wait_min}: must be > 0 minutes")
        if self.grace_s < 0:
            raise ConfigError(f"--grace-s {self.grace_s}: must be >= 0")


def parse_sbatch(items: list[str]) -> dict:
    """``--sbatch KEY=VALUE`` (or ``KEY`` for a flag) items as submitit's `slurm_additional_parameters`."""
    extra = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not key or (eq and not value):
            raise ConfigError(f"--sbatch {item!r}: expected KEY=VALUE (an sbatch option without --) or KEY")
        extra[key] = value if eq else True
    return extra


def _slurm(*args: str) -> subprocess.CompletedProcess:
    """Run a Slurm command; SlurmError (one line) when it is not installed."""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise SlurmError(f"Slurm not found: no `{args[0]}` on PATH (use --executor local)") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"`{' '.join(args)}` did not answer in 60 s") from None


def _one_line(stderr: str) -> str:
    """Slurm's message on one line: its lines joined, without the `sbatch: error: ` prefixes."""
    lines = [re.sub(r"^\S+: error: ", "", line).strip() for line in stderr.strip().splitlines()]
    return "; ".join(line for line in lines if line) or "no message"


def check_slurm() -> str:
    """Fail with one line unless `sbatch` is installed and the controller answers `sinfo`; returns
    sbatch's version."""
    version = _slurm("sbatch", "--version")
    if version.returncode:
        raise SlurmError(f"sbatch --version: {_one_line(version.stderr)}")
    info = _slurm("sinfo", "-h", "-o", "%P")
    if info.returncode:
        raise SlurmError(f"sinfo: {_one_line(info.stderr)}")
    return version.stdout.strip()


def slurm_states(job_ids: list[str]) -> dict[str, str] | None:
    """squeue's state of each job still known to the controller (finished ones for MinJobAge, 300 s by
    default); None when squeue did not answer (then nothing is concluded)."""
    if not job_ids:
        return {}
    arrays = sorted({j.split("_")[0] for j in job_ids})
    done = _slurm("squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j", ",".join(arrays))
    if done.returncode:
        return {} if "Invalid job id" in done.stderr else None
    return dict(line.split("|", 1) for line in done.stdout.split())


def sacct_state(job_id: str) -> str | None:
    """sacct's state of `job_id` (an array element, e.g. ``12_3``; elements cancelled while pending are only
    listed as a range such as ``12_[3-8]``); None without accounting or record."""
    array, _, index = job_id.partition("_")
    found = _slurm("sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", array)
    for line in found.stdout.split() if not found.returncode else []:
        listed, state = line.split("|", 1)
        if listed == job_id or (index and listed.startswith(array + "_[") and _in_range(index, listed)):
            return state.split()[0]
    return None


def _in_range(index: str, listed: str) -> bool:
    """Whether array index `index` is in sacct's range ``12_[0,3-5%4]``."""
    for part in listed.split("[", 1)[1].rstrip("]").split("%")[0].split(","):
        low, _, high = part.partition("-")
        if int(low) <= int(index) <= int(high or low):
            return True
    return False


def task_key(task: Task) -> str:
    return hashlib.sha256(json.dumps([task.kind, task.settings], default=str).encode()).hexdigest()[:20]


@contextlib.contextmanager
def _ledger(cache_dir: Path):
    """The records of submitted tasks (task key -> job id, log folder, label), locked for read-modify-write;
    what the block leaves in the dict is written back atomically."""
    path = cache_dir / LEDGER
    with open(cache_dir / (LEDGER + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        records = json.loads(path.read_text()) if path.is_file() else {}
        yield records
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(records, indent=1))
        os.replace(tmp, path)


@dataclass
class Submitted:
    """One job of the array and its tasks; its logs are ``<folder>/<job_id>_0_log.{out,err}``."""

    job_id: str
    folder: Path
    tasks: list[Task]
    handle: object = dataclasses.field(default=None, repr=False)  # the submitit job (local executor)

    @property
    def log(self) -> str:
        from submitit.core.utils import JobPaths

        return str(JobPaths(self.folder, job_id=self.job_id, task_id=0).stderr)

    def outcomes(self) -> list[Outcome] | None:
        """The outcomes the job wrote, None while it has written none."""
        path = _outcomes_path(self.folder, self.job_id)
        if not path.is_file():
            return None
        return [Outcome(**{**o, "log": self.log}) for o in json.loads(path.read_text())]


def in_flight(cache_dir: Path, tasks: list[Task]) -> list[Submitted]:
    """The jobs of earlier sweeps that Slurm still lists as pending or running, with those of `tasks` they
    compute; records of every other job are dropped from the ledger."""
    with _ledger(cache_dir) as records:
        states = slurm_states(sorted({r["job_id"] for r in records.values()}))
        if states is None:
            raise SlurmError("squeue did not answer: cannot tell which recorded jobs still run")
        for key in [k for k, r in records.items() if states.get(r["job_id"]) not in ACTIVE_STATES]:
            del records[key]
        jobs: dict[str, Submitted] = {}
        for task in tasks:
            record = records.get(task_key(task))
            if record:
                job = jobs.setdefault(
                    record["job_id"], Submitted(record["job_id"], Path(record["folder"]), [])
                )
                job.tasks.append(task)
        return list(jobs.values())


def _executor(options: SweepOptions, folder: Path):
    import submitit

    if options.executor == "local":
        executor = submitit.AutoExecutor(folder=folder, cluster="local")
        executor.update_parameters(timeout_min=options.timeout_min, gpus_per_node=options.gpus_per_job)
        return executor
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    named = {"partition": options.slurm_partition, "mem": options.mem, "account": options.account}
    named |= {"qos": options.qos, "constraint": options.constraint}
    executor.update_parameters(
        timeout_min=options.timeout_min,
        gpus_per_node=options.gpus_per_job,
        cpus_per_task=options.cpus_per_job,
        slurm_array_parallelism=options.array_parallelism,
        slurm_additional_parameters=options.sbatch,
        **{f"slurm_{k}": v for k, v in named.items() if v},
    )
    return executor


def submit(tasks: list[Task], options: SweepOptions, folder: Path) -> list[Submitted]:
    """Submit `tasks` as one job array: `workers` shards on the local executor (threads split between
    them), one task per job on Slurm (`cpus_per_job` threads). A refused submission is a SlurmError with
    sbatch's message."""
    from submitit.core.utils import FailedJobError

    if options.executor == "local":
        shards = [tasks[i :: options.workers] for i in range(options.workers)]
        shards = [s for s in shards if s]
        threads = max(1, (os.cpu_count() or 1) // len(shards))
    else:
        shards, threads = [[t] for t in tasks], options.cpus_per_job
    executor = _executor(options, folder)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # submitit prints sbatch's stderr, then raises it
            jobs = executor.map_array(run_tasks, shards, [threads] * len(shards))
    except FailedJobError as err:
        raise SlurmError(f"sbatch refused the job array: {_one_line(str(err))}") from None
    return [Submitted(job.job_id, folder, shard, job) for job, shard in zip(jobs, shards)]


@dataclass
class Waited:
    outcomes: list[Outcome]
    unfinished: list[Submitted]  # still queued or running when the wait ended (max_wait_min)


def wait(
    jobs: list[Submitted],
    options: SweepOptions,
    states: Callable[[list[str]], dict[str, str] | None],
    lookup: Callable[[str], str | None] | None = None,
) -> Waited:
    """Wait for every job with a progress bar over tasks (done ones; failures are a postfix). A job is
    finished when it wrote its outcomes; a job that `states` no longer reports active and that wrote none
    within `grace_s` is failed with the state last reported (else `lookup`'s). Stops after `max_wait_min`."""
    from tqdm import tqdm

    total = sum(len(j.tasks) for j in jobs)
    deadline = time.monotonic() + options.max_wait_min * 60 if options.max_wait_min else float("inf")
    pending = {j.job_id: j for j in jobs}
    last: dict[str, str] = {}
    gone_since: dict[str, float] = {}
    outcomes: list[Outcome] = []
    with tqdm(total=total, desc="sweep", unit="task") as bar:
        while pending:
            now, seen = time.monotonic(), states(list(pending))
            for job_id, job in list(pending.items()):
                written = job.outcomes()
                if written is None and seen is not None:
                    last[job_id] = seen.get(job_id, last.get(job_id, ""))
                    if seen.get(job_id) in ACTIVE_STATES:
                        gone_since.pop(job_id, None)
                    elif now - gone_since.setdefault(job_id, now) >= options.grace_s:
                        written = _died(job, last[job_id], lookup)
                if written is not None:
                    outcomes += written
                    del pending[job_id]
            done = sum(t.cached() for j in jobs for t in j.tasks)
            bar.update(max(0, done - bar.n))
            bar.set_postfix(failed=sum(not o.ok for o in outcomes), refresh=False)
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(options.poll_s)
    return Waited(outcomes, list(pending.values()))


def _died(job: Submitted, state: str, lookup: Callable[[str], str | None] | None) -> list[Outcome]:
    """The outcomes of a job that ended without writing any (killed, out of memory, timed out, cancelled):
    its last state, else the one `lookup` (sacct) finds."""
    state = state or (lookup(job.job_id) if lookup else None) or "unseen by the scheduler"
    reason = f"job {job.job_id} ended {state} without a result"
    return [Outcome(t.label, False, 0.0, reason, job.log) for t in job.tasks]


def local_states(jobs: list[Submitted]) -> Callable[[list[str]], dict[str, str]]:
    """The local executor's job states (RUNNING, FINISHED, INTERRUPTED) in `wait`'s form."""
    by_id = {job.job_id: job.handle for job in jobs}
    return lambda ids: {i: by_id[i].state for i in ids}


def sweep(profile: str, pages: list[str] | None, options: SweepOptions) -> int:
    """The `sweep` command. Returns an exit code: 1 when a task failed or the wait ended first, 130 on
    Ctrl-C while waiting (the jobs go on; the same command waits for them again)."""
    from .book.build import selected_pages
    from .data.download import ensure_book_data
    from .model.hub import resolve_model_path

    check_profile_name(profile)
    pages = selected_pages(pages)
    options.check()
    slurm = options.executor == "slurm"
    if slurm:
        check_slurm()
    data_dir, cache_dir = ensure_book_data(), resolve_cache_dir(None)
    tasks = profile_tasks(profile, pages, data_dir, cache_dir)
    for model in sorted({t.values["model"] for t in tasks}):  # fetched once, here, before any job starts
        resolve_model_path(model, str(cache_dir))
    todo = [t for t in tasks if not t.cached()]
    earlier = in_flight(cache_dir, todo) if slurm else []
    running = {task_key(t) for job in earlier for t in job.tasks}
    fresh = [t for t in todo if task_key(t) not in running]
    n_runs = sum(t.kind == "run" for t in tasks)
    print(
        f"sweep ({profile}): {n_runs} runs and {len(tasks) - n_runs} kernels; "
        f"{len(tasks) - len(todo)} in the cache ({cache_dir}), {len(running)} in flight, {len(fresh)} to compute"
    )
    if earlier:
        print(f"{len(running)} task(s) already in flight (not submitted again): jobs {_ids(earlier)}")
    if not fresh:
        print("nothing to submit")
        if not earlier:
            return 0
    folder = cache_dir / "sweep-logs" / time.strftime("%Y%m%d-%H%M%S")
    jobs = submit(fresh, options, folder) if fresh else []
    if jobs:
        print(f"submitted {len(jobs)} job(s) to {options.executor}: {_ids(jobs)}; logs: {folder}")
    if slurm:
        entries = {
            task_key(t): {"job_id": job.job_id, "folder": str(job.folder), "label": t.label}
            for job in jobs
            for t in job.tasks
        }
        with _ledger(cache_dir) as records:
            records.update(entries)
    if not options.wait:
        return 0
    jobs += earlier
    if not slurm:
        waited = wait(jobs, options, local_states(jobs))
    else:
        try:
            waited = wait(jobs, options, slurm_states, sacct_state)
        except KeyboardInterrupt:
            print(
                f"interrupted: the jobs go on ({_ids(jobs)}; `squeue --me` lists them); "
                "the same sweep command waits for them again, a later one skips what they computed",
            )
            return 130
        ended = {j.job_id for j in jobs} - {j.job_id for j in waited.unfinished}
        with _ledger(cache_dir) as records:
            for key in [k for k, r in records.items() if r["job_id"] in ended]:
                del records[key]
    outcomes, failed = waited.outcomes, [o for o in waited.outcomes if not o.ok]
    print(f"{'done':<14} {len(outcomes) - len(failed)}")
    print(f"{'cached before':<14} {len(tasks) - len(todo)}")
    print(f"{'failed':<14} {len(failed)}")
    for o in failed:
        print(f"  {o.label}: {o.error} (log: {o.log})")
    if waited.unfinished:
        n = sum(len(j.tasks) for j in waited.unfinished)
        print(
            f"{'unfinished':<14} {n} (--max-wait reached; left queued or running: {_ids(waited.unfinished)})"
        )
    if jobs and folder.is_dir():
        (folder / "outcomes.json").write_text(json.dumps([dataclasses.asdict(o) for o in outcomes], indent=1))
    return 1 if failed or waited.unfinished else 0


def _ids(jobs: list[Submitted]) -> str:
    """Job ids with an array's elements collapsed, e.g. ``12_[0-3,5], 15_[2]`` (local jobs: their PIDs)."""
    arrays: dict[str, list[int]] = {}
    for job in jobs:
        array, _, index = job.job_id.partition("_")
        arrays.setdefault(array, []).extend([int(index)] if index else [])
    return ", ".join(f"{a}_[{_ranges(sorted(idx))}]" if idx else a for a, idx in arrays.items())


def _ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5``."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


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
