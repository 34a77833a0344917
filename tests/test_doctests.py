"""Run the numpydoc examples of the installed modules (catches docs drifting)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["kirmatch.errors", "kirmatch.options", "kirmatch.hla", "kirmatch.kir",
           "kirmatch.ligands", "kirmatch.propagation", "kirmatch.scores", "kirmatch.dsa",
           "kirmatch.pair"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0, f"{name} has no examples"
    assert res.failed == 0
