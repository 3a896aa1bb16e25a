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


FDR_DIMENSION = 16  # the largest k of the subspace FDR is computed in
FDR_EXAMPLES_PER_DIMENSION = 4  # k ≤ (n − C) / 4: n well above k + C, so S_W is well conditioned
FDR_PERMUTATIONS = 200  # label permutations of the null


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


def common_basis(reference: np.ndarray, k: int) -> np.ndarray:
    """(d, k): the top-k principal directions of `reference` (n, d), the pre-trained features of the split.
    Every method's features of the same examples are projected on this one basis, so their FDRs are
    comparable and a method's own class-free variance outside it cannot move its FDR."""
    centred = np.asarray(reference, np.float64) - np.asarray(reference, np.float64).mean(axis=0)
    return np.linalg.svd(centred, full_matrices=False)[2][:k].T


def fisher_ratio(features: np.ndarray, labels: np.ndarray, basis: np.ndarray) -> float:
    """FDR(F) = tr(S_W⁻¹ S_B) of the features projected on `basis` (d, k), the book's one formula for the
    paper's Fisher discriminant ratio (its Tables 1 and 11 give no formula). S_W is invertible when n is
    well above k + C (`fdr_dimension`); in a full 384- or 768-dimensional space with n < d + C it is not."""
    X = np.asarray(features, np.float64) @ basis
    s_w, s_b = _scatter(X - X.mean(axis=0), np.asarray(labels))
    return float(np.trace(np.linalg.solve(s_w, s_b)))


def fdr_null(features: np.ndarray, labels: np.ndarray, basis: np.ndarray, seed: int = 0) -> dict:
    """The label-permutation null of `fisher_ratio`: its mean and 95 % band over `FDR_PERMUTATIONS`
    shuffles of the labels (the FDR of features that carry no class information but the same geometry).
    Its mean is close to k(C − 1)/(n − C − k − 1) for Gaussian features."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    null = [fisher_ratio(features, rng.permutation(labels), basis) for _ in range(FDR_PERMUTATIONS)]
    lo, hi = np.quantile(null, [0.025, 0.975])
    return {"mean": float(np.mean(null)), "lo": float(lo), "hi": float(hi)}


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
    """CS, Diff (mean ‖φ_after − φ_pre‖ at the restored epoch), Diff_last (the same after the last step),
    Diff_norm (mean |‖φ_after‖ − ‖φ_pre‖|), FDR in the common basis of the pre-trained features
    (`fisher_ratio`) with its label-permutation null (FDR_null, FDR_null_lo, FDR_null_hi) and its k
    (`fdr_dimension`) on `split` of a run.

    `before=True` describes the pre-trained features (Diff 0). The paper gives no formula for these
    statistics and the authors' public code computes none: each definition is this book's reading (see each
    function above).
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
    last = pre if before else a[f"features_last_{split}"]
    k = fdr_dimension(len(labels), len(np.unique(labels)))
    out = {
        "CS": float(mean_pairwise_cosine(post)),
        "Diff": float(feature_change(post, pre)),
        "Diff_last": float(feature_change(last, pre)),
        "Diff_norm": float(norm_change(post, pre)),
        "FDR_k": int(k),
    }
    if k >= 1:
        basis = common_basis(pre, k)
        null = fdr_null(post, labels, basis)
        out.update(
            FDR=fisher_ratio(post, labels, basis),
            FDR_null=null["mean"],
            FDR_null_lo=null["lo"],
            FDR_null_hi=null["hi"],
        )
    else:
        out.update(
            FDR=float("nan"), FDR_null=float("nan"), FDR_null_lo=float("nan"), FDR_null_hi=float("nan")
        )
    return out


def run_tsne(run: RunResult, split: str = "test", seed: int = 0) -> list[np.ndarray]:
    """`joint_tsne` of a run's features on `split` before and after training and its head rows at the start
    of FT and after it: [(n, 2), (n, 2), (C, 2), (C, 2)], memoised beside the run (`run_memo`)."""
    names = (f"features_before_{split}", f"features_after_{split}", "head_weight_init", "head_weight_final")

    def compute() -> dict:
        return dict(zip(names, joint_tsne([run.arrays[k] for k in names], seed=seed)))

    found = run_memo(run, f"tsne-{split}", {"seed": seed}, (joint_tsne,), compute, suffix=".npz")
    return [found[k] for k in names]


def fdr_dimension(n: int, classes: int) -> int:
    """The dimension k of the common basis FDR uses on a split of n examples and C classes:
    min(`FDR_DIMENSION`, ⌊(n − C) / `FDR_EXAMPLES_PER_DIMENSION`⌋), the same for every method (all are
    measured on the same examples); 0 when the split is too small."""
    return max(0, min(FDR_DIMENSION, (n - classes) // FDR_EXAMPLES_PER_DIMENSION))
