import subprocess
import sys

import pytest

from lpft_nb.config import ConfigError, RunConfig, parse_assignment


def test_defaults_resolve_to_the_papers_table_6():
    cfg = RunConfig.from_dict({"dataset": "cb", "method": "lp_ft"})
    assert (cfg.resolved_batch_size(), cfg.resolved_lr()) == (8, 5e-6)
    assert RunConfig.from_dict({"dataset": "rte", "method": "lora"}).resolved_lr() == 1e-3


@pytest.mark.parametrize(
    "values, message",
    [
        ({"datset": "cb"}, "unknown key.*datset.*valid keys"),
        ({"dataset": "mnli"}, "dataset='mnli' is not a training dataset; valid: cb, rte, amazon"),
        ({"method": "sgd"}, "method='sgd' is unknown; valid: lp, ft, lp_ft, lora, lp_lora"),
        ({"lr": -1e-5}, "lr=-1e-05 must be > 0"),
        ({"epochs": 2.5}, "epochs=2.5 has type float; expected an integer"),
        ({"seed": True}, "seed=True has type bool; expected an integer"),
        ({"lp_C": "strong"}, "lp_C='strong' must be 'cv' or a positive number"),
        ({"lp_binary_head": "half"}, "lp_binary_head='half' is unknown"),
        ({"max_train": 0}, "max_train=0 must be >= 1 or null"),
        ({"seed": -1}, "seed=-1 must be >= 0"),
        ({"subset_seed": -3}, "subset_seed=-3 must be >= 0"),
    ],
)
def test_bad_settings_fail_with_one_clear_line(values, message):
    with pytest.raises(ConfigError, match=message) as err:
        RunConfig.from_dict(values, source="p.yaml")
    assert "\n" not in str(err.value) and str(err.value).startswith("p.yaml: ")


def test_yaml_numbers_and_cli_assignments():
    assert RunConfig.from_dict({"lr": "5e-5"}).lr == 5e-5  # YAML 1.1 reads 5e-5 as a string
    assert parse_assignment("lr=5e-5") == ("lr", 5e-5)
    assert parse_assignment("max_train=null") == ("max_train", None)
    assert parse_assignment("lp_C=cv") == ("lp_C", "cv")


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "lpft_nb", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_bad_input_exits_2_with_one_line():
    for args in (
        ["run", "--dataset", "mnli"],
        ["run", "--set", "lrr=1"],
        ["run", "--model", "no/such-model"],
        ["run", "--params", "missing.yaml"],
        ["plan", "--params", "missing.yaml"],
        ["bench", "--ntk", "--n", "1"],
        ["bench", "--ntk", "--memory-gib", "0"],
        ["ntk", "--seed", "-1"],
    ):
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert "Traceback" not in proc.stderr


def test_cli_plan_expands_lists(tmp_path):
    params = tmp_path / "sweep.yaml"
    params.write_text("dataset: cb\nmethod: [ft, lp_ft]\nseed: [1, 2, 3]\nepochs: 2\n")
    proc = _cli("plan", "--params", str(params))
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == 6
    import json

    specs = [json.loads(line) for line in lines]
    assert {(s["method"], s["seed"]) for s in specs} == {(m, s) for m in ("ft", "lp_ft") for s in (1, 2, 3)}


def test_cli_run_json_from_a_spec(tiny_model, data_dir, tmp_path):
    import json

    spec = json.dumps(
        {
            "dataset": "cb",
            "method": "lp",
            "model": tiny_model,
            "max_train": 20,
            "max_eval": 8,
            "data_dir": str(data_dir),
            "cache_dir": str(tmp_path),
        }
    )
    proc = _cli("run", "--spec", spec, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["method"] == "lp" and out["cache_hit"] is False
    assert set(out["metrics"]) >= {"val_accuracy", "test_accuracy", "ood"}
    assert (
        _cli("run", "--spec", spec, "--json").stdout
        and json.loads(_cli("run", "--spec", spec, "--json").stdout)["cache_hit"]
    )
