import numpy as np
import pytest
import torch

from lpft_nb.analysis.calibration import (
    bootstrap_interval,
    ece_mce,
    fit_temperature_adam,
    fit_temperature_lbfgs,
    fit_vector_scaling,
    nll,
    reliability_bins,
    softmax,
)


def test_ece_and_mce_on_a_hand_worked_example():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55], [0.62, 0.38], [0.39, 0.61]])
    labels = np.array([0, 1, 1, 0, 0, 0])
    # bins of width 1/15; (lower, upper]: 0.9 → #13, 0.8 = 12/15 → #11 (upper edge), 0.7 → #10, 0.55 → #8,
    # 0.62 and 0.61 → #9 together (one right, one wrong: acc 0.5, conf 0.615)
    gaps = {13: 0.1, 11: 0.8, 10: 0.3, 8: 0.55, 9: 0.115}
    counts = {13: 1, 11: 1, 10: 1, 8: 1, 9: 2}
    ece, mce = ece_mce(probs, labels)
    assert ece == pytest.approx(sum(gaps[b] * counts[b] for b in gaps) / 6)
    assert mce == pytest.approx(0.8)
    assert reliability_bins(probs, labels)["count"].tolist() == [counts.get(b, 0) for b in range(15)]


def test_bins_are_open_below_and_closed_above():
    edge = np.linspace(0, 1, 16)[6]  # exactly on the 6th edge → the bin below it
    probs = np.array([[edge, (1 - edge) / 2, (1 - edge) / 2], [1.0, 0.0, 0.0]])
    counts = reliability_bins(probs, np.array([0, 0]))["count"]
    assert counts[5] == 1 and counts[14] == 1  # conf 1.0 lands in the last bin


def test_ece_mce_match_torchmetrics_on_random_inputs():
    import torchmetrics.functional.classification as tm

    rng = np.random.default_rng(0)
    for num_classes in (2, 3, 5):
        logits = rng.normal(scale=3.0, size=(500, num_classes))
        labels = rng.integers(0, num_classes, 500)
        probs = softmax(logits)
        ece, mce = ece_mce(probs, labels)
        args = (torch.tensor(probs), torch.tensor(labels), num_classes)
        assert ece == pytest.approx(
            float(tm.multiclass_calibration_error(*args, n_bins=15, norm="l1")), abs=1e-6
        )
        assert mce == pytest.approx(
            float(tm.multiclass_calibration_error(*args, n_bins=15, norm="max")), abs=1e-6
        )


def _overconfident(n=400, seed=0, scale=6.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    signal = np.eye(3)[labels] + rng.normal(scale=0.8, size=(n, 3))
    return scale * signal, labels


def test_temperature_scaling_fits_t_above_one_keeps_accuracy_and_both_fits_agree():
    logits, labels = _overconfident()
    adam, lbfgs = fit_temperature_adam(logits, labels), fit_temperature_lbfgs(logits, labels)
    assert adam.temperature > 1.5 and adam.nll_after < adam.nll_before
    assert adam.temperature == pytest.approx(lbfgs.temperature, rel=0.02)
    assert np.array_equal((logits / adam.temperature).argmax(1), logits.argmax(1))
    ece_before, _ = ece_mce(softmax(logits), labels)
    ece_after, _ = ece_mce(softmax(logits / lbfgs.temperature), labels)
    assert ece_after < ece_before


def test_adam_recipe_stops_early_and_keeps_t_positive():
    logits, labels = _overconfident(scale=0.2)  # under-confident: the optimum is T < 1
    fit = fit_temperature_adam(logits, labels)
    assert 0 < fit.temperature < 1 and fit.steps < 100_000


def test_vector_scaling_lowers_the_fitted_nll():
    logits, labels = _overconfident(seed=1)
    vs = fit_vector_scaling(logits, labels)
    assert nll(vs(logits), labels) < nll(logits, labels)
    assert vs.w.shape == (3,) and vs.c.shape == (3,)


def test_bootstrap_interval_brackets_the_point_estimate():
    logits, labels = _overconfident(seed=2)
    probs = softmax(logits)
    ece, mce = ece_mce(probs, labels)
    ci = bootstrap_interval(probs, labels, n_resamples=300)
    assert ci["ece"][0] <= ece <= ci["ece"][1] and ci["mce"][0] <= mce <= ci["mce"][1]


def test_scaling_the_head_by_one_over_t_is_temperature_scaling():
    from lpft_nb.analysis.calibration import head_scaled_probabilities

    rng = np.random.default_rng(3)
    phi, V, b = rng.normal(size=(20, 8)), rng.normal(size=(3, 8)), rng.normal(size=3)
    T = 2.7
    np.testing.assert_allclose(
        head_scaled_probabilities(phi, V, b, 1 / T), softmax((phi @ V.T + b) / T), atol=1e-12
    )


def test_the_numpy_adam_recipe_matches_torch_adam():
    logits, labels = _overconfident(n=60, seed=4)
    fit = fit_temperature_adam(logits, labels, max_steps=300, patience=10**6)
    t = torch.ones((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([t], lr=1e-3)
    z, y = torch.tensor(logits), torch.tensor(labels)
    best = (float("inf"), 1.0)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(z / t, y)
        best = min(best, (loss.item(), t.item()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert fit.temperature == pytest.approx(best[1], rel=1e-9)


def test_vectorised_bootstrap_equals_ece_mce_of_each_resample():
    logits, labels = _overconfident(n=50, seed=5)
    probs = softmax(logits)
    ci = bootstrap_interval(probs, labels, n_resamples=200, level=0.9, seed=3)
    idx = np.random.default_rng(3).integers(0, 50, size=(200, 50))
    values = np.array([ece_mce(probs[i], labels[i]) for i in idx])
    np.testing.assert_allclose(ci["ece"], np.quantile(values[:, 0], [0.05, 0.95]), rtol=1e-12)
    np.testing.assert_allclose(ci["mce"], np.quantile(values[:, 1], [0.05, 0.95]), rtol=1e-12)


def test_run_calibration_is_stored_beside_the_run_and_reused(tiny_run):
    from lpft_nb.analysis import calibration
    from lpft_nb.config import RunConfig
    from lpft_nb.runs.run import get_run

    run = get_run(RunConfig.from_dict({**tiny_run, "method": "lp"}), progress=False)
    first = calibration.run_calibration(run, n_resamples=50)
    stored = list(run.path.glob("calibration-test-50-*.json"))
    assert len(stored) == 1
    calibration._RUN_CALIBRATION.clear()
    assert calibration.run_calibration(run, n_resamples=50) == first
    assert 0 <= first["ece"] <= 1 and first["accuracy"] == first["accuracy_ts"]  # TS keeps accuracy
