"""Bad input and faults, one table: (command, input, expected exit code, words of the one-line message).

Every row runs the command line in-process against the tiny random model and a private copy of the data
folder. No row may end in a traceback, print a non-finite number, or exit 0 with a wrong result; a failed
or interrupted run leaves the cache as it was.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lpft_nb.book.params import ParamError, check_profile, profiles
from lpft_nb.cli import main

BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"


@pytest.fixture()
def env(tiny_model, data_dir, tmp_path, monkeypatch):
    """A private data folder (CB, RTE and BOSS files copied), cache and working folder."""
    data = tmp_path / "data"
    shutil.copytree(data_dir / "superglue", data / "superglue")
    shutil.copytree(data_dir / "boss", data / "boss")
    monkeypatch.setenv("LPFT_DATA_DIR", str(data))
    monkeypatch.setenv("LPFT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return {"model": tiny_model, "data": data, "cache": tmp_path / "cache", "tmp": tmp_path}


def _tiny(model: str, *extra: str) -> list[str]:
    return ["--model", model, "--set", "epochs=1", "--set", "max_eval=8", "--set", "max_length=32", *extra]


def _prepare(case: str, env: dict) -> list[str]:
    """The command line of one row (and the files it needs)."""
    m, tmp, data = env["model"], env["tmp"], env["data"]
    run = ["run", "--dataset", "cb", "--json"]
    if case == "lp head when the capped subset would lose a class":
        return [*run, "--method", "lp_ft", *_tiny(m, "--set", "max_train=16", "--set", "subset_seed=1")]
    if case == "max_train below the number of classes":
        return [*run, "--method", "lp", *_tiny(m, "--set", "max_train=1")]
    if case == "binary --params file":
        (tmp / "p.yaml").write_bytes(BINARY)
        return ["run", "--params", str(tmp / "p.yaml")]
    if case == "data file with a non-UTF-8 byte":
        path = data / "superglue/CB/train.jsonl"
        lines = path.read_bytes().split(b"\n")
        lines[6] = lines[6][:20] + b"\xff" + lines[6][20:]
        path.write_bytes(b"\n".join(lines))
        return [*run, "--method", "lp", *_tiny(m)]
    if case == "data check of that folder":
        _prepare("data file with a non-UTF-8 byte", env)
        return ["data", "check", str(data)]
    if case == "cache path is a file":
        (tmp / "cachefile").write_text("x")
        return [*run, "--method", "lp", *_tiny(m, "--set", f"cache_dir={tmp / 'cachefile'}")]
    if case == "lr = inf":
        return [*run, "--method", "ft", *_tiny(m, "--set", "lr=inf")]
    if case == "lr = 1e30 (diverges)":
        return [*run, "--method", "ft", *_tiny(m, "--set", "lr=1e30", "--set", "max_train=16")]
    if case == "plan with an empty list":
        (tmp / "sweep.yaml").write_text("dataset: cb\nmethod: []\n")
        return ["plan", "--params", str(tmp / "sweep.yaml")]
    if case == "--spec with --set":
        return ["run", "--spec", '{"dataset": "cb", "method": "lp"}', "--set", "lr=abc"]
    if case == "--spec without dataset or method":
        return ["run", "--spec", '{"seed": 3}']
    if case == "book --pages with no names":
        return ["book", "--profile", "smoke", "--pages"]
    if case == "book with an unknown profile":
        return ["book", "--profile", "nosuch"]
    if case == "fork to a Sphinx name":
        return ["fork", "dynamics", "genindex"]
    if case == "fork to _toc":
        return ["fork", "dynamics", "_toc"]
    if case == "ntk with a bad setting":
        return ["ntk", "--setting", "sgd"]
    if case == "data check of a missing folder":
        return ["data", "check", str(tmp / "absent")]
    if case.startswith("profile "):  # `profile <name> <command...>`: a profile name that is not a folder name
        _, name, *command = case.split(" ")
        name = {"''": "", "dotdot": "../params/smoke", "dot": "."}.get(name, name)
        extra = ["--folder", str(tmp / "g")] if command[0] == "gpu-check" else []
        return [*command, "--profile", name, *extra]
    if case == "run --spec ''":
        return ["run", "--spec", ""]
    if case == "plan --params with --device":
        (tmp / "sweep.yaml").write_text("dataset: cb\nmethod: lp\n")
        return ["plan", "--params", str(tmp / "sweep.yaml"), "--device", "cuda"]
    if case == "plan --profile with --set":
        return ["plan", "--profile", "smoke", "--set", "seed=4"]
    if case == "gpu-check run with --profile":
        return ["gpu-check", "run", "--profile", "smoke", "--folder", str(tmp / "g")]
    if case == "an argparse error":
        return ["run", "--seed", "one"]
    if case == "refresh on a device this machine lacks":
        main([*run, "--method", "lp", *_tiny(m)])  # a good entry, then a refresh that cannot run
        return [*run, "--method", "lp", "--refresh", *_tiny(m, "--set", "device=cuda:99")]
    raise AssertionError(case)


ROWS = [  # (case, exit code, words in the message)
    ("lp head when the capped subset would lose a class", 0, ""),
    ("max_train below the number of classes", 2, "no example of class"),
    ("binary --params file", 2, "p.yaml: not a text file"),
    ("data file with a non-UTF-8 byte", 2, "train.jsonl:7: not UTF-8"),
    ("data check of that folder", 1, "train.jsonl:7: not UTF-8"),
    ("cache path is a file", 2, "is a file"),
    ("lr = inf", 2, "lr=inf must be a finite number"),
    ("lr = 1e30 (diverges)", 2, "training diverged at epoch 1"),
    ("plan with an empty list", 2, "method is an empty list"),
    ("--spec with --set", 2, "--set cannot be combined"),
    ("--spec without dataset or method", 2, "--spec must name dataset and method"),
    ("book --pages with no names", 2, "--pages needs at least one page name"),
    ("book with an unknown profile", 2, "profiles: default, default-fp32, paper, smoke"),
    *[
        (f"profile {name} {command}", 2, "a profile is a folder name under")
        for name in ("''", "dotdot", "dot", "nosuch")
        for command in ("book", "plan", "plan --estimate", "sweep", "gpu-check prepare")
    ],
    ("run --spec ''", 2, "--spec: not valid JSON"),
    ("plan --params with --device", 2, "--device goes with --profile P --estimate"),
    ("plan --profile with --set", 2, "--set goes with --params"),
    ("gpu-check run with --profile", 2, "--profile goes with `gpu-check prepare`"),
    ("an argparse error", 2, "argument --seed: invalid int value"),
    ("refresh on a device this machine lacks", 2, "device='cuda:99'"),
    ("fork to a Sphinx name", 2, "reserved"),
    ("fork to _toc", 2, "must start with a letter"),
    ("ntk with a bad setting", 2, "setting='sgd' is unknown"),
    ("data check of a missing folder", 2, "not found"),
]


@pytest.mark.parametrize("case, code, words", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_table(case, code, words, env, capsys):
    args = _prepare(case, env)
    before = (
        sorted(p.name for p in (env["cache"] / "runs").glob("*")) if (env["cache"] / "runs").is_dir() else []
    )
    assert main(args) == code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    text = err if code == 2 else out + err
    assert words in text, text
    if code == 2:
        assert err.startswith("error: ") and err.count("\n") == 1, err
        after = (
            sorted(p.name for p in (env["cache"] / "runs").glob("*"))
            if (env["cache"] / "runs").is_dir()
            else []
        )
        assert after == before  # a failed command leaves the cache as it was
    if code == 0 and args[0] == "run":
        record = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-finite {c} in JSON"))
        arrays = np.load(Path(record["cache_path"]) / "arrays.npz")
        assert arrays["head_weight_init"].shape[0] == 3  # CB: the inserted head has a row per class
        assert np.bincount(arrays["labels_train"], minlength=3).min() >= 1


def test_a_cache_entry_of_the_wrong_schema_is_recomputed(env, capsys):
    args = ["run", "--dataset", "cb", "--method", "lp", "--json", *_tiny(env["model"])]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    Path(first["cache_path"], "metrics.json").write_text("{}")
    assert main(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["cache_hit"] is False and again["metrics"] == first["metrics"]


def test_changed_data_warns_once_and_is_recorded(env, capsys):
    path = env["data"] / "superglue/CB/train.jsonl"
    path.write_text(path.read_text().replace('"neutral"', '"contradiction"', 3))
    args = ["run", "--dataset", "cb", "--method", "lp", "--json", *_tiny(env["model"])]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["data_verified"] is False
    assert "superglue/CB/train.jsonl" in err and "differ from their pinned sha256" in err


def _derived(tmp_path, shared: str, pages: dict[str, str] | None = None) -> Path:
    """A copy of params/ with a profile `mine` (its _shared.yaml and page files)."""
    params = tmp_path / "params"
    shutil.copytree(Path(__file__).parent.parent / "params", params)
    (params / "mine").mkdir()
    (params / "mine" / "_shared.yaml").write_text(shared)
    for page, text in (pages or {}).items():
        (params / "mine" / f"{page}.yaml").write_text(text)
    return params


@pytest.mark.parametrize("base", ["default", "smoke"])
def test_a_derived_profile_runs_its_own_seeds_on_every_page(tmp_path, base):
    """`seeds` and `scaling_seeds` of the user's _shared.yaml beat the base's page files
    (default's norms.yaml and dynamics.yaml set them): every run that `plan --list` lists uses seed 4 or 5,
    and each changed parameter is reported with the file it came from."""
    from lpft_nb.book.build import notebook_pages
    from lpft_nb.book.params import BOOK_DIR, differences_from_base, page_parameters
    from lpft_nb.book.plans import page_plan, plan_name

    shared = f"base: {base}\nseeds: [4, 5]\nscaling_seeds: [4, 5]\n"
    params = _derived(tmp_path, shared)
    seen = set()
    for page in notebook_pages():
        values = {
            **page_parameters(BOOK_DIR / f"{page}.md"),
            **check_profile(page, "mine", params_dir=params),
        }
        for key in ("seeds", "scaling_seeds"):
            assert values.get(key, [4, 5]) == [4, 5], (page, key)
        if plan_name(page) is None:
            continue
        seen |= {cfg.seed for cfg in page_plan(plan_name(page), values).configs()}
        lines = differences_from_base(page, "mine", params_dir=params)
        assert all("from params/mine/_shared.yaml" in line or str(params) in line for line in lines), lines
    assert seen == {4, 5}
    assert any(
        "norms: scaling_seeds = [4, 5]" in line
        for line in differences_from_base("norms", "mine", params_dir=params)
    )


def test_a_page_file_of_the_derived_profile_beats_its_shared_file_and_the_base(tmp_path):
    params = _derived(tmp_path, "base: default\nseeds: [4, 5]\n", {"norms": "seeds: [7]\n"})
    assert check_profile("norms", "mine", params_dir=params)["seeds"] == [7]
    assert check_profile("dynamics", "mine", params_dir=params)["seeds"] == [4, 5]
    assert check_profile("norms", "default", params_dir=params)["scaling_seeds"] == [1, 2, 3]


@pytest.mark.parametrize(
    "shared, words",
    [
        ("base: default\ncause_replicates: 1\n", "page dynamics: cause_replicates 1"),
        ("base: default\ncosine_targets: [1.5]\n", "cosine_targets [1.5]"),
        ("base: default\nlp_sizes: [2]\n", "lp_sizes [2]"),
        ("base: nosuch\n", "unknown base in"),
        ("base: ../smoke\n", "unknown base in"),
        ("base: [smoke]\n", "unknown base in"),
        ("base: mine\n", "is not another profile"),
    ],
)
def test_a_bad_derived_profile_is_one_line(tmp_path, shared, words):
    """Caught by the parameter check, or by the page's plan (as `book`, `plan` and `sweep` build it)."""
    from lpft_nb.book.build import check_plans

    params = _derived(tmp_path, shared)
    with pytest.raises(ParamError) as err:
        check_plans("mine", ["dynamics"], params_dir=params)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_cycle_of_bases_is_one_line(tmp_path):
    params = _derived(tmp_path, "base: other\n")
    (params / "other").mkdir()
    (params / "other" / "_shared.yaml").write_text("base: mine\n")
    with pytest.raises(ParamError, match="form a cycle of bases"):
        check_profile("dynamics", "mine", params_dir=params)


def test_the_error_boundary(monkeypatch, capsys, tmp_path):
    """A fault of the code: one line naming a log with the traceback (1); Ctrl-C: "interrupted" (130)."""
    from lpft_nb import cli

    def fault(args):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(cli, "cmd_fork", fault)
    assert main(["fork", "dynamics", "x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (TypeError: unsupported operand)" in err
    log = Path(err.split("traceback in ")[1].strip())
    assert "Traceback" in log.read_text() and "fault" in log.read_text()
    log.unlink()

    def interrupt(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_fork", interrupt)
    assert main(["fork", "dynamics", "x"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_while_the_cli_imports_is_interrupted():
    import subprocess
    import sys

    code = (
        "import runpy, sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'lpft_nb.cli':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "runpy.run_module('lpft_nb', run_name='__main__')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (out.returncode, out.stderr) == (130, "interrupted\n")


def test_the_cli_imports_nothing_heavy_before_its_boundary():
    import subprocess
    import sys

    code = "import sys, lpft_nb.cli; print(sorted({'torch', 'pandas', 'papermill', 'pydantic'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_profile_of_ones_own_inherits_what_it_omits(tmp_path):
    params = tmp_path / "params"
    shutil.copytree(Path(__file__).parent.parent / "params", params)
    (params / "mine").mkdir()
    (params / "mine" / "_shared.yaml").write_text("base: smoke\nseeds: [1, 2, 3]\n")
    (params / "mine" / "dynamics.yaml").write_text("path_points: 3\n")
    assert "mine" in profiles(params)
    values = check_profile("dynamics", "mine", params_dir=params)
    assert (
        values["seeds"] == [1, 2, 3] and values["path_points"] == 3 and values["model"] == "tiny-random-bert"
    )
    assert check_profile("norms", "mine", params_dir=params)["head_scales"] == [
        0.1,
        1.0,
        10.0,
    ]  # smoke's page
    (params / "mine" / "_shared.yaml").write_text("base: mine\n")
    with pytest.raises(ParamError, match="base 'mine' is not another profile"):
        check_profile("dynamics", "mine", params_dir=params)


def test_every_parameter_line_parses_for_papermill():
    """papermill reads each `name: type = value  # comment` line; a line it cannot parse is logged as an
    unknown parameter at every build."""
    import jupytext
    import papermill

    from lpft_nb.book.build import notebook_pages
    from lpft_nb.book.params import BOOK_DIR, page_parameters

    for page in notebook_pages():
        nb = jupytext.read(str(BOOK_DIR / f"{page}.md"))
        nb.metadata["kernelspec"] = {"name": "python3", "language": "python"}
        path = Path(f"/tmp/{page}-inspect.ipynb")
        jupytext.write(nb, str(path), fmt="ipynb")
        try:
            inferred = set(papermill.inspect_notebook(str(path)))
        finally:
            path.unlink()
        assert inferred == set(page_parameters(BOOK_DIR / f"{page}.md")), page
