#!/usr/bin/env python
"""Benchmark of ``kirmatch batch`` (not a test; see benchmarks/README.md).

Generates a realistic cohort - genotypes drawn from common HLA-A/B/C alleles
and common KIR gene-content profiles - and a random pairs file, then measures:

1. end to end, CSV -> CSV, in a fresh subprocess (``kirmatch batch``) for
   each pairs size: wall time, rows/s and peak RSS (``/usr/bin/time -v`` when
   present, else ``resource.getrusage(RUSAGE_CHILDREN)``);
2. the vectorized engine (:func:`kirmatch.batch.assess_pairs`, in memory)
   against a plain Python loop over :func:`kirmatch.assess_pair` on the
   first ``--loop`` pairs of the same pairs table, in one run, as a ratio;
3. where the time goes (read, prepare people, engine, write) in-process.

Usage::

    python benchmarks/bench_batch.py                    # 20,000 people; 100k, 1M, 3M pairs
    python benchmarks/bench_batch.py --sizes 100000 --loop 1000   # quicker

Everything is written under a temporary directory (``--workdir`` to keep it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Approximate allele frequencies of a European-ancestry registry (rounded; for
# benchmarking only: they make the cohort look like real data, nothing more).
HLA_A = {
    "A*02:01": 28, "A*01:01": 15, "A*03:01": 13, "A*24:02": 9, "A*11:01": 6,
    "A*26:01": 4, "A*32:01": 4, "A*68:01": 4, "A*31:01": 3, "A*23:01": 2,
    "A*25:01": 2, "A*29:02": 3, "A*30:01": 2, "A*33:01": 1, "A*02:05": 1,
}
HLA_B = {
    "B*07:02": 13, "B*08:01": 10, "B*44:02": 9, "B*35:01": 6, "B*15:01": 6,
    "B*40:01": 6, "B*51:01": 5, "B*18:01": 5, "B*44:03": 5, "B*57:01": 4,
    "B*27:05": 4, "B*14:02": 3, "B*13:02": 3, "B*38:01": 2, "B*35:03": 2,
    "B*49:01": 2, "B*52:01": 1, "B*55:01": 2, "B*37:01": 1, "B*39:01": 1,
}
HLA_C = {
    "C*07:01": 15, "C*07:02": 14, "C*04:01": 11, "C*06:02": 9, "C*03:04": 8,
    "C*05:01": 8, "C*12:03": 6, "C*02:02": 5, "C*01:02": 4, "C*08:02": 4,
    "C*03:03": 4, "C*15:02": 3, "C*16:01": 4, "C*14:02": 2, "C*17:01": 1,
}
# Common KIR gene-content genotypes (framework genes included), rough frequencies.
_FW = ["KIR2DL4", "KIR3DL2", "KIR3DL3", "KIR3DP1"]
KIR_PROFILES = {
    "AA1": (30, ["KIR2DL1", "KIR2DL3", "KIR2DS4", "KIR3DL1", "KIR2DP1"]),
    "Bx2": (10, ["KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR2DS2", "KIR2DS4", "KIR3DL1",
                 "KIR2DP1"]),
    "Bx3": (8, ["KIR2DL1", "KIR2DL3", "KIR2DL5", "KIR2DS1", "KIR2DS4", "KIR2DS5",
                "KIR3DL1", "KIR3DS1", "KIR2DP1"]),
    "Bx4": (9, ["KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR2DL5", "KIR2DS1", "KIR2DS2",
                "KIR2DS3", "KIR2DS4", "KIR2DS5", "KIR3DL1", "KIR3DS1", "KIR2DP1"]),
    "Bx5": (6, ["KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR2DL5", "KIR2DS2", "KIR2DS3",
                "KIR2DS4", "KIR3DL1", "KIR2DP1"]),
    "Bx6": (5, ["KIR2DL1", "KIR2DL2", "KIR2DL5", "KIR2DS1", "KIR2DS2", "KIR2DS3",
                "KIR3DS1", "KIR2DP1"]),
    "Bx7": (4, ["KIR2DL1", "KIR2DL3", "KIR2DL5", "KIR2DS1", "KIR2DS5", "KIR3DS1",
                "KIR2DP1"]),
    "Bx8": (3, ["KIR2DL2", "KIR2DL3", "KIR2DS2", "KIR2DS4", "KIR3DL1"]),
    "Bx9": (3, ["KIR2DL1", "KIR2DL2", "KIR2DL5", "KIR2DS2", "KIR2DS3", "KIR2DS4",
                "KIR3DL1", "KIR2DP1"]),
}


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def make_cohort(n_people: int, n_pairs: int, workdir: Path, seed: int = 2024
                ) -> tuple[Path, Path]:
    """Write ``genotypes.csv`` and ``pairs_<n>.csv`` (recipient_id, donor_id, pair_no)."""
    rng = random.Random(seed)
    g = workdir / "genotypes.csv"
    if not g.exists():
        names = list(KIR_PROFILES)
        kw = [KIR_PROFILES[k][0] for k in names]
        with open(g, "w", encoding="utf-8") as fh:
            fh.write("sample_id,hla,kir\n")
            for i in range(n_people):
                hla = "^".join(
                    f"{_pick(rng, pool)}+{_pick(rng, pool)}" for pool in (HLA_A, HLA_B, HLA_C))
                prof = rng.choices(names, weights=kw)[0]
                kir = "+".join(sorted(KIR_PROFILES[prof][1] + _FW))
                fh.write(f"S{i:06d},{hla},{kir}\n")
    p = workdir / f"pairs_{n_pairs}.csv"
    if not p.exists():
        prng = random.Random(seed + n_pairs)
        with open(p, "w", encoding="utf-8") as fh:
            fh.write("recipient_id,donor_id,pair_no\n")
            for j in range(n_pairs):
                fh.write(f"S{prng.randrange(n_people):06d},S{prng.randrange(n_people):06d},"
                         f"{j}\n")
    return g, p


def run_cli(genotypes: Path, pairs: Path, out: Path) -> dict[str, Any]:
    """``kirmatch batch`` in a subprocess: wall time and peak RSS."""
    # The installed console script (run from the work directory, so that a source
    # tree in the current directory cannot shadow the installed package).
    script = Path(sys.executable).with_name("kirmatch")
    if script.exists():
        head = [str(script)]
    else:  # pragma: no cover - unusual installs
        head = [sys.executable, "-c", "import sys; from kirmatch.cli.main import main; "
                "sys.argv = ['kirmatch'] + sys.argv[1:]; main()"]
    cmd = [*head, "batch", "--genotypes", str(genotypes), "--pairs", str(pairs),
           "--output", str(out), "--quiet"]
    timer = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time")
                                     else None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    if timer:
        proc = subprocess.run([timer, "-v", *cmd], capture_output=True, text=True,
                              cwd=out.parent)
    else:  # pragma: no cover - no GNU time
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=out.parent)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"kirmatch batch failed ({proc.returncode}):\n{proc.stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if m:
        rss_kb = int(m.group(1))
        how = "/usr/bin/time -v"
    else:  # ru_maxrss of the largest child so far (kB on Linux)
        rss_kb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
        how = "getrusage(RUSAGE_CHILDREN)"
    rows = sum(1 for _ in open(pairs, "rb")) - 1
    return {"pairs": rows, "wall_s": round(wall, 2), "rows_per_s": round(rows / wall),
            "peak_rss_mb": round(rss_kb / 1024, 1), "rss_measured_with": how,
            "output_mb": round(out.stat().st_size / 2**20, 1)}


def engine_vs_loop(genotypes: Path, pairs: Path, loop_n: int, engine_n: int
                   ) -> dict[str, Any]:
    """In-memory engine throughput vs a Python loop over assess_pair, same pairs."""
    import pandas as pd

    from kirmatch import Options, assess_pair, load_reference_tables, make_person
    from kirmatch.batch import assess_pairs
    from kirmatch.io import read_table

    t = load_reference_tables()
    opts = Options()
    g = read_table(genotypes)
    p = pd.read_csv(pairs, dtype="str", keep_default_na=False, nrows=engine_n)
    assess_pairs(g, p.head(1000), opts, tables=t)  # warm the resolver cache
    t0 = time.perf_counter()
    out = assess_pairs(g, p, opts, tables=t)
    engine_s = time.perf_counter() - t0
    # The loop: people parsed once (as a careful user would), then assess_pair + to_row.
    rec = g.set_index("sample_id")
    sub = p.head(loop_n)
    people: dict[str, Any] = {}
    t0 = time.perf_counter()
    rows = []
    for rid, did in zip(sub["recipient_id"], sub["donor_id"], strict=True):
        for pid in (rid, did):
            if pid not in people:
                people[pid] = make_person(pid, rec.at[pid, "hla"], rec.at[pid, "kir"], tables=t)
        rows.append(assess_pair(people[rid], people[did], opts, tables=t).to_row())
    loop_s = time.perf_counter() - t0
    # The same loop again with every person already parsed (assess_pair only): the
    # strictest baseline.
    t0 = time.perf_counter()
    for rid, did in zip(sub["recipient_id"], sub["donor_id"], strict=True):
        assess_pair(people[rid], people[did], opts, tables=t).to_row()
    pre_s = time.perf_counter() - t0
    cols = list(rows[0])
    same = [[r[c] for c in cols] for r in rows] == out.head(loop_n)[cols].astype(
        object).values.tolist()
    engine_rate = len(p) / engine_s
    loop_rate = loop_n / loop_s
    return {"engine_pairs": len(p), "engine_s": round(engine_s, 2),
            "engine_rows_per_s": round(engine_rate), "loop_pairs": loop_n,
            "loop_s": round(loop_s, 2), "loop_rows_per_s": round(loop_rate),
            "ratio": round(engine_rate / loop_rate, 1),
            "loop_preparsed_s": round(pre_s, 2),
            "loop_preparsed_rows_per_s": round(loop_n / pre_s),
            "ratio_vs_preparsed": round(engine_rate / (loop_n / pre_s), 1),
            "loop_rows_equal_engine_rows": same}


def breakdown(genotypes: Path, pairs: Path, workdir: Path) -> dict[str, Any]:
    """Where the time of one streamed run goes: ``run_batch``'s own stage clock
    (inputs read, people prepared, pairs assessed and written), in process."""
    from kirmatch import Options, load_reference_tables
    from kirmatch.batch import run_batch

    t = load_reference_tables()
    details: dict[str, str] = {}

    def progress(event: Any) -> None:
        if event.detail:
            details[event.stage] = event.detail

    t0 = time.perf_counter()
    summary = run_batch(genotypes, pairs, workdir / "breakdown.csv", Options(), tables=t,
                        progress=progress)
    total = time.perf_counter() - t0
    res_out: dict[str, Any] = {k: round(v, 2) for k, v in summary.stage_seconds.items()}
    res_out["total"] = round(total, 2)
    res_out["stages"] = details
    return res_out


def machine() -> dict[str, Any]:
    """The machine a benchmark ran on, for its results."""
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "system": platform.platform()}


def emit(results: dict[str, Any], path: Path | None) -> None:
    """Print the results as JSON (and write them to ``path``)."""
    text = json.dumps(results, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 3_000_000])
    ap.add_argument("--loop", type=int, default=2_000, help="pairs for the assess_pair loop")
    ap.add_argument("--engine", type=int, default=1_000_000,
                    help="pairs for the in-memory engine run and the time breakdown")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kirmatch-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": machine(),
        "people": args.people,
    }
    try:
        t0 = time.perf_counter()
        for n in args.sizes:
            make_cohort(args.people, n, workdir)
        print(f"cohort generated in {time.perf_counter() - t0:.1f} s ({workdir})",
              file=sys.stderr)
        g = workdir / "genotypes.csv"
        results["end_to_end"] = []
        for n in args.sizes:
            r = run_cli(g, workdir / f"pairs_{n}.csv", workdir / f"out_{n}.csv")
            results["end_to_end"].append(r)
            print(f"end to end {n:>9,} pairs: {r['wall_s']:6.1f} s, {r['rows_per_s']:>9,} "
                  f"rows/s, peak RSS {r['peak_rss_mb']:7.1f} MB", file=sys.stderr)
        # The engine run and the breakdown use the smallest size >= --engine (or the largest).
        big = min((n for n in args.sizes if n >= args.engine), default=max(args.sizes))
        engine_n = min(args.engine, big)
        results["engine_vs_loop"] = engine_vs_loop(g, workdir / f"pairs_{big}.csv", args.loop,
                                                   engine_n)
        e = results["engine_vs_loop"]
        print(f"engine {e['engine_rows_per_s']:,} rows/s ({e['engine_pairs']:,} pairs) vs "
              f"assess_pair loop {e['loop_rows_per_s']:,} rows/s ({e['loop_pairs']:,} pairs): "
              f"{e['ratio']}x; vs the loop with people pre-parsed "
              f"{e['loop_preparsed_rows_per_s']:,} rows/s: {e['ratio_vs_preparsed']}x",
              file=sys.stderr)
        results["breakdown_s"] = breakdown(g, workdir / f"pairs_{big}.csv", workdir)
        print(f"breakdown ({big:,} pairs): {results['breakdown_s']}", file=sys.stderr)
        emit(results, args.json)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
