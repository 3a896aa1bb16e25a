"""A study: the grid of runs a page needs (datasets × methods × seeds × LP regularisations), and tables of them.

Pages build a `Study` from their parameters and call `run()`; runs come from the shared cache when
another page (or an earlier build) trained them already.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .claims import fmt, mean_std
from .config import RunConfig
from .model import resolve_model_path
from .paper import METHOD_LABELS, TABLE13_HEAD_NORM
from .runs import RunResult, get_run

LP_HEAD_METHODS = ("lp", "lp_ft", "lp_lora")


def lp_label(lp_C) -> str:
    return "C chosen by CV" if lp_C == "cv" else f"C = {lp_C:g}"


@dataclass
class Study:
    """Runs for every (dataset, method, seed) and, for LP-headed methods, every `lp_Cs` value."""

    datasets: list[str]
    methods: list[str]
    seeds: list[int]
    lp_Cs: list = field(default_factory=lambda: ["cv"])
    settings: dict = field(default_factory=dict)  # any other RunConfig keys, shared by all runs
    results: dict = field(default_factory=dict, repr=False)

    def configs(self) -> list[RunConfig]:
        out = []
        for dataset in self.datasets:
            for method in self.methods:
                for lp_C in (self.lp_Cs if method in LP_HEAD_METHODS else ["cv"]):
                    for seed in self.seeds:
                        out.append(RunConfig.from_dict({**self.settings, "dataset": dataset, "method": method,
                                                        "seed": seed, "lp_C": lp_C}, source="study"))
        return out

    def run(self, progress: bool = True) -> Study:
        """Train (or load) every run; prints one line per run with its source and wall time."""
        configs = self.configs()
        for name in sorted({cfg.model for cfg in configs}):  # a missing model fails before any training
            resolve_model_path(name, configs[0].cache_dir)
        for i, cfg in enumerate(configs, 1):
            result = get_run(cfg, progress=progress)
            self.results[self._key(cfg.dataset, cfg.method, cfg.seed, cfg.lp_C)] = result
            source = "cache" if result.cache_hit else f"trained in {result.metrics['seconds']:.0f} s"
            print(f"[{i}/{len(configs)}] {cfg.dataset} {cfg.method:<7} seed {cfg.seed} "
                  f"{lp_label(cfg.lp_C) if cfg.uses_lp_head else '':<16} {source}", flush=True)
        return self

    @staticmethod
    def _key(dataset, method, seed, lp_C):
        return (dataset, method, seed, lp_C if method in LP_HEAD_METHODS else "cv")

    def get(self, dataset: str, method: str, lp_C="cv") -> list[RunResult]:
        """The runs of one cell, one per seed."""
        missing = [s for s in self.seeds if self._key(dataset, method, s, lp_C) not in self.results]
        if missing:
            raise KeyError(f"no runs for {dataset}/{method}/lp_C={lp_C} seeds {missing}: call run() first "
                           f"or add them to the study's parameters")
        return [self.results[self._key(dataset, method, s, lp_C)] for s in self.seeds]

    def values(self, dataset: str, method: str, metric, lp_C="cv") -> np.ndarray:
        """Per-seed values of `metric` (a metrics key path like 'test.accuracy', or a function of a run)."""
        def pick(run):
            if callable(metric):
                return metric(run)
            value = run.metrics
            for part in metric.split("."):
                value = value[part]
            return value
        return np.array([pick(r) for r in self.get(dataset, method, lp_C)], dtype=float)

    # ---- tables -------------------------------------------------------------------------------
    def head_norm_table(self, lp_C="cv") -> pd.DataFrame:
        """Paper Table 13: ‖V‖_F after training per method (ours mean ± std over seeds, paper beside)."""
        rows = []
        for label, method, key in [("Pre-trained (random init)", "ft", "head_norm_init"),
                                   *[(METHOD_LABELS[m], m, "head_norm_final") for m in
                                     ("lp", "ft", "lora", "lp_ft", "lp_lora")]]:
            if method not in self.methods:
                continue
            row = {"method": label}
            for dataset in self.datasets:
                ours = self.values(dataset, method, key, lp_C)
                paper_key = "pretrained" if key == "head_norm_init" else method
                row[f"{dataset} ours"] = fmt(ours)
                row[f"{dataset} paper"] = TABLE13_HEAD_NORM.get(dataset, {}).get(paper_key)
            rows.append(row)
        return pd.DataFrame(rows).set_index("method")

    def accuracy_table(self, split: str = "test", lp_C="cv") -> pd.DataFrame:
        """Accuracy (%) per method and dataset, mean ± std over seeds."""
        rows = []
        for method in self.methods:
            row = {"method": METHOD_LABELS[method]}
            for dataset in self.datasets:
                m, s = mean_std(100 * self.values(dataset, method, f"{split}.accuracy", lp_C))
                row[f"{dataset} ours"] = f"{m:.2f} ± {s:.2f}"
            rows.append(row)
        return pd.DataFrame(rows).set_index("method")

    def lp_choice_table(self) -> pd.DataFrame:
        """For each LP regularisation: the C used and the LP head norm, per dataset."""
        rows = []
        for lp_C in self.lp_Cs:
            for dataset in self.datasets:
                method = next(m for m in self.methods if m in LP_HEAD_METHODS)
                runs = self.get(dataset, method, lp_C)
                rows.append({"LP regularisation": lp_label(lp_C), "dataset": dataset,
                             "C used": fmt([r.metrics["lp"]["C"] for r in runs]),
                             "LP train accuracy": fmt([r.metrics["lp"]["train_accuracy"] for r in runs]),
                             "‖V‖_F after LP": fmt([r.metrics["lp"]["weight_norm"] for r in runs])})
        return pd.DataFrame(rows)


def lp_regularization_path(run: RunResult, Cs) -> dict:
    """LP refitted at each C on a run's pre-trained training features (test accuracy on its test set)."""
    from .probe import regularization_path

    a = run.arrays
    return regularization_path(a["features_before_train"], a["labels_train"], a["features_before_test"],
                               a["labels_test"], num_classes=a["logits_test"].shape[1], Cs=Cs,
                               binary_head=run.config.lp_binary_head)


def epoch_summary(history: dict) -> pd.DataFrame:
    """Per epoch of a fine-tuning history: mean training accuracy of its batches, ‖V‖_F at its end, val acc."""
    epochs = np.ceil(np.asarray(history["epoch_float"]) - 1e-9).astype(int)
    acc = pd.Series(history["train_accuracy"]).groupby(epochs).mean()
    loss = pd.Series(history["loss"]).groupby(epochs).mean()
    return pd.DataFrame({"epoch": history["epoch"], "train_accuracy": acc.values, "train_loss": loss.values,
                         "head_norm": history["epoch_head_norm"], "val_accuracy": history["val_accuracy"]})
