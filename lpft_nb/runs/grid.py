"""The run grid a page needs: datasets × methods × LP regularisations × head scales × seeds.

Pages build a `Study` from their parameters and call `run()`; runs come from the shared cache when
another page (or an earlier build) trained them already. Tables of a grid are functions of it in
`lpft_nb.report.tables`.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..config import LP_HEAD_METHODS, LpC, RunConfig, lp_label
from ..model.hub import resolve_model_path
from .run import RunResult, get_run


@dataclass
class Study:
    """Runs for every (dataset, method, seed) and, for LP-headed methods, every `lp_Cs` value."""

    datasets: list[str]
    methods: list[str]
    seeds: list[int]
    lp_Cs: list = field(default_factory=lambda: ["cv"])
    settings: dict = field(default_factory=dict)  # any other RunConfig keys, shared by all runs
    head_scales: list = field(default_factory=lambda: [1.0])  # multipliers of the head at the start of FT
    results: dict = field(default_factory=dict, repr=False)

    def configs(self) -> list[RunConfig]:
        out = []
        for dataset in self.datasets:
            for method in self.methods:
                for lp_C in self.lp_Cs if method in LP_HEAD_METHODS else ["cv"]:
                    for scale in self.head_scales:
                        for seed in self.seeds:
                            out.append(
                                RunConfig.from_dict(
                                    {
                                        **self.settings,
                                        "dataset": dataset,
                                        "method": method,
                                        "seed": seed,
                                        "lp_C": lp_C,
                                        "head_scale": float(scale),
                                    },
                                    source="study",
                                )
                            )
        return out

    def run(self, progress: bool = False) -> Study:
        """Train (or load) every run. One line per run goes to stderr (hidden in the book); one summary
        line to stdout."""
        configs = self.configs()
        for name in sorted({cfg.model for cfg in configs}):  # a missing model fails before any training
            resolve_model_path(name, configs[0].cache_dir)
        start, hits = time.perf_counter(), 0
        for i, cfg in enumerate(configs, 1):
            result = get_run(cfg, progress=progress)
            self.results[self._key(cfg.dataset, cfg.method, cfg.seed, cfg.lp_C, cfg.head_scale)] = result
            hits += result.cache_hit
            source = "cache" if result.cache_hit else f"trained in {result.metrics['seconds']:.0f} s"
            scale = f"head × {cfg.head_scale:g}" if len(self.head_scales) > 1 else ""
            print(
                f"[{i}/{len(configs)}] {cfg.dataset} {cfg.method:<7} seed {cfg.seed} "
                f"{lp_label(cfg.lp_C) if cfg.uses_lp_head else '':<16} {scale} {source}",
                file=sys.stderr,
                flush=True,
            )
        unpinned = sum(r.metrics.get("data_verified") is False for r in self.results.values())
        data = (
            f"{unpinned} on data files that differ from their pinned sha256"
            if unpinned
            else "all on pinned data"
        )
        print(
            f"{len(configs)} runs: {hits} from the cache, {len(configs) - hits} trained; "
            f"{time.perf_counter() - start:.0f} s; {data}"
        )
        return self

    @staticmethod
    def _key(dataset, method, seed, lp_C: LpC, head_scale=1.0):
        return (dataset, method, seed, lp_C if method in LP_HEAD_METHODS else "cv", float(head_scale))

    def get(self, dataset: str, method: str, lp_C: LpC = "cv", head_scale: float = 1.0) -> list[RunResult]:
        """The runs of one cell, one per seed."""
        keys = [self._key(dataset, method, s, lp_C, head_scale) for s in self.seeds]
        missing = [k[2] for k in keys if k not in self.results]
        if missing:
            raise KeyError(
                f"no runs for {dataset}/{method}/lp_C={lp_C}/head×{head_scale:g} seeds {missing}: "
                f"call run() first or add them to the study's parameters"
            )
        return [self.results[k] for k in keys]

    def values(
        self, dataset: str, method: str, metric, lp_C: LpC = "cv", head_scale: float = 1.0
    ) -> np.ndarray:
        """Per-seed values of `metric` (a metrics key path like 'test.accuracy', or a function of a run)."""

        def pick(run):
            if callable(metric):
                return metric(run)
            value = run.metrics
            for part in metric.split("."):
                value = value[part]
            return value

        return np.array([pick(r) for r in self.get(dataset, method, lp_C, head_scale)], dtype=float)

    # ---- named cells ---------------------------------------------------------------------------
    @property
    def lp_method(self) -> str | None:
        """The grid's first LP-headed method (in the order lp, lp_ft, lp_lora), or None."""
        return next((m for m in LP_HEAD_METHODS if m in self.methods), None)

    def first_run(self, dataset: str, method: str, lp_C: LpC | None = None) -> RunResult:
        """The first seed's run of a cell; `lp_C` None means the cross-validated head when the grid has
        it, else its first LP regularisation."""
        if lp_C is None:
            lp_C = "cv" if "cv" in self.lp_Cs else self.lp_Cs[0]
        return self.get(dataset, method, lp_C)[0]

    def random_init_norm(self, dataset: str) -> float:
        """Mean ‖V‖_F of the randomly initialised head FT starts from (the FT runs, else the LoRA runs)."""
        method = "ft" if "ft" in self.methods else "lora"
        return float(np.mean(self.values(dataset, method, "head_norm_init")))
