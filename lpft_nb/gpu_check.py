"""A GPU check in one go, for an offline GPU node with its own torch: ``python -m lpft_nb gpu-check``.

Two steps, because GPU nodes are often offline and take few files along:

1. ``gpu-check prepare --to DIR`` (here, on the CPU): MiniLM's weights stored as fp16 (≈ 45 MB; upcast to
   fp32 on load, so the CPU and the GPU use the same rounded weights), RoBERTa-base's config (a
   random-weight model of its shape is built on the node: the paper profile's FLOPs without its
   download), and the CPU reference: the dynamics page's runs under a profile, computed on the CPU with the
   fp16 MiniLM, with their wall time.
2. ``gpu-check run --from DIR`` (on the GPU, < 10 minutes, no network): the CUDA tests (``pytest -m
   cuda``), ``bench`` on the GPU for both models (RoBERTa's shape also under bf16), the NTK benchmark at
   N = 64, and the same dynamics runs on the GPU, their wall time
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
# prediction near the decision boundary. Accuracies may differ by at most 2 test examples, head norms by
# 2 % or by 0.01 (whichever is larger: a relative bound means nothing for a near-zero norm; on an H200 a
# cross-validated RTE head of norm 0.0007 grew to 0.0200 on the CPU and 0.0208 on the GPU). 0.01 is 2 %
# of a freshly initialised head's norm (std 0.02, 2 × 384 weights: ≈ 0.55).
TOLERANCE = {"accuracy_examples": 2, "head_norm_relative": 0.02, "head_norm_absolute": 0.01}
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


def _dynamics_parameters(profile: str) -> dict:
    """The dynamics page's parameters under `profile` (read here: the node need not have jupytext)."""
    from .book.plans import page_parameters_under

    return page_parameters_under("dynamics", profile)


def _study(parameters: dict, model: str, device: str, cache_dir: str | None = None):
    from .book.plans import page_plan

    study = page_plan("dynamics", {**parameters, "model": model}).studies["main"]
    study.settings = {**study.settings, "device": device, **({"cache_dir": cache_dir} if cache_dir else {})}
    return study


def _metrics(study) -> dict:
    out = {}
    for cfg in study.configs():
        run = study.get(cfg.dataset, cfg.method, cfg.lp_C)[study.seeds.index(cfg.seed)]
        label = f"{cfg.dataset}/{cfg.method}/{cfg.lp_C}/{cfg.seed}"
        out[label] = {
            "test_accuracy": run.metrics["test"]["accuracy"],
            "n_test": run.metrics["test"]["n"],
            "head_norm_init": run.metrics["head_norm_init"],
            "head_norm_final": run.metrics["head_norm_final"],
            "environment": run.metrics.get("environment"),
        }
    return out


def prepare(folder: Path, profile: str = "default") -> None:
    """Models and the CPU reference into `folder` (run where the embedded MiniLM is installed)."""
    import torch

    from .model.classifier import load_encoder, load_tokenizer
    from .model.hub import embedded_model_path

    folder.mkdir(parents=True, exist_ok=True)
    minilm = folder / "minilm-fp16"
    load_encoder(str(embedded_model_path())).to(torch.float16).save_pretrained(minilm)
    load_tokenizer(str(embedded_model_path())).save_pretrained(minilm)
    (folder / "roberta-base-config.json").write_text(json.dumps(ROBERTA_BASE_CONFIG, indent=1))
    data = resolve_data_dir(None)
    for task in ("CB", "RTE"):  # what the dynamics page and the CUDA tests read
        shutil.copytree(data / "superglue" / task, folder / "data" / "superglue" / task, dirs_exist_ok=True)
    start = time.perf_counter()
    parameters = _dynamics_parameters(profile)
    study = _study(parameters, str(minilm), "cpu").run()
    reference = {
        "profile": profile,
        "parameters": parameters,
        "seconds": time.perf_counter() - start,
        "runs": _metrics(study),
    }
    (folder / "cpu_reference.json").write_text(json.dumps(reference, indent=1))
    print(f"prepared {folder}: {len(reference['runs'])} CPU runs in {reference['seconds']:.0f} s")


def _random_roberta(folder: Path) -> Path:
    """A random-weight model of RoBERTa-base's shape (with MiniLM's fp16 folder's tokenizer)."""
    from transformers import AutoTokenizer, RobertaConfig, RobertaModel

    target = folder / "roberta-base-shape"
    if not (target / "config.json").is_file():
        # two token types, not RoBERTa's one: MiniLM's (BERT's) tokenizer gives a sentence pair's second
        # sentence token type 1 (768 more parameters than RoBERTa-base; same FLOPs)
        shape = {**json.loads((folder / "roberta-base-config.json").read_text()), "type_vocab_size": 2}
        config = RobertaConfig(**shape)
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
        gap = abs(g["head_norm_final"] - c["head_norm_final"])
        allowed = max(TOLERANCE["head_norm_relative"] * c["head_norm_final"], TOLERANCE["head_norm_absolute"])
        if gap > allowed:
            problems.append(
                f"{label}: head norm differs by {gap:.4g} ({100 * gap / max(c['head_norm_final'], 1e-12):.1f} %)"
            )
    return problems


def run(folder: Path, device: str = "cuda") -> int:
    """The check on this machine's `device`; prints and writes folder/report.json. Exit code 1 on a
    failed test or a metric outside the tolerance."""
    import torch

    from .bench import ntk_benchmark, run_benchmark
    from .device import environment, resolve_device

    os.environ["LPFT_DATA_DIR"] = str(folder / "data")  # the copy `prepare` made: the node has no network
    os.environ["LPFT_EMBEDDED_MODEL_DIR"] = str(folder / "minilm-fp16")  # the tests' tokenizer, no wheel
    env = environment(resolve_device(device))
    print(f"gpu-check on {env['device']} ({env['device_name']}), torch {env['torch']}, CUDA {env['cuda']}")
    report: dict = {"environment": env, "tolerance": TOLERANCE}
    # only the files that hold CUDA tests: the others import the book's tools (papermill, jupytext),
    # which a GPU node need not have
    cuda_files = sorted(str(f) for f in Path("tests").glob("test_*.py") if "mark.cuda" in f.read_text())
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", *cuda_files], check=False)
    report["cuda_tests_exit_code"] = tests.returncode
    report["bench"] = {}
    for name, model in (
        ("minilm-fp16", folder / "minilm-fp16"),
        ("roberta-base-shape", _random_roberta(folder)),
    ):
        print(f"-- bench {name}")
        report["bench"][name] = dict(run_benchmark(str(model), quick=True, device=device))
    print("-- bench roberta-base-shape, bf16 autocast")
    report["bench"]["roberta-base-shape-bf16"] = dict(
        run_benchmark(str(folder / "roberta-base-shape"), quick=True, device=device, precision="bf16")
    )
    print("-- NTK, MiniLM, CB, N = 64")
    report["ntk"] = ntk_benchmark(str(folder / "minilm-fp16"), n=64, device=device, memory_gib=20.0)
    reference = json.loads((folder / "cpu_reference.json").read_text())
    start = time.perf_counter()
    study = _study(reference["parameters"], str(folder / "minilm-fp16"), device).run()
    report["dynamics"] = {
        "profile": reference["profile"],
        "runs": len(reference["runs"]),
        "gpu_seconds": time.perf_counter() - start,
        "cpu_seconds": reference["seconds"],
    }
    gpu_runs = _metrics(study)
    report["gpu_runs"] = gpu_runs
    problems = compare(reference["runs"], gpu_runs)
    report["problems"] = problems
    # a second time on the GPU, from a fresh cache: is the GPU itself run-to-run deterministic?
    repeat = _study(
        reference["parameters"], str(folder / "minilm-fp16"), device, str(folder / "repeat-cache")
    )
    again = _metrics(repeat.run())
    report["gpu_repeat_differs"] = compare(gpu_runs, again)
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


def summary_table(report: dict):
    """One recorded GPU check (`report.json`, or a copy of it) as a table: what ran, how long, what agreed."""
    import pandas as pd

    step = "FT train step, batch 8, length 128 (s)"
    features = "feature extraction, batch 32, length 128 (examples/s)"
    bench = report["bench"]
    d = report["dynamics"]
    rows = [
        ("CUDA tests (pytest -m cuda)", "passed" if report["cuda_tests_exit_code"] == 0 else "failed"),
        (
            f"dynamics page's runs ({d['runs']}, profile {d['profile']})",
            f"{d['gpu_seconds']:.0f} s on the GPU, {d['cpu_seconds']:.0f} s on the CPU",
        ),
        ("runs outside the tolerance", str(len(report["problems"]))),
        ("MiniLM FT step, batch 8, length 128", f"{float(bench['minilm-fp16'][step]):.3f} s"),
        ("RoBERTa-base shape FT step, fp32", f"{float(bench['roberta-base-shape'][step]):.3f} s"),
        ("RoBERTa-base shape FT step, bf16", f"{float(bench['roberta-base-shape-bf16'][step]):.3f} s"),
        ("RoBERTa-base shape features, fp32 (examples/s)", bench["roberta-base-shape"][features]),
        ("RoBERTa-base shape features, bf16 (examples/s)", bench["roberta-base-shape-bf16"][features]),
    ]
    rows += [
        (
            f"NTK at N = 64 on CB, {setting} (MiniLM)",
            f"{r['seconds']:.1f} s, {r['backward_passes']} backward passes",
        )
        for setting, r in report["ntk"].items()
    ]
    if "peak_gpu_memory_gib" in report:
        rows.append(("peak GPU memory", f"{report['peak_gpu_memory_gib']:.1f} GiB"))
    return pd.DataFrame(rows, columns=["what", "measured"]).set_index("what")
