"""The example notebook, examples/quickstart.ipynb: committed without outputs, and (make
test-e2e) executed top to bottom in a fresh Jupyter kernel on the shipped toy checkpoint, where
each analysis takes at most five lines after loading and shows its figure inline.

Executing it needs nbclient and ipykernel (pyproject's dev extra); where they are missing the
test is skipped with a message saying so."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"
ANALYSES = ("mt.trace(", "mt.contributions(", "mt.ablate(", "mt.edit(")


def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def test_the_committed_notebook_has_no_outputs_and_short_cells():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not c.outputs and c.execution_count is None for c in _code(nb))
    for call in ANALYSES:
        cells = [c for c in _code(nb) if call in c.source]
        assert len(cells) == 1, call
        # the analysis and its figure: at most five lines after loading
        assert len(cells[0].source.splitlines()) <= 5, cells[0].source


@pytest.mark.slow
def test_the_notebook_runs_and_shows_every_analysis_inline(tmp_path):
    nbclient = pytest.importorskip(
        "nbclient", reason="nbclient is not installed: pip install nbclient ipykernel (dev extra)"
    )
    pytest.importorskip(
        "ipykernel", reason="ipykernel is not installed: pip install ipykernel (dev extra)"
    )
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=None,  # no wall-clock limit: a busy machine must not fail the test
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    nbformat.write(nb, tmp_path / "quickstart.executed.ipynb")  # for a look after a failure
    for call in ANALYSES:
        (cell,) = [c for c in _code(nb) if call in c.source]
        shown = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(shown) == 1, (call, [o.get("output_type") for o in cell.outputs])
    tables = [c for c in _code(nb) if "to_frame()" in c.source and "print" not in c.source]
    assert tables and all(any("text/html" in o.get("data", {}) for o in c.outputs) for c in tables)
    assert not [o for c in _code(nb) for o in c.outputs if o.output_type == "error"]
