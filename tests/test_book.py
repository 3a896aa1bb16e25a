import json
import shutil
from pathlib import Path

import pytest
import yaml

from lpft_nb.book.build import GATHERING_PAGES, execute_page, fork_page, notebook_pages, toc_files
from lpft_nb.book.html_check import draws_figures
from lpft_nb.book.params import (
    BOOK_DIR,
    PARAMS_DIR,
    PROFILES,
    ParamError,
    check_profile,
    check_shared,
    page_parameters,
    profiles,
)
from lpft_nb.paper import CHECKLIST
from lpft_nb.report.claims import STATUSES, VERDICT_MIME, Claim, claims_from_notebook, verdict_markdown


def test_every_page_has_one_typed_parameters_cell_equal_to_the_default_profile():
    for page in notebook_pages():
        defaults = page_parameters(BOOK_DIR / f"{page}.md")
        assert defaults, page
        assert check_profile(page, "default") == {k: defaults[k] for k in check_profile(page, "default")}, (
            f"{page}: the parameters cell must equal params/default/{page}.yaml"
        )


@pytest.mark.parametrize("profile", profiles())
def test_every_parameter_file_passes_the_check(profile):
    for page in notebook_pages():
        check_profile(page, profile)
    check_shared(profile, notebook_pages())
    files = {p.stem for p in (PARAMS_DIR / profile).glob("*.yaml")}
    if profile in PROFILES:  # a built-in profile stands alone; another fills its gaps from its base
        assert files == {*notebook_pages(), "_shared"}


def test_shared_settings_reach_the_pages_that_have_them_and_a_page_file_overrides_them(tmp_path):
    params = _params_copy(tmp_path, "boss_ood")
    (params / "default" / "_shared.yaml").write_text("epochs: 3\nmax_eval: 50\ndatasets: [cb]\n")
    (params / "default" / "boss_ood.yaml").write_text("max_eval: 80\n")
    values = check_profile("boss_ood", "default", params_dir=params)
    assert values == {"epochs": 3, "max_eval": 80}  # boss_ood has no `datasets` parameter
    (params / "default" / "_shared.yaml").write_text("epochz: 3\n")
    with pytest.raises(ParamError, match=r"_shared.yaml: key\(s\) epochz are parameters of no page"):
        check_shared("default", notebook_pages(), params_dir=params)


def _params_copy(tmp_path, page, **changes):
    params = tmp_path / "params"
    for profile in PROFILES:
        (params / profile).mkdir(parents=True)
        values = yaml.safe_load((PARAMS_DIR / profile / f"{page}.yaml").read_text())
        (params / profile / f"{page}.yaml").write_text(yaml.safe_dump({**values, **changes}))
        shutil.copy(PARAMS_DIR / profile / "_shared.yaml", params / profile / "_shared.yaml")
    return params


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"seedz": [1]}, r"dynamics.yaml: unknown key 'seedz'; page 'dynamics' has parameters: "),
        ({"epochs": "three"}, r"key 'epochs' has type str, but the page's default \d+ is int"),
        ({"seeds": 1}, r"key 'seeds' has type int, but the page's default \[1, 2, 3\] is list"),
        ({"methods": ["ft", "sgd"]}, r"key 'methods'.*method='sgd' is unknown"),
        ({"datasets": ["mnli"]}, r"dataset='mnli' is not a training dataset"),
        ({"epochs": 0}, r"key 'epochs'.*epochs=0 must be >= 1"),
    ],
)
def test_parameter_check_rejects_bad_files_with_one_line(tmp_path, changes, message):
    params = _params_copy(tmp_path, "dynamics", **changes)
    with pytest.raises(ParamError, match=message) as err:
        check_profile("dynamics", "default", params_dir=params)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "page, changes, message",
    [
        ("ntk", {"n": 1}, r"key 'n': 1 is below the smallest allowed value 2"),
        ("ntk", {"kernel_settings": ["ft", "sgd"]}, r"key 'kernel_settings'.*not allowed"),
        ("ntk", {"kernel_seeds": [1, -2]}, r"key 'kernel_seeds'.*seed=-2 must be >= 0"),
        ("lora", {"kernel_seeds": []}, r"kernel_seeds must list at least one value"),
        ("lora", {"ranks": [0, 8]}, r"ranks must be a non-empty list of positive integers"),
        ("norms", {"head_scales": [0.0, 1.0]}, r"head_scale=0.0 must be > 0"),
        ("norms", {"scaling_dataset": "mnli"}, r"key 'scaling_dataset'.*dataset='mnli'"),
        ("norms", {"scaling_seeds": [1, -2]}, r"key 'scaling_seeds'.*seed=-2 must be >= 0"),
        ("norms", {"tsne_seed": -1}, r"key 'tsne_seed': -1 is below the smallest allowed value 0"),
        (
            "lora",
            {"rank_dataset": "amazon"},
            r"key 'rank_dataset': 'amazon' is not in datasets \['cb'\]",
        ),
    ],
)
def test_page_specific_parameters_are_checked_before_running(tmp_path, page, changes, message):
    params = _params_copy(tmp_path, page, **changes)
    with pytest.raises(ParamError, match=message):
        check_profile(page, "default", params_dir=params)


def test_build_rejects_a_bad_profile_before_running_anything(capsys):
    from lpft_nb.book.build import build_book

    with pytest.raises(ParamError, match="unknown profile"):
        build_book(profile="fast")
    with pytest.raises(ParamError, match="unknown page"):
        build_book(profile="smoke", pages=["nosuchpage"])


@pytest.fixture(scope="module")
def build_dirs(tmp_path_factory):
    """One run cache and one folder of executed notebooks for all pages, as in a build."""
    return tmp_path_factory.mktemp("page-cache"), tmp_path_factory.mktemp("executed")


@pytest.mark.parametrize(
    "page", [p for p in notebook_pages() if p not in GATHERING_PAGES] + list(GATHERING_PAGES)
)
def test_every_page_executes_with_the_smoke_profile(page, monkeypatch, build_dirs):
    cache, executed = build_dirs
    monkeypatch.setenv("LPFT_CACHE_DIR", str(cache))
    result = execute_page(page, "smoke", executed)
    assert result.ok, f"{page}: {result.error} (log {executed / (page + '.log')})"
    nb = json.loads((executed / f"{page}.ipynb").read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not any(o.get("output_type") == "error" for o in outputs)
    if draws_figures((BOOK_DIR / f"{page}.md").read_text()):
        assert any("image/png" in o.get("data", {}) for o in outputs), "the page shows no figure"
    for cell in nb["cells"]:  # a named figure is one image: two would give its label twice
        if "name" in cell.get("metadata", {}).get("mystnb", {}).get("figure", {}):
            images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
            assert len(images) == 1, f"{page}: figure {cell['metadata']['mystnb']['figure']['name']}"
    if page == "claims":  # it found every other page's checks
        text = json.dumps(nb)
        assert "was not executed in this build" not in text
        assert "holds" in text or "does not hold" in text
    elif page not in GATHERING_PAGES:
        claims = claims_from_notebook(executed / f"{page}.ipynb")
        assert claims and all(c["status"] in STATUSES and c["page"] == page for c in claims)
        verdicts = [
            "".join(o["data"]["text/markdown"]) for o in outputs if VERDICT_MIME in o.get("data", {})
        ]  # the page's verdict paragraph says what its own records say
        assert verdicts == [verdict_markdown([Claim.from_record(c) for c in claims], CHECKLIST)]


def test_fork_copies_the_page_and_its_parameters_and_lists_it(tmp_path):
    book, params = tmp_path / "book", tmp_path / "params"
    shutil.copytree(BOOK_DIR, book)
    shutil.copytree(PARAMS_DIR, params)
    fork_page("dynamics", "my_study", book_dir=book, params_dir=params)
    assert (book / "my_study.md").read_text().count("# Exploration `my_study`") == 1
    for profile in PROFILES:
        assert (params / profile / "my_study.yaml").read_text() == (
            params / profile / "dynamics.yaml"
        ).read_text()
    assert toc_files(book / "_toc.yml")[-1] == "my_study"
    assert check_profile("my_study", "smoke", book_dir=book, params_dir=params)
    with pytest.raises(ParamError, match="exists already"):
        fork_page("dynamics", "my_study", book_dir=book, params_dir=params)


def test_the_rendered_page_has_one_parameters_cell_with_this_builds_values_and_folded_plumbing(tmp_path):
    from lpft_nb.book.build import _prepare_for_reading

    nb = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {"tags": ["parameters"]},
                "outputs": [],
                "source": 'seeds: list = [1, 2]  # one run per seed\nmodel: str = "m"  # encoder\nn: int = 3\n',
            },
            {
                "cell_type": "code",
                "metadata": {"tags": ["injected-parameters"]},
                "outputs": [],
                "source": "# Parameters\nseeds = [1, 2, 3]\nn = 5\n",
            },
            {"cell_type": "code", "metadata": {}, "outputs": [], "source": "study = lp.Study(...).run()"},
            {"cell_type": "code", "metadata": {"tags": ["show-input"]}, "outputs": [], "source": "ece(p, y)"},
        ]
    }
    path = tmp_path / "p.ipynb"
    path.write_text(json.dumps(nb))
    _prepare_for_reading(path, {"seeds": [1, 2, 3], "n": 5})
    cells = json.loads(path.read_text())["cells"]
    assert cells[0]["source"].splitlines() == [
        "seeds: list = [1, 2, 3]  # one run per seed",
        'model: str = "m"  # encoder',
        "n: int = 5",
    ]
    assert "remove-cell" in cells[1]["metadata"]["tags"]
    assert "hide-input" not in cells[0]["metadata"]["tags"]
    assert cells[2]["metadata"]["tags"] == ["hide-input"] and cells[3]["metadata"]["tags"] == ["show-input"]


def test_no_repository_button_without_a_repository(monkeypatch):
    from lpft_nb.book import build

    monkeypatch.setenv("LPFT_REPOSITORY_URL", "git@github.com:someone/lpft.git")
    assert build.repository_url() is None  # not an http(s) address: no button
    monkeypatch.setenv("LPFT_REPOSITORY_URL", "https://example.org/someone/lpft")
    assert build.repository_url() == "https://example.org/someone/lpft"
    monkeypatch.delenv("LPFT_REPOSITORY_URL")
    monkeypatch.setattr(build, "ROOT", Path("/"))  # no git remote there
    assert build.repository_url() is None


def _code_lines(text: str):
    """(line number, line) of every line a reader sees in a page's code: code cells without their
    metadata block, and fenced code examples."""
    inside, metadata = False, False
    for number, line in enumerate(text.splitlines(), 1):
        if not inside and line.startswith("```") and line != "```":
            inside, metadata, first = True, False, True
            continue
        if inside and line == "```":
            inside = False
            continue
        if inside and first and line == "---":
            metadata, first = True, False
            continue
        first = False
        if metadata:
            metadata = line != "---"
            continue
        if inside:
            yield number, line


def test_page_code_fits_the_column():
    too_long = [
        f"{page.name}:{number} ({len(line)} characters)"
        for page in sorted(BOOK_DIR.glob("*.md"))
        for number, line in _code_lines(page.read_text(encoding="utf-8"))
        if len(line) > 88
    ]
    assert not too_long, "code lines over 88 characters: " + ", ".join(too_long)


def test_an_unexecuted_page_is_staged_without_references_to_its_undrawn_figures(tmp_path):
    from lpft_nb.book.build import UNDRAWN_FIGURE, _stage

    assert "{numref}" in (BOOK_DIR / "dynamics.md").read_text()
    _stage("smoke", tmp_path / "no-executed-notebooks", tmp_path / "site")
    staged = (tmp_path / "site" / "dynamics.ipynb").read_text()
    assert "{numref}" not in staged and UNDRAWN_FIGURE in staged


def test_papermill_reads_every_parameter_of_every_page(tmp_path):
    """papermill's own parser (a comment holding "=" breaks it) finds what the book's parser finds."""
    import jupytext
    import papermill

    for page in notebook_pages():
        path = tmp_path / f"{page}.ipynb"
        jupytext.write(jupytext.read(str(BOOK_DIR / f"{page}.md")), str(path), fmt="ipynb")
        found = papermill.inspect_notebook(str(path))
        assert set(found) == set(page_parameters(BOOK_DIR / f"{page}.md")), page


def test_the_default_profile_uses_the_precision_the_recorded_bf16_rule_decides():
    from lpft_nb.book.params import load_shared
    from lpft_nb.precision import RECORD, bf16_decision

    measured = BOOK_DIR / "measured"
    decision = bf16_decision(
        json.loads((measured / "bench-cpu-bf16.json").read_text()), json.loads(RECORD.read_text())
    )
    assert load_shared("default")[1]["precision"] == decision["precision"]
