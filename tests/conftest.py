"""Shared fixtures: the real data folder, a tiny random BERT in a temporary folder, a private cache.

The data folder is $LPFT_DATA_DIR, else a shared/data folder beside the checkout (where CI stages a copy),
else the default folder that `python -m lpft_nb data download` fills. It is exported as LPFT_DATA_DIR
so that pages executed by the tests read it too.
"""

import os
from pathlib import Path

import pytest
import torch

from lpft_nb.config import REPO_ROOT, default_data_dir
from lpft_nb.model.hub import build_tiny_model

torch.set_num_threads(2)

if not os.environ.get("LPFT_DATA_DIR"):
    _shared = REPO_ROOT.parent / "shared" / "data"
    os.environ["LPFT_DATA_DIR"] = str(_shared if _shared.is_dir() else default_data_dir())


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["LPFT_DATA_DIR"]).resolve()
    if not (path / "superglue" / "CB" / "train.jsonl").is_file():
        pytest.fail(
            f"test data not found at {path}; run `python -m lpft_nb data download` "
            "or set LPFT_DATA_DIR to a data folder"
        )
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("models") / "tiny"))


@pytest.fixture()
def tiny_run(tiny_model, data_dir, tmp_path):
    """Settings of a seconds-long run on real CB data with the tiny model and a private cache."""
    return {
        "dataset": "cb",
        "model": tiny_model,
        "epochs": 2,
        "max_train": 30,
        "max_eval": 12,
        "data_dir": str(data_dir),
        "cache_dir": str(tmp_path / "cache"),
        "eval_batch_size": 16,
    }
