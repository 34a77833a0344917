"""What an HLA typing stands for: its candidate alleles at any locus (rule 2).

One expansion for every model that needs alleles below the typed level: donor-
specific antibodies (rule 13), HLA-level matching (rule 16) and serological
typings of the KIR-ligand loci. Everything comes from the shipped tables of the
pinned release (``reference_tables/``): G and P groups, first fields, ``XX``
codes, v2 names and serological antigens (the alleles *assigned* that antigen,
not every allele py-ard links to it). Only NMDP MAC codes need py-ard's MAC
table; without it a MAC typing is unknown (``mac_unavailable``), never guessed.

>>> from kirmatch.hla import parse_hla_typing
>>> from kirmatch.tables import load_reference_tables
>>> t = load_reference_tables()
>>> e = expand_typing(parse_hla_typing("B*07:02:01G"), t)
>>> e.ars_identical, "B*07:02" in {a.protein for a in e.expressed}
(True, True)
>>> sorted({a.protein for a in expand_typing(parse_hla_typing("DQ7"), t).expressed})[:2]
['DQB1*03:01', 'DQB1*03:04']
>>> expand_typing(parse_hla_typing("B*99:99"), t)
Traceback (most recent call last):
...
kirmatch.errors.UnknownAlleleError: unknown allele 'B*99:99': not in IPD-IMGT/HLA 3.58.0; alleles named after that release need newer reference tables (rebuild them with reference_tables/build/build_tables.py from a newer release)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kirmatch.errors import PyardUnavailableError, UnknownAlleleError
from kirmatch.hla import HLATyping, TypingKind, parse_hla_typing
from kirmatch.tables import HLAAlleleInfo, ReferenceTables

__all__ = ["Expansion", "expand_typing"]

HLA_RELEASE = "IPD-IMGT/HLA 3.58.0"


@dataclass(frozen=True, slots=True)
class Expansion:
    """The candidate alleles of one typing token.

    ``alleles`` holds every candidate (null ones included); ``ars_identical``
    is true for a G or P group, whose members share the antigen-recognition
    site (a question about antigens or ARS identity has one answer for all of
    them); ``unknown`` names why the typing cannot be expanded (``mac_unavailable``),
    in which case ``alleles`` is empty and any allele of the locus is possible.
    """

    typing: str
    locus: str
    alleles: tuple[HLAAlleleInfo, ...]
    ars_identical: bool = False
    unknown: str | None = None

    @property
    def expressed(self) -> tuple[HLAAlleleInfo, ...]:
        """The expressed candidates (nulls are left out of every agreement test)."""
        return tuple(a for a in self.alleles if a.expressed)

    @property
    def has_null(self) -> bool:
        return any(not a.expressed for a in self.alleles)


_CACHE: dict[tuple[int, str, int], Expansion] = {}


def expand_typing(t: HLATyping, tables: ReferenceTables, pyard: Any = None) -> Expansion:
    """The alleles ``t`` stands for (DOMAIN.md §A.3 item 2), at any locus.

    A 2-field-or-longer name stands for the alleles it prefixes; with a typed
    expression suffix only those with that suffix, without one only the
    expressed ones (rule 2.1: ``A*01:01`` means the expressed protein).

    Raises
    ------
    UnknownAlleleError
        A well-formed name (or antigen) that the pinned release does not have.
    """
    key = (id(tables), t.name, id(pyard))
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    out = _expand(t, tables, pyard)
    if len(_CACHE) > 50_000:
        _CACHE.clear()
    _CACHE[key] = out
    return out


def _expand(t: HLATyping, tables: ReferenceTables, pyard: Any) -> Expansion:
    kind = t.kind
    if kind == TypingKind.V2:
        conv = _v2(t, tables, pyard)
        inner = _expand(conv, tables, pyard)
        return Expansion(t.name, inner.locus, inner.alleles, inner.ars_identical,
                         inner.unknown)
    if kind == TypingKind.ALLELE:
        found = tables.hla_alleles_with_prefix(t.name)
        if t.suffix:
            found = tuple(a for a in found if a.suffix == t.suffix)
        elif any(a.expressed for a in found):
            found = tuple(a for a in found if a.expressed)
        if not found:
            raise UnknownAlleleError(t.name, HLA_RELEASE)
        return Expansion(t.name, t.locus, found)
    if kind in (TypingKind.ONE_FIELD, TypingKind.XX):
        found = tables.hla_alleles_with_prefix(f"{t.locus}*{t.first_field}")
        if not found:
            raise UnknownAlleleError(t.name, HLA_RELEASE)
        return Expansion(t.name, t.locus, found)
    if kind == TypingKind.G_GROUP:
        found = tables.g_group_members(t.name)
        if not found:
            raise UnknownAlleleError(t.name, HLA_RELEASE)
        return Expansion(t.name, t.locus, found, ars_identical=True)
    if kind == TypingKind.P_GROUP:
        found = tables.p_group_members(t.name)
        if not found:
            raise UnknownAlleleError(t.name, HLA_RELEASE)
        return Expansion(t.name, t.locus, found, ars_identical=True)
    if kind == TypingKind.SEROLOGY:
        names = tables.alleles_assigned(t.name)
        if not names:
            raise UnknownAlleleError(t.name, HLA_RELEASE)
        infos = tuple(info for n in names if (info := tables.hla_allele(n)) is not None)
        return Expansion(t.name, t.locus, infos)
    if kind == TypingKind.MAC:
        if pyard is None:
            return Expansion(t.name, t.locus, (), unknown="mac_unavailable")
        try:
            names = pyard.expand_mac(t.name)
        except PyardUnavailableError:
            return Expansion(t.name, t.locus, (), unknown="mac_unavailable")
        except LookupError as exc:
            raise UnknownAlleleError(t.name, "the NMDP MAC table") from exc
        infos: list[HLAAlleleInfo] = []
        for n in names:
            infos.extend(_expand(parse_hla_typing(n), tables, pyard).alleles)
        return Expansion(t.name, t.locus, tuple(infos))
    raise UnknownAlleleError(t.name, HLA_RELEASE)  # pragma: no cover - every kind above


def _v2(t: HLATyping, tables: ReferenceTables, pyard: Any) -> HLATyping:
    """A v2 name (``A*0201``, ``Cw*0702``) in current nomenclature."""
    digits = t.fields[0]
    if len(digits) in (4, 6, 8):
        name = f"{t.locus}*{':'.join(digits[i:i + 2] for i in range(0, len(digits), 2))}"
        if tables.hla_alleles_with_prefix(name):
            return parse_hla_typing(name + t.suffix)
    if pyard is not None:
        try:
            return parse_hla_typing(pyard.v2_to_v3(f"{t.locus}*{digits}{t.suffix}"))
        except LookupError as exc:
            raise UnknownAlleleError(t.raw, HLA_RELEASE) from exc
    raise UnknownAlleleError(t.raw, HLA_RELEASE)
