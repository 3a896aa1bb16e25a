"""What a profile costs: its runs and kernels per page, and device-hours estimated from measured step times.

``python -m lpft_nb plan --profile P --estimate`` measures, on this machine's device, one training step and
feature extraction of the default model at length 128, scales them by the parameter count of the profile's
model, and multiplies by the work each run and kernel does (examples × epochs; backward passes). Lengths
are taken as 128 tokens, the cap: real inputs are shorter, so the estimate is an upper bound.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import platform
from dataclasses import dataclass
from pathlib import Path

from .bench import time_features, time_train_step
from .config import DEFAULT_MODEL, resolve_cache_dir
from .device import environment, resolve_device
from .runs.cache import code_key, memoize
from .sweep import Task

# Encoder parameters (no pooler) of models that may not be on this machine, to scale the measured times.
KNOWN_PARAMETERS = {"roberta-base": 124_645_632, "roberta-large": 355_359_744}
NTK_MEMORY_GIB = 5.0  # the Jacobian block budget `get_kernels` uses by default


def encoder_parameters(model: str) -> int:
    """The encoder's parameter count: from its config when the model is available here, else known."""
    if model in KNOWN_PARAMETERS:
        return KNOWN_PARAMETERS[model]
    from .model.classifier import load_encoder

    return sum(p.numel() for p in load_encoder(model).parameters())


@dataclass
class Costs:
    """Measured on this machine with `model`: seconds per training example (FT and LoRA, in batches of
    8), seconds per example of prediction (batches of 32), at length 128."""

    model: str
    device: str
    parameters: int
    ft_example_s: float
    lora_example_s: float
    predict_example_s: float
    measured_on: str = ""  # the date of the timing (ISO)

    def scaled(self, model: str) -> float:
        return encoder_parameters(model) / self.parameters


def measure_costs(
    model: str = DEFAULT_MODEL, device: str = "auto", repeats: int = 2, refresh: bool = False
) -> Costs:
    """`Costs` timed on this machine, memoised in the cache (``estimate/``) under the host, its CPU, the
    device, torch, threads, `model`, `repeats` and the timing code, so that a rebuild does not time again;
    `refresh` times anew."""
    dev = resolve_device(device)
    machine = {**environment(dev), "host": platform.node(), "cpu": _cpu_model()}
    arguments = json.dumps({"model": model, "repeats": repeats, **machine}, sort_keys=True)
    name = f"costs-{hashlib.sha256(arguments.encode()).hexdigest()[:12]}-{code_key(time_train_step, time_features, _timed)}"
    values, _ = memoize(
        resolve_cache_dir(None) / "estimate" / f"{name}.json",
        lambda: _timed(model, dev, repeats),
        refresh=refresh,
    )
    return Costs(**values)


def _timed(model: str, dev, repeats: int) -> dict:
    return {
        "model": model,
        "device": str(dev),
        "parameters": encoder_parameters(model),
        "ft_example_s": time_train_step(model, False, 8, 128, repeats, device=dev) / 8,
        "lora_example_s": time_train_step(model, True, 8, 128, repeats, device=dev) / 8,
        "predict_example_s": 1.0 / time_features(model, 32, 128, repeats, device=dev),
        "measured_on": datetime.date.today().isoformat(),
    }


def _cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def task_seconds(task: Task, costs: Costs) -> float:
    """Estimated seconds of one run or kernel on the measured device."""
    v = task.values
    scale = costs.scaled(v["model"])
    if task.kind == "run":
        data = task.data()
        n_train, n_val = len(data.train.labels), len(data.val.labels)
        n_eval = sum(len(s.labels) for s in data.eval_splits().values())
        n_features = len(data.test.labels) + sum(len(s.labels) for s in data.ood.values())
        predict = n_eval + n_features + (n_train if v["method"] in ("lp", "lp_ft", "lp_lora") else 0)
        seconds = predict * costs.predict_example_s
        if v["method"] != "lp":
            per_example = costs.lora_example_s if "lora" in v["method"] else costs.ft_example_s
            seconds += v["epochs"] * (n_train * per_example + n_val * costs.predict_example_s)
        return seconds * scale
    # a kernel: C backward passes per example and parameter group, each about one training example's cost
    classes = task.data().num_classes
    examples = 2 * v["n"]
    rows = examples * classes
    parameters = encoder_parameters(v["model"]) if "lora" not in v["setting"] else 0
    groups = max(1, math.ceil(4 * parameters * rows / (NTK_MEMORY_GIB * 2**30)))
    per_pass = costs.lora_example_s if "lora" in v["setting"] else costs.ft_example_s
    return rows * groups * per_pass * scale


def estimate_table(tasks_by_page: dict[str, list[Task]], costs: Costs) -> list[tuple[str, int, int, float]]:
    """(page, runs, kernels, device-hours) per page, and a last row for the whole profile (each task once:
    pages share runs through the cache)."""
    seconds: dict[tuple, float] = {}  # by (kind, settings): the same run listed by two pages counts once
    rows = []
    for page, tasks in tasks_by_page.items():
        for t in tasks:
            if (t.kind, t.settings) not in seconds:
                seconds[t.kind, t.settings] = task_seconds(t, costs)
        runs = sum(t.kind == "run" for t in tasks)
        rows.append((page, runs, len(tasks) - runs, sum(seconds[t.kind, t.settings] for t in tasks) / 3600))
    unique = list(seconds)
    runs = sum(kind == "run" for kind, _ in unique)
    rows.append(("all pages (shared once)", runs, len(unique) - runs, sum(seconds.values()) / 3600))
    return rows


def tasks_by_page(profile: str, pages: list[str] | None = None) -> dict[str, list[Task]]:
    """The runs and kernels of each page of `profile` that computes any (as `sweep` lists them)."""
    from .book.build import check_plans, notebook_pages
    from .book.plans import profile_tasks
    from .data.download import ensure_book_data

    pages = pages or notebook_pages()
    check_plans(profile, pages)  # a value a page's plan rejects: one line, before the data are fetched
    data_dir, cache_dir = ensure_book_data(), resolve_cache_dir(None)
    by_page = {p: profile_tasks(profile, [p], data_dir, cache_dir) for p in pages}
    return {p: t for p, t in by_page.items() if t}


def profile_estimate(profile: str, pages: list[str] | None = None, device: str = "auto", repeats: int = 2):
    """(Costs, table): runs, kernels and estimated device-hours per page of `profile` on this machine's
    `device` (a DataFrame with a last row for the whole profile)."""
    import pandas as pd

    by_page = tasks_by_page(profile, pages)
    costs = measure_costs(device=device, repeats=repeats)
    rows = estimate_table(by_page, costs)
    return costs, pd.DataFrame(rows, columns=["page", "runs", "kernels", "device-hours"])
