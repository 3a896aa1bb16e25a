"""The book's statistics (`report.stats`): the two-way error against hand computations, and the level and
power of the rule in simulations that do NOT draw from the model the estimator assumes: binary per-example
predictions on one shared test set, with seed, example, method × example and seed × example effects on the
logit scale."""

import numpy as np
import pytest

from lpft_nb.report import stats
from lpft_nb.report.claims import adjust_records, compare, equivalent, non_inferior
from lpft_nb.report.stats import Sample, difference

SIMULATIONS = 600  # per setting of the cheaper checks; Monte-Carlo error of a 5 % rate: about 0.9 points
MC_SLACK = 2.5 * np.sqrt(0.05 * 0.95 / SIMULATIONS)
LEVEL_SIMULATIONS = 4000  # per setting of the level test: a one-sided binomial bound of 5.8 % at 99 %
LEVEL_BOUND = 0.05 + 2.33 * np.sqrt(0.05 * 0.95 / LEVEL_SIMULATIONS)


def test_a_mean_over_examples_gets_the_closed_form_two_way_variance():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 40)), rng.random((3, 40))
    est = difference(Sample(a.mean(1), a), Sample(b.mean(1), b))
    d = a - b
    seed = d.mean(1).var(ddof=1) / 3
    joint = d.mean(0).var(ddof=1) / 40
    each = d.var(1, ddof=1).mean() / 40
    expected = max(seed + joint - (each - joint) / 2, seed, joint)
    assert est.value == pytest.approx(d.mean())
    assert est.se == pytest.approx(np.sqrt(expected))
    assert est.k == 3 and est.n == 40


def test_replicates_of_a_mean_agree_with_its_closed_form():
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 200)), rng.random((3, 200))
    closed = difference(Sample(a.mean(1), a), Sample(b.mean(1), b))
    idx = stats.resamples(200)
    boot = lambda x: x[:, idx].mean(axis=2).T  # noqa: E731
    resampled = difference(
        Sample(a.mean(1), replicates=boot(a), n=200), Sample(b.mean(1), replicates=boot(b), n=200)
    )
    assert resampled.se == pytest.approx(closed.se, rel=0.15)


def test_without_test_examples_it_is_the_paired_t_test():
    from scipy.stats import ttest_rel

    a, b = np.array([3.0, 3.4, 2.9, 3.8]), np.array([2.0, 2.9, 2.7, 2.6])
    test = stats.directional(difference(Sample(a), Sample(b)))
    assert test.p == pytest.approx(ttest_rel(a, b).pvalue)
    assert test.side == "holds"


def test_one_seed_per_side_never_decides():
    claim = compare("M3", "p", "s", "–", Sample([3.0], np.array([[3.0] * 10])), [1.0])
    assert claim.status == "inconclusive" and claim.p is None and "one seed" in claim.why
    with pytest.raises(ValueError, match="two seeds"):
        difference(Sample([1.0]), Sample([0.0]))


def test_pairs_are_tested_as_pairs():
    # the same three runs before and after: the paired test sees a consistent rise the unpaired one misses
    init = np.array([1.00, 1.50, 2.00])
    final = init + np.array([0.020, 0.025, 0.022])
    claim = compare("M2", "p", "s", "–", final, init)
    assert claim.status == "holds" and claim.p < 0.01


def _simulate(rng, n, k, mu_a, seed_sd=0.3, example_sd=1.5, method_example_sd=1.0, noise_sd=1.0, base=0.0):
    """Per-example 0/1 correctness (k, n) of two methods scored on one shared test set: logit = base + the
    method's shift + example + method × example + seed + seed × example effects."""
    beta = rng.normal(0, example_sd, n)

    def method(mu):
        logits = (
            base
            + mu
            + beta
            + rng.normal(0, method_example_sd, n)
            + rng.normal(0, seed_sd, (k, 1))
            + rng.normal(0, noise_sd, (k, n))
        )
        correct = rng.random((k, n)) < 1 / (1 + np.exp(-logits))
        return 100.0 * correct

    a, b = method(mu_a), method(0.0)
    return Sample(a.mean(1), a), Sample(b.mean(1), b)


# Settings other than those the degrees-of-freedom cap was chosen on (n 56-872, example sd 1.5, noise sd 1,
# accuracy near 50 %): easier examples (accuracy near 90 %), a seed share of Var(D) from near 0 to above 0.9.
LEVEL_SETTINGS = [
    # n, k, seed sd, example sd, method × example sd, noise sd, baseline logit
    (40, 3, 0.0, 1.0, 0.7, 1.3, 2.2),
    (500, 3, 0.3, 1.0, 0.7, 1.3, 2.2),
    (500, 3, 0.8, 1.0, 0.7, 1.3, 2.2),  # the seeds supply most of Var(D)
    (120, 4, 1.2, 2.0, 0.5, 0.5, 0.0),
]


@pytest.mark.parametrize("setting", LEVEL_SETTINGS)
def test_the_rule_holds_its_level_on_binary_predictions_with_a_shared_test_set(setting):
    n, k, seed_sd, example_sd, method_example_sd, noise_sd, base = setting
    rng = np.random.default_rng(n + k)
    decisive = 0
    for _ in range(LEVEL_SIMULATIONS):
        a, b = _simulate(rng, n, k, 0.0, seed_sd, example_sd, method_example_sd, noise_sd, base)
        decisive += stats.directional(difference(a, b)).p < stats.LEVEL
    assert decisive / LEVEL_SIMULATIONS <= LEVEL_BOUND


def test_the_rule_has_power_where_the_test_set_is_large():
    rng = np.random.default_rng(7)
    power = np.mean(
        [
            stats.directional(difference(*_simulate(rng, 872, 3, 0.5, seed_sd=0.0))).p < stats.LEVEL
            for _ in range(200)
        ]
    )
    assert power > 0.5  # a shift of 0.5 on the logit scale (about 6-8 points) on 872 examples


def test_equivalence_is_not_granted_on_non_significance():
    # true difference exactly at the margin: TOST must say "holds" at most at the level
    rng = np.random.default_rng(11)
    holds = 0
    for _ in range(SIMULATIONS):
        a = rng.normal(2.0, 1.0, 3)  # per-seed values, true difference 2.0 = the margin
        b = rng.normal(0.0, 1.0, 3)
        holds += equivalent("C2", "p", "s", "–", a, b, margin=2.0, source="book").status == "holds"
    assert holds / SIMULATIONS <= stats.LEVEL + MC_SLACK
    # and a real equivalence with little noise is found
    tight = equivalent("C2", "p", "s", "–", [1.0, 1.01, 0.99], [1.0, 0.99, 1.01], margin=0.2, source="book")
    assert tight.status == "holds"


def test_non_inferiority_holds_and_fails_by_the_margin():
    same = non_inferior(
        "A1", "p", "s", "–", [80.0, 80.5, 79.5], [80.2, 80.1, 80.3], margin=3.0, source="book"
    )
    assert same.status == "holds"
    worse = non_inferior(
        "A1", "p", "s", "–", [70.0, 70.5, 69.5], [80.2, 80.1, 80.3], margin=3.0, source="book"
    )
    assert worse.status == "does not hold"


def test_adjusted_statuses_hold_the_false_discovery_rate_over_a_book():
    # 50 records per build, 10 with a real effect: the share of false verdicts among decisive ones
    rng = np.random.default_rng(5)
    false_share = []
    for _ in range(150):
        records = []
        for j in range(50):
            effect = 0.6 if j < 10 else 0.0
            a, b = _simulate(rng, 277, 3, effect, seed_sd=0.2)
            records.append({**compare("A1", "p", f"s{j}", "–", a, b).__dict__, "real": j < 10})
        adjust_records(records)
        decisive = [r for r in records if r["status"] != "inconclusive"]
        false = [r for r in decisive if not r["real"] or r["status"] != "holds"]
        false_share.append(len(false) / max(len(decisive), 1))
    assert np.mean(false_share) <= stats.LEVEL + 0.02


def test_a_minimal_detectable_effect_is_reported_and_compared_with_the_papers():
    rng = np.random.default_rng(2)
    a, b = _simulate(rng, 56, 3, 0.0)
    claim = compare("A1", "p", "s", "–", a, b, paper_effect=3.2)  # 56 examples, 3 seeds, no effect
    assert claim.status == "inconclusive"
    assert claim.mde > 3.2 and claim.decidable is False and "not decidable at this scale" in claim.why
