"""Session fixtures shared by the whole suite.

* ``shared_dir``: the read-only IPD-IMGT/HLA and IPD-KIR files in ``../shared``
  (or ``$KIRMATCH_SHARED``); tests that need them skip with a clear message
  when they are absent.
* ``tables``: the shipped reference tables, loaded (and checksum-verified) once.
* ``pyard_dir``: a py-ard database built offline from ``../shared/imgt``. CI
  builds it once (``kirmatch data build --imgt-mirror``) and passes its folder
  in ``$KIRMATCH_PYARD_DIR``; otherwise it is built here into a session
  temporary folder (about 15 s). Tests never touch the network.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def golden() -> ModuleType:
    """``tests/data/make_golden.py`` as a module (its random cohort helpers)."""
    spec = importlib.util.spec_from_file_location("kirmatch_make_golden",
                                                  DATA_DIR / "make_golden.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    env = os.environ.get("KIRMATCH_SHARED")
    path = Path(env) if env else REPO_ROOT.parent / "shared"
    if not (path / "imgt").is_dir() or not (path / "ipdkir").is_dir():
        pytest.skip(
            f"../shared not found at {path}: the IPD-IMGT/HLA 3.58.0 and IPD-KIR 2.13.0 "
            "files are needed for this test (set KIRMATCH_SHARED to their folder)"
        )
    return path.resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


@pytest.fixture(scope="session")
def tables():
    from kirmatch.tables import load_reference_tables

    return load_reference_tables()


@pytest.fixture(scope="session")
def pyard_dir(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A py-ard database built offline from ../shared/imgt (or CI's prebuilt one)."""
    from kirmatch.pyard_backend import build_database, status

    env = os.environ.get("KIRMATCH_PYARD_DIR")
    if env and status(Path(env)).database_ready:
        return Path(env)
    target = tmp_path_factory.mktemp("pyard")
    build_database(target, imgt_mirror=shared_dir / "imgt")
    return target


@pytest.fixture(scope="session")
def pyard(pyard_dir: Path):
    from kirmatch.pyard_backend import PyardBackend

    return PyardBackend(pyard_dir)
