"""T1K KIR genotypes: ``<sample>_genotype.tsv`` (one sample per file, or a
folder of them), and the consolidated multi-sample CSV.

T1K writes one tab-separated line per gene, with no header (DOMAIN.md §C.13)::

    gene_name  num_alleles  allele_1  abundance_1  quality_1  allele_2  abundance_2  quality_2

plus an optional 9th column of secondary calls (``allele;abundance;quality``).
An empty slot is ``. 0 -1``. How it is read:

* an allele counts if its quality is **greater than** ``min_quality``
  (``t1k_min_quality``, default 0: T1K's own advice is to keep calls with
  quality > 0);
* ``num_alleles`` 0 → the gene is **absent**;
* a gene line whose calls are all at or below the threshold → **unknown**
  (reason ``low_quality``, warning ``t1k_low_quality``), not absent; when one
  call passes and the other does not, the gene is present and the failing call
  becomes a copy whose allele is unknown (``t1k_low_quality`` warning);
* a gene missing from the file → **unknown** (``untyped``): T1K sometimes omits
  framework genes;
* ``num_alleles`` 1 does not say whether there are one or two identical copies;
  it is read as one copy of that allele (copy number is not inferred);
* KIR2DL2 and KIR2DL3 are separate genes (up to 4 alleles together);
* KIR2DL5A and KIR2DL5B lines are merged into KIR2DL5 (present if either is).
  Low-quality KIR2DL5A/B calls can be false positives (mourisl/T1K#8 reports a
  false-positive KIR2DL5B with quality 45), so every counted KIR2DL5A/B call
  with quality below T1K's maximum of 60 gets a ``t1k_kir2dl5_low_quality``
  warning;
* an allele slot may list several equally good alleles separated by commas;
  they become alternatives of one copy;
* allele names are validated against IPD-KIR 2.13.0 and reduced to the
  protein level (``KIR2DL1*00302`` → ``KIR2DL1*003``); an unknown name is an
  error naming file, line and column;
* the secondary calls (9th column) are not used.

The sample id is the file name without ``_genotype.tsv``; a folder is read as
one sample per ``*_genotype.tsv`` file, in file-name order.

**Consolidated CSV.** T1K itself writes no multi-sample genotype table (its
``t1k-merge.py`` writes an allele-abundance matrix of several runs of *one*
individual, which is not read). Pipelines that run T1K per sample flatten the
``*_genotype.tsv`` files into one CSV, one row per sample and gene, keeping
the gene, ``num_alleles`` and the first allele's abundance and quality but no
allele names (ChrisMBrooks/TENX_2_KIR_HLA ``consolidate_results.py``; the
layout documented by ChrisMBrooks/iKIR_SCORE_CALC)::

    subject_id,sample_id,kir_gene,allele_count,abundance,quality_score
    P01,S01,KIR2DL1,2,249.030129,60
    P01,S01,KIR2DL2,0,0.0,-1

Required: ``sample_id``, ``kir_gene``, ``allele_count``, ``quality_score``;
``subject_id`` and ``abundance`` are read when present (``batch_id`` and an
unnamed pandas index are ignored). The single-sample semantics apply, at
gene level (there are no allele names):

* ``allele_count`` 0 → **absent**;
* ``allele_count`` ≥ 1 with ``quality_score`` > ``min_quality`` → **present**
  (allele unknown); at or below it → **unknown** (``low_quality``, warning
  ``t1k_low_quality``); a KIR2DL5A/B call below 60 gets
  ``t1k_kir2dl5_low_quality``;
* a gene without a row → **unknown** (``untyped``);
* the sample id is ``sample_id``; a subject with several samples is never
  merged (warning ``t1k_subject_samples``), a sample under two subjects is an
  error; the same sample and gene twice with the same values is read once
  (``t1k_duplicate_row``), with other values it is an error naming both rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from kirmatch.errors import InputSchemaError, KirmatchError, KIRParseError
from kirmatch.hla import HLAGenotype
from kirmatch.kir import Copy, GeneState, KIRGeneTyping, KIRGenotype, unstated_parts
from kirmatch.readers import (
    ReadResult,
    SubjectSamples,
    allele_name,
    build_kir,
    folder_files,
    header_cells,
    locate,
    merge_typings,
    present,
    read_table,
    read_text,
    unknown,
)
from kirmatch.tables import ReferenceTables

__all__ = ["COLUMNS", "CONSOLIDATED_COLUMNS", "SUFFIX", "is_consolidated", "read_t1k",
           "read_t1k_consolidated", "read_t1k_file"]

SUFFIX = "_genotype.tsv"
#: T1K's column names, used in error messages.
COLUMNS = ("gene_name", "num_alleles", "allele_1", "abundance_1", "quality_1",
           "allele_2", "abundance_2", "quality_2", "secondary_alleles")
#: T1K's highest genotype quality; KIR2DL5A/B calls below it get a warning.
T1K_MAX_QUALITY = 60.0
#: The required columns of a consolidated multi-sample CSV.
CONSOLIDATED_COLUMNS = ("sample_id", "kir_gene", "allele_count", "quality_score")


def is_consolidated(header: Iterable[str]) -> bool:
    """True for the header of a consolidated T1K CSV.

    >>> is_consolidated(["", "kir_gene", "allele_count", "abundance", "quality_score",
    ...                  "batch_id", "sample_id"])
    True
    """
    return set(CONSOLIDATED_COLUMNS) <= {h.strip().lower() for h in header}


def _gene_names(gene_text: str, tables: ReferenceTables, source: str, line: int,
                column: str) -> tuple[str, str]:
    """(IPD gene name as written, canonical gene) of a T1K gene cell."""
    info = tables.kir_gene(gene_text)
    if info is None:
        raise InputSchemaError(f"{source}: {gene_text!r} is not a KIR gene", raw=gene_text,
                               row=line, column=column)
    up = gene_text.upper()
    return (up if up.startswith("KIR") else f"KIR{up}"), info.gene


def _number(text: str, source: str, line: int, column: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputSchemaError(f"{source}: {column} {text!r} is not a number", raw=text,
                               row=line, column=column) from None


def _row_typing(sid: str, fields: Sequence[str], source: str, line: int,
                tables: ReferenceTables, min_quality: float,
                warnings: list[str]) -> tuple[str, KIRGeneTyping]:
    """One gene line → (IPD gene name as written, typing of the canonical gene)."""
    ipd, gene = _gene_names(fields[0].strip(), tables, source, line, COLUMNS[0])
    n_text = fields[1].strip()
    try:
        n = int(n_text)
    except ValueError:
        n = -1
    if n < 0:
        raise InputSchemaError(f"{source}: num_alleles {n_text!r} is not a non-negative "
                               "integer", raw=n_text, row=line, column=COLUMNS[1])
    counted: list[Copy] = []
    dropped = 0
    filled = 0
    for slot in (0, 1):
        a_col, ab_col, q_col = COLUMNS[2 + 3 * slot], COLUMNS[3 + 3 * slot], COLUMNS[4 + 3 * slot]
        allele = fields[2 + 3 * slot].strip()
        _number(fields[3 + 3 * slot].strip(), source, line, ab_col)
        quality = _number(fields[4 + 3 * slot].strip(), source, line, q_col)
        if allele in (".", ""):
            continue
        filled += 1
        names: list[str] = []
        for token in allele.split(","):
            try:
                g, name = allele_name(token, tables)
                if not token.strip().upper().startswith(ipd + "*"):
                    raise KIRParseError(token, f"not an allele of {ipd}")
            except KirmatchError as exc:
                raise locate(exc, source, line, a_col) from None
            assert g == gene
            names.append(name)
        copy = tuple(dict.fromkeys(names))
        if quality > min_quality:
            counted.append(copy)
            if gene == "KIR2DL5" and quality < T1K_MAX_QUALITY:
                warnings.append(f"t1k_kir2dl5_low_quality({sid} {allele.split(',')[0]} "
                                f"quality {quality:g})")
        else:
            dropped += 1
            warnings.append(f"t1k_low_quality({sid} {allele.split(',')[0]} "
                            f"quality {quality:g})")
    if n == 0:
        if filled:
            raise InputSchemaError(f"{source}: num_alleles is 0 but an allele is given",
                                   row=line, column=COLUMNS[1])
        return ipd, KIRGeneTyping(gene, GeneState.ABSENT)
    if not filled:
        raise InputSchemaError(f"{source}: num_alleles is {n} but no allele is given",
                               row=line, column=COLUMNS[2])
    if not counted:
        return ipd, unknown(gene, "low_quality")
    return ipd, present(gene, [tuple(counted) + ((),) * dropped])


def read_t1k_file(path: Path, tables: ReferenceTables, *, min_quality: float = 0.0,
                  sample: str | None = None) -> tuple[str, KIRGenotype, tuple[str, ...]]:
    """Read one ``<sample>_genotype.tsv``; return (sample id, genotype, warnings).

    Raises
    ------
    InputSchemaError
        Empty or undecodable file, a short line, a gene given twice, bad numbers.
    KIRParseError, UnknownAlleleError
        A bad or unknown allele name (file, line and column in the message).
    """
    source = path.name
    sid = sample or (path.name[:-len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem)
    if not sid:
        raise InputSchemaError(f"{source}: cannot take a sample id from the file name")
    text = read_text(path)
    own: list[str] = []
    rows: dict[str, list[KIRGeneTyping]] = {}
    named: dict[str, list[str]] = {}      # gene -> its lines' gene names
    seen: dict[str, int] = {}
    for line, raw_line in enumerate(text.splitlines(), start=1):
        if not raw_line.strip():
            continue
        fields = raw_line.rstrip("\r\n").split("\t")
        if len(fields) < 8:
            fields = raw_line.split()
        if len(fields) < 8:
            raise InputSchemaError(f"{source}: {len(fields)} columns, T1K writes 8 "
                                   f"({COLUMNS[len(fields)]} is missing)", row=line,
                                   column=COLUMNS[len(fields)])
        ipd, typing = _row_typing(sid, fields, source, line, tables, min_quality, own)
        if ipd in seen:
            raise InputSchemaError(f"{source}: gene {ipd} on lines {seen[ipd]} and {line}",
                                   raw=ipd, row=line, column=COLUMNS[0])
        seen[ipd] = line
        rows.setdefault(typing.gene, []).append(typing)
        named.setdefault(typing.gene, []).append(ipd)
    # a gene of two lines (KIR2DL5A, KIR2DL5B) with one missing: that one is
    # unknown, not absent (a gene missing from the file is unknown)
    states = {g: merge_typings(g, [*parts, *unstated_parts(g, named[g], tables)])
              for g, parts in rows.items()}
    genotype, warns = build_kir(sid, states, source, own)
    return sid, genotype, warns


def _consolidated_number(source: str, text: str, line: int, column: str, *,
                         count: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (count and (value < 0 or value != int(value))):
        what = "a non-negative integer" if count else "a number"
        raise InputSchemaError(f"{source}: {column} {text!r} is not {what}", raw=text,
                               row=line, column=column)
    return value


def _gene_call(sid: str, ipd: str, gene: str, n: float, quality: float, min_quality: float,
               warnings: list[str]) -> KIRGeneTyping:
    """Gene-level state of one consolidated row (see the module docstring)."""
    if n == 0:
        return KIRGeneTyping(gene, GeneState.ABSENT)
    if quality <= min_quality:
        warnings.append(f"t1k_low_quality({sid} {ipd} quality {quality:g})")
        return unknown(gene, "low_quality")
    if gene == "KIR2DL5" and quality < T1K_MAX_QUALITY:
        warnings.append(f"t1k_kir2dl5_low_quality({sid} {ipd} quality {quality:g})")
    return KIRGeneTyping(gene, GeneState.PRESENT)


def read_t1k_consolidated(path: Path, tables: ReferenceTables, *,
                          min_quality: float = 0.0) -> ReadResult:
    """Read a consolidated multi-sample T1K CSV (see the module docstring).

    Raises
    ------
    InputSchemaError
        A missing column, a blank sample id, a gene that is not a KIR gene, a
        bad ``allele_count``/``quality_score``/``abundance``, a sample under
        two subjects, or a sample and gene given twice with other values (file,
        data row and column in the message).
    """
    table = read_table(path)
    src = table.source
    index = {h.strip().lower(): i for i, h in enumerate(table.header)}
    missing = [c for c in CONSOLIDATED_COLUMNS if c not in index]
    if missing:
        raise InputSchemaError(f"{src}: missing T1K column(s) {', '.join(missing)}",
                               column=missing[0])
    col = {c: index[c] for c in (*CONSOLIDATED_COLUMNS, "subject_id", "abundance")
           if c in index}
    skip = {*col.values(), index.get("batch_id"), index.get("")}
    ignored = tuple(h for i, h in enumerate(table.header) if i not in skip)
    subjects = SubjectSamples(src)
    # sample -> IPD gene as written -> (canonical gene, allele_count, quality, data row)
    rows: dict[str, dict[str, tuple[str, float, float, int]]] = {}
    notes: dict[str, list[str]] = {}
    for line, cells in table.rows:
        sid = subjects.sample(cells, line, col)
        own = notes.setdefault(sid, [])
        ipd, gene = _gene_names(cells[col["kir_gene"]].strip(), tables, src, line, "kir_gene")
        n = _consolidated_number(src, cells[col["allele_count"]].strip(), line,
                                 "allele_count", count=True)
        quality = _consolidated_number(src, cells[col["quality_score"]].strip(), line,
                                       "quality_score")
        if "abundance" in col:
            _consolidated_number(src, cells[col["abundance"]].strip(), line, "abundance")
        _, n0, q0, line0 = rows.setdefault(sid, {}).setdefault(ipd, (gene, n, quality, line))
        if line0 == line:
            continue
        if (n0, q0) != (n, quality):
            raise InputSchemaError(
                f"{src}: sample {sid!r} {ipd} has allele_count {n0:g}, quality {q0:g} on row "
                f"{line0} and {n:g}, {quality:g} on row {line}", raw=sid, row=line,
                column="allele_count")
        own.append(f"t1k_duplicate_row({sid} {ipd} rows {line0} and {line})")
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for sid, genes in rows.items():
        own = notes[sid]
        parts: dict[str, list[KIRGeneTyping]] = {}
        for ipd, (gene, n, quality, _) in genes.items():
            parts.setdefault(gene, []).append(
                _gene_call(sid, ipd, gene, n, quality, min_quality, own))
        if (note := subjects.note("t1k", sid)) is not None:
            own.append(note)
        states = {g: merge_typings(g, [*ps, *unstated_parts(
            g, [i for i in genes if genes[i][0] == g], tables)]) for g, ps in parts.items()}
        genotypes[sid], warnings[sid] = build_kir(sid, states, f"{src}:{sid}", own)
    return ReadResult("t1k", genotypes, warnings, (str(path),), ignored)


def read_t1k(path: Path, tables: ReferenceTables, *, min_quality: float = 0.0) -> ReadResult:
    """Read a T1K ``*_genotype.tsv`` file, a folder of them (one sample per file),
    or a consolidated multi-sample CSV (recognised by its header).

    Parameters
    ----------
    path:
        A file, or a folder whose ``*_genotype.tsv`` files are read in name order.
    tables:
        Reference tables (IPD-KIR allele names).
    min_quality:
        An allele counts if its quality is greater than this (``t1k_min_quality``).

    Returns
    -------
    ReadResult
        ``format="t1k"``.
    """
    p = Path(path)
    if p.is_file() and not p.name.endswith(SUFFIX) and is_consolidated(
            header_cells(read_text(p))):
        return read_t1k_consolidated(p, tables, min_quality=min_quality)
    files = folder_files(p, SUFFIX)
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for f in files:
        sid, genotype, warns = read_t1k_file(f, tables, min_quality=min_quality)
        if sid in genotypes:
            raise InputSchemaError(f"{f.name}: sample {sid!r} read twice", raw=sid)
        genotypes[sid] = genotype
        warnings[sid] = warns
    return ReadResult("t1k", genotypes, warnings, tuple(str(f) for f in files))
