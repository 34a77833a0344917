"""Latency of `kirmatch ligands` (cold start = new process) and warm calls,
plus the py-ard database build time. Run: python benchmarks/bench_ligands.py
[--shared ../shared]. Prints one JSON object with the figures."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GL = "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    exe = shutil.which("kirmatch") or str(Path(sys.executable).with_name("kirmatch"))
    cold = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run([exe, "ligands", GL, "--json"], check=True, capture_output=True)
        cold.append(time.perf_counter() - t0)
    from typer.testing import CliRunner

    from kirmatch.cli.main import app

    runner = CliRunner()
    runner.invoke(app, ["ligands", GL, "--json"])
    warm = []
    for _ in range(50):
        t0 = time.perf_counter()
        runner.invoke(app, ["ligands", GL, "--json"])
        warm.append(time.perf_counter() - t0)
    out = {"cold_start_s_median": round(statistics.median(cold), 3),
           "warm_call_ms_median": round(1000 * statistics.median(warm), 2)}
    imgt = Path(args.shared) / "imgt"
    if imgt.is_dir():
        from kirmatch.pyard_backend import build_database

        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            build_database(Path(d), imgt_mirror=imgt)
            out["pyard_db_build_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
