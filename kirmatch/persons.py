"""The per-person table (rule 18, DOMAIN.md §A.21): one row per person of a
genotypes input, the person-level facts the pair models use, so that cohorts and
registries can be profiled without pairs.

:func:`assess_persons` assesses one in-memory table (a pure function);
:func:`run_persons` streams a genotypes file through the same engine as
``kirmatch batch`` (:class:`kirmatch.engine.Engine`: every distinct typing is
resolved once and every column evaluated once per distinct combination of its
facts) into an output file (``kirmatch persons``). The columns are the
registry's person-scope models (:data:`kirmatch.registry.PERSON_MODELS`), with
the encodings and unknown-with-warning conventions of the pair output.

Rows follow the input: one per sample id, at the row of its first record.
Nothing is dropped: a person that cannot be read (an unparsable typing, an
allele unknown to the pinned release, conflicting records) is a
``status=error`` row, and so is a row with a typing but no sample id, or a row
that could not be read at all (with an empty ``sample_id``).

>>> import pandas as pd
>>> g = pd.DataFrame({"sample_id": ["D1", "X"],
...                   "hla": ["A*02:01+A*11:01^B*07:02+B*35:01^C*07:02+C*04:01", "A*0x:01"],
...                   "kir": ["KIR2DL1+KIR2DL3+KIR3DL1*001+KIR3DL2", ""]})
>>> out = assess_persons(g)
>>> out.loc[0, ["c_group", "ligands", "b_leader", "func_ikir_count", "func_ikir_score"]].tolist()
['C1/C2', 'A3/A11;C1;C2', 'M/T', '2', '1.75']
>>> out.loc[1, ["sample_id", "status"]].tolist(), out.loc[1, "error"][:40]
(['X', 'error'], "input_parse_error: person 'X' (genotypes")
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from kirmatch.batch import (
    BatchSummary,
    _people_from_frame,
    check_run_arguments,
    genotype_paths,
    genotypes_record,
    input_record,
    prepare_engine,
    read_inputs,
    write_run_record,
)
from kirmatch.engine import Engine, collector_paused
from kirmatch.options import Options
from kirmatch.output import OutputPlan
from kirmatch.people import People
from kirmatch.progress import ProgressCallback, Stages
from kirmatch.pyard_backend import PyardBackend
from kirmatch.registry import PERSON_COLUMNS
from kirmatch.tables import ReferenceTables, load_reference_tables

__all__ = ["PERSON_COLUMNS", "PersonsSummary", "assess_persons", "run_persons"]

#: Output columns that come from input text (formula neutralisation applies).
INPUT_DERIVED = ("sample_id", "error")


@dataclass(frozen=True, slots=True)
class _Entry:
    """One output row: a person (``person`` ≥ 0) or a genotypes row that holds
    no person (``message`` says why), at data row ``row``."""

    row: int
    person: int = -1
    message: str = ""


def _entries(people: People) -> list[_Entry]:
    """Every output row, in input order (rows are 1-based data rows)."""
    out = [_Entry(r, i) for i, r in enumerate(people.rows)]
    what = people.source or "genotypes"
    out += [_Entry(r, message=f"input_parse_error: {what} row {r} has a typing but no "
                   "sample_id") for r in people.skipped_rows]
    out += [_Entry(r, message=f"input_parse_error: {what} row {r} could not be read: "
                   f"{m}".replace("\n", " ")) for r, m in people.unreadable_rows.items()]
    return sorted(out, key=lambda e: (e.row, e.person < 0))


def _chunks(engine: Engine, entries: Sequence[_Entry], chunk_rows: int
            ) -> Iterator[tuple[pa.Table, np.ndarray, Counter[str]]]:
    """The table of each chunk of ``entries`` (all :data:`PERSON_COLUMNS`), its
    data rows and its error codes."""
    ids = engine.people.ids
    for start in range(0, len(entries), chunk_rows):
        part = entries[start:start + chunk_rows]
        persons = np.array([e.person for e in part if e.person >= 0], np.int64)
        res = engine.assess_persons(persons)
        cols = {"sample_id": pa.array([ids[i] for i in persons.tolist()], pa.string()),
                **res.columns}
        table = pa.table({c: cols[c] for c in PERSON_COLUMNS})
        codes: Counter[str] = Counter(res.error_codes)
        extra = [e for e in part if e.person < 0]
        if extra:  # rows without a person: error rows in their place
            codes.update(e.message.split(":", 1)[0] for e in extra)
            blank = pa.array([""] * len(extra), pa.string())
            rows = {c: blank for c in PERSON_COLUMNS}
            rows["status"] = pa.array(["error"] * len(extra), pa.string())
            rows["error"] = pa.array([e.message for e in extra], pa.string())
            text = pa.table({c: table.column(c).cast(pa.string()) for c in PERSON_COLUMNS})
            table = pa.concat_tables([text, pa.table(rows)])
            at = {id(e): k for k, e in enumerate(
                [e for e in part if e.person >= 0] + extra)}
            table = table.take(pa.array([at[id(e)] for e in part], pa.int64()))
        yield table, np.array([e.row for e in part], np.int64), codes


def assess_persons(
    genotypes: Any,
    options: Options | None = None,
    *,
    tables: ReferenceTables | None = None,
    pyard: PyardBackend | None = None,
) -> Any:
    """The per-person table of ``genotypes`` (DOMAIN.md §A.21).

    A pure function of one table: equal inputs give equal outputs.

    Parameters
    ----------
    genotypes:
        A pandas DataFrame (or a :class:`~kirmatch.people.People`): one row per
        person, ``sample_id`` plus ``hla``/``kir`` or any form of
        :mod:`kirmatch.grammar`.
    options, tables, pyard:
        Rule-set options, reference tables and an optional py-ard backend.

    Returns
    -------
    pandas.DataFrame
        :data:`PERSON_COLUMNS` as text (``true``/``false``, ``;``-joined lists,
        two-decimal weights, empty = unknown, with an ``unknown(<column>:
        <reason>)`` warning), one row per person in input order, plus an error
        row for each input row that holds no person.

    Raises
    ------
    InputSchemaError
        The columns of ``genotypes`` cannot be understood.
    TypeError
        An argument has the wrong type; the message names it.
    """
    import pandas as pd

    from kirmatch.api import check_type

    check_type("options", options, Options, none_ok=True)
    check_type("tables", tables, ReferenceTables, none_ok=True)
    check_type("pyard", pyard, PyardBackend, none_ok=True)
    t = tables or load_reference_tables()
    people = genotypes if isinstance(genotypes, People) else _people_from_frame(genotypes, t)
    engine = Engine(people, options or Options(), t, pyard)
    entries = _entries(people)
    parts = [table for table, _, _ in _chunks(engine, entries, max(len(entries), 1))]
    if not parts:
        return pd.DataFrame({c: pd.Series([], dtype="str") for c in PERSON_COLUMNS})
    table = parts[0]
    return pd.DataFrame({c: pd.Series(table.column(c).to_pylist(), dtype="str")
                         for c in PERSON_COLUMNS})


#: What :func:`run_persons` did (``rows_in``: rows written, one per person or
#: input row without a person).
PersonsSummary = BatchSummary


def run_persons(
    genotypes: str | os.PathLike[str] | People,
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
) -> BatchSummary:
    """Write the per-person table of a genotypes file (``kirmatch persons``).

    The genotypes input is read whole (or given as :class:`~kirmatch.people.People`,
    e.g. from the format readers, with ``genotype_files`` naming its files); the
    table is computed and written in chunks of ``chunk_rows`` people. The output
    has one row per person in input order (:func:`assess_persons`); ``errors``
    gets the ``status=error`` rows again, led by ``genotypes_row`` (1-based data
    row). ``OUTPUT + ".provenance.json"`` is the run record: versions, table
    checksums, options, input checksums and how they were read, the command
    line, row counts and wall time. Output, errors and run record appear
    together or not at all, never over an input. ``progress`` receives
    :class:`~kirmatch.progress.Progress` events of the stages ``inputs``,
    ``people`` (resolving each distinct typing once) and ``persons`` (rows
    written).

    Raises
    ------
    InputSchemaError
        The genotypes cannot be read or understood (nothing is left under the
        output names).
    UsageError
        Unknown file extensions, an output that would overwrite an input, an
        empty path or ``chunk_rows`` < 1.
    TypeError
        An argument has the wrong type; the message names it.
    """
    check_run_arguments(genotypes, output, options, errors, column_map, chunk_rows, tables,
                        pyard, progress, command, genotype_files)
    t_start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    opts = options or Options()
    t = tables or load_reference_tables()
    o_path = Path(output)
    e_path = Path(errors) if errors is not None else None
    g_paths = genotype_paths(genotypes, genotype_files)
    prov_path = o_path.with_name(o_path.name + ".provenance.json")
    with OutputPlan({"output": o_path, "errors": e_path, "provenance": prov_path},
                    inputs=[*g_paths, column_map]) as plan, collector_paused() as collect_young:
        stages = Stages(progress)
        people, _, _, _ = read_inputs(stages, genotypes, g_paths, column_map, None, t, opts,
                                      pyard)
        engine = prepare_engine(stages, people, opts, t, pyard)
        entries = _entries(people)
        stages.start("persons", total=len(entries), unit="people",
                     detail=f"assessing {len(entries):,} people")
        out_w = plan.table_writer("output", neutralise=INPUT_DERIVED)
        err_w = plan.table_writer("errors", neutralise=INPUT_DERIVED) \
            if e_path is not None else None
        rows_out = rows_err = 0
        codes: Counter[str] = Counter()
        for table, rows, chunk_codes in _chunks(engine, entries, chunk_rows):
            out_w.write(table)
            bad = np.flatnonzero(np.asarray(table.column("status").cast(pa.string())
                                            .to_pylist(), object) == "error")
            if err_w is not None and len(bad):
                sub = table.take(pa.array(bad))
                err_w.write(sub.add_column(0, "genotypes_row", pa.array(rows[bad], pa.int64())))
            rows_out += table.num_rows
            rows_err += len(bad)
            codes.update(chunk_codes)
            stages.update(rows_out)
            collect_young()
        stages.finish(rows_out)
        schema = pa.schema([pa.field(c, pa.string()) for c in PERSON_COLUMNS])
        out_w.close(empty=schema)
        if err_w is not None:
            err_w.close(empty=pa.schema([pa.field("genotypes_row", pa.int64()), *schema]))
        seconds = time.perf_counter() - t_start
        write_run_record(
            plan, t, pyard, opts,
            inputs={
                "genotypes": genotypes_record(g_paths, people),
                "column_map": input_record(Path(column_map)) if column_map is not None
                else None,
            },
            output=o_path, errors=e_path, command=command,
            rows={"out": rows_out, "ok": rows_out - rows_err, "error": rows_err,
                  "error_codes": dict(sorted(codes.items()))},
            people=people, notes=people.notes, started=started, seconds=seconds)
    return BatchSummary(rows_out, rows_out - rows_err, rows_err, dict(codes),
                        tuple(people.duplicate_ids), o_path, e_path, prov_path, seconds,
                        tuple(people.notes), dict(stages.seconds))
