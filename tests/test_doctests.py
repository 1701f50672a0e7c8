"""The examples in the package's docstrings run as tests."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import api
import jobs
import sentra_graph

SKIPPED = ("sentra_graph.__main__", "sentra_graph.store.migrations")
"""Modules with import-time effects: the command's entry point, Alembic's environment."""


def _modules() -> list[str]:
    names = []
    for package in (sentra_graph, api, jobs):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
            if not info.name.startswith(SKIPPED):
                names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
