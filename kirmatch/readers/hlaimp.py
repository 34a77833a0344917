"""HLA*IMP:03 SNP imputation: ``imputations.csv`` (DOMAIN.md §C.13).

HLA*IMP:03 (University of Melbourne web service) writes the long format of
KIR*IMP, two rows (haplotypes ``hap.N.1`` and ``hap.N.2``) per sample and
locus; the locus is ``HLA`` + the gene (``HLAA``, ``HLADRB1``) and the imputed
type a 2-field name without its separator (``0201`` = ``*02:01``)::

    ID_1,ID_2,haplotypeID,locus,imputedType,posteriorProbability
    F01,S01,hap.1.1,HLAA,0201,0.99
    F01,S01,hap.1.2,HLAA,1101,1

How it is read, with ``t = min_posterior`` (``hlaimp_min_posterior``, default
0.5):

* ``locus``: ``HLAA`` → A, ``HLADRB1`` → DRB1 (``HLA-A`` and ``A`` are read
  too); any locus of :data:`kirmatch.hla.KNOWN_LOCI`, else an error;
* ``imputedType``: 4 digits are two 2-digit fields (``0201`` → ``A*02:01``);
  5 to 8 digits are kept as a v2 name (``02101`` → ``A*02101``), which is
  converted at lookup like every v2 name (``A*02:101``; DPB1 ``10401`` →
  ``DPB1*104:01``), never split by guess; a name with colons (``02:01``,
  ``A*02:01``) is read as written. Fewer than 4 digits is an error (a leading
  zero lost in a spreadsheet: ``201`` could be nothing else, but is not
  guessed);
* a haplotype's allele counts when its ``posteriorProbability`` is ≥ t;
* a locus is typed only when **both** haplotypes count: two alleles (the same
  allele twice is a homozygous call). When a haplotype is below t, missing,
  blank (``NA``) or not an allele (first field ``00``), the **whole locus is
  left untyped** (unknown), with a warning naming each allele set aside
  (``hlaimp_low_posterior``, ``hlaimp_missing_haplotype``,
  ``hlaimp_untyped``). Keeping the confident allele alone would not be
  "one allele unknown": kirmatch reads a lone allele at a locus as a single
  typing, homozygous under the default ``single_allele`` (DOMAIN.md §A.4);
* an untyped class I locus also gets ``hla_untyped(<sample> <locus>)``, as in
  every HLA reader;
* a haplotype row repeated with the same call is read once
  (``hlaimp_duplicate_row``); with another call it is an error naming both
  rows.

The sample id is ``ID_2``, or ``ID_1`` when ``ID_2`` is blank (the KIR*IMP
convention of :mod:`kirmatch.readers.kirimp`). Other columns are listed in
``ReadResult.ignored``.

Sources: DOMAIN.md §C.13 (``HLAA``, ``0201``); the column layout and an
example are documented in the README of ChrisMBrooks/iKIR_SCORE_CALC (which
reads HLA*IMP:03 output), as are its loci ``HLAA`` … ``HLADRB5``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kirmatch.errors import InputSchemaError, KirmatchError
from kirmatch.hla import (
    KNOWN_LOCI,
    HLAGenotype,
    HLALocusTyping,
    HLASlot,
    HLATyping,
    genotype_from_loci,
    parse_hla_typing,
)
from kirmatch.kir import KIRGenotype
from kirmatch.readers import (
    ImputationRow,
    ReadResult,
    hla_untyped_warnings,
    locate,
    read_imputations,
)
from kirmatch.tabular import is_blank

__all__ = ["hlaimp_locus", "imputed_typing", "read_hlaimp"]

_LOCUS = re.compile(r"^(?:HLA[-_]?)?(?P<locus>[A-Z]+[0-9]?)$", re.IGNORECASE)
_PLACEHOLDERS = frozenset({"NNNN", "XXXX", "UUUU", "NEW"})


def hlaimp_locus(text: str) -> str | None:
    """The kirmatch locus of an HLA*IMP locus name; ``None`` if it is not one.

    >>> [hlaimp_locus(x) for x in ("HLAA", "HLADRB1", "HLA-C", "B", "KIR2DL1", "HLA")]
    ['A', 'DRB1', 'C', 'B', None, None]
    """
    m = _LOCUS.match(text.strip())
    if m is None:
        return None
    locus = m.group("locus").upper()
    if locus == "CW":
        return "C"
    return locus if locus in KNOWN_LOCI else None


def imputed_typing(locus: str, text: str) -> HLATyping | None:
    """The typing of one ``imputedType`` cell; ``None`` when it names no allele
    (blank, ``NA``, a WMDA placeholder, or the first field ``00``).

    >>> str(imputed_typing("A", "0201")), str(imputed_typing("DPB1", "10401"))
    ('A*02:01', 'DPB1*10401')
    >>> str(imputed_typing("C", "07:02")), imputed_typing("DRB3", "0000")
    ('C*07:02', None)
    >>> imputed_typing("A", "201")
    Traceback (most recent call last):
    ...
    kirmatch.errors.InputSchemaError: imputedType '201' has 3 digits; ... as text

    Raises
    ------
    InputSchemaError
        Fewer than 4 digits, or more than 8.
    HLAParseError
        Not an allele name of ``locus``.
    """
    s = text.strip()
    if is_blank(s) or s.upper() in _PLACEHOLDERS:
        return None
    if s.isdigit():
        if len(s) < 4 or len(s) > 8:
            hint = (": a leading zero lost in a spreadsheet? Re-export the file as text"
                    if len(s) < 4 else "")
            raise InputSchemaError(f"imputedType {s!r} has {len(s)} digits; HLA*IMP writes 4 "
                                   f"or more (0201 for {locus}*02:01){hint}", raw=s)
        if s.startswith("00"):
            return None
        name = f"{locus}*{s[:2]}:{s[2:]}" if len(s) == 4 else f"{locus}*{s}"
        return parse_hla_typing(name, locus=locus)
    typing = parse_hla_typing(s, locus=locus)
    return None if typing.first_field == "00" else typing


@dataclass(frozen=True, slots=True)
class _Call:
    typing: HLATyping | None
    text: str
    posterior: float | None
    line: int


def _row_call(row: ImputationRow, locus: str, src: str) -> _Call:
    """The call of one haplotype row (a blank type may have a blank posterior)."""
    try:
        typing = imputed_typing(locus, row.imputed)
    except KirmatchError as exc:
        raise locate(exc, src, row.line, "imputedType") from None
    if typing is None and is_blank(row.posterior):
        return _Call(None, row.imputed, None, row.line)
    try:
        value = float(row.posterior)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise InputSchemaError(f"{src}: posteriorProbability {row.posterior!r} should be a "
                               "number within 0..1", raw=row.posterior, row=row.line,
                               column="posteriorProbability")
    return _Call(typing, row.imputed, value, row.line)


def _locus_typing(sid: str, locus: str, calls: dict[str, _Call], t: float,
                  warnings: list[str]) -> HLALocusTyping | None:
    """Both haplotypes at or above ``t`` → the locus; otherwise ``None`` with warnings."""
    good: list[HLASlot] = []
    for hap in ("1", "2"):
        c = calls.get(hap)
        if c is None:
            warnings.append(f"hlaimp_missing_haplotype({sid} {locus} hap {hap})")
        elif c.typing is None:
            warnings.append(f"hlaimp_untyped({sid} {locus} hap {hap} {c.text or 'blank'!r})")
        elif c.posterior is not None and c.posterior < t:
            warnings.append(f"hlaimp_low_posterior({sid} {locus} hap {hap} {c.typing} "
                            f"posterior {c.posterior:g} < {t:g})")
        else:
            good.append(HLASlot((c.typing,)))
    if len(good) < 2:
        if good:
            warnings.append(f"hlaimp_locus_untyped({sid} {locus}: {good[0]} kept out, the "
                            "other haplotype is not called)")
        return None
    return HLALocusTyping(locus, (tuple(good),))


def read_hlaimp(path: Path, *, min_posterior: float = 0.5) -> ReadResult:
    """Read an HLA*IMP:03 ``imputations.csv`` (see the module docstring).

    Parameters
    ----------
    path:
        The file.
    min_posterior:
        A haplotype's allele counts when its posterior is at least this
        (``hlaimp_min_posterior``).

    Returns
    -------
    ReadResult
        ``format="hlaimp"``; samples in order of first appearance.

    Raises
    ------
    InputSchemaError
        A required column is missing, a blank sample id, a locus that is not an
        HLA locus, a bad haplotype id or posterior, or a haplotype called twice
        differently (file, data row and column in the message).
    HLAParseError
        An ``imputedType`` that is not an allele of its locus.
    """
    src = path.name
    rows, ignored = read_imputations(path, "HLA*IMP")
    data: dict[str, dict[str, dict[str, _Call]]] = {}
    own: dict[str, list[str]] = {}
    for row in rows:
        locus = hlaimp_locus(row.locus)
        if locus is None:
            raise InputSchemaError(
                f"{src}: {row.locus!r} is not an HLA locus (HLA*IMP writes HLAA, HLAB, "
                "HLAC, HLADRB1 …; KIR*IMP output is read with --kir)", raw=row.locus,
                row=row.line, column="locus")
        sid, hap, call = row.sample, row.haplotype, _row_call(row, locus, src)
        calls = data.setdefault(sid, {}).setdefault(locus, {})
        notes = own.setdefault(sid, [])
        first = calls.setdefault(hap, call)
        if first is call:
            continue
        if (str(first.typing), first.posterior) != (str(call.typing), call.posterior):
            raise InputSchemaError(
                f"{src}: sample {sid!r} locus {locus} haplotype {hap} is called "
                f"{first.text!r} on row {first.line} and {call.text!r} on row {row.line}",
                raw=call.text, row=row.line, column="imputedType")
        notes.append(f"hlaimp_duplicate_row({sid} {locus} hap {hap} rows {first.line} "
                     f"and {row.line})")
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    for sid, per in data.items():
        notes = own[sid]
        loci = [lt for locus, calls in per.items()
                if (lt := _locus_typing(sid, locus, calls, min_posterior, notes)) is not None]
        genotype = genotype_from_loci(loci, raw=f"{src}:{sid}")
        genotypes[sid] = genotype
        warnings[sid] = tuple(dict.fromkeys((*notes, *hla_untyped_warnings(sid, genotype))))
    return ReadResult("hlaimp", genotypes, warnings, (str(path),), ignored)
