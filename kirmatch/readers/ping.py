"""PING (Hollenbach lab) allele calls: ``finalAlleleCalls.csv`` and copy-number frames.

``finalAlleleCalls.csv`` is a wide CSV written by R with the sample ids as row
names (so the first header cell is usually empty) and one column per PING
locus: ``KIR3DP1, KIR2DP1, KIR2DS2, KIR2DL4, KIR3DL3, KIR3DL2, KIR2DS4,
KIR2DL1, KIR2DS1, KIR2DL5, KIR2DL23, KIR2DS35, KIR3DL1S1`` (DOMAIN.md §C.13).

How a cell is read:

* a cell is a **space-separated list of alternative genotypes**; each genotype
  joins its copies with ``+`` (``KIR2DL1*00201+KIR2DL1*00302``);
* ``GENE*null`` is a copy that is **not there** (an absent copy), not an IPD
  null allele: ``KIR2DS1*null+KIR2DS1*null`` means KIR2DS1 absent;
* ``GENE*unresolved`` is a copy that is present with its allele unknown;
* ``failed`` (also ``GENE*failed``; PING also writes it for more than 64
  alternatives) makes every gene of the column unknown with reason
  ``failed`` (a ``kir_gene_failed`` warning), never absent;
* the combined columns ``KIR2DL23``, ``KIR2DS35`` and ``KIR3DL1S1`` are split
  by the gene named in each allele (``KIR3DL1*001+KIR3DS1*013``); their null
  copies may name the column (``KIR3DL1S1*null``). A combined-name
  ``unresolved`` copy may belong to either gene, so both possibilities are
  kept as alternatives;
* across alternatives a gene is **present** only if every alternative has a
  copy of it, **absent** only if none has, and otherwise **unknown**
  (reason ``genotype_alternatives``, warning ``ping_alternatives_disagree``);
  the allele candidates of a present gene are the alternatives' genotypes,
  reduced to the protein level (3 digits) and deduplicated;
* allele names are validated against IPD-KIR 2.13.0 (an unknown name is an
  error naming file, line and column).

**Copy-number frame** (``manualCopyNumberFrame.csv`` preferred, else
``predictedCopyNumberFrame.csv``, looked for beside the calls unless one is
given): one integer per sample and gene; 0 means absent, ≥ 1 present. It fills
genes the calls leave unknown (``ping_filled_by_copy_number``; for
disagreeing alternatives only those consistent with the copy number are kept)
and cross-checks the others: a conflict makes the gene unknown (reason
``copy_number_conflict``) with a ``ping_copy_number_conflict`` warning. In a
combined column only a copy number of 0 carries information (both genes
absent). Copy counts are not compared with the number of called copies.
A sample found only in the copy-number frame is kept with gene-level states
and a ``ping_no_allele_calls`` warning. A copy-number frame can also be read on
its own (a file named ``*CopyNumberFrame.csv``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product
from pathlib import Path

from kirmatch.errors import InputSchemaError, KirmatchError, KIRParseError
from kirmatch.hla import HLAGenotype
from kirmatch.kir import Copy, GeneState, KIRGeneTyping, KIRGenotype
from kirmatch.readers import (
    ReadResult,
    Table,
    allele_name,
    build_kir,
    find_id_column,
    locate,
    present,
    read_table,
    sample_id,
    unknown,
)
from kirmatch.tables import ReferenceTables

__all__ = ["COMBINED_COLUMNS", "read_copy_number_frame", "read_ping", "read_ping_calls"]

#: PING's combined loci and the genes they hold.
COMBINED_COLUMNS: dict[str, tuple[str, ...]] = {
    "KIR2DL23": ("KIR2DL2", "KIR2DL3"),
    "KIR2DS35": ("KIR2DS3", "KIR2DS5"),
    "KIR3DL1S1": ("KIR3DL1", "KIR3DS1"),
}
#: Copy-number frames in the order they are preferred when found beside the calls.
COPY_NUMBER_FILES = ("manualCopyNumberFrame.csv", "predictedCopyNumberFrame.csv")
CALLS_FILE = "finalAlleleCalls.csv"

_TOKEN = re.compile(r"^(?P<gene>KIR[0-9A-Z]+)\*(?P<rest>[0-9A-Z]+)$", re.IGNORECASE)
_BLANK = frozenset({"", "NA", "NAN"})


@dataclass(frozen=True, slots=True)
class _CellResult:
    """One gene of one cell: its state plus the alternatives that contain it."""

    typing: KIRGeneTyping
    with_gene: tuple[tuple[Copy, ...], ...] = ()


def _column_genes(name: str, tables: ReferenceTables) -> tuple[str, ...] | None:
    up = name.strip().upper()
    if up in COMBINED_COLUMNS:
        return COMBINED_COLUMNS[up]
    info = tables.kir_gene(up)
    return (info.gene,) if info is not None else None


def _resolve_columns(table: Table, id_col: int,
                     tables: ReferenceTables) -> dict[int, tuple[str, ...]]:
    columns: dict[int, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for i, h in enumerate(table.header):
        if i == id_col:
            continue
        genes = _column_genes(h, tables)
        if genes is None:
            raise InputSchemaError(f"{table.source}: column {h!r} is not a PING KIR locus",
                                   raw=h, row=table.header_line, column=h)
        for g in genes:
            if g in owner:
                raise InputSchemaError(f"{table.source}: gene {g} is in two columns "
                                       f"({owner[g]!r} and {h!r})", row=table.header_line,
                                       column=h)
            owner[g] = h
        columns[i] = genes
    return columns


def _parse_alternative(alt: str, column: str, genes: tuple[str, ...],
                       tables: ReferenceTables) -> list[dict[str, list[Copy]]] | None:
    """One genotype (``+``-joined copies) → its gene copy lists; ``None`` if failed.

    A combined-name ``unresolved`` copy branches into one possibility per gene.
    """
    copies: dict[str, list[Copy]] = {g: [] for g in genes}
    open_copies = 0
    for tok in alt.split("+"):
        tok = tok.strip()
        m = _TOKEN.match(tok)
        if m is None:
            raise KIRParseError(tok or alt, "expected GENE*allele, GENE*null, "
                                "GENE*unresolved or failed")
        gtok, rest = m.group("gene").upper(), m.group("rest").lower()
        if (gtok == column.upper() and len(genes) > 1) or (
                gtok in COMBINED_COLUMNS and COMBINED_COLUMNS[gtok] == genes):
            tgenes = genes
        else:
            info = tables.kir_gene(gtok)
            if info is None:
                raise KIRParseError(tok, f"unknown KIR gene {m.group('gene')!r}")
            if info.gene not in genes:
                raise KIRParseError(tok, f"a {info.gene} call in the {column} column")
            tgenes = (info.gene,)
        if rest == "failed":
            return None
        if rest == "null":
            continue
        if rest == "unresolved":
            if len(tgenes) == 1:
                copies[tgenes[0]].append(())
            else:
                open_copies += 1
            continue
        if len(tgenes) > 1:
            raise KIRParseError(tok, f"an allele must name one gene, not {gtok}")
        gene, name = allele_name(tok, tables)
        copies[gene].append((name,))
    if not open_copies:
        return [copies]
    out = []
    for combo in product(genes, repeat=open_copies):
        branch = {g: list(c) for g, c in copies.items()}
        for g in combo:
            branch[g].append(())
        out.append(branch)
    return out


def _parse_cell(cell: str, column: str, genes: tuple[str, ...],
                tables: ReferenceTables) -> dict[str, _CellResult]:
    text = cell.strip()
    if text.upper() in _BLANK:
        return {g: _CellResult(unknown(g, "untyped")) for g in genes}
    if any(alt.lower() == "failed" for alt in text.split()):
        return {g: _CellResult(unknown(g, "failed")) for g in genes}
    alternatives: list[dict[str, list[Copy]]] = []
    for alt in text.split():
        parsed = _parse_alternative(alt, column, genes, tables)
        if parsed is None:
            return {g: _CellResult(unknown(g, "failed")) for g in genes}
        alternatives.extend(parsed)
    out: dict[str, _CellResult] = {}
    for g in genes:
        with_gene = tuple(tuple(a[g]) for a in alternatives if a[g])
        if len(with_gene) == len(alternatives):
            out[g] = _CellResult(present(g, with_gene), with_gene)
        elif not with_gene:
            out[g] = _CellResult(KIRGeneTyping(g, GeneState.ABSENT))
        else:
            out[g] = _CellResult(unknown(g, "genotype_alternatives"), with_gene)
    return out


@dataclass(frozen=True, slots=True)
class _Sample:
    states: dict[str, _CellResult]
    raw: str
    line: int


def read_ping_calls(path: Path, tables: ReferenceTables) -> dict[str, _Sample]:
    """Parse ``finalAlleleCalls.csv`` into per-sample cell results (file order)."""
    table = read_table(path)
    id_col = find_id_column(table, is_data_column=lambda h: _column_genes(h, tables)
                            is not None)
    columns = _resolve_columns(table, id_col, tables)
    seen: dict[str, int] = {}
    out: dict[str, _Sample] = {}
    for line, cells in table.rows:
        sid = sample_id(table, line, cells, id_col, seen)
        states: dict[str, _CellResult] = {}
        for i, genes in columns.items():
            col = table.header[i]
            try:
                states.update(_parse_cell(cells[i], col, genes, tables))
            except KirmatchError as exc:
                raise locate(exc, table.source, line, col) from None
        out[sid] = _Sample(states, f"{table.source}:{line}", line)
    return out


def read_copy_number_frame(path: Path, tables: ReferenceTables
                           ) -> dict[str, dict[str, tuple[int, str]]]:
    """Parse a PING copy-number frame: sample → gene → (copy number, column).

    Blank and ``NA`` cells carry no information; a combined column contributes
    only a copy number of 0 (every gene of it absent).

    Raises
    ------
    InputSchemaError
        A cell is not a non-negative integer, or a column is not a KIR locus.
    """
    table = read_table(path)
    id_col = find_id_column(table, is_data_column=lambda h: _column_genes(h, tables)
                            is not None)
    columns = _resolve_columns(table, id_col, tables)
    seen: dict[str, int] = {}
    out: dict[str, dict[str, tuple[int, str]]] = {}
    for line, cells in table.rows:
        sid = sample_id(table, line, cells, id_col, seen)
        per: dict[str, tuple[int, str]] = {}
        for i, genes in columns.items():
            col = table.header[i]
            text = cells[i].strip()
            if text.upper() in _BLANK:
                continue
            try:
                value = float(text)
            except ValueError:
                value = -1.0
            if value < 0 or value != int(value):
                raise InputSchemaError(f"{table.source}: copy number {text!r} is not a "
                                       "non-negative integer", raw=text, row=line, column=col)
            cn = int(value)
            if len(genes) > 1 and cn > 0:
                continue
            for g in genes:
                per[g] = (cn, col)
        out[sid] = per
    return out


def _apply_copy_number(sid: str, result: _CellResult, cn: int,
                       warnings: list[str], *, announce: bool = True) -> KIRGeneTyping:
    t = result.typing
    g = t.gene
    if (t.state is GeneState.PRESENT and cn == 0) or (t.state is GeneState.ABSENT and cn > 0):
        warnings.append(f"ping_copy_number_conflict({sid} {g}: calls {t.state.value}, "
                        f"copy number {cn})")
        return unknown(g, "copy_number_conflict")
    if t.state is not GeneState.UNKNOWN:
        return t
    if announce:
        warnings.append(f"ping_filled_by_copy_number({sid} {g}: {t.reason}, "
                        f"copy number {cn})")
    if cn == 0:
        return KIRGeneTyping(g, GeneState.ABSENT)
    if t.reason == "genotype_alternatives" and result.with_gene:
        return present(g, result.with_gene)
    return KIRGeneTyping(g, GeneState.PRESENT)


def _find_copy_number(calls: Path) -> Path | None:
    for name in COPY_NUMBER_FILES:
        candidate = calls.parent / name
        if candidate.is_file():
            return candidate
    return None


def read_ping(path: Path, tables: ReferenceTables, *,
              copy_number: Path | None = None, find_copy_number: bool = True) -> ReadResult:
    """Read PING output (see the module docstring).

    Parameters
    ----------
    path:
        ``finalAlleleCalls.csv``, a PING results folder holding it, or a
        copy-number frame on its own (``*CopyNumberFrame.csv``).
    tables:
        Reference tables (IPD-KIR allele names).
    copy_number:
        A copy-number frame to use; by default the one beside the calls.
    find_copy_number:
        Look for ``manualCopyNumberFrame.csv`` / ``predictedCopyNumberFrame.csv``
        beside the calls when ``copy_number`` is not given.

    Returns
    -------
    ReadResult
        ``format="ping"``; ``sources`` lists the calls and the frame read.
    """
    p = Path(path)
    if p.is_dir():
        calls_path: Path | None = p / CALLS_FILE
        if not calls_path.is_file():
            raise InputSchemaError(f"{p}: no {CALLS_FILE} in this folder")
    elif p.name.endswith("CopyNumberFrame.csv") and copy_number is None:
        calls_path, copy_number = None, p
    else:
        calls_path = p
    if copy_number is None and find_copy_number and calls_path is not None:
        copy_number = _find_copy_number(calls_path)
    calls = read_ping_calls(calls_path, tables) if calls_path is not None else {}
    cns = read_copy_number_frame(copy_number, tables) if copy_number is not None else {}
    sources = tuple(str(x) for x in (calls_path, copy_number) if x is not None)
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for sid in list(calls) + [s for s in cns if s not in calls]:
        own: list[str] = []
        sample = calls.get(sid)
        cell_results = dict(sample.states) if sample is not None else {}
        if sample is None:
            own.append(f"ping_no_allele_calls({sid})")
        for g, r in cell_results.items():
            if r.typing.reason == "genotype_alternatives":
                own.append(f"ping_alternatives_disagree({sid} {g})")
        states = {g: r.typing for g, r in cell_results.items()}
        for g, (cn, _col) in cns.get(sid, {}).items():
            result = cell_results.get(g, _CellResult(unknown(g, "untyped")))
            states[g] = _apply_copy_number(sid, result, cn, own, announce=sample is not None)
        raw = sample.raw if sample is not None else f"{Path(str(copy_number)).name}"
        genotype, warns = build_kir(sid, states, raw, own)
        genotypes[sid] = genotype
        warnings[sid] = warns
    return ReadResult("ping", genotypes, warnings, sources)
