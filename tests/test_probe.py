import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from lpft_nb.model.probe import fit_linear_probe, head_from_sklearn, probe_iteration_path, regularization_path


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _blobs(num_classes, n=90, d=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    X = rng.normal(size=(n, d)) + 3.0 * np.eye(num_classes, d)[y]
    return X, y


def test_three_class_head_reproduces_predict_proba():
    X, y = _blobs(3)
    est = LogisticRegression(C=0.7, max_iter=5000).fit(X, y)
    V, b = head_from_sklearn(est.coef_, est.intercept_, 3)
    np.testing.assert_allclose(_softmax(X @ V.T + b), est.predict_proba(X), rtol=1e-10, atol=1e-12)


def test_binary_exact_head_reproduces_predict_proba_and_paper_head_halves_log_odds():
    X, y = _blobs(2)
    est = LogisticRegression(C=0.7, max_iter=5000).fit(X, y)
    V, b = head_from_sklearn(est.coef_, est.intercept_, 2, "exact")
    np.testing.assert_allclose(_softmax(X @ V.T + b), est.predict_proba(X), rtol=1e-10, atol=1e-12)
    Vp, bp = head_from_sklearn(est.coef_, est.intercept_, 2, "paper")
    exact_log_odds = (X @ V.T + b) @ np.array([-1, 1])
    paper_log_odds = (X @ Vp.T + bp) @ np.array([-1, 1])
    np.testing.assert_allclose(paper_log_odds, exact_log_odds / 2, rtol=1e-12)
    assert np.linalg.norm(Vp) == pytest.approx(np.linalg.norm(V) / 2)


def test_fit_linear_probe_cv_and_fixed_C():
    X, y = _blobs(3)
    cv = fit_linear_probe(X, y, 3, C="cv", seed=1)
    assert cv.cv and len(cv.cv_accuracy) == 10 and cv.C in cv.cv_accuracy
    assert cv.train_accuracy > 0.8
    weak, strong = fit_linear_probe(X, y, 3, C=100.0), fit_linear_probe(X, y, 3, C=1e-3)
    assert weak.weight_norm > 10 * strong.weight_norm  # weaker regularisation → larger head


def test_binary_probe_C_is_on_the_multinomial_scale():
    X, y = _blobs(2)
    probe = fit_linear_probe(X, y, 2, C=0.5, binary_head="exact")
    est = LogisticRegression(C=1.0, max_iter=5000, tol=1e-4).fit(
        X[np.random.default_rng(0).permutation(90)], y[np.random.default_rng(0).permutation(90)]
    )
    V, _ = head_from_sklearn(est.coef_, est.intercept_, 2, "exact")
    np.testing.assert_allclose(probe.weight, V, rtol=1e-4, atol=1e-6)


def test_iteration_and_regularisation_paths():
    X, y = _blobs(3)
    path = probe_iteration_path(X, y, 3, C=10.0)
    assert path["iteration"][0] == 0 and path["weight_norm"][0] == 0
    assert path["weight_norm"][-1] > path["weight_norm"][1]
    skewed = np.r_[np.zeros(10, int), np.ones(50, int), np.full(30, 2)]  # majority class 1, not 0
    zero_head = probe_iteration_path(X, skewed, 3, C=10.0, n_points=2)["train_accuracy"][0]
    assert zero_head == pytest.approx(10 / 90)  # all-zero logits predict class 0
    reg = regularization_path(X, y, X, y, 3)
    assert np.all(np.diff(reg["weight_norm"]) > 0)  # the norm grows as regularisation weakens


def test_probe_rejects_one_class():
    with pytest.raises(ValueError, match="two classes"):
        fit_linear_probe(np.zeros((4, 2)), np.zeros(4, int), 3)


def test_norm_gradient_matches_a_finite_difference():
    from lpft_nb.model.head_mechanism import norm_gradient, softmax

    X, y = _blobs(3, seed=2)
    rng = np.random.default_rng(1)
    V, b = rng.normal(size=(3, X.shape[1])), rng.normal(size=3)

    def loss(V):
        p = softmax(X @ V.T + b)
        return -np.mean(np.log(p[np.arange(len(y)), y]))

    grad = norm_gradient(V, b, X, y)
    for k in range(3):
        step = np.zeros_like(V)
        step[k] = V[k] / np.linalg.norm(V[k]) * 1e-6  # change ‖v_k‖ by 1e-6, direction fixed
        assert (loss(V + step) - loss(V - step)) / 2e-6 == pytest.approx(grad[k], rel=1e-5, abs=1e-9)


def test_class_cosines_by_hand():
    from lpft_nb.model.head_mechanism import class_cosines

    V = np.array([[1.0, 0.0], [0.0, 1.0]])
    X = np.array([[2.0, 0.0], [1.0, 1.0], [0.0, -3.0]])
    own, other = class_cosines(V, X, np.array([0, 0, 1]))
    np.testing.assert_allclose(own, [(1 + 2**-0.5) / 2, -1.0])
    np.testing.assert_allclose(other, [0.0, (0 + 2**-0.5) / 2])
