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
from .features import feature_change, fisher_ratio, mean_pairwise_cosine, norm_change
from .model import resolve_model_path
from .paper import METHOD_LABELS, TABLE1, TABLE12_DIFF, TABLE13_HEAD_NORM, TABLE14_CALIBRATION
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
    head_scales: list = field(default_factory=lambda: [1.0])  # multipliers of the head at the start of FT
    results: dict = field(default_factory=dict, repr=False)

    def configs(self) -> list[RunConfig]:
        out = []
        for dataset in self.datasets:
            for method in self.methods:
                for lp_C in (self.lp_Cs if method in LP_HEAD_METHODS else ["cv"]):
                    for scale in self.head_scales:
                        for seed in self.seeds:
                            out.append(RunConfig.from_dict(
                                {**self.settings, "dataset": dataset, "method": method, "seed": seed,
                                 "lp_C": lp_C, "head_scale": float(scale)}, source="study"))
        return out

    def run(self, progress: bool = True) -> Study:
        """Train (or load) every run. One line per run goes to stderr (hidden in the book); one summary
        line to stdout."""
        import sys
        import time

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
            print(f"[{i}/{len(configs)}] {cfg.dataset} {cfg.method:<7} seed {cfg.seed} "
                  f"{lp_label(cfg.lp_C) if cfg.uses_lp_head else '':<16} {scale} {source}", file=sys.stderr, flush=True)
        print(f"{len(configs)} runs: {hits} from the cache, {len(configs) - hits} trained; "
              f"{time.perf_counter() - start:.0f} s")
        return self

    @staticmethod
    def _key(dataset, method, seed, lp_C, head_scale=1.0):
        return (dataset, method, seed, lp_C if method in LP_HEAD_METHODS else "cv", float(head_scale))

    def get(self, dataset: str, method: str, lp_C="cv", head_scale: float = 1.0) -> list[RunResult]:
        """The runs of one cell, one per seed."""
        keys = [self._key(dataset, method, s, lp_C, head_scale) for s in self.seeds]
        missing = [k[2] for k in keys if k not in self.results]
        if missing:
            raise KeyError(f"no runs for {dataset}/{method}/lp_C={lp_C}/head×{head_scale:g} seeds {missing}: "
                           f"call run() first or add them to the study's parameters")
        return [self.results[k] for k in keys]

    def values(self, dataset: str, method: str, metric, lp_C="cv", head_scale: float = 1.0) -> np.ndarray:
        """Per-seed values of `metric` (a metrics key path like 'test.accuracy', or a function of a run)."""
        def pick(run):
            if callable(metric):
                return metric(run)
            value = run.metrics
            for part in metric.split("."):
                value = value[part]
            return value
        return np.array([pick(r) for r in self.get(dataset, method, lp_C, head_scale)], dtype=float)

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

    def feature_table(self, dataset: str, lp_C="cv", split: str = "test") -> pd.DataFrame:
        """Paper Table 1 for one dataset: CS, Diff, Diff of norms, FDR and Norm(C), ours beside the paper's.

        Pre-trained and LP share the pre-trained features (LP does not touch them); Norm(C) of Pre-trained
        is the random head FT starts from, of LP the fitted head.
        """
        rows = []
        methods = [m for m in ("lp", "ft", "lora", "lp_ft", "lp_lora") if m in self.methods]
        for name, unchanged, stats, norms in self._feature_cells(dataset, methods, lp_C, split):
            paper = TABLE1.get(dataset, {}).get(name, {})
            row = {"method": "Pre-trained" if name == "pretrained" else METHOD_LABELS[name]}
            for key, label in (("CS", "CS(F)"), ("Diff", "Diff(F)"), ("Diff_norm", "Diff of norms"),
                               ("FDR", "FDR(F)")):
                row[f"{label} ours"] = "–" if unchanged and key.startswith("Diff") else fmt([s[key] for s in stats])
                if key != "Diff_norm":
                    value = paper.get(key)
                    row[f"{label} paper"] = "–" if value is None else f"{value:.3g}"
            row["Norm(C) ours"] = fmt(norms)
            row["Norm(C) paper"] = f"{paper['Norm']:.3g}" if "Norm" in paper else "–"
            rows.append(row)
        return pd.DataFrame(rows).set_index("method")

    def _feature_cells(self, dataset: str, methods, lp_C, split: str):
        """The rows of Tables 1 and 11: first "pretrained" (the pre-trained features; the random head FT starts
        from), then each method. Yields (name, unchanged, per-seed `feature_stats`, per-seed head norms);
        `unchanged` marks the rows whose features are the pre-trained ones (Pre-trained and LP)."""
        base = "ft" if "ft" in self.methods else self.methods[0]
        for name, method in [("pretrained", base), *((m, m) for m in methods)]:
            unchanged = name in ("pretrained", "lp")
            runs = self.get(dataset, method, lp_C)
            norm_key = "head_norm_init" if name == "pretrained" else "head_norm_final"
            yield (name, unchanged, [feature_stats(r, split, before=unchanged) for r in runs],
                   [r.metrics[norm_key] for r in runs])

    def feature_change_table(self, lp_C="cv", split: str = "test") -> pd.DataFrame:
        """Paper Table 12: Diff(F) during the FT stage per method and dataset, ours beside the paper's."""
        rows = []
        for method in [m for m in ("ft", "lora", "lp_ft", "lp_lora") if m in self.methods]:
            row = {"method": METHOD_LABELS[method]}
            for dataset in self.datasets:
                row[f"{dataset} ours"] = fmt(self.values(dataset, method, lambda r: feature_stats(r, split)["Diff"], lp_C))
                paper = TABLE12_DIFF.get(dataset, {}).get(method)
                row[f"{dataset} paper"] = "–" if paper is None else f"{paper:.3g}"
            rows.append(row)
        return pd.DataFrame(rows).set_index("method")

    def scaling_table(self, dataset: str, methods=("ft", "lp_ft"), lp_C="cv", split: str = "test") -> pd.DataFrame:
        """Per method and head scale: starting head norm, feature change and test accuracy (mean ± std)."""
        rows = []
        for method in methods:
            for scale in sorted(self.head_scales):
                cell = (dataset, method)
                rows.append({"method": METHOD_LABELS[method], "head × s": scale,
                             "‖V‖ at start": fmt(self.values(*cell, "head_norm_init", lp_C, scale)),
                             "Diff(F)": fmt(self.values(*cell, lambda r: feature_stats(r, split)["Diff"], lp_C, scale)),
                             "test accuracy": fmt(self.values(*cell, "test.accuracy", lp_C, scale))})
        return pd.DataFrame(rows).set_index(["method", "head × s"])

    def calibration_values(self, dataset: str, method: str, key: str, lp_C="cv") -> np.ndarray:
        """Per-seed value of one `run_calibration` entry (ECE / MCE as fractions, T, accuracies)."""
        from .calibration import run_calibration

        return self.values(dataset, method, lambda r: run_calibration(r)[key], lp_C)

    def calibration_table(self, dataset: str, lp_C="cv", calibrator: str = "ts") -> pd.DataFrame:
        """Paper Tables 3 / 14: ECE and MCE (%) without and with the calibrator, and the improvement.

        `calibrator` is "ts" (temperature scaling, the paper's) or "vs" (vector scaling, beyond the paper).
        The improvement is averaged per seed, as the paper's "Imp." appears to be.
        """
        rows = []
        for metric in ("ece", "mce"):
            for method in [m for m in ("ft", "lp_ft", "lora", "lp_lora") if m in self.methods]:
                raw = 100 * self.calibration_values(dataset, method, metric, lp_C)
                cal = 100 * self.calibration_values(dataset, method, f"{metric}_{calibrator}", lp_C)
                ci = run_calibration_ci(self.get(dataset, method, lp_C)[0], metric)
                paper = TABLE14_CALIBRATION.get(dataset, {}).get(metric, {}).get(method)
                rows.append({"metric": metric.upper(), "method": METHOD_LABELS[method],
                             "w/o ours": fmt(raw, 3), "90% bootstrap (seed 1)": f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]",
                             f"w/ {calibrator.upper()} ours": fmt(cal, 3), "Imp. ours": fmt(raw - cal, 3),
                             "w/o paper": paper[0] if paper else None,
                             f"w/ {calibrator.upper()} paper": paper[1] if paper and calibrator == "ts" else None,
                             "Imp. paper": paper[2] if paper and calibrator == "ts" else None,
                             "T (Adam / L-BFGS)": f"{fmt(self.calibration_values(dataset, method, 'T', lp_C))} / "
                                                  f"{fmt(self.calibration_values(dataset, method, 'T_lbfgs', lp_C))}"
                             if calibrator == "ts" else None})
        table = pd.DataFrame(rows).set_index(["metric", "method"])
        return table.dropna(axis=1, how="all")

    def calibrated_accuracy_table(self) -> pd.DataFrame:
        """Test accuracy (%) raw, after temperature scaling and after vector scaling, per run cell."""
        rows = []
        for dataset in self.datasets:
            for method in [m for m in ("ft", "lp_ft", "lora", "lp_lora") if m in self.methods]:
                for lp_C in (self.lp_Cs if method in LP_HEAD_METHODS else ["cv"]):
                    def acc(key):
                        return fmt(100 * self.calibration_values(dataset, method, key, lp_C))  # noqa: B023
                    rows.append({"dataset": dataset, "method": METHOD_LABELS[method],
                                 "LP": lp_label(lp_C) if method in LP_HEAD_METHODS else "",
                                 "accuracy": acc("accuracy"), "after TS": acc("accuracy_ts"),
                                 "after vector scaling": acc("accuracy_vs")})
        return pd.DataFrame(rows).set_index(["dataset", "method", "LP"])

    def boss_accuracy_table(self, metric: str = "accuracy", lp_C="cv") -> pd.DataFrame:
        """Paper Table 10: accuracy (or macro_f1) in % on the Amazon test set (ID) and each OOD set, mean ± std
        over seeds, the paper's accuracy beside, ★ on the best mean of each of our columns."""
        from .data import OOD_SETS
        from .paper import TABLE10_BOSS

        sets = {"amazon": "test", **{name: f"ood.{name}" for name in OOD_SETS["amazon"]}}
        means = {name: {m: 100 * self.values("amazon", m, f"{key}.{metric}", lp_C).mean() for m in self.methods}
                 for name, key in sets.items()}
        rows = []
        for method in self.methods:
            row = {"method": METHOD_LABELS[method]}
            for name, key in sets.items():
                values = 100 * self.values("amazon", method, f"{key}.{metric}", lp_C)
                star = " ★" if means[name][method] == max(means[name].values()) else ""
                row[f"{name} ours"] = fmt(values, 4) + star
                if metric == "accuracy":
                    paper = TABLE10_BOSS.get(method, {}).get(name)
                    row[f"{name} paper"] = f"{paper[0]:.2f} ± {paper[1]:.2f}" if paper else "–"
            rows.append(row)
        return pd.DataFrame(rows).set_index("method")

    def boss_feature_table(self, split: str, lp_C="cv") -> pd.DataFrame:
        """Paper Table 11 for one BOSS set (`split` "test" is Amazon): CS, Diff, FDR; Norm(C) on Amazon."""
        from .paper import TABLE11_BOSS

        name = "amazon" if split == "test" else split
        rows = []
        for label, unchanged, stats, norms in self._feature_cells("amazon", self.methods, lp_C, split):
            paper = TABLE11_BOSS.get(name, {}).get(label)
            row = {"method": "Pre-trained" if label == "pretrained" else METHOD_LABELS[label]}
            for i, key in enumerate(("CS", "Diff", "FDR")):
                row[f"{key} ours"] = "–" if unchanged and key == "Diff" else fmt([s[key] for s in stats])
                row[f"{key} paper"] = "–" if paper is None or paper[i] is None else f"{paper[i]:.3g}"
            if split == "test":
                row["Norm(C) ours"] = fmt(norms)
                row["Norm(C) paper"] = "–" if paper is None or paper[3] is None else f"{paper[3]:.3g}"
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


FEATURE_STATS = ("CS", "Diff", "Diff_norm", "FDR")


def feature_stats(run: RunResult, split: str = "test", before: bool = False) -> dict[str, float]:
    """CS, Diff (mean ‖φ_after − φ_pre‖), Diff_norm (mean |‖φ_after‖ − ‖φ_pre‖|) and FDR on `split`.

    `before=True` describes the pre-trained features (Diff 0). Reconstructions: reference-impl.md §3.
    """
    a = run.arrays
    pre, labels = a[f"features_before_{split}"], a[f"labels_{split}"]
    post = pre if before else a[f"features_after_{split}"]
    return {"CS": mean_pairwise_cosine(post), "Diff": feature_change(post, pre), "Diff_norm": norm_change(post, pre),
            "FDR": fisher_ratio(post, labels)}


def run_calibration_ci(run: RunResult, metric: str) -> tuple[float, float]:
    """Bootstrap interval (fractions) of the raw ECE or MCE of one run."""
    from .calibration import run_calibration

    return run_calibration(run)[f"{metric}_ci"]


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
