"""Where and in which precision a run or a kernel computes: ``device`` and ``precision`` settings.

``device``: ``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``. It is not part of
any cache key: a run's numbers do not depend on where they were computed beyond floating-point noise, and
results from any device share the cache; each run records its device and versions (`environment`).
``precision``: ``fp32`` (TF32 off, so a GPU computes what the CPU computes) or ``bf16`` (autocast of the
forward passes; part of every cache key).
"""

from __future__ import annotations

import contextlib
import re

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
PRECISIONS = ("fp32", "bf16")


class DeviceError(ValueError):
    """A device that this machine does not have (one line, before any work)."""


def check_device_name(device: str) -> str:
    """The setting itself: auto, cpu, cuda or cuda:N (raises ValueError otherwise)."""
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        raise ValueError("must be auto, cpu, cuda or cuda:N")
    return device


def resolve_device(device: str = "auto"):
    """The torch.device for a setting; `DeviceError` when CUDA is asked for and absent."""
    import torch

    try:
        check_device_name(device)
    except ValueError as err:
        raise DeviceError(f"device={device!r} {err}") from None
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device={device!r}, but this machine has no usable GPU (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda or 'none'}); use device=cpu or device=auto"
        )
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise DeviceError(
            f"device={device!r}, but this machine has {torch.cuda.device_count()} GPU(s) (cuda:0 … "
            f"cuda:{torch.cuda.device_count() - 1})"
        )
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32: results comparable with the CPU's
    torch.backends.cudnn.allow_tf32 = False
    return torch.device("cuda", index)


def autocast(device, precision: str):
    """Context for forward passes: bf16 autocast on `device` for ``bf16``, nothing for ``fp32``."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is unknown; valid: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def environment(device) -> dict:
    """What computed a result: device, its name, torch and CUDA versions, CPU threads."""
    import torch

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "threads": torch.get_num_threads(),
    }


def gpu_memory_gib(device) -> dict | None:
    """Free and peak-allocated GPU memory (GiB) on a CUDA device, else None."""
    import torch

    if device.type != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    return {
        "free_gib": free / 2**30,
        "total_gib": total / 2**30,
        "peak_allocated_gib": torch.cuda.max_memory_allocated(device) / 2**30,
    }
