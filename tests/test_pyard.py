"""py-ard guard: offline build from ../shared, no sys.exit escaping, clear errors."""

from __future__ import annotations

import pytest

from kirmatch.errors import PyardUnavailableError
from kirmatch.pyard_backend import PyardBackend, build_database, status


def test_missing_database_is_a_clear_error(tmp_path) -> None:
    b = PyardBackend(tmp_path)
    with pytest.raises(PyardUnavailableError, match="kirmatch data build"):
        b.ard  # noqa: B018
    assert b.available is False


def test_pyard_sys_exit_is_guarded(tmp_path, shared_dir, monkeypatch) -> None:
    # py-ard's loaders call sys.exit(1) when a download fails; that must come
    # back as a KirmatchError and never end the user's process.
    import pyard

    def exits(*args, **kwargs):
        print("Error downloading https://example.invalid/rel_dna_ser.txt")
        raise SystemExit(1)

    monkeypatch.setattr(pyard, "init", exits)
    with pytest.raises(PyardUnavailableError, match="gave up"):
        build_database(tmp_path / "db", imgt_mirror=shared_dir / "imgt")


def test_incomplete_mirror(tmp_path) -> None:
    with pytest.raises(PyardUnavailableError, match="incomplete"):
        build_database(tmp_path / "db", imgt_mirror=tmp_path)


@pytest.mark.pyard
def test_offline_database(pyard_dir, pyard) -> None:
    st = status(pyard_dir)
    assert st.database_ready and st.mac_loaded is False
    assert pyard.reduce("A*01:01:01:01", "lgx") == ["A*01:01"]
    assert set(pyard.serology("B*57:01")) == {"B17", "B57"}
    with pytest.raises(PyardUnavailableError, match="MAC"):
        pyard.expand_mac("B*44:AB")


def test_database_not_built_by_kirmatch_is_refused(tmp_path, pyard_dir) -> None:
    """No run-time network: a py-ard folder without kirmatch's marker (py-ard would
    re-download its serology files at every start) is refused with the fix."""
    import shutil

    from kirmatch.errors import PyardUnavailableError
    from kirmatch.pyard_backend import SIDECAR, PyardBackend, status

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for f in pyard_dir.glob("pyard-*.sqlite3"):
        shutil.copy(f, foreign / f.name)
    assert not (foreign / SIDECAR).exists()
    st = status(foreign)
    assert st.database_ready and not st.built_by_kirmatch
    backend = PyardBackend(foreign)
    with pytest.raises(PyardUnavailableError, match="kirmatch did not build.*kirmatch data build"):
        backend.ard  # noqa: B018
    assert not backend.available
