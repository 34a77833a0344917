"""The batch engine on Dask: each worker prepares the cohort once.

:func:`assess_partitions` turns a Dask dataframe of pairs into a Dask
dataframe of results, equal row for row (index, columns, values, error rows
included) to :func:`kirmatch.batch.assess_pairs` on the whole table. The
README's "On a cluster (Dask)" section is the recipe for a
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

import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kirmatch.batch import OUTPUT_COLUMNS, PreparedCohort, check_pair_columns, result_frame
from kirmatch.dsa import Antibody
from kirmatch.errors import KirmatchError
from kirmatch.options import Options
from kirmatch.people import People
from kirmatch.tables import ReferenceTables

__all__ = ["assess_partitions", "cache_info", "clear_cache"]

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
    import dask
    import dask.dataframe as dd
    import pandas as pd
    import pyarrow as pa

    from kirmatch.api import check_mapping, check_path, check_type

    check_type("genotypes", genotypes, (pd.DataFrame, People),
               expected="a pandas DataFrame or kirmatch.people.People")
    check_type("pairs", pairs, dd.DataFrame, expected="a dask DataFrame")
    opts = check_type("options", options, Options, none_ok=True) or Options()
    check_path("pyard_dir", pyard_dir, none_ok=True)
    check_mapping("antibodies", antibodies, none_ok=True)
    check_type("tables", tables, ReferenceTables, none_ok=True)
    check_pair_columns([str(c) for c in pairs.columns])
    folder = None if pyard_dir is None else os.fspath(pyard_dir)
    token = dask.base.tokenize(genotypes, sorted(opts.to_dict().items()), antibodies, folder,
                               None if tables is None else tables.provenance())
    spec = dask.delayed(CohortSpec(token, genotypes, opts, antibodies, folder, tables),
                        name=f"kirmatch-cohort-{token}")
    offsets = None
    if "flow_crossmatch" in pairs.columns:
        lengths = pairs.map_partitions(len, meta=(None, "int64")).to_delayed()
        offsets = dask.delayed(_offsets)(lengths)
    meta = result_frame(pairs._meta, dict.fromkeys(OUTPUT_COLUMNS, pa.array([], pa.string())))
    return pairs.map_partitions(_assess_partition, spec, offsets, meta=meta,
                                align_dataframes=False)


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
