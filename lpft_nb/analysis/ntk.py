"""The empirical NTK of f(x) = V φ(x) + b at the start of the FT stage, split as in Proposition 4.1:

    Θ(x, x') = P(x, x') + F(x, x'),   P = (⟨φ₀(x), φ₀(x')⟩ + 1)·I_C,   F = V₀ Θ^φ(x, x') V₀ᵀ.

F is built from the Jacobians of the C logits V₀φ(x) with respect to the feature extractor's parameters:
one forward and C backward passes per example, batched as one pass with one-hot cotangents (the authors
differentiate all d feature coordinates: d passes). The Gram blocks accumulate in float64 (float32 rows
multiply in column chunks) over parameter groups sized to a memory budget; with `spill=True` the groups'
gradient rows go to disk so that the passes run once, not once per group. Word embeddings enter exactly
through the rows of the tokens present (an example's gradient is zero on every other row); the authors'
10%-sampled, rescaled estimate is available as `embeddings="sampled"`. For LoRA models the
parameters are the LoRA matrices only.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from ..model.classifier import LinearHeadClassifier
from ..model.train import Encoded
from .kernel_parts import EMBEDDING_MODES, PARAM_SUBSETS, KernelParts


def _single(enc: Encoded, i: int, device=None) -> dict[str, torch.Tensor]:
    return enc.batch([i], device)


def _feature_params(model: LinearHeadClassifier, subset: str = "all") -> list[tuple[str, torch.Tensor]]:
    """The feature extractor's parameters that F differentiates: LoRA matrices for a LoRA model, else all
    (or, with subset="query_value", only the attention query and value weight matrices)."""
    named = list(model.encoder.named_parameters())
    if any("lora_" in n for n, _ in named):
        return [(n, p) for n, p in named if "lora_" in n]
    if PARAM_SUBSETS[subset] is not None:
        return [(n, p) for n, p in named if n.endswith(PARAM_SUBSETS[subset])]
    return named


def _groups(sizes: list[int], max_numel: int) -> list[list[int]]:
    """Greedy consecutive grouping of parameter indices so that each group holds ≤ max_numel entries
    (a larger single tensor gets a group of its own)."""
    groups, current, total = [], [], 0
    for i, size in enumerate(sizes):
        if current and total + size > max_numel:
            groups.append(current)
            current, total = [], 0
        current.append(i)
        total += size
    if current:
        groups.append(current)
    return groups


@torch.no_grad()
def initial_outputs(model: LinearHeadClassifier, enc: Encoded, idx) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode φ₀ (n, d) and logits f₀ (n, C) of the examples `idx`, one at a time (no padding)."""
    model.eval()
    device = model.head.weight.device
    feats = torch.cat([model.features(**_single(enc, i, device)) for i in idx])
    return feats.double().cpu().numpy(), model.head(feats).double().cpu().numpy()


def ft_effective_kernel(
    model: LinearHeadClassifier,
    enc: Encoded,
    idx,
    n_train: int,
    embeddings: str = "exact",
    memory_gib: float = 3.0,
    sample_rate: float = 0.1,
    seed: int = 0,
    progress=None,
    subset: str = "all",
    spill: bool = False,
    spill_dir: str | None = None,
) -> tuple[np.ndarray, int, int, int]:
    """F over the examples `idx` (the first `n_train` are the training examples): (n, C, n, C) float64.

    Only train×train and eval×train blocks are computed (eval×eval is left zero). The gradient rows of all
    examples (n·C rows of one entry per parameter) rarely fit in `memory_gib`, so the Gram matrix is
    accumulated over groups of parameters, each group's rows at most `memory_gib`. By default the passes are
    repeated for each group. With `spill` (on the CPU, when the rows fit in half the free disk under
    `spill_dir`, default the system's temporary folder) every example's forward and C backward passes run
    once and the groups' rows are written to disk, then read back one group at a time: 4× fewer passes at
    N = 64 on MiniLM, but about 35 GB of disk traffic, which made it slower on the 2-core machine this book
    is built on (`bench --ntk --n 64` with the unbatched passes: 102 s against 83 s), so it is off by default.
    Rows are written straight into one reused buffer; the Gram accumulates in float64 on the model's device.
    Returns (F, backward passes, parameter groups, parameters differentiated); a batched pass over the C
    one-hot cotangents counts as C backward passes.
    """
    if embeddings not in EMBEDDING_MODES:
        raise ValueError(f"embeddings must be one of {EMBEDDING_MODES}, got {embeddings!r}")
    model.eval()
    head = model.head.weight.detach()
    device = head.device
    C = head.shape[0]
    n = len(idx)
    named = _feature_params(model, subset)
    is_lora = any("lora_" in name for name, _ in named)
    word_emb = model.encoder.get_input_embeddings().weight
    use_rows = embeddings != "none" and not is_lora and subset == "all"
    params = [p for name, p in named if p is not word_emb]
    remap = emb_mask = None
    if use_rows:
        ids = np.unique(np.concatenate([enc.input_ids[i] for i in idx]))
        token_rows = torch.from_numpy(ids).to(device)
        rows = word_emb.detach()[token_rows].clone().requires_grad_(True)
        remap = torch.full((word_emb.shape[0],), -1, dtype=torch.long, device=device)
        remap[token_rows] = torch.arange(len(ids), device=device)
        params = [rows, *params]
        if embeddings == "sampled":
            g = torch.Generator().manual_seed(seed)
            emb_mask = (torch.rand(rows.shape, generator=g) < sample_rate).to(rows.dtype) / math.sqrt(
                sample_rate
            )
            emb_mask = emb_mask.to(device)
    sizes = [p.numel() for p in params]
    n_rows = n * C
    itemsize = head.element_size()
    groups = _groups(sizes, max(1, int(memory_gib * 2**30 / (itemsize * n_rows))))
    K = torch.zeros((n_rows, n_rows), dtype=torch.float64, device=device)

    def logits_of(i: int) -> torch.Tensor:
        """(C,) logits of example i with the head fixed: F excludes the head's own parameters."""
        batch = _single(enc, i, device)
        if use_rows:
            embeds = params[0][remap[batch.pop("input_ids")]]
            phi = model.encoder(inputs_embeds=embeds, **batch).last_hidden_state[:, 0]
        else:
            phi = model.features(**batch)
        return phi[0] @ head.T

    cotangents = torch.eye(C, dtype=head.dtype, device=device)

    def write_rows(out: torch.Tensor, logits: torch.Tensor, members: list[int]) -> torch.Tensor:
        """Each logit's gradient over the parameters `members`, flattened, written into `out` (C, Σ sizes of
        `members`) without an intermediate copy; the C backward passes run as one batched pass (one-hot
        cotangents)."""
        with warnings.catch_warnings():  # SDPA's CPU backward has no batching rule: a loop for that op only
            warnings.filterwarnings("ignore", message="There is a performance drop", category=UserWarning)
            grads = torch.autograd.grad(
                logits,
                [params[j] for j in members],
                grad_outputs=cotangents,
                is_grads_batched=True,
                allow_unused=True,
            )
        offset = 0
        for j, grad in zip(members, grads):
            target = out[:, offset : offset + sizes[j]]
            if grad is None:
                target.zero_()
            elif emb_mask is not None and j == 0:
                torch.mul(grad, emb_mask, out=target.view(C, *params[j].shape))
            else:
                target.copy_(grad.reshape(C, -1))
            offset += sizes[j]
        return out

    # Gram blocks: float32 rows multiply in chunks of 2^16 columns, each chunk's product added in float64
    # (measured on MiniLM gradient rows: 3e-8 relative to the float64 product, 7× faster on 2 cores)
    chunk = 1 << 16 if head.dtype == torch.float32 else 1 << 18

    def accumulate(G: torch.Tensor) -> None:
        for start in range(0, G.shape[1], chunk):
            block = G[:, start : start + chunk]
            K[:, : n_train * C] += (block @ block[: n_train * C].T).double()

    spill_to = Path(spill_dir or tempfile.gettempdir())
    needed = n_rows * sum(sizes) * itemsize
    if (
        spill
        and len(groups) > 1
        and device.type == "cpu"
        and spill_to.is_dir()
        and needed < 0.5 * shutil.disk_usage(spill_to).free
    ):
        everything = list(range(len(params)))
        bounds = np.cumsum([0] + [sum(sizes[j] for j in group) for group in groups])
        with tempfile.TemporaryDirectory(dir=spill_to, prefix="ntk-rows-") as folder:
            paths = [Path(folder) / f"group{g}.bin" for g in range(len(groups))]
            files = [path.open("wb") for path in paths]
            try:
                for i in idx:
                    rows = write_rows(
                        torch.empty((C, sum(sizes)), dtype=head.dtype), logits_of(i), everything
                    )
                    rows = rows.numpy()
                    for f, lo, hi in zip(files, bounds[:-1], bounds[1:]):
                        np.ascontiguousarray(rows[:, lo:hi]).tofile(f)
                    if progress is not None:
                        progress.update(1)
            finally:
                for f in files:
                    f.close()
            dtype = torch.empty(0, dtype=head.dtype).numpy().dtype
            for path, lo, hi in zip(paths, bounds[:-1], bounds[1:]):
                accumulate(torch.from_numpy(np.fromfile(path, dtype=dtype).reshape(n_rows, hi - lo)))
                path.unlink()
        passes = n * C
    else:
        widths = [sum(sizes[j] for j in group) for group in groups]
        # one buffer for every group, so that its pages are touched once
        buffer = torch.empty(n_rows * max(widths), dtype=head.dtype, device=device)
        passes = 0
        for group, width in zip(groups, widths):
            G = buffer[: n_rows * width].view(n_rows, width)
            for row, i in enumerate(_ticking(idx, progress)):
                write_rows(G[row * C : (row + 1) * C], logits_of(i), group)
            passes += n * C
            accumulate(G)
        del buffer
    K = K.cpu().numpy()
    K[: n_train * C, n_train * C :] = K[n_train * C :, : n_train * C].T
    return K.reshape(n, C, n, C), passes, len(groups), int(sum(sizes))


def _ticking(items, progress):
    """`items`, ticking `progress` (a tqdm bar or None) once per item."""
    for item in items:
        yield item
        if progress is not None:
            progress.update(1)


def compute_kernels(
    model: LinearHeadClassifier,
    enc_train: Encoded,
    train_idx,
    enc_eval: Encoded,
    eval_idx,
    embeddings: str = "exact",
    memory_gib: float = 3.0,
    seed: int = 0,
    progress=None,
    subset: str = "all",
    spill: bool = False,
    spill_dir: str | None = None,
) -> KernelParts:
    """P and F for `train_idx` of `enc_train` followed by `eval_idx` of `enc_eval` (`spill`, `spill_dir`:
    see `ft_effective_kernel`)."""
    merged = Encoded(
        input_ids=[enc_train.input_ids[i] for i in train_idx] + [enc_eval.input_ids[i] for i in eval_idx],
        token_type_ids=None
        if enc_train.token_type_ids is None
        else [enc_train.token_type_ids[i] for i in train_idx]
        + [enc_eval.token_type_ids[i] for i in eval_idx],
        labels=np.concatenate([enc_train.labels[train_idx], enc_eval.labels[eval_idx]]),
        pad_id=enc_train.pad_id,
    )
    order = np.arange(len(merged))
    phi0, logits0 = initial_outputs(model, merged, order)
    F, passes, n_groups, n_params = ft_effective_kernel(
        model,
        merged,
        order,
        len(train_idx),
        embeddings,
        memory_gib,
        seed=seed,
        progress=progress,
        subset=subset,
        spill=spill,
        spill_dir=spill_dir,
    )
    return KernelParts(
        p_scalar=phi0 @ phi0.T + 1.0,
        F=F,
        logits0=logits0,
        labels=merged.labels,
        n_train=len(train_idx),
        backward_passes=passes,
        parameter_groups=n_groups,
        n_parameters=n_params,
    )


def full_ntk_reference(model: LinearHeadClassifier, enc: Encoded, idx, lora_only: bool = False) -> np.ndarray:
    """Θ over all parameters (or, with `lora_only`, the LoRA matrices and the head) by torch.func.jacrev.

    Independent of `ft_effective_kernel`: for tests on tiny models only (it materialises every Jacobian).
    Returns (n, C, n, C).
    """
    from torch.func import functional_call, jacrev

    model.eval()
    params = {
        k: v.detach()
        for k, v in model.named_parameters()
        if not lora_only or "lora_" in k or k.startswith("head.")
    }
    jacobians = []
    for i in idx:
        batch = _single(enc, i)

        def logits(p, batch=batch):
            return functional_call(model, p, args=(), kwargs=batch)[0]

        jac = jacrev(logits)(params)
        jacobians.append(torch.cat([j.reshape(j.shape[0], -1) for j in jac.values()], dim=1))
    J = torch.stack(jacobians).double()  # (n, C, P)
    return torch.einsum("ncp,mdp->ncmd", J, J).numpy()
