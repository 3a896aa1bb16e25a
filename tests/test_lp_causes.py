"""The LP-cause experiment on synthetic features: shrinking to a target cosine, sweeps and their verdicts."""

import numpy as np
import pytest

from lpft_nb.analysis.features import mean_pairwise_cosine
from lpft_nb.analysis.lp_causes import anisotropy_sweep, follows, sample_size_sweep, shrink_to_cosine
from lpft_nb.report.claim_rules import lp_cause_claims


def _data(n=60, d=5, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, d)) + 5.0 + np.outer(y, np.r_[1.5, np.zeros(d - 1)])
    return X, y


def test_shrinking_the_spread_reaches_the_target_cosine_and_keeps_the_mean():
    X, _ = _data()
    shrunk, s = shrink_to_cosine(X, 0.997)
    assert mean_pairwise_cosine(shrunk) == pytest.approx(0.997, abs=1e-6) and 0 < s < 1
    np.testing.assert_allclose(shrunk.mean(axis=0), X.mean(axis=0))
    with pytest.raises(ValueError, match="must lie in"):
        shrink_to_cosine(X, 0.1)


def test_the_sweeps_refit_lp_at_every_level_and_size():
    X, y = _data()
    rows = anisotropy_sweep(X, y, 2, [0.99, 0.999], seeds=[1, 2])
    assert [round(r["cosine"], 3) for r in rows[::2]][1:] == [0.99, 0.999]
    assert [r["s"] for r in rows[::2]] == sorted((r["s"] for r in rows[::2]), reverse=True)
    assert all(r["C"] > 0 and r["head_norm"] >= 0 for r in rows)
    sizes = sample_size_sweep(X, y, 2, [20, 40, 500], seeds=[1, 2])
    assert sorted({r["n"] for r in sizes}) == [20, 40]  # 500 > the split: skipped
    assert {r["n/d"] for r in sizes} == {4.0, 8.0}


def _rows(x, values_by_seed):
    return [
        {x: level, "seed": seed, "head_norm": v, "C": v}
        for seed, vs in values_by_seed.items()
        for level, v in zip((1, 2, 3, 4), vs)
    ]


def test_the_hypothesis_rule_states_its_threshold():
    rising, falling = {1: [1, 2, 3, 4], 2: [2, 3, 4, 9]}, {1: [4, 3, 2, 1], 2: [4, 3, 2, 1]}
    mixed = {1: [1, 2, 3, 4], 2: [4, 3, 2, 1]}
    exp = {"syn": {"anisotropy": _rows("cosine", rising), "sample_size": _rows("n", falling)}}
    claims = lp_cause_claims(exp)
    assert [(c.id, c.kind, c.status) for c in claims] == [
        ("H1", "hypothesis", "holds"),
        ("H2", "hypothesis", "does not hold"),
    ]
    assert follows(_rows("cosine", rising), "cosine", "head_norm") == (1.0, 1.0)
    assert "ρ ≥ 0.8 for every CV seed" in claims[0].why
    exp = {"syn": {"anisotropy": _rows("cosine", mixed), "sample_size": _rows("n", rising)[:2]}}
    assert [c.status for c in lp_cause_claims(exp)] == ["inconclusive", "inconclusive"]
    at_threshold = {
        "syn": {"anisotropy": _rows("cosine", {1: [1, 3, 2, 4], 2: [1, 2, 3, 4]}), "sample_size": []}
    }
    assert lp_cause_claims(at_threshold)[0].status == "holds"  # ρ = 0.8 (computed as 0.7999…)
    one_seed = {"syn": {"anisotropy": _rows("cosine", {1: [1, 2, 3, 4]}), "sample_size": []}}
    assert "one CV seed" in lp_cause_claims(one_seed)[0].why
    flat = {"syn": {"anisotropy": _rows("cosine", {1: [2, 2, 2, 2], 2: [1, 2, 3, 4]}), "sample_size": []}}
    assert "does not vary" in lp_cause_claims(flat)[0].why


@pytest.mark.parametrize(
    ("targets", "sizes", "seeds", "message"),
    [
        ([0.9, 1.0], [60], [1, 2], "must lie in"),
        ([0.9], [60, 2], [1, 2], "at least 4"),
        ([0.9], [60], [1], "at least two CV seeds"),
    ],
)
def test_bad_lp_cause_parameters_fail_in_the_plan_before_any_training(targets, sizes, seeds, message):
    from lpft_nb.book.params import BOOK_DIR, page_parameters
    from lpft_nb.book.plans import page_plan

    params = {**page_parameters(BOOK_DIR / "dynamics.md"), "cosine_targets": targets}
    params.update(lp_sizes=sizes, cause_seeds=seeds)
    with pytest.raises(ValueError, match=message):
        page_plan("dynamics", params)
