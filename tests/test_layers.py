"""The package's layers: a module imports only from its own layer or lower ones (function-level imports
included), so the README's layer table is the truth."""

import ast
from pathlib import Path

import lpft_nb

PACKAGE = Path(lpft_nb.__file__).parent
# lowest first; top-level modules not listed here are the package's entry points (cli, bench, sweep, …)
LAYERS = [
    {"config", "paper", "atomic", "resources", "device"},
    {"data"},
    {"model"},
    {"runs"},
    {"analysis"},
    {"report"},
    {"book"},
]
TOP = len(LAYERS)


def layer_of(module: str) -> int:
    """Layer of a dotted module name inside the package ('data.tasks' → 1, 'cli' → TOP)."""
    head = module.split(".")[0]
    return next((i for i, names in enumerate(LAYERS) if head in names), TOP)


def imports_of(text: str, rel: Path) -> list[tuple[str, int]]:
    """(package-relative target module, line) of every import of the package in the source `text` of the
    module at `rel` (a path relative to the package, e.g. runs/grid.py)."""
    package = list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                out.append((".".join(base + [node.module]), node.lineno))
            else:
                out += [(".".join(base + [a.name]), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lpft_nb."):
            out.append((node.module.removeprefix("lpft_nb."), node.lineno))
        elif isinstance(node, ast.Import):
            out += [
                (a.name.removeprefix("lpft_nb."), node.lineno)
                for a in node.names
                if a.name.startswith("lpft_nb.")
            ]
    return out


def test_no_module_imports_a_higher_layer():
    crossings = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        own = layer_of(".".join(rel.parts))
        for target, line in imports_of(path.read_text(), path.relative_to(PACKAGE)):
            if layer_of(target) > own:
                crossings.append(f"{path.relative_to(PACKAGE)}:{line} imports {target}")
    assert not crossings, "\n".join(crossings)


def test_every_subpackage_is_a_known_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == set().union(*LAYERS[1:])
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    entry_points = {"__init__", "__main__", "cli", "bench", "sweep", "estimate", "gpu_check", "precision"}
    assert LAYERS[0] <= modules and modules - LAYERS[0] == entry_points


def test_the_checker_sees_a_crossing():
    assert layer_of("report.plots") > layer_of("runs.grid") > layer_of("config")
    text = "x = 1\n\n\ndef f():\n    from ..report.claims import Claim\n"
    assert imports_of(text, Path("runs/grid.py")) == [("report.claims", 5)]
    assert imports_of("from . import ntk\n", Path("analysis/kernels.py")) == [("analysis.ntk", 1)]
