"""Statistics of an NTK's parts (paper §3.2, Tables 2 and 9), numpy and scikit-learn only: ranks, spectra,
block norms, the FT ratio and the authors' logistic kernel regression."""

from __future__ import annotations

import numpy as np

from ..model.head_mechanism import softmax


def flat(K4: np.ndarray) -> np.ndarray:
    n, C = K4.shape[:2]
    return K4.reshape(n * C, n * C)


def numerical_rank(K: np.ndarray, dtype=np.float32) -> int:
    """Rank with numpy's default tolerance (σ_max · max(M, N) · eps of `dtype`)."""
    s = np.linalg.svd(K.astype(dtype), compute_uv=False)
    return int(np.sum(s > s.max() * max(K.shape) * np.finfo(dtype).eps))


def normalised_spectrum(K: np.ndarray) -> np.ndarray:
    s = np.linalg.svd(K, compute_uv=False)
    return s / s.max()


def residuals(logits0: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """δ = e_y − softmax(f₀), (n, C)."""
    return np.eye(logits0.shape[1])[labels] - softmax(logits0)


def ft_ratio(P4: np.ndarray, F4: np.ndarray, delta: np.ndarray) -> float:
    """Mean over training x_n of ‖Σ_m F(x_n, x_m) δ_m‖ / ‖Σ_m (P + F)(x_n, x_m) δ_m‖ (train×train blocks)."""
    f = np.einsum("ncmd,md->nc", F4, delta)
    total = np.einsum("ncmd,md->nc", P4 + F4, delta)
    return float(np.mean(np.linalg.norm(f, axis=1) / np.linalg.norm(total, axis=1)))


def block_nuclear_norms(K4: np.ndarray) -> np.ndarray:
    """Nuclear norm of each C×C block K(x_i, x_j): (n, n)."""
    blocks = np.transpose(K4, (0, 2, 1, 3))
    return np.linalg.svd(blocks, compute_uv=False).sum(-1)


def kernel_regression(
    K_train: np.ndarray, K_eval_train: np.ndarray, y_train: np.ndarray, y_eval: np.ndarray, num_classes: int
) -> dict[str, float]:
    """The authors' logistic kernel regression: each (example, class) row of the kernel is a sample whose
    target is the one-hot entry; `LogisticRegressionCV(max_iter=10000, random_state=0)`.

    Returns per-logit accuracies (the paper's Table 2 "Acc", chance (C−1)/C for all-zero predictions) and
    argmax class accuracies of the same fitted scores.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV

    C = num_classes
    targets_train = np.eye(C)[y_train].reshape(-1).astype(int)
    targets_eval = np.eye(C)[y_eval].reshape(-1).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        folds = int(min(5, np.bincount(targets_train).min()))  # 5 as the authors; fewer on tiny kernels
        solver = LogisticRegressionCV(
            cv=max(2, folds),
            max_iter=10000,
            random_state=0,
            l1_ratios=None,
            use_legacy_attributes=True,
            scoring="accuracy",
        ).fit(K_train, targets_train)
    out = {
        "per_logit_train": float(solver.score(K_train, targets_train)),
        "per_logit_test": float(solver.score(K_eval_train, targets_eval)),
    }
    for key, K, y in (("argmax_train", K_train, y_train), ("argmax_test", K_eval_train, y_eval)):
        scores = solver.decision_function(K).reshape(-1, C)
        out[key] = float(np.mean(scores.argmax(1) == y))
    return out
