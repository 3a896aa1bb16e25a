"""Figure helpers that do not depend on runs: panels stacked into one image."""

import io

import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import Rectangle
from PIL import Image

from lpft_nb.report.plots import stack_figures


def _figure(width_in: float, height_in: float) -> plt.Figure:
    fig = plt.figure(figsize=(width_in, height_in), dpi=50)
    fig.add_artist(Rectangle((0, 0), 1, 1, transform=fig.transFigure, color="black"))  # full bleed
    return fig


def _size(width_in: float, height_in: float) -> tuple[int, int]:
    return Image.open(io.BytesIO(stack_figures([_figure(width_in, height_in)]))).size


def test_panels_are_stacked_in_rows_into_one_image_and_closed():
    (wa, ha), (wb, hb), (wc, hc) = _size(4, 2), _size(2, 2), _size(4, 3)
    assert wa > wb and hc > ha  # each panel keeps its own size
    figures = [_figure(4, 2), _figure(2, 2), _figure(4, 3)]
    image = Image.open(io.BytesIO(stack_figures(figures, columns=2)))
    assert image.size == (max(wa + wb, wc), max(ha, hb) + hc)  # rows: a b, then c
    assert image.getpixel((wc + 1, ha + 1)) == (255, 255, 255)  # right of the short second row: blank
    assert image.getpixel((wa + wb // 2, hb // 2)) == (0, 0, 0)  # inside panel b
    assert not any(plt.fignum_exists(f.number) for f in figures)


def test_no_panel_is_a_clear_error():
    with pytest.raises(ValueError, match="nothing to draw"):
        stack_figures([])
