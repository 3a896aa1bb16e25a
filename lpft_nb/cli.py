"""Command line: ``python -m lpft_nb {run,plan,sweep,bench,ntk,book,fork,check-html,data,gpu-check} ...``.

One error boundary (`main`): every command checks its input first, and any error a user can cause (the
classes in `USER_ERRORS`, a file that cannot be read or written) is one line on stderr with exit status 2;
any other exception is one line naming a log file that holds its traceback (status 1); Ctrl-C anywhere is
"interrupted" (status 130). Nothing heavy is imported at the top of this module, so `__main__` installs
the boundary before torch or pandas load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

# Errors a user causes with an input (module, class). Matched against the modules already imported: an
# exception of a class whose module is not loaded cannot have been raised, so none is imported here.
USER_ERRORS = (
    ("lpft_nb.config", "ConfigError"),  # ParamError (book.params) is one
    ("lpft_nb.data.tasks", "DataError"),
    ("lpft_nb.device", "DeviceError"),
    ("lpft_nb.model.hub", "ModelNotFoundError"),
    ("lpft_nb.model.train", "TrainingDiverged"),
    ("builtins", "OSError"),
    ("builtins", "UnicodeError"),
)


def is_user_error(err: BaseException) -> bool:
    """Whether `err` is of a `USER_ERRORS` class (one line, exit 2) rather than a fault of the code."""
    for module, name in USER_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(err, cls):
            return True
    return False


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _log_traceback(err: BaseException) -> Path:
    """Write the traceback of `err` to a new file under the temporary folder; its path."""
    folder = Path(tempfile.gettempdir()) / "lpft_nb-errors"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    path.write_text(
        f"python -m lpft_nb {' '.join(sys.argv[1:])}\n" + "".join(traceback.format_exception(err))
    )
    return path


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (exit 2), naming the command's --help."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def strict_json(record: dict) -> str:
    """JSON that strict parsers accept: a non-finite number becomes null (never NaN or Infinity)."""

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(record), allow_nan=False)


def _load_params(path: str | None) -> dict:
    from .config import load_yaml_mapping

    return load_yaml_mapping(path) if path is not None else {}


def _config_from_args(args: argparse.Namespace):
    from .config import ConfigError, RunConfig, parse_assignment

    if args.spec is not None:
        others = [
            f"--{k}"
            for k in ("dataset", "method", "seed", "model", "params", "set")
            if getattr(args, k) not in (None, [])
        ]
        if others:
            raise ConfigError(f"--spec is a whole run spec: {', '.join(others)} cannot be combined with it")
        try:
            values = json.loads(args.spec)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--spec: not valid JSON ({err.msg})") from None
        missing = [k for k in ("dataset", "method") if not isinstance(values, dict) or k not in values]
        if missing:
            raise ConfigError(f"--spec must name {' and '.join(missing)} (as `plan` prints it)")
        return RunConfig.from_dict(values, source="--spec")
    values = _load_params(args.params)
    for key in ("dataset", "method", "seed", "model"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    for assignment in args.set or []:
        key, value = parse_assignment(assignment)
        values[key] = value
    return RunConfig.from_dict(values, source=args.params or "command line")


def _print_run_table(result) -> None:
    s = result.summary()
    m = result.metrics
    rows = [
        ("dataset / method / seed", f"{s['dataset']} / {s['method']} / {s['seed']}"),
        ("model", s["model"]),
        ("from cache", str(s["cache_hit"])),
        ("data verified (sha256 pins)", str(s["data_verified"])),
        ("train / val / test examples", " / ".join(str(r["n"]) for r in m["data"][:3])),
        ("‖V‖_F at start of FT stage", f"{s['head_norm_init']:.4g}"),
        ("‖V‖_F after training", f"{s['head_norm_final']:.4g}"),
    ]
    if "lp" in m:
        rows.append(("LP C (chosen)", f"{m['lp']['C']:.4g}" + (" (cv)" if m["lp"]["cv"] else "")))
        rows.append(("LP train accuracy", f"{m['lp']['train_accuracy']:.4f}"))
    if m.get("best_epoch"):
        rows.append(("best epoch (val)", str(m["best_epoch"])))
    rows.append(("val accuracy", f"{m['val']['accuracy']:.4f}"))
    rows.append(("test accuracy", f"{m['test']['accuracy']:.4f}"))
    rows.append(("test macro-F1", f"{m['test']['macro_f1']:.4f}"))
    for name, v in m["ood"].items():
        rows.append((f"OOD {name} accuracy / macro-F1", f"{v['accuracy']:.4f} / {v['macro_f1']:.4f}"))
    rows.append(("wall time of the run (s)", f"{m['seconds']:.1f}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def cmd_run(args: argparse.Namespace) -> int:
    from .config import RunConfig
    from .runs.run import get_run

    if args.help_settings:
        print(json.dumps(RunConfig.model_json_schema(), indent=1))
        return 0
    cfg = _config_from_args(args)
    result = get_run(cfg, progress=not args.json, refresh=args.refresh)
    if args.json:
        print(strict_json(result.summary()))
    else:
        _print_run_table(result)
    return 0


def expand_plan(values: dict, source: str) -> list:
    """A parameter file whose values may be lists → one RunConfig per combination (validated)."""
    from .config import ConfigError, RunConfig

    keys = list(values)
    grids = [v if isinstance(v, list) else [v] for v in values.values()]
    empty = [k for k, g in zip(keys, grids) if not g]
    if empty:
        raise ConfigError(
            f"{source}: {', '.join(empty)} is an empty list: a sweep axis needs at least one value"
        )
    configs = [
        RunConfig.from_dict(dict(zip(keys, combo)), source=source) for combo in itertools.product(*grids)
    ]
    return configs


def cmd_plan(args: argparse.Namespace) -> int:
    from .config import ConfigError, parse_assignment

    if (args.params is None) == (args.profile is None):
        raise ConfigError(
            "plan needs exactly one of --params FILE (a sweep file) or --profile NAME (the book)"
        )
    if args.device is not None and not args.estimate:
        raise ConfigError(
            "--device goes with --profile P --estimate (a sweep file's runs take --set device=...)"
        )
    if args.profile is not None:
        if args.set:
            raise ConfigError("--set goes with --params (a profile's values live in params/<profile>/)")
        return plan_profile(args.profile, args.pages, args.estimate, args.device or "auto", args.list)
    if args.estimate or args.list or args.pages is not None:
        raise ConfigError("--estimate, --list and --pages go with --profile")
    values = _load_params(args.params)
    for assignment in args.set or []:
        key, value = parse_assignment(assignment)
        values[key] = value
    for cfg in expand_plan(values, args.params):
        print(strict_json({k: v for k, v in cfg.to_dict().items() if v is not None}))
    return 0


def plan_profile(
    profile: str, pages: list[str] | None, estimate: bool, device: str, listed: bool = False
) -> int:
    """Per page of `profile`: the parameters that differ from its base, its runs and kernels (counts, or
    each one with `listed`); with `estimate`, device-hours on this machine."""
    from .book.build import print_differences, selected_pages
    from .book.params import check_profile_name
    from .estimate import tasks_by_page

    check_profile_name(profile)
    pages = selected_pages(pages)
    print_differences(profile, pages)
    if not estimate:
        by_page = tasks_by_page(profile, pages)
        print(f"{'page':<24} {'runs':>6} {'kernels':>8}")
        for page, tasks in by_page.items():
            runs = sum(t.kind == "run" for t in tasks)
            print(f"{page:<24} {runs:>6} {len(tasks) - runs:>8}")
            for task in tasks if listed else ():
                print(f"  {task.label}")
        return 0
    from .estimate import profile_estimate

    costs, table = profile_estimate(profile, pages, device)
    print(
        f"profile {profile}: estimated on {costs.device} from measured steps of {costs.model} at length 128 "
        f"(FT {costs.ft_example_s * 1e3:.0f} ms, LoRA {costs.lora_example_s * 1e3:.0f} ms per training "
        f"example; prediction {costs.predict_example_s * 1e3:.1f} ms per example), scaled by parameters"
    )
    print(table.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import SweepOptions, parse_sbatch, sweep

    options = SweepOptions(
        executor=args.executor,
        workers=args.workers,
        slurm_partition=args.slurm_partition,
        gpus_per_job=args.gpus_per_job,
        cpus_per_job=args.cpus_per_job,
        timeout_min=args.timeout_min,
        array_parallelism=args.array_parallelism,
        mem=args.mem,
        account=args.account,
        qos=args.qos,
        constraint=args.constraint,
        sbatch=parse_sbatch(args.sbatch or []),
        wait=not args.no_wait,
        max_wait_min=args.max_wait,
        grace_s=args.grace_s,
    )
    return sweep(args.profile, args.pages, options)


def cmd_gpu_check(args: argparse.Namespace) -> int:
    from . import gpu_check
    from .config import ConfigError

    folder = Path(args.folder)
    if args.step == "prepare":
        if args.device is not None:
            raise ConfigError("--device goes with `gpu-check run` (prepare computes on this machine's CPU)")
        gpu_check.prepare(folder, profile=args.profile or "default")
        return 0
    if args.profile is not None:
        raise ConfigError("--profile goes with `gpu-check prepare` (run reads the profile prepare used)")
    if not (folder / "cpu_reference.json").is_file():
        raise ConfigError(f"{folder}: no cpu_reference.json; run `gpu-check prepare --folder {folder}` first")
    return gpu_check.run(folder, device=args.device or "cuda")


def cmd_bench(args: argparse.Namespace) -> int:
    from .config import ConfigError
    from .device import PRECISIONS, resolve_device

    if args.precision not in PRECISIONS:
        raise ConfigError(f"--precision {args.precision!r}: valid: {', '.join(PRECISIONS)}")
    resolve_device(args.device)  # one line when this machine lacks it
    if args.n < 2:
        raise ConfigError(f"--n {args.n}: needs at least 2 examples per kernel side")
    if not args.memory_gib > 0:
        raise ConfigError(f"--memory-gib {args.memory_gib:g}: must be > 0")
    if args.precision_runs:
        from .precision import RECORD, record_precision_runs

        record_precision_runs()
        print(f"recorded {RECORD}")
        return 0
    if args.ntk:
        from .bench import ntk_benchmark

        ntk_benchmark(model=args.model, n=args.n, memory_gib=args.memory_gib, device=args.device)
        return 0
    from .bench import run_benchmark

    run_benchmark(model=args.model, quick=args.quick, device=args.device, precision=args.precision)
    return 0


def ntk_summary(result) -> dict:
    """The `ntk` command's record: ranks, Frobenius norms, FT ratio, kernel-regression accuracies, cost."""
    stats = {k: result.statistics(k) for k in ("P", "F", "NTK")}
    return {
        "dataset": result.spec.dataset,
        "setting": result.spec.setting,
        "n": int(result.parts.n_train),
        "seed": result.spec.seed,
        "cache_hit": result.cache_hit,
        "rank_P": stats["P"]["rank_fp32"],
        "rank_F": stats["F"]["rank_fp32"],
        "rank_ntk": stats["NTK"]["rank_fp32"],
        "rank_dtype": "float32 (numpy default tolerance)",
        "fn_P": stats["P"]["fn"],
        "fn_F": stats["F"]["fn"],
        "fn_ntk": stats["NTK"]["fn"],
        "ft_ratio": result.ft_ratio(),
        "acc_train": stats["NTK"]["per_logit_train"],
        "acc_test": stats["NTK"]["per_logit_test"],
        "argmax_acc_train": stats["NTK"]["argmax_train"],
        "argmax_acc_test": stats["NTK"]["argmax_test"],
        "seconds": result.seconds,
        "peak_rss_gib": result.peak_rss_gib,
        "backward_passes": result.parts.backward_passes,
        "parameters": result.parts.n_parameters,
    }


def cmd_ntk(args: argparse.Namespace) -> int:
    from .analysis.kernels import KernelSpec, get_kernels
    from .config import ConfigError, RunConfig

    spec = KernelSpec(
        dataset=args.dataset,
        setting=args.setting,
        n=args.n,
        seed=args.seed,
        model=args.model,
        embeddings=args.embeddings,
        lp_C=args.lp_C,
    )
    try:
        spec.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    RunConfig.from_dict({"dataset": spec.dataset, "model": spec.model, "lp_C": spec.lp_C}, source="ntk")
    summary = ntk_summary(get_kernels(spec, progress=not args.json, refresh=args.refresh))
    if args.json:
        print(strict_json(summary))
    else:
        for key, value in summary.items():
            print(f"{key:<18} {value:.6g}" if isinstance(value, float) else f"{key:<18} {value}")
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    from .book.build import build_book
    from .config import ConfigError

    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    return build_book(profile=args.profile, pages=args.pages, keep_going=True, jobs=args.jobs)


def cmd_fork(args: argparse.Namespace) -> int:
    from .book.build import fork_page

    fork_page(args.page, args.name)
    return 0


def cmd_check_html(args: argparse.Namespace) -> int:
    from .book.build import BUILD_DIR, SECTION_PAGES, toc_files
    from .book.html_check import check_book, draws_figures
    from .book.params import BOOK_DIR

    html_dir = Path(args.html_dir) if args.html_dir else BUILD_DIR / "html"
    pages = {name: draws_figures((BOOK_DIR / f"{name}.md").read_text()) for name in toc_files()}
    problems = check_book(
        html_dir, pages, Path(args.screenshots) if args.screenshots else None, math_pages=SECTION_PAGES
    )
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"html check: {len(pages)} pages, {len(problems)} problems")
    return 1 if problems else 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from .config import resolve_data_dir
    from .data.download import build_and_verify, download
    from .data.files import BOSS_FILES, SST2_FILES, matches_pin

    to = Path(args.to).expanduser().resolve() if args.to else resolve_data_dir(None)
    print(
        f"data folder: {to}" + (f" (mirror {args.mirror})" if args.mirror else " (official hosts)"),
        flush=True,
    )
    for path, status in download(to, mirror=args.mirror, retries=args.retries, progress=not args.quiet):
        print(f"{path:<78} {status}")
    if args.no_build:
        return 0
    built = (*BOSS_FILES, *SST2_FILES)
    if all(matches_pin(to / f.path, f) for f in built):
        for f in built:
            print(f"{f.path:<78} present (sha256 ✓)")
        return 0
    return _print_built(build_and_verify(to / "sources", to))


def _print_built(built: list[tuple[str, int, str]]) -> int:
    for path, rows, verdict in built:
        print(f"{path:<78} built, {rows:,} rows, {verdict}")
    return 1 if any("differs" in verdict for _, _, verdict in built) else 0


def cmd_data_build(args: argparse.Namespace) -> int:
    """``data build-boss`` and ``data build-sst2``: build from the raw sources, then verify the pins."""
    from .config import resolve_data_dir
    from .data.download import build_and_verify_boss, build_and_verify_sst2

    build = {"build-boss": build_and_verify_boss, "build-sst2": build_and_verify_sst2}[args.data_command]
    to = Path(args.to).expanduser().resolve() if args.to else resolve_data_dir(None)
    sources = Path(args.sources).expanduser().resolve() if args.sources else to / "sources"
    print(f"sources: {sources}\nbuilding into: {to}", flush=True)
    return _print_built(build(sources, to))


def cmd_data_check(args: argparse.Namespace) -> int:
    from .config import resolve_data_dir
    from .data.check import check_folder, format_report

    folder = Path(args.folder).expanduser().resolve() if args.folder else resolve_data_dir(None)
    rows, notes = check_folder(folder)
    print(format_report(folder, rows, notes))
    return 1 if any(r.problem for r in rows) else 0


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m lpft_nb", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train (or load from the cache) one run and print its metrics")
    run.add_argument("--dataset", help="cb, rte, amazon, sst2 or sst2_sentences")
    run.add_argument("--method", help="lp, ft, lp_ft, lora or lp_lora")
    run.add_argument("--seed", type=int)
    run.add_argument("--model", help="all-MiniLM-L6-v2 (default), tiny-random-bert, a local path or HF name")
    run.add_argument("--params", help="YAML file of run settings")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one setting (repeatable)")
    run.add_argument("--spec", help="one JSON run spec, as printed by `plan` (alone: no other run option)")
    run.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    run.add_argument("--refresh", action="store_true", help="retrain even if the cache holds the run")
    run.add_argument(
        "--help-settings",
        dest="help_settings",
        action="store_true",
        help="print the JSON schema of the run settings (types, defaults, ranges) and exit",
    )
    run.set_defaults(func=cmd_run)

    plan = sub.add_parser(
        "plan",
        help="a sweep file's run specs (one JSON per line), or a profile's runs and kernels per page",
    )
    plan.add_argument("--params", help="YAML file; list values are swept")
    plan.add_argument("--set", action="append", metavar="KEY=VALUE")
    plan.add_argument("--profile", help="list the runs and kernels that this profile's pages need")
    plan.add_argument("--pages", nargs="*", metavar="NAME", help="with --profile: only these pages")
    plan.add_argument("--list", action="store_true", help="with --profile: each run and kernel, per page")
    plan.add_argument(
        "--estimate", action="store_true", help="with --profile: device-hours from steps measured here"
    )
    plan.add_argument("--device", help="with --estimate: auto (default), cpu, cuda or cuda:N")
    plan.set_defaults(func=cmd_plan)

    sweep = sub.add_parser(
        "sweep", help="precompute a profile's runs and kernels as a job array (submitit: local or Slurm)"
    )
    sweep.add_argument("--profile", default="default")
    sweep.add_argument("--pages", nargs="*", metavar="NAME", help="only these pages (default: all)")
    sweep.add_argument("--executor", default="local", help="local (this machine) or slurm")
    sweep.add_argument("--workers", type=int, default=2, help="local: parallel jobs (threads are split)")
    sweep.add_argument("--slurm-partition", dest="slurm_partition")
    sweep.add_argument("--gpus-per-job", dest="gpus_per_job", type=int, default=0)
    sweep.add_argument("--cpus-per-job", dest="cpus_per_job", type=int, default=1)
    sweep.add_argument("--timeout-min", dest="timeout_min", type=int, default=240)
    sweep.add_argument("--array-parallelism", dest="array_parallelism", type=int, default=32)
    sweep.add_argument("--mem", help="Slurm: memory per job (e.g. 16G)")
    sweep.add_argument("--account", help="Slurm: account to charge")
    sweep.add_argument("--qos", help="Slurm: quality of service")
    sweep.add_argument("--constraint", help="Slurm: node features (e.g. a100)")
    sweep.add_argument(
        "--sbatch",
        action="append",
        metavar="KEY=VALUE",
        help="Slurm: any other sbatch option, without -- (KEY alone for a flag; repeatable)",
    )
    sweep.add_argument(
        "--max-wait", dest="max_wait", type=float, metavar="MIN", help="stop waiting after MIN minutes"
    )
    sweep.add_argument(
        "--grace-s",
        dest="grace_s",
        type=float,
        default=30.0,
        help="Slurm: seconds a job may be gone from the queue before it counts as failed",
    )
    sweep.add_argument("--no-wait", dest="no_wait", action="store_true", help="print the job ids and exit")
    sweep.set_defaults(func=cmd_sweep)

    bench = sub.add_parser("bench", help="time training steps, feature extraction and LP on this machine")
    bench.add_argument("--model", default="all-MiniLM-L6-v2")
    bench.add_argument("--quick", action="store_true", help="fewer repetitions")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    bench.add_argument("--precision", default="fp32", help="fp32 or bf16 (autocast)")
    bench.add_argument("--ntk", action="store_true", help="benchmark the NTK (CB, N examples, length 128)")
    bench.add_argument(
        "--precision-runs",
        action="store_true",
        help="train the default profile's CB FT and LP-FT runs in fp32 and bf16 and record their "
        "metrics in book/measured/bf16-runs.json (the reproduce page's bf16 rule)",
    )
    bench.add_argument("--n", type=int, default=64, help="examples per kernel side for --ntk")
    bench.add_argument(
        "--memory-gib",
        dest="memory_gib",
        type=float,
        default=5.0,
        help="bound on the Jacobian block held at once for --ntk",
    )
    bench.set_defaults(func=cmd_bench)

    gpu = sub.add_parser(
        "gpu-check", help="prepare (here) and run (on a GPU node, offline) the GPU check: tests, bench, runs"
    )
    gpu.add_argument("step", choices=["prepare", "run"])
    gpu.add_argument("--folder", default="_gpu_check", help="what prepare writes and run reads")
    gpu.add_argument("--profile", help="prepare: the profile of the dynamics runs (default: default)")
    gpu.add_argument("--device", help="run: the device to check (default: cuda)")
    gpu.set_defaults(func=cmd_gpu_check)

    ntk = sub.add_parser("ntk", help="compute (or load) the NTK split P + F at the start of the FT stage")
    ntk.add_argument("--dataset", default="cb")
    ntk.add_argument("--setting", default="lp_ft", help="ft, lp_ft, lora or lp_lora")
    ntk.add_argument("--n", type=int, default=64, help="training (and test) examples in the kernel")
    ntk.add_argument("--seed", type=int, default=1)
    ntk.add_argument("--model", default="all-MiniLM-L6-v2")
    ntk.add_argument(
        "--embeddings", default="exact", help="exact, sampled (the authors' 10%% estimate) or none"
    )
    ntk.add_argument("--lp-C", dest="lp_C", default="cv", type=lambda v: v if v == "cv" else float(v))
    ntk.add_argument("--json", action="store_true")
    ntk.add_argument("--refresh", action="store_true", help="recompute even if the cache holds the kernels")
    ntk.set_defaults(func=cmd_ntk)

    book = sub.add_parser("book", help="execute the pages with a profile and build the HTML book")
    book.add_argument(
        "--profile",
        default="default",
        help="a folder of params/: smoke, default, paper or one of yours (default: default)",
    )
    book.add_argument("--pages", nargs="*", metavar="NAME", help="only these pages (default: all)")
    book.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="pages executed at once when the cache holds every run and kernel they need; otherwise one "
        "at a time, so that pages sharing a run do not both train it (default: 2, or 1 on one core)",
    )
    book.set_defaults(func=cmd_book)

    fork = sub.add_parser("fork", help="copy a page and its parameter files under a new name")
    fork.add_argument("page")
    fork.add_argument("name")
    fork.set_defaults(func=cmd_fork)

    check = sub.add_parser("check-html", help="load every built page in headless Chromium and check it")
    check.add_argument("html_dir", nargs="?", help="default: _build/html")
    check.add_argument("--screenshots", metavar="DIR", help="also save a PNG of each page here")
    check.set_defaults(func=cmd_check_html)

    data = sub.add_parser(
        "data", help="fetch, build and check the data folder (download | build-boss | build-sst2 | check)"
    )
    data_sub = data.add_subparsers(dest="data_command", required=True)
    dl = data_sub.add_parser(
        "download", help="fetch the raw files (sha256-checked), then build the BOSS and SST-2 files"
    )
    dl.add_argument(
        "--to", metavar="DIR", help="data folder (default: $LPFT_DATA_DIR, else ~/.cache/lpft-book/data)"
    )
    dl.add_argument(
        "--mirror",
        metavar="URL",
        help="fetch every file from URL/<path in the data folder> instead of the official hosts",
    )
    dl.add_argument("--retries", type=int, default=2, help="extra attempts per file after a failed download")
    dl.add_argument("--no-build", dest="no_build", action="store_true", help="do not build the BOSS files")
    dl.add_argument("--quiet", action="store_true", help="no progress bars")
    dl.set_defaults(func=cmd_data_download)
    bb = data_sub.add_parser(
        "build-boss", help="rebuild the BOSS tsv files from the raw sources (BOSS's procedure)"
    )
    bb.add_argument("--sources", metavar="DIR", help="raw sources (default: <data folder>/sources)")
    bb.add_argument("--to", metavar="DIR", help="data folder to write boss/ into (default: as for download)")
    bb.set_defaults(func=cmd_data_build)
    bs = data_sub.add_parser(
        "build-sst2", help="build GLUE's SST-2 files (sst2/) from the SST PTB trees (GLUE's procedure)"
    )
    bs.add_argument("--sources", metavar="DIR", help="raw sources (default: <data folder>/sources)")
    bs.add_argument("--to", metavar="DIR", help="data folder to write sst2/ into (default: as for download)")
    bs.set_defaults(func=cmd_data_build)
    ck = data_sub.add_parser(
        "check", help="validate a data folder: files, rows, labels, class counts, sha256"
    )
    ck.add_argument(
        "folder", nargs="?", metavar="DIR", help="default: $LPFT_DATA_DIR, else ~/.cache/lpft-book/data"
    )
    ck.set_defaults(func=cmd_data_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse and run one command inside the error boundary (see the module docstring); its exit status."""
    try:
        args = make_parser().parse_args(argv)
        if getattr(args, "profile", None) is not None:  # every command that takes a profile: one check
            from .book.params import check_profile_name

            check_profile_name(args.profile)
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as done:  # argparse: --help (0) or its one-line usage error (2)
        return done.code if isinstance(done.code, int) else 2
    except BaseException as err:  # noqa: BLE001 - the boundary: every other exception ends here
        if is_user_error(err):
            print(f"error: {_one_line(err)}", file=sys.stderr)
            return 2
        log = _log_traceback(err)
        print(
            f"error: internal error ({type(err).__name__}: {_one_line(err)}); traceback in {log}",
            file=sys.stderr,
        )
        return 1
