"""Execute the notebooks (jupytext percent scripts) and fail on the first cell that fails.

    python notebooks/run_all.py [--out DIR] [NOTEBOOK.py ...]

Each script is converted with jupytext and run with nbclient on a kernel that uses this very
interpreter (a kernelspec written to a temporary directory, so nothing needs installing).
Without ``SENTRA_DATABASE_URL`` the notebooks build demo data; ``SENTRA_DEMO_DIR`` (set here
to a temporary directory unless given) lets them share it. Executed ``.ipynb`` files go to
``--out`` (default: next to the scripts, where git ignores them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
KERNEL_NAME = "sentra-graph-python"
NOTEBOOKS = sorted(HERE.glob("[0-9][0-9]_*.py"))


@contextmanager
def current_interpreter_kernel() -> Iterator[str]:
    """A kernelspec running ``sys.executable``, visible through ``JUPYTER_PATH`` meanwhile."""
    previous = os.environ.get("JUPYTER_PATH")
    with tempfile.TemporaryDirectory(prefix="sentra-kernels-") as root:
        spec = Path(root) / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        kernel = {"argv": argv, "display_name": "sentra-graph", "language": "python"}
        (spec / "kernel.json").write_text(json.dumps(kernel))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [root, previous]))
        try:
            yield KERNEL_NAME
        finally:
            if previous is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = previous


def execute(script: Path, kernel_name: str, timeout: int = 600) -> nbformat.NotebookNode:
    """Run one percent-format script as a notebook; raises ``CellExecutionError`` on failure."""
    notebook = jupytext.read(script)
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=timeout,
        resources={"metadata": {"path": str(script.parent)}},
    )
    client.execute()
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scripts", nargs="*", type=Path, default=NOTEBOOKS)
    parser.add_argument("--out", type=Path, default=HERE, help="where executed .ipynb go")
    args = parser.parse_args(argv)
    os.environ.setdefault("SENTRA_DEMO_DIR", tempfile.mkdtemp(prefix="sentra-demo-"))
    args.out.mkdir(parents=True, exist_ok=True)
    with current_interpreter_kernel() as kernel:
        for script in args.scripts:
            started = time.perf_counter()
            notebook = execute(script.resolve(), kernel)
            nbformat.write(notebook, args.out / script.with_suffix(".ipynb").name)
            print(f"{script.name}: ok in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
