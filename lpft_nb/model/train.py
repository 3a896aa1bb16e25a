"""Tokenisation, batched inference and the fine-tuning loop shared by FT, LP-FT, LoRA and LP-LoRA.

Optimisation follows the HF Trainer defaults the authors used: AdamW (weight decay 0, betas 0.9/0.999,
eps 1e-8), linear decay to 0 with no warm-up, gradient clipping at 1.0, evaluation on the validation
split after every epoch, and the best epoch kept (strictly greater accuracy, so ties keep the earlier).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data.tasks import Split
from ..device import autocast
from .classifier import LinearHeadClassifier


class TrainingDiverged(ValueError):
    """The loss or the head became non-finite during fine-tuning (one line: epoch, step, lr)."""


@dataclass
class Encoded:
    """Token ids of one split (unpadded, one array per example) and its labels."""

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    labels: np.ndarray
    pad_id: int

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(ids) for ids in self.input_ids])

    def batch(self, idx, device=None) -> dict[str, torch.Tensor]:
        """Dynamically padded tensors for the examples `idx`: input_ids, attention_mask (and token_type_ids),
        on `device` (default: the CPU)."""
        width = max(len(self.input_ids[i]) for i in idx)
        ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        types = torch.zeros((len(idx), width), dtype=torch.long) if self.token_type_ids is not None else None
        for row, i in enumerate(idx):
            n = len(self.input_ids[i])
            ids[row, :n] = torch.from_numpy(self.input_ids[i])
            mask[row, :n] = 1
            if types is not None:
                types[row, :n] = torch.from_numpy(self.token_type_ids[i])
        out = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            out["token_type_ids"] = types
        if device is not None and torch.device(device).type != "cpu":
            out = {k: v.to(device, non_blocking=True) for k, v in out.items()}
        return out


def encode(split: Split, tokenizer, max_length: int) -> Encoded:
    """Tokenise a split (pairs as the tokenizer's pair encoding, longest-first truncation)."""
    enc = tokenizer(split.texts, split.pairs, truncation=True, max_length=max_length)
    types = enc.get("token_type_ids")
    return Encoded(
        input_ids=[np.asarray(x, dtype=np.int64) for x in enc["input_ids"]],
        token_type_ids=None if types is None else [np.asarray(x, dtype=np.int64) for x in types],
        labels=np.asarray(split.labels, dtype=np.int64),
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
    )


def model_device(model: torch.nn.Module) -> torch.device:
    """The device the model's parameters live on."""
    return next(model.parameters()).device


@torch.inference_mode()
def predict(
    model: LinearHeadClassifier,
    data: Encoded,
    batch_size: int = 32,
    desc: str | None = None,
    precision: str = "fp32",
) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode logits (n, C) and features φ (n, d) as float32 numpy arrays in the input order, computed on
    the model's device (batched by length, so little padding is computed; one transfer to the host)."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    order = np.argsort(-data.lengths, kind="stable")
    logits, feats = [], []
    batches = range(0, len(order), batch_size)
    with autocast(device, precision):
        for start in tqdm(batches, desc=desc, disable=desc is None, leave=False):
            idx = order[start : start + batch_size]
            phi = model.features(**data.batch(idx, device))
            feats.append(phi.float())
            logits.append(model.head(phi).float())
    model.train(was_training)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return torch.cat(logits).cpu().numpy()[inverse], torch.cat(feats).cpu().numpy()[inverse]


def fine_tune(
    model: LinearHeadClassifier,
    train: Encoded,
    val: Encoded,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    eval_batch_size: int = 32,
    progress: bool = True,
    precision: str = "fp32",
    at_last_step=None,
) -> dict:
    """Train every parameter with requires_grad on the model's device; keep the best-validation epoch.

    `precision` "bf16" autocasts the forward pass (the parameters and AdamW's state stay fp32).
    `at_last_step(model)`, when given, is called after the last step and before the best epoch is restored,
    only when that epoch is not the last (otherwise the restored model is the last step's).

    Returns the history: per step (loss, train accuracy of the batch, ‖V‖_F, ‖b‖, learning rate) and per
    epoch (validation accuracy), plus `best_epoch` (1-based).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, (total - step) / total))
    order_rng = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    loss_fn = nn.CrossEntropyLoss()
    device = model_device(model)
    history = {
        "step": [],
        "epoch_float": [],
        "loss": [],
        "train_accuracy": [],
        "head_norm": [],
        "bias_norm": [],
        "lr": [],
        "epoch": [],
        "val_accuracy": [],
        "epoch_head_norm": [],
    }
    best_acc, best_state, best_epoch = -1.0, None, 0
    bar = tqdm(total=total, desc="fine-tune", disable=not progress, leave=False)
    step = 0
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(train), generator=order_rng).numpy()
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size]
            batch = train.batch(idx, device)
            labels = torch.from_numpy(train.labels[idx]).to(device)
            with autocast(device, precision):
                logits = model(**batch)
            loss = loss_fn(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            history["lr"].append(schedule.get_last_lr()[0])
            optimizer.step()
            schedule.step()
            step += 1
            v_norm, b_norm = model.head_norms()
            if not (math.isfinite(loss.item()) and math.isfinite(v_norm)):
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch}, step {step}: loss {loss.item():g}, head norm {v_norm:g} "
                    f"(lr {history['lr'][-1]:g}); nothing was cached: lower lr"
                )
            history["step"].append(step)
            history["epoch_float"].append(step / steps_per_epoch)
            history["loss"].append(loss.item())
            history["train_accuracy"].append(
                float((logits.argmax(1) == labels).float().mean())
            )  # a history scalar
            history["head_norm"].append(v_norm)
            history["bias_norm"].append(b_norm)
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss.item():.3f}")
        val_logits, _ = predict(model, val, eval_batch_size, precision=precision)
        val_acc = float(np.mean(val_logits.argmax(1) == val.labels))
        history["epoch"].append(epoch)
        history["val_accuracy"].append(val_acc)
        history["epoch_head_norm"].append(model.head_norms()[0])
        if val_acc > best_acc:
            best_acc, best_epoch = val_acc, epoch
            best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    bar.close()
    if at_last_step is not None and best_epoch != epochs:
        at_last_step(model)
    if best_state is not None:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in best_state:
                    param.copy_(best_state[name])
    model.eval()
    history["best_epoch"] = best_epoch
    return history
