"""Parse HLA typings: allele names, serology, XX/MAC codes, G/P groups, GL strings.

This module only reads *syntax*; it never looks anything up. Whether a name
exists in the pinned release, and what it means for KIR ligands, is decided in
:mod:`kirmatch.ligands` with the reference tables.

>>> t = parse_hla_typing("HLA-C*07:02:01:01")
>>> str(t), t.locus, t.kind.value, t.protein
('C*07:02:01:01', 'C', 'allele', 'C*07:02')
>>> parse_hla_typing("A*01:01:01:02N").suffix
'N'
>>> parse_hla_typing("Cw4").name, parse_hla_typing("b44").kind.value
('Cw4', 'serology')
>>> parse_hla_typing("02:01", locus="A").name
'A*02:01'
>>> g = parse_hla_genotype("A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01")
>>> str(g)
'A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01'
>>> parse_hla_typing("C*07:0x")
Traceback (most recent call last):
...
kirmatch.errors.HLAParseError: cannot parse 'C*07:0x': field 2 ('0x') must be digits, XX or a MAC code
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from kirmatch.api import check_mapping, check_sequence, check_type
from kirmatch.errors import HLAParseError

__all__ = [
    "CLASS_I_LOCI",
    "HLAGenotype",
    "HLALocusTyping",
    "HLASlot",
    "HLATyping",
    "TypingKind",
    "genotype_from_loci",
    "hla_genotype_from_columns",
    "parse_hla_genotype",
    "parse_hla_typing",
]

#: Loci that carry KIR ligands.
CLASS_I_LOCI = ("A", "B", "C")
#: Loci accepted in typings: the classical class I and II loci (DSA may target any of
#: them), then the expressed non-classical loci that typing tools write next to them
#: (HLA-E, -F, -G and DRA, e.g. MiDAS tables with ``DRA_1``/``DRA_2``), which are read for
#: their syntax and carried in the genotype only: no rule resolves them (only A, B and C
#: carry KIR ligands, :data:`CLASS_I_LOCI`). Appended at the end so that the order of
#: the classical loci in genotype strings is unchanged.
KNOWN_LOCI = (
    "A", "B", "C", "DRB1", "DRB3", "DRB4", "DRB5", "DQA1", "DQB1", "DPA1", "DPB1",
    "E", "F", "G", "DRA",
)
EXPRESSION_SUFFIXES = frozenset("NLSCAQ")
#: Loci whose gene may be absent from a haplotype, written ``NNNN`` (DRB3*NNNN).
ABSENT_LOCI = frozenset({"DRB3", "DRB4", "DRB5"})

#: Serology prefixes (WMDA) -> locus. DR51/52/53 are the DRB5/DRB3/DRB4 antigens.
_SEROLOGY_LOCUS = {"A": "A", "B": "B", "CW": "C", "C": "C", "DR": "DRB1", "DQ": "DQB1",
                   "DP": "DPB1"}
_DR_SPECIAL = {"51": "DRB5", "52": "DRB3", "53": "DRB4"}

_ALLELE_RE = re.compile(r"^(?:HLA-)?(?P<locus>[A-Z]+[0-9]?)\*(?P<body>.*)$", re.IGNORECASE)
#: A serologic antigen: 1-3 digits, or 4 for the associated antigens of
#: rel_ser_ser.txt (A2403, B5102, DR1403 ...; none has a leading zero).
_SEROLOGY_RE = re.compile(
    r"^(?:HLA-)?(?P<prefix>CW|DR|DQ|DP|A|B|C)(?P<num>[0-9]{1,3}|[1-9][0-9]{3})$", re.IGNORECASE)
_DIGITS = re.compile(r"^[0-9]{2,4}$")
_MAC = re.compile(r"^[A-Z]{2,5}$")
_NAMESPACE_RE = re.compile(r"^(?P<ns>[a-z]+)#(?P<version>[0-9.]+)#(?P<body>.*)$", re.IGNORECASE)


class TypingKind(str, Enum):
    """How an HLA typing token was written (DOMAIN.md §A.3 table)."""

    ALLELE = "allele"          # two or more fields, e.g. C*07:02, A*01:01:01:02N
    ONE_FIELD = "one_field"    # C*07
    XX = "xx"                  # C*07:XX
    MAC = "mac"                # C*07:AB (NMDP multiple allele code)
    SEROLOGY = "serology"      # Cw7, B57, A24, DR15
    G_GROUP = "g_group"        # C*07:01:01G
    P_GROUP = "p_group"        # C*07:01P
    V2 = "v2"                  # A*0201, Cw*0702 (converted before lookup)
    ABSENT = "absent"          # DRB3*NNNN: the gene is absent (WMDA placeholder)


@dataclass(frozen=True, slots=True)
class HLATyping:
    """One HLA typing token, normalised but not yet looked up.

    ``name`` is the canonical spelling (no ``HLA-`` prefix); ``fields`` holds
    the colon fields (digits, ``XX`` or a MAC code); ``suffix`` the expression
    suffix read from the typed name (``N``, ``L``, ``S``, ``C``, ``A``, ``Q``
    or empty) *before* any reduction, which would drop it (§C.14).
    """

    raw: str
    locus: str
    kind: TypingKind
    name: str
    fields: tuple[str, ...] = ()
    suffix: str = ""

    def __str__(self) -> str:
        return self.name

    @property
    def first_field(self) -> str:
        return self.fields[0] if self.fields else ""

    @property
    def protein(self) -> str | None:
        """The 2-field protein name (``C*07:02``) for allele-level typings."""
        if self.kind in (TypingKind.ALLELE, TypingKind.P_GROUP, TypingKind.G_GROUP) and len(
            self.fields
        ) >= 2:
            return f"{self.locus}*{self.fields[0]}:{self.fields[1]}"
        return None


@dataclass(frozen=True, slots=True)
class HLASlot:
    """One allele position of a genotype: ``/``-separated alternatives."""

    alternatives: tuple[HLATyping, ...]

    def __str__(self) -> str:
        return "/".join(str(t) for t in self.alternatives)

    @property
    def locus(self) -> str:
        return self.alternatives[0].locus


@dataclass(frozen=True, slots=True)
class HLALocusTyping:
    """The typing of one locus: ``|``-separated genotype alternatives.

    Each alternative holds one slot (a single typing: read per the
    ``single_allele`` option) or two slots.
    """

    locus: str
    alternatives: tuple[tuple[HLASlot, ...], ...]

    def __str__(self) -> str:
        return "|".join("+".join(str(s) for s in alt) for alt in self.alternatives)

    @property
    def is_ambiguous_genotype(self) -> bool:
        return len(self.alternatives) > 1


@dataclass(frozen=True, slots=True)
class HLAGenotype:
    """A person's HLA typing, per locus. Loci not typed are simply absent."""

    raw: str
    loci: tuple[HLALocusTyping, ...]
    gl_version: str | None = None

    def __str__(self) -> str:
        return "^".join(str(lt) for lt in self.loci)

    def locus(self, name: str) -> HLALocusTyping | None:
        """The typing of locus ``name`` (``"A"``, ``"DRB1"``), ``None`` if not typed."""
        if not isinstance(name, str):
            check_type("name", name, str)
        for lt in self.loci:
            if lt.locus == name:
                return lt
        return None

    @property
    def typed_loci(self) -> tuple[str, ...]:
        return tuple(lt.locus for lt in self.loci)


def _canonical_locus(text: str, raw: str) -> str:
    up = text.upper()
    if up == "CW":
        return "C"
    if up not in KNOWN_LOCI:
        raise HLAParseError(raw, f"unknown HLA locus {text!r} (expected one of "
                            f"{', '.join(KNOWN_LOCI)})")
    return up


def parse_hla_typing(text: str, *, locus: str | None = None) -> HLATyping:
    """Parse one HLA typing token.

    Parameters
    ----------
    text:
        ``A*02:01``, ``HLA-A*02:01:01:01``, ``A*0201`` (v2), ``C*07``,
        ``C*07:XX``, ``C*07:AB`` (MAC), ``C*07:01:01G``, ``C*07:01P``, serology
        (``A2``, ``Cw4``, ``B44``, ``DR15``), or, when ``locus`` is given, the
        numeric part only (``02:01``).
    locus:
        The locus of a locus column, used for numeric-only values and checked
        against names that carry their own locus.

    Raises
    ------
    HLAParseError
        The token is not a well-formed HLA typing, or ``locus`` is not an HLA
        locus; the message names it.
    TypeError
        ``text`` is not a str, or ``locus`` is not a str or None.

    >>> parse_hla_typing(None)
    Traceback (most recent call last):
    ...
    TypeError: text must be str, not NoneType (None)
    """
    if not isinstance(text, str):
        check_type("text", text, str)
    if locus is not None and locus not in KNOWN_LOCI:
        check_type("locus", locus, str, none_ok=True)
        raise HLAParseError(locus, f"unknown HLA locus (expected one of {', '.join(KNOWN_LOCI)})")
    raw = text
    s = text.strip()
    if not s:
        raise HLAParseError(raw, "empty HLA typing")
    if any(ch.isspace() for ch in s):
        raise HLAParseError(raw, "whitespace inside an HLA typing")
    if locus is not None and "*" not in s and not _SEROLOGY_RE.match(s):
        s = f"{locus}*{s}"
    m = _ALLELE_RE.match(s)
    if m is None:
        sm = _SEROLOGY_RE.match(s)
        if sm is None:
            if s.upper().replace("HLA-", "") in ("BW4", "BW6"):
                raise HLAParseError(raw, "Bw4/Bw6 are public epitopes, not HLA-B typings")
            raise HLAParseError(raw, "not an HLA allele name (LOCUS*FIELDS) or a serologic "
                                "antigen (e.g. A2, B44, Cw4, DR15)")
        prefix, num = sm.group("prefix").upper(), sm.group("num")
        if prefix == "DR" and num in _DR_SPECIAL:
            slocus = _DR_SPECIAL[num]
        else:
            slocus = _SEROLOGY_LOCUS[prefix]
        name = f"Cw{int(num)}" if slocus == "C" else f"{prefix}{int(num)}"
        if locus is not None and slocus != locus:
            raise HLAParseError(raw, f"serologic antigen of locus {slocus} in a {locus} column")
        return HLATyping(raw=raw, locus=slocus, kind=TypingKind.SEROLOGY, name=name,
                         fields=(str(int(num)),))
    loc_text = m.group("locus")
    is_cw = loc_text.upper() == "CW"
    loc = _canonical_locus(loc_text, raw)
    if locus is not None and loc != locus:
        raise HLAParseError(raw, f"allele of locus {loc} in a {locus} column")
    body = m.group("body").upper()
    if not body:
        raise HLAParseError(raw, "nothing after '*'")
    if body == "NNNN" and loc in ABSENT_LOCI:
        return HLATyping(raw=raw, locus=loc, kind=TypingKind.ABSENT, name=f"{loc}*NNNN")
    if ":" not in body:
        # 1-field (C*07), or a v2 name without colons (A*0201, Cw*0702, A*02010101N).
        suffix = body[-1] if body[-1] in EXPRESSION_SUFFIXES else ""
        digits = body[:-1] if suffix else body
        if not digits.isdigit():
            raise HLAParseError(raw, f"field 1 ({body!r}) must be digits")
        if len(digits) in (2, 3) and not suffix and not is_cw:
            return HLATyping(raw=raw, locus=loc, kind=TypingKind.ONE_FIELD,
                             name=f"{loc}*{digits}", fields=(digits,))
        if len(digits) in (4, 5, 6, 7, 8):
            return HLATyping(raw=raw, locus=loc, kind=TypingKind.V2,
                             name=f"{'Cw' if is_cw else loc}*{body}", fields=(digits,),
                             suffix=suffix)
        raise HLAParseError(raw, f"field 1 ({body!r}) must have 2 or 3 digits")
    if is_cw:
        raise HLAParseError(raw, "'Cw*' is v2 nomenclature: write C*.. with colons, or Cw*0702")
    parts = body.split(":")
    kind = TypingKind.ALLELE
    suffix = ""
    last = parts[-1]
    if len(parts) > 4:
        raise HLAParseError(raw, f"{len(parts)} fields; an HLA allele has at most 4")
    if last.endswith("G") and len(parts) >= 2 and last[:-1].isdigit():
        kind = TypingKind.G_GROUP
        parts[-1] = last[:-1]
    elif last.endswith("P") and len(parts) == 2 and last[:-1].isdigit():
        kind = TypingKind.P_GROUP
        parts[-1] = last[:-1]
    elif last == "XX" and len(parts) == 2:
        kind = TypingKind.XX
    elif len(parts) == 2 and _MAC.match(last) and not (
        len(last) == 1 or (last[:-1].isdigit() and last[-1] in EXPRESSION_SUFFIXES)
    ):
        kind = TypingKind.MAC
    elif last and last[-1] in EXPRESSION_SUFFIXES and last[:-1].isdigit():
        suffix = last[-1]
        parts[-1] = last[:-1]
    for i, part in enumerate(parts, start=1):
        if kind == TypingKind.XX and i == 2:
            continue
        if kind == TypingKind.MAC and i == 2:
            continue
        if not _DIGITS.match(part) or (i == 1 and len(part) > 4):
            typed = m.group("body").split(":")[i - 1] if i <= len(parts) else part
            raise HLAParseError(raw, f"field {i} ({typed!r}) must be digits, XX or a MAC code")
    if kind == TypingKind.XX:
        name = f"{loc}*{parts[0]}:XX"
    elif kind == TypingKind.MAC:
        name = f"{loc}*{parts[0]}:{parts[1]}"
    else:
        name = f"{loc}*{':'.join(parts)}"
        if kind == TypingKind.G_GROUP:
            name += "G"
        elif kind == TypingKind.P_GROUP:
            name += "P"
        else:
            name += suffix
    return HLATyping(raw=raw, locus=loc, kind=kind, name=name, fields=tuple(parts),
                     suffix=suffix)


def _parse_slot(text: str, raw: str, offset: int) -> HLASlot | None:
    alts: list[HLATyping] = []
    for part in text.split("/"):
        p = part.strip()
        if not p:
            raise HLAParseError(raw, "empty allele between separators", position=offset)
        body = p.split("*", 1)[1] if "*" in p else p
        head = p.split("*", 1)[0].upper().removeprefix("HLA-") if "*" in p else ""
        if body.upper() in ("NNNN", "XXXX", "UUUU", "NEW") and not (
                body.upper() == "NNNN" and head in ABSENT_LOCI):
            # WMDA placeholders: NNNN marks an absent DRB3/4/5 gene; the others are untyped.
            if len(text.split("/")) == 1:
                return None
            raise HLAParseError(raw, f"{p!r} cannot be an allele alternative", position=offset)
        try:
            alts.append(parse_hla_typing(p))
        except HLAParseError as exc:
            if p == raw.strip():
                raise
            raise HLAParseError(raw, f"{p!r}: {exc.detail}", position=offset) from exc
    loci = {a.locus for a in alts}
    if len(loci) > 1:
        raise HLAParseError(raw, f"allele alternatives {text!r} mix loci {sorted(loci)}",
                            position=offset)
    return HLASlot(tuple(alts))


def _merge(loci: dict[str, list[tuple[HLASlot, ...]]], locus: str,
           alternatives: list[tuple[HLASlot, ...]], raw: str) -> None:
    if locus in loci:
        old = loci[locus]
        if len(old) > 1 or len(alternatives) > 1:
            raise HLAParseError(raw, f"locus {locus} typed twice with genotype alternatives")
        alternatives = [old[0] + alternatives[0]]
    for alt in alternatives:
        if len(alt) > 2:
            raise HLAParseError(raw, f"locus {locus} has {len(alt)} alleles; at most 2")
    loci[locus] = alternatives


def parse_hla_genotype(text: str) -> HLAGenotype:
    """Parse a person's HLA typing.

    Accepts a GL string (``^`` loci, ``|`` genotype alternatives, ``+``
    genotype, ``~`` phase (ignored), ``/`` allele alternatives), with or
    without the ``hla#3.58.0#`` namespace, or a plain list of alleles separated
    by spaces, commas or semicolons. A homozygous locus may be written once or
    twice. The GL ``?`` operator is rejected (it is for KIR paralogs).

    >>> g = parse_hla_genotype("hla#3.58.0#HLA-A*01:01/HLA-A*01:02+HLA-A*24:02")
    >>> str(g), g.gl_version
    ('A*01:01/A*01:02+A*24:02', '3.58.0')
    >>> str(parse_hla_genotype("A*02:01, A*24:02, B*07:02"))
    'A*02:01+A*24:02^B*07:02'

    Raises
    ------
    HLAParseError
        The typing is empty or not well formed; the message names it.
    TypeError
        ``text`` is not a str.
    """
    if not isinstance(text, str):
        check_type("text", text, str)
    raw = text
    if text is None or not str(text).strip():
        raise HLAParseError(str(text), "empty HLA typing")
    s = str(text).strip()
    version = None
    nm = _NAMESPACE_RE.match(s)
    if nm:
        if nm.group("ns").lower() != "hla":
            raise HLAParseError(raw, f"GL namespace {nm.group('ns')!r} is not 'hla'")
        version = nm.group("version")
        s = nm.group("body").strip()
    if "?" in s:
        raise HLAParseError(raw, "the GL '?' operator is not supported for HLA",
                            position=s.index("?"))
    loci: dict[str, list[tuple[HLASlot, ...]]] = {}
    if not any(op in s for op in "^+|~/"):
        tokens = [t for t in re.split(r"[\s,;]+", s) if t]
        grouped: dict[str, list[HLASlot]] = {}
        for tok in tokens:
            slot = _parse_slot(tok, raw, s.find(tok))
            if slot is not None:
                grouped.setdefault(slot.locus, []).append(slot)
        for loc, slots in grouped.items():
            _merge(loci, loc, [tuple(slots)], raw)
    else:
        offset = 0
        for block in s.split("^"):
            block_offset = offset
            offset += len(block) + 1
            if not block.strip():
                raise HLAParseError(raw, "empty locus block", position=block_offset)
            genotypes = block.split("|")
            if len(genotypes) > 1:
                alts: list[tuple[HLASlot, ...]] = []
                block_locus = None
                for g in genotypes:
                    slots = tuple(x for x in (_parse_slot(p, raw, block_offset)
                                              for p in g.split("+")) if x is not None)
                    if not slots:
                        continue
                    for sl in slots:
                        if block_locus is None:
                            block_locus = sl.locus
                        elif sl.locus != block_locus:
                            raise HLAParseError(raw, "genotype alternatives ('|') mix loci "
                                                f"{block_locus} and {sl.locus}",
                                                position=block_offset)
                    alts.append(slots)
                if block_locus is not None and alts:
                    _merge(loci, block_locus, alts, raw)
                continue
            grouped = {}
            for chrom in block.split("+"):
                for piece in chrom.split("~"):
                    slot = _parse_slot(piece, raw, block_offset)
                    if slot is not None:
                        grouped.setdefault(slot.locus, []).append(slot)
            for loc, slots in grouped.items():
                _merge(loci, loc, [tuple(slots)], raw)
    if not loci:
        raise HLAParseError(raw, "no HLA typing found")
    order = {loc: i for i, loc in enumerate(KNOWN_LOCI)}
    typed = tuple(
        HLALocusTyping(loc, tuple(alts)) for loc, alts in sorted(loci.items(),
                                                                  key=lambda kv: order[kv[0]])
    )
    return HLAGenotype(raw=str(raw), loci=typed, gl_version=version)


def hla_genotype_from_columns(values: Mapping[str, Iterable[str | None]],
                              *, raw: str | None = None) -> HLAGenotype:
    """Build a genotype from per-locus columns, e.g. ``{"A": ("02:01", "24:02")}``.

    Blank cells are skipped (a locus with one value is a single typing; with
    none it is untyped). Values may be full names or the numeric part only.

    >>> str(hla_genotype_from_columns({"A": ("02:01", "A*24:02"), "B": ("07:02", "")}))
    'A*02:01+A*24:02^B*07:02'

    Raises
    ------
    HLAParseError
        A cell is not a typing of its locus, or a key is not an HLA locus.
    TypeError
        ``values`` is not a mapping of locus to an iterable (not a string) of
        str or None (a float NaN counts as blank), or ``raw`` is not a str.
    """
    check_mapping("values", values)
    check_type("raw", raw, str, none_ok=True)
    values = {loc: check_sequence(f"values[{loc!r}]", cells, (str, float), iterable=True,
                                  item_none_ok=True) for loc, cells in values.items()}
    loci: dict[str, list[tuple[HLASlot, ...]]] = {}
    parts = []
    for loc, cells in values.items():
        slots: list[HLASlot] = []
        for cell in cells:
            if cell is None or not str(cell).strip() or str(cell).strip().upper() in ("NA", "NAN"):
                continue
            text = str(cell).strip()
            alts = tuple(parse_hla_typing(p, locus=loc) for p in text.split("/"))
            slots.append(HLASlot(alts))
            parts.append(text)
        if slots:
            _merge(loci, loc, [tuple(slots)], raw or ",".join(parts))
    order = {loc: i for i, loc in enumerate(KNOWN_LOCI)}
    typed = tuple(HLALocusTyping(loc, tuple(alts))
                  for loc, alts in sorted(loci.items(), key=lambda kv: order[kv[0]]))
    genotype = HLAGenotype(raw=raw or "", loci=typed)
    return HLAGenotype(raw=raw or str(genotype), loci=typed)


def genotype_from_loci(loci: Iterable[HLALocusTyping], *, raw: str = "",
                       gl_version: str | None = None) -> HLAGenotype:
    """Assemble a genotype from per-locus typings (loci in canonical order).

    A locus given twice is joined like two GL blocks of that locus (its slots
    add up; at most two, and no ``|`` alternatives on either side).

    >>> a = HLALocusTyping("A", ((HLASlot((parse_hla_typing("A*02:01"),)),),))
    >>> b = HLALocusTyping("B", ((HLASlot((parse_hla_typing("B*07:02"),)),),))
    >>> str(genotype_from_loci([b, a, a]))
    'A*02:01+A*02:01^B*07:02'
    """
    merged: dict[str, list[tuple[HLASlot, ...]]] = {}
    for lt in loci:
        _merge(merged, lt.locus, list(lt.alternatives), raw or str(lt))
    order = {loc: i for i, loc in enumerate(KNOWN_LOCI)}
    typed = tuple(HLALocusTyping(loc, tuple(alts))
                  for loc, alts in sorted(merged.items(), key=lambda kv: order[kv[0]]))
    genotype = HLAGenotype(raw=raw, loci=typed, gl_version=gl_version)
    return genotype if raw else HLAGenotype(raw=str(genotype), loci=typed, gl_version=gl_version)
