"""Per-example evidence of a grid cell for the claim checks: each statistic as a `stats.Sample` that holds
its per-seed values and how it depends on the test examples (per-example values for means, bootstrap
replicates over `stats.resamples` for the rest), so that a comparison counts the test set once."""

from __future__ import annotations

import numpy as np

from ..analysis.calibration import ece_mce, run_calibration
from ..analysis.features import common_basis, fdr_dimension, fisher_ratio
from ..config import LpC
from ..model.head_mechanism import softmax
from ..runs.grid import Study
from .stats import Sample, bootstrap


def accuracy(
    study: Study, dataset: str, method: str, lp_C: LpC = "cv", scale: float = 1.0, split: str = "test"
) -> Sample:
    """Test accuracy in percent: per example 100 · [argmax logits = label], shape (seeds, n)."""
    correct = np.array(
        [
            100.0 * (r.arrays[f"logits_{split}"].argmax(1) == r.arrays[f"labels_{split}"])
            for r in study.get(dataset, method, lp_C, scale)
        ]
    )
    return Sample(correct.mean(axis=1), per_example=correct)


def feature_change(
    study: Study,
    dataset: str,
    method: str,
    lp_C: LpC = "cv",
    scale: float = 1.0,
    split: str = "test",
    at: str = "last",
) -> Sample:
    """Diff(F) per example, ‖φ(x) − φ₀(x)‖, after the last step (`at` "last", a fixed step for every run)
    or at the restored best-validation epoch (`at` "restored")."""
    key = {"last": "features_last", "restored": "features_after"}[at]
    per = np.array(
        [
            np.linalg.norm(
                r.arrays[f"{key}_{split}"].astype(np.float64)
                - r.arrays[f"features_before_{split}"].astype(np.float64),
                axis=1,
            )
            for r in study.get(dataset, method, lp_C, scale)
        ]
    )
    return Sample(per.mean(axis=1), per_example=per)


def _unit_gram(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms == 0, 1.0, norms)
    return unit @ unit.T


def _mean_off_diagonal(gram: np.ndarray, idx: np.ndarray) -> float:
    sub = gram[np.ix_(idx, idx)]
    n = len(idx)
    return float((sub.sum() - np.trace(sub)) / (n * (n - 1)))


def cosine(study: Study, dataset: str, method: str, lp_C: LpC = "cv", split: str = "test") -> Sample:
    """CS(F), the mean pairwise cosine of the features after training, with bootstrap replicates."""
    grams = [_unit_gram(r.arrays[f"features_after_{split}"]) for r in study.get(dataset, method, lp_C)]
    n = len(grams[0])
    values = [_mean_off_diagonal(g, np.arange(n)) for g in grams]
    return Sample(values, replicates=bootstrap(_mean_off_diagonal, n, grams), n=n)


def fdr(study: Study, dataset: str, method: str, lp_C: LpC = "cv", split: str = "test") -> Sample:
    """log10 FDR(F) in the common basis of the pre-trained features (`analysis.features.fisher_ratio`),
    with bootstrap replicates (the basis is the full split's, fixed across resamples)."""
    runs = study.get(dataset, method, lp_C)
    labels = runs[0].arrays[f"labels_{split}"]
    basis = common_basis(
        runs[0].arrays[f"features_before_{split}"], fdr_dimension(len(labels), len(np.unique(labels)))
    )
    data = [(r.arrays[f"features_after_{split}"] @ basis, r.arrays[f"labels_{split}"]) for r in runs]

    def log_fdr(d, idx):
        x, y = d
        return np.log10(fisher_ratio(x[idx], y[idx], np.eye(x.shape[1])))

    values = [log_fdr(d, np.arange(len(labels))) for d in data]
    return Sample(values, replicates=bootstrap(log_fdr, len(labels), data), n=len(labels))


def calibration(
    study: Study, dataset: str, method: str, metric: str, lp_C: LpC = "cv", split: str = "test"
) -> Sample:
    """ECE or MCE in percent (`metric` "ece", "mce", "ece_ts", "mce_ts"; _ts: after temperature scaling,
    the temperature fitted on validation and kept fixed across test resamples), with bootstrap replicates."""
    base, _, scaled = metric.partition("_")
    position = {"ece": 0, "mce": 1}[base]
    data = []
    for r in study.get(dataset, method, lp_C):
        z = r.arrays[f"logits_{split}"] / (run_calibration(r, split)["T"] if scaled else 1.0)
        data.append((softmax(z), r.arrays[f"labels_{split}"]))

    def value(d, idx):
        return 100.0 * ece_mce(d[0][idx], d[1][idx])[position]

    n = len(data[0][1])
    values = [value(d, np.arange(n)) for d in data]
    return Sample(values, replicates=bootstrap(value, n, data), n=n)


def collapsed(run, split: str = "test") -> bool:
    """A run that ends as a constant predictor or no better than the majority class on `split` (within one
    example): its numbers measure no learning, and tables and checks that use it say so."""
    labels = run.arrays[f"labels_{split}"]
    predicted = run.arrays[f"logits_{split}"].argmax(1)
    majority = np.bincount(labels).max() / len(labels)
    return bool(len(np.unique(predicted)) == 1 or np.mean(predicted == labels) <= majority + 1 / len(labels))


def collapse_note(study: Study, dataset: str, methods, lp_C: LpC = "cv", split: str = "test") -> str:
    """'' or a sentence naming the collapsed seeds of `methods` in one cell of the grid."""
    parts = []
    for m in methods:
        seeds = [s for s, r in zip(study.seeds, study.get(dataset, m, lp_C)) if collapsed(r, split)]
        if seeds:
            parts.append(f"{m} seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))}")
    return f"collapsed runs (constant or majority-rate predictions): {'; '.join(parts)}" if parts else ""


def per_seed(values) -> Sample:
    """A statistic that does not depend on the test examples (a head norm, a kernel statistic)."""
    return Sample(np.asarray(values, dtype=float))
