"""The notebooks in notebooks/: executed end to end with small parameters, stored clean, paired with .py text.

Executed with nbclient (not nbmake): nbclient lets the test inject the small CI parameters after
each notebook's ``parameters`` cell (papermill-style), runs inside the normal pytest run, and is
already part of the ``notebooks`` extra.  Skipped cleanly when nbclient/nbformat/ipykernel are not
installed (they are in the ``test`` extra, so CI executes the notebooks).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

import simulator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]

CI_PARAMETERS = {
    "REPLICATIONS": 2,
    "MEMBERS": 2_000,
    "RECRUITER_SCALE": 0.06,
    "HORIZON_DAYS": 60,
    "WORKERS": 1,
}
"""Injected after every notebook's ``parameters`` cell: a small market, 2 replications, no worker processes."""

NOTEBOOK_CI_PARAMETERS: dict[str, dict[str, Any]] = {
    "04_sensitivity_and_calibration": {"SOBOL_N": 8, "FIT_REPLICATIONS": 2, "FIT_EVALUATIONS": 8},
    "05_plausible_worlds": {"WORLD_COUNT": 12, "RESAMPLES": 10},
    "06_policy_design_search": {"TRIALS": 6, "POPULATION": 3, "REEVALUATE": 4},
}
"""Injected too, for the sizes only one notebook has (a Sobol sample, a calibration's evaluations)."""

EXPECTED = {"01_quickstart", "02_policy_design", "03_market_assumptions", "04_sensitivity_and_calibration",
            "05_plausible_worlds", "06_policy_design_search"}


def _read(path: Path) -> Any:
    """A notebook (an ``nbformat.NotebookNode``)."""
    return nbformat.read(path, as_version=4)


def _python(source: str) -> str:
    """A code cell as plain Python: IPython syntax such as ``%matplotlib inline`` becomes a call."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _parameters_cell(nb: Any) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    return tagged[0]


def test_the_notebooks_are_there() -> None:
    assert {p.stem for p in NOTEBOOKS} >= EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_with_small_parameters(path: Path) -> None:
    nb = _read(path)
    at = _parameters_cell(nb)
    names = {t.id for node in ast.walk(ast.parse(nb.cells[at].source)) if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    parameters = CI_PARAMETERS | NOTEBOOK_CI_PARAMETERS.get(path.stem, {})
    assert set(parameters) <= names, f"the parameters cell must define {sorted(parameters)}"
    source = "# Injected by tests/test_notebooks.py: CI sizes\n" + "\n".join(
        f"{k} = {v!r}" for k, v in parameters.items())
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:  # the message shows the failing cell and traceback
        pytest.fail(f"{path.name} failed:\n{exc}", pytrace=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = _read(path)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, (f"{path.name}: cells {dirty} have outputs; store notebooks without outputs "
                       f"(jupyter nbconvert --clear-output --inplace {path.relative_to(ROOT)})")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_paired_with_its_text_form(path: Path) -> None:
    jupytext = pytest.importorskip("jupytext")
    text = path.with_suffix(".py")
    assert text.is_file(), f"{path.name} has no py:percent twin; run: jupytext --set-formats ipynb,py:percent {path}"
    nb, twin = _read(path), jupytext.read(text)
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
    def cells(book: Any) -> list[tuple[str, str, list[str]]]:
        return [(c.cell_type, c.source.strip(), c.metadata.get("tags", [])) for c in book.cells]

    assert cells(nb) == cells(twin), (
        f"{path.name} and {text.name} differ; run: jupytext --sync {text.relative_to(ROOT)}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_uses_only_the_public_api(path: Path) -> None:
    """No model logic in notebooks: they import from ``simulator`` itself, nothing from its modules."""
    public = set(simulator.__all__)
    for cell in _read(path).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(_python(cell.source))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("simulator"):
                assert node.module == "simulator", f"{path.name}: imports from {node.module}; use `from simulator`"
                assert {a.name for a in node.names} <= public, f"{path.name}: not in simulator.__all__"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("simulator.") for a in node.names), path.name
