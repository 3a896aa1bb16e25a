"""The book's statistics: a difference's error over seeds *and* test examples, its tests, the book-wide
false-discovery control.

Every run of a method is scored on the same test examples, and every method is trained on the same seeds, so
a measured difference D = mean_s(a_s) − f · mean_s(b_s) has two sources of noise: the seeds (a new seed gives
another network) and the test examples (another test set gives other numbers). A two-way random-effects
model (seed × example) writes the per-seed difference as δ_s = μ + α_s + β + e_s, with α_s the seed's effect,
β the effect of the test set shared by every seed, and e_s the part of the test-set noise that differs from
seed to seed. Then Var(D) = Var(α)/k + Var(β) + Var(e)/k, and it is estimated by the method of moments from
three observable variances:

- the spread of δ_s over the k seeds, which estimates Var(α) + Var(e);
- the variance of D over resamples of the test examples, the same resample for every seed and both sides
  (``joint``), which estimates Var(β) + Var(e)/k;
- the same for each seed's δ_s alone (``each``, averaged over seeds), which estimates Var(β) + Var(e).

So Var(D) ≈ s²/k + joint − (each − joint)/(k − 1), kept at least max(s²/k, joint) (in expectation both
are lower bounds of Var(D); the floor makes the test conservative when the seed-specific test noise
dominates). Its degrees of freedom are Welch–Satterthwaite's (k − 1 for the seed part, n − 1 for the
example part; an approximation that ignores the subtracted term), capped at (k − 1)·√(Var(D)/(s²/k)):
at three seeds Satterthwaite's value alone let up to 6–7 % of null comparisons through when the seeds
supply most of Var(D); with the cap, simulations of binary predictions that do not follow this model stay
at or below 5 % (`tests/test_stats.py`, on settings other than those the cap was chosen on). For a statistic that is a mean over examples (an accuracy, Diff(F)) the example variances have closed
forms; for any other (ECE, MCE, CS, FDR) they come from `N_RESAMPLES` bootstrap resamples of the examples
(`resamples`: fixed indices, so every side is resampled alike). Pairs are tested as pairs: both sides come
from the same seeds, so δ_s is formed per seed. This is the two-way ("crossed") random-effects estimator of
e.g. Searle, Casella & McCulloch, *Variance Components* (1992), §4; the t, the false-discovery control and
the power come from scipy.stats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVEL = 0.05  # the false-discovery rate held over all the tested records of a build (Benjamini–Hochberg)
POWER = 0.8  # the power at which a minimal detectable effect is stated
N_RESAMPLES = 400  # bootstrap resamples of the test examples for statistics that are not means
RESAMPLE_SEED = 0


@dataclass
class Sample:
    """One side of a comparison: a statistic's per-seed values `values` (k,) and how it depends on the test
    examples. `per_example` (k, n): the statistic is the mean over the n test examples of these values
    (accuracy: 0/1 per example); `replicates` (R, k): the statistic recomputed on the `resamples(n)` of the
    test examples; neither: it does not depend on the test examples (a head norm, a kernel statistic)."""

    values: np.ndarray
    per_example: np.ndarray | None = None
    replicates: np.ndarray | None = None
    n: int = 0  # test examples behind `replicates`
    seeds: tuple | None = None  # the seeds of `values`, in order: paired sides must hold the same

    def __post_init__(self):
        self.values = np.atleast_1d(np.asarray(self.values, dtype=float))
        k = len(self.values)
        if self.per_example is not None:
            self.per_example = np.asarray(self.per_example, dtype=float)
            if self.per_example.ndim != 2 or len(self.per_example) != k:
                raise ValueError(f"per_example must be (k={k}, n), got {self.per_example.shape}")
            if not np.allclose(self.per_example.mean(axis=1), self.values):
                raise ValueError("per_example rows must average to the per-seed values")
        if self.replicates is not None:
            self.replicates = np.asarray(self.replicates, dtype=float)
            if self.replicates.ndim != 2 or self.replicates.shape[1] != k:
                raise ValueError(f"replicates must be (R, k={k}), got {self.replicates.shape}")
            if self.n < 2:
                raise ValueError("replicates need n, the number of test examples they resample (≥ 2)")
        elif self.per_example is not None:
            self.n = self.per_example.shape[1]

    def __neg__(self) -> Sample:
        def neg(x):
            return None if x is None else -x

        return Sample(-self.values, neg(self.per_example), neg(self.replicates), self.n, self.seeds)

    def as_replicates(self) -> np.ndarray | None:
        """(R, k) replicates over `resamples(n)`, computed from `per_example` when that is what is held."""
        if self.replicates is not None:
            return self.replicates
        if self.per_example is not None:
            idx = resamples(self.per_example.shape[1])
            return self.per_example[:, idx].mean(axis=2).T
        return None


def resamples(n: int, count: int = N_RESAMPLES, seed: int = RESAMPLE_SEED) -> np.ndarray:
    """(count, n) bootstrap indices of n test examples; the same for every statistic of n examples."""
    return np.random.default_rng([seed, n]).integers(0, n, size=(count, n))


def bootstrap(statistic, n: int, seeds_data: list) -> np.ndarray:
    """(R, k) replicates: `statistic(data, idx)` of each seed's data on every resample of its n examples."""
    idx = resamples(n)
    return np.array([[statistic(data, i) for data in seeds_data] for i in idx], dtype=float)


@dataclass(frozen=True)
class Estimate:
    """A difference D = mean(a) − factor·mean(b) (or mean(a) − threshold), its standard error and degrees
    of freedom, and its parts: `seed_var` (s²/k), `example_var` (the test-set part, ≥ 0), `k` seeds, `n`
    test examples (0: none)."""

    value: float
    se: float
    df: float
    seed_var: float
    example_var: float
    k: int
    n: int


def difference(a: Sample, b: Sample | None = None, factor: float = 1.0, threshold: float = 0.0) -> Estimate:
    """D = mean(a) − factor·mean(b) − threshold, paired by seed, with its two-way error (module docstring).
    `b` None: a one-sample comparison against `threshold`. Both sides must hold the same seeds in the same
    order (k ≥ 2)."""
    k = len(a.values)
    if b is not None and len(b.values) != k:
        raise ValueError(f"a paired comparison needs the same seeds on both sides: {k} vs {len(b.values)}")
    if b is not None and a.seeds is not None and b.seeds is not None and tuple(a.seeds) != tuple(b.seeds):
        raise ValueError(f"a paired comparison needs the same seeds on both sides: {a.seeds} vs {b.seeds}")
    if k < 2:
        raise ValueError("a difference needs at least two seeds (one value has no seed spread)")
    delta = a.values - (factor * b.values if b is not None else 0.0) - threshold
    seed_var = float(delta.var(ddof=1) / k)
    joint, each, n = _example_parts(a, b, factor)
    variance = max(seed_var + joint - (each - joint) / (k - 1), seed_var, joint)
    den = seed_var**2 / (k - 1) + (joint**2 / (n - 1) if n > 1 else 0.0)
    df = variance**2 / den if den > 0 else float("inf")
    if seed_var > 0:  # Satterthwaite is liberal at 2-4 seed degrees of freedom (tests/test_stats.py)
        df = min(df, (k - 1) * np.sqrt(variance / seed_var))
    example_var = max(variance - seed_var, 0.0)
    return Estimate(float(delta.mean()), float(np.sqrt(variance)), float(df), seed_var, example_var, k, n)


def _example_parts(a: Sample, b: Sample | None, factor: float) -> tuple[float, float, int]:
    """(joint, each, n): the variance over test-example resamples of D and (mean over seeds) of each δ_s."""
    sides = [(s, w) for s, w in ((a, 1.0), (b, -factor)) if s is not None]
    held = [(s, w) for s, w in sides if s.per_example is not None or s.replicates is not None]
    if not held:
        return 0.0, 0.0, 0
    if all(s.per_example is not None for s, _ in held):
        d = sum(w * s.per_example for s, w in held)  # (k, n): per-example differences
        n = d.shape[1]
        return float(d.mean(axis=0).var(ddof=1) / n), float(d.var(axis=1, ddof=1).mean() / n), n
    n = {s.n for s, _ in held}
    if len(n) > 1:
        raise ValueError(f"the sides were scored on different numbers of test examples: {sorted(n)}")
    n = n.pop()
    r = sum(w * s.as_replicates() for s, w in held)  # (R, k)
    return float(r.mean(axis=1).var(ddof=1)), float(r.var(axis=0, ddof=1).mean()), n


# ---- tests -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Test:
    """The outcome of one test: `p` (two-sided for a direction, TOST's for equivalence), `side` ("holds" or
    "does not hold": where the estimate points), the estimate, the minimal detectable effect at `POWER`
    (in the estimate's units, at the nominal level), and the test's name."""

    name: str
    p: float
    side: str
    estimate: Estimate
    mde: float


def _t():
    from scipy.stats import t

    return t


def _mde(est: Estimate, level: float = LEVEL) -> float:
    t = _t()
    return float((t.ppf(1 - level / 2, est.df) + t.ppf(POWER, est.df)) * est.se)


def _over(name: str, est: Estimate) -> str:
    """The test's name with what its error counts: seeds, and test examples when they enter."""
    return f"{name} over seeds and test examples" if est.n else f"{name} over seeds"


def directional(est: Estimate, name: str = "paired t") -> Test:
    """Is D (already less its threshold) above 0? Two-sided at the level: `side` is "holds" for D > 0."""
    if est.se == 0:
        p = 1.0
    else:
        p = float(2 * _t().sf(abs(est.value) / est.se, est.df))
    return Test(_over(name, est), p, "holds" if est.value > 0 else "does not hold", est, _mde(est))


def one_sided(est: Estimate, name: str = "one-sided t") -> Test:
    """Is D (less its threshold) above 0, one-sided at the level in the direction the estimate points
    (the non-inferiority test, at the level of each of TOST's two tests): `side` "holds" for D > 0."""
    t = _t()
    p = 1.0 if est.se == 0 else float(t.sf(abs(est.value) / est.se, est.df))
    mde = float((t.ppf(1 - LEVEL, est.df) + t.ppf(POWER, est.df)) * est.se)
    return Test(_over(name, est), p, "holds" if est.value > 0 else "does not hold", est, mde)


def equivalent(est: Estimate, margin: float, name: str = "TOST") -> Test:
    """Is |D| < margin? Two one-sided tests (Schuirmann 1987), each at the level: `side` "holds" with TOST's
    p when the estimate lies inside the margin; otherwise "does not hold" with the one-sided p of D beyond
    the nearer bound."""
    t = _t()
    if est.se == 0:  # every paired difference equal: the interval is a point, inside or outside the margin
        return Test(_over(name, est), 0.0, "holds" if abs(est.value) < margin else "does not hold", est, 0.0)
    if abs(est.value) < margin:
        p = max(t.sf((est.value + margin) / est.se, est.df), t.cdf((est.value - margin) / est.se, est.df))
        side = "holds"
    else:  # outside the margin: the one-sided test that it lies beyond the nearer bound, at the same level
        p = t.sf((abs(est.value) - margin) / est.se, est.df)
        side = "does not hold"
    return Test(_over(name, est), float(min(1.0, p)), side, est, _mde(est))


def adjust(p_values) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (scipy.stats.false_discovery_control)."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p_values, dtype=float)
    return false_discovery_control(p, method="bh") if len(p) else p


def status(side: str, p: float, level: float = LEVEL) -> str:
    """A verdict: the estimate's side when `p` (adjusted, or nominal before the adjustment) is below level."""
    return side if p < level else "inconclusive"
