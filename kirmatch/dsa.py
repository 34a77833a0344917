"""Donor-specific anti-HLA antibodies (DSA), rule 13 (rules v2, DOMAIN.md §A.14).

Basis: Ciurea SO et al., EBMT consensus on DSA in haploidentical HCT, Bone
Marrow Transplant 2018;53:521-534, doi:10.1038/s41409-018-0112-y; Kongtim P et
al., ASTCT consensus on DSA in HCT, Transplant Cell Ther 2024,
doi:10.1016/j.jtct.2024.09.005 (tiers at 2,000 and 20,000 MFI; C1q-binding and
crossmatch-positive DSA carry the highest risk); MD Anderson data (Ciurea et al.,
Biol Blood Marrow Transplant 2015;21:1392).

An antibody is donor-specific when the donor carries its specificity and the
recipient does not. What an allele carries comes from the shipped antigen table
(``rel_dna_ser.txt``/``rel_ser_ser.txt`` of the pinned release): its serological
antigens, their broads and parents, Bw4/Bw6, its allele-group name and its
2-field protein. A donor typing below allele level is expanded (rule 2,
:mod:`kirmatch.expand`); it *definitely* carries a specificity when every
expressed candidate does, *possibly* when only some do. py-ard is never asked
(only a MAC code needs its table).

Missing data: a recipient without antibody rows has every DSA column unknown
(``no_antibody_data``). A possible hit (the donor typed below allele level, or
not typed at the antibody's locus) that could raise the tier leaves
``dsa_tier`` unknown (``ambiguous_typing``, ``antibody_locus_untyped``);
``dsa_tier_worst`` counts it, so that a possible DSA never ranks a donor above
a clean one.

>>> from kirmatch.hla import parse_hla_genotype
>>> screen = DSAScreen()
>>> donor = parse_hla_genotype("A*03:01:01G+A*02:01^B*07:02:01G+B*44:02")
>>> res = screen.assess([parse_antibody("B7", 12500, "pos")], donor)
>>> res.tier, res.hits_text
('high', 'B7 12500 C1q+')
>>> res = screen.assess([parse_antibody("B45", 15000)], parse_hla_genotype("B*44:XX+B*07:02"))
>>> res.tier, res.tier_worst, res.possible_text
(None, 'high', 'B45 15000 ?B*44:XX')
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kirmatch.api import check_sequence, check_type
from kirmatch.errors import (
    AmbiguityError,
    HLAParseError,
    InputSchemaError,
    KirmatchError,
    UnknownAlleleError,
    UnknownAntigenError,
)
from kirmatch.expand import expand_typing, slot_alternatives
from kirmatch.hla import (
    HLAGenotype,
    HLALocusTyping,
    HLATyping,
    TypingKind,
    parse_hla_typing,
)
from kirmatch.options import Options
from kirmatch.pyard_backend import PyardBackend
from kirmatch.tables import AntigenRecord, ReferenceTables, load_reference_tables

if TYPE_CHECKING:
    from kirmatch.people import People

__all__ = [
    "COLUMNS",
    "TIERS",
    "Antibody",
    "Carriage",
    "DSAHit",
    "DSAResult",
    "DSAScreen",
    "PairScreen",
    "PanelScreen",
    "Specificity",
    "antibodies_by_recipient",
    "antibody_tier",
    "parse_antibody",
    "flow_crossmatch_column",
    "parse_flow_crossmatch",
    "parse_mfi",
    "parse_specificity",
    "shared_screen",
]

#: The tiers, lowest first (an index is a tier's level).
TIERS = ("none", "low", "moderate", "high", "very high")
_HIGH = TIERS.index("high")
#: The DSA columns of the output contract (DOMAIN.md §A.16, 31-32d), in order.
COLUMNS = ("dsa_max_mfi", "dsa_tier", "dsa_tier_worst", "dsa_total_mfi", "dsa_hits",
           "dsa_possible")
HLA_RELEASE = "IPD-IMGT/HLA 3.58.0"

#: Carriage states, ordered: an antibody's target is absent, possibly or surely carried.
NO, MAYBE, YES = 0, 1, 2


# ---------------------------------------------------------------------------
# Specificities
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Atom:
    """One thing an antibody binds: an allele's 2-field protein (``kind="allele"``,
    ``token="B*51:01"``) or a serological name (``kind="antigen"``, ``token="B51"``,
    ``"Bw4"``, ``"Cw12"``), found on any of ``loci``."""

    kind: str
    token: str
    loci: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Specificity:
    """An antibody specificity read by :func:`parse_specificity`.

    ``kind`` is ``allele``, ``antigen`` (a WHO antigen), ``allele_group``
    (``Cw12``: the alleles of that first field), ``public`` (``Bw4``, ``Bw6``),
    ``heterodimer`` (a DQ or DP bead: both chains must be carried) or ``none``
    (a negative screen). ``name`` is its canonical spelling.
    """

    name: str
    kind: str
    atoms: tuple[Atom, ...]

    @property
    def loci(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(loc for a in self.atoms for loc in a.loci))

    def __str__(self) -> str:
        return self.name


NONE_SPECIFICITY = Specificity("NONE", "none", ())
_NEGATIVE = frozenset({"NONE", "NEG", "NEGATIVE"})
_HETERODIMER_LOCI = {frozenset({"DQA1", "DQB1"}): ("DQA1", "DQB1"),
                     frozenset({"DPA1", "DPB1"}): ("DPA1", "DPB1")}
_C_ANTIGEN = re.compile(r"^C([0-9]{1,2})$", re.IGNORECASE)


def parse_specificity(text: str, tables: ReferenceTables | None = None) -> Specificity:
    """Read one antibody specificity (DOMAIN.md §A.14 "Specificity forms").

    >>> parse_specificity("HLA-B*51:01:01").name, parse_specificity("cw4").name
    ('B*51:01', 'Cw4')
    >>> s = parse_specificity("DQA1*05:01~DQB1*02:01")
    >>> s.name, s.kind, s.loci
    ('DQA1*05:01/DQB1*02:01', 'heterodimer', ('DQA1', 'DQB1'))
    >>> parse_specificity("Bw4").loci, parse_specificity("DR52").loci
    (('A', 'B'), ('DRB3',))
    >>> parse_specificity("B99")
    Traceback (most recent call last):
    ...
    kirmatch.errors.UnknownAntigenError: unknown antigen 'B99': not an HLA antigen, public epitope (Bw4, Bw6) or allele-group name (Cw12) of IPD-IMGT/HLA 3.58.0 [column 'specificity']

    Raises
    ------
    HLAParseError
        The text is not one of the forms (names the value).
    UnknownAlleleError
        A well-formed allele or antigen that the pinned release does not have.
    """
    check_type("text", text, str)
    t = check_type("tables", tables, ReferenceTables, none_ok=True) or load_reference_tables()
    key = (id(t), text)
    hit = _SPEC_CACHE.get(key)
    if hit is None or hit[0] is not t:
        if len(_SPEC_CACHE) > 100_000:
            _SPEC_CACHE.clear()
        hit = _SPEC_CACHE[key] = (t, _parse_specificity(text, t))
    return hit[1]


_SPEC_CACHE: dict[tuple[int, str], tuple[ReferenceTables, Specificity]] = {}


def _parse_specificity(text: str, t: ReferenceTables) -> Specificity:
    raw = text
    spec = "".join(text.split())
    if spec.upper().startswith("HLA-"):
        spec = spec[4:]
    if not spec:
        raise HLAParseError(raw, "empty antibody specificity", column="specificity")
    if spec.upper() in _NEGATIVE:
        return NONE_SPECIFICITY
    if "~" in spec or "/" in spec:
        return _heterodimer(raw, spec, t)
    if "*" in spec and not t.is_serology_antigen(spec):
        atom = _allele_atom(raw, spec, t)
        return Specificity(atom.token, "allele", (atom,))
    rel = t.serology_relation(spec)
    if rel is None and (m := _C_ANTIGEN.match(spec)) is not None:
        rel = t.serology_relation(f"Cw{m.group(1)}")   # "C4" is the Cw4 antigen
    if rel is None:
        raise UnknownAntigenError(raw, HLA_RELEASE, column="specificity")
    kind = {"who": "antigen"}.get(rel.kind, rel.kind)
    return Specificity(rel.antigen, kind, (Atom("antigen", rel.antigen, rel.loci),))


def _allele_atom(raw: str, spec: str, tables: ReferenceTables) -> Atom:
    """An allele bead: matched by its 2-field protein."""
    try:
        typ = parse_hla_typing(spec)
    except HLAParseError as exc:
        raise exc.located(column="specificity") from None
    if typ.kind == TypingKind.V2:
        raise HLAParseError(raw, "write an allele bead in current nomenclature "
                            "(B*51:01, not B*5101)", column="specificity")
    if typ.kind != TypingKind.ALLELE:
        raise HLAParseError(raw, "an allele specificity is one bead with two fields "
                            "(B*51:01); for every allele of a group use the antigen (B51)",
                            column="specificity")
    if typ.suffix == "N":
        raise HLAParseError(raw, "a null allele carries no antigen", column="specificity")
    protein = typ.protein or typ.name
    if not any(a.expressed for a in tables.hla_alleles_with_prefix(protein)):
        raise UnknownAlleleError(raw, HLA_RELEASE, column="specificity")
    return Atom("allele", protein, (typ.locus,))


def _heterodimer(raw: str, spec: str, tables: ReferenceTables) -> Specificity:
    parts = re.split(r"[~/]", spec)
    if len(parts) != 2 or not all("*" in p for p in parts):
        raise HLAParseError(raw, "a heterodimer bead is two alleles, alpha and beta chain "
                            "(DQA1*05:01/DQB1*02:01); one specificity per row",
                            column="specificity")
    atoms = [_allele_atom(raw, p, tables) for p in parts]
    loci = frozenset(a.loci[0] for a in atoms)
    order = _HETERODIMER_LOCI.get(loci)
    if order is None:
        raise HLAParseError(raw, "a heterodimer bead pairs DQA1 with DQB1 or DPA1 with DPB1; "
                            "one specificity per row", column="specificity")
    atoms.sort(key=lambda a: order.index(a.loci[0]))
    return Specificity("/".join(a.token for a in atoms), "heterodimer", tuple(atoms))


# ---------------------------------------------------------------------------
# Antibody rows
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Antibody:
    """One recipient antibody: its specificity (``NONE`` for a negative screen),
    MFI and optional C1q result (``None`` = not tested)."""

    specificity: str
    mfi: float
    c1q: bool | None = None
    spec: Specificity = NONE_SPECIFICITY

    @property
    def negative_screen(self) -> bool:
        return self.spec.kind == "none"

    def text(self) -> str:
        """``<specificity> <MFI>[ C1q+]`` as in ``dsa_hits``."""
        return f"{self.specificity} {_mfi_text(self.mfi)}" + (" C1q+" if self.c1q else "")


def _mfi_text(x: float) -> str:
    return f"{x:.15g}"


_POS = frozenset({"pos", "positive", "+", "1", "true", "yes"})
_NEG = frozenset({"neg", "negative", "-", "0", "false", "no"})
_BLANK = frozenset({"", "nan", "na", "n/a"})


def _pos_neg(value: object, column: str, what: str) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return value
    c = str(value).strip().lower()
    if c in _BLANK:
        return None
    if c in _POS:
        return True
    if c in _NEG:
        return False
    raise HLAParseError(str(value), f"{what} must be pos, neg or blank", column=column)


def parse_flow_crossmatch(value: object) -> bool | None:
    """A ``flow_crossmatch`` cell: ``pos`` → True, ``neg`` → False, blank → None.

    >>> parse_flow_crossmatch("POS"), parse_flow_crossmatch(""), parse_flow_crossmatch("neg")
    (True, None, False)
    >>> parse_flow_crossmatch("weak")
    Traceback (most recent call last):
    ...
    kirmatch.errors.HLAParseError: cannot parse 'weak': flow crossmatch must be pos, neg or blank [column 'flow_crossmatch']
    """
    check_type("value", value, (str, bool, Real), none_ok=True, expected="str, bool or None")
    return _pos_neg(value, "flow_crossmatch", "flow crossmatch")


def flow_crossmatch_column(values: Sequence[str | None]
                           ) -> tuple[list[bool | None], dict[int, KirmatchError]]:
    """A ``flow_crossmatch`` column read cell by cell: the values, and the error
    of each row whose cell is not ``pos``/``neg``/blank (0-based row -> error).

    >>> flow_crossmatch_column(["pos", None, "weak"])[0]
    [True, None, None]
    """
    parsed: dict[str | None, bool | None | KirmatchError] = {}
    out: list[bool | None] = []
    bad: dict[int, KirmatchError] = {}
    for j, v in enumerate(values):
        got = parsed.get(v, parsed)
        if got is parsed:
            try:
                got = parsed[v] = parse_flow_crossmatch(v)
            except KirmatchError as exc:
                got = parsed[v] = exc
        if isinstance(got, KirmatchError):
            bad[j] = got
            out.append(None)
        else:
            out.append(got)  # type: ignore[arg-type]
    return out, bad


def parse_antibody(specificity: str, mfi: object, c1q: object = None, *,
                   tables: ReferenceTables | None = None) -> Antibody:
    """Validate one antibody row (errors name the value and its column).

    >>> parse_antibody("HLA-Cw4", "3000").specificity
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
    spec = parse_specificity(specificity, tables)
    blank = mfi is None or (isinstance(mfi, str) and not mfi.strip())
    value = 0.0 if spec.kind == "none" and blank else parse_mfi(mfi)
    c1 = _pos_neg(c1q, "c1q", "C1q")
    return Antibody(spec.name, value, c1, spec)


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


def antibody_tier(mfi: float, c1q: bool | None, options: Options) -> str:
    """One antibody's tier (the table of §A.14; the highest that applies).

    A C1q-positive antibody is ``high`` even below ``dsa_low_mfi``: C1q binding
    is a clinically significant finding on its own (a low IgG MFI beside it is
    the prozone effect), so it is counted rather than dropped.

    >>> o = Options()
    >>> [antibody_tier(x, None, o) for x in (999, 1500, 3000, 5000, 25000)]
    ['none', 'low', 'moderate', 'high', 'very high']
    >>> antibody_tier(3000, True, o), antibody_tier(500, True, o), antibody_tier(20000, None, o)
    ('high', 'high', 'very high')
    """
    return TIERS[_level(mfi, c1q, options)]


def _level(mfi: float, c1q: bool | None, o: Options) -> int:
    if mfi >= o.dsa_very_high_mfi:
        return 4
    if mfi >= o.dsa_high_mfi or c1q:
        return 3
    if mfi >= o.dsa_moderate_mfi:
        return 2
    if mfi >= o.dsa_low_mfi:
        return 1
    return 0


# ---------------------------------------------------------------------------
# What a typing carries
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Carriage:
    """Whether a person carries a specificity: ``status`` NO, MAYBE or YES;
    for MAYBE, ``why`` names the typings that leave it open (``B*44:XX``,
    ``untyped DRB1``) and ``untyped`` says an untyped locus is among them."""

    status: int
    why: tuple[str, ...] = ()
    untyped: bool = False


ABSENT = Carriage(NO)
PRESENT = Carriage(YES)


def _state(atom: Atom, rec: AntigenRecord | None) -> int:
    """Does an allele with antigen record ``rec`` carry ``atom`` (YES, MAYBE for
    an antigen it only possibly carries, NO)?"""
    if rec is None:
        return NO
    return YES if atom.token in rec.carries else MAYBE if atom.token in rec.possible else NO


def _all_or_none(statuses: Iterable[int]) -> int:
    """YES if all are YES, NO if all are NO, else MAYBE (empty: NO)."""
    seen = set(statuses)
    if not seen or seen == {NO}:
        return NO
    return YES if seen == {YES} else MAYBE


class DSAScreen:
    """Rule 13 with the shipped tables: parse nothing, look up once, cache.

    Parameters
    ----------
    tables, options:
        The reference tables (default: the shipped ones) and the options
        (thresholds, ``dsa_count_self``, ``single_allele``).
    pyard:
        Only needed to expand NMDP MAC codes; without it such a typing
        possibly carries anything (``mac_unavailable``).
    """

    def __init__(self, tables: ReferenceTables | None = None, options: Options | None = None,
                 pyard: PyardBackend | None = None) -> None:
        self.tables = check_type("tables", tables, ReferenceTables, none_ok=True) or \
            load_reference_tables()
        self.options = check_type("options", options, Options, none_ok=True) or Options()
        self.pyard = check_type("pyard", pyard, PyardBackend, none_ok=True)
        self._typing: dict[tuple[Atom, str], int] = {}
        self._locus: dict[tuple[Atom, str, str], Carriage] = {}

    # -- one typing token ------------------------------------------------
    def typing_status(self, atom: Atom, t: HLATyping) -> int:
        """NO, MAYBE or YES: does typing ``t`` carry ``atom``?"""
        key = (atom, t.name)
        hit = self._typing.get(key)
        if hit is None:
            hit = self._typing[key] = self._typing_status(atom, t)
        return hit

    def _typing_status(self, atom: Atom, t: HLATyping) -> int:
        exp = expand_typing(t, self.tables, self.pyard)
        if exp.locus not in atom.loci:
            return NO
        if exp.unknown:
            return MAYBE
        cands = exp.expressed
        if not cands:
            return NO          # only null alleles: nothing is carried
        if atom.kind == "allele":
            proteins = {a.protein for a in cands}
            if exp.ars_identical:      # a G/P group matches a bead of any member
                return YES if atom.token in proteins else NO
            return YES if proteins == {atom.token} else (MAYBE if atom.token in proteins else NO)
        if exp.ars_identical:
            # Every expressed member carries the group's antigens (§A.14; one
            # ARS): those of the allele it is named after. A rare member's own
            # assignment in rel_dna_ser.txt (often only assumed: B*15:104 is
            # "B15/70" in B*15:01:01G, whose B*15:01:01:01 is B62) neither widens
            # nor narrows them; a B62 recipient typed B*15:01:01G does not
            # carry B70. A group named after no expressed allele: every member.
            named = self._named_record(t)
            if named is not None:
                return _state(atom, named)
        return _all_or_none(_state(atom, self.tables.antigens_of(a.allele)) for a in cands)

    def _named_record(self, t: HLATyping) -> AntigenRecord | None:
        """The antigens of the allele (or protein) a G or P group is named after
        (``B*15:01:01G``: B*15:01:01; ``B*15:01P``: B*15:01); ``None`` when it
        is null, unknown or its alleles carry different antigens."""
        try:
            rec = self.tables.antigens_of(t.name[:-1])
        except AmbiguityError:
            return None
        return rec if rec is not None and rec.carries else None

    # -- one locus -----------------------------------------------------------
    def locus_carriage(self, atom: Atom, locus: str, lt: HLALocusTyping | None) -> Carriage:
        """Does a locus typing (``None`` = untyped) carry ``atom``?"""
        if lt is None:
            return Carriage(MAYBE, (f"untyped {locus}",), True)
        key = (atom, locus, str(lt))
        hit = self._locus.get(key)
        if hit is None:
            hit = self._locus[key] = self._locus_carriage(atom, locus, lt)
        return hit

    def _locus_carriage(self, atom: Atom, locus: str, lt: HLALocusTyping) -> Carriage:
        whys: list[str] = []
        per_alt = []
        for alt in lt.alternatives:
            states = []
            for slot in alt:
                # an allele list's null alternatives are left out (§A.14, rule 2)
                s = _all_or_none(self.typing_status(atom, t)
                                 for t in slot_alternatives(slot, self.tables, self.pyard))
                if s == MAYBE:
                    whys.append(str(slot))
                states.append(s)
            absent = all(t.kind == TypingKind.ABSENT for t in alt[0].alternatives)
            if len(alt) == 1 and self.options.single_allele == "unknown" and states[0] != YES \
                    and not absent:     # DRB3*NNNN alone: no gene on either haplotype
                states.append(MAYBE)
                whys.append(f"single {locus} typing")
            per_alt.append(YES if YES in states else MAYBE if MAYBE in states else NO)
        status = _all_or_none(per_alt)
        if status != MAYBE:
            return Carriage(status)
        return Carriage(MAYBE, tuple(dict.fromkeys(whys)) or (str(lt),))

    # -- a whole specificity -----------------------------------------------
    def carriage(self, spec: Specificity, hla: HLAGenotype | None) -> Carriage:
        """Does a person with this HLA typing carry ``spec``?"""
        return self.carriage_of_loci(spec, {loc: None if hla is None else hla.locus(loc)
                                            for loc in spec.loci})

    def carriage_of_loci(self, spec: Specificity,
                         loci: Mapping[str, HLALocusTyping | None]) -> Carriage:
        """As :meth:`carriage`, from the typings of the specificity's loci: a
        function of :meth:`locus_carriage` of each atom on each of its loci only
        (:class:`PanelScreen` relies on it)."""
        parts = []
        for atom in spec.atoms:    # a name on several loci (Bw4): carried if on any
            cs = [self.locus_carriage(atom, loc, loci.get(loc)) for loc in atom.loci]
            status = max(c.status for c in cs)
            parts.append(Carriage(status) if status != MAYBE else _merge(
                [c for c in cs if c.status == MAYBE]))
        if not parts:
            return ABSENT
        status = min(p.status for p in parts)   # a heterodimer needs both chains
        if status != MAYBE:
            return Carriage(status)
        return _merge([p for p in parts if p.status == MAYBE])

    # -- a pair ----------------------------------------------------------------
    def assess(self, antibodies: Sequence[Antibody] | None, donor: HLAGenotype | None,
               recipient: HLAGenotype | None = None, *,
               flow_crossmatch: bool | None = None) -> DSAResult:
        """The DSA result of one pair (§A.14).

        ``antibodies`` ``None`` means no antibody data (every DSA column unknown,
        ``no_antibody_data``). ``recipient`` is needed to leave out antibodies
        against the recipient's own antigens; ``None`` = untyped, so none is
        left out.

        Raises
        ------
        TypeError
            An argument has the wrong type.
        """
        check_sequence("antibodies", antibodies, Antibody, none_ok=True)
        check_type("donor", donor, HLAGenotype, none_ok=True)
        check_type("recipient", recipient, HLAGenotype, none_ok=True)
        check_type("flow_crossmatch", flow_crossmatch, bool, none_ok=True)
        if antibodies is None:
            return NO_ANTIBODY_DATA
        entries = []
        for ab in antibodies:
            if ab.negative_screen:
                continue
            own = self.carriage(ab.spec, recipient).status == YES
            entries.append((ab, self.carriage(ab.spec, donor), own))
        return self.summarise(entries, flow_crossmatch)

    def summarise(self, entries: Iterable[tuple[Antibody, Carriage, bool]],
                  flow_crossmatch: bool | None = None) -> DSAResult:
        """The pair's result from each antibody, the donor's carriage of it and
        whether the recipient carries it (the one place tiers are combined)."""
        o = self.options
        hits: list[DSAHit] = []
        possible: list[DSAHit] = []
        below: list[DSAHit] = []
        own: list[DSAHit] = []
        for ab, car, self_antigen in entries:
            if car.status == NO:
                continue
            level = _level(ab.mfi, ab.c1q, o)
            hit = DSAHit(ab, TIERS[level], car.why if car.status == MAYBE else (),
                         car.untyped, car.status == YES)
            if self_antigen and not o.dsa_count_self:
                own.append(hit)
            elif level == 0:
                below.append(hit)
            else:
                (hits if car.status == YES else possible).append(hit)
        floor = _HIGH if flow_crossmatch else 0
        known = max([floor, *(TIERS.index(h.tier) for h in hits)])
        raising = [h for h in possible if TIERS.index(h.tier) > known]
        worst = max([known, *(TIERS.index(h.tier) for h in raising)])
        reason = None
        warnings = [f"self_antigen_antibody({h.specificity})" for h in own
                    if TIERS.index(h.tier) > 0]
        if raising:
            untyped = [h for h in raising if h.untyped]
            reason = "antibody_locus_untyped" if untyped else "ambiguous_typing"
            warnings.extend(f"antibody_locus_untyped({h.specificity})" for h in untyped)
        order = _hit_order
        # MFI columns: every definite hit, sub-threshold ones too (they are hits,
        # only not listed; §A.14).
        definite = [*hits, *(h for h in below if h.definite)]
        return DSAResult(
            tier=None if raising else TIERS[known], tier_worst=TIERS[worst],
            max_mfi=max((h.mfi for h in definite), default=0.0),
            total_mfi=math.fsum(h.mfi for h in definite),
            hits=tuple(sorted(hits, key=order)), possible=tuple(sorted(possible, key=order)),
            below=tuple(sorted(below, key=order)), self_antigen=tuple(sorted(own, key=order)),
            reason=reason, warnings=tuple(sorted(set(warnings))),
            flow_crossmatch=flow_crossmatch,
        )  # fmt: skip


_SCREENS: dict[tuple[int, Options, int], DSAScreen] = {}


def shared_screen(tables: ReferenceTables, options: Options,
                  pyard: PyardBackend | None = None) -> DSAScreen:
    """One :class:`DSAScreen` per (tables, options, py-ard backend), reused across
    calls so that each typing is expanded once."""
    key = (id(tables), options, id(pyard))
    s = _SCREENS.get(key)
    if s is None or s.tables is not tables or s.pyard is not pyard:
        if len(_SCREENS) > 32:
            _SCREENS.clear()
        s = _SCREENS[key] = DSAScreen(tables, options, pyard)
    return s


def _merge(cs: Sequence[Carriage]) -> Carriage:
    return Carriage(MAYBE, tuple(dict.fromkeys(w for c in cs for w in c.why)),
                    any(c.untyped for c in cs))


def _hit_order(h: DSAHit) -> tuple[float, str, bool, str]:
    return (-h.mfi, h.specificity, not h.antibody.c1q, ",".join(h.why))


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DSAHit:
    """One antibody the donor carries (``why`` empty) or possibly carries
    (``why``: the typings that leave it open), with its tier."""

    antibody: Antibody
    tier: str
    why: tuple[str, ...] = ()
    untyped: bool = False
    definite: bool = True

    @property
    def specificity(self) -> str:
        return self.antibody.specificity

    @property
    def mfi(self) -> float:
        return self.antibody.mfi

    @property
    def c1q(self) -> bool | None:
        return self.antibody.c1q

    def text(self) -> str:
        """``B7 12500 C1q+`` (definite) or ``B45 15000 ?B*44:XX`` (possible)."""
        return self.antibody.text() + (f" ?{','.join(self.why)}" if self.why else "")

    def resolution_hint(self) -> str:
        """What extra typing would settle a possible hit."""
        out = []
        for w in self.why:
            if w.startswith("untyped "):
                out.append(f"type the donor at HLA-{w.removeprefix('untyped ')}")
            elif w.startswith("single "):
                out.append(f"type the donor's second HLA-{w.split()[1]} allele")
            else:
                out.append(f"type {w} at allele level (2 fields)")
        return "; ".join(out)


@dataclass(frozen=True, slots=True)
class DSAResult:
    """The DSA columns of one pair (§A.14) and what they rest on.

    ``tier`` is ``None`` (unknown, ``reason``) when a possible hit could raise
    it; ``hits``/``possible`` are counted antibodies (tier above ``none``) in
    descending MFI; ``below`` the sub-threshold antibodies the donor (possibly)
    carries; ``self_antigen`` those left out as the recipient's own antigens.
    """

    tier: str | None
    tier_worst: str | None
    max_mfi: float | None
    total_mfi: float | None
    hits: tuple[DSAHit, ...] = ()
    possible: tuple[DSAHit, ...] = ()
    below: tuple[DSAHit, ...] = ()
    self_antigen: tuple[DSAHit, ...] = ()
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    flow_crossmatch: bool | None = None
    no_data: bool = False

    @property
    def hits_text(self) -> str:
        return ";".join(h.text().replace(";", ",") for h in self.hits)

    @property
    def possible_text(self) -> str:
        return ";".join(h.text().replace(";", ",") for h in self.possible)

    def values(self) -> dict[str, Any]:
        """Contract column -> value (``None`` = unknown)."""
        if self.no_data:
            return dict.fromkeys(COLUMNS)
        return {"dsa_max_mfi": self.max_mfi, "dsa_tier": self.tier,
                "dsa_tier_worst": self.tier_worst, "dsa_total_mfi": self.total_mfi,
                "dsa_hits": self.hits_text, "dsa_possible": self.possible_text}

    def unknown(self) -> dict[str, str]:
        """Unknown contract column -> reason code."""
        if self.no_data:
            return dict.fromkeys(COLUMNS, "no_antibody_data")
        return {"dsa_tier": self.reason or "ambiguous_typing"} if self.tier is None else {}


NO_ANTIBODY_DATA = DSAResult(None, None, None, None, reason="no_antibody_data", no_data=True)


# ---------------------------------------------------------------------------
# Many pairs at once (batch, rank)
# ---------------------------------------------------------------------------

@dataclass(slots=True)
class PairScreen:
    """DSA columns of a chunk of pairs, as output cells (``""`` = unknown).

    ``columns`` maps each DSA column to an Arrow string array (one cell per
    row); ``warnings[codes[j]]`` is row j's set of DSA warnings (unknown
    reasons included); rows in ``errors`` (their recipient's antibody rows could
    not be read) are errors. ``result(j)`` is row j's full
    :class:`DSAResult` (hits, why, sub-threshold and self antigens), for reports.
    """

    columns: dict[str, pa.Array]
    codes: np.ndarray
    warnings: list[frozenset[str]]
    errors: dict[int, KirmatchError]
    result: Any = None


class PanelScreen:
    """The antibody panels of a cohort's recipients, screened against donors
    with vectorised lookups: each antibody is matched once per distinct donor
    typing of its loci (:meth:`DSAScreen.carriage_of_loci`), and the columns
    of every pair are combined with array operations, following exactly the
    rules of :meth:`DSAScreen.summarise` (the per-pair reference; a test holds
    the two equal on random panels).

    ``panels`` maps recipient id to its antibodies, or to the error its rows
    raised (then that recipient's pairs are errors).
    """

    def __init__(self, screen: DSAScreen, people: People,
                 panels: Mapping[str, Sequence[Antibody] | KirmatchError]) -> None:
        self.screen = screen
        self.people = people
        self.panels = panels
        self._panel_of: dict[int, int] = {}       # recipient person -> panel index (-1 none)
        self._panel_arr = np.zeros(0, np.int64)   # the same per person (-2: not seen yet)
        self._panel_rows: list[tuple[int, int]] = []          # panel -> (start, stop)
        self._panel_error: dict[int, KirmatchError] = {}
        self._entries: list[Antibody] = []
        self._entry_spec: list[int] = []
        self._entry_own: np.ndarray = np.zeros(0, bool)
        # per-entry arrays for the vectorised combination (extended at registration)
        self._e_level = np.zeros(0, np.int8)
        self._e_mfi = np.zeros(0, np.float64)
        self._e_notc1q = np.zeros(0, bool)
        self._e_text: list[str] = []
        self._e_text_arr: pa.Array | None = None
        self._specs: dict[str, int] = {}          # canonical name -> spec id
        self._spec_list: list[Specificity] = []
        self._carriage: list[Carriage] = [ABSENT]
        self._carriage_code: dict[Carriage, int] = {ABSENT: 0}
        self._dense: dict[int, np.ndarray] = {}   # spec -> carriage code per locus classes
        # (spec, locus) -> each typing's class, and a typing of each class (None: unreadable)
        self._classes: dict[tuple[int, str], tuple[np.ndarray, list[int | None]]] = {}
        self._by_person = np.zeros((0, len(people)), np.int32)  # spec x person -> code

    # -- registration --------------------------------------------------------
    def _register(self, persons: Iterable[int]) -> None:
        """Panel indices for new recipient persons; own-antigen flags of their
        antibodies, computed per specificity over the recipients' typings."""
        new_entries: list[int] = []
        owners: list[int] = []
        for person in persons:
            if person in self._panel_of:
                continue
            got = self.panels.get(self.people.ids[person])
            if got is None:
                self._panel_of[person] = -1
                continue
            p = self._panel_of[person] = len(self._panel_rows)
            if isinstance(got, KirmatchError):
                self._panel_error[p] = got
                self._panel_rows.append((0, 0))
                continue
            start = len(self._entries)
            # in the order of the hit lists (descending MFI, specificity, C1q+ first),
            # so that a pair's carried rows need no sorting
            for ab in sorted(got, key=lambda a: (-a.mfi, a.specificity, not a.c1q)):
                if ab.spec.kind == "none":
                    continue
                sid = self._specs.get(ab.specificity)
                if sid is None:
                    sid = self._specs[ab.specificity] = len(self._spec_list)
                    self._spec_list.append(ab.spec)
                new_entries.append(len(self._entries))
                owners.append(person)
                self._entries.append(ab)
                self._entry_spec.append(sid)
            self._panel_rows.append((start, len(self._entries)))
        if not new_entries:
            return
        o = self.screen.options
        fresh = [self._entries[e] for e in new_entries]
        self._e_level = np.concatenate(
            [self._e_level, np.array([_level(a.mfi, a.c1q, o) for a in fresh], np.int8)])
        self._e_mfi = np.concatenate([self._e_mfi, np.array([a.mfi for a in fresh], float)])
        self._e_notc1q = np.concatenate([self._e_notc1q,
                                         np.array([not a.c1q for a in fresh], bool)])
        self._e_text.extend(a.text().replace(";", ",") for a in fresh)
        self._e_text_arr = None
        sids = np.array([self._entry_spec[e] for e in new_entries], np.int64)
        who = np.array(owners, np.int64)
        codes = self._row_carriage(sids, who)
        own = self._status_array()[codes] == YES        # after: codes may be new
        self._entry_own = np.concatenate([self._entry_own, own])

    def _status_array(self) -> np.ndarray:
        return np.array([c.status for c in self._carriage], np.int8)

    def _code(self, c: Carriage) -> int:
        k = self._carriage_code.get(c)
        if k is None:
            k = self._carriage_code[c] = len(self._carriage)
            self._carriage.append(c)
        return k

    #: Up to this many (specificity, person) cells, carriage is tabulated per person.
    PER_PERSON_CELLS = 20_000_000

    def _row_carriage(self, sids: np.ndarray, persons: np.ndarray) -> np.ndarray:
        """Carriage code of specificity ``sids[k]`` for person ``persons[k]``."""
        if not len(sids):
            return np.zeros(0, np.int32)
        if len(self._spec_list) * len(self.people) <= self.PER_PERSON_CELLS:
            used = np.flatnonzero(np.bincount(sids, minlength=len(self._spec_list)))
            return self._person_carriage(used)[sids, persons]
        # large cohorts with many specificities: per specificity over these rows only
        out = np.zeros(len(sids), np.int32)
        order = np.argsort(sids, kind="stable")
        cuts = np.flatnonzero(np.diff(sids[order])) + 1
        for m in np.split(order, cuts):
            out[m] = self._carriages(int(sids[m[0]]), persons[m])
        return out

    def _person_carriage(self, sids: np.ndarray) -> np.ndarray:
        """Carriage code of each specificity (row) for every person (column),
        filled for the specificities ``sids`` (each row computed once)."""
        n = len(self.people)
        have = self._by_person
        if have.shape[0] < len(self._spec_list):
            grown = np.full((len(self._spec_list), n), -1, np.int32)
            grown[:have.shape[0]] = have
            have = self._by_person = grown
        everyone = np.arange(n)
        for sid in sids.tolist():
            if n and have[sid, 0] < 0:
                have[sid] = self._carriages(sid, everyone)
        return have

    def _carriages(self, sid: int, persons: np.ndarray) -> np.ndarray:
        """Carriage codes of specificity ``sid`` for each person: a dense table
        over the classes of the typings of the specificity's loci
        (:meth:`_locus_classes`), filled once per distinct combination of
        classes by :meth:`DSAScreen.carriage_of_loci` (on one typing of each)."""
        spec = self._spec_list[sid]
        people = self.people
        loci = spec.loci
        classes = [self._locus_classes(sid, loc) for loc in loci]
        sizes = tuple(len(reps) for _, reps in classes)
        table = self._dense.get(sid)
        if table is None:
            table = self._dense[sid] = np.full(sizes, -1, np.int32)
        cols = tuple(of[np.asarray(people.locus_codes[loc], np.int64)[persons]
                        if loc in people.locus_codes else np.zeros(len(persons), np.int64)]
                     for loc, (of, _) in zip(loci, classes, strict=True))
        out = table[cols]
        todo = np.flatnonzero(out < 0)
        if len(todo):
            flat = np.unique(np.ravel_multi_index(tuple(c[todo] for c in cols), sizes))
            for combo in zip(*np.unravel_index(flat, sizes), strict=True):
                typing_codes = [reps[int(c)] for (_, reps), c in
                                zip(classes, combo, strict=True)]
                code = 0   # a typing that cannot be read: its person is an error row of
                # the engine, whose cells are never shown
                if None not in typing_codes:
                    typings = {loc: (people.locus_vocab[loc][v] if loc in people.locus_vocab
                                     else None)
                               for loc, v in zip(loci, typing_codes, strict=True)}
                    code = self._code(self.screen.carriage_of_loci(spec, typings))
                table[tuple(int(c) for c in combo)] = code
            out = table[cols]
        return out

    def _locus_classes(self, sid: int, loc: str) -> tuple[np.ndarray, list[int | None]]:
        """The typings of ``loc`` (codes of ``people.locus_vocab``) in classes of
        equal carriage, on that locus, of each atom of specificity ``sid``
        (:meth:`DSAScreen.locus_carriage`); and one typing of each class (None:
        the class of the typings that cannot be read).

        :meth:`DSAScreen.carriage_of_loci` combines those per-locus carriages
        only, so it is equal for typings of equal classes: a Bw4 bead (HLA-A
        and -B) is screened once per combination of a few classes, not once per
        pair of typings.
        """
        got = self._classes.get((sid, loc))
        if got is None:
            atoms = [a for a in self._spec_list[sid].atoms if loc in a.loci]
            vocab = self.people.locus_vocab.get(loc, [None])
            index: dict[tuple[Carriage, ...] | None, int] = {}
            reps: list[int | None] = []
            of = np.empty(len(vocab), np.int64)
            for v, lt in enumerate(vocab):
                key: tuple[Carriage, ...] | None
                try:
                    key = tuple(self.screen.locus_carriage(a, loc, lt) for a in atoms)
                except KirmatchError:
                    key = None
                k = index.get(key)
                if k is None:
                    k = index[key] = len(reps)
                    reps.append(None if key is None else v)
                of[v] = k
            got = self._classes[(sid, loc)] = (of, reps)
        return got

    # -- pairs -----------------------------------------------------------------
    def screen_pairs(self, recipients: np.ndarray, donors: np.ndarray,
                     flow: Sequence[bool | None] | None = None) -> PairScreen:
        """DSA columns for pairs given as person indices (negative = no person)."""
        n = len(recipients)
        r = np.asarray(recipients, np.int64)
        d = np.asarray(donors, np.int64)
        fl = np.zeros(n, np.int8) if flow is None else np.array(
            [0 if f is None else 1 if f else 2 for f in flow], np.int8)
        valid = (r >= 0) & (d >= 0)
        if len(self._panel_arr) != len(self.people):
            self._panel_arr = np.full(len(self.people), -2, np.int64)   # -2: not seen yet
        rv = np.where(valid, r, 0)
        new = valid & (self._panel_arr[rv] == -2)
        if new.any():
            persons = np.unique(r[new]).tolist()
            self._register(persons)
            self._panel_arr[persons] = [self._panel_of[i] for i in persons]
        panel = np.where(valid, self._panel_arr[rv], -1)
        errors = {j: self._panel_error[p] for p in self._panel_error
                  for j in np.flatnonzero(panel == p).tolist()}
        has = panel >= 0
        if errors:
            has[list(errors)] = False
        use = np.flatnonzero(has)
        bounds = np.array(self._panel_rows, np.int64).reshape(-1, 2)
        start, stop = bounds[panel[use], 0], bounds[panel[use], 1]
        lengths = stop - start
        rows = np.repeat(use, lengths)                      # one row per (pair, antibody)
        offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
        entry = np.repeat(start, lengths) + (np.arange(len(rows)) - offsets)
        spec_of = np.asarray(self._entry_spec, np.int64)[entry] if len(entry) else \
            np.zeros(0, np.int64)
        car = self._row_carriage(spec_of, d[rows])
        keep = car != 0
        out = self._combine(n, has, fl, rows[keep], entry[keep], car[keep])
        out.errors = errors

        def result(j: int) -> DSAResult:
            if not has[j]:
                return NO_ANTIBODY_DATA
            lo, hi = np.searchsorted(rows, j, "left"), np.searchsorted(rows, j, "right")
            return self.screen.summarise(
                ((self._entries[e], self._carriage[c], bool(self._entry_own[e]))
                 for e, c in zip(entry[lo:hi].tolist(), car[lo:hi].tolist(), strict=True)),
                _flow(int(fl[j])))

        out.result = result
        return out

    def _combine(self, n: int, has: np.ndarray, fl: np.ndarray, rr: np.ndarray,
                 ee: np.ndarray, cc: np.ndarray) -> PairScreen:
        """The columns of §A.14 from the carried (pair, antibody) rows, as arrays."""
        o = self.screen.options
        lvl_e, mfi_e = self._e_level, self._e_mfi
        own_e = self._entry_own & (not o.dsa_count_self)
        spec_e = np.asarray(self._entry_spec, np.int64)
        names = [sp.name for sp in self._spec_list]
        status_c = self._status_array()
        untyped_c = np.array([c.untyped for c in self._carriage], bool)
        lvl, mfi, own = lvl_e[ee], mfi_e[ee], own_e[ee]
        status = status_c[cc]
        yes = (status == YES) & ~own
        maybe = (status == MAYBE) & ~own
        counted = lvl > 0
        hit, poss = yes & counted, maybe & counted
        known = np.where(fl == 1, _HIGH, 0).astype(np.int8)
        _segment_max(known, rr[hit], lvl[hit])
        raising = poss & (lvl > known[rr])
        any_raise = np.zeros(n, bool)
        any_raise[rr[raising]] = True
        untyped_raise = np.zeros(n, bool)
        untyped_raise[rr[raising & untyped_c[cc]]] = True
        worst = known.copy()
        _segment_max(worst, rr[raising], lvl[raising])
        max_mfi = np.zeros(n, np.float64)
        _segment_max(max_mfi, rr[yes], mfi[yes])
        total = np.bincount(rr[yes], weights=mfi[yes], minlength=n)

        blank = ~has
        cols: dict[str, pa.Array] = {
            "dsa_tier": _tier_cells(np.where(blank | any_raise, -1, known)),
            "dsa_tier_worst": _tier_cells(np.where(blank, -1, worst)),
            "dsa_max_mfi": _int_cells(max_mfi, blank),
            "dsa_total_mfi": _int_cells(total, blank),
            "dsa_hits": self._lists(n, rr[hit], ee[hit], None),
            "dsa_possible": self._lists(n, rr[poss], ee[poss], cc[poss]),
        }
        # Warnings: per pair a set; distinct sets are few.
        items = [pa.array([], pa.string())]
        pairs_of = [np.zeros(0, np.int64)]
        own_warn = (status != NO) & own & counted
        if own_warn.any():
            per_spec = pa.array([f"self_antigen_antibody({x})" for x in names], pa.string())
            items.append(per_spec.take(pa.array(spec_e[ee[own_warn]])))
            pairs_of.append(rr[own_warn])
        ut = raising & untyped_c[cc]
        if ut.any():
            per_spec = pa.array([f"antibody_locus_untyped({x})" for x in names], pa.string())
            items.append(per_spec.take(pa.array(spec_e[ee[ut]])))
            pairs_of.append(rr[ut])
        unknown = np.flatnonzero(any_raise)
        if len(unknown):
            reason = np.where(untyped_raise[unknown], "antibody_locus_untyped",
                              "ambiguous_typing")
            items.append(pa.array([f"unknown(dsa_tier: {x})" for x in reason.tolist()],
                                  pa.string()))
            pairs_of.append(unknown)
        nod = np.flatnonzero(blank)
        if len(nod):
            for col in COLUMNS:
                items.append(pa.array([f"unknown({col}: no_antibody_data)"] * len(nod),
                                      pa.string()))
                pairs_of.append(nod)
        codes, sets = _set_codes(n, np.concatenate(pairs_of), pa.concat_arrays(items))
        return PairScreen(cols, codes, sets, {})

    def _lists(self, n: int, rr: np.ndarray, ee: np.ndarray, cc: np.ndarray | None
               ) -> pa.Array:
        """Per pair, the ``;``-joined hit texts in the order of :func:`_hit_order`."""
        if not len(rr):
            return pa.array([""] * n, pa.string())
        # Rows are grouped by pair and, within a pair, in panel order, which is the
        # hit order (entries are sorted at registration; equal antibodies of one
        # panel have equal texts, so their order does not matter).
        if self._e_text_arr is None:
            self._e_text_arr = pa.array(self._e_text, pa.string())
        text = self._e_text_arr.take(pa.array(ee))
        if cc is not None:
            whys = pa.array([" ?" + ",".join(c.why).replace(";", ",") for c in self._carriage],
                            pa.string())
            text = pc.binary_join_element_wise(text, whys.take(pa.array(cc)), "")
        offsets = np.concatenate([[0], np.cumsum(np.bincount(rr, minlength=n))])
        lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), text)
        return pc.binary_join(lists, ";")


def _segment_max(out: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """``out[j] = max(out[j], values of rows j)`` for ``rows`` sorted ascending."""
    if not len(rows):
        return
    starts = np.concatenate(([0], np.flatnonzero(np.diff(rows)) + 1))
    at = rows[starts]
    out[at] = np.maximum(out[at], np.maximum.reduceat(values, starts))


_TIER_CELLS = pa.array(["", *TIERS], pa.string())


def _tier_cells(level: np.ndarray) -> pa.DictionaryArray:
    """Tier cells from levels (-1 = unknown, an empty cell: dictionary index 0)."""
    return pa.DictionaryArray.from_arrays(pa.array(level.astype(np.int32) + 1), _TIER_CELLS)


def _int_cells(x: np.ndarray, blank: np.ndarray) -> pa.Array:
    """Rounded integer cells (``registry.encode`` rounds half to even, as numpy)."""
    cells = pc.cast(pa.array(np.round(x).astype(np.int64)), pa.string())
    return pc.if_else(pa.array(blank), pa.scalar("", pa.string()), cells)


def _set_codes(n: int, pairs: np.ndarray, items: pa.Array
               ) -> tuple[np.ndarray, list[frozenset[str]]]:
    """Per pair, a code of the set of its items (code 0 = empty set)."""
    sets: list[frozenset[str]] = [frozenset()]
    codes = np.zeros(n, np.int32)
    if not len(pairs):
        return codes, sets
    enc = pc.dictionary_encode(items)
    vocab = enc.dictionary.to_pylist()
    idx = np.asarray(enc.indices.to_numpy(zero_copy_only=False), np.int64)
    width = len(vocab) + 1
    key = np.sort(pairs * width + idx)                 # by pair, then item
    key = key[np.concatenate(([True], np.diff(key) != 0))]
    kp, ki = key // width, key % width
    # one joined key per pair ("3,7"), dictionary-encoded: distinct sets are few
    offsets = np.concatenate([[0], np.cumsum(np.bincount(kp, minlength=n))])
    joined = pc.binary_join(pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()), pc.cast(pa.array(ki), pa.string())), ",")
    jenc = pc.dictionary_encode(joined)
    for text in jenc.dictionary.to_pylist():
        sets.append(frozenset(vocab[int(i)] for i in text.split(",")) if text else
                    frozenset())
    codes = np.asarray(jenc.indices.to_numpy(zero_copy_only=False), np.int32) + 1
    return codes, sets


def _flow(code: int) -> bool | None:
    return None if code == 0 else code == 1


# ---------------------------------------------------------------------------
# Antibody files
# ---------------------------------------------------------------------------

def antibodies_by_recipient(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], *,
                            source: str, tables: ReferenceTables | None = None,
                            first_row: int = 1, row_errors: Mapping[int, str] | None = None,
                            require_recipient: bool = False
                            ) -> dict[str, list[Antibody] | KirmatchError]:
    """Antibody rows (``recipient_id`` optional, ``specificity``, ``mfi``, ``c1q``
    optional) grouped per recipient id (``""`` without the column).

    A bad row makes its recipient's entry the error it raised (naming file, row
    and column), so that only that recipient fails. Rows are data rows, 1-based.
    A row whose recipient is not known (it could not be read at all,
    ``row_errors``, or its ``recipient_id`` is empty) is an error for the whole
    file: any recipient's screen could miss it. A column the reader does not know is
    an error too (nothing is dropped silently).

    Raises
    ------
    InputSchemaError
        A required column is missing, a column is not understood, the file has
        no rows, or a row could not be read.
    """
    return _antibodies_of_cells(columns, {c: [r.get(c) for r in rows] for c in columns},
                                len(rows), source=source, tables=tables, first_row=first_row,
                                row_errors=row_errors, require_recipient=require_recipient)


def _antibodies_of_cells(columns: Sequence[str], cells: Mapping[str, Sequence[Any]], n: int,
                         *, source: str, tables: ReferenceTables | None = None,
                         first_row: int = 1, row_errors: Mapping[int, str] | None = None,
                         require_recipient: bool = False
                         ) -> dict[str, list[Antibody] | KirmatchError]:
    """:func:`antibodies_by_recipient` of ``n`` rows given column by column
    (``cells``: each of ``columns``' cells, in row order)."""
    low = {str(c).strip().lower(): c for c in columns}
    needed = ("recipient_id", "specificity", "mfi") if require_recipient else (
        "specificity", "mfi")
    for need in needed:
        if need not in low:
            raise InputSchemaError(f"{source}: missing required column {need!r} (columns: "
                                   f"{', '.join(map(repr, columns))})", raw=source,
                                   column=need)
    extra = [c for k, c in low.items() if k not in _ANTIBODY_COLUMNS]
    if extra:
        raise InputSchemaError(
            f"{source}: column {extra[0]!r} is not an antibody column (expected "
            f"{', '.join(_ANTIBODY_COLUMNS)}); remove or rename it", raw=str(extra[0]),
            column=str(extra[0]))
    if row_errors:
        i = min(row_errors)
        raise InputSchemaError(f"{source}: {row_errors[i]}", raw=source, row=first_row + i)
    if not n:
        raise InputSchemaError(f"{source}: no antibody rows", raw=source)
    t = tables if tables is not None else load_reference_tables()
    k_rid = low.get("recipient_id")
    k_spec, k_mfi, k_c1q = low["specificity"], low["mfi"], low.get("c1q")
    # an id is its text (0 is "0"); None and NaN are empty
    rids = ["" if x is None or (isinstance(x, float) and x != x) else str(x).strip()
            for x in cells[k_rid]] if k_rid is not None else [""] * n
    if k_rid is not None and "" in rids:
        # whose antibodies these are is not known: no recipient can be checked
        # without them (a false "none"), and guessing one (the row above) is not
        # ours to do
        i = rids.index("")
        raise InputSchemaError(
            f"{source}: recipient_id is empty in row {first_row + i}: every antibody row "
            "must name its recipient (fill the id in on each row)", raw=source,
            row=first_row + i, column=str(k_rid))
    # Each distinct cell is read once (a panel file repeats specificities, MFIs
    # and C1q values): the same checks as parse_antibody, per distinct value.
    spec_cells = ["" if x is None else str(x) for x in cells[k_spec]]
    mfi_cells = cells[k_mfi]
    c1q_cells = cells[k_c1q] if k_c1q is not None else [None] * n
    specs = _parse_distinct(spec_cells, lambda x: parse_specificity(x, t))
    mfis = _parse_distinct(mfi_cells, parse_mfi)
    c1qs = _parse_distinct(c1q_cells, lambda x: _pos_neg(x, "c1q", "C1q"))
    out: dict[str, list[Antibody] | KirmatchError] = {}
    miss = object()
    for i, (rid, sc, mc, cc) in enumerate(zip(rids, spec_cells, mfi_cells, c1q_cells,
                                              strict=True), start=first_row):
        group = out.get(rid)
        if group is None:
            group = out[rid] = []
        elif type(group) is not list:
            continue
        # fast path: every cell already read without error
        spec = specs.get(sc, miss)
        value = mfis.get(mc, miss) if type(mc) in _PLAIN else miss
        c1 = c1qs.get(cc, miss) if type(cc) in _PLAIN else miss
        if (rid or k_rid is None) and type(spec) is Specificity and type(value) is float and \
                spec.kind != "none" and (c1 is None or type(c1) is bool):
            group.append(Antibody(spec.name, value, c1, spec))
            continue
        try:
            spec = _got(specs, sc, lambda x: parse_specificity(x, t))
            if spec.kind == "none" and (mc is None or (isinstance(mc, str) and not mc.strip())):
                value = 0.0
            else:
                value = _got(mfis, mc, parse_mfi)
            c1 = _got(c1qs, cc, lambda x: _pos_neg(x, "c1q", "C1q"))
            group.append(Antibody(spec.name, value, c1, spec))
        except (KirmatchError, AmbiguityError) as exc:
            out[rid] = exc.located(row=i, source=source)
    return out


def _parse_distinct(cells: Sequence[Any], fn: Any) -> dict[Any, Any]:
    """``fn`` of each distinct hashable cell (its error if it raises)."""
    out: dict[Any, Any] = {}
    for x in set(c for c in cells if type(c) in _PLAIN):
        try:
            out[x] = fn(x)
        except KirmatchError as exc:
            out[x] = exc
    return out


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _got(parsed: Mapping[Any, Any], cell: Any, fn: Any) -> Any:
    """The parsed value of a cell (parsed now if it is not a plain value, or is NaN)."""
    got = parsed.get(cell, parsed) if type(cell) in _PLAIN else parsed
    if got is parsed:
        got = fn(cell)
    if isinstance(got, KirmatchError):
        raise got
    return got


#: The columns of an antibody file (lower case).
_ANTIBODY_COLUMNS = ("recipient_id", "specificity", "mfi", "c1q")

