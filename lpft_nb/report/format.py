"""Numbers as the book prints them: per-seed values as 'mean ± sd (n=k)'."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def mean_std(values: ArrayLike) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for one value)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def fmt(values: ArrayLike, digits: int = 3, show_n: bool = True) -> str:
    """'m ± s (n=k)' for a list of per-seed values, or the number for one value. Tables, whose caption
    states the seeds, leave out the count (`show_n=False`)."""
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    m, s = mean_std(arr)
    if arr.size == 1:
        return f"{m:.{digits}g}"
    return f"{m:.{digits}g} ± {s:.2g}" + (f" (n={arr.size})" if show_n else "")


def tidy(table: pd.DataFrame) -> pd.DataFrame:
    """A table as the book shows it: a missing value (NaN, None) as "–", a whole number as an integer."""

    def cell(value):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)
        return value

    return table.astype(object).map(cell)
