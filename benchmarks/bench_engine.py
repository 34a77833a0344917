#!/usr/bin/env python
"""The engine v2 targets (issue 10), measured side by side in one run.

Not a test: it prints each figure, its target and whether it is met. See
benchmarks/README.md. Every kirmatch and pyarrow measurement runs in a fresh
subprocess, so no run warms the caches of another.

a. **CSV → CSV**, ``--pairs`` pairs over ``--people`` people: in-process CPU
   seconds (``time.process_time``, imports and table loading excluded) of
   :func:`kirmatch.batch.run_batch` against the **pyarrow floor**: pyarrow, one
   thread (``pa.set_cpu_count(1)``, ``use_threads=False``), reads the same
   pairs file and writes a table of the output's shape (kirmatch's own output,
   read back beforehand). Target ≤ 3×.
b. **Parquet → Parquet**, the same. Target ≤ 2×.
c. **Mixed resolution**: the same pairs with 10 % of the people typed at low
   resolution (1-field, XX, serology, allele lists, G groups at every locus)
   and 1 % with untyped KIR, against the all-high-resolution cohort (a). CPU.
   Target ≤ 1.5×.
d. **1M people**: ``kirmatch batch`` (CLI, fresh process) on ``--pairs`` pairs
   over ``--big-people`` distinct people against the same over ``--people``:
   CPU (user + sys) and peak RSS from ``/usr/bin/time -v``. Targets: peak RSS
   ≤ 1 GB, CPU ≤ 3×.
e. **Dask**: ``kirmatch.distributed.write_partitions`` (the guide's recipe:
   ``dd.read_csv`` of the pairs, each worker writing its partitions' Parquet)
   on a ``LocalCluster`` (2 worker processes, 1 thread each), ``--dask-pairs``
   pairs CSV → Parquet, against one process (``run_batch`` CSV → Parquet):
   wall seconds (the cluster is started before the clock starts; the workers
   import kirmatch and prepare the cohort on the clock). The two outputs are
   compared column by column (rows equal). Target: not slower.
f. **rank**: ``kirmatch rank -g G -p P -a A -o out.csv --quiet`` (CLI, fresh
   process) for ``--rank-recipients`` recipients × ``--rank-donors`` donors,
   each recipient with a ``--panel``-antibody panel: pairs/s from wall and
   from CPU. Target ≥ 10,000 pairs/s.

A missed target is profiled (cProfile of the same in-process run; CLI runs are
profiled through ``python -m cProfile``) and its top costs printed as
``file:function``.

Usage::

    python benchmarks/bench_engine.py --workdir /tmp/kbe          # the targets' sizes
    python benchmarks/bench_engine.py --quick --workdir /tmp/kbq  # a tenth of them
    python benchmarks/bench_engine.py --only a b --workdir /tmp/kbe

Inputs are generated once per ``--workdir`` and reused (generation of the
4M-pair and 1M-people files takes a minute or two).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_batch import (  # noqa: E402
    _FW,
    HLA_A,
    HLA_B,
    HLA_C,
    KIR_PROFILES,
    _pick,
    emit,
    machine,
    make_cohort,
)
from bench_dsa import write_panels  # noqa: E402

TARGETS = {"a": ("CSV -> CSV vs pyarrow floor (CPU)", 3.0, "<="),
           "b": ("Parquet -> Parquet vs pyarrow floor (CPU)", 2.0, "<="),
           "c": ("10% low-res + 1% untyped KIR vs all high-res (CPU)", 1.5, "<="),
           "d_rss": ("1M people: peak RSS (MB)", 1024.0, "<="),
           "d_cpu": ("1M people vs 20k people (CPU)", 3.0, "<="),
           "e": ("Dask 2 workers vs one process (wall)", 1.0, "<="),
           "f": ("rank pairs/s (wall)", 10_000.0, ">=")}


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def pairs_parquet(csv: Path) -> Path:
    """The pairs CSV as Parquet (all columns text, as kirmatch reads CSV)."""
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    out = csv.with_suffix(".parquet")
    if not out.exists():
        names = csv.open().readline().strip().split(",")
        table = pv.read_csv(csv, convert_options=pv.ConvertOptions(
            column_types=dict.fromkeys(names, "string")))
        pq.write_table(table, out)
    return out


def _low_res_forms(allele: str, rng: random.Random, valid: Any) -> str:
    """A low-resolution typing that includes ``allele`` (1-field, XX, serology,
    allele list or G group), checked with ``valid``; 1-field when none is."""
    locus, rest = allele.split("*")
    first, second = rest.split(":")[:2]
    sero = f"{'Cw' if locus == 'C' else locus}{int(first)}"
    forms = [f"{locus}*{first}", f"{locus}*{first}:XX", sero,
             f"{allele}/{locus}*{first}:{int(second) % 99 + 1:02d}", f"{allele}:01G"]
    rng.shuffle(forms)
    return next((f for f in forms if valid(f)), f"{locus}*{first}")


def make_mixed(genotypes: Path, out: Path, seed: int = 7) -> Path:
    """``genotypes`` with 10 % of the people typed at low resolution (every
    allele) and 1 % with untyped KIR; same ids."""
    if out.exists():
        return out
    from kirmatch import load_reference_tables
    from kirmatch.errors import KirmatchError
    from kirmatch.hla import parse_hla_typing
    from kirmatch.ligands import LigandResolver

    resolver = LigandResolver(load_reference_tables())
    seen: dict[str, bool] = {}

    def valid(text: str) -> bool:
        if text not in seen:
            try:
                resolver.resolve_typing(parse_hla_typing(text))
                seen[text] = True
            except (KirmatchError, ValueError):
                seen[text] = False
        return seen[text]

    rng = random.Random(seed)
    lines = genotypes.read_text(encoding="utf-8").splitlines()
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(lines[0] + "\n")
        for line in lines[1:]:
            sid, hla, kir = line.split(",")
            if rng.random() < 0.10:
                hla = "^".join("+".join(_low_res_forms(a, rng, valid) for a in locus.split("+"))
                               for locus in hla.split("^"))
            if rng.random() < 0.01:
                kir = ""
            fh.write(f"{sid},{hla},{kir}\n")
    return out


def make_rank_inputs(work: Path, n_rec: int, n_don: int, panel: int, seed: int = 11
                     ) -> tuple[Path, Path, Path]:
    """Genotypes of ``n_rec`` recipients and ``n_rec * n_don`` donors, the pairs with
    clinical columns, and a ``panel``-antibody screen per recipient."""
    g, p, a = (work / f"rank_{n_rec}x{n_don}_{k}.csv" for k in ("g", "p", f"a{panel}"))
    rng = random.Random(seed)
    names = list(KIR_PROFILES)
    kw = [KIR_PROFILES[k][0] for k in names]
    if not g.exists():
        with open(g, "w", encoding="utf-8") as fh:
            fh.write("sample_id,hla,kir\n")
            ids = [f"R{i:06d}" for i in range(n_rec)] + \
                [f"D{i:07d}" for i in range(n_rec * n_don)]
            for sid in ids:
                hla = "^".join(f"{_pick(rng, pool)}+{_pick(rng, pool)}"
                               for pool in (HLA_A, HLA_B, HLA_C))
                kir = "+".join(sorted(KIR_PROFILES[rng.choices(names, weights=kw)[0]][1] + _FW))
                fh.write(f"{sid},{hla},{kir}\n")
    if not p.exists():
        with open(p, "w", encoding="utf-8") as fh:
            fh.write("recipient_id,donor_id,donor_age,donor_sex,recipient_sex,relationship,"
                     "donor_cmv,recipient_cmv,donor_abo,recipient_abo\n")
            for i in range(n_rec):
                for k in range(n_don):
                    fh.write(f"R{i:06d},D{i * n_don + k:07d},{rng.randint(18, 70)},"
                             f"{rng.choice('MF')},{rng.choice('MF')},"
                             f"{rng.choice(['sibling', 'child', 'father', 'mother'])},"
                             f"{rng.choice(['pos', 'neg'])},{rng.choice(['pos', 'neg'])},"
                             f"{rng.choice(['O', 'A', 'B', 'AB'])},"
                             f"{rng.choice(['O', 'A', 'B', 'AB'])}\n")
    if not a.exists():
        write_panels(a, [f"R{i:06d}" for i in range(n_rec)], panel, rng)
    return g, p, a


# ---------------------------------------------------------------------------
# Runners (each in a fresh process)
# ---------------------------------------------------------------------------

def _child(mode: str, *args: str, profile: Path | None = None) -> dict[str, Any]:
    """Run ``bench_engine.py _MODE args`` in a fresh interpreter; its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), f"_{mode}", *args]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child_batch(args: list[str]) -> None:
    """In-process CPU of run_batch (imports and tables outside the clock)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("genotypes")
    ap.add_argument("pairs")
    ap.add_argument("output")
    ap.add_argument("--profile", type=Path)
    a = ap.parse_args(args)
    from kirmatch.batch import run_batch
    from kirmatch.tables import load_reference_tables

    tables = load_reference_tables()
    Path(a.output).unlink(missing_ok=True)  # neither run pays for freeing an old output
    prof = _profiler(a.profile)
    c0, w0 = time.process_time(), time.perf_counter()
    s = run_batch(a.genotypes, a.pairs, a.output, tables=tables)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    _dump_profile(prof, a.profile)
    print(json.dumps({"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "rows": s.rows_in,
                      "errors": s.rows_error,
                      "output_mb": round(Path(a.output).stat().st_size / 2**20, 1)}))


def _child_floor(args: list[str]) -> None:
    """pyarrow alone, one thread: read the pairs, write a table of the output's shape."""
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs")
    ap.add_argument("reference_output")
    ap.add_argument("output")
    a = ap.parse_args(args)
    import pyarrow as pa
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    parquet = a.pairs.endswith(".parquet")

    def read(path: str) -> pa.Table:
        if parquet:
            return pq.read_table(path, use_threads=False)
        with open(path, encoding="utf-8") as fh:
            names = fh.readline().rstrip("\n").split(",")
        return pv.read_csv(path, read_options=pv.ReadOptions(use_threads=False),
                           convert_options=pv.ConvertOptions(
                               column_types=dict.fromkeys(names, pa.string())))

    shaped = read(a.reference_output)          # untimed: the table to write
    Path(a.output).unlink(missing_ok=True)
    c0, w0 = time.process_time(), time.perf_counter()
    pairs = read(a.pairs)
    if parquet:
        pq.write_table(shaped, a.output)
    else:
        pv.write_csv(shaped, a.output)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    print(json.dumps({"cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                      "rows_read": pairs.num_rows, "rows_written": shaped.num_rows,
                      "output_mb": round(Path(a.output).stat().st_size / 2**20, 1)}))


def _child_dask(args: list[str]) -> None:
    """write_partitions on a 2-worker LocalCluster, CSV -> Parquet (wall)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("genotypes")
    ap.add_argument("pairs")
    ap.add_argument("output")
    ap.add_argument("--blocksize", default="8MB")
    ap.add_argument("--profile", type=Path)
    a = ap.parse_args(args)
    import dask.dataframe as dd
    from dask.distributed import Client, LocalCluster

    from kirmatch.distributed import cache_info, write_partitions
    from kirmatch.io import read_table

    w0 = time.perf_counter()
    with LocalCluster(n_workers=DASK_WORKERS, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        start = time.perf_counter() - w0
        w1 = time.perf_counter()
        genotypes = read_table(a.genotypes)
        pairs = dd.read_csv(a.pairs, dtype=str, keep_default_na=False, engine="pyarrow",
                            blocksize=a.blocksize)     # as the guide's recipe reads them
        write_partitions(genotypes, pairs, a.output).compute()
        wall = time.perf_counter() - w1
        info = client.run(cache_info)
    print(json.dumps({"wall_s": round(wall, 2), "cluster_start_s": round(start, 2),
                      "partitions": pairs.npartitions, "workers": info}))


def _child_wall(args: list[str]) -> None:
    """run_batch in one process, CSV -> Parquet (wall, from a cold interpreter)."""
    w0 = time.perf_counter()
    from kirmatch.batch import run_batch

    s = run_batch(args[0], args[1], args[2])
    print(json.dumps({"wall_s": round(time.perf_counter() - w0, 2), "rows": s.rows_in}))


def _profiler(path: Path | None) -> Any:
    if path is None:
        return None
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    return prof


def _dump_profile(prof: Any, path: Path | None) -> None:
    if prof is not None and path is not None:
        prof.disable()
        prof.dump_stats(str(path))


def cli_timed(args: list[str], cwd: Path, *, profile: Path | None = None) -> dict[str, Any]:
    """A kirmatch CLI run in a fresh process: wall, CPU (user + sys), peak RSS."""
    head = [sys.executable, "-m", "kirmatch.cli.main"]
    if profile is not None:
        head = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "kirmatch.cli.main"]
    timer = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None
    cmd = [timer, "-v", *head, *args] if timer else [*head, *args]
    r0 = _children_usage()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"kirmatch {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    r1 = _children_usage()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return {"wall_s": round(wall, 2), "cpu_s": round(r1[0] - r0[0], 2),
            "peak_rss_mb": round(int(rss.group(1)) / 1024, 1) if rss else
            round(r1[1] / 1024, 1)}


def _children_usage() -> tuple[float, int]:
    import resource

    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime, u.ru_maxrss


def top_costs(profile: Path, n: int = 12) -> list[str]:
    """The ``n`` costliest functions of a cProfile dump (own time), as
    ``file:line:function  own s  cumulative s  calls``."""
    import pstats

    st = pstats.Stats(str(profile))
    rows = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]  # type: ignore[attr-defined]
    out = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in rows:
        short = re.sub(r".*/(site-packages|lib/python3\.\d+|wt-[^/]+|main)/", "", file)
        out.append(f"{short}:{line}:{func}  own {tt:.2f} s  cum {ct:.2f} s  calls {nc}")
    return out


def top_cumulative(profile: Path, n: int = 12, within: str = "kirmatch") -> list[str]:
    """The ``n`` functions of ``within`` with the largest cumulative time."""
    import pstats

    st = pstats.Stats(str(profile))
    rows = [kv for kv in st.stats.items() if within in kv[0][0]]  # type: ignore[attr-defined]
    rows.sort(key=lambda kv: kv[1][3], reverse=True)
    out = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in rows[:n]:
        short = file[file.index(within):] if within in file else file
        out.append(f"{short}:{line}:{func}  cum {ct:.2f} s  own {tt:.2f} s  calls {nc}")
    return out


# ---------------------------------------------------------------------------
# The targets
# ---------------------------------------------------------------------------

def _verdict(key: str, value: float) -> dict[str, Any]:
    what, target, op = TARGETS[key]
    met = value <= target if op == "<=" else value >= target
    print(f"[{key}] {what}: {value:,.2f} (target {op} {target:,g}) -> "
          f"{'MET' if met else 'NOT MET'}", file=sys.stderr)
    return {"value": round(value, 3), "target": f"{op} {target:g}", "met": met}


def _report_profile(key: str, prof: Path, results: dict[str, Any]) -> None:
    results[f"profile_{key}"] = {"top_own": top_costs(prof),
                                 "top_cumulative_kirmatch": top_cumulative(prof)}
    got = results[f"profile_{key}"]
    print(f"[{key}] profile, own time:\n  " + "\n  ".join(got["top_own"]) +
          "\n  cumulative (kirmatch):\n  " + "\n  ".join(got["top_cumulative_kirmatch"]),
          file=sys.stderr)


def _profile_batch(key: str, g: Path, p: Path, work: Path, results: dict[str, Any]) -> None:
    prof = work / f"profile_{key}.prof"
    _child("batch", str(g), str(p), str(work / f"prof_out_{key}{_ext(p)}"), profile=prof)
    _report_profile(key, prof, results)


def _ext(p: Path) -> str:
    return ".parquet" if p.suffix == ".parquet" else ".csv"


def _at_least_one(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _median_run(runs: list[dict[str, Any]], key: str = "cpu_s") -> dict[str, Any]:
    """The run of median ``key`` (CPU seconds by default), with every run's
    ``key`` beside it (as ``<key>_runs``)."""
    ordered = sorted(runs, key=lambda r: r[key])
    return {**ordered[(len(ordered) - 1) // 2], f"{key}_runs": [r[key] for r in runs]}


def run_a_b(g: Path, p: Path, work: Path, results: dict[str, Any], *, fmt: str,
            profile: bool, repeat: int = 1) -> None:
    key = "a" if fmt == "csv" else "b"
    src = p if fmt == "csv" else pairs_parquet(p)
    out = work / f"out_{key}.{fmt}"
    ks, fs = [], []
    for _ in range(repeat):   # interleaved, so both sides see the same machine
        ks.append(_child("batch", str(g), str(src), str(out)))
        fs.append(_child("floor", str(src), str(out), str(work / f"floor_{key}.{fmt}")))
    k, f = _median_run(ks), _median_run(fs)
    ratio = k["cpu_s"] / f["cpu_s"]
    results[key] = {"kirmatch": k, "pyarrow_floor": f, "ratio": _verdict(key, ratio)}
    print(f"[{key}] kirmatch {k['cpu_s']} s CPU ({k['wall_s']} s wall, {k['output_mb']} MB; "
          f"runs {k['cpu_s_runs']}), floor {f['cpu_s']} s CPU ({f['output_mb']} MB; "
          f"runs {f['cpu_s_runs']})", file=sys.stderr)
    if profile and not results[key]["ratio"]["met"]:
        _profile_batch(key, g, src, work, results)


def run_c(g: Path, p: Path, work: Path, results: dict[str, Any], *, profile: bool,
          repeat: int = 1) -> None:
    mixed = make_mixed(g, work / "genotypes_mixed.csv")
    his, los = [], []
    for _ in range(repeat):
        if "a" not in results:
            his.append(_child("batch", str(g), str(p), str(work / "out_a.csv")))
        los.append(_child("batch", str(mixed), str(p), str(work / "out_c.csv")))
    hi = results["a"]["kirmatch"] if "a" in results else _median_run(his)
    lo = _median_run(los)
    results["c"] = {"all_high_resolution": hi, "mixed": lo,
                    "ratio": _verdict("c", lo["cpu_s"] / hi["cpu_s"])}
    print(f"[c] mixed {lo['cpu_s']} s CPU (runs {lo['cpu_s_runs']}) vs all high-res "
          f"{hi['cpu_s']} s", file=sys.stderr)
    if profile and not results["c"]["ratio"]["met"]:
        _profile_batch("c", mixed, p, work, results)


def run_d(args: argparse.Namespace, g: Path, p: Path, work: Path, results: dict[str, Any]
          ) -> None:
    big = work / "big"
    big.mkdir(exist_ok=True)
    gb, pb = make_cohort(args.big_people, args.pairs, big, seed=2025)
    small = cli_timed(["batch", "--genotypes", str(g), "--pairs", str(p),
                       "--output", str(work / "out_d_small.csv"), "--quiet"], work)
    large = cli_timed(["batch", "--genotypes", str(gb), "--pairs", str(pb),
                       "--output", str(big / "out_d_big.csv"), "--quiet"], big)
    results["d"] = {"people_small": args.people, "people_large": args.big_people,
                    "small": small, "large": large,
                    "peak_rss": _verdict("d_rss", large["peak_rss_mb"]),
                    "cpu_ratio": _verdict("d_cpu", large["cpu_s"] / small["cpu_s"])}
    print(f"[d] {args.big_people:,} people: {large}; {args.people:,} people: {small}",
          file=sys.stderr)
    if args.profile and not (results["d"]["peak_rss"]["met"] and results["d"]["cpu_ratio"]["met"]):
        prof = big / "profile_d.prof"
        cli_timed(["batch", "--genotypes", str(gb), "--pairs", str(pb),
                   "--output", str(big / "prof_out_d.csv"), "--quiet"], big, profile=prof)
        _report_profile("d", prof, results)


#: Workers of the benchmark's LocalCluster.
DASK_WORKERS = 2


def _blocksize(given: str, pairs: Path, target: int) -> str:
    """``given``, or for ``auto`` the block size that cuts ``pairs`` into about
    ``target``-byte partitions, their number a multiple of the workers (as the
    guide advises: each worker gets the same share, none waits for the last)."""
    if given != "auto":
        return given
    size = pairs.stat().st_size
    parts = max(DASK_WORKERS, round(size / target / DASK_WORKERS) * DASK_WORKERS)
    return str(-(-size // parts))     # bytes; dask makes ceil(size / blocksize) blocks


def run_e(args: argparse.Namespace, g: Path, work: Path, results: dict[str, Any]) -> None:
    _, p4 = make_cohort(args.people, args.dask_pairs, work)
    one_out = work / "out_e_one.parquet"
    dask_out = work / "out_e_dask"
    ones, dasks = [], []
    for _ in range(args.repeat):    # interleaved, so both sides see the same machine
        one_out.unlink(missing_ok=True)
        ones.append(_child("wall", str(g), str(p4), str(one_out)))
        shutil.rmtree(dask_out, ignore_errors=True)
        dasks.append(_child("dask", str(g), str(p4), str(dask_out), "--blocksize",
                            _blocksize(args.blocksize, p4, args.block_target)))
    equal, digest = compare_outputs(one_out, dask_out)
    one, dsk = _median_run(ones, "wall_s"), _median_run(dasks, "wall_s")
    results["e"] = {"pairs": args.dask_pairs, "one_process": one, "dask": dsk,
                    "rows_equal": equal, "digest": digest,
                    "ratio": _verdict("e", dsk["wall_s"] / one["wall_s"])}
    print(f"[e] dask {dsk['wall_s']} s wall (runs {dsk['wall_s_runs']}; "
          f"+{dsk['cluster_start_s']} s cluster start, {dsk['partitions']} partitions) vs one "
          f"process {one['wall_s']} s (runs {one['wall_s_runs']}, run_batch); "
          f"rows equal: {equal}", file=sys.stderr)


def compare_outputs(one: Path, many: Path) -> tuple[bool, str]:
    """Column by column, as text: the single-process output and the Dask output
    (its part files in partition order). Returns (equal, a digest of the rows)."""
    import hashlib

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    a = pq.ParquetFile(one)
    parts = sorted(many.glob("*.parquet"), key=lambda f: int(re.findall(r"\d+", f.stem)[-1]))
    b = ds.dataset([str(f) for f in parts], format="parquet")
    if a.schema_arrow.names != b.schema.names:
        return False, f"columns differ: {a.schema_arrow.names} vs {b.schema.names}"
    h = hashlib.sha256()
    for name in a.schema_arrow.names:
        x = pc.cast(a.read(columns=[name]).column(0), pa.large_string()).combine_chunks()
        y = pc.cast(b.to_table(columns=[name]).column(0), pa.large_string()).combine_chunks()
        if not x.equals(y):
            return False, f"column {name} differs"
        for buf in x.buffers():
            if buf is not None:
                h.update(buf)
    return True, h.hexdigest()[:16]


def run_f(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    g, p, a = make_rank_inputs(work, args.rank_recipients, args.rank_donors, args.panel)
    n = args.rank_recipients * args.rank_donors
    cmd = ["rank", "-g", str(g), "-p", str(p), "-a", str(a), "-o", str(work / "rank_out.csv"),
           "--quiet"]
    r = cli_timed(cmd, work)
    r.update(pairs=n, pairs_per_s_wall=round(n / r["wall_s"]),
             pairs_per_s_cpu=round(n / r["cpu_s"]))
    results["f"] = {**r, "rate": _verdict("f", n / r["wall_s"])}
    print(f"[f] rank {n:,} pairs: {r}", file=sys.stderr)
    if args.profile and not results["f"]["rate"]["met"]:
        prof = work / "profile_f.prof"
        cli_timed([*cmd[:-3], "-o", str(work / "rank_prof.csv"), "--quiet"], work, profile=prof)
        _report_profile("f", prof, results)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("_"):
        {"_batch": _child_batch, "_floor": _child_floor, "_dask": _child_dask,
         "_wall": _child_wall}[argv[0]](argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=20_000)
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--big-people", type=int, default=1_000_000)
    ap.add_argument("--dask-pairs", type=int, default=4_000_000)
    ap.add_argument("--blocksize", default="auto",
                    help="Dask read_csv block size (auto: about 8 MB, the partitions a "
                         "multiple of the workers)")
    ap.add_argument("--block-target", type=int, default=8_000_000,
                    help="bytes per partition aimed at by --blocksize auto")
    ap.add_argument("--rank-recipients", type=int, default=10_000)
    ap.add_argument("--rank-donors", type=int, default=5)
    ap.add_argument("--panel", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="a tenth of every size")
    ap.add_argument("--repeat", type=_at_least_one, default=3,
                    help="runs of each side of a, b, c (median CPU) and e (median wall), "
                         "interleaved (a shared or virtual machine's timings vary from run to "
                         "run)")
    ap.add_argument("--only", nargs="+", choices=list("abcdef"), default=list("abcdef"))
    ap.add_argument("--no-profile", dest="profile", action="store_false",
                    help="do not profile missed targets")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.quick:
        for name in ("pairs", "big_people", "dask_pairs", "rank_recipients"):
            setattr(args, name, getattr(args, name) // 10)
        args.block_target //= 10
    keep = args.workdir is not None
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="kirmatch-bench-engine-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": {**machine(), "load_before": os.getloadavg()},
        "sizes": {k: getattr(args, k) for k in ("people", "pairs", "big_people", "dask_pairs",
                                                 "rank_recipients", "rank_donors", "panel")},
    }
    try:
        t0 = time.perf_counter()
        g, p = make_cohort(args.people, args.pairs, work)
        print(f"inputs ready in {time.perf_counter() - t0:.1f} s ({work})", file=sys.stderr)
        if "a" in args.only:
            run_a_b(g, p, work, results, fmt="csv", profile=args.profile, repeat=args.repeat)
        if "b" in args.only:
            run_a_b(g, p, work, results, fmt="parquet", profile=args.profile,
                    repeat=args.repeat)
        if "c" in args.only:
            run_c(g, p, work, results, profile=args.profile, repeat=args.repeat)
        if "d" in args.only:
            run_d(args, g, p, work, results)
        if "e" in args.only:
            run_e(args, g, work, results)
        if "f" in args.only:
            run_f(args, work, results)
        results["machine"]["load_after"] = os.getloadavg()
        emit(results, args.json)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
