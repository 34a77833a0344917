"""The wheel carries the library, the CLI (inside the package) and the tables."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_contents(tmp_path) -> None:
    res = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                          "--outdir", str(tmp_path), str(REPO)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0 and "No module named build" in res.stderr:
        pytest.skip("the 'build' package is not installed")
    assert res.returncode == 0, res.stderr[-2000:]
    wheels = list(tmp_path.glob("kirmatch-*.whl"))
    assert len(wheels) == 1
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for needed in ("kirmatch/__init__.py", "kirmatch/cli/main.py",
                   "kirmatch/reference_tables/MANIFEST.toml",
                   "kirmatch/reference_tables/hla_kir_ligands.tsv",
                   "kirmatch/reference_tables/kir3dl1_class.tsv"):
        assert needed in names, needed
    # no top-level module called `cli` (or anything else) besides kirmatch
    tops = {n.split("/")[0] for n in names}
    assert all(t == "kirmatch" or t.startswith("kirmatch-") for t in tops), tops
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "kirmatch = kirmatch.cli.main:main" in zipfile.ZipFile(wheels[0]).read(entry).decode()


def test_installed_console_script_runs_anywhere(tmp_path) -> None:
    exe = Path(sys.executable).with_name("kirmatch")
    if not exe.exists():
        pytest.skip("kirmatch console script not installed beside this interpreter")
    res = subprocess.run([str(exe), "--version"], cwd=tmp_path, capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert "kirmatch rules v2" in res.stdout
