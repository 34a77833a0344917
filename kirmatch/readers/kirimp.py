"""KIR*IMP SNP imputation: ``imputations.csv`` (gene content only).

Long format with the header ``ID_1,ID_2,haplotypeID,locus,imputedType,
posteriorProbability`` and two rows (``hap.N.1`` and ``hap.N.2``) per sample
and locus (DOMAIN.md §C.13). How it is read, with ``t = min_posterior``
(``kirimp_min_posterior``, default 0.5):

* ``imputedType`` is 0 or 1 for the haplotype; ``posteriorProbability`` is the
  posterior of that call;
* a gene is **present** when a haplotype says 1 with posterior ≥ t;
* **absent** when both haplotypes say 0 with posterior ≥ t;
* otherwise **unknown** (reason ``low_posterior``, warning
  ``kirimp_low_posterior``), e.g. a 1 below t, a 0 below t, or one haplotype
  row missing;
* ``KIR3DL1ex4`` and ``KIR3DL1ex9`` are reconciled into KIR3DL1: present if
  either is present (warning ``kirimp_exon_disagree`` when one says present
  and the other absent), absent if both are absent, else unknown (DOMAIN.md
  §C.13; not confirmed in the primary paper);
* ``KIR2DS4TOTAL`` (or ``KIR2DS4TOT``) gives KIR2DS4; the variant loci
  ``KIR2DS4WT``/``KIR2DS4DEL`` are used only when no total is given (present
  if either is present);
* the haplotype loci ``KIRhaplotype`` (integer haplotype ids) and ``AvsB``
  are ignored;
* genes KIR*IMP does not impute (e.g. KIR3DL2, KIR3DL3) stay **unknown**.

The sample id is ``ID_2`` (the individual id in PLINK/SHAPEIT terms), or
``ID_1`` when ``ID_2`` is blank: ``ID_1`` is the family id, which in most
single-individual files repeats the sample id or is a constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kirmatch.errors import InputSchemaError
from kirmatch.hla import HLAGenotype
from kirmatch.kir import GeneState, KIRGeneTyping, KIRGenotype
from kirmatch.readers import (
    ReadResult,
    build_kir,
    merge_typings,
    read_table,
    unknown,
)
from kirmatch.tables import ReferenceTables

__all__ = ["IGNORED_LOCI", "REQUIRED_COLUMNS", "read_kirimp"]

REQUIRED_COLUMNS = ("ID_1", "ID_2", "haplotypeID", "locus", "imputedType",
                    "posteriorProbability")
#: Loci that are not gene content (compared upper-case).
IGNORED_LOCI = frozenset({"KIRHAPLOTYPE", "AVSB"})
_EXON_LOCI = {"KIR3DL1EX4": "ex4", "KIR3DL1EX9": "ex9"}
_DS4_TOTAL = frozenset({"KIR2DS4TOTAL", "KIR2DS4TOT"})
_DS4_VARIANTS = frozenset({"KIR2DS4WT", "KIR2DS4DEL", "KIR2DS4FL"})


@dataclass(frozen=True, slots=True)
class _Call:
    imputed: int
    posterior: float
    line: int


def _locus_key(locus: str, tables: ReferenceTables) -> str | None:
    """Map a KIR*IMP locus to a key: a canonical gene, ``ex4``/``ex9``, ``ds4:…``."""
    up = locus.strip().upper()
    if up in IGNORED_LOCI:
        return ""
    if up in _EXON_LOCI:
        return _EXON_LOCI[up]
    if up in _DS4_TOTAL:
        return "KIR2DS4"
    if up in _DS4_VARIANTS:
        return f"ds4:{up}"
    info = tables.kir_gene(up)
    return info.gene if info is not None else None


def _call(gene: str, calls: dict[str, _Call], t: float) -> KIRGeneTyping:
    if any(c.imputed == 1 and c.posterior >= t for c in calls.values()):
        return KIRGeneTyping(gene, GeneState.PRESENT)
    if len(calls) == 2 and all(c.imputed == 0 and c.posterior >= t for c in calls.values()):
        return KIRGeneTyping(gene, GeneState.ABSENT)
    return unknown(gene, "low_posterior")


def read_kirimp(path: Path, tables: ReferenceTables, *, min_posterior: float = 0.5
                ) -> ReadResult:
    """Read a KIR*IMP ``imputations.csv`` (see the module docstring).

    Raises
    ------
    InputSchemaError
        A required column is missing, a locus is not a KIR locus, a haplotype
        row is repeated, or ``imputedType``/``posteriorProbability`` is not a
        valid value (file, line and column in the message).
    """
    table = read_table(path)
    src = table.source
    index = {h.strip().lower(): i for i, h in enumerate(table.header)}
    missing = [c for c in REQUIRED_COLUMNS if c.lower() not in index]
    if missing:
        raise InputSchemaError(f"{src}: missing KIR*IMP column(s) {', '.join(missing)}",
                               row=table.header_line, column=missing[0])
    col = {c: index[c.lower()] for c in REQUIRED_COLUMNS}
    # sample -> key -> haplotype -> call
    data: dict[str, dict[str, dict[str, _Call]]] = {}
    for line, cells in table.rows:
        sid = cells[col["ID_2"]].strip() or cells[col["ID_1"]].strip()
        if not sid:
            raise InputSchemaError(f"{src}: blank sample id (ID_1 and ID_2 are both blank)",
                                   row=line, column="ID_2")
        per = data.setdefault(sid, {})
        locus = cells[col["locus"]].strip()
        key = _locus_key(locus, tables)
        if key is None:
            raise InputSchemaError(f"{src}: {locus!r} is not a KIR*IMP locus", raw=locus,
                                   row=line, column="locus")
        if key == "":
            continue
        hap_text = cells[col["haplotypeID"]].strip()
        hap = hap_text.rsplit(".", 1)[-1]
        if hap not in ("1", "2"):
            raise InputSchemaError(f"{src}: haplotypeID {hap_text!r} should end in .1 or .2 "
                                   "(hap.N.1, hap.N.2)", raw=hap_text, row=line,
                                   column="haplotypeID")
        imp_text = cells[col["imputedType"]].strip()
        try:
            imputed_f = float(imp_text)
        except ValueError:
            imputed_f = -1.0
        if imputed_f not in (0.0, 1.0):
            raise InputSchemaError(f"{src}: imputedType {imp_text!r} for {locus} should be 0 "
                                   "or 1", raw=imp_text, row=line, column="imputedType")
        post_text = cells[col["posteriorProbability"]].strip()
        try:
            posterior = float(post_text)
        except ValueError:
            posterior = -1.0
        if not 0.0 <= posterior <= 1.0:
            raise InputSchemaError(f"{src}: posteriorProbability {post_text!r} should be a "
                                   "number within 0..1", raw=post_text, row=line,
                                   column="posteriorProbability")
        calls = per.setdefault(key, {})
        if hap in calls:
            raise InputSchemaError(f"{src}: sample {sid!r} locus {locus} haplotype {hap} on "
                                   f"rows {calls[hap].line} and {line}", row=line,
                                   column="haplotypeID")
        calls[hap] = _Call(int(imputed_f), posterior, line)

    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for sid, per in data.items():
        own: list[str] = []
        states: dict[str, KIRGeneTyping] = {}
        for key, calls in per.items():
            if key in ("ex4", "ex9") or key.startswith("ds4:"):
                continue
            states[key] = _call(key, calls, min_posterior)
        exons = {k: _call("KIR3DL1", per[k], min_posterior) for k in ("ex4", "ex9") if k in per}
        if exons:
            parts = list(exons.values())
            st = {t.state for t in parts}
            if st == {GeneState.PRESENT, GeneState.ABSENT}:
                own.append(f"kirimp_exon_disagree({sid} KIR3DL1: ex4 "
                           f"{exons['ex4'].state.value}, ex9 {exons['ex9'].state.value})")
            states["KIR3DL1"] = merge_typings("KIR3DL1", parts)
        variants = [_call("KIR2DS4", calls, min_posterior)
                    for key, calls in per.items() if key.startswith("ds4:")]
        if variants and "KIR2DS4" not in states:
            states["KIR2DS4"] = merge_typings("KIR2DS4", variants)
        for g, t in states.items():
            if t.state is GeneState.UNKNOWN:
                own.append(f"kirimp_low_posterior({sid} {g})")
        genotype, warns = build_kir(sid, states, f"{src}:{sid}", own)
        genotypes[sid] = genotype
        warnings[sid] = warns
    return ReadResult("kirimp", genotypes, warnings, (str(path),))
