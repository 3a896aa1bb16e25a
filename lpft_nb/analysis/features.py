"""Statistics of feature matrices Φ (n, d): the geometry the paper's Tables 1, 11 and 12 report."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np

from .run_memo import run_memo

if TYPE_CHECKING:
    from ..runs.run import RunResult


def mean_pairwise_cosine(features: np.ndarray) -> float:
    """CS(F): mean cosine similarity over pairs of *different* examples (off-diagonal of Φ̂Φ̂ᵀ).

    A reconstruction: the paper (Table 1) gives no formula and its public code computes none. Needs n ≥ 2.
    """
    features = np.asarray(features, dtype=np.float64)
    n = len(features)
    if n < 2:
        raise ValueError("mean pairwise cosine needs at least two feature vectors")
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.where(norms == 0, 1.0, norms)
    gram = unit @ unit.T
    return float((gram.sum() - np.trace(gram)) / (n * (n - 1)))


def feature_change(after: np.ndarray, before: np.ndarray) -> float:
    """Diff(F): mean over examples of ‖φ_after(x) − φ_before(x)‖₂ (same inputs, same order).

    The most likely reading of Table 1's Diff(F) (the paper gives no formula); `norm_change` is the other one.
    """
    after, before = np.asarray(after, np.float64), np.asarray(before, np.float64)
    if after.shape != before.shape:
        raise ValueError(f"feature matrices differ in shape: {after.shape} vs {before.shape}")
    return float(np.linalg.norm(after - before, axis=1).mean())


def norm_change(after: np.ndarray, before: np.ndarray) -> float:
    """Secondary reading of Diff(F): mean over examples of |‖φ_after(x)‖ − ‖φ_before(x)‖|."""
    after, before = np.asarray(after, np.float64), np.asarray(before, np.float64)
    if after.shape != before.shape:
        raise ValueError(f"feature matrices differ in shape: {after.shape} vs {before.shape}")
    return float(np.abs(np.linalg.norm(after, axis=1) - np.linalg.norm(before, axis=1)).mean())


FDR_DIMENSION = 16  # k of the PCA subspace FDR is computed in; needs n > k + C examples


def _scatter(X: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Within-class S_W = Σ_c Σ_{i∈c} (φ_i − μ_c)(φ_i − μ_c)ᵀ and between-class S_B = Σ_c n_c (μ_c − μ)(μ_c − μ)ᵀ."""
    mu = X.mean(axis=0)
    d = X.shape[1]
    s_w, s_b = np.zeros((d, d)), np.zeros((d, d))
    for c in np.unique(labels):
        Xc = X[labels == c]
        mu_c = Xc.mean(axis=0)
        s_w += (Xc - mu_c).T @ (Xc - mu_c)
        s_b += len(Xc) * np.outer(mu_c - mu, mu_c - mu)
    return s_w, s_b


def fisher_ratio(features: np.ndarray, labels: np.ndarray, k: int = FDR_DIMENSION) -> float:
    """FDR(F) = tr(S_W⁻¹ S_B) in the top-k PCA subspace of the features (a reconstruction: the paper gives
    no formula and its code computes none).

    tr(S_W⁻¹ S_B) does not change under an invertible linear map of the features, so with n > d it is the
    same in any basis; but with n < d + C, S_W is singular and the full-dimensional criterion is undefined
    (a pseudo-inverse discards the between-class directions outside S_W's range; a ridge grows as 1/ε).
    Projecting every feature set on its own top-k principal directions, with k + C < n, makes S_W
    invertible; comparisons use the same k for every method. Raises ValueError when n ≤ k + C.
    """
    X = np.asarray(features, np.float64)
    labels = np.asarray(labels)
    classes = len(np.unique(labels))
    if len(X) <= k + classes:
        raise ValueError(
            f"FDR in a {k}-dimensional subspace needs more than {k + classes} examples, got {len(X)}"
        )
    centred = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    s_w, s_b = _scatter(centred @ vt[:k].T, labels)
    return float(np.trace(np.linalg.solve(s_w, s_b)))


def fisher_ratio_pinv(features: np.ndarray, labels: np.ndarray) -> float:
    """tr(S_W⁺ S_B) in the full feature space with a pseudo-inverse: well defined only when n > d + C."""
    s_w, s_b = _scatter(np.asarray(features, np.float64), np.asarray(labels))
    return float(np.trace(np.linalg.pinv(s_w, hermitian=True) @ s_b))


def fisher_ratio_ridge(features: np.ndarray, labels: np.ndarray, eps: float) -> float:
    """tr((S_W + ε·tr(S_W)/d·I)⁻¹ S_B) in the full space: with n < d + C it grows as 1/ε (the ridge alone
    decides it), which is why full-dimensional FDRs at n < d cannot be compared."""
    s_w, s_b = _scatter(np.asarray(features, np.float64), np.asarray(labels))
    d = len(s_w)
    return float(np.trace(np.linalg.solve(s_w + eps * np.trace(s_w) / d * np.eye(d), s_b)))


def joint_tsne(blocks: list[np.ndarray], seed: int = 0, perplexity: float = 15.0) -> list[np.ndarray]:
    """Embed several point sets (each (n_i, d)) together in 2-D with t-SNE (cosine metric); one (n_i, 2) each.

    Directions are compared, so head rows and features of very different lengths share one map.
    """
    from sklearn.manifold import TSNE

    stacked = np.concatenate([np.asarray(b, np.float64) for b in blocks])
    perplexity = min(perplexity, (len(stacked) - 1) / 3)
    emb = TSNE(
        n_components=2, metric="cosine", init="random", perplexity=perplexity, random_state=seed
    ).fit_transform(stacked)
    out, start = [], 0
    for b in blocks:
        out.append(emb[start : start + len(b)])
        start += len(b)
    return out


FEATURE_STATS = ("CS", "Diff", "Diff_norm", "FDR")


def feature_stats(run: RunResult, split: str = "test", before: bool = False) -> dict[str, float]:
    """CS, Diff (mean ‖φ_after − φ_pre‖), Diff_norm (mean |‖φ_after‖ − ‖φ_pre‖|), FDR (in the top-k PCA
    subspace, `fisher_ratio`) and its k (`fdr_dimension`) on `split` of a run.

    `before=True` describes the pre-trained features (Diff 0). The paper gives no formula for these
    statistics; the definitions follow the authors' public code (see each function above).
    """
    return run_memo(
        run,
        f"feature-stats-{split}",
        {"before": before},
        (sys.modules[__name__],),
        lambda: _feature_stats(run, split, before),
    )


def _feature_stats(run: RunResult, split: str, before: bool) -> dict[str, float]:
    a = run.arrays
    pre, labels = a[f"features_before_{split}"], a[f"labels_{split}"]
    post = pre if before else a[f"features_after_{split}"]
    k = fdr_dimension(len(labels), len(np.unique(labels)))
    return {
        "CS": float(mean_pairwise_cosine(post)),
        "Diff": float(feature_change(post, pre)),
        "Diff_norm": float(norm_change(post, pre)),
        "FDR": float(fisher_ratio(post, labels, k)) if k >= 1 else float("nan"),
        "FDR_k": int(k),
    }


def run_tsne(run: RunResult, split: str = "test", seed: int = 0) -> list[np.ndarray]:
    """`joint_tsne` of a run's features on `split` before and after training and its head rows at the start
    of FT and after it: [(n, 2), (n, 2), (C, 2), (C, 2)], memoised beside the run (`run_memo`)."""
    names = (f"features_before_{split}", f"features_after_{split}", "head_weight_init", "head_weight_final")

    def compute() -> dict:
        return dict(zip(names, joint_tsne([run.arrays[k] for k in names], seed=seed)))

    found = run_memo(run, f"tsne-{split}", {"seed": seed}, (joint_tsne,), compute, suffix=".npz")
    return [found[k] for k in names]


def fdr_dimension(n: int, classes: int) -> int:
    """The subspace dimension FDR uses on a split of n examples: `FDR_DIMENSION`, or n − C − 1 when the
    split is smaller (the same for every method, since all are measured on the same examples)."""
    return min(FDR_DIMENSION, n - classes - 1)
