#!/usr/bin/env python
"""Benchmark of the DSA screen (rule 13 v2; not a test, see benchmarks/README.md).

1. **Batch with antibodies.** ``run_batch`` in-process on ``--pairs`` pairs over
   ``--people`` people typed at HLA-A, -B, -C, -DRB1 and -DQB1, once without
   antibodies and once with a ``--panel``-antibody single-antigen panel for
   *every* person (any of them may be a recipient). Panels mix class I and II
   antigens, allele beads, DQ heterodimers and DP beads (DP and DQA1 are untyped
   in the cohort, so those antibodies are possible hits for every donor: the
   hard case). CPU seconds and the ratio of throughputs (target: with
   antibodies ≥ 50 % of without).
2. **First serology typing.** ``kirmatch ligands`` of a serological typing in a
   fresh subprocess (wall), and the first serology resolution in-process (the
   antigen table loads lazily).

Usage::

    python benchmarks/bench_dsa.py                      # 20,000 people, 1M pairs, 10 antibodies
    python benchmarks/bench_dsa.py --pairs 200000       # quicker
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import _FW, HLA_A, HLA_B, HLA_C, KIR_PROFILES, _pick

DRB1 = {"DRB1*15:01": 14, "DRB1*03:01": 12, "DRB1*07:01": 12, "DRB1*04:01": 9,
        "DRB1*01:01": 9, "DRB1*13:01": 7, "DRB1*11:01": 6, "DRB1*13:02": 4,
        "DRB1*04:04": 3, "DRB1*12:01": 2, "DRB1*08:01": 2, "DRB1*14:01": 2}
DQB1 = {"DQB1*06:02": 14, "DQB1*02:01": 14, "DQB1*03:01": 18, "DQB1*05:01": 12,
        "DQB1*03:02": 9, "DQB1*06:03": 6, "DQB1*02:02": 8, "DQB1*06:04": 4,
        "DQB1*04:02": 3, "DQB1*05:02": 2}
#: A single-antigen panel's specificities (antigens, beads, heterodimers, DP).
POOL = ["A1", "A2", "A3", "A11", "A24", "A68", "B7", "B8", "B44", "B51", "B57", "B35",
        "B27", "Bw4", "Bw6", "Cw4", "Cw7", "Cw12", "DR4", "DR7", "DR11", "DR15", "DR17",
        "DR52", "DQ2", "DQ7", "DQ6", "B*44:02", "A*02:01", "C*07:02", "DQB1*03:01",
        "DQA1*05:01/DQB1*02:01", "DQA1*01:02/DQB1*06:02", "DPB1*04:01", "DPB1*01:01",
        "DQA1*05:01"]


def make_inputs(workdir: Path, n_people: int, n_pairs: int, panel: int,
                seed: int = 2026) -> tuple[Path, Path, Path]:
    rng = random.Random(seed)
    g, p, a = workdir / "g.csv", workdir / f"p_{n_pairs}.csv", workdir / f"a_{panel}.csv"
    if not g.exists():
        names = list(KIR_PROFILES)
        kw = [KIR_PROFILES[k][0] for k in names]
        with open(g, "w") as fh:
            fh.write("sample_id,hla,kir\n")
            for i in range(n_people):
                hla = "^".join(f"{_pick(rng, pool)}+{_pick(rng, pool)}"
                               for pool in (HLA_A, HLA_B, HLA_C, DRB1, DQB1))
                kir = "+".join(sorted(KIR_PROFILES[rng.choices(names, weights=kw)[0]][1]
                                      + _FW))
                fh.write(f"S{i:06d},{hla},{kir}\n")
    if not p.exists():
        with open(p, "w") as fh:
            fh.write("recipient_id,donor_id,pair_no\n")
            for j in range(n_pairs):
                fh.write(f"S{rng.randrange(n_people):06d},S{rng.randrange(n_people):06d},{j}\n")
    if not a.exists():
        write_panels(a, [f"S{i:06d}" for i in range(n_people)], panel, rng)
    return g, p, a


def write_panels(path: Path, recipients: list[str], panel: int, rng: random.Random) -> None:
    """An antibody file: ``panel`` specificities of :data:`POOL` per recipient,
    log-normal MFIs, C1q positive for some strong ones."""
    with open(path, "w") as fh:
        fh.write("recipient_id,specificity,mfi,c1q\n")
        for rid in recipients:
            for spec in rng.sample(POOL, panel):
                mfi = round(rng.lognormvariate(7.8, 1.1))
                c1q = "pos" if mfi > 8000 and rng.random() < 0.4 else ""
                fh.write(f"{rid},{spec},{mfi},{c1q}\n")


def batch_cpu(g: Path, p: Path, a: Path | None, out: Path) -> dict[str, float]:
    from kirmatch.batch import run_batch
    from kirmatch.tables import load_reference_tables

    tables = load_reference_tables()
    c0, w0 = time.process_time(), time.perf_counter()
    s = run_batch(g, p, out, tables=tables, antibodies=a)
    return {"cpu_s": round(time.process_time() - c0, 2),
            "wall_s": round(time.perf_counter() - w0, 2), "rows": s.rows_in,
            "errors": s.rows_error}


def first_serology() -> dict[str, float]:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "kirmatch.cli.main", "ligands",
                          "A2+A24^B44+B7^Cw4+Cw7", "--json"], capture_output=True, text=True,
                         check=False)
    wall = time.perf_counter() - t0
    assert res.returncode == 0, res.stderr
    t1 = time.perf_counter()
    from kirmatch.hla import parse_hla_typing
    from kirmatch.ligands import LigandResolver
    from kirmatch.tables import load_reference_tables

    r = LigandResolver(load_reference_tables())
    t2 = time.perf_counter()
    r.resolve_typing(parse_hla_typing("B44"))
    t3 = time.perf_counter()
    r.resolve_typing(parse_hla_typing("B7"))
    t4 = time.perf_counter()
    return {"cli_ligands_serology_wall_s": round(wall, 2),
            "tables_load_s": round(t2 - t1, 3),
            "first_serology_typing_s": round(t3 - t2, 3),
            "second_serology_typing_s": round(t4 - t3, 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--panel", type=int, default=10)
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kirmatch-bench-dsa-"))
    work.mkdir(parents=True, exist_ok=True)
    g, p, a = make_inputs(work, args.people, args.pairs, args.panel)
    out: dict[str, object] = {"people": args.people, "pairs": args.pairs,
                              "panel": args.panel}
    out["first_serology"] = first_serology()
    without = batch_cpu(g, p, None, work / "o0.csv")
    with_ab = batch_cpu(g, p, a, work / "o1.csv")
    out["batch_without_antibodies"] = without
    out["batch_with_antibodies"] = with_ab
    out["throughput_ratio"] = round(without["cpu_s"] / with_ab["cpu_s"], 2)
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
