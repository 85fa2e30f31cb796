"""The example notebook, executed as a user would run it: every cell, on a real kernel."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from tests.cluster import REPO

NOTEBOOK = REPO / "examples" / "frames.ipynb"


def test_the_example_notebook_runs_and_shows_frames(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)  # stripped
    client = NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    outputs = [out for cell in code for out in cell.outputs]
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    text += "".join(
        out.get("data", {}).get("text/plain", "")
        for out in outputs
        if out.output_type in ("execute_result", "display_data")
    )
    assert "VideoOpenError" in text  # the missing video is a row of its own, not a gap
    assert "frames; (" in text and "uint8" in text  # read back as numpy
    assert "1 videos processed" in text or "2 videos processed" in text
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) == 2  # the clip and the contact sheet, inline
