"""Donor-specific anti-HLA antibodies (DSA), rule 13.

Basis: Ciurea SO et al., EBMT consensus on DSA in haploidentical HCT, Bone
Marrow Transplant 2018;53:521-534, doi:10.1038/s41409-018-0112-y; MD Anderson
data (Ciurea et al., Biol Blood Marrow Transplant 2015;21:1392).

An antibody is donor-specific when its allele has the same 2-field protein as
an expressed donor allele at that locus, or its antigen is among the serologic
antigens py-ard maps from a donor allele (split and broad: B*57:01 -> B57, B17).
Donor ambiguity is handled by propagation: a tier is reported only when every
resolution of the donor typing gives the same tier.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from numbers import Real
from typing import TYPE_CHECKING, Any

from kirmatch.api import check_sequence, check_type
from kirmatch.errors import (
    HLAParseError,
    InputSchemaError,
    KirmatchError,
    PyardUnavailableError,
    UnknownAlleleError,
)
from kirmatch.hla import HLAGenotype, HLATyping, TypingKind, parse_hla_typing
from kirmatch.options import Options
from kirmatch.pyard_backend import PyardBackend
from kirmatch.tables import ReferenceTables

if TYPE_CHECKING:
    from kirmatch.ligands import PersonHLA

__all__ = ["Antibody", "DSAHit", "DSAResult", "antibodies_by_recipient", "assess_dsa",
           "dsa_tier", "parse_antibody"]

TIERS = ("none", "low", "high", "very high")


@dataclass(frozen=True, slots=True)
class Antibody:
    """One recipient antibody: a specificity (allele or antigen, or ``NONE`` for a
    negative screen), its MFI and an optional C1q result."""

    specificity: str
    mfi: float
    c1q: bool | None = None
    typing: HLATyping | None = None

    @property
    def negative_screen(self) -> bool:
        return self.typing is None


def parse_antibody(specificity: str, mfi: object, c1q: object = None, *,
                   tables: ReferenceTables | None = None) -> Antibody:
    """Validate one antibody row (errors name the value).

    >>> parse_antibody("HLA-Cw4", "3000").typing.name
    'Cw4'
    >>> parse_antibody("B*57:01", 14500, "pos").c1q
    True
    >>> parse_antibody("B44", -1)
    Traceback (most recent call last):
    ...
    kirmatch.errors.HLAParseError: cannot parse '-1': MFI must be a finite, non-negative number [column 'mfi']

    ``c1q`` is ``pos``/``neg`` (and synonyms), a bool, ``1``/``0``, or
    blank/``None``/NaN (not tested).

    Raises
    ------
    HLAParseError, UnknownAlleleError
        A value cannot be read; the message names it and its column.
    TypeError
        ``specificity`` is not a str, ``mfi`` not a str or number (or None =
        blank), ``c1q`` not a str, bool, number or None, or ``tables`` not
        ``ReferenceTables`` or None.
    """
    check_type("specificity", specificity, str)
    check_type("mfi", mfi, (str, Real), none_ok=True, expected="str or a number")
    check_type("c1q", c1q, (str, bool, Real), none_ok=True, expected="str or bool or a number")
    check_type("tables", tables, ReferenceTables, none_ok=True)
    spec = specificity.strip()
    value = parse_mfi(mfi)
    c = None if c1q is None else str(c1q).strip().lower()
    if c in (None, "", "nan", "na"):
        c1 = None
    elif c in ("pos", "positive", "+", "1", "true", "yes"):
        c1 = True
    elif c in ("neg", "negative", "-", "0", "false", "no"):
        c1 = False
    else:
        raise HLAParseError(str(c1q), "C1q must be pos, neg or blank", column="c1q")
    if spec.upper() in ("NONE", "NEG", "NEGATIVE"):
        return Antibody("NONE", value, c1)
    if not spec:
        raise HLAParseError(spec, "empty antibody specificity", column="specificity")
    try:
        t = parse_hla_typing(spec.replace(" ", ""))
    except HLAParseError as exc:
        raise exc.located(column="specificity") from None
    if t.kind not in (TypingKind.ALLELE, TypingKind.SEROLOGY):
        raise HLAParseError(spec, "an antibody specificity must be an allele (A*02:01) or an "
                            "antigen (A2, B44, Cw4, DR4, DQ7)", column="specificity")
    if t.kind == TypingKind.ALLELE and tables is not None and t.locus in ("A", "B", "C") and \
            not tables.hla_records_with_prefix(t.name):
        raise UnknownAlleleError(t.name, "IPD-IMGT/HLA 3.58.0", column="specificity")
    return Antibody(t.name, value, c1, t)


_PLAIN_NUMBER = re.compile(r"^[+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_DOT_THOUSANDS = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{3})+$")
_COMMA_THOUSANDS = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$")


def parse_mfi(value: object) -> float:
    """An MFI cell as a finite number ≥ 0 (errors explain the value).

    Thousands separators: ``1,200,000`` (two commas, no decimal-comma reading)
    is 1200000; ``14,200`` (could be 14.2 with a decimal comma) and dots as
    thousands separators (``14.200``, ``1.200.000``) are ambiguous and refused.

    >>> parse_mfi("14500"), parse_mfi(" 1,200,000 "), parse_mfi(2100.5), parse_mfi("1e3")
    (14500.0, 1200000.0, 2100.5, 1000.0)
    >>> parse_mfi("14.200")
    Traceback (most recent call last):
    ...
    kirmatch.errors.HLAParseError: cannot parse '14.200': ambiguous MFI: 14.2 or 14200 (a dot as thousands separator?); write it without separators, e.g. 14200 [column 'mfi']
    >>> parse_mfi("inf")
    Traceback (most recent call last):
    ...
    kirmatch.errors.HLAParseError: cannot parse 'inf': MFI must be a finite, non-negative number [column 'mfi']

    Raises
    ------
    HLAParseError
        The value is blank (``None`` included), negative, not finite, or
        ambiguous; the message names it.
    TypeError
        ``value`` is not a str, a number or None.
    """
    check_type("value", value, (str, Real), none_ok=True, expected="str or a number")
    if isinstance(value, bool):
        raise HLAParseError(str(value), "MFI must be a finite, non-negative number", column="mfi")
    if isinstance(value, (int, float)):
        x = float(value)
        if not math.isfinite(x) or x < 0:
            raise HLAParseError(str(value), "MFI must be a finite, non-negative number", column="mfi")
        return x
    text = "" if value is None else str(value).strip()
    if not text:
        raise HLAParseError(text, "MFI is empty; give a finite, non-negative number", column="mfi")
    if _DOT_THOUSANDS.match(text) and text.count(".") >= 1:
        digits = text.replace(".", "")
        if text.count(".") == 1:
            why = (f"ambiguous MFI: {float(text):g} or {int(digits)} (a dot as thousands "
                   "separator?)")
        else:
            why = f"ambiguous MFI: dots as thousands separators ({int(digits)}?)"
        raise HLAParseError(text, f"{why}; write it without separators, e.g. {int(digits)}",
                            column="mfi")
    if "," in text:
        if _COMMA_THOUSANDS.match(text) and (text.count(",") > 1 or "." in text):
            text = text.replace(",", "")
        else:
            plain = text.replace(",", "")
            raise HLAParseError(text, f"ambiguous MFI: a decimal comma or a thousands "
                                f"separator? write it without separators (e.g. {plain}) or "
                                "with a decimal point", column="mfi")
    if not _PLAIN_NUMBER.match(text):
        raise HLAParseError(text, "MFI must be a finite, non-negative number", column="mfi")
    x = float(text)
    if not math.isfinite(x):
        raise HLAParseError(text, "MFI must be a finite, non-negative number", column="mfi")
    return x


@dataclass(frozen=True, slots=True)
class DSAHit:
    """One donor-specific antibody and the donor allele it hits."""

    specificity: str
    mfi: float
    c1q: bool | None
    donor_allele: str

    def label(self) -> str:
        return f"{self.specificity}, MFI {self.mfi:,.0f}" + (", C1q+" if self.c1q else "")


@dataclass(frozen=True, slots=True)
class DSAResult:
    max_mfi: float | None
    tier: str | None
    hits: tuple[DSAHit, ...]
    reason: str | None = None
    warnings: tuple[str, ...] = ()


def dsa_tier(max_mfi: float, any_c1q: bool, options: Options) -> str:
    """Tier per rule 13 (highest that applies).

    >>> o = Options()
    >>> dsa_tier(3200, False, o), dsa_tier(14500, True, o), dsa_tier(500, True, o)
    ('low', 'high', 'high')
    >>> dsa_tier(20001, False, o), dsa_tier(999, False, o), dsa_tier(5000, False, o)
    ('very high', 'none', 'low')
    """
    if max_mfi > options.dsa_very_high_mfi:
        return "very high"
    if max_mfi > options.dsa_high_mfi or any_c1q:
        return "high"
    if max_mfi >= options.dsa_low_mfi:
        return "low"
    return "none"


def _donor_slots(donor: HLAGenotype | None, locus: str) -> list[list[HLATyping]] | None:
    """Each donor position at ``locus`` as its alternative typings (None = untyped)."""
    if donor is None:
        return None
    lt = donor.locus(locus)
    if lt is None:
        return None
    out: list[list[HLATyping]] = []
    for alt in lt.alternatives:
        for slot in alt:
            out.append(list(slot.alternatives))
    return out


def _match(ab: Antibody, typing: HLATyping, pyard: PyardBackend | None) -> bool | None:
    """Does this antibody hit this donor typing? None = cannot tell."""
    t = ab.typing
    assert t is not None
    if typing.suffix == "N":
        return False
    if t.kind == TypingKind.ALLELE:
        if typing.kind == TypingKind.ALLELE:
            return typing.protein == t.protein
        return None
    # antigen-level
    if typing.kind == TypingKind.SEROLOGY:
        if typing.name.upper() == t.name.upper():
            return True
        if pyard is None:
            return None
    if pyard is None:
        raise PyardUnavailableError(
            f"antigen-level antibody {ab.specificity!r} needs py-ard's serology tables; build "
            "its database with `kirmatch data build` (or --imgt-mirror DIR offline)"
        )
    try:
        if typing.kind == TypingKind.ALLELE:
            antigens = {a.upper() for a in pyard.serology(typing.protein or typing.name)}
        else:
            antigens = {a.upper() for a in pyard.serology(typing.name)}
    except LookupError:
        return None
    return t.name.upper() in antigens


def assess_dsa(antibodies: Sequence[Antibody] | None, donor: HLAGenotype | None,
               options: Options, *, tables: ReferenceTables | None = None,
               pyard: PyardBackend | None = None,
               donor_hla: PersonHLA | None = None) -> DSAResult:
    """DSA columns for one pair: max donor-specific MFI, tier and the hits.

    Missing data: no antibody rows -> unknown (``no_antibody_data``); an
    antibody at or above ``dsa_low_mfi`` against a locus the donor was not
    typed at -> unknown (``antibody_locus_untyped``).

    Raises
    ------
    PyardUnavailableError
        An antigen-level antibody needs py-ard's serology tables.
    TypeError
        ``antibodies`` is not a sequence of :class:`Antibody` (or None), or
        another argument has the wrong type.
    """
    from kirmatch.ligands import PersonHLA

    check_sequence("antibodies", antibodies, Antibody, none_ok=True)
    check_type("donor", donor, HLAGenotype, none_ok=True)
    check_type("options", options, Options)
    check_type("tables", tables, ReferenceTables, none_ok=True)
    check_type("pyard", pyard, PyardBackend, none_ok=True)
    check_type("donor_hla", donor_hla, PersonHLA, none_ok=True)
    if not antibodies:
        return DSAResult(None, None, (), "no_antibody_data")
    warnings: list[str] = []
    sure: list[DSAHit] = []
    maybe: list[DSAHit] = []
    for ab in antibodies:
        if ab.negative_screen:
            continue
        t = ab.typing
        assert t is not None
        slots = _donor_slots(donor, t.locus)
        if slots is None:
            if ab.mfi >= options.dsa_low_mfi:
                warnings.append(f"antibody_locus_untyped({ab.specificity})")
                return DSAResult(None, None, (), "antibody_locus_untyped", tuple(warnings))
            continue
        for alts in slots:
            results = [_match(ab, typ, pyard) for typ in alts]
            allele = "/".join(str(a) for a in alts)
            if results and all(r is True for r in results):
                sure.append(DSAHit(ab.specificity, ab.mfi, ab.c1q, allele))
            elif any(r is not False for r in results):
                maybe.append(DSAHit(ab.specificity, ab.mfi, ab.c1q, allele))
    sure = list(dict.fromkeys(sure))
    maybe = [m for m in dict.fromkeys(maybe) if m not in sure]

    def outcome(hits: Sequence[DSAHit]) -> tuple[float, str]:
        mx = max((h.mfi for h in hits), default=0.0)
        return mx, dsa_tier(mx, any(h.c1q for h in hits), options)

    outcomes = set()
    for mask in product((False, True), repeat=min(len(maybe), 12)):
        hits = sure + [m for m, use in zip(maybe, mask, strict=False) if use]
        outcomes.add(outcome(hits))
    if len(outcomes) > 1:
        return DSAResult(None, None, tuple(sure), "ambiguous_typing", tuple(warnings))
    mx, tier = outcomes.pop()
    hits = tuple(sorted(sure, key=lambda h: (-h.mfi, h.specificity)))
    return DSAResult(mx, tier, hits, None, tuple(warnings))


def antibodies_by_recipient(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], *,
                            source: str, tables: ReferenceTables | None = None,
                            first_row: int = 1, row_errors: Mapping[int, str] | None = None,
                            require_recipient: bool = False
                            ) -> dict[str, list[Antibody] | KirmatchError]:
    """Antibody rows (``recipient_id`` optional, ``specificity``, ``mfi``, ``c1q``
    optional) grouped per recipient id (``""`` without the column).

    A bad row makes its recipient's entry the error it raised (naming file, row
    and column), so that only that recipient fails. Rows are data rows, 1-based.
    A row that could not be read at all (``row_errors``: its recipient is not
    known) is an error for the whole file.

    Raises
    ------
    InputSchemaError
        A required column is missing, the file has no rows, or a row could not
        be read.
    """
    low = {str(c).strip().lower(): c for c in columns}
    needed = ("recipient_id", "specificity", "mfi") if require_recipient else (
        "specificity", "mfi")
    for need in needed:
        if need not in low:
            raise InputSchemaError(f"{source}: missing required column {need!r} (columns: "
                                   f"{', '.join(map(repr, columns))})", raw=source,
                                   column=need)
    if row_errors:
        i = min(row_errors)
        raise InputSchemaError(f"{source}: {row_errors[i]}", raw=source, row=first_row + i)
    if not rows:
        raise InputSchemaError(f"{source}: no antibody rows", raw=source)
    out: dict[str, list[Antibody] | KirmatchError] = {}
    for i, row in enumerate(rows, start=first_row):
        rid = str(row.get(low["recipient_id"]) or "").strip() if "recipient_id" in low else ""
        group = out.setdefault(rid, [])
        if isinstance(group, KirmatchError):
            continue
        try:
            if "recipient_id" in low and not rid:
                raise InputSchemaError("recipient_id is empty", column="recipient_id")
            group.append(parse_antibody(row.get(low["specificity"]) or "",
                                        row.get(low["mfi"]),
                                        row.get(low["c1q"]) if "c1q" in low else None,
                                        tables=tables))
        except KirmatchError as exc:
            out[rid] = exc.located(row=i, source=source)
    return out
