#!/usr/bin/env python
"""Benchmark of rule 16 (HLA-level assessment; not a test, see benchmarks/README.md).

The same 20,000 people and the same pairs, typed at six loci (HLA-A, -B, -C,
-DRB1, -DQB1, -DPB1) or at HLA-A, -B and -C only: ``run_batch`` in-process,
CPU seconds of each and their ratio (target: six loci within 1.5x of class I
only). Each configuration runs twice, alternating, and the faster run counts
(the first run of a process also pays lazy table loading).

Usage::

    python benchmarks/bench_hla.py                 # 20,000 people, 1M pairs
    python benchmarks/bench_hla.py --pairs 200000  # quicker
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import _FW, HLA_A, HLA_B, HLA_C, KIR_PROFILES, _pick, make_cohort
from bench_dsa import DQB1, DRB1

DPB1 = {"DPB1*04:01": 40, "DPB1*04:02": 12, "DPB1*02:01": 12, "DPB1*03:01": 10,
        "DPB1*01:01": 6, "DPB1*05:01": 4, "DPB1*14:01": 3, "DPB1*10:01": 2}


def make_genotypes(workdir: Path, n_people: int, seed: int = 5) -> tuple[Path, Path]:
    """``g6.csv`` (six loci) and ``g3.csv`` (the same people, class I only)."""
    g6, g3 = workdir / "g6.csv", workdir / "g3.csv"
    if g6.exists() and g3.exists():
        return g6, g3
    rng = random.Random(seed)
    names = list(KIR_PROFILES)
    kw = [KIR_PROFILES[k][0] for k in names]
    with open(g6, "w") as f6, open(g3, "w") as f3:
        f6.write("sample_id,hla,kir\n")
        f3.write("sample_id,hla,kir\n")
        for i in range(n_people):
            loci = [f"{_pick(rng, p)}+{_pick(rng, p)}"
                    for p in (HLA_A, HLA_B, HLA_C, DRB1, DQB1, DPB1)]
            kir = "+".join(sorted(KIR_PROFILES[rng.choices(names, weights=kw)[0]][1] + _FW))
            f6.write(f"S{i:06d},{'^'.join(loci)},{kir}\n")
            f3.write(f"S{i:06d},{'^'.join(loci[:3])},{kir}\n")
    return g6, g3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args(argv)
    from kirmatch.batch import run_batch
    from kirmatch.tables import load_reference_tables

    work = args.workdir or Path(tempfile.mkdtemp(prefix="kirmatch-bench-hla-"))
    work.mkdir(parents=True, exist_ok=True)
    g6, g3 = make_genotypes(work, args.people)
    _, pairs = make_cohort(args.people, args.pairs, work)
    tables = load_reference_tables()
    best: dict[str, float] = {}
    for _ in range(2):
        for name, g in (("class_i_only", g3), ("six_loci", g6)):
            c0 = time.process_time()
            run_batch(g, pairs, work / f"out_{name}.csv", tables=tables)
            best[name] = min(best.get(name, float("inf")), time.process_time() - c0)
    out = {"people": args.people, "pairs": args.pairs,
           "cpu_s": {k: round(v, 2) for k, v in best.items()},
           "ratio_six_loci_vs_class_i": round(best["six_loci"] / best["class_i_only"], 2)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
