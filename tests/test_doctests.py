"""Run the numpydoc examples of every installed kirmatch module (catches docs drifting).

The module list is discovered, not written down, so a new module's examples run
too; a module without examples is listed in ``NO_EXAMPLES`` with the reason.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import kirmatch

#: Modules with nothing to show in an example (each with the reason).
NO_EXAMPLES = {
    "kirmatch.facts": "resolution of one person; shown through kirmatch.pair",
    "kirmatch.pyard_backend": "needs a py-ard database (tests/test_pyard)",
    "kirmatch.report": "HTML output (tests/test_rank renders it in Chromium)",
    "kirmatch.kir_history": "reads the shipped history table (tests/test_kir_history)",
    "kirmatch.readers.hml": "file format: tests/test_readers reads its fixtures",
    "kirmatch.readers.kirimp": "file format: tests/test_readers reads its fixtures",
    "kirmatch.readers.ping": "file format: tests/test_readers reads its fixtures",
    "kirmatch.readers.t1k": "file format: tests/test_readers reads its fixtures",
}


def _modules() -> list[str]:
    # Only the package's own folder: in a source tree kirmatch.__path__ also holds
    # the project folder (for kirmatch.cli), and walking that would find
    # kirmatch.kirmatch, kirmatch.kirmatch.kirmatch, ... without end.
    names = []
    for info in pkgutil.walk_packages([str(Path(kirmatch.__file__).parent)], "kirmatch."):
        if info.name.startswith("kirmatch.cli"):
            continue  # the command line is tested through its commands
        names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_every_module_is_listed() -> None:
    """Non-vacuous guard: discovery finds the core modules."""
    for name in ("kirmatch.hla", "kirmatch.registry", "kirmatch.tabular", "kirmatch.grammar",
                 "kirmatch.readers.ping"):
        assert name in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0
    if name in NO_EXAMPLES:
        return
    assert res.attempted > 0, f"{name} has no examples (add one, or list it in NO_EXAMPLES)"
