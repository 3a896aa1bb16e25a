"""One look for every figure of the book: the Okabe–Ito colour-blind-safe palette and readable type.

`apply_style()` is called once when `report.plots` is imported; pages need not call it.
"""

from __future__ import annotations

import matplotlib as mpl

# Okabe & Ito (2008), distinguishable under the common colour-vision deficiencies.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
METHOD_COLORS = {
    "ft": "#0072B2",
    "lp_ft": "#D55E00",
    "lora": "#009E73",
    "lp_lora": "#CC79A7",
    "lp": "#E69F00",
    "pretrained": "#666666",
}


def class_color(k: int) -> str:
    """Colour of class k in scatter plots and per-class lines."""
    return OKABE_ITO[k % len(OKABE_ITO)]


def apply_style() -> None:
    """Set matplotlib's defaults for the book: palette, type sizes, grid."""
    mpl.rcParams.update(
        {
            "axes.prop_cycle": mpl.cycler(color=OKABE_ITO),
            "font.size": 11,
            "axes.titlesize": 11,
            "axes.labelsize": 11,
            "legend.fontsize": 9,
            "xtick.labelsize": 10,
            "ytick.labelsize": 10,
            "figure.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
        }
    )
