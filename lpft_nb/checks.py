"""The claim checks of each page, computed from a `Study` (ids follow paper-facts.md §6)."""

from __future__ import annotations

from .claims import Claim, compare, not_run, within_factor
from .paper import PAPER_LP_NORM_RANGE, TABLE13_HEAD_NORM
from .study import Study, lp_label

LARGE_FACTOR = 10.0  # "≫": at least ten times
SMALL_FACTOR = 1.5  # "stays near": within a factor 1.5


def dynamics_claims(study: Study, page: str = "dynamics") -> list[Claim]:
    """M1 (LP inflates the head, ≫ init and ≫ FT) per LP regularisation, M2 (FT keeps it; LoRA grows it)."""
    out: list[Claim] = []
    lp_method = next((m for m in ("lp", "lp_ft", "lp_lora") if m in study.methods), None)
    for dataset in study.datasets:
        init = study.values(dataset, "ft", "head_norm_init") if "ft" in study.methods else None
        lo, hi = PAPER_LP_NORM_RANGE.get(dataset, (None, None))
        paper_lp = f"LP ‖V‖ {lo}–{hi} vs init ≈ {TABLE13_HEAD_NORM[dataset]['pretrained']}" if lo else "–"
        for lp_C in study.lp_Cs:
            tag = f"{dataset.upper()}, LP {lp_label(lp_C)}"
            if lp_method is None or init is None:
                out.append(not_run("M1", page, f"{tag}: LP norm ≥ 10× random init", paper_lp,
                                   "needs an LP-headed method and FT in `methods`"))
                continue
            lp_norm = study.values(dataset, lp_method, lambda r: r.metrics["lp"]["weight_norm"], lp_C)
            out.append(compare("M1", page, f"{tag}: ‖V‖ after LP ≥ 10 × ‖V‖ at random init", paper_lp,
                               lp_norm, init, factor=LARGE_FACTOR, a_name="LP", b_name="init"))
            ft_final = study.values(dataset, "ft", "head_norm_final")
            out.append(compare("M1", page, f"{tag}: ‖V‖ after LP ≫ (≥ 10 ×) ‖V‖ after FT",
                               f"{hi} vs {TABLE13_HEAD_NORM[dataset]['ft']}" if lo else "–",
                               lp_norm, ft_final, factor=LARGE_FACTOR, a_name="LP", b_name="FT"))
        if "ft" in study.methods:
            ratio = study.values(dataset, "ft", "head_norm_final") / init
            out.append(within_factor("M2", page, f"{dataset.upper()}: ‖V‖ after FT within ×{SMALL_FACTOR} of its init",
                                     f"{TABLE13_HEAD_NORM[dataset]['ft']} vs {TABLE13_HEAD_NORM[dataset]['pretrained']}",
                                     ratio, 1.0, SMALL_FACTOR, name="final/init"))
        if "lora" in study.methods:
            out.append(compare("M2", page, f"{dataset.upper()}: LoRA grows the head slightly (final > init)",
                               f"{TABLE13_HEAD_NORM[dataset]['lora']} vs {TABLE13_HEAD_NORM[dataset]['pretrained']}",
                               study.values(dataset, "lora", "head_norm_final"),
                               study.values(dataset, "lora", "head_norm_init"), a_name="final", b_name="init"))
    return out



