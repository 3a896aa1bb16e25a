"""Tables of a run grid (`Study`) and of kernels, ours beside the paper's: functions ``f(study, …)``.

Cells are formatted by `report.format.fmt` (mean ± sd over seeds); "–" marks a value the paper does not
report or a row where the quantity is zero by construction.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from ..analysis.calibration import calibration_values, run_calibration_ci
from ..analysis.features import feature_stats, mean_pairwise_cosine
from ..analysis.lora import lora_kernel_scale
from ..analysis.span import SpanExperiment
from ..config import LP_HEAD_METHODS, LpC, lp_label
from ..data.tasks import OOD_SETS
from ..paper import (
    METHOD_LABELS,
    ROBERTA_FEATURE_COSINE,
    TABLE1,
    TABLE2_9_KERNELS,
    TABLE8_ACCURACY,
    TABLE10_BOSS,
    TABLE11_BOSS,
    TABLE12_DIFF,
    TABLE13_HEAD_NORM,
    TABLE14_CALIBRATION,
)
from ..runs.grid import Study
from .evidence import collapsed
from .format import fmt, mean_std, tidy


def seeds_cell(values: ArrayLike, digits: int = 3) -> str:
    """A table cell: mean ± sd over seeds (the caption states how many)."""
    return fmt(values, digits, show_n=False)


def show(table: pd.DataFrame, caption: str, seeds: Sequence[int] | None = None, label: str = "") -> None:
    """Display `table` under its caption (what it shows and what to look at); `seeds` adds "mean ± sd over
    k seeds" to the caption, so the cells need not repeat it. `label` becomes the table's HTML anchor (as
    `anchor(label)`), the target of links from the claims page."""
    from IPython.display import HTML, display

    text = caption.rstrip(".") + "."
    if seeds is not None and len(seeds) > 1:
        text += f" Ours: mean ± sd over {len(seeds)} seeds ({', '.join(map(str, seeds))})."
    elif seeds is not None:
        text += f" Ours: one seed ({seeds[0]}), so no spread."
    styled = table.style.set_caption(text).format(lambda v: f"{v:.4g}" if isinstance(v, float) else v)
    styled = styled.set_table_attributes('class="lpft-table"')
    if label:
        styled = styled.set_uuid(anchor(label).removeprefix("T_"))  # pandas writes id="T_<uuid>"
    display(HTML(styled.to_html()))


def anchor(label: str) -> str:
    """The HTML id of a table shown with `label`: letters, digits and hyphens ("Table 13, C = 100" →
    "T_table-13-c-100")."""
    return "T_" + "-".join(re.findall(r"[a-z0-9]+", label.lower()))


def _tidied(table_function):
    """Every table of this module passes through `format.tidy` (no NaN, integers as integers)."""

    @functools.wraps(table_function)
    def wrapper(*args, **kwargs):
        out = table_function(*args, **kwargs)
        if isinstance(out, tuple):  # (table, extra)
            return (tidy(out[0]), *out[1:])
        return tidy(out)

    return wrapper


@_tidied
def head_norm_table(study: Study, lp_C: LpC = "cv") -> pd.DataFrame:
    """Paper Table 13: ‖V‖_F after training per method (ours mean ± std over seeds, paper beside)."""
    rows = []
    for label, method, key in [
        ("Pre-trained (random init)", "ft", "head_norm_init"),
        *[(METHOD_LABELS[m], m, "head_norm_final") for m in ("lp", "ft", "lora", "lp_ft", "lp_lora")],
    ]:
        if method not in study.methods:
            continue
        row = {"method": label}
        for dataset in study.datasets:
            ours = study.values(dataset, method, key, lp_C)
            paper_key = "pretrained" if key == "head_norm_init" else method
            row[f"{dataset} ours"] = seeds_cell(ours)
            row[f"{dataset} paper"] = TABLE13_HEAD_NORM.get(dataset, {}).get(paper_key)
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


@_tidied
def accuracy_table(
    study: Study, split: str = "test", lp_C: LpC = "cv", with_paper: bool = False
) -> pd.DataFrame:
    """Accuracy (%) per method and dataset, mean ± std over seeds; `with_paper` adds the paper's Table 8
    (test accuracy, RoBERTa-base, 10 epochs on full data) beside each dataset where it reports one."""
    rows = []
    for method in study.methods:
        row = {"method": METHOD_LABELS[method]}
        for dataset in study.datasets:
            values = 100 * study.values(dataset, method, f"{split}.accuracy", lp_C)
            m, s = mean_std(values)
            row[f"{dataset} ours"] = f"{m:.2f} ± {s:.2f}"
            down = sum(collapsed(r, split) for r in study.get(dataset, method, lp_C))
            if down:
                row[f"{dataset} ours"] += (
                    f" (median {np.median(values):.2f}; {down} of {len(values)} collapsed)"
                )
        rows.append(row)
    table = pd.DataFrame(rows).set_index("method")
    if with_paper:
        for dataset in study.datasets:
            paper = TABLE8_ACCURACY.get(dataset)
            table[f"{dataset} paper (Table 8)"] = [
                "{:.2f} ± {:.2f}".format(*paper[m]) if paper else None for m in study.methods
            ]
    return table


@_tidied
def data_table(study: Study) -> pd.DataFrame:
    """The examples each dataset's runs used, per split (from the first run of the grid)."""
    method, lp_C = study.methods[0], study.lp_Cs[0]
    return pd.DataFrame(
        [
            {"dataset": d, **row}
            for d in study.datasets
            for row in study.get(d, method, lp_C)[0].metrics["data"]
        ]
    ).set_index(["dataset", "split"])


@_tidied
def anisotropy_table(study: Study) -> pd.DataFrame:
    """Mean pairwise cosine of the pre-trained test features per dataset, beside the paper's RoBERTa value."""
    method, lp_C = study.methods[0], study.lp_Cs[0]
    return pd.DataFrame(
        [
            {
                "dataset": d,
                "ours (pre-trained φ, test set)": mean_pairwise_cosine(
                    study.get(d, method, lp_C)[0].arrays["features_before_test"]
                ),
                "paper (RoBERTa-base)": ROBERTA_FEATURE_COSINE.get(d),
            }
            for d in study.datasets
        ]
    ).set_index("dataset")


@_tidied
def feature_table(study: Study, dataset: str, lp_C: LpC = "cv", split: str = "test") -> pd.DataFrame:
    """Paper Table 1 for one dataset: CS, Diff (after the last step), FDR and Norm(C), ours beside the
    paper's (`feature_detail_table` holds the rest: the restored epoch's Diff, the Diff of norms, the FDR
    null, the restored epochs).

    Pre-trained and LP share the pre-trained features (LP does not touch them); Norm(C) of Pre-trained
    is the random head FT starts from, of LP the fitted head.
    """
    rows = []
    methods = [m for m in ("lp", "ft", "lora", "lp_ft", "lp_lora") if m in study.methods]
    for name, unchanged, stats, norms in _feature_cells(study, dataset, methods, lp_C, split):
        paper = TABLE1.get(dataset, {}).get(name, {})
        row = {"method": "Pre-trained" if name == "pretrained" else METHOD_LABELS[name]}
        for key, label, paper_key in (
            ("CS", "CS(F)", "CS"),
            ("Diff_last", "Diff(F)", "Diff"),
            ("FDR", f"FDR(F) {stats[0]['FDR_k']}-d", "FDR"),
        ):
            row[f"{label} ours"] = (
                "–" if unchanged and key.startswith("Diff") else seeds_cell([s[key] for s in stats])
            )
            value = paper.get(paper_key)
            row["FDR(F) paper, full-d" if key == "FDR" else f"{label} paper"] = (
                "–" if value is None else f"{value:.3g}"
            )
        row["Norm(C) ours"] = seeds_cell(norms)
        row["Norm(C) paper"] = f"{paper['Norm']:.3g}" if "Norm" in paper else "–"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


@_tidied
def feature_detail_table(study: Study, dataset: str, lp_C: LpC = "cv", split: str = "test") -> pd.DataFrame:
    """Beside Table 1: Diff(F) at the epoch early stopping restored (and that epoch per seed), the secondary
    reading of Diff (mean |‖φ‖ − ‖φ₀‖|), and FDR's label-permutation null (mean and 95 % band)."""
    rows = []
    methods = [m for m in ("lp", "ft", "lora", "lp_ft", "lp_lora") if m in study.methods]
    for name, unchanged, stats, _ in _feature_cells(study, dataset, methods, lp_C, split):
        rows.append(
            {
                "method": "Pre-trained" if name == "pretrained" else METHOD_LABELS[name],
                "Diff(F), restored epoch": "–" if unchanged else seeds_cell([s["Diff"] for s in stats]),
                "restored epoch": "–" if unchanged else _epochs_cell(study.get(dataset, name, lp_C)),
                "Diff of norms": "–" if unchanged else seeds_cell([s["Diff_norm"] for s in stats]),
                "FDR null: mean [95 % band]": _null_cell(stats),
            }
        )
    return pd.DataFrame(rows).set_index("method")


def _null_cell(stats: list[dict]) -> str:
    """The label-permutation null of FDR (`features.fdr_null`), averaged over seeds: 'mean [lo, hi]'."""
    mean, lo, hi = (np.mean([s[k] for s in stats]) for k in ("FDR_null", "FDR_null_lo", "FDR_null_hi"))
    return f"{mean:.3g} [{lo:.3g}, {hi:.3g}]"


def _epochs_cell(runs) -> str:
    """The epoch early stopping restored, per seed (of how many)."""
    return ", ".join(str(r.metrics["best_epoch"]) for r in runs) + f" of {runs[0].metrics['last_epoch']}"


def _feature_cells(study: Study, dataset: str, methods, lp_C: LpC, split: str):
    """The rows of Tables 1 and 11: first "pretrained" (the pre-trained features; the random head FT starts
    from), then each method. Yields (name, unchanged, per-seed `feature_stats`, per-seed head norms);
    `unchanged` marks the rows whose features are the pre-trained ones (Pre-trained and LP)."""
    base = "ft" if "ft" in study.methods else study.methods[0]
    for name, method in [("pretrained", base), *((m, m) for m in methods)]:
        unchanged = name in ("pretrained", "lp")
        runs = study.get(dataset, method, lp_C)
        norm_key = "head_norm_init" if name == "pretrained" else "head_norm_final"
        yield (
            name,
            unchanged,
            [feature_stats(r, split, before=unchanged) for r in runs],
            [r.metrics[norm_key] for r in runs],
        )


@_tidied
def feature_change_table(studies, lp_C: LpC = "cv", split: str = "test") -> pd.DataFrame:
    """Paper Table 12: Diff(F) during the FT stage per method and dataset (`studies`: one `Study` or several,
    each adding its datasets), after the last step and at the restored epoch (with that epoch per seed),
    the paper's beside."""
    studies = [studies] if isinstance(studies, Study) else list(studies)
    rows = []
    for method in ("ft", "lora", "lp_ft", "lp_lora"):
        row = {"method": METHOD_LABELS[method]}
        for study in studies:
            if method not in study.methods:
                continue
            for dataset in study.datasets:
                row[f"{dataset} last step"] = seeds_cell(
                    feature_change_values(study, dataset, method, lp_C, split)
                )
                row[f"{dataset} restored"] = seeds_cell(
                    feature_change_values(study, dataset, method, lp_C, split, key="Diff")
                )
                row[f"{dataset} epoch"] = _epochs_cell(study.get(dataset, method, lp_C))
                paper = TABLE12_DIFF.get(dataset, {}).get(method)
                row[f"{dataset} paper"] = "–" if paper is None else f"{paper:.3g}"
        if len(row) > 1:
            rows.append(row)
    return pd.DataFrame(rows).set_index("method")


@_tidied
def controlled_table(main: Study, controlled: Sequence[Study], split: str = "test") -> pd.DataFrame:
    """Diff(F) of FT and LP-FT under the paper's protocol (`main`: each method its own learning rate) and
    controlled (LP-FT at FT's rate and batch size), per dataset and LP regularisation; mean ± sd over seeds."""
    rows = []
    for study in controlled:
        for dataset in study.datasets:
            for lp_C in study.lp_Cs:
                cells = [
                    feature_change_values(s, dataset, m, lp_C, split)
                    for s, m in ((main, "ft"), (main, "lp_ft"), (study, "lp_ft"))
                ]
                rows.append((dataset.upper(), lp_label(lp_C), *(seeds_cell(c) for c in cells)))
    columns = ["dataset", "LP", "FT", "LP-FT, paper's rate", "LP-FT at FT's rate"]
    return pd.DataFrame(rows, columns=columns).set_index(["dataset", "LP"])


@_tidied
def norm_direction_table(
    controlled: Study, ft_at_lp_norm: Study, lp_ft_at_random_norm: Study, split: str = "test"
) -> pd.DataFrame:
    """Norm apart from direction, all at FT's learning rate and batch size: per starting head (its direction
    and its norm) ‖V‖_F at the start of FT, Diff(F) after the last step and at the restored epoch, the
    restored epoch and the test accuracy; mean ± sd over seeds."""
    dataset, lp_C = controlled.datasets[0], controlled.lp_Cs[0]
    lines = (
        ("random", "own (random)", controlled, "ft"),
        ("random", "the LP head's", ft_at_lp_norm, "ft"),
        ("LP", "the random head's", lp_ft_at_random_norm, "lp_ft"),
        ("LP", "own (LP)", controlled, "lp_ft"),
    )
    rows = []
    for direction, norm, study, method in lines:
        stats = [feature_stats(r, split) for r in study.get(dataset, method, lp_C)]
        rows.append(
            {
                "direction": direction,
                "norm": norm,
                "‖V‖ at start": seeds_cell(study.values(dataset, method, "head_norm_init", lp_C)),
                "Diff(F), last step": seeds_cell([s["Diff_last"] for s in stats]),
                "Diff(F), restored epoch": seeds_cell([s["Diff"] for s in stats]),
                "restored epoch": _epochs_cell(study.get(dataset, method, lp_C)),
                "accuracy (%)": seeds_cell(100 * study.values(dataset, method, "test.accuracy", lp_C)),
            }
        )
    return pd.DataFrame(rows).set_index(["direction", "norm"])


def feature_change_values(
    study: Study, dataset: str, method: str, lp_C: LpC, split: str = "test", key: str = "Diff_last"
):
    """Per-seed Diff(F) on `split` of one grid cell: after the last step (`key` "Diff_last") or at the
    restored epoch ("Diff")."""
    return study.values(dataset, method, lambda r: feature_stats(r, split)[key], lp_C)


def scaling_table(
    study: Study,
    dataset: str,
    methods: Sequence[str] = ("ft", "lp_ft"),
    lp_C: LpC = "cv",
    split: str = "test",
    controlled: Study | None = None,
) -> pd.DataFrame:
    """Per method and head scale: starting head norm, feature change and test accuracy (mean ± std). With
    `controlled` (the same sweep with LP-FT at FT's learning rate and batch size), its LP-FT rows follow."""
    lines = [(METHOD_LABELS[m], study, m) for m in methods]
    if controlled is not None:
        lines.append((f"LP-FT at FT's lr {controlled.settings['lr']:g}", controlled, "lp_ft"))
    rows = []
    for label, source, method in lines:
        for scale in sorted(source.head_scales):
            cell = (dataset, method)
            rows.append(
                {
                    "method": label,
                    "head × s": scale,
                    "‖V‖ at start": seeds_cell(source.values(*cell, "head_norm_init", lp_C, scale)),
                    "Diff(F)": seeds_cell(
                        source.values(*cell, lambda r: feature_stats(r, split)["Diff_last"], lp_C, scale)
                    ),
                    "test accuracy": seeds_cell(source.values(*cell, "test.accuracy", lp_C, scale)),
                }
            )
    return pd.DataFrame(rows).set_index(["method", "head × s"])


@_tidied
def calibration_table(study: Study, dataset: str, lp_C: LpC = "cv", calibrator: str = "ts") -> pd.DataFrame:
    """Paper Tables 3 / 14: ECE and MCE (%) without and with the calibrator, and the improvement.

    `calibrator` is "ts" (temperature scaling, the paper's) or "vs" (vector scaling, beyond the paper).
    The improvement is averaged per seed, as the paper's "Imp." appears to be.
    """
    rows = []
    for metric in ("ece", "mce"):
        for method in [m for m in ("ft", "lp_ft", "lora", "lp_lora") if m in study.methods]:
            raw = 100 * calibration_values(study, dataset, method, metric, lp_C)
            cal = 100 * calibration_values(study, dataset, method, f"{metric}_{calibrator}", lp_C)
            ci = run_calibration_ci(study.get(dataset, method, lp_C)[0], metric)
            paper = TABLE14_CALIBRATION.get(dataset, {}).get(metric, {}).get(method)
            rows.append(
                {
                    "metric": metric.upper(),
                    "method": METHOD_LABELS[method],
                    "w/o ours": seeds_cell(raw, 3),
                    f"90% bootstrap (seed {study.seeds[0]})": f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]",
                    f"w/ {calibrator.upper()} ours": seeds_cell(cal, 3),
                    "Imp. ours": seeds_cell(raw - cal, 3),
                    "w/o paper": paper[0] if paper else None,
                    f"w/ {calibrator.upper()} paper": paper[1] if paper and calibrator == "ts" else None,
                    "Imp. paper": paper[2] if paper and calibrator == "ts" else None,
                    "T (Adam / L-BFGS)": f"{seeds_cell(calibration_values(study, dataset, method, 'T', lp_C))} / "
                    f"{seeds_cell(calibration_values(study, dataset, method, 'T_lbfgs', lp_C))}"
                    if calibrator == "ts"
                    else None,
                }
            )
    table = pd.DataFrame(rows).set_index(["metric", "method"])
    return table.dropna(axis=1, how="all")


@_tidied
def calibrated_accuracy_table(study: Study) -> pd.DataFrame:
    """Test accuracy (%) raw, after temperature scaling and after vector scaling, per run cell."""
    rows = []
    for dataset in study.datasets:
        for method in [m for m in ("ft", "lp_ft", "lora", "lp_lora") if m in study.methods]:
            for lp_C in study.lp_Cs if method in LP_HEAD_METHODS else ["cv"]:

                def acc(key):
                    return seeds_cell(100 * calibration_values(study, dataset, method, key, lp_C))  # noqa: B023

                rows.append(
                    {
                        "dataset": dataset,
                        "method": METHOD_LABELS[method],
                        "LP": lp_label(lp_C) if method in LP_HEAD_METHODS else "",
                        "accuracy": acc("accuracy"),
                        "after TS": acc("accuracy_ts"),
                        "after vector scaling": acc("accuracy_vs"),
                    }
                )
    return pd.DataFrame(rows).set_index(["dataset", "method", "LP"])


@_tidied
def boss_accuracy_table(study: Study, metric: str = "accuracy", lp_C: LpC = "cv") -> pd.DataFrame:
    """Paper Table 10: accuracy (or macro_f1) in % on the Amazon test set (ID) and each OOD set, mean ± std
    over seeds, the paper's accuracy beside, ★ on the best mean of each of our columns."""
    sets = {"amazon": "test", **{name: f"ood.{name}" for name in OOD_SETS["amazon"]}}
    means = {
        name: {m: 100 * study.values("amazon", m, f"{key}.{metric}", lp_C).mean() for m in study.methods}
        for name, key in sets.items()
    }
    rows = []
    for method in study.methods:
        row = {"method": METHOD_LABELS[method]}
        for name, key in sets.items():
            values = 100 * study.values("amazon", method, f"{key}.{metric}", lp_C)
            star = " ★" if means[name][method] == max(means[name].values()) else ""
            row[f"{name} ours"] = seeds_cell(values, 4) + star
            if metric == "accuracy":
                paper = TABLE10_BOSS.get(method, {}).get(name)
                row[f"{name} paper"] = f"{paper[0]:.2f} ± {paper[1]:.2f}" if paper else "–"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


@_tidied
def boss_feature_table(study: Study, split: str, lp_C: LpC = "cv") -> pd.DataFrame:
    """Paper Table 11 for one BOSS set (`split` "test" is Amazon): CS, Diff, FDR; Norm(C) on Amazon."""
    name = "amazon" if split == "test" else split
    rows = []
    for label, unchanged, stats, norms in _feature_cells(study, "amazon", study.methods, lp_C, split):
        paper = TABLE11_BOSS.get(name, {}).get(label)
        row = {"method": "Pre-trained" if label == "pretrained" else METHOD_LABELS[label]}
        for i, key in enumerate(("CS", "Diff", "FDR")):
            label = f"FDR {stats[0]['FDR_k']}-d" if key == "FDR" else key
            row[f"{label} ours"] = "–" if unchanged and key == "Diff" else seeds_cell([s[key] for s in stats])
            row[f"{key} paper"] = "–" if paper is None or paper[i] is None else f"{paper[i]:.3g}"
            if key == "Diff":
                row["Diff last step ours"] = "–" if unchanged else seeds_cell([s["Diff_last"] for s in stats])
            if key == "FDR":
                row["FDR null: mean [95 % band]"] = _null_cell(stats)
        if split == "test":
            row["Norm(C) ours"] = seeds_cell(norms)
            row["Norm(C) paper"] = "–" if paper is None or paper[3] is None else f"{paper[3]:.3g}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


@_tidied
def lp_choice_table(study: Study) -> pd.DataFrame:
    """For each LP regularisation: the C used and the LP head norm, per dataset."""
    rows = []
    for lp_C in study.lp_Cs:
        for dataset in study.datasets:
            method = study.lp_method
            runs = study.get(dataset, method, lp_C)
            rows.append(
                {
                    "LP regularisation": lp_label(lp_C),
                    "dataset": dataset,
                    "C used": seeds_cell([r.metrics["lp"]["C"] for r in runs]),
                    "LP train accuracy": seeds_cell([r.metrics["lp"]["train_accuracy"] for r in runs]),
                    "‖V‖_F after LP": seeds_cell([r.metrics["lp"]["weight_norm"] for r in runs]),
                }
            )
    return pd.DataFrame(rows)


@_tidied
def kernel_table(by_seed: Sequence[dict], dataset: str):
    """Paper Tables 2 / 9 for one dataset: rank, Frobenius norm, kernel-regression accuracy and FT ratio,
    each cell over the kernel seeds.

    `by_seed` holds one {label (e.g. "LP-FT (C = 100)") → `KernelResult`} per kernel seed; the first label
    supplies Pre-train E. Accuracies are in %: the paper's per-logit accuracy, and the argmax class accuracy
    of the same fit.
    """
    paper = TABLE2_9_KERNELS.get(dataset, {})
    rows = []

    def row(label, kernel, results, which, paper_key, ratio=False):
        st = {k: np.array([r.statistics(which)[k] for r in results]) for k in results[0].statistics(which)}
        ref = paper.get(paper_key)
        paper_ratio = "–" if not ref or ref[4] is None else f"{ref[4]:.4f}"
        rows.append(
            {
                "method": label,
                "kernel": kernel,
                "rank (fp32 / fp64 tol.)": f"{seeds_cell(st['rank_fp32'])} / {seeds_cell(st['rank_fp64'])}",
                "FN": seeds_cell(st["fn"]),
                "acc % per-logit (train / test)": f"{seeds_cell(100 * st['per_logit_train'])} / "
                f"{seeds_cell(100 * st['per_logit_test'])}",
                "acc % argmax (train / test)": f"{seeds_cell(100 * st['argmax_train'])} / "
                f"{seeds_cell(100 * st['argmax_test'])}",
                "FT ratio": seeds_cell([r.ft_ratio() for r in results]) if ratio else "–",
                "paper: rank, FN": f"{ref[0]}, {ref[1]:.3g}" if ref else "–",
                "paper: acc % (train / test), FT ratio": f"{ref[2]:.1f} / {ref[3]:.1f}, {paper_ratio}"
                if ref
                else "–",
            }
        )

    first = next(iter(by_seed[0]))
    row("–", "Pre-train E", [results[first] for results in by_seed], "P", ("pretrained", "P"))
    for label, result in by_seed[0].items():
        setting = result.spec.setting
        results = [r[label] for r in by_seed]
        row(label, "FT E", results, "F", (setting, "F"), ratio=True)
        row(label, "NTK", results, "NTK", (setting, "NTK"))
    return pd.DataFrame(rows).set_index(["method", "kernel"])


@_tidied
def lora_scale_table(kernels: dict, query_value: dict, lp_C: LpC, sigma2: float):
    """Prop. 4.4 per dataset for LoRA vs FT and LP-LoRA vs LP-FT: P gap, fitted and predicted F scale, each
    cell over the kernel seeds.

    `kernels[d]` and `query_value[d]` hold one {label → KernelResult} per kernel seed (as
    `PagePlan.kernels_over_seeds` gives them). Returns (DataFrame, {dataset: [scale dicts]}), each scale dict
    `lora_kernel_scale`'s with "fitted", "predicted" and "relative_residual" as per-seed arrays.
    """
    rows, scales = [], {}
    for d in kernels:
        scales[d] = []
        for lora_label, ft_label in (
            ("LoRA", "FT"),
            (f"LP-LoRA ({lp_label(lp_C)})", f"LP-FT ({lp_label(lp_C)})"),
        ):
            if lora_label not in kernels[d][0] or ft_label not in query_value[d][0]:
                continue
            pairs = [(k[lora_label], q[ft_label]) for k, q in zip(kernels[d], query_value[d])]
            per_seed = [lora_kernel_scale(lora, ft, sigma2) for lora, ft in pairs]
            s = {
                **per_seed[0],
                "pair": f"{lora_label} vs {ft_label}",
                **{
                    key: np.array([x[key] for x in per_seed])
                    for key in ("fitted", "predicted", "relative_residual")
                },
            }
            scales[d].append(s)
            p_gap = max(np.abs(lora.parts.p_scalar - ft.parts.p_scalar).max() for lora, ft in pairs)
            rows.append(
                {
                    "dataset": d,
                    "pair": f"{lora_label} vs {ft_label}",
                    "max |P^LoRA − P^FT|": f"{p_gap:.1e}",
                    "fitted scale s*": seeds_cell(s["fitted"]),
                    "σ² r (α/r)²": f"{s['predicted'][0]:.3g}",
                    "s* / prediction": seeds_cell(s["fitted"] / s["predicted"]),
                    "‖F^LoRA − s* F^FT_qv‖ / ‖F^LoRA‖": seeds_cell(s["relative_residual"]),
                }
            )
    return pd.DataFrame(rows).set_index(["dataset", "pair"]), scales


@_tidied
def rank_sweep_table(sweep: list[dict]) -> pd.DataFrame:
    """The LoRA rank sweep (`analysis.lora.rank_sweep`), one row per rank: accuracy and Diff(F) over seeds,
    the fitted kernel scale s* and Prop. 4.4's σ² r."""
    rows = [
        {
            "r": s["r"],
            "test accuracy (%)": seeds_cell(s["accuracy"]),
            "Diff(F)": seeds_cell(s["diff"]),
            "fitted scale s*": s["fitted"],
            "σ² r": s["predicted"],
        }
        for s in sweep
    ]
    return pd.DataFrame(rows).set_index("r")


@_tidied
def span_table(experiments: list[SpanExperiment]):
    """One row per experiment (optimizer): steps, training loss, largest feature change off the training span
    and smallest inside it."""
    rows = [
        {
            "optimizer": e.optimizer,
            "steps": e.steps,
            "train loss start → end": f"{e.initial_train_loss:.3f} → {e.final_train_loss:.3f}",
            f"max ‖Δφ(x)‖, x ⊥ span ({len(e.orthogonal_change)} inputs)": f"{e.orthogonal_change.max():.2e}",
            f"min ‖Δφ(x)‖, x in span ({len(e.in_span_change)} inputs)": f"{e.in_span_change.min():.2e}",
        }
        for e in experiments
    ]
    return pd.DataFrame(rows).set_index("optimizer")


def epoch_summary(history: dict):
    """Per epoch of a fine-tuning history: mean training accuracy of its batches, ‖V‖_F at its end, val acc
    (a DataFrame, one row per epoch)."""
    epochs = np.ceil(np.asarray(history["epoch_float"]) - 1e-9).astype(int)
    acc = pd.Series(history["train_accuracy"]).groupby(epochs).mean()
    loss = pd.Series(history["loss"]).groupby(epochs).mean()
    return pd.DataFrame(
        {
            "epoch": history["epoch"],
            "train_accuracy": acc.values,
            "train_loss": loss.values,
            "head_norm": history["epoch_head_norm"],
            "val_accuracy": history["val_accuracy"],
        }
    )


def precision_table(record: dict) -> pd.DataFrame:
    """fp32 against bf16 from recorded pairs of `run_benchmark` tables (`record["pairs"]`: a list of
    {"fp32": row → value, "bf16": row → value}): each timed row with its value in each precision (mean over
    the pairs) and bf16's speed-up, the smaller over the pairs (> 1: bf16 is faster)."""
    rows = []
    first = record["pairs"][0]
    for key in first["fp32"]:
        if key not in first["bf16"] or not (key.endswith("(s)") or key.endswith("(examples/s)")):
            continue
        values = [
            (float(str(p["fp32"][key]).split()[0]), float(str(p["bf16"][key]).split()[0]))
            for p in record["pairs"]
        ]
        speedups = [a / b if key.endswith("(s)") else b / a for a, b in values]
        a, b = np.mean(values, axis=0)
        rows.append((key, round(float(a), 3), round(float(b), 3), round(min(speedups), 2)))
    return pd.DataFrame(rows, columns=["measured", "fp32", "bf16", "bf16 speed-up"]).set_index("measured")
