import numpy as np
import pytest

from lpft_nb.analysis.features import (
    common_basis,
    fdr_dimension,
    fdr_null,
    feature_change,
    fisher_ratio,
    fisher_ratio_pinv,
    fisher_ratio_ridge,
    mean_pairwise_cosine,
    norm_change,
)


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
    # class 0 at {0, 2, 1}, class 1 at {4, 6, 5}: S_W = 2 + 2 = 4, S_B = 3·2² + 3·2² = 24 → 6
    X = np.array([[0.0], [2.0], [1.0], [4.0], [6.0], [5.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    assert fisher_ratio(X, y, np.eye(1)) == pytest.approx(6.0)
    assert fisher_ratio_pinv(X, y) == pytest.approx(6.0)


def test_with_more_examples_than_dimensions_every_version_agrees():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(60, 3)) + np.repeat(np.eye(3), 20, axis=0), np.repeat(np.arange(3), 20)
    A = rng.normal(size=(3, 3)) + 3 * np.eye(3)
    full = fisher_ratio_pinv(X, y)
    assert fisher_ratio(X @ A.T, y, np.eye(3)) == pytest.approx(
        full, rel=1e-8
    )  # invariant to invertible maps
    assert fisher_ratio_ridge(X, y, 1e-12) == pytest.approx(full, rel=1e-6)


def test_with_fewer_examples_than_dimensions_the_subspace_recovers_the_known_answer():
    # a 2-class problem in a plane, FDR known from the 2-d data, embedded in 384 dimensions with n = 40 < d
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 20)
    plane = rng.normal(size=(40, 2)) + np.outer(y, [3.0, 0.0])
    basis = np.linalg.qr(rng.normal(size=(384, 2)))[0]  # orthonormal columns
    wide = plane @ basis.T
    basis2 = common_basis(wide, 2)
    assert fisher_ratio(wide, y, basis2) == pytest.approx(fisher_ratio_pinv(plane, y), rel=1e-8)
    # the full-dimensional ridge version is decided by ε once noise fills the other directions
    noisy = wide + 0.01 * rng.normal(size=wide.shape)
    small, large = fisher_ratio_ridge(noisy, y, 1e-6), fisher_ratio_ridge(noisy, y, 1e-3)
    assert small / large > 100  # grows roughly as 1/ε: no finite answer to compare


def test_fdr_dimension_keeps_n_well_above_k_plus_c():
    assert fdr_dimension(56, 3) == 13 and fdr_dimension(872, 2) == 16 and fdr_dimension(5, 3) == 0
    for n, c in ((20, 2), (56, 3), (80, 3), (277, 2)):
        assert n >= 4 * fdr_dimension(n, c) + c


def test_fdr_in_one_basis_ignores_a_methods_own_class_free_variance():
    # two methods with the same class structure; the second adds large class-free variance in directions
    # outside the pre-trained principal subspace: in its own basis its FDR falls, in the common one it is equal
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1, 2], 30)
    signal = np.zeros((90, 40))
    signal[:, :5] = rng.normal(size=(90, 5)) + 2.0 * np.eye(5)[y]
    pre = signal.copy()  # the pre-trained features: their principal subspace is the first 5 coordinates
    extra = np.zeros_like(signal)
    extra[:, 20:30] = 10.0 * rng.normal(size=(90, 10))
    basis = common_basis(pre, 5)
    plain, noisy = fisher_ratio(signal, y, basis), fisher_ratio(signal + extra, y, basis)
    assert noisy == pytest.approx(plain, rel=1e-9)
    own = fisher_ratio(signal + extra, y, common_basis(signal + extra, 5))
    assert own < 0.5 * plain  # what the per-method basis did


def test_fdr_null_is_the_label_free_level():
    rng = np.random.default_rng(4)
    n, k, c = 80, 8, 3
    X, y = rng.normal(size=(n, 20)), np.repeat(np.arange(c), [27, 27, 26])
    null = fdr_null(X, y, common_basis(X, k))
    expected = k * (c - 1) / (n - c - k - 1)  # the Gaussian null mean
    assert null["mean"] == pytest.approx(expected, rel=0.25)
    assert null["lo"] < null["mean"] < null["hi"]
    separated = X + 3.0 * np.eye(20)[y]
    assert fisher_ratio(separated, y, common_basis(separated, k)) > 10 * null["hi"]


def test_fisher_ratio_degenerate_inputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    assert fisher_ratio(X, np.zeros(30, int), common_basis(X, 2)) == pytest.approx(
        0.0
    )  # one class: no between-class scatter


def test_corollary_4_3_features_orthogonal_to_the_training_span_do_not_move_under_gd(tmp_path):
    from lpft_nb.analysis.span import span_experiment

    gd = span_experiment(optimizer="gd", steps=100, cache_dir=str(tmp_path))
    assert gd.final_train_loss < gd.initial_train_loss  # it did learn
    assert gd.in_span_change.min() > 1e-3
    assert gd.orthogonal_change.max() < 1e-12
    adam = span_experiment(optimizer="adam", steps=100, cache_dir=str(tmp_path))
    assert adam.orthogonal_change.max() > 1e-3  # Adam's coordinate-wise scaling leaves the span
    # memoised in the cache: one file per optimizer, read back to the same arrays
    assert len(list((tmp_path / "memo").glob("span-*.json"))) == 2
    again = span_experiment(optimizer="gd", steps=100, cache_dir=str(tmp_path))
    np.testing.assert_array_equal(again.orthogonal_change, gd.orthogonal_change)
    assert again.final_train_loss == gd.final_train_loss
