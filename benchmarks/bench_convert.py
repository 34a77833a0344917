#!/usr/bin/env python3
"""How ``kirmatch convert`` scales with the number of samples (issue: it used to
join samples quadratically; 100,000 HML samples took 309 s).

Writes an NMDP HML file of N samples (three HLA class I typings each, drawn from
common alleles; seeded) and a T1K-free KIR matrix of the same samples, then times
``kirmatch convert --hla … --kir … --output …`` in a fresh subprocess per size.

    python benchmarks/bench_convert.py                 # 20,000 and 100,000 samples
    python benchmarks/bench_convert.py --sizes 5000    # quick look

It is a script, not a test: nothing here fails a build.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

A = ["01:01", "02:01", "03:01", "11:01", "24:02", "26:01", "29:02", "31:01", "32:01", "68:01"]
B = ["07:02", "08:01", "15:01", "18:01", "35:01", "40:01", "44:02", "44:03", "51:01", "57:01"]
C = ["01:02", "03:03", "03:04", "04:01", "05:01", "06:02", "07:01", "07:02", "12:03", "15:02"]
KIR = ["KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR2DS4", "KIR3DL1", "KIR3DS1", "KIR2DS1"]


def write_inputs(folder: Path, n: int, seed: int = 1) -> tuple[Path, Path]:
    rng = random.Random(seed)
    hml = folder / f"samples_{n}.hml"
    kir = folder / f"kir_{n}.csv"
    with open(hml, "w", encoding="utf-8") as fh, open(kir, "w", encoding="utf-8") as kh:
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n'
                 '<hml xmlns="http://schemas.nmdp.org/spec/hml/1.0.1" version="1.0.1">\n')
        kh.write("sample_id," + ",".join(KIR) + "\n")
        for i in range(n):
            sid = f"S{i:07d}"
            fh.write(f'<sample id="{sid}">\n')
            for locus, pool in (("A", A), ("B", B), ("C", C)):
                a, b = rng.choice(pool), rng.choice(pool)
                fh.write('<typing gene-family="HLA"><allele-assignment allele-db="IMGT/HLA" '
                         f'allele-version="3.58.0"><glstring>HLA-{locus}*{a}+HLA-{locus}*{b}'
                         "</glstring></allele-assignment></typing>\n")
            fh.write("</sample>\n")
            kh.write(sid + "," + ",".join(rng.choice(("POS", "NEG")) for _ in KIR) + "\n")
        fh.write("</hml>\n")
    return hml, kir


def run(hml: Path, kir: Path, out: Path) -> tuple[float, float]:
    kirmatch = Path(sys.executable).with_name("kirmatch")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([str(kirmatch), "convert", "--hla", str(hml), "--hla-format", "hml",
                    "--kir", str(kir), "--kir-format", "matrix", "--output", str(out)],
                   check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"{'samples':>10} {'wall s':>8} {'CPU s':>8} {'samples/s':>10}")
        for n in args.sizes:
            hml, kir = write_inputs(folder, n)
            wall, cpu = run(hml, kir, folder / f"out_{n}.csv")
            lines = sum(1 for _ in open(folder / f"out_{n}.csv", encoding="utf-8")) - 1
            assert lines == n, (lines, n)
            print(f"{n:>10,} {wall:>8.1f} {cpu:>8.1f} {n / wall:>10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
