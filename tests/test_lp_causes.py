"""The LP-cause experiment on synthetic features: the identities behind its design (a rescaled spread is a
rescaled C, a common offset is absorbed), the manipulations, the replicates, and the records' verdicts."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from lpft_nb.analysis.features import mean_pairwise_cosine
from lpft_nb.analysis.lp_causes import (
    centred_spectrum_stats,
    concentrate_spectrum,
    offset_control,
    offset_to_cosine,
    sample_size_sweep,
    slope,
    slope_interval,
    spectrum_sweep,
    stratified_parts,
)
from lpft_nb.model.probe import fit_linear_probe
from lpft_nb.report.claim_rules import lp_cause_claims


def _data(n=60, d=5, seed=0, classes=2):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = rng.normal(size=(n, d)) * np.linspace(2, 0.5, d) + 5.0 + 0.6 * np.eye(classes, d)[y]  # overlapping
    return X, y


def _exact_lr(X, y, C):
    return LogisticRegression(C=C, solver="newton-cg", tol=1e-12, max_iter=10_000).fit(X, y)


@pytest.mark.parametrize("s", [0.3, 0.05])
def test_a_rescaled_spread_is_a_rescaled_C(s):
    """L2 logistic regression on μ + s(φ − μ) at C is the fit on φ at C·s², weights × 1/s (the intercept is
    not penalised): the same logits, so a sweep of s over a fixed C grid moves the head by algebra."""
    X, y = _data(classes=3)
    mu = X.mean(axis=0)
    shrunk = _exact_lr(mu + s * (X - mu), y, C=1.0)
    plain = _exact_lr(X, y, C=s * s)
    scale = np.abs(plain.coef_).max()  # newton-cg at tol 1e-12: to ~1e-9
    np.testing.assert_allclose(shrunk.coef_ * s, plain.coef_, rtol=1e-7, atol=1e-7 * scale)
    np.testing.assert_allclose(
        shrunk.decision_function(mu + s * (X - mu)), plain.decision_function(X), rtol=1e-7, atol=1e-7
    )
    # the book's probe (the paper's tolerance 1e-4) agrees to 1 % of its largest weight
    book = fit_linear_probe(mu + s * (X - mu), y, 3, C=1.0, seed=0)
    np.testing.assert_allclose(
        book.weight * s, fit_linear_probe(X, y, 3, C=s * s, seed=0).weight, rtol=0, atol=1e-2 * scale
    )


def test_a_common_offset_raises_the_cosine_and_leaves_the_fit_as_it_is():
    X, y = _data()
    shifted, c = offset_to_cosine(X, 0.997)
    assert mean_pairwise_cosine(shifted) == pytest.approx(0.997, abs=1e-4) and c > 0
    np.testing.assert_allclose(shifted - shifted.mean(axis=0), X - X.mean(axis=0), atol=1e-9)
    lowered, c = offset_to_cosine(X, 0.3)  # towards the origin: a negative offset
    assert mean_pairwise_cosine(lowered) == pytest.approx(0.3, abs=1e-4) and c < 0
    np.testing.assert_allclose(_exact_lr(shifted, y, 1.0).coef_, _exact_lr(X, y, 1.0).coef_, rtol=1e-5)
    rows = offset_control(X, y, 2, [0.3, 0.99], seed=1)
    assert [r["offset"] == 0 for r in rows] == [True, False, False]
    assert len({r["C"] for r in rows}) == 1
    assert max(r["head_norm"] for r in rows) / min(r["head_norm"] for r in rows) < 1.01
    assert np.ptp([r["trace"] for r in rows]) < 1e-9 * rows[0]["trace"]


def test_the_mean_pairwise_dot_product_is_pinned_by_the_mean_and_the_trace():
    """Σ_{i≠j} φ_i·φ_j / (n(n−1)) = ‖μ‖² − T/(n − 1): reshaping the centred spectrum at fixed mean and trace
    cannot move it (the cosine moves only through the norms)."""
    X, _ = _data(n=40, d=8)
    for power in (1.0, 3.0):
        Z = concentrate_spectrum(X, power)
        n, mu = len(Z), Z.mean(axis=0)
        T = ((Z - mu) ** 2).sum(axis=1).mean()
        G = Z @ Z.T
        assert (G.sum() - np.trace(G)) / (n * (n - 1)) == pytest.approx(mu @ mu - T / (n - 1), rel=1e-10)


def test_concentrating_the_spectrum_keeps_mean_trace_and_directions_and_lowers_the_effective_rank():
    X, y = _data(n=50, d=6)
    before = centred_spectrum_stats(X)
    Z = concentrate_spectrum(X, 2.5)
    after = centred_spectrum_stats(Z)
    np.testing.assert_allclose(Z.mean(axis=0), X.mean(axis=0))
    assert after["trace"] == pytest.approx(before["trace"], rel=1e-10)
    assert after["effective_rank"] < before["effective_rank"] - 1
    top = lambda A: np.linalg.svd(A - A.mean(axis=0), full_matrices=False)[2][0]  # noqa: E731
    assert abs(top(X) @ top(Z)) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(concentrate_spectrum(X, 1.0), X, atol=1e-9)
    rows = spectrum_sweep(X, y, 2, [2.0, 1.5], seed=1)
    assert [r["power"] for r in rows] == [1.0, 1.5, 2.0]
    assert [r["effective_rank"] for r in rows] == sorted((r["effective_rank"] for r in rows), reverse=True)


def test_replicates_are_disjoint_stratified_parts_with_stratified_prefixes():
    y = np.r_[np.zeros(60, int), np.ones(30, int), np.full(12, 2)]
    parts = stratified_parts(y, 3)
    joined = np.concatenate(parts)
    assert len(joined) == len(y) and len(set(joined)) == len(y)  # disjoint, and every example once
    assert all(np.bincount(y[p], minlength=3).tolist() == [20, 10, 4] for p in parts)
    assert all(np.bincount(y[p[:17]], minlength=3).min() >= 2 for p in parts)  # a prefix keeps each class
    assert not np.array_equal(parts[0], stratified_parts(y, 3, seed=1)[0])


def test_the_size_sweep_fits_nested_prefixes_and_skips_what_it_cannot_fit():
    X, y = _data()
    rows = sample_size_sweep(X, y, 2, [40, 20, 500, 3], seed=1)
    assert [r["n"] for r in rows] == [20, 40]  # 500 > the rows given; 3 lacks two of each class
    assert [r["n/d"] for r in rows] == [4.0, 8.0]


def test_slopes_and_their_interval():
    rows = [{"n": n, "head_norm": 3 * n**0.5} for n in (10, 20, 40)]
    assert slope(rows, "n") == pytest.approx(0.5)
    assert np.isnan(slope(rows[:2], "n"))
    mean, lo, hi = slope_interval([0.4, 0.5, 0.6])
    assert (
        mean == pytest.approx(0.5)
        and lo < 0.5 < hi
        and hi - lo == pytest.approx(2 * 4.303 * 0.1 / 3**0.5, rel=1e-3)
    )


def _experiment(spectrum_slopes, size_slopes, offset_norms=(2.0, 2.0, 2.0)):
    """Rows with head norms that follow a power law of the level, one slope per replicate."""
    spectrum = [
        {"replicate": j, "effective_rank": r, "head_norm": r**b, "C": 1.0, "cosine": 0.7}
        for j, b in enumerate(spectrum_slopes)
        for r in (40.0, 20.0, 10.0, 5.0, 2.0)
    ]
    sizes = [
        {"replicate": j, "n": n, "head_norm": n**b, "C": 1.0}
        for j, b in enumerate(size_slopes)
        for n in (30, 60, 120, 240, 480)
    ]
    offset = [
        {"replicate": 0, "cosine": c, "head_norm": v, "C": 1.0}
        for c, v in zip((0.7, 0.9, 0.99), offset_norms)
    ]
    return {"syn": {"offset": offset, "spectrum": spectrum, "sample_size": sizes}}


def test_the_records_decide_by_the_slopes_over_replicates():
    claims = lp_cause_claims(_experiment([-0.50, -0.52, -0.48], [-0.3, -0.31, -0.29]))
    assert [(c.id, c.kind, c.status) for c in claims] == [
        ("H1", "identity", "holds"),
        ("H1", "hypothesis", "holds"),  # the head grows as the effective rank falls
        ("H2", "hypothesis", "does not hold"),  # the head shrinks as n grows
    ]
    assert all(c.p is not None and c.p < 0.05 for c in claims[1:])
    assert "95 % CI" in claims[1].ours and "SYN, centred spectrum" in claims[1].statement
    assert "SYN, nested subsets" in claims[2].statement and "offset" in claims[0].statement
    mixed = lp_cause_claims(_experiment([-0.5, 0.5, 0.1], [0.3, -0.2, 0.0], (2.0, 2.0, 2.5)))
    assert [c.status for c in mixed] == ["does not hold", "inconclusive", "inconclusive"]
    one = _experiment([-0.5], [0.3, 0.2])
    one["syn"]["sample_size"] = [r for r in one["syn"]["sample_size"] if r["n"] < 100 or r["replicate"] == 0]
    assert [c.status for c in lp_cause_claims(one)][1:] == ["inconclusive", "inconclusive"]
    assert "fewer than three levels" in lp_cause_claims(one)[2].why


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cosine_targets": [0.9, 1.0, 0.5, 0.6]}, "must lie in"),
        ({"spectrum_powers": [0.5, 1.5, 2.0, 3.0]}, "must be ≥ 1"),
        ({"lp_sizes": [60, 2, 80, 90, 100]}, "at least 4"),
        ({"lp_sizes": [60, 80, 100]}, "at least 5"),
        ({"cause_replicates": 1}, "at least 2 replicates"),
    ],
)
def test_bad_lp_cause_parameters_fail_in_the_plan_before_any_training(changes, message):
    from lpft_nb.book.params import BOOK_DIR, page_parameters
    from lpft_nb.book.plans import page_plan

    params = {**page_parameters(BOOK_DIR / "dynamics.md"), **changes}
    with pytest.raises(ValueError, match=message):
        page_plan("dynamics", params)
