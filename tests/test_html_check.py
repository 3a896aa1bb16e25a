"""The HTML check's page rules, on small hand-written pages (Chromium itself runs in CI's check-html)."""

from pathlib import Path

from lpft_nb.book.html_check import broken_anchors, check_page

GOOD = "<html><body><table><tr><th>n</th><td>52</td><td>–</td></tr></table></body></html>"


def test_a_clean_page_passes():
    assert check_page(Path("p.html"), GOOD, expect_figures=False) == []


def test_nan_cells_and_the_injected_parameters_cell_are_problems():
    bad = GOOD.replace("<td>52</td>", "<td>NaN</td>").replace(
        "<body>", '<body><div class="cell tag_injected-parameters docutils container">x</div>'
    )
    problems = check_page(Path("p.html"), bad, expect_figures=False)
    assert any("a table shows NaN" in p for p in problems)
    assert any("injected-parameters" in p for p in problems)


def test_a_traceback_and_a_missing_figure_are_problems():
    page = GOOD.replace("<body>", "<body>Traceback (most recent call last)")
    problems = check_page(Path("p.html"), page, expect_figures=True)
    assert any("traceback" in p for p in problems) and any("no figure images" in p for p in problems)


def test_a_section_page_without_an_equation_is_a_problem():
    assert any("no typeset equation" in p for p in check_page(Path("p.html"), GOOD, False, expect_math=True))
    with_math = GOOD.replace("<body>", '<body><div class="math notranslate nohighlight">x</div>')
    assert check_page(Path("p.html"), with_math, False, expect_math=True) == []


def test_an_image_outside_a_captioned_figure_is_a_problem(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "a.png").write_bytes(b"x" * 2000)
    bare = GOOD.replace("<body>", '<body><img src="_images/a.png">')
    assert any(
        "1 of 1 images have no captioned figure" in p for p in check_page(tmp_path / "p.html", bare, True)
    )
    captioned = GOOD.replace(
        "<body>",
        '<body><figure><div><img src="_images/a.png"></div><figcaption>What it shows.</figcaption></figure>',
    )
    assert check_page(tmp_path / "p.html", captioned, True) == []


def test_a_link_to_an_anchor_the_target_page_lacks_is_a_problem(tmp_path):
    (tmp_path / "dynamics.html").write_text('<figure id="fig-lp-path"></figure><table id="T_data"></table>')
    links = '<a href="dynamics.html#fig-lp-path">M1</a><a href="#top">up</a><div id="top"></div>'
    (tmp_path / "claims.html").write_text(links)
    assert broken_anchors(tmp_path, ["claims", "dynamics"]) == []
    (tmp_path / "claims.html").write_text(links + '<a href="dynamics.html#fig-gone">M2</a>')
    assert broken_anchors(tmp_path, ["claims"]) == [
        "claims.html: link to dynamics.html#fig-gone, which that page lacks"
    ]
