"""T1K KIR genotypes: ``<sample>_genotype.tsv`` (one sample per file).

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
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kirmatch.errors import InputSchemaError, KirmatchError, KIRParseError
from kirmatch.hla import HLAGenotype
from kirmatch.kir import Copy, GeneState, KIRGeneTyping, KIRGenotype
from kirmatch.readers import (
    ReadResult,
    allele_name,
    build_kir,
    folder_files,
    locate,
    merge_typings,
    present,
    read_text,
    unknown,
)
from kirmatch.tables import ReferenceTables

__all__ = ["COLUMNS", "SUFFIX", "read_t1k", "read_t1k_file"]

SUFFIX = "_genotype.tsv"
#: T1K's column names, used in error messages.
COLUMNS = ("gene_name", "num_alleles", "allele_1", "abundance_1", "quality_1",
           "allele_2", "abundance_2", "quality_2", "secondary_alleles")
#: T1K's highest genotype quality; KIR2DL5A/B calls below it get a warning.
T1K_MAX_QUALITY = 60.0


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
    gene_text = fields[0].strip()
    info = tables.kir_gene(gene_text)
    if info is None:
        raise InputSchemaError(f"{source}: {gene_text!r} is not a KIR gene", raw=gene_text,
                               row=line, column=COLUMNS[0])
    ipd = gene_text.upper() if gene_text.upper().startswith("KIR") else f"KIR{gene_text.upper()}"
    gene = info.gene
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
    states = {g: merge_typings(g, parts) for g, parts in rows.items()}
    genotype, warns = build_kir(sid, states, source, own)
    return sid, genotype, warns


def read_t1k(path: Path, tables: ReferenceTables, *, min_quality: float = 0.0) -> ReadResult:
    """Read a T1K ``*_genotype.tsv`` file, or a folder of them (one sample per file).

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
    files = folder_files(Path(path), SUFFIX)
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for f in files:
        sid, genotype, warns = read_t1k_file(f, tables, min_quality=min_quality)
        if sid in genotypes:
            raise InputSchemaError(f"{f.name}: sample {sid!r} read twice", raw=sid)
        genotypes[sid] = genotype
        warnings[sid] = warns
    return ReadResult("t1k", genotypes, warnings, tuple(str(f) for f in files))
