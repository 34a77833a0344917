"""The batch engine on Dask: each worker prepares the cohort once.

:func:`write_partitions` assesses every partition of a Dask dataframe of
pairs and has each worker write its partitions' results as Parquet files (the
rows of :func:`kirmatch.batch.run_batch`, at its speed on each worker);
:func:`assess_partitions` returns them as a lazy Dask dataframe instead, equal
row for row (index, columns, values, error rows included) to
:func:`kirmatch.batch.assess_pairs` on the whole table. The user guide's
"Large cohorts, batch and Dask" section (docs/guide.md) is the recipe for a
``dask.distributed`` cluster; any scheduler works:

>>> import pandas as pd
>>> import dask.dataframe as dd
>>> genotypes = pd.DataFrame({
...     "sample_id": ["R1", "D1"],
...     "hla": ["A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01",
...             "A*02:01+A*11:01^B*07:02+B*35:01^C*07:02+C*04:01"],
...     "kir": ["", "KIR2DL1+KIR2DL3+KIR3DL1+KIR2DS4+KIR2DL4+KIR3DL2+KIR3DL3"]})
>>> pairs = dd.from_pandas(pd.DataFrame({"recipient_id": ["R1", "R1"],
...                                      "donor_id": ["D1", "D9"]}), npartitions=2)
>>> results = assess_partitions(genotypes, pairs)       # lazy
>>> out = results.compute(scheduler="sync")
>>> out[["donor_id", "status", "hvg_mismatched_ligands", "cf_ikir"]].values.tolist()
[['D1', 'ok', 'Bw4', '3'], ['D9', 'error', '', '']]

How it works
------------
* The genotypes, options and antibody panels travel in the task graph **once**,
  as one task that every partition depends on (Dask sends its value to each
  worker once), never once per partition.
* On each worker *process* the first partition builds a
  :class:`~kirmatch.batch.PreparedCohort` (people parsed, every distinct typing
  resolved; antibody panels are screened as their recipients first appear) and
  keeps it in a small per-process cache keyed by a token of the inputs; every
  later partition, and later computations with the same inputs, reuse it. This
  works the same with the distributed, threaded, multiprocessing and
  synchronous schedulers. Threads of one process share the cohort and take
  turns with it (the engine fills its tables as it goes).
* py-ard is never pickled: each worker opens its own backend (lazily, only if a
  typing needs it, e.g. a MAC code or a v2 name) from ``pyard_dir``, or without
  one from the worker's default folder (``$KIRMATCH_PYARD_DIR`` or the user
  cache), as the CLI does. The folder must exist on every worker.

Dask is imported only here; ``import kirmatch`` never needs it.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from kirmatch.batch import OUTPUT_COLUMNS, PreparedCohort, check_pair_columns, result_frame
from kirmatch.dsa import Antibody
from kirmatch.errors import EnvironmentFault, InputSchemaError, KirmatchError, UsageError
from kirmatch.options import Options
from kirmatch.people import People
from kirmatch.tables import ReferenceTables

__all__ = ["assess_partitions", "cache_info", "clear_cache", "write_partitions"]

#: Prepared cohorts kept per process (least recently used dropped first).
CACHE_SIZE = 4


@dataclass(frozen=True)
class CohortSpec:
    """What a worker needs to prepare the cohort; pickled once per worker."""

    token: str
    genotypes: Any                      # pandas DataFrame or People
    options: Options
    antibodies: Mapping[str, Sequence[Antibody] | KirmatchError] | None
    pyard_dir: str | None               # None: the worker's default folder
    tables: ReferenceTables | None      # None: the shipped tables, loaded on the worker


class _Entry:
    __slots__ = ("cohort", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cohort: PreparedCohort | None = None


_CACHE: OrderedDict[str, _Entry] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_STATS: Counter[str] = Counter()


def assess_partitions(
    genotypes: Any,
    pairs: Any,
    options: Options | None = None,
    *,
    pyard_dir: str | os.PathLike[str] | None = None,
    antibodies: Mapping[str, Sequence[Antibody] | KirmatchError] | None = None,
    tables: ReferenceTables | None = None,
) -> Any:
    """Assess every partition of a Dask dataframe of pairs (lazily).

    The arguments are those of :func:`kirmatch.batch.assess_pairs`, except that
    ``pairs`` is a ``dask.dataframe.DataFrame`` and py-ard is given as a folder.

    Parameters
    ----------
    genotypes:
        A pandas DataFrame (or :class:`~kirmatch.people.People`) of the whole
        cohort: the small side, shipped to each worker once.
    pairs:
        A Dask dataframe with ``recipient_id``, ``donor_id`` and any other
        columns (kept as they are), e.g. from ``dd.read_csv(..., dtype=str,
        keep_default_na=False)`` or ``dd.read_parquet``.
    options, antibodies, tables:
        As for :func:`~kirmatch.batch.assess_pairs`. ``tables=None`` loads the
        shipped tables on each worker; given tables are shipped.
    pyard_dir:
        The py-ard database folder each worker opens (lazily); ``None`` = the
        worker's default folder, as the CLI uses. The single-process run that
        this equals is ``assess_pairs(..., pyard=get_backend(pyard_dir))``.

    Returns
    -------
    dask.dataframe.DataFrame
        Lazy; partitions and index those of ``pairs``. Computed, it equals
        ``assess_pairs`` on the whole table row for row. Row numbers in
        ``flow_crossmatch`` errors count over the whole table: with that column
        the partition lengths are counted first (one extra pass over the pairs).

    Raises
    ------
    InputSchemaError
        ``pairs`` lacks ``recipient_id``/``donor_id`` or has an output column
        (raised here, before anything runs).
    TypeError
        An argument has the wrong type.
    """
    spec, offsets = _plan(genotypes, pairs, options, pyard_dir, antibodies, tables)
    meta = result_frame(pairs._meta, dict.fromkeys(OUTPUT_COLUMNS, pa.array([], pa.string())))
    return pairs.map_partitions(_assess_partition, spec, offsets, meta=meta,
                                align_dataframes=False)


def write_partitions(
    genotypes: Any,
    pairs: Any,
    folder: str | os.PathLike[str],
    options: Options | None = None,
    *,
    pyard_dir: str | os.PathLike[str] | None = None,
    antibodies: Mapping[str, Sequence[Antibody] | KirmatchError] | None = None,
    tables: ReferenceTables | None = None,
) -> Any:
    """Assess every partition of a Dask dataframe of pairs and write each one
    to ``folder`` as a Parquet file, on the worker that assessed it (lazily).

    The way to write a cluster run's results: each partition's rows go from the
    engine's Arrow dictionary columns straight to ``part.NNNNN.parquet`` (the
    Parquet :func:`kirmatch.batch.run_batch` writes), never through pandas
    text, so each worker runs at ``run_batch`` speed. Read back in file-name
    order (``pandas.read_parquet(folder)``, ``pyarrow.dataset``), the rows equal
    ``run_batch``'s output row for row; like ``run_batch``, the pairs' index is
    not written (keep ids as columns). Every part file has the pair columns'
    types of the frame's meta.

    The parts are written to a hidden folder inside ``folder`` and moved into it
    only when every partition is written; then ``_kirmatch_run.json`` records
    the row counts, options, rules and reference tables. So a run is complete
    when that file exists, and a failed run leaves no part file in ``folder``:
    only its hidden ``.kirmatch-partial-…`` folder, which must be removed before
    the folder is used again.

    Parameters
    ----------
    genotypes, pairs, options, pyard_dir, antibodies, tables:
        As for :func:`assess_partitions`.
    folder:
        A folder that does not exist yet or is empty (created now), at the same
        path on every worker; a relative path is taken from this process's
        working folder.

    Returns
    -------
    dask.delayed.Delayed
        ``.compute()`` writes the files and returns the row counts: ``rows``,
        ``ok``, ``error``, ``error_codes`` and ``files``.

    Raises
    ------
    InputSchemaError
        As for :func:`assess_partitions`.
    UsageError
        ``folder`` is a file or holds anything (now, or another run's files
        when the parts are moved into it).
    EnvironmentFault
        ``folder`` cannot be created or written.
    TypeError
        An argument has the wrong type.
    """
    import dask

    from kirmatch.api import check_path

    check_path("folder", folder)
    spec, offsets = _plan(genotypes, pairs, options, pyard_dir, antibodies, tables)
    out = Path(folder).absolute()     # the workers' working folders are not this one
    if out.exists() and not out.is_dir():
        raise UsageError(f"{str(out)!r} is a file; write_partitions writes a folder of "
                         "Parquet files")
    try:
        inside = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        if inside:
            hint = (" (a failed run's partitions: remove it)"
                    if inside[0].startswith(_STAGING) else "")
            raise UsageError(f"folder {str(out)!r} is not empty (it holds {inside[0]!r}"
                             f"{hint}); write each run's partitions to a new or empty folder")
        out.mkdir(parents=True, exist_ok=True)
        # the parts are written here and moved into the folder when all are written;
        # it also reserves the folder: another run refuses it as not empty
        staging = out / f"{_STAGING}{secrets.token_hex(6)}"
        staging.mkdir()
    except OSError as exc:
        raise EnvironmentFault(f"cannot write in folder {str(out)!r}: {exc.strerror}") \
            from exc
    schema = _pair_schema(pairs)
    width = max(5, len(str(pairs.npartitions - 1)))
    parts = [dask.delayed(_write_partition, pure=False)(
                 part, spec, offsets, i, str(staging / f"part.{i:0{width}d}.parquet"), schema)
             for i, part in enumerate(pairs.to_delayed())]
    return dask.delayed(_write_summary, pure=False)(parts, spec, str(out), str(staging))


#: Name prefix of the hidden folder a run writes its parts to (readers of the
#: folder - pandas, pyarrow.dataset - skip names that begin with a dot).
_STAGING = ".kirmatch-partial-"


def _pair_schema(pairs: Any) -> pa.Schema:
    """The pair columns' Arrow types, from the Dask frame's meta (a column
    without values there, Python objects, is text): every part file has them."""
    from kirmatch.io import arrow_from_pandas

    meta = arrow_from_pandas(pairs._meta).schema
    return pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f
                      for f in meta])


def _conform(table: pa.Table, schema: pa.Schema, number: int) -> pa.Table:
    """``table``'s pair columns cast to the run's types (a partition whose
    column pandas read as all-missing, or as numbers, holds another type)."""
    for i, field in enumerate(schema):
        col = table.column(i)
        if col.type == field.type:
            continue
        try:
            table = table.set_column(i, field.name, col.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputSchemaError(
                f"pairs column {field.name!r} holds {col.type} values in partition {number} "
                f"and {field.type} in the frame's meta; give the column one dtype "
                "(e.g. dd.read_csv(..., dtype=str))", column=field.name) from exc
    return table


def _plan(genotypes: Any, pairs: Any, options: Options | None, pyard_dir: Any,
          antibodies: Any, tables: Any) -> tuple[Any, Any]:
    """Check the arguments; the cohort spec (one task every partition depends on)
    and, with ``flow_crossmatch``, the rows before each partition."""
    import dask
    import dask.dataframe as dd
    import pandas as pd

    from kirmatch.api import check_mapping, check_path, check_type

    check_type("genotypes", genotypes, (pd.DataFrame, People),
               expected="a pandas DataFrame or kirmatch.people.People")
    check_type("pairs", pairs, dd.DataFrame, expected="a dask DataFrame")
    opts = check_type("options", options, Options, none_ok=True) or Options()
    check_path("pyard_dir", pyard_dir, none_ok=True)
    check_mapping("antibodies", antibodies, none_ok=True)
    check_type("tables", tables, ReferenceTables, none_ok=True)
    check_pair_columns([str(c) for c in pairs.columns])
    folder = None if pyard_dir is None else os.fspath(Path(pyard_dir).absolute())
    token = dask.base.tokenize(genotypes, sorted(opts.to_dict().items()), antibodies, folder,
                               None if tables is None else tables.provenance())
    spec = dask.delayed(CohortSpec(token, genotypes, opts, antibodies, folder, tables),
                        name=f"kirmatch-cohort-{token}")
    offsets = None
    if "flow_crossmatch" in pairs.columns:
        lengths = pairs.map_partitions(len, meta=(None, "int64")).to_delayed()
        offsets = dask.delayed(_offsets)(lengths)
    return spec, offsets


def _offsets(lengths: Sequence[Any]) -> list[int]:
    """Rows before each partition (``lengths``: one value, or a one-row Series, each)."""
    out, total = [], 0
    for n in lengths:
        out.append(total)
        total += int(n.iloc[0]) if hasattr(n, "iloc") else int(n)
    return out


def _assess_partition(part: Any, spec: CohortSpec, offsets: Sequence[int] | None,
                      partition_info: Mapping[str, Any] | None = None) -> Any:
    """One partition through this process's prepared cohort."""
    first_row = 1
    if offsets is not None and partition_info is not None:
        first_row = offsets[partition_info["number"]] + 1
    entry = _entry(spec)
    with entry.lock:
        assert entry.cohort is not None
        out = entry.cohort.assess(part, first_row=first_row)
        _STATS["partitions"] += 1
        _STATS["rows"] += len(part)
    return out


def _write_partition(part: Any, spec: CohortSpec, offsets: Sequence[int] | None, number: int,
                     path: str, schema: pa.Schema) -> dict[str, Any]:
    """One partition through this process's prepared cohort, written to ``path``
    (its pair columns of the types in ``schema``)."""
    from kirmatch.output import TableWriter

    first_row = 1 if offsets is None else offsets[number] + 1
    entry = _entry(spec)
    codes: Counter[str] = Counter()
    rows = errors = 0
    with entry.lock, TableWriter(path) as writer:   # the file appears whole, or not at all
        assert entry.cohort is not None
        for table, res in entry.cohort.assess_tables(part, first_row=first_row):
            writer.write(_conform(table, schema, number))
            codes.update(res.error_codes)
            rows += table.num_rows
            errors += res.n_error
        _STATS["partitions"] += 1
        _STATS["rows"] += len(part)
    return {"rows": rows, "error": errors, "error_codes": dict(codes),
            "file": os.path.basename(path)}


def _write_summary(parts: Sequence[Mapping[str, Any]], spec: CohortSpec, folder: str,
                   staging: str) -> dict[str, Any]:
    """Every partition written: move the parts into ``folder``, then write the
    run record ``_kirmatch_run.json`` (row counts, options, rules, tables)."""
    from kirmatch import __version__
    from kirmatch.output import write_text
    from kirmatch.pair import run_record
    from kirmatch.tables import load_reference_tables

    out, stage = Path(folder), Path(staging)
    strangers = sorted(p.name for p in out.iterdir() if p != stage)
    if strangers:
        raise UsageError(f"folder {folder!r} received {strangers[0]!r} while this run wrote "
                         f"its partitions (kept in {stage.name!r}); was another run writing "
                         "there?")
    for p in parts:
        os.replace(stage / p["file"], out / p["file"])
    stage.rmdir()
    codes: Counter[str] = Counter()
    for p in parts:
        codes.update(p["error_codes"])
    rows = sum(p["rows"] for p in parts)
    errors = sum(p["error"] for p in parts)
    summary = {"rows": rows, "ok": rows - errors, "error": errors,
               "error_codes": dict(sorted(codes.items())),
               "files": [p["file"] for p in parts]}
    tables = spec.tables or load_reference_tables()
    record = {"kirmatch_version": __version__, **summary,
              "options": run_record(spec.options, tables),
              "reference_tables": tables.provenance(),
              "pyard_dir": spec.pyard_dir}
    write_text(out / "_kirmatch_run.json",
               json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return summary


def _entry(spec: CohortSpec) -> _Entry:
    """This process's prepared cohort for ``spec`` (built by the first caller)."""
    with _CACHE_LOCK:
        entry = _CACHE.get(spec.token)
        if entry is None:
            entry = _CACHE[spec.token] = _Entry()
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(spec.token)
    with entry.lock:
        if entry.cohort is None:
            from kirmatch.pyard_backend import get_backend

            pyard = get_backend(None if spec.pyard_dir is None else spec.pyard_dir)
            cohort = PreparedCohort.build(spec.genotypes, spec.options, tables=spec.tables,
                                          pyard=pyard, antibodies=spec.antibodies)
            cohort.engine.prepare()
            entry.cohort = cohort
            _STATS["builds"] += 1
    return entry


def cache_info() -> dict[str, int]:
    """This process's counters: cohorts ``built``, ``partitions`` and ``rows``
    assessed, cohorts ``cached``. On a cluster: ``client.run(cache_info)``."""
    with _CACHE_LOCK:
        return {"built": _STATS["builds"], "partitions": _STATS["partitions"],
                "rows": _STATS["rows"], "cached": len(_CACHE)}


def clear_cache() -> None:
    """Drop this process's prepared cohorts and reset the counters
    (``client.run(clear_cache)`` on a cluster)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _STATS.clear()
