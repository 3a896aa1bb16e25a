"""The paper's classifier: pretrained encoder → φ(x) = final hidden state of the first token → dropout → Linear.

    f(x) = V φ(x) + b,   V ∈ R^{C×d} initialised N(0, 0.02²), b = 0   (no pooler, no dense+tanh)

Which folder a model setting loads from is `model.hub`'s job.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .hub import quiet_transformers, resolve_model_path

HEAD_INIT_STD = 0.02
FEATURE_DROPOUT = 0.1


def load_tokenizer(name: str, cache_dir: str | None = None):
    from transformers import AutoTokenizer

    with quiet_transformers():
        return AutoTokenizer.from_pretrained(resolve_model_path(name, cache_dir))


def load_encoder(name: str, cache_dir: str | None = None) -> nn.Module:
    """The pretrained encoder without its pooler, in eval mode."""
    from transformers import AutoModel

    path = resolve_model_path(name, cache_dir)
    with quiet_transformers():
        try:
            encoder = AutoModel.from_pretrained(path, add_pooling_layer=False)
        except TypeError:  # architectures without a pooler argument
            encoder = AutoModel.from_pretrained(path)
    return encoder.float().eval()  # fp32 whatever the checkpoint stores (weights saved as fp16 are upcast)


class LinearHeadClassifier(nn.Module):
    """Encoder + dropout + one linear head; `features` returns φ(x), shape (batch, d)."""

    def __init__(self, encoder: nn.Module, num_classes: int, dropout: float = FEATURE_DROPOUT):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_classes)
        nn.init.normal_(self.head.weight, mean=0.0, std=HEAD_INIT_STD)
        nn.init.zeros_(self.head.bias)

    def features(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.encoder(**kwargs).last_hidden_state[:, 0]

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> torch.Tensor:
        return self.head(self.dropout(self.features(input_ids, attention_mask, token_type_ids)))

    @torch.no_grad()
    def set_head(self, weight: np.ndarray, bias: np.ndarray) -> None:
        """Insert a fitted head: weight (C, d) and bias (C,), cast to the head's dtype and device."""
        w, b = self.head.weight, self.head.bias
        w.copy_(torch.from_numpy(np.asarray(weight)).to(device=w.device, dtype=w.dtype))
        b.copy_(torch.from_numpy(np.asarray(bias)).to(device=b.device, dtype=b.dtype))

    def head_norms(self) -> tuple[float, float]:
        """(‖V‖_F, ‖b‖_2)."""
        return float(self.head.weight.detach().norm()), float(self.head.bias.detach().norm())


def add_lora(model: LinearHeadClassifier, r: int, alpha: float) -> LinearHeadClassifier:
    """LoRA on the attention query and value projections (peft; A kaiming-uniform, B = 0, dropout 0).

    The encoder is frozen except the LoRA matrices; the head stays trainable.
    """
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=["query", "value"])
    model.encoder = inject_adapter_in_model(config, model.encoder)
    for name, param in model.encoder.named_parameters():
        param.requires_grad = "lora_" in name
    for param in model.head.parameters():
        param.requires_grad = True
    return model


def build_classifier(
    name: str,
    num_classes: int,
    seed: int,
    lora: bool = False,
    lora_r: int = 8,
    lora_alpha: float = 8.0,
    cache_dir: str | None = None,
) -> LinearHeadClassifier:
    """Load the encoder, then seed and initialise the head (and LoRA): same seed → same model."""
    encoder = load_encoder(name, cache_dir)
    torch.manual_seed(seed)
    model = LinearHeadClassifier(encoder, num_classes)
    if lora:
        add_lora(model, lora_r, lora_alpha)
    return model


def trainable_parameter_names(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]
