"""The mechanism of paper §4.4: why cross-entropy training grows the head norm.

With ⟨v_k, φ(x_i)⟩ = ‖v_k‖‖φ(x_i)‖ cos τ_ki, training pushes cos τ_{y_i i} > 0 and cos τ_ki < 0 (k ≠ y_i);
once the angles have those signs, ∂L/∂‖v_k‖ (eq. 3) is negative and gradient descent grows ‖v_k‖.
"""

from __future__ import annotations

import numpy as np


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def class_cosines(
    weight: np.ndarray, features: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean cos τ between each head row v_k (C, d) and the features (n, d) of class k / of the other classes.

    Returns (own, other), each of shape (C,); NaN where a class has no examples.
    """
    cos = _unit_rows(np.asarray(features, float)) @ _unit_rows(np.asarray(weight, float)).T  # (n, C)
    own = np.full(weight.shape[0], np.nan)
    other = np.full(weight.shape[0], np.nan)
    for k in range(weight.shape[0]):
        if np.any(labels == k):
            own[k] = cos[labels == k, k].mean()
        if np.any(labels != k):
            other[k] = cos[labels != k, k].mean()
    return own, other


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (the package's one softmax; (n, C) → (n, C))."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def norm_gradient(
    weight: np.ndarray, bias: np.ndarray, features: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """∂L/∂‖v_k‖ for the mean cross-entropy L, holding each row's direction fixed (paper eq. 3). Shape (C,).

    = (1/n) Σ_i (p_ik − 1[y_i = k]) ‖φ(x_i)‖ cos τ_ki
    """
    features = np.asarray(features, float)
    probs = softmax(features @ weight.T + bias)
    onehot = np.eye(weight.shape[0])[labels]
    directions = _unit_rows(np.asarray(weight, float))
    return ((probs - onehot) * (features @ directions.T)).mean(axis=0)
