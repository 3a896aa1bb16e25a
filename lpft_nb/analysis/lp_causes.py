"""Why is the cross-validated LP head short on our backbone? The book's two hypotheses, tested on frozen
features so that each can fail.

**What the mean pairwise cosine measures.** Write φ_i = μ + x_i (μ the mean, x_i centred, T = tr Σ_c =
mean ‖x_i‖²). Exactly, the mean over pairs i ≠ j of φ_i·φ_j is ‖μ‖² − T/(n − 1), so the mean pairwise cosine
is ≈ ‖μ‖²/(‖μ‖² + T), up to how the norms ‖φ_i‖ vary. It moves with two things only, and neither can tell
an LP head anything:

- a common offset φ + cμ̂ (μ̂ = μ/‖μ‖) raises it towards 1 with T unchanged, and the unpenalised intercept
  absorbs it: the fit at every C is the same (w·(φ + cμ̂) + b = w·φ + (b + c w·μ̂)). This is the *control*;
- a rescaling of the spread, φ' = μ + s(φ − μ), raises it as s falls; with the intercept unpenalised the
  L2 logistic regression on φ' at C is exactly the fit on φ at C·s² with weights × 1/s
  (tests/test_lp_causes.py). So a CV head that grows as the spread is shrunk is the algebra of the scale
  over a fixed C grid, and such a sweep cannot fail.

At fixed μ and T the cosine is pinned (reshaping the centred spectrum moves it only through the norms; on
MiniLM's CB features by ~0.02 while the effective rank falls from 71 to 2). **H1** therefore tests the other
reading of anisotropy, a few directions that carry most of the variance ("the classes differ in a thin
slice"): the centred spectrum is reshaped, λ_k → λ_k^γ rescaled to the same trace, eigenvectors, mean and T
unchanged, so the variance concentrates into fewer principal directions (the participation ratio
(Σλ)²/Σλ², the effective rank, falls) and the classes' directions gain or lose scale according to where
they lie. That can go either way, so H1 can fail. It is decided by the slope of log ‖V‖ on log effective
rank (H1: negative).

**H2** (n against d): LP refitted on nested subsets of n examples (each smaller one inside the larger),
decided by the slope of log ‖V‖ on log n (H2: positive).

**Replicates.** A CV seed only reshuffles the folds on the same features: two seeds are one observation.
Replication here is real: the training split is dealt into `replicates` disjoint class-stratified parts,
each part a replicate with its own features, its own CV seed and its own slope; H1 uses each part whole (at
most `ANISOTROPY_MAX_N` examples), H2 nested prefixes of it (sizes above the part's size are not fitted). The
control is an identity, checked on the first part alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from .features import mean_pairwise_cosine
from .run_memo import jsonable, run_memo

ANISOTROPY_MAX_N = 500  # H1 and the control hold n fixed: each part's first (at most) this many examples
MIN_LEVELS = 5  # levels a sweep needs to estimate a slope per replicate


def check_lp_cause_parameters(
    targets: Sequence[float], powers: Sequence[float], sizes: Sequence[int], replicates: int
) -> None:
    """One-line ValueError for a cosine target outside (0, 1), a spectrum power below 1, a size below 4 or
    not an integer, fewer than `MIN_LEVELS` levels in a sweep (the features' own level counts), or fewer
    than two replicates (a slope's interval needs a second one)."""
    bad = [t for t in targets if not 0 < t < 1]
    if bad:
        raise ValueError(f"cosine_targets {bad}: a mean pairwise cosine target must lie in (0, 1)")
    bad = [g for g in powers if not g >= 1]
    if bad:
        raise ValueError(f"spectrum_powers {bad}: a power below 1 spreads the spectrum; they must be ≥ 1")
    bad = [n for n in sizes if not isinstance(n, int) or n < 4]
    if bad:
        raise ValueError(f"lp_sizes {bad}: training-set sizes must be integers of at least 4")
    for name, levels in (
        ("cosine_targets", len(set(targets)) + 1),
        ("spectrum_powers", len(set(powers) | {1})),
        ("lp_sizes", len(set(sizes))),
    ):
        if levels < MIN_LEVELS:
            raise ValueError(f"{name}: {levels} levels; a slope per replicate needs at least {MIN_LEVELS}")
    if not isinstance(replicates, int) or replicates < 2:
        raise ValueError(f"cause_replicates {replicates!r}: the LP-cause tests need at least 2 replicates")


def stratified_parts(labels: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """`k` disjoint parts of the indices of `labels`, each class dealt evenly across them (random order),
    each part ordered so that every prefix holds the classes in about the part's proportions."""
    rng = np.random.default_rng(seed)
    parts = [[] for _ in range(k)]
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        start = int(rng.integers(k))
        for j, i in enumerate(members):
            parts[(start + j) % k].append(i)
    out = []
    for part in parts:
        part = np.asarray(part)
        key = np.empty(len(part))
        for c in np.unique(labels[part]):
            members = np.flatnonzero(labels[part] == c)
            key[members] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
        out.append(part[np.argsort(key, kind="stable")])
    return out


def offset_to_cosine(features: np.ndarray, target: float) -> tuple[np.ndarray, float]:
    """(φ + cμ̂, c): a common offset along the mean direction with the mean pairwise cosine at `target`
    (bisection on c = ‖μ‖(eᶻ − 1), c > −‖μ‖; the cosine rises with c). The centred features are unchanged.
    ValueError when the target is not reached to 1e-4."""
    X = np.asarray(features, np.float64)
    mu = X.mean(axis=0)
    norm = float(np.linalg.norm(mu))
    direction = mu / norm
    lo, hi = -30.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if mean_pairwise_cosine(X + norm * np.expm1(mid) * direction) > target:
            hi = mid
        else:
            lo = mid
    c = norm * float(np.expm1((lo + hi) / 2))
    shifted = X + c * direction
    reached = mean_pairwise_cosine(shifted)
    if abs(reached - target) > 1e-4:
        raise ValueError(f"a common offset reaches cosine {reached:.4f}, not the target {target}")
    return shifted, c


def concentrate_spectrum(features: np.ndarray, power: float) -> np.ndarray:
    """μ + x' with the centred features' principal variances λ_k → λ_k^power, rescaled to the same trace;
    principal directions, mean and tr Σ_c unchanged (power 1: the features as they are)."""
    X = np.asarray(features, np.float64)
    mu = X.mean(axis=0)
    U, S, Vt = np.linalg.svd(X - mu, full_matrices=False)
    lam = S**2
    keep = lam > 1e-12 * lam.max()
    reshaped = (lam[keep] / lam[keep].max()) ** power
    reshaped *= lam[keep].sum() / reshaped.sum()
    return mu + (U[:, keep] * np.sqrt(reshaped)) @ Vt[keep]


def centred_spectrum_stats(features: np.ndarray) -> dict:
    """tr Σ_c (mean ‖φ − μ‖²), the effective rank (Σλ)²/Σλ² of the centred covariance and the mean
    pairwise cosine."""
    x = np.asarray(features, np.float64) - np.mean(features, axis=0)
    lam = np.linalg.svd(x, compute_uv=False) ** 2
    return {
        "trace": float(lam.sum() / len(x)),
        "effective_rank": float(lam.sum() ** 2 / (lam**2).sum()),
        "cosine": mean_pairwise_cosine(features),
    }


def _fit(features, labels, num_classes: int, seed: int) -> dict:
    from ..model.probe import fit_linear_probe

    probe = fit_linear_probe(features, labels, num_classes, C="cv", seed=seed)
    return {"C": float(probe.C), "head_norm": float(probe.weight_norm)}


def offset_control(
    features: np.ndarray, labels: np.ndarray, num_classes: int, targets: Sequence[float], seed: int
) -> list[dict]:
    """The control: LP refitted on the features as they are and offset along μ̂ to each target cosine:
    rows of (offset c, cosine, trace, effective rank, C, head norm)."""
    levels = [(features, 0.0)] + [offset_to_cosine(features, t) for t in sorted(targets)]
    return [
        {"offset": c, **centred_spectrum_stats(X), **_fit(X, labels, num_classes, seed)} for X, c in levels
    ]


def spectrum_sweep(
    features: np.ndarray, labels: np.ndarray, num_classes: int, powers: Sequence[float], seed: int
) -> list[dict]:
    """H1: LP refitted with the centred spectrum raised to each power (`concentrate_spectrum`): rows of
    (power, cosine, trace, effective rank, C, head norm)."""
    rows = []
    for power in sorted(set(powers) | {1.0}):
        X = concentrate_spectrum(features, power)
        rows.append({"power": power, **centred_spectrum_stats(X), **_fit(X, labels, num_classes, seed)})
    return rows


def sample_size_sweep(
    features: np.ndarray, labels: np.ndarray, num_classes: int, sizes: Sequence[int], seed: int
) -> list[dict]:
    """H2: LP refitted on the first n rows for each size n (nested: pass rows in a stratified random order,
    `stratified_parts`): rows of (n, n/d, C, head norm). Sizes above the rows given, or whose prefix lacks
    two examples of some class (cross-validation needs two per class), are not fitted."""
    rows = []
    d = features.shape[1]
    for n in sorted(set(sizes)):
        if n <= len(labels) and np.bincount(labels[:n], minlength=num_classes).min() >= 2:
            rows.append({"n": n, "n/d": n / d, **_fit(features[:n], labels[:n], num_classes, seed)})
    return rows


def slope(rows: list[dict], x: str, y: str = "head_norm") -> float:
    """Least-squares slope of log y on log x over the rows (NaN with fewer than three distinct x)."""
    xs = np.log([r[x] for r in rows])
    if len(set(xs)) < 3:
        return float("nan")
    return float(np.polyfit(xs, np.log([r[y] for r in rows]), 1)[0])


def slope_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, lower, upper): the mean of per-replicate slopes and its 95 % t interval (NaN bounds with
    fewer than two)."""
    from scipy.stats import t

    v = np.asarray(values, dtype=float)
    m = float(v.mean())
    if len(v) < 2:
        return m, float("nan"), float("nan")
    half = float(t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - half, m + half


def lp_cause_experiment(
    run, targets: Sequence[float], powers: Sequence[float], sizes: Sequence[int], replicates: int
) -> dict[str, list[dict]]:
    """The control and both sweeps on the frozen training features of an LP run on a full training split:
    {"offset": rows of the first part, "spectrum": rows, "sample_size": rows}, every row with its
    `replicate` (part j, CV seed j + 1) and `n`. Memoised beside the run (`run_memo`): the refits take
    minutes on 2 cores."""
    arguments = {
        "targets": list(targets),
        "powers": list(powers),
        "sizes": list(sizes),
        "replicates": replicates,
    }
    sources = (sys.modules[__name__], mean_pairwise_cosine)
    return run_memo(
        run,
        "lp-causes",
        arguments,
        sources,
        lambda: jsonable(_lp_cause_experiment(run, targets, powers, sizes, replicates)),
    )


def _lp_cause_experiment(run, targets, powers, sizes, replicates) -> dict[str, list[dict]]:
    a = run.arrays
    features, labels = np.asarray(a["features_before_train"], np.float64), np.asarray(a["labels_train"])
    num_classes = a["head_weight_final"].shape[0]
    out = {"offset": [], "spectrum": [], "sample_size": []}
    for j, part in enumerate(stratified_parts(labels, replicates)):
        fixed = part[:ANISOTROPY_MAX_N]
        X, y, seed = features[fixed], labels[fixed], j + 1
        tag = {"replicate": j, "n_fixed": len(fixed)}
        if j == 0:
            out["offset"] += [{**tag, **r} for r in offset_control(X, y, num_classes, targets, seed)]
        out["spectrum"] += [{**tag, **r} for r in spectrum_sweep(X, y, num_classes, powers, seed)]
        out["sample_size"] += [
            {"replicate": j, **r}
            for r in sample_size_sweep(features[part], labels[part], num_classes, sizes, seed)
        ]
    return out


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
