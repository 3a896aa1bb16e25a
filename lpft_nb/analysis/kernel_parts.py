"""What an NTK computation takes and gives, without torch: its options and the `KernelParts` it returns.

Part of every kernel's cache key with `analysis.ntk`, which computes the parts (paper Proposition 4.1);
`analysis.kernel_stats` computes what the tables report from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EMBEDDING_MODES = ("exact", "sampled", "none")


@dataclass
class KernelParts:
    """Kernels over n examples (train first, then eval): P_scalar (n, n) so that P = P_scalar ⊗ I_C,
    F (n, C, n, C), plus the initial logits (n, C), labels (n,) and the cost of computing F."""

    p_scalar: np.ndarray
    F: np.ndarray
    logits0: np.ndarray
    labels: np.ndarray
    n_train: int
    backward_passes: int
    parameter_groups: int
    n_parameters: int

    @property
    def num_classes(self) -> int:
        return self.F.shape[1]

    def P(self) -> np.ndarray:
        """P as an (n, C, n, C) array."""
        return np.einsum("nm,cd->ncmd", self.p_scalar, np.eye(self.num_classes))


PARAM_SUBSETS = {"all": None, "query_value": ("query.weight", "value.weight")}
