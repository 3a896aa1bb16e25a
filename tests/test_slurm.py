"""The sweep on a real Slurm: `.ci/slurm-up` starts a one-node cluster with accounting, `.ci/run` runs
``python -m pytest -q -m slurm tests/test_slurm.py``. Skipped where no Slurm answers, so the README's plain
``python -m pytest -q`` needs none. Every Slurm call and sweep has a timeout; the smoke profile's
``boss_ood`` page (9 runs of a tiny random model) is the work."""

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from lpft_nb.book.build import all_computed
from lpft_nb.book.plans import Task, _frozen
from lpft_nb.config import RunConfig
from lpft_nb.sweep import LEDGER, SweepOptions, sacct_state, slurm_states, submit, wait


def _slurm_up() -> bool:
    """Whether a Slurm node answers in a state that takes jobs."""
    try:
        found = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return bool({"idle", "mixed", "allocated", "completing"} & set(found.stdout.split()))


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not _slurm_up(), reason="no Slurm node answers (.ci/slurm-up starts one)"),
]
PAGES = ["--profile", "smoke", "--pages", "boss_ood"]
N_TASKS = 9


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("slurm") / "cache"


@pytest.fixture
def env(cache, monkeypatch):
    monkeypatch.setenv("LPFT_CACHE_DIR", str(cache))
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    import os

    return dict(os.environ)


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "lpft_nb", "sweep", *PAGES, "--executor", "slurm", "--grace-s", "3", *args]


def _sweep(env, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    done = subprocess.run(_command(*args), env=env, capture_output=True, text=True, timeout=timeout)
    print(
        f"$ sweep {' '.join(args)}  (exit {done.returncode})\n{done.stdout}{done.stderr}"
    )  # shown on failure
    return done


class Background:
    """A sweep in the background; its output (stdout and stderr) read by a thread, so no pipe fills up."""

    def __init__(self, env, *args: str):
        self.proc = subprocess.Popen(
            _command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue = queue.Queue()
        self.seen = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, text: str, timeout: float = 60) -> str:
        """The output so far, once a line contains `text` (fails after `timeout` s or at the end)."""
        deadline = time.monotonic() + timeout
        while text not in self.seen and time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.seen += line
        assert text in self.seen, self.seen
        return self.seen

    def finish(self, timeout: float) -> str:
        """The whole output, once the sweep exited (killed after `timeout` s)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        for line in iter(self.lines.get, None):
            self.seen += line
        print(f"$ sweep (exit {self.proc.returncode})\n{self.seen}")  # shown on failure
        return self.seen


def _array(output: str) -> str:
    return re.search(r"to slurm: (\d+)_\[", output).group(1)


def test_a_refused_submission_is_one_line_and_exit_2(env):
    for args, message in [
        (["--slurm-partition", "nope"], "invalid partition specified: nope"),
        (["--mem", "999999G"], "Requested node configuration is not available"),
    ]:
        done = _sweep(env, *args)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("error: sbatch refused the job array: ") and message in done.stderr


def test_a_second_sweep_waits_for_the_jobs_in_flight_and_ends_when_they_are_cancelled_pending(env, cache):
    first = _sweep(env, "--no-wait", "--sbatch", "begin=now+600")  # held pending for 10 minutes
    assert first.returncode == 0 and f"submitted {N_TASKS} job(s)" in first.stdout, first.stderr
    array = _array(first.stdout)
    elements = [f"{array}_{i}" for i in range(N_TASKS)]
    second = Background(env)
    seen = second.until("nothing to submit")
    assert f"{N_TASKS} task(s) already in flight (not submitted again): jobs {array}_[0-8]" in seen
    time.sleep(1)  # into its wait
    second.proc.send_signal(signal.SIGINT)  # Ctrl-C: the jobs go on
    assert "interrupted: the jobs go on" in second.finish(timeout=30) and second.proc.returncode == 130
    assert list(slurm_states(elements).values()) == ["PENDING"] * N_TASKS
    second = Background(env)
    second.until("nothing to submit")  # it waits for them again
    subprocess.run(["scancel", array], check=True, timeout=30)
    start = time.monotonic()
    out = second.finish(timeout=60)
    assert second.proc.returncode == 1 and f"failed         {N_TASKS}" in out
    assert out.count(f"ended CANCELLED without a result (log: {cache}") == N_TASKS
    assert time.monotonic() - start < 30  # the grace period (3 s) and a few polls, not forever
    assert json.loads((cache / LEDGER).read_text()) == {}  # their records are gone: the next sweep submits


def test_a_sweep_computes_a_page_a_killed_task_fails_and_a_rerun_completes_it(env, cache):
    sweep = Background(env)
    array = _array(sweep.until("submitted"))
    killed, deadline = None, time.monotonic() + 120
    while killed is None and time.monotonic() < deadline:  # the first element seen running is killed
        running = [
            j for j, s in slurm_states([f"{array}_{i}" for i in range(N_TASKS)]).items() if s == "RUNNING"
        ]
        killed = running[0] if running else None
        time.sleep(0.2)
    assert killed, "no job of the array started in 120 s"
    subprocess.run(["scancel", "--signal=KILL", killed], check=True, timeout=30)
    out = sweep.finish(timeout=300)
    assert (
        sweep.proc.returncode == 1 and f"done           {N_TASKS - 1}" in out and "failed         1" in out
    ), out
    assert re.search(rf"ended CANCELLED without a result \(log: \S+/{killed}_0_log.err\)", out)
    assert sacct_state(killed) == "CANCELLED"  # scancel --signal=KILL: Slurm records who ended it
    again = _sweep(env, timeout=180)
    assert again.returncode == 0 and "1 to compute" in again.stdout and "done           1" in again.stdout
    assert all_computed("smoke", ["boss_ood"])  # the book trains nothing now


def test_a_failing_task_fails_its_job_and_names_the_log_with_the_traceback(env, tmp_path):
    values = {"model": "tiny-random-bert", "max_train": 16, "max_eval": 8, "max_length": 32, "epochs": 1}
    bad = RunConfig.from_dict({**values, "dataset": "cb", "data_dir": str(tmp_path / "no-data")})
    options = SweepOptions(executor="slurm", poll_s=0.5, grace_s=3, max_wait_min=1.5)
    jobs = submit([Task("run", _frozen(bad.to_dict()))], options, tmp_path / "logs")
    waited = wait(jobs, options, slurm_states, sacct_state)
    [outcome] = waited.outcomes
    assert not outcome.ok and "DataError" in outcome.error and outcome.log.endswith("_log.err")
    assert "Traceback" in open(outcome.log).read()
    deadline = time.monotonic() + 30  # the job's final state reaches the accounting database
    while sacct_state(jobs[0].job_id) != "FAILED" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sacct_state(jobs[0].job_id) == "FAILED"
