"""Why is the cross-validated LP head short on our backbone? Two explanations, tested on frozen features.

(a) Anisotropy: RoBERTa's features are almost collinear (mean pairwise cosine 0.997), MiniLM's far less.
    Shrinking the spread around the mean, φ' = μ + s(φ − μ), raises the mean pairwise cosine to a target
    without changing which examples are separable (a pure shared offset would be absorbed by the intercept).
(b) n against d: fewer training examples than feature dimensions. LP is refitted on nested random subsets
    of the training split.

For each, the paper's LP (LogisticRegressionCV over its C grid) is refitted with several CV seeds (the
seed shuffles the rows, so it sets the folds) and its chosen C and head norm ‖V‖_F recorded.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from .features import mean_pairwise_cosine
from .run_memo import jsonable, run_memo


def check_lp_cause_parameters(targets: Sequence[float], sizes: Sequence[int], seeds: Sequence[int]) -> None:
    """One-line ValueError for a target cosine outside (0, 1), a size below 4 or a non-integer size, or
    fewer than two CV seeds (a verdict needs a second seed to say it is not one fold split's luck)."""
    bad = [t for t in targets if not 0 < t < 1]
    if bad:
        raise ValueError(f"cosine_targets {bad}: a mean pairwise cosine target must lie in (0, 1)")
    bad = [n for n in sizes if not isinstance(n, int) or n < 4]
    if bad:
        raise ValueError(f"lp_sizes {bad}: training-set sizes must be integers of at least 4")
    if len(set(seeds)) < 2:
        raise ValueError(f"cause_seeds {list(seeds)}: the LP-cause checks need at least two CV seeds")


def shrink_to_cosine(features: np.ndarray, target: float) -> tuple[np.ndarray, float]:
    """(φ', s): φ' = μ + s(φ − μ) with s in (0, 1] such that the mean pairwise cosine of φ' is `target`
    (bisection on log s; the cosine rises as s falls). Raises ValueError for a target below the features'
    own cosine or ≥ 1."""
    X = np.asarray(features, np.float64)
    mu = X.mean(axis=0)
    own = mean_pairwise_cosine(X)
    if not own <= target < 1:
        raise ValueError(f"target cosine {target} must lie in [{own:.3f}, 1)")
    lo, hi = -20.0, 0.0  # log s
    for _ in range(60):
        mid = (lo + hi) / 2
        if mean_pairwise_cosine(mu + np.exp(mid) * (X - mu)) > target:
            lo = mid
        else:
            hi = mid
    s = float(np.exp((lo + hi) / 2))
    return mu + s * (X - mu), s


def _fit(features, labels, num_classes: int, seed: int) -> dict:
    from ..model.probe import fit_linear_probe

    probe = fit_linear_probe(features, labels, num_classes, C="cv", seed=seed)
    return {"C": float(probe.C), "head_norm": float(probe.weight_norm)}


def anisotropy_sweep(
    features: np.ndarray, labels: np.ndarray, num_classes: int, targets: Sequence[float], seeds: Sequence[int]
) -> list[dict]:
    """LP refitted on the training features as they are and shrunk to each target cosine, per CV seed:
    rows of (cosine, shrink s, seed, C, head norm)."""
    rows = []
    levels = [(features, 1.0)] + [shrink_to_cosine(features, t) for t in targets]
    for X, s in levels:
        cosine = mean_pairwise_cosine(X)
        rows += [
            {"cosine": cosine, "s": s, "seed": seed, **_fit(X, labels, num_classes, seed)} for seed in seeds
        ]
    return rows


def sample_size_sweep(
    features: np.ndarray, labels: np.ndarray, num_classes: int, sizes: Sequence[int], seeds: Sequence[int]
) -> list[dict]:
    """LP refitted on random subsets of n training examples (each seed draws its own subset and folds):
    rows of (n, n/d, seed, C, head norm). Sizes above the split's size, and sizes where no subset holds two
    examples of every class, are skipped."""
    rows = []
    d = features.shape[1]
    for n in [n for n in sizes if n <= len(labels)]:
        for seed in seeds:
            idx = _subset_with_every_class(labels, n, num_classes, seed)
            if idx is not None:
                fit = _fit(features[idx], labels[idx], num_classes, seed)
                rows.append({"n": n, "n/d": n / d, "seed": seed, **fit})
    return rows


def _subset_with_every_class(labels: np.ndarray, n: int, num_classes: int, seed: int) -> np.ndarray | None:
    """A random subset of n indices holding at least two examples of every class (the LP head needs a row
    per class, cross-validation two examples per class), or None when 100 draws found none."""
    rng = np.random.default_rng(seed)
    for _ in range(100):
        idx = rng.choice(len(labels), n, replace=False)
        if np.bincount(labels[idx], minlength=num_classes).min() >= 2:
            return idx
    return None


def follows(rows: list[dict], x: str, y: str) -> tuple[float, ...]:
    """Spearman correlation of `y` with `x` across the levels, one per seed (a tuple); NaN for a seed with
    fewer than three levels or a constant `y`."""
    from scipy.stats import spearmanr

    out = []
    for seed in sorted({r["seed"] for r in rows}):
        xs, ys = zip(*[(r[x], r[y]) for r in rows if r["seed"] == seed])
        constant = len(set(xs)) < 2 or len(set(ys)) < 2  # ρ undefined: NaN, without scipy's warning
        out.append(float("nan") if len(xs) < 3 or constant else float(spearmanr(xs, ys).statistic))
    return tuple(out)


ANISOTROPY_MAX_N = 500  # the anisotropy sweep holds n fixed: a random subset of at most this many examples


def lp_cause_experiment(
    run, targets: Sequence[float], sizes: Sequence[int], seeds: Sequence[int]
) -> dict[str, list[dict]]:
    """Both sweeps on the frozen training features of an LP run on a full training split:
    {"anisotropy": rows (on at most `ANISOTROPY_MAX_N` examples), "sample_size": rows}. Memoised beside the
    run (`run_memo`): the refits take minutes on 2 cores."""
    arguments = {"targets": list(targets), "sizes": list(sizes), "seeds": list(seeds)}
    sources = (sys.modules[__name__], mean_pairwise_cosine)
    return run_memo(
        run,
        "lp-causes",
        arguments,
        sources,
        lambda: jsonable(_lp_cause_experiment(run, targets, sizes, seeds)),
    )


def _lp_cause_experiment(run, targets, sizes, seeds) -> dict[str, list[dict]]:
    a = run.arrays
    features, labels = a["features_before_train"], a["labels_train"]
    num_classes = a["head_weight_final"].shape[0]
    fixed = _subset_with_every_class(labels, min(len(labels), ANISOTROPY_MAX_N), num_classes, 0)
    fixed = np.arange(len(labels)) if fixed is None else np.sort(fixed)
    own = mean_pairwise_cosine(features[fixed])
    return {
        "anisotropy": anisotropy_sweep(
            features[fixed], labels[fixed], num_classes, [t for t in targets if t > own], seeds
        ),
        "sample_size": sample_size_sweep(features, labels, num_classes, sizes, seeds),
    }


def lp_regularization_path(run, Cs: Sequence[float]) -> dict:
    """`model.probe.lp_regularization_path` (LP refitted at each C on the run's pre-trained training
    features), memoised beside the run (`run_memo`)."""
    from ..model import probe

    sources = ("lpft_nb.model.probe",)  # the module that fits: an edit to it refits
    return run_memo(
        run,
        "lp-regularization-path",
        {"Cs": [float(c) for c in Cs]},
        sources,
        lambda: jsonable(probe.lp_regularization_path(run, Cs)),
    )
