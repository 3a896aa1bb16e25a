"""Linear probing: L2 logistic regression on frozen features, and its insertion as the network's head.

The paper (authors' code) fits ``LogisticRegressionCV(multinomial, Cs=10, cv=5, max_iter=5000, tol=1e-4)``.
scikit-learn ≥ 1.7 has no ``multi_class``: with two classes the fit is binomial, P(1) = σ(u·x + β).
The multinomial-binary objective at C equals a binomial fit at 2C with u = 2w (softmax over the logits ±w·x
is σ(2w·x), and the penalty ‖[−w; w]‖² = 2‖w‖²), so we fit binomially on the doubled grid and insert

- ``paper``: V = [−u/4; u/4], b = [−β/4; β/4] — the authors' halved head (their numbers come from it);
- ``exact``: V = [−u/2; u/2], b = [−β/2; β/2] — reproduces scikit-learn's probabilities.

With three or more classes ``coef_`` (C×d) is inserted as it is. All C values reported here are on the
multinomial scale of the paper's grid ``logspace(-4, 4, 10)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

from .head_mechanism import class_cosines, norm_gradient

PAPER_CS = np.logspace(-4, 4, 10)
LP_MAX_ITER = 5000
LP_TOL = 1e-4


@dataclass
class LinearProbe:
    """A fitted probe as a network head: weight (C, d), bias (C,), and how it was chosen."""

    weight: np.ndarray
    bias: np.ndarray
    C: float
    cv: bool
    binary_head: str
    train_accuracy: float
    n_iter: int
    cv_accuracy: dict[float, float] = field(default_factory=dict)  # C → mean CV accuracy (cv only)

    @property
    def weight_norm(self) -> float:
        return float(np.linalg.norm(self.weight))


def head_from_sklearn(
    coef: np.ndarray, intercept: np.ndarray, num_classes: int, binary_head: str = "paper"
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a fitted scikit-learn (coef_, intercept_) into a (C, d) head and (C,) bias."""
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64)
    rows = num_classes if num_classes > 2 else 1
    if coef.shape[0] != rows or intercept.shape[0] != rows:  # a fit that saw fewer classes than the task has
        raise ValueError(
            f"the LP fit has {coef.shape[0]} coefficient row(s), the head needs {rows} "
            f"for {num_classes} classes: every class needs a training example"
        )
    if num_classes > 2:
        return coef.copy(), intercept.copy()
    if binary_head not in ("paper", "exact"):
        raise ValueError(f"binary_head must be 'paper' or 'exact', got {binary_head!r}")
    div = 4.0 if binary_head == "paper" else 2.0
    u, beta = coef.reshape(-1), float(intercept.reshape(-1)[0])
    return np.stack([-u / div, u / div]), np.array([-beta / div, beta / div])


def _sklearn_C(C: float | np.ndarray, num_classes: int):
    """Multinomial-scale C → the C scikit-learn needs (binomial fits use 2C)."""
    return C * 2.0 if num_classes == 2 else C


def _quiet_fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        return estimator.fit(X, y)


def fit_linear_probe(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    C: float | str = "cv",
    binary_head: str = "paper",
    seed: int = 0,
) -> LinearProbe:
    """Fit LP on features (n, d) and labels (n,); `C='cv'` is the paper's LogisticRegressionCV.

    The rows are shuffled with `seed` first, as the authors' shuffled dataloader did; the CV folds
    (stratified, unshuffled) therefore depend on the seed, as in their code.
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        raise ValueError("linear probing needs at least two classes in the training labels")
    order = np.random.default_rng(seed).permutation(len(labels))
    X, y = features[order], labels[order]
    if C == "cv":
        n_folds = int(min(5, np.bincount(y).min())) if np.bincount(y).min() >= 2 else 2
        est = LogisticRegressionCV(
            Cs=_sklearn_C(PAPER_CS, num_classes),
            cv=max(2, n_folds),
            max_iter=LP_MAX_ITER,
            tol=LP_TOL,
            random_state=seed,
            scoring="accuracy",
            l1_ratios=None,
            use_legacy_attributes=True,
        )
        _quiet_fit(est, X, y)
        chosen = float(np.ravel(est.C_)[0]) / (2.0 if num_classes == 2 else 1.0)
        scores = np.mean(next(iter(est.scores_.values())), axis=0).reshape(len(PAPER_CS), -1)[:, 0]
        cv_acc = {float(c): float(s) for c, s in zip(PAPER_CS, scores)}
        n_iter = int(np.max(est.n_iter_))
    else:
        est = LogisticRegression(
            C=_sklearn_C(float(C), num_classes), max_iter=LP_MAX_ITER, tol=LP_TOL, random_state=seed
        )
        _quiet_fit(est, X, y)
        chosen, cv_acc, n_iter = float(C), {}, int(np.max(est.n_iter_))
    weight, bias = head_from_sklearn(est.coef_, est.intercept_, num_classes, binary_head)
    train_acc = float(np.mean(np.argmax(features @ weight.T + bias, axis=1) == labels))
    return LinearProbe(
        weight=weight,
        bias=bias,
        C=chosen,
        cv=C == "cv",
        binary_head=binary_head,
        train_accuracy=train_acc,
        n_iter=n_iter,
        cv_accuracy=cv_acc,
    )


def probe_iteration_path(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    C: float,
    binary_head: str = "paper",
    n_points: int = 20,
    max_iter: int | None = None,
) -> dict:
    """‖V‖_F and train accuracy of the LP head against L-BFGS iterations at a fixed C (paper Fig. 1a).

    Each point refits from zero with ``max_iter = k``; k runs log-spaced up to convergence.
    Returns lists keyed "iteration", "weight_norm", "train_accuracy" (iteration 0 = the zero head), and per
    iteration the §4.4 mechanism: "cos_own" / "cos_other" (C values each: mean cos τ of head row k with
    features of class k / other classes) and "dL_dnorm" (C values: ∂L/∂‖v_k‖, eq. 3).
    """
    features = np.asarray(features, dtype=np.float64)
    if max_iter is None:
        full = _quiet_fit(
            LogisticRegression(C=_sklearn_C(C, num_classes), max_iter=LP_MAX_ITER, tol=LP_TOL),
            features,
            labels,
        )
        max_iter = max(2, int(np.max(full.n_iter_)))
    iters = np.unique(np.geomspace(1, max_iter, n_points).round().astype(int))
    path = {
        "iteration": [0],
        "weight_norm": [0.0],
        "train_accuracy": [float(np.mean(labels == 0))],  # all-zero logits: argmax picks class 0
        "cos_own": [],
        "cos_other": [],
        "dL_dnorm": [],
    }
    for k in iters:
        est = _quiet_fit(
            LogisticRegression(C=_sklearn_C(C, num_classes), max_iter=int(k), tol=LP_TOL), features, labels
        )
        weight, bias = head_from_sklearn(est.coef_, est.intercept_, num_classes, binary_head)
        path["iteration"].append(int(k))
        path["weight_norm"].append(float(np.linalg.norm(weight)))
        path["train_accuracy"].append(float(np.mean(np.argmax(features @ weight.T + bias, 1) == labels)))
        own, other = class_cosines(weight, features, labels)
        path["cos_own"].append(own.tolist())
        path["cos_other"].append(other.tolist())
        path["dL_dnorm"].append(norm_gradient(weight, bias, features, labels).tolist())
    return path


def regularization_path(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    num_classes: int,
    Cs=PAPER_CS,
    binary_head: str = "paper",
) -> dict:
    """‖V‖_F, train and test accuracy of LP at each C (multinomial scale). Lists keyed by name."""
    out = {"C": [], "weight_norm": [], "train_accuracy": [], "test_accuracy": []}
    for C in Cs:
        est = _quiet_fit(
            LogisticRegression(C=_sklearn_C(float(C), num_classes), max_iter=LP_MAX_ITER, tol=LP_TOL),
            np.asarray(train_features, np.float64),
            train_labels,
        )
        weight, bias = head_from_sklearn(est.coef_, est.intercept_, num_classes, binary_head)
        out["C"].append(float(C))
        out["weight_norm"].append(float(np.linalg.norm(weight)))
        out["train_accuracy"].append(
            float(np.mean(np.argmax(train_features @ weight.T + bias, 1) == train_labels))
        )
        out["test_accuracy"].append(
            float(np.mean(np.argmax(test_features @ weight.T + bias, 1) == test_labels))
        )
    return out


def lp_regularization_path(run, Cs: Sequence[float]) -> dict:
    """LP refitted at each C on a run's pre-trained training features (test accuracy on its test set)."""
    a = run.arrays
    return regularization_path(
        a["features_before_train"],
        a["labels_train"],
        a["features_before_test"],
        a["labels_test"],
        num_classes=a["logits_test"].shape[1],
        Cs=Cs,
        binary_head=run.config.lp_binary_head,
    )
