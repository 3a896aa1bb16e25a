import numpy as np
import pytest

from lpft_nb.analysis.features import feature_change, fisher_ratio, mean_pairwise_cosine, norm_change


def test_mean_pairwise_cosine_by_hand():
    X = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    # pairs: (1,2) 0, (1,3) 1/√2, (2,3) 1/√2 → mean √2/3
    assert mean_pairwise_cosine(X) == pytest.approx(np.sqrt(2) / 3)
    assert mean_pairwise_cosine(np.ones((4, 3))) == pytest.approx(1.0)  # identical features
    with pytest.raises(ValueError):
        mean_pairwise_cosine(np.ones((1, 3)))


def test_feature_change_and_norm_change_by_hand():
    before = np.array([[3.0, 0.0], [0.0, 1.0]])
    after = np.array([[0.0, 4.0], [0.0, 1.0]])
    assert feature_change(after, before) == pytest.approx(2.5)  # (5 + 0) / 2
    assert norm_change(after, before) == pytest.approx(0.5)  # (|4 − 3| + 0) / 2
    assert feature_change(before, before) == 0
    with pytest.raises(ValueError):
        feature_change(after[:1], before)


def test_fisher_ratio_by_hand_in_one_dimension():
    # class 0 at {0, 2}, class 1 at {4, 6}: S_W = 2 + 2 = 4, S_B = 2·2² + 2·2² = 16 → 4
    X = np.array([[0.0], [2.0], [4.0], [6.0]])
    assert fisher_ratio(X, np.array([0, 0, 1, 1])) == pytest.approx(4.0)


def test_fisher_ratio_degenerate_inputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 4))
    assert fisher_ratio(X, np.zeros(10, int)) == pytest.approx(0.0)  # one class: no between-class scatter
    assert fisher_ratio(np.ones((6, 3)), np.array([0, 0, 0, 1, 1, 1])) == 0.0  # identical features
    wide = rng.normal(size=(8, 50))  # n < d: S_W is singular, the pseudo-inverse still gives a finite value
    value = fisher_ratio(wide, np.arange(8) % 2)
    assert np.isfinite(value) and value > 0


def test_fisher_ratio_is_invariant_to_an_invertible_linear_map():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 3)), np.arange(60) % 3
    A = rng.normal(size=(3, 3)) + 3 * np.eye(3)
    assert fisher_ratio(X @ A.T, y) == pytest.approx(fisher_ratio(X, y), rel=1e-8)


def test_corollary_4_3_features_orthogonal_to_the_training_span_do_not_move_under_gd():
    from lpft_nb.analysis.span import span_experiment

    gd = span_experiment(optimizer="gd", steps=100)
    assert gd.final_train_loss < gd.initial_train_loss  # it did learn
    assert gd.in_span_change.min() > 1e-3
    assert gd.orthogonal_change.max() < 1e-12
    adam = span_experiment(optimizer="adam", steps=100)
    assert adam.orthogonal_change.max() > 1e-3  # Adam's coordinate-wise scaling leaves the span
