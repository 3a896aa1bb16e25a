"""Figures of the book. Each function draws one idea, labels its axes with units, and returns the Figure."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..analysis.calibration import calibration_values, reliability_bins, run_calibration, run_calibration_ci
from ..analysis.features import feature_stats, run_tsne
from ..analysis.kernel_stats import block_nuclear_norms, normalised_spectrum
from ..config import LP_HEAD_METHODS, LpC, lp_label
from ..data.tasks import OOD_SETS, class_names
from ..model.head_mechanism import softmax
from ..paper import METHOD_LABELS, TABLE1, TABLE10_BOSS, TABLE13_HEAD_NORM, TABLE14_CALIBRATION
from ..runs.grid import Study
from .claims import summary_table
from .style import METHOD_COLORS, apply_style, class_color
from .tables import epoch_summary

COLORS = METHOD_COLORS
apply_style()
LP_C_STYLES = ["-", "--", ":", "-."]


def stack_figures(figures: Iterable[plt.Figure], columns: int = 1) -> bytes:
    """PNG bytes of `figures` laid out in rows of `columns`, top to bottom, each rendered at its own dpi with
    a tight bounding box (as Jupyter's inline backend does), on white; the figures are closed."""
    from PIL import Image

    panels = []
    for fig in figures:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", bbox_inches="tight", facecolor="white")
        plt.close(fig)
        buffer.seek(0)
        panels.append(Image.open(buffer).convert("RGB"))
    if not panels:
        raise ValueError("no figure to stack: the page's parameters select nothing to draw")
    rows = [panels[i : i + columns] for i in range(0, len(panels), columns)]
    width = max(sum(p.width for p in row) for row in rows)
    canvas = Image.new("RGB", (width, sum(max(p.height for p in row) for row in rows)), "white")
    top = 0
    for row in rows:
        left = 0
        for panel in row:
            canvas.paste(panel, (left, top))
            left += panel.width
        top += max(p.height for p in row)
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()


def show_panels(figures: Iterable[plt.Figure], columns: int = 1) -> None:
    """Display `figures` (one per dataset or LP head) as ONE image in rows of `columns`, so the cell has one
    output and the book one captioned, numbered figure that the prose can reference."""
    from IPython.display import Image, display

    display(Image(data=stack_figures(figures, columns)))


def lp_path_figure(study: Study, dataset: str, method: str = "lp_ft") -> plt.Figure:
    """Fig. 1a / 4a: LP head norm and training accuracy against L-BFGS iterations, one line per LP C."""
    fig, (ax_norm, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for style, lp_C in zip(LP_C_STYLES, study.lp_Cs):
        path = study.get(dataset, method, lp_C)[0].history["lp_path"]
        x = np.maximum(path["iteration"], 0.8)  # iteration 0 (zero head) drawn at the left edge
        ax_norm.plot(x, path["weight_norm"], style, color=COLORS["lp"], marker=".", label=lp_label(lp_C))
        ax_acc.plot(
            x,
            100 * np.asarray(path["train_accuracy"]),
            style,
            color=COLORS["lp"],
            marker=".",
            label=lp_label(lp_C),
        )
    if {"ft", "lora"} & set(study.methods):
        ax_norm.axhline(
            study.random_init_norm(dataset),
            color=COLORS["pretrained"],
            lw=1,
            ls=":",
            label="random init (FT start)",
        )
    for ax in (ax_norm, ax_acc):
        ax.set_xscale("log")
        ax.set_xlabel("L-BFGS iterations of the LP fit")
        ax.legend(fontsize=9)
    ax_norm.set_yscale("log")
    ax_norm.set_ylabel("head norm ‖V‖_F")
    ax_acc.set_ylabel("training accuracy (%)")
    finals = {
        lp_label(c): study.get(dataset, method, c)[0].history["lp_path"]["weight_norm"][-1]
        for c in study.lp_Cs
    }
    fig.suptitle(
        f"{dataset.upper()}: LP head norm at convergence "
        + ", ".join(f"{v:.2g} ({k})" for k, v in finals.items())
        + "; it starts from 0"
    )
    fig.tight_layout()
    return fig


def ft_curve_figure(
    study: Study, dataset: str, methods: Sequence[str] = ("ft", "lora", "lp_ft", "lp_lora"), lp_C: LpC = "cv"
) -> plt.Figure:
    """Fig. 1b / 4b–d: head norm and training accuracy per epoch of fine-tuning (mean, bars ± std over seeds)."""
    fig, (ax_norm, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for method in [m for m in methods if m in study.methods]:
        runs = study.get(dataset, method, lp_C)
        tables = [epoch_summary(r.history) for r in runs]
        epochs = np.concatenate([[0], tables[0]["epoch"].to_numpy()])
        norms = np.array(
            [np.concatenate([[r.metrics["head_norm_init"]], t["head_norm"]]) for r, t in zip(runs, tables)]
        )
        accs = 100 * np.array([t["train_accuracy"].to_numpy() for t in tables])
        label = METHOD_LABELS[method] + (f" ({lp_label(lp_C)})" if method.startswith("lp") else "")
        for ax, x, y in ((ax_norm, epochs, norms), (ax_acc, epochs[1:], accs)):
            mean, std = y.mean(0), y.std(0, ddof=1) if len(y) > 1 else np.zeros(y.shape[1])
            ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, color=COLORS[method], label=label)
    ax_norm.set_yscale("log")
    ax_norm.set_ylabel("head norm ‖V‖_F")
    ax_acc.set_ylabel("training accuracy of the epoch's batches (%)")
    for ax in (ax_norm, ax_acc):
        ax.set_xlabel("epoch of fine-tuning (0 = start)")
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.legend(fontsize=9)
    changes = [
        abs(r.metrics["head_norm_final"] / r.metrics["head_norm_init"] - 1)
        for m in methods
        if m in study.methods
        for r in study.get(dataset, m, lp_C)
    ]
    fig.suptitle(
        f"{dataset.upper()}: during fine-tuning the head norm changes by at most {100 * max(changes):.1f}%"
    )
    fig.tight_layout()
    return fig


def norm_bar_figure(study: Study, lp_C: LpC = "cv") -> plt.Figure:
    """Fig. 1c / 4e: ‖V‖_F after training per method (bars: ours, mean ± std; diamonds: the paper)."""
    cells = [("pretrained", "ft", "head_norm_init")] + [
        (m, m, "head_norm_final") for m in ("lp", "ft", "lora", "lp_ft", "lp_lora") if m in study.methods
    ]
    fig, axes = plt.subplots(1, len(study.datasets), figsize=(5 * len(study.datasets), 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], study.datasets):
        for i, (name, method, key) in enumerate(cells):
            vals = study.values(dataset, method, key, lp_C)
            ax.bar(
                i,
                vals.mean(),
                yerr=vals.std(ddof=1) if len(vals) > 1 else 0,
                color=COLORS[name],
                capsize=3,
                label="ours (mean ± std)" if i == 0 else None,
            )
            paper = TABLE13_HEAD_NORM.get(dataset, {}).get(name)
            if paper is not None:
                ax.plot(i, paper, "kD", ms=6, label="paper (RoBERTa)" if i == 0 else None)
        ax.set_xticks(
            range(len(cells)),
            ["Pre-trained" if n == "pretrained" else METHOD_LABELS[n] for n, _, _ in cells],
            rotation=30,
        )
        ax.set_yscale("log")
        ax.set_ylabel("head norm ‖V‖_F after training")
        ax.set_title(f"{dataset.upper()} (LP: {lp_label(lp_C)})")
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def regularization_figure(path: dict, chosen_C: float, init_norm: float, dataset: str) -> plt.Figure:
    """LP against its regularisation C: head norm (left) and train/test accuracy (right)."""
    fig, (ax_norm, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_norm.loglog(path["C"], path["weight_norm"], "o-", color=COLORS["lp"], label="LP head ‖V‖_F")
    ax_norm.axhline(init_norm, color=COLORS["pretrained"], ls=":", label="random init ‖V‖_F")
    ax_acc.semilogx(
        path["C"], 100 * np.asarray(path["train_accuracy"]), "o-", color=COLORS["lp"], label="train"
    )
    ax_acc.semilogx(
        path["C"], 100 * np.asarray(path["test_accuracy"]), "s--", color=COLORS["ft"], label="test"
    )
    for ax in (ax_norm, ax_acc):
        ax.axvline(chosen_C, color="k", lw=1, label=f"chosen by 5-fold CV (C = {chosen_C:.2g})")
        ax.set_xlabel("inverse L2 regularisation C (multinomial scale)")
        ax.legend(fontsize=9)
    ax_norm.set_ylabel("head norm ‖V‖_F")
    ax_acc.set_ylabel("accuracy (%)")
    fig.suptitle(f"{dataset.upper()}: the LP head norm is set by the regularisation")
    fig.tight_layout()
    return fig


def mechanism_figure(path: dict, class_names: Sequence[str], dataset: str) -> plt.Figure:
    """§4.4 in the run: cos τ of head rows with own/other-class features, and ∂L/∂‖v_k‖, per LP iteration."""
    it = np.asarray(path["iteration"][1:])
    own, other, grad = (np.asarray(path[k]) for k in ("cos_own", "cos_other", "dL_dnorm"))
    fig, (ax_cos, ax_grad) = plt.subplots(1, 2, figsize=(10, 3.6))
    for k, name in enumerate(class_names):
        color = class_color(k)
        ax_cos.plot(it, own[:, k], "-", color=color, label=f"v_{name} · own class")
        ax_cos.plot(it, other[:, k], "--", color=color, label=f"v_{name} · other classes")
        ax_grad.plot(it, grad[:, k], "-", color=color, label=f"k = {name}")
    ax_cos.axhline(0, color="k", lw=0.8)
    ax_grad.axhline(0, color="k", lw=0.8)
    ax_grad.set_yscale("symlog", linthresh=1e-4)
    for ax in (ax_cos, ax_grad):
        ax.set_xscale("log")
        ax.set_xlabel("L-BFGS iterations of the LP fit")
        ax.legend(fontsize=9)
    ax_cos.set_ylabel("mean cos τ (head row, feature)")
    ax_grad.set_ylabel("∂L/∂‖v_k‖ (eq. 3)")
    gap = float(np.nanmean(own[-1] - other[-1]))
    negative = int(np.sum(grad[-1] < 0))
    fig.suptitle(
        f"{dataset.upper()}: at the end of the fit, own-class cosines exceed other-class ones by {gap:.2f} "
        f"on average, and ∂L/∂‖v_k‖ < 0 for {negative} of {grad.shape[1]} rows"
    )
    fig.tight_layout()
    return fig


def scaling_figure(
    study: Study,
    dataset: str,
    methods: Sequence[str] = ("ft", "lp_ft"),
    lp_C: LpC = "cv",
    split: str = "test",
    title: str | None = None,
    controlled: Study | None = None,
) -> plt.Figure:
    """Figs. 3 / 11: feature change against the head norm at the start of FT (mean ± s.e. over seeds). With
    `controlled` (the same sweep, LP-FT at FT's learning rate and batch size), its LP-FT line is dotted."""

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    lines = [
        (
            study,
            m,
            "o-",
            METHOD_LABELS[m] + (f" ({lp_label(lp_C)})" if m.startswith("lp") else " (random head)"),
        )
        for m in methods
    ]
    if controlled is not None:
        label = f"LP-FT ({lp_label(lp_C)}) at FT's lr {controlled.settings['lr']:g}"
        lines.append((controlled, "lp_ft", "s:", label))
    for source, method, style, label in lines:
        xs, ys, ses = [], [], []
        for scale in sorted(source.head_scales):
            norms = source.values(dataset, method, "head_norm_init", lp_C, scale)
            diffs = source.values(
                dataset, method, lambda r: feature_stats(r, split)["Diff_last"], lp_C, scale
            )
            xs.append(norms.mean())
            ys.append(diffs.mean())
            ses.append(diffs.std(ddof=1) / np.sqrt(len(diffs)) if len(diffs) > 1 else 0.0)
        xs, ys, ses = map(np.asarray, (xs, ys, ses))
        ax.plot(xs, ys, style, color=COLORS[method], label=label)
        ax.fill_between(xs, ys - ses, ys + ses, color=COLORS[method], alpha=0.2)
    for method in methods:
        if 1.0 in study.head_scales:
            unscaled = study.values(dataset, method, "head_norm_init", lp_C, 1.0).mean()
            ax.axvline(unscaled, color=COLORS[method], ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("head norm ‖V‖_F at the start of fine-tuning (head × s)")
    ax.set_ylabel(f"feature change Diff(F) on {split} (mean ‖φ − φ₀‖)")
    ax.set_title(title or f"{dataset.upper()}: feature change against the head norm at the start of FT")
    ax.legend(fontsize=9, title="dashed: unscaled head", title_fontsize=9)
    fig.tight_layout()
    return fig


def tsne_figure(run, class_names: Sequence[str], title: str, seed: int = 0) -> plt.Figure:
    """Figs. 5 / 6: t-SNE of test features before (faint) and after (solid) training, with the head rows."""

    labels = run.arrays["labels_test"]
    before, after, head0, head1 = run_tsne(run, "test", seed)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    markers = "o^sPD"
    for k, name in enumerate(class_names):
        color = class_color(k)
        ax.scatter(
            *before[labels == k].T,
            marker=markers[k],
            facecolors="none",
            edgecolors=color,
            alpha=0.5,
            label=f"{name}: pre-trained φ",
        )
        ax.scatter(*after[labels == k].T, marker=markers[k], color=color, label=f"{name}: φ after training")
        ax.scatter(*head0[k], marker="X", s=160, color=color, edgecolors="k", alpha=0.5)
        ax.scatter(*head1[k], marker="*", s=320, color=color, edgecolors="k")
        ax.annotate("", xy=head1[k], xytext=head0[k], arrowprops={"arrowstyle": "->", "color": color})
    ax.scatter([], [], marker="X", color="grey", edgecolors="k", label="head row v_k at start of FT")
    ax.scatter([], [], marker="*", s=120, color="grey", edgecolors="k", label="head row v_k after training")
    ax.set_xlabel("t-SNE 1 (cosine metric)")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title)
    ax.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def tsne_figures(study: Study, methods, lp_Cs: Sequence[LpC], seed: int = 0):
    """Figs. 5 / 6: `tsne_figure` of the first seed's run for each of `methods` (LP-headed ones once per LP
    regularisation), on CB if the study has it, else its first dataset. Yields the figures one by one."""

    dataset = "cb" if "cb" in study.datasets else study.datasets[0]
    for method in [m for m in ("ft", "lp_ft", "lora", "lp_lora") if m in methods]:
        lp_head = method in LP_HEAD_METHODS
        for lp_C in lp_Cs if lp_head else lp_Cs[:1]:
            title = f"{dataset.upper()}: {METHOD_LABELS[method]}" + (
                f", LP {lp_label(lp_C)}" if lp_head else ""
            )
            yield tsne_figure(study.get(dataset, method, lp_C)[0], class_names(dataset), title, seed=seed)


def reliability_figure(runs: dict, title: str) -> plt.Figure:
    """Reliability diagrams before (top) and after (bottom) temperature scaling; one column per labelled run."""

    fig, axes = plt.subplots(2, len(runs), figsize=(4 * len(runs), 7), squeeze=False)
    for col, (label, run) in enumerate(runs.items()):
        z, y = run.arrays["logits_test"], run.arrays["labels_test"]
        cal = run_calibration(run)
        for row, (logits, tag, ece, mce) in enumerate(
            [
                (z, "before TS", cal["ece"], cal["mce"]),
                (z / cal["T"], f"after TS (T = {cal['T']:.2f})", cal["ece_ts"], cal["mce_ts"]),
            ]
        ):
            ax = axes[row, col]
            bins = reliability_bins(softmax(logits), y)
            centres = (bins["edges"][:-1] + bins["edges"][1:]) / 2
            filled = bins["count"] > 0
            ax.bar(
                centres[filled],
                bins["accuracy"][filled],
                width=1 / 15,
                edgecolor="k",
                color=COLORS["ft"],
                alpha=0.7,
                label="accuracy in bin",
            )
            ax.plot(centres[filled], bins["confidence"][filled], "r.", label="mean confidence in bin")
            ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
            for c, n in zip(centres[filled], bins["count"][filled]):
                ax.annotate(f"{int(n)}", (c, 0.02), ha="center", fontsize=9)
            ax.set_title(f"{label}, {tag}\nECE {100 * ece:.1f}%, MCE {100 * mce:.1f}%", fontsize=9)
            ax.set_xlabel("confidence (max softmax probability)")
            ax.set_ylabel("accuracy")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
    axes[0, 0].legend(fontsize=9, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def head_multiplier_figure(curve: dict, temperature: float, title: str) -> plt.Figure:
    """Mean confidence and ECE of a trained model as its head is multiplied by m (m = 1/T is TS)."""
    fig, (ax_conf, ax_ece) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_conf.semilogx(curve["multiplier"], curve["confidence"], "o-", color=COLORS["lp_ft"])
    ax_ece.semilogx(curve["multiplier"], 100 * np.asarray(curve["ece"]), "o-", color=COLORS["lp_ft"])
    for ax in (ax_conf, ax_ece):
        ax.axvline(1.0, color="k", lw=1, label="trained head (m = 1)")
        ax.axvline(1 / temperature, color="k", ls="--", lw=1, label=f"m = 1/T = {1 / temperature:.2g} (TS)")
        ax.set_xlabel("head multiplier m (‖V‖ and ‖b‖ times m)")
        ax.legend(fontsize=9)
    ax_conf.set_ylabel("mean confidence on test")
    ax_ece.set_ylabel("ECE on test (%)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def spectra_figure(results: dict, dataset: str) -> plt.Figure:
    """Figs. 2 / 7: singular values of each kernel divided by its largest, Pre-train E and FT E per setting."""

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    first = next(iter(results.values()))
    p_train = first.blocks("P")[0]
    ax.semilogy(
        normalised_spectrum(p_train), color=COLORS["pretrained"], lw=2, label="Pre-train E (P, all settings)"
    )
    for label, result in results.items():
        setting = result.spec.setting
        weak = setting.startswith("lp") and result.spec.lp_C != "cv"
        ax.semilogy(
            normalised_spectrum(result.blocks("F")[0]),
            color=COLORS[setting],
            ls=(":" if weak else "--") if "lora" in setting else ("-." if weak else "-"),
            label=f"FT E (F) under {label}",
        )
    ax.set_xlabel("index of singular value (train × train kernel)")
    ax.set_ylabel("singular value / largest singular value")
    ax.set_ylim(1e-8, 1.5)
    ax.set_title(f"{dataset.upper()}: normalised spectra of P and of F under each setting")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def heatmap_figure(results: dict, dataset: str, class_names: Sequence[str]) -> plt.Figure:
    """Figs. 8 / 9: nuclear norm of each C×C block, training samples grouped by class (log colour scale)."""
    from matplotlib.colors import LogNorm

    first = next(iter(results.values()))
    n = first.parts.n_train
    labels = first.parts.labels[:n]
    order = np.argsort(labels, kind="stable")
    panels = [("Pre-train E (P)", first.parts.P()[:n, :, :n])]
    panels += [(f"FT E under {label}", r.parts.F[:n, :, :n]) for label, r in results.items()]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    bounds = np.cumsum(np.bincount(labels, minlength=len(class_names)))[:-1] - 0.5
    for ax, (title, K4) in zip(axes.ravel(), panels):
        norms = block_nuclear_norms(K4)[np.ix_(order, order)]
        positive = norms[norms > 0]
        image = ax.imshow(norms, cmap="viridis", norm=LogNorm(vmin=positive.min(), vmax=positive.max()))
        for b in bounds:
            ax.axhline(b, color="w", lw=0.8)
            ax.axvline(b, color="w", lw=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("training sample (grouped by class)")
        ax.set_ylabel("training sample")
        fig.colorbar(image, ax=ax, fraction=0.046, label="nuclear norm of block")
    fig.suptitle(f"{dataset.upper()}: classes {', '.join(class_names)} in order; white lines separate them")
    fig.tight_layout()
    return fig


def linearization_figure(checks: dict, dataset: str) -> plt.Figure:
    """Eq. (1) in action: predicted against measured logit change after one small gradient step."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    lim = 0.0
    for setting, c in checks.items():
        p, m = c["predicted"].ravel(), c["measured"].ravel()
        ax.scatter(
            p,
            m,
            s=12,
            color=COLORS[setting],
            alpha=0.7,
            label=f"{METHOD_LABELS[setting]} (η = {c['lr']:.2g}; rel. error {c['relative_error']:.2f})",
        )
        lim = max(lim, np.abs(p).max(), np.abs(m).max())
    ax.plot([-lim, lim], [-lim, lim], "k--", lw=1, label="measured = predicted")
    ax.set_xlabel("logit change predicted by η/N Σ_i Θ(x, x_i) δ_i")
    ax.set_ylabel("logit change measured after the step")
    ax.set_title(f"{dataset.upper()} test examples: one full-batch gradient step")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def rank_sweep_figure(sweep: list[dict], dataset: str) -> plt.Figure:
    """LoRA rank sweep (`analysis.lora.rank_sweep`): fitted kernel scale against r (with σ² r), and feature
    change against r."""
    fig, (ax_k, ax_d) = plt.subplots(1, 2, figsize=(10, 3.6))
    r = np.array([s["r"] for s in sweep])
    ax_k.loglog(
        r, [s["fitted"] for s in sweep], "o-", color=COLORS["lora"], label="fitted s* (F^LoRA vs F^FT_qv)"
    )
    ax_k.loglog(r, [s["predicted"] for s in sweep], "k--", label="Prop. 4.4: σ² r")
    ax_k.set_xlabel("LoRA rank r (α = r)")
    ax_k.set_ylabel("scale of the FT-effective kernel")
    ax_k.legend(fontsize=9)
    ax_d.semilogx(r, [float(np.mean(s["diff"])) for s in sweep], "o-", color=COLORS["lora"])
    ax_d.set_xlabel("LoRA rank r (α = r)")
    ax_d.set_ylabel("feature change Diff(F) on test (mean over seeds)")
    fig.suptitle(f"{dataset.upper()}: LoRA kernel scale and feature change against the rank")
    fig.tight_layout()
    return fig


STATUS_COLORS = {
    "holds": "#009E73",
    "does not hold": "#D55E00",
    "inconclusive": "#E69F00",
    "not run": "#999999",
}


def scoreboard_figure(table) -> plt.Figure:
    """The claims at a glance: one row per claim id, one bar split by how many of its checks hold, do not
    hold, are inconclusive or were not run (`table`: the gathered claim records)."""
    summary = summary_table(table, {})  # the claims page's own counts, one row per claim id
    ids = list(summary.index)
    counts = {s: summary[s].tolist() if s in summary else [0] * len(ids) for s in STATUS_COLORS}
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(ids) + 1.2))
    left = np.zeros(len(ids))
    for status, color in STATUS_COLORS.items():
        ax.barh(ids, counts[status], left=left, color=color, label=status)
        left += counts[status]
    ax.invert_yaxis()
    ax.set_xlabel("number of checks")
    ax.set_ylabel("claim id")
    ax.legend(loc="lower right", ncols=2)
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig


def calibration_figure(study: Study, dataset: str, lp_C: LpC = "cv") -> plt.Figure:
    """ECE and MCE (%) of each FT-stage method before → after temperature scaling (first seed's bootstrap
    interval on the raw value as a bar; mean over seeds as dots), the paper's values as open markers."""
    methods = [m for m in ("ft", "lp_ft", "lora", "lp_lora") if m in study.methods]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("ece", "mce")):
        paper = TABLE14_CALIBRATION.get(dataset, {}).get(metric, {})
        for x, method in enumerate(methods):
            raw = 100 * calibration_values(study, dataset, method, metric, lp_C).mean()
            ts = 100 * calibration_values(study, dataset, method, f"{metric}_ts", lp_C).mean()
            lo, hi = (100 * v for v in run_calibration_ci(study.get(dataset, method, lp_C)[0], metric))
            color = COLORS[method]
            ax.plot([x - 0.15, x + 0.15], [raw, ts], "-", color=color)
            ax.plot(x - 0.15, raw, "o", color=color)
            ax.plot(x + 0.15, ts, "s", color=color)
            ax.vlines(x - 0.15, lo, hi, color=color, alpha=0.5, lw=3)
            if method in paper:
                ax.plot([x - 0.15, x + 0.15], paper[method][:2], "D", mfc="none", color="k", ms=6)
        ax.set_xticks(range(len(methods)), [METHOD_LABELS[m] for m in methods])
        ax.set_ylabel(f"{metric.upper()} on test (%)")
        ax.set_title(f"{dataset.upper()}: {metric.upper()} before (●) → after (■) TS")
    axes[0].plot([], [], "D", mfc="none", color="k", label="paper (RoBERTa)")
    axes[0].legend(loc="upper right")
    fig.tight_layout()
    return fig


def feature_dot_figure(study: Study, dataset: str, lp_C: LpC = "cv") -> plt.Figure:
    """Table 1's CS(F) and Diff(F) per method as dots, ours (mean ± sd over seeds) beside the paper's (open
    diamonds). The two backbones differ in scale, so read the order of the methods, not the levels."""
    methods = [m for m in ("ft", "lora", "lp_ft", "lp_lora") if m in study.methods]
    paper = TABLE1.get(dataset, {})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key, label in zip(axes, ("CS", "Diff"), ("cosine similarity CS(F)", "feature change Diff(F)")):
        for y, method in enumerate(methods):
            values = study.values(dataset, method, lambda r, k=key: feature_stats(r)[k], lp_C)
            ax.errorbar(
                values.mean(),
                y,
                xerr=values.std(ddof=1) if len(values) > 1 else 0,
                fmt="o",
                color=COLORS[method],
                capsize=3,
            )
        ax.set_yticks(range(len(methods)), [METHOD_LABELS[m] for m in methods])
        ax.set_xlabel(f"{label}, ours")
        ax.invert_yaxis()
        if paper:
            twin = ax.twiny()
            twin.plot(
                [paper[m][key] for m in methods],
                range(len(methods)),
                "D",
                mfc="none",
                color="k",
                label="paper (RoBERTa)",
            )
            twin.set_xlabel(f"{label}, paper", fontsize=9)
            twin.grid(False)
            twin.legend(loc="lower right")
    fig.suptitle(f"{dataset.upper()}, LP-headed methods with LP {lp_label(lp_C)}")
    fig.tight_layout()
    return fig


def boss_accuracy_figure(study: Study, lp_C: LpC = "cv") -> plt.Figure:
    """Table 10 as a picture: accuracy (%) per method on the Amazon test set (ID) and each OOD set, ours as
    dots with ± sd over seeds, the paper's as open diamonds."""
    sets = {"amazon": "test", **{name: f"ood.{name}" for name in OOD_SETS["amazon"]}}
    fig, ax = plt.subplots(figsize=(10, 3.8))
    width = 0.8 / len(study.methods)
    for j, method in enumerate(study.methods):
        for x, (name, key) in enumerate(sets.items()):
            values = 100 * study.values("amazon", method, f"{key}.accuracy", lp_C)
            pos = x - 0.4 + width * (j + 0.5)
            ax.errorbar(
                pos,
                values.mean(),
                yerr=values.std(ddof=1) if len(values) > 1 else 0,
                fmt="o",
                color=COLORS[method],
                capsize=2,
                label=METHOD_LABELS[method] if x == 0 else None,
            )
            if name in TABLE10_BOSS.get(method, {}):
                ax.plot(pos, TABLE10_BOSS[method][name][0], "D", mfc="none", color=COLORS[method])
    ax.set_xticks(range(len(sets)), [f"{n} ({'ID' if n == 'amazon' else 'OOD'})" for n in sets])
    ax.set_ylabel("accuracy (%)")
    ax.plot([], [], "D", mfc="none", color="k", label="paper (RoBERTa)")
    ax.legend(ncols=3, loc="lower left")
    fig.tight_layout()
    return fig


def fdr_ridge_figure(features: np.ndarray, labels: np.ndarray, title: str) -> plt.Figure:
    """Why a full-dimensional FDR at n < d has no value to compare: the ridge FDR tr((S_W + εI)⁻¹ S_B)
    against ε (it grows as 1/ε), beside the pseudo-inverse value and the k-dimensional PCA value used here."""
    from ..analysis.features import (
        common_basis,
        fdr_dimension,
        fdr_null,
        fisher_ratio,
        fisher_ratio_pinv,
        fisher_ratio_ridge,
    )

    eps = np.logspace(-8, 0, 17)
    ridge = [fisher_ratio_ridge(features, labels, e) for e in eps]
    k = fdr_dimension(len(labels), len(np.unique(labels)))
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    ax.loglog(eps, ridge, "o-", color=COLORS["ft"], label="full space, ridge ε (relative to mean eigenvalue)")
    ax.axhline(
        fisher_ratio_pinv(features, labels),
        color=COLORS["pretrained"],
        ls=":",
        label="full space, pseudo-inverse",
    )
    if k >= 1:
        basis = common_basis(features, k)
        ax.axhline(
            fisher_ratio(features, labels, basis),
            color=COLORS["lp_ft"],
            ls="--",
            label=f"{k}-d principal subspace (this book)",
        )
        null = fdr_null(features, labels, basis)
        ax.axhspan(null["lo"], null["hi"], color="0.85", label="its label-permutation null, 95 % band")
    ax.set_xlabel("ridge ε")
    ax.set_ylabel("FDR(F) = tr(S_W⁻¹ S_B)")
    ax.set_title(f"{title}: n = {len(labels)}, d = {features.shape[1]}")
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def lp_causes_figure(experiment: dict, dataset: str) -> plt.Figure:
    """The cross-validated LP head norm ‖V‖_F under the LP-cause manipulations (`lp_causes`), one line per
    replicate (a disjoint part of the training split): a common offset against the mean pairwise cosine
    (left, the control: flat by construction), the centred spectrum concentrated at a fixed trace against
    the effective rank (middle, H1) and nested subsets against n/d (right, H2). Panel titles give the mean
    slope of log ‖V‖ over the replicates with its 95 % interval."""
    from ..analysis.lp_causes import slope, slope_interval

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for ax, key, x, label, title in (
        (axes[0], "offset", "cosine", "mean pairwise cosine (common offset)", "control: offset"),
        (axes[1], "spectrum", "effective_rank", "effective rank of the centred features", "H1: spectrum"),
        (axes[2], "sample_size", "n/d", "n / d (nested subsets)", "H2: n"),
    ):
        by_replicate = {}
        for r in experiment[key]:
            by_replicate.setdefault(r["replicate"], []).append(r)
        for j, rows in sorted(by_replicate.items()):
            rows = sorted(rows, key=lambda r: r[x])
            ax.plot(
                [r[x] for r in rows], [r["head_norm"] for r in rows], "o-", alpha=0.7, label=f"part {j + 1}"
            )
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("CV LP head norm ‖V‖_F")
        if key == "offset":  # a decade around the head: a change of 1 % would show as flat, as it should
            middle = float(np.median([r["head_norm"] for r in experiment[key]]))
            ax.set_ylim(middle / 10**0.5, middle * 10**0.5)
        else:
            ax.set_xscale("log")
            slopes = [slope(rows, x) for rows in by_replicate.values()]
            mean, lo, hi = slope_interval(slopes)
            title += f", slope {mean:.2g} [{lo:.2g}, {hi:.2g}]"
        if key == "sample_size":
            ax.axvline(1.0, color="grey", ls=":", label="n = d")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"{dataset.upper()}: what moves the cross-validated LP head")
    fig.tight_layout()
    return fig
