"""Device and precision settings, the model download on first use, and (with a GPU) CPU/GPU agreement."""

import numpy as np
import pytest
import torch

from lpft_nb.cli import main
from lpft_nb.config import ConfigError, RunConfig
from lpft_nb.device import DeviceError, autocast, resolve_device
from lpft_nb.model import hub

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"device": "gpu"}, "device='gpu' must be auto, cpu, cuda or cuda:N"),
        ({"device": "cuda:x"}, "must be auto, cpu, cuda or cuda:N"),
        ({"precision": "fp16"}, "precision='fp16' is unknown; valid: fp32, bf16"),
    ],
)
def test_bad_device_or_precision_is_one_line(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        RunConfig.from_dict(values)


def test_the_device_is_not_part_of_the_key_and_the_precision_is():
    base = RunConfig.from_dict({"dataset": "cb", "method": "ft"})
    assert base.replace(device="cpu").identity() == base.replace(device="cuda:1").identity()
    assert base.replace(precision="bf16").identity() != base.identity()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line_before_any_work(capsys):
    with pytest.raises(DeviceError, match="no usable GPU"):
        resolve_device("cuda")
    assert main(["run", "--dataset", "cb", "--method", "lp", "--set", "device=cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "use device=cpu or device=auto" in err
    assert main(["bench", "--device", "cuda:0"]) == 2


def test_auto_is_the_cpu_here_unless_a_gpu_is_present():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_bf16_autocast_on_the_cpu_changes_the_matmul_dtype_and_fp32_does_not():
    x = torch.randn(4, 4)
    with autocast(torch.device("cpu"), "bf16"):
        assert (x @ x).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert (x @ x).dtype == torch.float32


def test_a_missing_hub_model_is_downloaded_on_first_use(monkeypatch, tmp_path):
    folder = tmp_path / "models--org--m" / "snapshots" / "abc123"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    calls = []

    def fake_snapshot_download(name, local_files_only=False, **kwargs):
        calls.append(local_files_only)
        if local_files_only:
            raise FileNotFoundError("not in the cache")
        return str(folder)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    assert hub.resolve_model_path("org/m") == str(folder)
    assert calls == [True, False]
    assert hub.model_revision("org/m") == "abc123"


def test_offline_the_missing_model_is_one_clear_line(monkeypatch):
    def unreachable(name, local_files_only=False, **kwargs):
        raise (FileNotFoundError if local_files_only else ConnectionError)("no network")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.snapshot_download", unreachable)
    with pytest.raises(hub.ModelNotFoundError, match="the Hub cannot be reached"):
        hub.resolve_model_path("org/absent")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.ModelNotFoundError, match="HF_HUB_OFFLINE is set"):
        hub.resolve_model_path("org/absent")


@cuda
@pytest.mark.cuda
def test_a_run_on_the_gpu_matches_the_cpu(tiny_run):
    from lpft_nb.runs.run import execute_run

    cfg = RunConfig.from_dict({**tiny_run, "method": "ft", "seed": 1})
    cpu = execute_run(cfg.replace(device="cpu"), progress=False)
    gpu = execute_run(cfg.replace(device="cuda"), progress=False)
    assert gpu[0]["environment"]["device"].startswith("cuda")
    # the forward pass agrees to float32 rounding
    np.testing.assert_allclose(
        gpu[2]["features_before_test"], cpu[2]["features_before_test"], rtol=1e-4, atol=1e-5
    )
    # after training, Adam's normalised steps amplify rounding in near-zero gradients: the gpu-check's
    # tolerance (2 % head norm) and logits within 1e-3 (measured on an H200: 1.7e-4)
    assert gpu[0]["head_norm_final"] == pytest.approx(cpu[0]["head_norm_final"], rel=0.02)
    np.testing.assert_allclose(gpu[2]["logits_test"], cpu[2]["logits_test"], atol=1e-3)


@cuda
@pytest.mark.cuda
def test_the_kernel_on_the_gpu_matches_the_cpu(tiny_run, tmp_path):
    from lpft_nb.analysis.kernels import KernelSpec, get_kernels

    spec = KernelSpec(
        dataset="cb", setting="lp_ft", n=4, model=tiny_run["model"], max_train=30, max_length=64
    )
    cpu = get_kernels(KernelSpec(**{**spec.__dict__, "device": "cpu", "cache_dir": str(tmp_path / "a")}))
    gpu = get_kernels(KernelSpec(**{**spec.__dict__, "device": "cuda", "cache_dir": str(tmp_path / "b")}))
    # P depends on the encoder at init only: float32 rounding
    np.testing.assert_allclose(gpu.parts.p_scalar, cpu.parts.p_scalar, rtol=1e-4)
    # F also holds the LP head, fitted by an iterative solver whose stopping point moves with the features'
    # rounding (measured on an H200: 0.8 % on the tiny model)
    np.testing.assert_allclose(gpu.parts.F, cpu.parts.F, rtol=0.02)


def test_the_gpu_check_compares_metrics_within_its_stated_tolerance():
    from lpft_nb.gpu_check import TOLERANCE, compare

    cpu = {"cb/ft/cv/1": {"test_accuracy": 0.5, "n_test": 50, "head_norm_final": 1.0}}
    close = {"cb/ft/cv/1": {"test_accuracy": 0.54, "n_test": 50, "head_norm_final": 1.01}}
    assert TOLERANCE["accuracy_examples"] == 2 and compare(cpu, close) == []
    far = {"cb/ft/cv/1": {"test_accuracy": 0.56, "n_test": 50, "head_norm_final": 1.05}}
    assert compare(cpu, far) == [
        "cb/ft/cv/1: test accuracy differs by 3 examples",
        "cb/ft/cv/1: head norm differs by 0.05 (5.0 %)",
    ]
    assert compare(cpu, {}) == ["cb/ft/cv/1: not run on the GPU"]
    # a near-zero norm is compared in absolute terms (0.01), not relative ones
    tiny = {"cb/ft/cv/1": {"test_accuracy": 0.5, "n_test": 50, "head_norm_final": 0.0200}}
    assert compare(tiny, {"cb/ft/cv/1": {**tiny["cb/ft/cv/1"], "head_norm_final": 0.0208}}) == []
    assert compare(tiny, {"cb/ft/cv/1": {**tiny["cb/ft/cv/1"], "head_norm_final": 0.0350}}) != []


def test_the_recorded_gpu_check_agrees_with_the_current_tolerance_and_its_table():
    import json

    from lpft_nb.config import REPO_ROOT
    from lpft_nb.gpu_check import compare, summary_table

    record = json.loads((REPO_ROOT / "book" / "measured" / "gpu-check-h200.json").read_text())
    assert compare(record["cpu_runs"], record["gpu_runs"]) == record["problems"]
    table = summary_table(record)
    assert table.loc["runs outside the tolerance", "measured"] == str(len(record["problems"]))
    assert table.loc["CUDA tests (pytest -m cuda)", "measured"] == "passed"
    assert len(record["gpu_runs"]) == record["dynamics"]["runs"]
