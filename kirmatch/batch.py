"""Batch front end: every pair of a pairs table against a genotypes table.

:func:`assess_pairs` assesses one in-memory partition (a pure function: equal
inputs give equal outputs, row for row equal to :func:`kirmatch.assess_pair`);
:func:`run_batch` streams files through the engine (``kirmatch batch``). The
engine itself is :class:`kirmatch.engine.Engine`, the genotypes grammar
:mod:`kirmatch.grammar`, the reader :mod:`kirmatch.tabular`.

Row-level failures never stop a batch: they become ``status=error`` rows with
a ``code: message`` error (DOMAIN.md §A.17), in their place; no row is lost,
added or reordered.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kirmatch.dsa import Antibody, DSAScreen, PanelScreen, flow_crossmatch_column
from kirmatch.engine import EMPTY, NOT_FOUND, Engine, EngineResult, collector_paused
from kirmatch.errors import InputSchemaError, KirmatchError, UsageError
from kirmatch.grammar import ID_NAMES
from kirmatch.io import ColumnMap, count_rows, file_sha256, read_column_map
from kirmatch.options import RULES_ID, RULES_VERSION, Options
from kirmatch.output import OutputPlan
from kirmatch.pair import CONTRACT_COLUMNS
from kirmatch.people import People, load_people, people_from_table, table_from_pandas
from kirmatch.progress import ProgressCallback, Stages
from kirmatch.pyard_backend import PyardBackend
from kirmatch.tables import ReferenceTables, load_reference_tables
from kirmatch.tabular import Chunk, TableReader, as_text, detect_format

__all__ = [
    "OUTPUT_COLUMNS",
    "BatchSummary",
    "PreparedCohort",
    "assess_chunk",
    "assess_pairs",
    "check_pair_columns",
    "lookup_ids",
    "read_antibodies",
    "read_genotypes",
    "rename_pairs",
    "result_frame",
    "run_batch",
]

#: Columns the engine adds after the pair file's own columns (§A.16 minus the ids).
OUTPUT_COLUMNS: tuple[str, ...] = CONTRACT_COLUMNS[2:]
#: Output columns that come from input text (formula neutralisation applies).
INPUT_DERIVED = ("recipient_id", "donor_id", "error")


def check_pair_columns(columns: Sequence[str], *, extra_reserved: Sequence[str] = ()) -> None:
    """The pairs table needs ``recipient_id`` and ``donor_id`` and must not already
    hold an output column (it would be silently overwritten).

    Raises
    ------
    InputSchemaError
        Naming the missing or clashing column(s).

    >>> check_pair_columns(["recipient_id", "donor_id", "note"])
    >>> check_pair_columns(["recipient_id;donor_id"])
    Traceback (most recent call last):
    ...
    kirmatch.errors.InputSchemaError: pairs file has no 'recipient_id' or 'donor_id' column (columns: 'recipient_id;donor_id'); is the file delimited by something else than ',', ';' or tab? [column 'recipient_id']
    """
    cols = [str(c) for c in columns]
    missing = [c for c in ("recipient_id", "donor_id") if c not in cols]
    if missing:
        near = [c for c in cols if re.sub(r"[\s.\-]+", "_", c.strip().lower()) in missing]
        hint = (f"; {near[0]!r} differs only in case or spacing: rename it" if near else
                "; name yours with --column-map")
        if len(cols) == 1 and any(d in cols[0] for d in ";\t|"):
            hint = "; is the file delimited by something else than ',', ';' or tab?"
        raise InputSchemaError(
            f"pairs file has no {' or '.join(repr(m) for m in missing)} column (columns: "
            f"{', '.join(map(repr, cols))}){hint}", column=missing[0])
    clash = [c for c in cols if c in OUTPUT_COLUMNS or c in extra_reserved]
    if clash:
        raise InputSchemaError(
            f"pairs file column(s) {', '.join(repr(c) for c in clash)} clash with kirmatch "
            "output columns of the same name; rename them in the pairs file",
            column=clash[0])


def lookup_ids(people: People, values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Person index of each id (``-1`` not in the genotypes, ``-2`` empty) and the
    stripped id texts (an Arrow string array)."""
    text = pc.utf8_trim_whitespace(as_text(values))
    pos = people.locate(text) if len(people) else np.full(len(text), NOT_FOUND, np.int64)
    pos[np.asarray(pc.equal(text, "").to_numpy(zero_copy_only=False), bool)] = EMPTY
    return pos, text


def assess_chunk(engine: Engine, chunk: Chunk, *, panels: PanelScreen | None = None,
                  what: str = "pairs") -> EngineResult:
    """One chunk of pairs through the engine, with its antibody screen (rule 13)
    and its optional ``flow_crossmatch`` column."""
    r_idx, r_ids = lookup_ids(engine.people, chunk.table.column("recipient_id"))
    d_idx, d_ids = lookup_ids(engine.people, chunk.table.column("donor_id"))
    row_errors = {j: f"input_parse_error: {what} {m}" for j, m in chunk.errors.items()}
    flow = None
    if "flow_crossmatch" in chunk.columns:
        flow, bad = flow_crossmatch_column(as_text(chunk.table.column("flow_crossmatch"))
                                           .to_pylist())
        for j, exc in bad.items():
            row_errors.setdefault(j, exc.located(row=chunk.first_row + j)
                                  .as_cell().replace("\n", " "))
    dsa = panels.screen_pairs(r_idx, d_idx, flow) if panels is not None else None
    return engine.assess(r_idx, d_idx, ids={"recipient": r_ids, "donor": d_ids},
                         row_errors=row_errors, dsa=dsa)


def _with_results(chunk: Chunk, res: EngineResult) -> pa.Table:
    table = chunk.table
    for col in OUTPUT_COLUMNS:
        table = table.append_column(col, res.columns[col])
    return table


def assess_pairs(
    genotypes: Any,
    pairs: Any,
    options: Options | None = None,
    *,
    tables: ReferenceTables | None = None,
    pyard: PyardBackend | None = None,
    antibodies: Mapping[str, Sequence[Antibody] | KirmatchError] | None = None,
) -> Any:
    """Assess every pair of ``pairs`` against the people of ``genotypes``.

    A pure function of one partition: equal inputs give equal outputs, row
    for row equal to :func:`kirmatch.pair.assess_pair`. To run it on the
    partitions of a Dask dataframe with the cohort prepared once per worker,
    use :func:`kirmatch.distributed.write_partitions` (each worker writes
    Parquet files) or :func:`kirmatch.distributed.assess_partitions` (a lazy
    Dask dataframe).

    Parameters
    ----------
    genotypes:
        A pandas DataFrame (or a :class:`~kirmatch.people.People`): one row per
        person, ``sample_id`` plus ``hla``/``kir`` or any form of
        :mod:`kirmatch.grammar`.
    pairs:
        A pandas DataFrame with ``recipient_id``, ``donor_id`` and any other
        columns (kept as they are).
        An optional ``flow_crossmatch`` column (``pos``/``neg``/blank) is read
        for rule 13.
    options, tables, pyard:
        Rule-set options, reference tables and an optional py-ard backend.
    antibodies:
        Each recipient id's antibody screen (:func:`kirmatch.dsa.antibodies_by_recipient`);
        a recipient without one has unknown DSA (``no_antibody_data``).

    Returns
    -------
    pandas.DataFrame
        The pair columns, then the contract columns of DOMAIN.md §A.16 from
        ``status`` on, as text (``true``/``false``, ``;``-joined lists, empty =
        unknown), with the index of ``pairs``.

    Raises
    ------
    InputSchemaError
        A required column is missing, or a pair column clashes with an output
        column.
    TypeError
        ``genotypes`` or ``pairs`` is not a DataFrame.
    """
    import pandas as pd

    from kirmatch.api import check_type

    check_type("options", options, Options, none_ok=True)
    check_type("tables", tables, ReferenceTables, none_ok=True)
    if not isinstance(pairs, pd.DataFrame):
        raise TypeError(f"pairs must be a pandas DataFrame, not {type(pairs).__name__}")
    t = tables or load_reference_tables()
    people = genotypes if isinstance(genotypes, People) else _people_from_frame(genotypes, t)
    check_pair_columns([str(c) for c in pairs.columns])
    return PreparedCohort.build(people, options, tables=t, pyard=pyard,
                                antibodies=antibodies).assess(pairs)


@dataclass(frozen=True, slots=True)
class PreparedCohort:
    """A cohort ready to assess pairs: its :class:`~kirmatch.engine.Engine` (each
    distinct typing resolved once, model tables filled as pairs need them) and,
    with antibodies, the recipients' :class:`~kirmatch.dsa.PanelScreen`.

    :func:`assess_pairs` builds one per call; :mod:`kirmatch.distributed` keeps
    one per worker process and assesses every partition with it. Both grow
    lazily, so one instance must not be used by two threads at once.
    """

    engine: Engine
    panels: PanelScreen | None = None

    @classmethod
    def build(cls, genotypes: Any, options: Options | None = None, *,
              tables: ReferenceTables | None = None, pyard: PyardBackend | None = None,
              antibodies: Mapping[str, Sequence[Antibody] | KirmatchError] | None = None,
              ) -> PreparedCohort:
        """The engine (and panel screen) of ``genotypes`` (a pandas DataFrame or
        :class:`~kirmatch.people.People`), as :func:`assess_pairs` uses them."""
        opts = options or Options()
        t = tables or load_reference_tables()
        people = genotypes if isinstance(genotypes, People) else _people_from_frame(genotypes, t)
        panels = None if antibodies is None else PanelScreen(DSAScreen(t, opts, pyard), people,
                                                             antibodies)
        return cls(Engine(people, opts, t, pyard), panels)

    def assess(self, pairs: Any, *, first_row: int = 1) -> Any:
        """The output frame of :func:`assess_pairs` for a pandas ``pairs`` frame
        whose columns were checked (:func:`check_pair_columns`). ``first_row`` is
        the 1-based row number of its first row in the whole pairs table (named in
        ``flow_crossmatch`` errors)."""
        table = pa.concat_tables(t for t, _ in self.assess_tables(pairs, first_row=first_row))
        return result_frame(pairs, {c: table.column(c) for c in OUTPUT_COLUMNS})

    def assess_tables(self, pairs: Any, *, first_row: int = 1, chunk_rows: int = 100_000
                      ) -> Iterator[tuple[pa.Table, EngineResult]]:
        """The same rows as :meth:`assess`, as the Arrow tables :func:`run_batch`
        writes (the pair columns, then the contract columns as dictionary
        arrays), ``chunk_rows`` rows at a time (as run_batch reads them: the
        engine's memory stays flat whatever the frame's size), each with its
        engine result (error counts)."""
        whole = table_from_pandas(pairs).table
        for start in range(0, max(whole.num_rows, 1), chunk_rows):
            chunk = Chunk(whole.slice(start, chunk_rows), first_row + start, {})
            res = assess_chunk(self.engine, chunk, panels=self.panels)
            yield _with_results(chunk, res), res


def result_frame(pairs: Any, computed: Mapping[str, pa.Array]) -> Any:
    """``pairs`` with the computed columns appended (text, the index of ``pairs``)."""
    import pandas as pd

    extra = pd.DataFrame({c: pd.Series(_text_values(computed[c]), index=pairs.index,
                                       dtype="str", copy=False)
                          for c in OUTPUT_COLUMNS}, index=pairs.index)
    return pd.concat([pairs, extra], axis=1)


def _text_values(arr: Any) -> Any:
    """A computed column as a pandas ``str`` array (``NaN`` = null), backed by
    Arrow: no Python string is made. Cast to ``large_string``, so millions of
    rows may hold more text than one ``string`` array can (2 GB).

    >>> _text_values(pa.array(["a", None, "b"]).dictionary_encode()).tolist()
    ['a', nan, 'b']
    """
    import pandas as pd

    if _pandas_str_is_arrow():
        return pd.array(pc.cast(arr, pa.large_string()), dtype="str")
    # pandas 2: "str" is Python objects; decoded per vocabulary entry, nulls as None
    if isinstance(arr, pa.ChunkedArray):
        return np.concatenate([_text_values(c) for c in arr.chunks]) if arr.num_chunks \
            else np.array([], dtype=object)
    if pa.types.is_dictionary(arr.type):
        vocab = np.array([*arr.dictionary.cast(pa.large_string()).to_pylist(), None],
                         dtype=object)
        idx = pc.fill_null(arr.indices.cast(pa.int64()), len(vocab) - 1)
        return vocab[idx.to_numpy(zero_copy_only=False)]
    return np.array(arr.cast(pa.large_string()).to_pylist(), dtype=object)


@functools.cache
def _pandas_str_is_arrow() -> bool:
    """pandas ≥ 3: the ``str`` dtype is backed by Arrow strings."""
    import pandas as pd

    return int(pd.__version__.split(".")[0]) >= 3


def _people_from_frame(genotypes: Any, tables: ReferenceTables) -> People:
    import pandas as pd

    if not isinstance(genotypes, pd.DataFrame):
        raise TypeError("genotypes must be a pandas DataFrame (or kirmatch.people.People), "
                        f"not {type(genotypes).__name__}")
    return people_from_table(table_from_pandas(genotypes), tables, source="genotypes")


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """What :func:`run_batch` (or :func:`kirmatch.persons.run_persons`) did: row
    counts, files and timing."""

    rows_in: int
    rows_ok: int
    rows_error: int
    error_codes: dict[str, int]
    duplicate_ids: tuple[str, ...]
    output: Path
    errors: Path | None
    provenance: Path
    seconds: float
    notes: tuple[str, ...] = ()
    #: Wall time of each stage (``people``, then ``pairs`` or ``persons`` …), in order.
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Rows per second over the stage that wrote them (the last one): the rate
        a progress display shows at the end (:class:`kirmatch.progress.Progress`)."""
        seconds = list(self.stage_seconds.values())[-1] if self.stage_seconds else self.seconds
        return self.rows_in / seconds if seconds > 0 else 0.0


def input_record(path: Path) -> dict[str, Any]:
    """Path, SHA-256 and size of an input file (for the run record)."""
    return {"path": str(path.resolve()), "sha256": file_sha256(path),
            "bytes": path.stat().st_size}


def pyard_record(pyard: PyardBackend | None) -> dict[str, Any]:
    """py-ard's version, database and whether it was opened (for the run record)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver: str | None = version("py-ard")
    except PackageNotFoundError:  # pragma: no cover
        ver = None
    rec: dict[str, Any] = {"version": ver, "opened": False}
    if pyard is not None:
        from kirmatch.pyard_backend import status

        st = status(pyard.data_dir)
        rec.update({"database": st.database, "database_version": st.database_version,
                    "imgt_version": st.imgt_version, "mac_loaded": st.mac_loaded,
                    "opened": pyard.open_seconds is not None})
    return rec


def check_run_arguments(genotypes: Any, output: Any, options: Any, errors: Any,
                        column_map: Any, chunk_rows: Any, tables: Any, pyard: Any,
                        progress: Any, command: Any, genotype_files: Any) -> None:
    """The argument checks a streaming run (``run_batch``, ``run_persons``) shares.

    Raises
    ------
    TypeError
        An argument has the wrong type; the message names it.
    UsageError
        An empty path, ``chunk_rows`` < 1, or an output with an unknown extension.
    """
    from kirmatch.api import check_path, check_sequence, check_type, type_error

    if not isinstance(genotypes, People):
        check_path("genotypes", genotypes)
    check_path("output", output)
    check_type("options", options, Options, none_ok=True)
    check_path("errors", errors, none_ok=True)
    check_path("column_map", column_map, none_ok=True)
    if check_type("chunk_rows", chunk_rows, int) < 1:
        raise UsageError(f"chunk_rows must be at least 1, not {chunk_rows}")
    check_type("tables", tables, ReferenceTables, none_ok=True)
    check_type("pyard", pyard, PyardBackend, none_ok=True)
    if progress is not None and not callable(progress):
        raise type_error("progress", progress, "callable or None")
    check_sequence("command", command, str, none_ok=True)
    for i, g in enumerate(check_sequence("genotype_files", genotype_files, (str, os.PathLike))
                          or ()):
        check_path(f"genotype_files[{i}]", g)
    for p in (output, *([errors] if errors is not None else [])):
        detect_format(Path(p))


def genotype_paths(genotypes: Any, genotype_files: Sequence[Any]) -> list[Path]:
    """The genotypes files of a run: the file, or the files the people were read from."""
    if isinstance(genotypes, People):
        return [Path(g) for g in genotype_files]
    return [Path(genotypes)]


def read_genotypes(genotypes: Any, column_map: Any, tables: ReferenceTables
                   ) -> tuple[People, ColumnMap]:
    """The people of a run (read with the genotypes part of the column map) and the map."""
    cmap = read_column_map(column_map) if column_map is not None else ColumnMap()
    if isinstance(genotypes, People):
        return genotypes, cmap
    return load_people(genotypes, tables, column_map=_genotype_map(cmap.genotypes, tables)), cmap


def write_run_record(plan: OutputPlan, tables: ReferenceTables, pyard: PyardBackend | None,
                     options: Options, *, inputs: Mapping[str, Any], output: Path,
                     errors: Path | None, command: Sequence[str] | None,
                     rows: Mapping[str, Any], people: People, notes: Sequence[str],
                     started: str, seconds: float) -> None:
    """Write a streamed run's record (``batch``, ``persons``) as the plan's
    ``provenance`` output: versions, reference tables, py-ard and options; the
    inputs, outputs, command and row counts; then start time, wall time,
    platform and argv."""
    from kirmatch import __version__

    record = {
        "kirmatch_version": __version__,
        "rules": RULES_ID,
        "rules_version": RULES_VERSION,
        **{k: v for k, v in tables.provenance().items() if k != "rules"},
        "pyard": pyard_record(pyard),
        "options": options.to_dict(),
        "inputs": dict(inputs),
        "outputs": {"output": str(output), "errors": str(errors) if errors else None},
        "command": list(command) if command is not None else None,
        "rows": dict(rows),
        "genotypes": {"people": len(people), "duplicate_ids": people.duplicate_ids,
                      "repeated_identical_ids": people.repeated_ids},
        "notes": list(notes),
        "started_at": started,
        "wall_seconds": round(seconds, 3),
        "platform": {"python": platform.python_version(), "system": platform.system(),
                     "machine": platform.machine()},
        "argv": list(sys.argv),
    }
    plan.write_text("provenance", json.dumps(record, indent=2, ensure_ascii=False,
                                             allow_nan=False) + "\n")


def genotypes_record(paths: Sequence[Path], people: People) -> dict[str, Any]:
    """The run record of the genotypes input: its file(s) and how they were read."""
    return {**(input_record(paths[0]) if len(paths) == 1 and paths[0].is_file() else {}),
            "files": [input_record(g) for g in paths if g.is_file()],
            **people.record()}


def _pairs_map(cmap: ColumnMap) -> dict[str, str]:
    return dict(cmap.pairs)


def run_batch(
    genotypes: str | os.PathLike[str] | People,
    pairs: str | os.PathLike[str],
    output: str | os.PathLike[str],
    options: Options | None = None,
    *,
    errors: str | os.PathLike[str] | None = None,
    column_map: str | os.PathLike[str] | None = None,
    chunk_rows: int = 100_000,
    tables: ReferenceTables | None = None,
    pyard: PyardBackend | None = None,
    progress: ProgressCallback | None = None,
    command: Sequence[str] | None = None,
    genotype_files: Sequence[str | os.PathLike[str]] = (),
    antibodies: str | os.PathLike[str] | None = None,
) -> BatchSummary:
    """Stream a pairs file through the engine into an output file.

    The genotypes input is read whole (or given as :class:`~kirmatch.people.People`,
    e.g. from the format readers, with ``genotype_files`` naming its files); the
    pairs file is read and written in chunks of ``chunk_rows`` rows, so memory
    stays flat whatever its size. The output has one row per pairs row, in input
    order: the pair file's columns, then the contract columns. ``errors`` gets
    the ``status=error`` rows again, led by ``pairs_row`` (1-based data row).
    ``OUTPUT + ".provenance.json"`` records versions, table checksums, options,
    input checksums and how they were read, the command line, row counts and
    wall time. ``progress`` receives :class:`~kirmatch.progress.Progress` events
    of the stages ``inputs`` (reading the genotypes and antibodies), ``people``
    (resolving each distinct typing once) and ``pairs``. Python's automatic
    cyclic garbage collection is paused during the run (young generations are
    collected after each chunk) and restored after it
    (:func:`~kirmatch.engine.collector_paused`).

    Raises
    ------
    InputSchemaError
        Missing or clashing columns, empty or undecodable files (nothing is left
        under the output names).
    UsageError
        Unknown file extensions, an output that would overwrite an input, an
        empty path or ``chunk_rows`` < 1.
    TypeError
        An argument has the wrong type (paths are str or path-like objects,
        ``command`` and ``genotype_files`` lists, not strings); the message
        names it.
    """
    from kirmatch.api import check_path

    check_path("pairs", pairs)
    check_path("antibodies", antibodies, none_ok=True)
    check_run_arguments(genotypes, output, options, errors, column_map, chunk_rows, tables,
                        pyard, progress, command, genotype_files)
    t_start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    opts = options or Options()
    t = tables or load_reference_tables()
    p_path, o_path = Path(pairs), Path(output)
    e_path = Path(errors) if errors is not None else None
    a_path = Path(antibodies) if antibodies is not None else None
    g_paths = genotype_paths(genotypes, genotype_files)
    prov_path = o_path.with_name(o_path.name + ".provenance.json")
    # The plan refuses an output over any input (or two outputs on one file) before
    # anything is read, and makes output, errors and run record appear together.
    with OutputPlan({"output": o_path, "errors": e_path, "provenance": prov_path},
                    inputs=[*g_paths, p_path, column_map, a_path]) as plan, \
            collector_paused() as collect_young:
        stages = Stages(progress)
        people, cmap, panels, a_reader = read_inputs(stages, genotypes, g_paths, column_map,
                                                       a_path, t, opts, pyard)
        reader = TableReader(p_path, what="pairs")
        engine = prepare_engine(stages, people, opts, t, pyard)
        pa.default_memory_pool().release_unused()
        n_pairs = count_rows(p_path) if progress is not None else None
        stages.start("pairs", total=n_pairs, unit="pairs",
                     detail=f"assessing {n_pairs:,} pairs" if n_pairs is not None else "")
        rows_in = rows_err = 0
        codes: Counter[str] = Counter()
        out_w = plan.table_writer("output")
        err_w = plan.table_writer("errors") if e_path is not None else None
        schema: pa.Schema | None = None
        checked = False
        for chunk in reader.chunks(chunk_rows):
            chunk = rename_pairs(chunk, cmap)
            if not checked:
                check_pair_columns(chunk.columns, extra_reserved=("pairs_row",)
                                   if e_path is not None else ())
                # every pass-through column, whatever its type, and the error text
                neutral = frozenset([*chunk.columns, "error"])
                out_w.neutralise = neutral if out_w.format.neutralises else frozenset()
                if err_w is not None and err_w.format.neutralises:
                    err_w.neutralise = neutral
                checked = True
            res = assess_chunk(engine, chunk, panels=panels)
            table = _with_results(chunk, res)
            if schema is None:
                schema = table.schema.remove_metadata()
            out_w.write(table)
            if err_w is not None and res.n_error:
                rows = np.flatnonzero(res.status_error)
                sub = table.take(pa.array(rows))
                sub = sub.add_column(0, "pairs_row", pa.array(rows + chunk.first_row,
                                                              pa.int64()))
                err_w.write(sub)
            rows_in += table.num_rows
            rows_err += res.n_error
            codes.update(res.error_codes)
            stages.update(rows_in)
            collect_young()
        stages.finish(rows_in)
        assert schema is not None
        out_w.close(empty=schema)
        if err_w is not None:
            err_w.close(empty=pa.schema([pa.field("pairs_row", pa.int64()), *schema]))
        seconds = time.perf_counter() - t_start
        notes = [*people.notes, *reader.notes, *(a_reader.notes if a_reader else ())]
        write_run_record(
            plan, t, pyard, opts,
            inputs={
                "genotypes": genotypes_record(g_paths, people),
                "pairs": {**input_record(p_path), "dialect": reader.dialect.to_dict()},
                "column_map": input_record(Path(column_map)) if column_map is not None
                else None,
                "antibodies": None if a_path is None or a_reader is None else {
                    **input_record(a_path), "dialect": a_reader.dialect.to_dict()},
            },
            output=o_path, errors=e_path, command=command,
            rows={"in": rows_in, "ok": rows_in - rows_err, "error": rows_err,
                  "error_codes": dict(sorted(codes.items()))},
            people=people, notes=notes, started=started, seconds=seconds)
    return BatchSummary(rows_in, rows_in - rows_err, rows_err, dict(codes),
                        tuple(people.duplicate_ids), o_path, e_path, prov_path, seconds,
                        tuple(notes), dict(stages.seconds))


def read_inputs(stages: Stages, genotypes: Any, g_paths: Sequence[Path], column_map: Any,
                 a_path: Path | None, tables: ReferenceTables, options: Options,
                 pyard: PyardBackend | None
                 ) -> tuple[People, ColumnMap, PanelScreen | None, TableReader | None]:
    """Stage ``inputs``: the people, the column map, the antibody panels and their reader."""
    names = [p.name for p in (*g_paths, *([a_path] if a_path else []))]
    stages.start("inputs", unit="people", detail=f"reading {', '.join(names) or 'genotypes'}")
    people, cmap = read_genotypes(genotypes, column_map, tables)
    panels = a_reader = None
    if a_path is not None:
        a_reader = TableReader(a_path, what="antibodies")
        panels = PanelScreen(DSAScreen(tables, options, pyard), people,
                             read_antibodies(a_reader, tables))
    stages.finish(len(people))
    return people, cmap, panels, a_reader


def prepare_engine(stages: Stages, people: People, options: Options, tables: ReferenceTables,
                   pyard: PyardBackend | None) -> Engine:
    """Stage ``people``: an engine with every distinct typing of ``people`` resolved."""
    engine = Engine(people, options, tables, pyard)
    steps, detail = engine.preparation()
    stages.start("people", total=steps, unit="typings", detail=f"preparing {detail}")
    engine.prepare(stages.update)
    stages.finish(steps)
    return engine


def read_antibodies(reader: TableReader, tables: ReferenceTables
                    ) -> dict[str, list[Antibody] | KirmatchError]:
    """A whole antibody file, grouped per recipient id (a bad row makes its
    recipient's entry the error; see :func:`kirmatch.dsa.antibodies_by_recipient`)."""
    from kirmatch.dsa import _antibodies_of_cells

    chunk = reader.read()
    return _antibodies_of_cells(list(chunk.columns),
                                {c: chunk.texts(c) for c in chunk.columns},
                                chunk.num_rows, source=reader.path.name, tables=tables,
                                first_row=chunk.first_row, row_errors=chunk.errors,
                                require_recipient=True)


def rename_pairs(chunk: Chunk, cmap: ColumnMap) -> Chunk:
    """A chunk of the pairs table with the pairs part of a column map applied
    (their names to ours)."""
    from kirmatch.people import rename_columns

    return rename_columns(chunk, _pairs_map(cmap), what="pairs")


def _genotype_map(mapping: Mapping[str, str], tables: ReferenceTables) -> dict[str, str]:
    """Normalise the keys of a genotypes column map (``2DL1`` → ``KIR2DL1``)."""
    from kirmatch.grammar import _KIR_RE, _locus, _slot

    out: dict[str, str] = {}
    for ours, theirs in mapping.items():
        key = ours.strip()
        low = key.lower()
        if low in ("sample_id", "hla", "kir") or low in ID_NAMES:
            out[low] = theirs
        elif (s := _slot(key)) is not None:
            out[f"{s[0]}_{s[1]}"] = theirs
        elif (loc := _locus(key)) is not None and key.lower().startswith("hla"):
            out[f"hla_{loc.lower()}"] = theirs
        elif (km := _KIR_RE.match(key)) and tables.kir_gene(km.group("gene")):
            out[f"KIR{km.group('gene').upper()}"] = theirs
        else:
            raise InputSchemaError(
                f"column map: unknown genotypes column {ours!r} (use sample_id, hla, kir, "
                "A_1 … DPB1_2, hla_a …, or a KIR gene such as KIR2DL1)", column=ours)
    return out


def genotype_source_from_readers(
    *, hla: str | os.PathLike[str] | None = None, hla_format: str = "auto",
    kir: str | os.PathLike[str] | None = None, kir_format: str = "auto",
    tables: ReferenceTables | None = None, options: Options | None = None,
) -> tuple[People, str, list[Path]]:
    """Read HLA and/or KIR typings with the format readers and join them by sample id.

    Returns the people, a description of what was read and the files read.
    """
    from kirmatch.people import people_from_results
    from kirmatch.readers import read_hla, read_kir

    if hla is None and kir is None:
        raise UsageError("give --genotypes, or --hla and/or --kir")
    t = tables or load_reference_tables()
    h = read_hla(hla, hla_format, options=options) if hla is not None else None
    k = read_kir(kir, kir_format, tables=t, options=options) if kir is not None else None
    people = people_from_results(h, k)
    parts = [f"{what}: {len(res.genotypes)} samples read as {res.format}"
             for what, res in (("HLA", h), ("KIR", k)) if res is not None]
    paths = [Path(p) for p in (hla, kir) if p is not None]
    return people, "; ".join(parts), paths
