#!/usr/bin/env python
"""Benchmark of ``kirmatch persons`` (not a test; see benchmarks/README.md).

Two cohorts of ``--people`` people (default 20,000):

* ``registry``: the cohort of ``bench_batch.py`` (two common 2-field HLA-A, -B
  and -C alleles each, drawn with approximate registry frequencies, and a KIR
  gene-content profile from nine common genotypes);
* ``mixed``: ``tests/data/make_golden.py``'s ``random_people`` (1-field
  typings, allele lists, null alleles, missing loci, allele-level and per-gene
  KIR with unknown genes, untyped KIR): the unresolved paths.

For each it measures, in process and with the engine of ``kirmatch batch``
(:class:`kirmatch.engine.Engine`):

1. ``read``: reading and parsing the genotypes file (:func:`kirmatch.people.load_people`);
2. ``prepare``: resolving every distinct typing and computing the person facts
   (``Engine.prepare``, shared with ``batch``);
3. ``table``: the per-person table itself (``Engine.assess_persons`` on every
   person: the person-scope models, warnings and errors) - the throughput the
   target (200,000 people/s) is about;
4. ``write``: writing the table as CSV;

and end to end, ``kirmatch persons --quiet`` CSV -> CSV in a fresh subprocess
(interpreter start, imports and table checksums included).

Usage::

    python benchmarks/bench_persons.py                 # 20,000 people
    python benchmarks/bench_persons.py --people 200000 --json results.json

Run it with the kirmatch to measure importable (``PYTHONPATH=. python ...`` in
a source tree): the subprocess inherits the environment.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _module(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_cohorts(n: int, workdir: Path) -> dict[str, Path]:
    """``registry.csv`` (bench_batch's cohort) and ``mixed.csv`` (random_people)."""
    bench_batch = _module(HERE / "bench_batch.py", "bench_batch")
    golden = _module(HERE.parent / "tests" / "data" / "make_golden.py", "make_golden")
    sub = workdir / "registry"
    sub.mkdir(exist_ok=True)
    registry, _ = bench_batch.make_cohort(n, 1, sub)
    mixed = workdir / "mixed.csv"
    import csv

    with open(mixed, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sample_id", "hla", "kir"])
        w.writerows(golden.random_people(random.Random(2024), n))
    return {"registry": registry, "mixed": mixed}


def in_process(genotypes: Path, workdir: Path, repeat: int) -> dict[str, Any]:
    """The phases of one run, timed in process (the table step best of ``repeat``)."""
    import numpy as np

    from kirmatch import Options, load_reference_tables
    from kirmatch.engine import Engine
    from kirmatch.output import TableWriter
    from kirmatch.people import load_people
    from kirmatch.persons import _chunks, _entries

    t = load_reference_tables()
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    people = load_people(genotypes, t)
    out["read_s"] = time.perf_counter() - t0
    n = len(people)
    t0 = time.perf_counter()
    engine = Engine(people, Options(), t)
    engine.prepare()
    out["prepare_s"] = time.perf_counter() - t0
    idx = np.arange(n)
    t0 = time.perf_counter()
    engine.assess_persons(idx)              # first call fills the model tables
    out["table_first_s"] = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeat):                 # later calls: lookup and broadcast only
        t0 = time.perf_counter()
        engine.assess_persons(idx)
        best = min(best, time.perf_counter() - t0)
    out["table_s"] = best
    t0 = time.perf_counter()
    with TableWriter(workdir / f"{genotypes.stem}_persons.csv") as w:
        for table, _, _ in _chunks(engine, _entries(people), 100_000):
            w.write(table)
    out["table_and_write_s"] = time.perf_counter() - t0
    res = {k: round(v, 3) for k, v in out.items()}
    res.update({
        "people": n,
        "errors": int(engine.error_mask.sum()),
        "distinct_fact_combinations": {
            name: int((tab.cells >= 0).sum()) for (name, k), tab in engine._tables.items()
            if k == 0 and name.startswith("person_")},
        "table_people_per_s": round(n / out["table_first_s"]),
        "table_people_per_s_warm": round(n / best),
        "prepare_and_table_people_per_s": round(n / (out["prepare_s"] + out["table_first_s"])),
    })
    return res


def end_to_end(genotypes: Path, workdir: Path) -> dict[str, Any]:
    """``kirmatch persons --quiet`` in a fresh subprocess."""
    out = workdir / f"{genotypes.stem}_cli.csv"
    cmd = [sys.executable, "-m", "kirmatch.cli.main", "persons", "--genotypes",
           str(genotypes), "--output", str(out), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"kirmatch persons failed ({proc.returncode}):\n{proc.stderr}")
    with open(out, "rb") as fh:
        n = sum(1 for _ in fh) - 1
    return {"rows": n, "wall_s": round(wall, 2), "people_per_s": round(n / wall)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3, help="warm repeats of the table step")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kirmatch-bench-persons-"))
    workdir.mkdir(parents=True, exist_ok=True)
    import kirmatch

    bench_batch = _module(HERE / "bench_batch.py", "bench_batch")
    results: dict[str, Any] = {
        "machine": bench_batch.machine(),
        "kirmatch": kirmatch.__file__,
        "people": args.people,
    }
    try:
        for name, path in write_cohorts(args.people, workdir).items():
            r = in_process(path, workdir, args.repeat)
            r["end_to_end"] = end_to_end(path, workdir)
            results[name] = r
            print(f"{name:>8}: table {r['table_people_per_s']:>10,} people/s "
                  f"(warm {r['table_people_per_s_warm']:,}); prepare+table "
                  f"{r['prepare_and_table_people_per_s']:,} people/s; read {r['read_s']} s, "
                  f"prepare {r['prepare_s']} s; end to end {r['end_to_end']['wall_s']} s",
                  file=sys.stderr)
        bench_batch.emit(results, args.json)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
