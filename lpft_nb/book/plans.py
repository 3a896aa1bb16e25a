"""What each page computes, from its parameters: its training runs (`Study`) and its kernels (`KernelSpec`).

A page builds everything it trains or kernelises through ``plan = lp.page_plan("<page>", globals())``;
``python -m lpft_nb sweep`` and ``plan --estimate`` call the same function with a profile's parameters, so
what a cluster precomputes is exactly what the pages then load from the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..analysis.kernels import KernelResult, KernelSpec, grid_specs, load_kernels, setting_label
from ..analysis.lora import rank_sweep_requests
from ..analysis.lp_causes import check_lp_cause_parameters
from ..config import RunConfig
from ..runs.grid import Study

# Page parameters that are run settings shared by every run of a page (when the page has them).
RUN_SETTING_PARAMETERS = ("model", "epochs", "max_train", "max_eval", "max_per_class", "max_length")


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


def _kernel_args(p: Mapping[str, Any], seed_key: str) -> dict[str, Any]:
    return {
        "n": p["n"],
        "seed": p[seed_key],
        "model": p["model"],
        "max_train": p["max_train"],
        "max_length": p["max_length"],
    }


def _training_page(p: Mapping[str, Any]) -> PagePlan:
    return PagePlan("", studies={"main": _main_study(p)})


def _dynamics(p: Mapping[str, Any]) -> PagePlan:
    """The main grid, and LP on each full training split (its frozen features feed the LP-cause tests).
    The LP-cause parameters are checked here, before any training."""
    check_lp_cause_parameters(p["cosine_targets"], p["lp_sizes"], p["cause_seeds"])
    full = Study(
        datasets=list(p["datasets"]),
        methods=["lp"],
        seeds=list(p["seeds"][:1]),
        lp_Cs=["cv"],
        settings=run_settings(p, max_train=None),
    )
    return PagePlan("dynamics", studies={"main": _main_study(p), "full_lp": full})


def _norms(p: Mapping[str, Any]) -> PagePlan:
    studies = {
        "main": _main_study(p),
        "scaling": _scaling_study(p, p["scaling_dataset"], scale_bias=p["scale_bias"]),
    }
    return PagePlan("norms", studies=studies)


def _ntk(p: Mapping[str, Any]) -> PagePlan:
    args = {**_kernel_args(p, "seed"), "lora_alpha": p["lora_alpha"]}
    specs = {d: grid_specs(d, p["kernel_settings"], p["lp_Cs"], **args) for d in p["datasets"]}
    return PagePlan("ntk", kernel_specs={"main": specs})


def _lora(p: Mapping[str, Any]) -> PagePlan:
    args = _kernel_args(p, "kernel_seed")
    first_C = p["lp_Cs"][:1]
    rank_studies, rank_specs = rank_sweep_requests(
        p["rank_dataset"], p["ranks"], p["seeds"], run_settings(p), args
    )
    return PagePlan(
        "lora",
        studies={"main": _main_study(p), **{f"rank-{r}": s for r, s in rank_studies.items()}},
        kernel_specs={
            "main": {
                d: grid_specs(
                    d, ["ft", "lora", "lp_ft", "lp_lora"], first_C, lora_alpha=p["lora_alpha"], **args
                )
                for d in p["datasets"]
            },
            "query_value": {
                d: grid_specs(d, ["ft", "lp_ft"], first_C, params="query_value", **args)
                for d in p["datasets"]
            },
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
