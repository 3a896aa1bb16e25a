"""Per-example evidence of a grid cell for the claim checks: each statistic as a `stats.Sample` that holds
its per-seed values and how it depends on the test examples (per-example values for means, bootstrap
replicates over `stats.resamples` for the rest), so that a comparison counts the test set once."""

from __future__ import annotations

import numpy as np

from ..analysis.calibration import ece_mce, reliability_bins, run_calibration
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
    return Sample(correct.mean(axis=1), per_example=correct, seeds=tuple(study.seeds))


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
    return Sample(per.mean(axis=1), per_example=per, seeds=tuple(study.seeds))


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
    """CS(F), the mean pairwise cosine of the features after training (`features.mean_pairwise_cosine`,
    computed from one unit Gram matrix per run so that every resample is a submatrix), with bootstrap
    replicates."""
    grams = [_unit_gram(r.arrays[f"features_after_{split}"]) for r in study.get(dataset, method, lp_C)]
    n = len(grams[0])
    values = [_mean_off_diagonal(g, np.arange(n)) for g in grams]
    return Sample(values, replicates=bootstrap(_mean_off_diagonal, n, grams), n=n, seeds=tuple(study.seeds))


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
    replicates = bootstrap(log_fdr, len(labels), data)
    return Sample(values, replicates=replicates, n=len(labels), seeds=tuple(study.seeds))


CONSISTENCY_DRAWS = 200  # label draws of the calibrated expectation (consistency resampling)
MCE_MIN_COUNT = 10  # MCE over bins of at least this many test examples


def calibration_error(probs: np.ndarray, labels: np.ndarray, metric: str) -> float:
    """ECE, or MCE over the bins that hold at least `MCE_MIN_COUNT` examples (the fullest bin when none
    does), as fractions; 15 equal-width bins as `analysis.calibration.ece_mce`."""
    if metric == "ece":
        return ece_mce(probs, labels)[0]
    bins = reliability_bins(probs, labels)
    gaps = np.abs(bins["accuracy"] - bins["confidence"])
    full = bins["count"] >= MCE_MIN_COUNT
    return float(gaps[full].max() if full.any() else gaps[np.argmax(bins["count"])])


def calibrated_expectation(probs: np.ndarray, metric: str, seed: int = 0) -> float:
    """The error a perfectly calibrated model with these confidences would show on this many examples:
    the mean of `calibration_error` over labels drawn from the model's own probabilities (Bröcker & Smith
    2007, consistency resampling). The plug-in ECE and MCE carry this upward bias, larger for a method
    with spread-out confidences; the checks subtract it."""
    rng = np.random.default_rng(seed)
    cumulative = probs.cumsum(axis=1)
    draws = []
    for _ in range(CONSISTENCY_DRAWS):
        labels = (rng.random((len(probs), 1)) > cumulative).sum(axis=1).clip(max=probs.shape[1] - 1)
        draws.append(calibration_error(probs, labels, metric))
    return float(np.mean(draws))


def calibration(
    study: Study, dataset: str, method: str, metric: str, lp_C: LpC = "cv", split: str = "test"
) -> Sample:
    """ECE or MCE in percent (`metric` "ece", "mce", "ece_ts", "mce_ts"; _ts: after temperature scaling,
    the temperature fitted on validation), less its calibrated expectation (`calibrated_expectation`,
    on the full split), with bootstrap replicates of the test examples (the temperature and the bias term
    fixed across resamples). MCE is taken over bins of at least `MCE_MIN_COUNT` examples."""
    base, _, scaled = metric.partition("_")
    data, bias = [], []
    for r in study.get(dataset, method, lp_C):
        z = r.arrays[f"logits_{split}"] / (run_calibration(r, split)["T"] if scaled else 1.0)
        probs = softmax(z)
        data.append((probs, r.arrays[f"labels_{split}"]))
        bias.append(100.0 * calibrated_expectation(probs, base))
    bias = np.asarray(bias)

    def value(d, idx):
        return 100.0 * calibration_error(d[0][idx], d[1][idx], base)

    n = len(data[0][1])
    values = np.array([value(d, np.arange(n)) for d in data]) - bias
    replicates = bootstrap(value, n, data) - bias
    return Sample(values, replicates=replicates, n=n, seeds=tuple(study.seeds))


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
