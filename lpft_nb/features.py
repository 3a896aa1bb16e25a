"""Statistics of feature matrices Φ (n, d): the geometry the paper's Tables 1, 11 and 12 report."""

from __future__ import annotations

import numpy as np


def mean_pairwise_cosine(features: np.ndarray) -> float:
    """CS(F): mean cosine similarity over pairs of *different* examples (off-diagonal of Φ̂Φ̂ᵀ).

    A reconstruction (the paper gives no formula; reference-impl.md §3). Needs n ≥ 2.
    """
    features = np.asarray(features, dtype=np.float64)
    n = len(features)
    if n < 2:
        raise ValueError("mean pairwise cosine needs at least two feature vectors")
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.where(norms == 0, 1.0, norms)
    gram = unit @ unit.T
    return float((gram.sum() - np.trace(gram)) / (n * (n - 1)))
