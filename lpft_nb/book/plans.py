"""What each page computes, from its parameters: its training runs (`Study`) and its kernels (`KernelSpec`).

A page builds everything it trains or kernelises through ``plan = lp.page_plan("<page>", globals())``;
``python -m lpft_nb sweep`` and ``plan --estimate`` call the same function with a profile's parameters, so
what a cluster precomputes is exactly what the pages then load from the cache.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis.kernels import (
    KernelResult,
    KernelSpec,
    get_kernels,
    grid_specs,
    kernel_path,
    load_kernels,
    setting_label,
)
from ..analysis.lora import rank_sweep_requests
from ..analysis.lp_causes import check_lp_cause_parameters
from ..config import PAPER_HPARAMS, RunConfig, lp_label
from ..data.tasks import load_task
from ..runs.grid import Study
from ..runs.run import get_run, run_entry_path
from .params import BOOK_DIR, check_profile, page_parameters

# Page parameters that are run settings shared by every run of a page (when the page has them).
RUN_SETTING_PARAMETERS = (
    "model",
    "epochs",
    "max_train",
    "max_eval",
    "max_per_class",
    "max_length",
    "precision",
)


@dataclass
class PagePlan:
    """A page's studies (by name) and kernel specs (by name, then dataset), not yet computed."""

    page: str
    studies: dict[str, Study] = field(default_factory=dict)
    kernel_specs: dict[str, dict[str, list[KernelSpec]]] = field(default_factory=dict)

    def study(self, name: str = "main") -> Study:
        """The study `name`, trained or loaded from the cache."""
        return self.studies[name].run()

    def kernel_list(self, name: str = "main") -> dict[str, list[KernelResult]]:
        """dataset → the kernels of `name` in spec order, computed or loaded from the cache."""
        return {dataset: load_kernels(specs) for dataset, specs in self.kernel_specs[name].items()}

    def kernels(self, name: str = "main") -> dict[str, dict[str, KernelResult]]:
        """dataset → {setting label → kernel} of `name` (as the tables and figures take them)."""
        return {
            dataset: {setting_label(r.spec): r for r in results}
            for dataset, results in self.kernel_list(name).items()
        }

    def kernels_over_seeds(self, name: str = "main") -> dict[str, list[dict[str, KernelResult]]]:
        """dataset → one {setting label → kernel} per kernel seed: `name` (the first seed) and then the
        groups `name@<seed>` that `_over_seeds` made, in seed order."""
        names = [name, *(k for k in self.kernel_specs if k.startswith(f"{name}@"))]
        by_name = [self.kernels(k) for k in names]
        return {dataset: [kernels[dataset] for kernels in by_name] for dataset in by_name[0]}

    def configs(self) -> list[RunConfig]:
        """Every training run of the page, each once."""
        seen: dict[str, RunConfig] = {}
        for study in self.studies.values():
            for cfg in study.configs():
                seen.setdefault(cfg.model_dump_json(), cfg)
        return list(seen.values())

    def all_kernel_specs(self) -> list[KernelSpec]:
        """Every kernel of the page, each once."""
        seen: dict[KernelSpec, None] = {}
        for by_dataset in self.kernel_specs.values():
            for specs in by_dataset.values():
                seen.update(dict.fromkeys(specs))
        return list(seen)


def run_settings(p: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The run settings among a page's parameters (model, epochs, caps, length), plus `extra`."""
    return {**{k: p[k] for k in RUN_SETTING_PARAMETERS if k in p}, **extra}


def _main_study(p: Mapping[str, Any], datasets=None) -> Study:
    return Study(
        datasets=list(datasets or p["datasets"]),
        methods=list(p["methods"]),
        seeds=list(p["seeds"]),
        lp_Cs=list(p["lp_Cs"]),
        settings=run_settings(p),
    )


def _sst2_studies(p: Mapping[str, Any]) -> dict[str, Study]:
    """{"sst2": the SST-2 grid} when the page's `sst2_methods` is not empty: its own caps (training phrases,
    training and validation examples per class, and validation and test examples: the test set is GLUE's
    872-sentence dev set, kept whole by `sst2_max_eval`), the first LP regularisation, the page's seeds."""
    if not p.get("sst2_methods"):
        return {}
    settings = run_settings(
        p, max_train=p["sst2_max_train"], max_per_class=p["sst2_max_per_class"], max_eval=p["sst2_max_eval"]
    )
    study = Study(
        ["sst2"], list(p["sst2_methods"]), list(p["seeds"]), list(p["lp_Cs"][:1]), settings=settings
    )
    return {"sst2": study}


def _scaling_study(p: Mapping[str, Any], dataset: str, **extra: Any) -> Study:
    """FT and LP-FT from heads multiplied by each of `head_scales` (LP with the first regularisation)."""
    return Study(
        datasets=[dataset],
        methods=["ft", "lp_ft"],
        seeds=list(p["scaling_seeds"]),
        lp_Cs=list(p["lp_Cs"][:1]),
        head_scales=list(p["head_scales"]),
        settings=run_settings(p, **extra),
    )


def _kernel_args(p: Mapping[str, Any]) -> dict[str, Any]:
    return {"n": p["n"], "model": p["model"], "max_train": p["max_train"], "max_length": p["max_length"]}


def _over_seeds(name: str, seeds: list[int], make: Callable[[int], dict]) -> dict[str, dict]:
    """Kernel groups of one kind over `seeds`: `name` for the first seed (what tables and figures show),
    `name@<seed>` for each other seed (what the checks add); `make(seed)` gives dataset → specs."""
    return {name: make(seeds[0]), **{f"{name}@{seed}": make(seed) for seed in seeds[1:]}}


def _training_page(p: Mapping[str, Any]) -> PagePlan:
    return PagePlan("", studies={"main": _main_study(p)})


def _dynamics(p: Mapping[str, Any]) -> PagePlan:
    """The main grid, and LP on each full training split (its frozen features feed the LP-cause tests).
    The LP-cause parameters are checked here, before any training."""
    check_lp_cause_parameters(p["cosine_targets"], p["spectrum_powers"], p["lp_sizes"], p["cause_replicates"])
    full = Study(
        datasets=list(p["cause_datasets"]),
        methods=["lp"],
        seeds=list(p["seeds"][:1]),
        lp_Cs=["cv"],
        settings=run_settings(p, max_train=None),
    )
    return PagePlan("dynamics", studies={"main": _main_study(p), "full_lp": full, **_sst2_studies(p)})


def _controlled_study(p: Mapping[str, Any], dataset: str) -> Study:
    """FT and LP-FT with FT's learning rate and batch size (paper Table 6), so the same steps: only the
    starting head differs. Its FT runs are the main grid's (the same settings, so the same cache entries)."""
    batch_size, lr = PAPER_HPARAMS["ft"][dataset]
    return Study(
        datasets=[dataset],
        methods=["ft", "lp_ft"],
        seeds=list(p["seeds"]),
        lp_Cs=list(p["lp_Cs"]),
        settings=run_settings(p, lr=lr, batch_size=batch_size),
    )


def _norms(p: Mapping[str, Any]) -> PagePlan:
    """The main grid; the head-scaling sweep under the paper's rates and again with LP-FT at FT's rate and
    batch size (its FT runs are the first sweep's); the controlled FT/LP-FT comparison per dataset."""
    dataset = p["scaling_dataset"]
    batch_size, lr = PAPER_HPARAMS["ft"][dataset]
    studies = {
        "main": _main_study(p),
        "scaling": _scaling_study(p, dataset, scale_bias=p["scale_bias"]),
        "controlled-scaling": _scaling_study(
            p, dataset, scale_bias=p["scale_bias"], lr=lr, batch_size=batch_size
        ),
        **{f"controlled-{d}": _controlled_study(p, d) for d in p["datasets"]},
        **_norm_direction_studies(p, dataset),
        **_sst2_studies(p),
    }
    return PagePlan("norms", studies=studies)


def _norm_direction_studies(p: Mapping[str, Any], dataset: str) -> dict[str, Study]:
    """FT from the random head rescaled to the LP head's norm, and LP-FT from the LP head rescaled to the
    random head's norm, at FT's learning rate and batch size (their partners are `controlled-<dataset>`)."""
    batch_size, lr = PAPER_HPARAMS["ft"][dataset]

    def rescaled(method: str, target: str) -> Study:
        return Study(
            datasets=[dataset],
            methods=[method],
            seeds=list(p["seeds"]),
            lp_Cs=list(p["lp_Cs"][:1]),
            settings=run_settings(p, lr=lr, batch_size=batch_size, head_norm_to=target),
        )

    return {
        f"controlled-{dataset}": _controlled_study(p, dataset),
        "ft-at-lp-norm": rescaled("ft", "lp"),
        "lp-ft-at-random-norm": rescaled("lp_ft", "random"),
    }


def _ntk(p: Mapping[str, Any]) -> PagePlan:
    args = {**_kernel_args(p), "lora_alpha": p["lora_alpha"]}

    def specs(seed: int) -> dict:
        return {d: grid_specs(d, p["kernel_settings"], p["lp_Cs"], seed=seed, **args) for d in p["datasets"]}

    return PagePlan("ntk", kernel_specs=_over_seeds("main", list(p["kernel_seeds"]), specs))


def _lora(p: Mapping[str, Any]) -> PagePlan:
    args = _kernel_args(p)
    seeds = list(p["kernel_seeds"])
    first_C = p["lp_Cs"][:1]
    rank_studies, rank_specs = rank_sweep_requests(
        p["rank_dataset"], p["ranks"], p["seeds"], run_settings(p), {**args, "seed": seeds[0]}
    )

    def main(seed: int) -> dict:
        settings = ["ft", "lora", "lp_ft", "lp_lora"]
        return {
            d: grid_specs(d, settings, first_C, lora_alpha=p["lora_alpha"], seed=seed, **args)
            for d in p["datasets"]
        }

    def query_value(seed: int) -> dict:
        return {
            d: grid_specs(d, ["ft", "lp_ft"], first_C, params="query_value", seed=seed, **args)
            for d in p["datasets"]
        }

    return PagePlan(
        "lora",
        studies={"main": _main_study(p), **{f"rank-{r}": s for r, s in rank_studies.items()}},
        kernel_specs={
            **_over_seeds("main", seeds, main),
            **_over_seeds("query_value", seeds, query_value),
            "ranks": {p["rank_dataset"]: rank_specs},
        },
    )


def _boss_ood(p: Mapping[str, Any]) -> PagePlan:
    return PagePlan(
        "boss_ood",
        studies={"main": _main_study(p, datasets=["amazon"]), "scaling": _scaling_study(p, "amazon")},
    )


PLANS: dict[str, Callable[[Mapping[str, Any]], PagePlan]] = {
    "dynamics": _dynamics,
    "norms": _norms,
    "ntk": _ntk,
    "calibration": _training_page,
    "lora": _lora,
    "boss_ood": _boss_ood,
    "claims": lambda p: PagePlan("claims"),
}


def page_plan(page: str, parameters: Mapping[str, Any]) -> PagePlan:
    """The studies and kernels of `page` for its `parameters` (a page passes ``globals()``)."""
    if page not in PLANS:
        raise KeyError(f"no plan for page {page!r}; pages with plans: {', '.join(PLANS)}")
    plan = PLANS[page](parameters)
    plan.page = page
    return plan


# ---- a profile's runs and kernels, as tasks (sweep, plan --estimate, book's concurrency) ----------
_PLAN_CALL = re.compile(r"""page_plan\(\s*["']([a-z_]+)["']""")


@dataclass(frozen=True)
class Task:
    """One unit of a sweep: a training run or a kernel, with the settings that define it."""

    kind: str  # "run" or "kernel"
    settings: tuple  # sorted (key, value) pairs of a RunConfig or a KernelSpec
    pages: tuple = ()

    @property
    def values(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.settings}

    def config(self) -> RunConfig | KernelSpec:
        return RunConfig.from_dict(self.values) if self.kind == "run" else KernelSpec(**self.values)

    @property
    def label(self) -> str:
        c = self.config()
        if self.kind == "run":
            extra = f" {lp_label(c.lp_C)}" if c.uses_lp_head else ""
            scale = f" head × {c.head_scale:g}" if c.head_scale != 1 else ""
            return f"run {c.dataset} {c.method} seed {c.seed}{extra}{scale}"
        rank = f" r = {c.lora_r}" if "lora" in c.setting else ""
        return f"kernel {c.dataset} {setting_label(c)} {c.params}{rank} n = {c.n}"

    def data(self):
        """The task's data as its run or kernel loads it (read once per process for each configuration)."""
        v = self.values
        if self.kind == "run":
            caps = (v["max_train"], v["max_eval"], v["max_per_class"], v["subset_seed"])
        else:  # a kernel loads its dataset capped at max_train only
            caps = (v["max_train"], None, None, 0)
        return _loaded_task(v["dataset"], v["data_dir"], *caps)

    def path(self) -> Path:
        """Where the cache holds (or would hold) the result."""
        c = self.config()
        return run_entry_path(c, self.data()) if self.kind == "run" else kernel_path(c, self.data())

    def cached(self) -> bool:
        """Whether the cache holds the result (False when its key cannot be computed, e.g. missing data:
        the job then reports why)."""
        try:
            if self.kind == "run":  # a complete entry, as `runs.run.is_cached` reads it
                return bool(json.loads((self.path() / "meta.json").read_text()).get("complete"))
            return self.path().is_file()
        except Exception:
            return False

    def execute(self) -> None:
        c = self.config()
        get_run(c, progress=False) if self.kind == "run" else get_kernels(c)


@functools.cache
def _loaded_task(dataset, data_dir, max_train, max_eval, max_per_class, subset_seed):
    return load_task(
        dataset,
        data_dir,
        max_train=max_train,
        max_eval=max_eval,
        max_per_class=max_per_class,
        subset_seed=subset_seed,
    )


def _frozen(values: dict) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items()))


def plan_name(page: str, book_dir: Path = BOOK_DIR) -> str | None:
    """The plan a page computes (`page_plan("<name>", ...)` in its code: a fork keeps its origin's), or None
    for pages that train nothing."""
    found = _PLAN_CALL.search((book_dir / f"{page}.md").read_text(encoding="utf-8"))
    return found.group(1) if found else None


def page_parameters_under(page: str, profile: str, book_dir: Path = BOOK_DIR) -> dict:
    """A page's parameters as the book runs it under `profile`: its defaults, then the profile's values."""
    return {**page_parameters(book_dir / f"{page}.md"), **check_profile(page, profile, book_dir=book_dir)}


def profile_tasks(profile: str, pages: list[str], data_dir: Path, cache_dir: Path) -> list[Task]:
    """Every run and kernel of `pages` under `profile`, each once (in page order), with the data and cache
    folders written into its settings so a job on another node needs no environment."""
    tasks: dict[tuple, Task] = {}
    for page in pages:
        name = plan_name(page)
        if name is None:
            continue
        plan = page_plan(name, page_parameters_under(page, profile))
        folders = {"data_dir": str(data_dir), "cache_dir": str(cache_dir)}
        found = [("run", {**c.to_dict(), **folders}) for c in plan.configs()]
        found += [("kernel", {**dataclasses.asdict(s), **folders}) for s in plan.all_kernel_specs()]
        for kind, values in found:
            key = (kind, _frozen(values))
            old = tasks.get(key)
            tasks[key] = Task(kind, key[1], (old.pages if old else ()) + (page,))
    return list(tasks.values())
