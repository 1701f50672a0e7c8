"""Every notebook runs top to bottom on freshly generated demo data."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
SCRIPTS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


def _runner():
    spec = importlib.util.spec_from_file_location("run_all", NOTEBOOK_DIR / "run_all.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernel on this interpreter, and one demo store shared by the notebooks."""
    runner = _runner()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SENTRA_DATABASE_URL", raising=False)
        patch.delenv("SENTRA_ACCOUNT", raising=False)
        patch.setenv("SENTRA_DEMO_DIR", str(tmp_path_factory.mktemp("demo")))
        with runner.current_interpreter_kernel() as name:
            yield runner, name


def test_the_three_notebooks_are_there():
    assert [p.name for p in SCRIPTS] == [
        "01_explore_farms.py",
        "02_thresholds.py",
        "03_account_investigation.py",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_notebook_executes(kernel, script):
    runner, name = kernel
    started = time.perf_counter()
    notebook = runner.execute(script, name)
    seconds = time.perf_counter() - started
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    images = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert images >= 1, "the notebook drew nothing"
    print(f"{script.name}: {seconds:.1f} s, {images} figures")
