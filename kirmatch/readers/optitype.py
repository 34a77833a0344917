"""OptiType HLA class I calls: the per-sample ``*_result.tsv`` (one file or a
folder of them) and the consolidated multi-sample CSV (DOMAIN.md §C.13).

**Result TSV** (``<prefix>_result.tsv``, written by OptiType's pipeline with
pandas, hence the unnamed index column)::

    <TAB>A1<TAB>A2<TAB>B1<TAB>B2<TAB>C1<TAB>C2<TAB>Reads<TAB>Objective
    0<TAB>A*02:01<TAB>A*24:02<TAB>B*07:02<TAB>B*44:02<TAB>C*07:02<TAB>C*05:01<TAB>1234.0<TAB>1180.2

* each row is one solution: the first is OptiType's optimum, further rows
  (``--enumerate N``) are the next-best solutions in decreasing
  ``Objective``. Only solutions whose ``Objective`` equals the first row's
  are read: more than one such solution is a tie, kept as ``|`` genotype
  alternatives per locus (warning ``optitype_tied_solutions``; when tied
  solutions differ at several loci, the per-locus alternatives allow every
  combination, more candidates than the solutions, never fewer); lower
  solutions are not typings of the sample (warning
  ``optitype_suboptimal_ignored``). A row scoring above the first is an
  error (not OptiType's order);
* OptiType writes a homozygous call as the same allele in both columns
  (``A1`` = ``A2``), so both are always filled for a called locus: both
  blank is an untyped locus, one blank is an error (a lone allele would be
  read as a single typing, homozygous under the default ``single_allele``);
* the sample id is the file name without ``_result.tsv`` (OptiType's
  ``--prefix``), or the ``sample`` given. OptiType's default name is a time
  stamp (``2014_04_10_12_00_00_result.tsv``), which names no sample: an error
  unless ``sample`` is given. A folder is read as one sample per
  ``*_result.tsv`` file, in file-name order.

**Consolidated CSV** (one row per sample and allele slot, as flattened by
single-cell pipelines that run OptiType per sample, e.g.
ChrisMBrooks/TENX_2_KIR_HLA and iKIR_SCORE_CALC)::

    subject_id,sample_id,hla_gene,hla_allele,quality_score
    P01,S01,A1,A*23:01,46.0
    P01,S01,A2,A*23:01,46.0

* the sample id is ``sample_id``; ``subject_id`` (the person of a pipeline
  that types several samples, e.g. technical replicates, per person) is
  optional and never merges samples: each sample is read separately
  (warning ``optitype_subject_samples`` when a subject has several), and a
  ``sample_id`` under two subjects is an error;
* ``hla_gene`` is the slot ``A1`` … ``C2``; ``hla_allele`` the allele (blank
  for an uncalled locus); the same slot twice with the same allele is read
  once (``optitype_duplicate_row``), with another allele it is an error
  naming both rows; a locus with one slot filled is an error, as above;
* ``quality_score`` (optional) must be a number when given; it is not used:
  it is OptiType's objective or read support, not a probability, so it has
  no threshold.

Allele names are read as written (``A*02:01``, ``HLA-A*02:01``, or ``02:01``
under its slot) and must be alleles of the slot's locus; other columns are
listed in ``ReadResult.ignored``.

Sources: the FRED-2/OptiType README and ``OptiTypePipeline.py`` (columns,
``--enumerate``, ``--prefix``, homozygous calls written twice, missing loci
left empty); DOMAIN.md §C.13 and the README of ChrisMBrooks/iKIR_SCORE_CALC
(consolidated columns).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from kirmatch.errors import InputSchemaError, KirmatchError, UsageError
from kirmatch.hla import HLAGenotype, HLALocusTyping, HLASlot, genotype_from_loci, parse_hla_typing
from kirmatch.kir import KIRGenotype
from kirmatch.readers import (
    ReadResult,
    SubjectSamples,
    Table,
    folder_files,
    hla_untyped_warnings,
    locate,
    read_table,
)
from kirmatch.tabular import is_blank

__all__ = ["CONSOLIDATED_COLUMNS", "RESULT_COLUMNS", "SUFFIX", "is_consolidated",
           "read_optitype"]

SUFFIX = "_result.tsv"
#: The allele slots, in OptiType's column order.
SLOTS = ("A1", "A2", "B1", "B2", "C1", "C2")
#: The columns of a result TSV after its unnamed index column.
RESULT_COLUMNS = (*SLOTS, "Reads", "Objective")
#: The required columns of the consolidated CSV (``subject_id`` and
#: ``quality_score`` are read when present).
CONSOLIDATED_COLUMNS = ("sample_id", "hla_gene", "hla_allele")
_SLOT = re.compile(r"^(?:HLA[-_]?)?(?P<locus>[ABC])[-_.]?(?P<n>[12])$", re.IGNORECASE)
_TIMESTAMP = re.compile(r"^[0-9]{4}(?:_[0-9]{2}){5}$")

# (locus, slot number) -> (allele name or None, data row, column); one map per solution.
_Calls = dict[tuple[str, int], tuple[str | None, int, str]]


def is_consolidated(header: Iterable[str]) -> bool:
    """True for the header of a consolidated OptiType CSV.

    >>> is_consolidated(["subject_id", "sample_id", "hla_gene", "hla_allele", "quality_score"])
    True
    >>> is_consolidated(["", "A1", "A2", "B1", "B2", "C1", "C2", "Reads", "Objective"])
    False
    """
    return set(CONSOLIDATED_COLUMNS) <= {h.strip().lower() for h in header}


def _columns(table: Table, required: Sequence[str]) -> dict[str, int]:
    index = {h.strip().lower(): i for i, h in enumerate(table.header)}
    missing = [c for c in required if c.lower() not in index]
    if missing:
        raise InputSchemaError(f"{table.source}: missing OptiType column(s) "
                               f"{', '.join(missing)}", row=table.header_line, column=missing[0])
    return {c: index[c.lower()] for c in required} | {h: i for h, i in index.items()
                                                      if h in ("subject_id", "quality_score")}


def _number(table: Table, text: str, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputSchemaError(f"{table.source}: {column} {text!r} is not a number", raw=text,
                               row=line, column=column)
    return value


def _locus_typings(sid: str, src: str, solutions: Sequence[_Calls]) -> list[HLALocusTyping]:
    """Per locus, the genotype of every solution (``|`` alternatives when they differ)."""
    loci = []
    for locus in ("A", "B", "C"):
        alternatives: list[tuple[HLASlot, ...]] = []
        for calls in solutions:
            one, two = calls.get((locus, 1)), calls.get((locus, 2))
            first, second = (c[0] if c is not None else None for c in (one, two))
            if first is None and second is None:
                continue
            if first is None or second is None:
                have, lack = (1, 2) if first is not None else (2, 1)
                present = one if first is not None else two
                assert present is not None
                _, line, column = present
                raise InputSchemaError(
                    f"{src}: sample {sid!r} has {locus}{have} but no {locus}{lack} (OptiType "
                    "writes both, the same allele twice when homozygous)", raw=sid, row=line,
                    column=column)
            slots = (HLASlot((parse_hla_typing(first),)), HLASlot((parse_hla_typing(second),)))
            if slots not in alternatives:
                alternatives.append(slots)
        if alternatives:
            loci.append(HLALocusTyping(locus, tuple(alternatives)))
    return loci


def _allele(table: Table, locus: str, text: str, line: int, column: str) -> str | None:
    """A checked allele name of ``locus`` (canonical spelling); ``None`` when blank."""
    if is_blank(text):
        return None
    try:
        return parse_hla_typing(text.strip(), locus=locus).name
    except KirmatchError as exc:
        raise locate(exc, table.source, line, column) from None


def _sample_from_name(path: Path, sample: str | None) -> str:
    if sample is not None:
        if not sample.strip():
            raise UsageError("the OptiType sample id is blank", raw=sample)
        return sample.strip()
    sid = path.name[:-len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem
    if not sid or _TIMESTAMP.match(sid):
        raise InputSchemaError(
            f"{path.name}: the file name gives no sample id (OptiType's default time-stamped "
            f"name); rename it <sample>{SUFFIX}, run OptiType with --prefix, or give the "
            "sample id", raw=path.name)
    return sid


def read_result_file(path: Path, *, sample: str | None = None
                     ) -> tuple[str, HLAGenotype, tuple[str, ...], tuple[str, ...]]:
    """Read one ``<sample>_result.tsv``; return (sample id, genotype, warnings, ignored).

    Raises
    ------
    InputSchemaError
        A missing column, no solution row, a bad number, a row scoring above
        the first, or a locus with one allele (file, data row and column in
        the message); a file name that gives no sample id.
    HLAParseError
        An allele cell that is not an allele of its column's locus.
    """
    sid = _sample_from_name(path, sample)
    table = read_table(path)
    col = _columns(table, RESULT_COLUMNS)
    if not table.rows:
        raise InputSchemaError(f"{table.source}: no solution row (OptiType writes one per "
                               "solution)")
    used = set(col.values()) | ({0} if not table.header[0].strip() else set())
    ignored = tuple(h for i, h in enumerate(table.header) if i not in used)
    best: float | None = None
    solutions: list[_Calls] = []
    lower = 0
    for line, cells in table.rows:
        objective = _number(table, cells[col["Objective"]].strip(), line, "Objective")
        _number(table, cells[col["Reads"]].strip(), line, "Reads")
        if best is None:
            best = objective
        elif objective > best + 1e-9 * max(1.0, abs(best)):
            raise InputSchemaError(f"{table.source}: solution on row {line} scores above the "
                                   "first row's (OptiType writes the optimum first)",
                                   raw=cells[col["Objective"]], row=line, column="Objective")
        elif objective < best - 1e-9 * max(1.0, abs(best)):
            lower += 1
            continue
        solutions.append({(s[0], int(s[1])): (_allele(table, s[0], cells[col[s]], line, s),
                                              line, s) for s in SLOTS})
    warnings: list[str] = []
    if len(solutions) > 1:
        warnings.append(f"optitype_tied_solutions({sid} {len(solutions)} solutions with the "
                        "optimal objective)")
    if lower:
        warnings.append(f"optitype_suboptimal_ignored({sid} {lower} solution(s) below the "
                        "optimum)")
    genotype = genotype_from_loci(_locus_typings(sid, table.source, solutions),
                                  raw=f"{table.source}:{sid}")
    return sid, genotype, (*warnings, *hla_untyped_warnings(sid, genotype)), ignored


def read_consolidated(path: Path) -> ReadResult:
    """Read a consolidated OptiType CSV (see the module docstring).

    Raises
    ------
    InputSchemaError
        A missing column, a blank sample id, an unknown ``hla_gene``, a bad
        ``quality_score``, a sample under two subjects, a slot called twice
        differently, or a locus with one allele (file, data row and column).
    HLAParseError
        An allele that is not an allele of its slot's locus.
    """
    table = read_table(path)
    src = table.source
    col = _columns(table, CONSOLIDATED_COLUMNS)
    ignored = tuple(h for i, h in enumerate(table.header) if i not in col.values())
    calls: dict[str, _Calls] = {}
    subjects = SubjectSamples(src)
    notes: dict[str, list[str]] = {}
    for line, cells in table.rows:
        sid = subjects.sample(cells, line, col)
        own = notes.setdefault(sid, [])
        if "quality_score" in col and not is_blank(cells[col["quality_score"]]):
            _number(table, cells[col["quality_score"]].strip(), line, "quality_score")
        gene = cells[col["hla_gene"]].strip()
        m = _SLOT.match(gene)
        if m is None:
            raise InputSchemaError(f"{src}: hla_gene {gene!r} is not an OptiType allele slot "
                                   f"({', '.join(SLOTS)})", raw=gene, row=line,
                                   column="hla_gene")
        key = (m.group("locus").upper(), int(m.group("n")))
        name = _allele(table, key[0], cells[col["hla_allele"]], line, "hla_allele")
        first = calls.setdefault(sid, {}).setdefault(key, (name, line, "hla_allele"))
        if first[1] == line:
            continue
        if first[0] != name:
            raise InputSchemaError(
                f"{src}: sample {sid!r} {gene} is {first[0] or 'blank'} on row {first[1]} and "
                f"{name or 'blank'} on row {line}", raw=cells[col["hla_allele"]], row=line,
                column="hla_allele")
        own.append(f"optitype_duplicate_row({sid} {gene} rows {first[1]} and {line})")
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for sid, per in calls.items():
        genotype = genotype_from_loci(_locus_typings(sid, src, [per]), raw=f"{src}:{sid}")
        own = notes[sid]
        if (note := subjects.note("optitype", sid)) is not None:
            own.append(note)
        genotypes[sid] = genotype
        warnings[sid] = tuple(dict.fromkeys((*own, *hla_untyped_warnings(sid, genotype))))
    return ReadResult("optitype", genotypes, warnings, (str(path),), ignored)


def read_optitype(path: Path, *, sample: str | None = None) -> ReadResult:
    """Read OptiType output: a ``*_result.tsv``, a folder of them, or a
    consolidated CSV (see the module docstring).

    Parameters
    ----------
    path:
        A result TSV, a folder whose ``*_result.tsv`` files are read in name
        order, or a consolidated CSV (recognised by its header).
    sample:
        The sample id of a single result TSV (default: from its file name).

    Returns
    -------
    ReadResult
        ``format="optitype"``.

    Raises
    ------
    UsageError
        ``sample`` given with a folder or a consolidated CSV.
    InputSchemaError, HLAParseError
        The input cannot be read (file, data row and column in the message).
    """
    p = Path(path)
    consolidated = not p.is_dir() and is_consolidated(read_table(p).header)
    files = folder_files(p, SUFFIX)
    if sample is not None and (consolidated or len(files) != 1):
        raise UsageError(f"a sample id ({sample!r}) can only be given with a single OptiType "
                         f"*{SUFFIX} file", raw=sample)
    if consolidated:
        return read_consolidated(p)
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    ignored: dict[str, None] = {}
    for f in files:
        sid, genotype, warns, extra = read_result_file(f, sample=sample)
        if sid in genotypes:
            raise InputSchemaError(f"{f.name}: sample {sid!r} read twice", raw=sid)
        genotypes[sid] = genotype
        warnings[sid] = warns
        ignored.update(dict.fromkeys(extra))
    return ReadResult("optitype", genotypes, warnings, tuple(str(f) for f in files),
                      tuple(ignored))
