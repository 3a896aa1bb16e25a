"""A GPU check in one go, for an offline GPU node with its own torch: ``python -m lpft_nb gpu-check``.

Two steps, because GPU nodes are often offline and take few files along:

1. ``gpu-check prepare --to DIR`` (here, on the CPU): MiniLM's weights stored as fp16 (≈ 45 MB; upcast to
   fp32 on load, so the CPU and the GPU use the same rounded weights), RoBERTa-base's config (a
   random-weight model of its shape is built on the node: the paper profile's FLOPs without its
   download), and the CPU reference: the dynamics page's runs under a profile, computed on the CPU with the
   fp16 MiniLM, with their wall time.
2. ``gpu-check run --from DIR`` (on the GPU, < 10 minutes, no network): the CUDA tests (``pytest -m
   cuda``), ``bench`` on the GPU for both models, and the same dynamics runs on the GPU, their wall time
   beside the CPU's and their metrics compared with the CPU's within `TOLERANCE`. Writes DIR/report.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .config import resolve_data_dir

# GPU and CPU runs differ by floating-point order only; over a few hundred Adam steps that may move a
# prediction near the decision boundary. Accuracies may differ by at most 2 test examples, norms by 2 %.
TOLERANCE = {"accuracy_examples": 2, "head_norm_relative": 0.02}
ROBERTA_BASE_CONFIG = {
    "architectures": ["RobertaModel"],
    "model_type": "roberta",
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}


def _study(profile: str, model: str, device: str):
    from .book.plans import page_plan
    from .sweep import page_parameters_under

    params = {**page_parameters_under("dynamics", profile), "model": model}
    study = page_plan("dynamics", params).studies["main"]
    study.settings = {**study.settings, "device": device}
    return study


def _metrics(study) -> dict:
    out = {}
    for cfg in study.configs():
        run = study.get(cfg.dataset, cfg.method, cfg.lp_C)[study.seeds.index(cfg.seed)]
        label = f"{cfg.dataset}/{cfg.method}/{cfg.lp_C}/{cfg.seed}"
        out[label] = {
            "test_accuracy": run.metrics["test"]["accuracy"],
            "n_test": run.metrics["test"]["n"],
            "head_norm_final": run.metrics["head_norm_final"],
            "environment": run.metrics.get("environment"),
        }
    return out


def prepare(folder: Path, profile: str = "default") -> None:
    """Models and the CPU reference into `folder` (run where the embedded MiniLM is installed)."""
    import torch

    from .model.classifier import embedded_model_path, load_encoder, load_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    minilm = folder / "minilm-fp16"
    load_encoder(str(embedded_model_path())).to(torch.float16).save_pretrained(minilm)
    load_tokenizer(str(embedded_model_path())).save_pretrained(minilm)
    (folder / "roberta-base-config.json").write_text(json.dumps(ROBERTA_BASE_CONFIG, indent=1))
    data = resolve_data_dir(None)
    for task in ("CB", "RTE"):  # what the dynamics page and the CUDA tests read
        shutil.copytree(data / "superglue" / task, folder / "data" / "superglue" / task, dirs_exist_ok=True)
    start = time.perf_counter()
    study = _study(profile, str(minilm), "cpu").run()
    reference = {"profile": profile, "seconds": time.perf_counter() - start, "runs": _metrics(study)}
    (folder / "cpu_reference.json").write_text(json.dumps(reference, indent=1))
    print(f"prepared {folder}: {len(reference['runs'])} CPU runs in {reference['seconds']:.0f} s")


def _random_roberta(folder: Path) -> Path:
    """A random-weight model of RoBERTa-base's shape (with MiniLM's fp16 folder's tokenizer)."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    target = folder / "roberta-base-shape"
    if not (target / "config.json").is_file():
        config = RobertaConfig(**json.loads((folder / "roberta-base-config.json").read_text()))
        RobertaModel(config, add_pooling_layer=False).save_pretrained(target)
        AutoTokenizer.from_pretrained(str(folder / "minilm-fp16")).save_pretrained(target)
    return target


def compare(cpu: dict, gpu: dict) -> list[str]:
    """Runs whose GPU metrics leave `TOLERANCE` of the CPU's."""
    problems = []
    for label, c in cpu.items():
        g = gpu.get(label)
        if g is None:
            problems.append(f"{label}: not run on the GPU")
            continue
        examples = abs(g["test_accuracy"] - c["test_accuracy"]) * c["n_test"]
        if examples > TOLERANCE["accuracy_examples"] + 1e-9:
            problems.append(f"{label}: test accuracy differs by {examples:.0f} examples")
        relative = abs(g["head_norm_final"] - c["head_norm_final"]) / max(c["head_norm_final"], 1e-12)
        if relative > TOLERANCE["head_norm_relative"]:
            problems.append(f"{label}: head norm differs by {100 * relative:.1f} %")
    return problems


def run(folder: Path, device: str = "cuda") -> int:
    """The check on this machine's `device`; prints and writes folder/report.json. Exit code 1 on a
    failed test or a metric outside the tolerance."""
    import torch

    from .bench import run_benchmark
    from .device import environment, resolve_device

    os.environ["LPFT_DATA_DIR"] = str(folder / "data")  # the copy `prepare` made: the node has no network
    env = environment(resolve_device(device))
    print(f"gpu-check on {env['device']} ({env['device_name']}), torch {env['torch']}, CUDA {env['cuda']}")
    report: dict = {"environment": env, "tolerance": TOLERANCE}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests"], check=False)
    report["cuda_tests_exit_code"] = tests.returncode
    report["bench"] = {}
    for name, model in (
        ("minilm-fp16", folder / "minilm-fp16"),
        ("roberta-base-shape", _random_roberta(folder)),
    ):
        print(f"-- bench {name}")
        report["bench"][name] = dict(run_benchmark(str(model), quick=True, device=device))
    reference = json.loads((folder / "cpu_reference.json").read_text())
    start = time.perf_counter()
    study = _study(reference["profile"], str(folder / "minilm-fp16"), device).run()
    report["dynamics"] = {
        "profile": reference["profile"],
        "runs": len(reference["runs"]),
        "gpu_seconds": time.perf_counter() - start,
        "cpu_seconds": reference["seconds"],
    }
    problems = compare(reference["runs"], _metrics(study))
    report["problems"] = problems
    if torch.cuda.is_available():
        report["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    (folder / "report.json").write_text(json.dumps(report, indent=1))
    d = report["dynamics"]
    print(
        f"dynamics runs ({d['runs']}, profile {d['profile']}): {d['gpu_seconds']:.0f} s on {env['device']} "
        f"against {d['cpu_seconds']:.0f} s on the CPU; {len(problems)} outside the tolerance {TOLERANCE}"
    )
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems or tests.returncode not in (0, 5) else 0  # 5: no test collected
