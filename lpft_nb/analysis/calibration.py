"""Calibration: ECE / MCE as the authors compute them, temperature scaling, vector scaling, bootstrap intervals.

ECE and MCE use 15 equal-width confidence bins with membership conf ∈ (lower, upper] (the authors'
``calibration_error`` in their public code, tom4649/lp-ft_ntk); confidence is the largest softmax probability.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import LpC
from ..model.head_mechanism import softmax
from ..runs.cache import code_key, memoize

if TYPE_CHECKING:
    from ..runs.grid import Study
    from ..runs.run import RunResult

N_BINS = 15


def _confidence_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int):
    """Per example: confidence (n,), correctness 0/1 (n,) and bin index (n,); plus the n_bins + 1 edges.
    Bin b holds confidences in (edges[b], edges[b+1]] (a confidence of exactly 0 joins bin 0)."""
    probs = np.asarray(probs, np.float64)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(labels)).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    return conf, correct, idx, edges


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> dict[str, np.ndarray]:
    """Per bin (lower, upper]: count, mean confidence, accuracy. Arrays of length n_bins."""
    conf, correct, idx, edges = _confidence_bins(probs, labels, n_bins)
    count = np.bincount(idx, minlength=n_bins).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        accuracy = np.bincount(idx, weights=correct, minlength=n_bins) / count
    return {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": accuracy}


def ece_mce(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> tuple[float, float]:
    """(ECE, MCE) as fractions: Σ_b (n_b/n)|acc_b − conf_b| and max over non-empty bins of |acc_b − conf_b|."""
    bins = reliability_bins(probs, labels, n_bins)
    filled = bins["count"] > 0
    gaps = np.abs(bins["accuracy"][filled] - bins["confidence"][filled])
    weights = bins["count"][filled] / bins["count"].sum()
    return float(np.sum(weights * gaps)), float(gaps.max())


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    p = softmax(logits)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-300, None))))


@dataclass
class TemperatureFit:
    temperature: float
    steps: int
    nll_before: float
    nll_after: float


def _nll_and_grad_t(z: np.ndarray, onehot: np.ndarray, t: float) -> tuple[float, float]:
    """Mean NLL of softmax(z / t) and its derivative with respect to t."""
    p = softmax(z / t)
    value = float(-np.mean(np.log(np.clip(np.sum(p * onehot, axis=1), 1e-300, None))))
    grad = float(np.sum((p - onehot) * (-z / t**2)) / len(z))
    return value, grad


def fit_temperature_adam(
    logits: np.ndarray, labels: np.ndarray, lr: float = 1e-3, max_steps: int = 100_000, patience: int = 10
) -> TemperatureFit:
    """The paper's recipe: a scalar T from 1.0, Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8) on the validation
    NLL, early stop after `patience` steps without improvement; T is clamped at 1e-3 to stay positive.

    Adam's update is written out in numpy for speed (a test checks it against torch.optim.Adam).
    """
    z = np.asarray(logits, np.float64)
    onehot = np.eye(z.shape[1])[np.asarray(labels)]
    t, m, v = 1.0, 0.0, 0.0
    best, best_t, since, steps = float("inf"), 1.0, 0, 0
    while steps < max_steps:
        steps += 1
        value, grad = _nll_and_grad_t(z, onehot, t)
        if value < best - 1e-12:
            best, best_t, since = value, t, 0
        else:
            since += 1
            if since >= patience:
                break
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        t -= lr * (m / (1 - 0.9**steps)) / (np.sqrt(v / (1 - 0.999**steps)) + 1e-8)
        t = max(t, 1e-3)
    return TemperatureFit(best_t, steps, nll(logits, labels), nll(z / best_t, labels))


def fit_temperature_lbfgs(logits: np.ndarray, labels: np.ndarray) -> TemperatureFit:
    """Cross-check: minimise the NLL over log T with L-BFGS (strong Wolfe line search)."""
    import torch

    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.CrossEntropyLoss()

    def closure():
        opt.zero_grad()
        loss = loss_fn(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    steps = int(opt.state[log_t]["n_iter"])  # iterations L-BFGS took (≤ max_iter)
    return TemperatureFit(t, steps, nll(logits, labels), nll(np.asarray(logits) / t, labels))


@dataclass
class VectorScaling:
    """Per-class affine map of the logits, z ↦ w ⊙ z + c (Guo et al. 2017), fitted on validation NLL."""

    w: np.ndarray
    c: np.ndarray

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits) * self.w + self.c


def fit_vector_scaling(logits: np.ndarray, labels: np.ndarray, l2: float = 1e-3) -> VectorScaling:
    """Fit w (init 1) and c (init 0) by L-BFGS on the NLL plus a small L2 pull of (w, c) towards (1, 0)."""
    import torch

    z = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    w = torch.ones(z.shape[1], dtype=torch.float64, requires_grad=True)
    c = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, c], lr=1.0, max_iter=500, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.CrossEntropyLoss()

    def closure():
        opt.zero_grad()
        loss = loss_fn(z * w + c, y) + l2 * (((w - 1) ** 2).sum() + (c**2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    return VectorScaling(w.detach().numpy(), c.detach().numpy())


def bootstrap_interval(
    probs: np.ndarray,
    labels: np.ndarray,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
    n_bins: int = N_BINS,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of ECE and MCE over test examples (resampled with replacement).

    Vectorised over resamples; each resample's ECE/MCE is exactly `ece_mce` of that resample (tested).
    """
    conf, correct, bins, _ = _confidence_bins(probs, labels, n_bins)
    n = len(conf)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    flat = (bins[idx] + n_bins * np.arange(n_resamples)[:, None]).ravel()
    size = n_resamples * n_bins
    count = np.bincount(flat, minlength=size).reshape(n_resamples, n_bins)
    sum_conf = np.bincount(flat, weights=conf[idx].ravel(), minlength=size).reshape(n_resamples, n_bins)
    sum_acc = np.bincount(flat, weights=correct[idx].ravel(), minlength=size).reshape(n_resamples, n_bins)
    gap_sum = np.abs(sum_acc - sum_conf)
    ece = gap_sum.sum(axis=1) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        mce = np.nanmax(np.where(count > 0, gap_sum / count, np.nan), axis=1)
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    return {"ece": tuple(np.quantile(ece, [lo, hi])), "mce": tuple(np.quantile(mce, [lo, hi]))}


_RUN_CALIBRATION: dict[str, dict] = {}
CALIBRATION_FIELDS = (
    "T",
    "T_lbfgs",
    "accuracy",
    "accuracy_ts",
    "accuracy_vs",
    "confidence",
    "ece",
    "mce",
    "ece_ci",
    "mce_ci",
    "ece_ts",
    "mce_ts",
    "ece_vs",
    "mce_vs",
)


def run_calibration(run: RunResult, split: str = "test", n_resamples: int = 500) -> dict:
    """Calibration of one run on `split`: ECE / MCE (fractions) raw, after temperature scaling (paper's Adam
    recipe; L-BFGS T alongside), after vector scaling, with bootstrap intervals; fits use the validation logits.

    Memoised in memory and on disk in the run's cache folder, under a name that carries the `code_key` of
    this module (so a change here recomputes).
    """
    key = f"{run.path}:{split}:{n_resamples}"
    if key not in _RUN_CALIBRATION:
        stored = Path(run.path) / f"calibration-{split}-{n_resamples}-{code_key(sys.modules[__name__])}.json"
        compute = lambda: _calibration(run.arrays, split, n_resamples)  # noqa: E731
        _RUN_CALIBRATION[key] = (
            memoize(stored, compute, required=CALIBRATION_FIELDS)[0] if Path(run.path).is_dir() else compute()
        )
    return _RUN_CALIBRATION[key]


def _calibration(a: dict, split: str, n_resamples: int) -> dict:
    val_z, val_y, z, y = a["logits_val"], a["labels_val"], a[f"logits_{split}"], a[f"labels_{split}"]
    ts = fit_temperature_adam(val_z, val_y)
    vs = fit_vector_scaling(val_z, val_y)
    out = {
        "T": ts.temperature,
        "T_lbfgs": fit_temperature_lbfgs(val_z, val_y).temperature,
        "accuracy": float(np.mean(z.argmax(1) == y)),
        "accuracy_ts": float(np.mean((z / ts.temperature).argmax(1) == y)),
        "accuracy_vs": float(np.mean(vs(z).argmax(1) == y)),
        "confidence": float(softmax(z).max(1).mean()),
    }
    for tag, logits in (("", z), ("_ts", z / ts.temperature), ("_vs", vs(z))):
        probs = softmax(logits)
        out[f"ece{tag}"], out[f"mce{tag}"] = ece_mce(probs, y)
        ci = bootstrap_interval(probs, y, n_resamples=n_resamples)
        out[f"ece{tag}_ci"], out[f"mce{tag}_ci"] = (
            [float(v) for v in ci["ece"]],
            [float(v) for v in ci["mce"]],
        )
    return {k: float(v) if isinstance(v, (float, np.floating)) else v for k, v in out.items()}


def head_scaled_probabilities(
    features: np.ndarray, weight: np.ndarray, bias: np.ndarray, scale: float
) -> np.ndarray:
    """softmax(φ (sV)ᵀ + s b): the network's probabilities with its head multiplied by s."""
    return softmax(
        np.asarray(features, np.float64) @ (scale * np.asarray(weight, np.float64)).T + scale * bias
    )


def head_multiplier_curve(features, weight, bias, labels, multipliers) -> dict[str, list]:
    """Mean confidence and ECE of the network when its head is multiplied by each value in `multipliers`."""
    out = {"multiplier": [], "confidence": [], "ece": []}
    for m in multipliers:
        probs = head_scaled_probabilities(features, weight, bias, m)
        out["multiplier"].append(float(m))
        out["confidence"].append(float(probs.max(1).mean()))
        out["ece"].append(ece_mce(probs, labels)[0])
    return out


def temperature_as_head_scaling(run: RunResult) -> dict:
    """§4.6's algebra on one run's test set: softmax(logits / T) against the probabilities of the network with
    its head multiplied by 1/T (recomputed from the stored features). Returns T, the largest absolute
    probability difference (float32 features) and whether the argmax is unchanged by the rescaling."""
    a, T = run.arrays, run_calibration(run)["T"]
    by_head = head_scaled_probabilities(
        a["features_after_test"], a["head_weight_final"], a["head_bias_final"], 1 / T
    )
    by_temperature = softmax(a["logits_test"] / T)
    return {
        "T": T,
        "max_difference": float(np.abs(by_head - by_temperature).max()),
        "argmax_unchanged": bool(np.array_equal(by_head.argmax(1), a["logits_test"].argmax(1))),
    }


def run_calibration_ci(run: RunResult, metric: str) -> tuple[float, float]:
    """Bootstrap interval (fractions) of the raw ECE or MCE of one run."""
    return run_calibration(run)[f"{metric}_ci"]


def calibration_values(study: Study, dataset: str, method: str, key: str, lp_C: LpC = "cv") -> np.ndarray:
    """Per-seed value of one `run_calibration` entry (ECE / MCE as fractions, T, accuracies) of a grid cell."""
    return study.values(dataset, method, lambda r: run_calibration(r)[key], lp_C)
