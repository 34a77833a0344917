"""A guarded wrapper around py-ard (HLA nomenclature; LGPL-3.0).

py-ard is only needed for typings below allele level that the shipped tables
cannot expand on their own: serology, v2 names with unusual fields, G-group
validation, MAC codes, and the serologic antigens used by DSA matching.
Ligand calls for 2-field-or-better alleles never touch it.

Guarantees (DOMAIN.md §C.14, DEVELOPERS brief):

* nothing is imported or opened at ``import kirmatch`` time;
* py-ard's ``sys.exit`` calls and its download errors never escape: they
  become :class:`~kirmatch.errors.PyardUnavailableError` with instructions;
* at run time kirmatch never lets py-ard download anything: the database must
  have been built first (``kirmatch data build``, online or from an offline
  mirror with ``--imgt-mirror``);
* py-ard's prints to stdout are captured, so the library stays silent.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kirmatch.errors import PyardUnavailableError

__all__ = [
    "IMGT_VERSION",
    "PyardBackend",
    "PyardStatus",
    "build_database",
    "default_data_dir",
    "get_backend",
]

#: The py-ard database version matching the shipped tables (IPD-IMGT/HLA 3.58.0).
IMGT_VERSION = "3580"
DATA_DIR_ENV = "KIRMATCH_PYARD_DIR"
#: Written by an offline build: where py-ard re-reads its serology files from.
SIDECAR = "kirmatch-pyard.json"
_HOW = (
    "build it once with `kirmatch data build` (online) or "
    "`kirmatch data build --imgt-mirror DIR` (air-gapped, DIR = a local copy of the "
    "IPD-IMGT/HLA files), or point $KIRMATCH_PYARD_DIR at an existing one"
)


def default_data_dir() -> Path:
    """Where the py-ard database lives: ``$KIRMATCH_PYARD_DIR`` or a user cache dir."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kirmatch" / "pyard"


def _db_file(data_dir: Path) -> Path:
    return data_dir / f"pyard-{IMGT_VERSION}.sqlite3"


@dataclass(frozen=True, slots=True)
class PyardStatus:
    """What ``kirmatch data status`` reports."""

    pyard_version: str | None
    imgt_version: str
    data_dir: str
    database: str
    database_exists: bool
    database_ready: bool
    database_version: str | None
    mac_loaded: bool
    size_bytes: int
    built_by_kirmatch: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def _pyard_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("py-ard")
    except Exception:  # pragma: no cover - metadata missing
        return None


def _inspect_db(path: Path) -> tuple[bool, str | None, bool]:
    """(ready, user_version, mac_loaded) read directly with sqlite3, no py-ard."""
    if not path.is_file() or path.stat().st_size == 0:
        return False, None, False
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("select name from sqlite_master "
                                                "where type='table'")}
            user_version = con.execute("pragma user_version").fetchone()[0]
            mac = False
            if "mac_codes" in tables:
                mac = con.execute("select count(*) from mac_codes").fetchone()[0] > 0
        finally:
            con.close()
    except sqlite3.Error:
        return False, None, False
    ready = "allele_group" in tables or "alleles" in tables or len(tables) > 5
    return ready, str(user_version) if user_version else None, mac


def status(data_dir: Path | None = None) -> PyardStatus:
    """Report the py-ard database state without opening py-ard."""
    d = Path(data_dir) if data_dir else default_data_dir()
    db = _db_file(d)
    ready, ver, mac = _inspect_db(db)
    return PyardStatus(
        pyard_version=_pyard_version(), imgt_version=IMGT_VERSION, data_dir=str(d),
        database=str(db), database_exists=db.is_file(), database_ready=ready,
        database_version=ver, mac_loaded=mac, size_bytes=db.stat().st_size if db.is_file() else 0,
        built_by_kirmatch=(d / SIDECAR).is_file(),
    )


def _redirect_loaders(base_url: str) -> None:
    """Point every py-ard loader at ``base_url`` (they copy the URL at import)."""
    import pyard.loader as loader
    from pyard.loader import allele_list, g_group, p_group, serology, version

    loader.IMGT_HLA_URL = base_url
    for mod in (allele_list, g_group, p_group, serology, version):
        mod.IMGT_HLA_URL = base_url  # type: ignore[attr-defined]


def build_database(
    data_dir: Path | None = None,
    *,
    imgt_mirror: Path | str | None = None,
    mac_file: Path | str | None = None,
) -> PyardStatus:
    """Build (or complete) the py-ard 3580 database.

    Parameters
    ----------
    data_dir:
        Target folder (default :func:`default_data_dir`).
    imgt_mirror:
        A local folder laid out like ``shared/imgt`` (``3580/wmda/*.txt`` and
        ``Latest/allelelist/Allelelist.3580.txt``) for air-gapped sites. Without
        it py-ard downloads from the IPD-IMGT/HLA GitHub repository.
    mac_file:
        A local NMDP ``numer.v3.zip`` to load MAC codes from. Without it MAC
        codes are not loaded (offline they cannot be).

    Raises
    ------
    PyardUnavailableError
        The download failed, the mirror is incomplete, or py-ard gave up.
    """
    d = Path(data_dir) if data_dir else default_data_dir()
    d.mkdir(parents=True, exist_ok=True)
    db = _db_file(d)
    if imgt_mirror is not None:
        mirror = Path(imgt_mirror).expanduser().resolve()
        needed = [mirror / IMGT_VERSION / "wmda" / f for f in
                  ("hla_nom_g.txt", "hla_nom_p.txt", "rel_dna_ser.txt", "rel_ser_ser.txt")]
        needed.append(mirror / "Latest" / "allelelist" / f"Allelelist.{IMGT_VERSION}.txt")
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise PyardUnavailableError(
                f"IPD-IMGT/HLA mirror {mirror} is incomplete: missing {', '.join(missing)}"
            )
        # py-ard re-reads rel_dna_ser.txt at every start for pre-3.64.0 releases,
        # so the serology files are kept beside the database: later starts then
        # need neither the network nor the original mirror.
        keep = d / "mirror" / IMGT_VERSION / "wmda"
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("rel_dna_ser.txt", "rel_ser_ser.txt"):
            shutil.copyfile(mirror / IMGT_VERSION / "wmda" / name, keep / name)
        (d / SIDECAR).write_text(json.dumps({"imgt_url": (d / "mirror").resolve().as_uri() + "/",
                                             "source": str(mirror)}, indent=1))
        base_url = mirror.as_uri() + "/"
        if not db.exists():
            # py-ard asks api.github.com for the list of releases only when the
            # file is missing; an empty file is an empty sqlite database.
            db.touch()
    else:
        base_url = None
    st = _init_pyard(d, base_url=base_url, mac_file=mac_file, allow_build=True)[1]
    if imgt_mirror is None:
        _keep_serology_online(d)
    return st


def _keep_serology_online(d: Path) -> None:
    """After an online build, keep the two serology files py-ard re-reads at every
    start (releases before 3.64.0) beside the database, so later starts never
    need the network (the same marker as an offline build)."""
    import pyard.loader as loader

    keep = d / "mirror" / IMGT_VERSION / "wmda"
    keep.mkdir(parents=True, exist_ok=True)
    base = str(getattr(loader, "IMGT_HLA_URL", "https://raw.githubusercontent.com/ANHIG/IMGTHLA/"))
    for name in ("rel_dna_ser.txt", "rel_ser_ser.txt"):
        url = f"{base}{IMGT_VERSION}/wmda/{name}"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - fixed https URL
                data = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise PyardUnavailableError(
                f"py-ard's database was built, but {url} could not be downloaded ({exc}); "
                f"retry `kirmatch data build`, or use --imgt-mirror DIR") from exc
        (keep / name).write_bytes(data)
    (d / SIDECAR).write_text(json.dumps({"imgt_url": (d / "mirror").resolve().as_uri() + "/",
                                         "source": base}, indent=1))


_LOCK = threading.Lock()


def _init_pyard(data_dir: Path, *, base_url: str | None, mac_file: Path | str | None,
                allow_build: bool) -> tuple[Any, PyardStatus]:
    os.environ["PYARD_RC"] = "no"
    if base_url is not None:
        os.environ["IMGT_HLA_URL"] = base_url
    out = io.StringIO()
    try:
        with _LOCK, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            import pyard
            import pyard.loader.mac_codes as mac_loader

            if base_url is not None:
                _redirect_loaders(base_url)
            load_mac = False
            if mac_file is not None:
                mac_path = Path(mac_file).expanduser().resolve()
                if not mac_path.is_file():
                    raise PyardUnavailableError(f"MAC file {mac_path} not found")
                mac_uri = mac_path.as_uri()
                mac_loader.urlopen = lambda url, *a, **k: urllib.request.urlopen(mac_uri)
                load_mac = True
            if not allow_build:
                ready, _, mac_loaded = _inspect_db(_db_file(data_dir))
                if not ready:
                    raise PyardUnavailableError(
                        f"no py-ard database for IPD-IMGT/HLA 3.58.0 in {data_dir}: {_HOW}"
                    )
                load_mac = mac_loaded
            ard = pyard.init(IMGT_VERSION, data_dir=str(data_dir), load_mac=load_mac,
                             cache_size=1_000_000)
    except PyardUnavailableError:
        raise
    except SystemExit as exc:
        raise PyardUnavailableError(
            f"py-ard could not build its database in {data_dir} (it gave up: "
            f"{out.getvalue().strip()[-300:] or exc}); {_HOW}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError, sqlite3.Error) as exc:
        raise PyardUnavailableError(
            f"py-ard could not open or build its database in {data_dir}: {exc}; {_HOW}"
        ) from exc
    except Exception as exc:  # py-ard raises assorted errors on half-built databases
        raise PyardUnavailableError(
            f"py-ard failed on {data_dir}: {type(exc).__name__}: {exc}; {_HOW}"
        ) from exc
    return ard, status(data_dir)


class PyardBackend:
    """Lazy, guarded access to one py-ard database (never downloads)."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self._ard: Any = None
        self._error: PyardUnavailableError | None = None
        self.open_seconds: float | None = None

    @property
    def ard(self) -> Any:
        if self._ard is None:
            if self._error is not None:
                raise self._error
            t0 = time.perf_counter()
            sidecar = self.data_dir / SIDECAR
            try:
                base_url = json.loads(sidecar.read_text())["imgt_url"]
            except FileNotFoundError:
                ready = _inspect_db(_db_file(self.data_dir))[0]
                what = ("holds a py-ard database that kirmatch did not build (no "
                        f"{SIDECAR}): opening it would make py-ard download IPD-IMGT/HLA "
                        "files at run time" if ready else
                        "holds no py-ard database for IPD-IMGT/HLA 3.58.0")
                self._error = PyardUnavailableError(f"{self.data_dir} {what}; {_HOW}")
                raise self._error from None
            except (OSError, ValueError, KeyError) as exc:
                self._error = PyardUnavailableError(
                    f"{sidecar} cannot be read ({exc}); rebuild with `kirmatch data build`")
                raise self._error from None
            try:
                self._ard, _ = _init_pyard(self.data_dir, base_url=base_url, mac_file=None,
                                           allow_build=False)
            except PyardUnavailableError as exc:
                self._error = exc
                raise
            self.open_seconds = time.perf_counter() - t0
        return self._ard

    @property
    def available(self) -> bool:
        try:
            self.ard  # noqa: B018
        except PyardUnavailableError:
            return False
        return True

    @property
    def mac_loaded(self) -> bool:
        return status(self.data_dir).mac_loaded

    def _call(self, what: str, fn: Any, arg: str) -> str:
        from pyard.exceptions import InvalidAlleleError, InvalidTypingError

        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                return str(fn(arg))
        except (InvalidAlleleError, InvalidTypingError) as exc:
            raise LookupError(f"py-ard: {what} {arg!r}: {exc}") from exc
        except SystemExit as exc:  # pragma: no cover - defensive
            raise PyardUnavailableError(f"py-ard exited while reading {arg!r}; {_HOW}") from exc

    def reduce(self, typing: str, level: str = "lgx") -> list[str]:
        """``redux(typing, level)`` as a list (``/`` split); LookupError if invalid."""
        text = self._call("cannot reduce", lambda x: self.ard.redux(x, level), typing)
        return [t for t in text.replace("+", "/").split("/") if t]

    def serology(self, allele: str) -> list[str]:
        """Serologic antigens of an allele, split and broad (B*57:01 -> B17, B57)."""
        return self.reduce(allele, "S")

    def expand_mac(self, mac: str) -> list[str]:
        if not self.mac_loaded:
            raise PyardUnavailableError(
                f"MAC code {mac!r} cannot be expanded: no NMDP MAC table is loaded; "
                "run `kirmatch data build --mac-file numer.v3.zip` (or online "
                "`kirmatch data build --with-mac`)"
            )
        text = self._call("unknown MAC code", self.ard.expand_mac, mac)
        return [t for t in text.split("/") if t]

    def v2_to_v3(self, name: str) -> str:
        return self._call("cannot convert v2 name", self.ard.v2_to_v3, name)

    def is_valid(self, name: str) -> bool:
        try:
            self._call("invalid", self.ard.validate, name)
        except LookupError:
            return False
        return True


_BACKENDS: dict[str, PyardBackend] = {}


def get_backend(data_dir: Path | None = None) -> PyardBackend:
    """A shared backend per database folder (opened lazily, at first use)."""
    d = str(Path(data_dir) if data_dir else default_data_dir())
    if d not in _BACKENDS:
        _BACKENDS[d] = PyardBackend(Path(d))
    return _BACKENDS[d]
