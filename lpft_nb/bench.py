"""Benchmark: training-step time, feature throughput, LP fit time and peak memory on this machine.

Numbers are measured and printed, never asserted: ``python -m lpft_nb bench``.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import torch

from .analysis.kernels import KernelSpec, get_kernels
from .config import DEFAULT_MODEL
from .device import autocast, environment, gpu_memory_gib, resolve_device
from .model.classifier import build_classifier
from .resources import peak_rss_gib


def _random_batch(vocab: int, batch: int, length: int, seed: int = 0, device=None) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {
        "input_ids": torch.randint(1000, vocab, (batch, length), generator=g),
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
    }
    return {k: v.to(device or "cpu") for k, v in out.items()}


def _sync(device) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_train_step(
    model_name: str, lora: bool, batch: int, length: int, repeats: int, device=None, precision: str = "fp32"
) -> float:
    """Median seconds of one forward + backward + AdamW step on `device` (2 warm-up steps first)."""
    model = build_classifier(model_name, 3, seed=0, lora=lora).to(device or "cpu")
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0)
    data = _random_batch(model.encoder.config.vocab_size, batch, length, device=device)
    labels = torch.zeros(batch, dtype=torch.long, device=device or "cpu")
    times = []
    for i in range(repeats + 2):
        _sync(device)
        start = time.perf_counter()
        with autocast(torch.device(device or "cpu"), precision):
            logits = model(**data)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        _sync(device)
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_features(
    model_name: str, batch: int, length: int, repeats: int, device=None, precision: str = "fp32"
) -> float:
    """Examples per second of eval-mode feature extraction on `device`."""
    model = build_classifier(model_name, 3, seed=0).to(device or "cpu").eval()
    data = _random_batch(model.encoder.config.vocab_size, batch, length, device=device)
    with torch.inference_mode(), autocast(torch.device(device or "cpu"), precision):
        model.features(**data)
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            model.features(**data)
        _sync(device)
    return batch * repeats / (time.perf_counter() - start)


def time_lp_fit(model_name: str, device=None) -> tuple[float, float, int]:
    """(seconds, ‖V‖_F, n) of the paper's cross-validated LP on CB's training features (extracted on
    `device`; the fit itself runs on the CPU)."""
    from .data.tasks import load_task
    from .model.classifier import load_tokenizer
    from .model.probe import fit_linear_probe
    from .model.train import encode, predict

    task = load_task("cb")
    model = build_classifier(model_name, task.num_classes, seed=0).to(device or "cpu")
    feats = predict(model, encode(task.train, load_tokenizer(model_name), 128), 32)[1]
    start = time.perf_counter()
    probe = fit_linear_probe(feats, task.train.labels, task.num_classes, C="cv", seed=1)
    return time.perf_counter() - start, probe.weight_norm, len(feats)


def run_benchmark(
    model: str = DEFAULT_MODEL, quick: bool = False, device: str = "auto", precision: str = "fp32"
) -> list[tuple[str, str]]:
    """Measure and print the table on `device`; returns its rows."""
    from .data.tasks import load_task

    dev = resolve_device(device)
    load_task("cb")  # the LP fit at the end reads CB: a missing data folder is one line before any timing
    repeats = 3 if quick else 10
    env = environment(dev)
    rows = [
        ("device", f"{env['device']} ({env['device_name']}), torch {env['torch']}, CUDA {env['cuda']}"),
        ("torch threads", str(torch.get_num_threads())),
        ("model", model),
        ("precision", precision),
    ]
    for key, value in rows:
        print(f"{key:<52} {value}", flush=True)
    for lora in (False, True):
        for length in (64, 128):
            sec = time_train_step(model, lora, 8, length, repeats, device=dev, precision=precision)
            rows.append(
                (f"{'LoRA' if lora else 'FT'} train step, batch 8, length {length} (s)", f"{sec:.3f}")
            )
            print(f"{rows[-1][0]:<52} {rows[-1][1]}", flush=True)
    for length in (64, 128):
        rows.append(
            (
                f"feature extraction, batch 32, length {length} (examples/s)",
                f"{time_features(model, 32, length, max(2, repeats // 2), dev, precision):.1f}",
            )
        )
        print(f"{rows[-1][0]:<52} {rows[-1][1]}", flush=True)
    sec, norm, n = time_lp_fit(model, dev)
    rows.append((f"LP fit on CB (LogisticRegressionCV, n={n}) (s)", f"{sec:.2f}  (‖V‖_F = {norm:.3f})"))
    print(f"{rows[-1][0]:<52} {rows[-1][1]}", flush=True)
    rows.append(("peak RSS (GiB)", f"{peak_rss_gib():.2f}"))
    print(f"{rows[-1][0]:<52} {rows[-1][1]}", flush=True)
    memory = gpu_memory_gib(dev)
    if memory is not None:
        rows.append(("peak GPU memory allocated (GiB)", f"{memory['peak_allocated_gib']:.2f}"))
        print(f"{rows[-1][0]:<52} {rows[-1][1]}", flush=True)
    return rows


def ntk_benchmark(
    model: str = DEFAULT_MODEL,
    n: int = 64,
    dataset: str = "cb",
    memory_gib: float = 5.0,
    device: str = "auto",
) -> dict:
    """Time and memory of the exact kernels for FT and LoRA on `dataset`, fresh (no cache); prints a table."""
    rows = {}
    with tempfile.TemporaryDirectory() as cache:
        for setting in ("lp_ft", "lora"):
            result = get_kernels(
                KernelSpec(
                    dataset=dataset, setting=setting, n=n, model=model, cache_dir=cache, device=device
                ),
                memory_gib=memory_gib,
            )
            enc = build_classifier(model, 3, 0).encoder.config
            rows[setting] = {
                "seconds": result.seconds,
                "peak_rss_gib": result.peak_rss_gib,
                "backward_passes": result.parts.backward_passes,
                "authors_backward_passes": result.authors_backward_passes(
                    enc.hidden_size, enc.num_hidden_layers
                ),
                "parameter_groups": result.parts.parameter_groups,
                "parameters": result.parts.n_parameters,
            }
    print(
        f"NTK benchmark: {model}, {dataset}, N = {n} train + {n} test examples, length ≤ 128, "
        f"{torch.get_num_threads()} threads, Jacobian block ≤ {memory_gib:g} GiB"
    )
    print(
        f"{'setting':<8} {'seconds':>8} {'peak RSS GiB':>13} {'params':>10} {'groups':>7} "
        f"{'backward passes':>16} {'authors method':>15}"
    )
    for setting, r in rows.items():
        print(
            f"{setting:<8} {r['seconds']:8.1f} {r['peak_rss_gib']:13.2f} {r['parameters']:10d} "
            f"{r['parameter_groups']:7d} {r['backward_passes']:16d} {r['authors_backward_passes']:15d}"
        )
    return rows
