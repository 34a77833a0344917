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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kirmatch.errors import (
    KirmatchError,
    PyardUnavailableError,
    UnknownAlleleError,
    UnknownAntigenError,
    UsageError,
)
from kirmatch.hla import HLALocusTyping, HLASlot, HLATyping, TypingKind, parse_hla_typing
from kirmatch.propagation import Cand
from kirmatch.tables import HLAAlleleInfo, ReferenceTables

__all__ = ["Expansion", "TypingCache", "b_leader_genotype", "expand_typing", "slot_alternatives"]

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


class TypingCache:
    """Values computed per typing for one set of tables and one py-ard backend,
    bounded. Each entry keeps its tables and backend, so that their ids, part
    of the key, cannot be reused by other objects while the entry exists."""

    def __init__(self, limit: int = 50_000) -> None:
        self._entries: dict[tuple[int, str, int], tuple[ReferenceTables, Any, Any]] = {}
        self.limit = limit

    def get(self, tables: ReferenceTables, name: str, pyard: Any,
            compute: Callable[[], Any]) -> Any:
        key = (id(tables), name, id(pyard))
        entry = self._entries.get(key)
        if entry is not None and entry[0] is tables and entry[1] is pyard:
            return entry[2]
        value = compute()
        if len(self._entries) > self.limit:
            self._entries.clear()
        self._entries[key] = (tables, pyard, value)
        return value


_CACHE = TypingCache()


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
    return _CACHE.get(tables, t.name, pyard, lambda: _expand(t, tables, pyard))


def _expand(t: HLATyping, tables: ReferenceTables, pyard: Any) -> Expansion:
    kind = t.kind
    if kind == TypingKind.ABSENT:      # DRB3*NNNN: no gene, no allele
        return Expansion(t.name, t.locus, ())
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
            raise UnknownAntigenError(t.name, HLA_RELEASE)
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


def slot_alternatives(slot: HLASlot, tables: ReferenceTables, pyard: Any = None
                      ) -> tuple[HLATyping, ...]:
    """A ``/`` allele list's alternatives as rule 2 reads it (DOMAIN.md §A.3
    item 3: nulls are left out of the agreement; §A.14 and §A.19 expand an
    allele list the same way): an alternative that stands for null alleles
    only is left out, unless every alternative does. An absent gene
    (``DRB4*NNNN``) is a reading, not a null allele, and a typing that cannot
    be expanded (a MAC without MAC data) is kept.

    Raises :class:`~kirmatch.errors.UnknownAlleleError` for an alternative the
    release lacks.
    """
    if len(slot.alternatives) == 1:
        return slot.alternatives
    kept = tuple(t for t in slot.alternatives
                 if t.kind == TypingKind.ABSENT
                 or (exp := expand_typing(t, tables, pyard)).unknown or exp.expressed)
    return kept or slot.alternatives


#: The HLA-B leader genotypes (residue -21: Met or Thr), rule 16.
B_LEADER_GENOTYPES = ("M/M", "M/T", "T/T")


_LEADER_CACHE = TypingCache()


def _slot_leaders(slot: HLASlot, tables: ReferenceTables, pyard: Any
                  ) -> tuple[frozenset[str | None], str | None]:
    """The leader residues one typed position could carry (``None`` = cannot be
    known) and the reason when it is not one residue (memoised per typing: a
    cohort has few distinct HLA-B alleles but many genotypes of them)."""
    return _LEADER_CACHE.get(tables, str(slot), pyard,  # type: ignore[no-any-return]
                             lambda: _slot_leaders_uncached(slot, tables, pyard))


def _slot_leaders_uncached(slot: HLASlot, tables: ReferenceTables, pyard: Any
                           ) -> tuple[frozenset[str | None], str | None]:
    residues: set[str | None] = set()
    for t in slot.alternatives:
        exp = expand_typing(t, tables, pyard)
        if exp.unknown:
            return frozenset({None}), exp.unknown
        for a in exp.expressed:  # nulls are left out of the agreement (rule 2)
            rec = tables.b_leader_record(a.allele)
            residues.add(rec.leader if rec is not None else None)
    if not residues:
        return frozenset({None}), "null_allele"
    if len(residues) > 1:
        return frozenset(residues), "ambiguous_typing"
    return frozenset(residues), "no_sequence_coverage" if None in residues else None


def b_leader_genotype(lt: HLALocusTyping | None, tables: ReferenceTables, pyard: Any = None,
                      *, single_allele: str = "homozygous") -> Cand[str | None]:
    """A person's HLA-B leader genotype (``M/M``, ``M/T`` or ``T/T``; DOMAIN.md §A.19).

    Residue -21 of each HLA-B allele comes from ``hla_b_leader.tsv`` (the 4th
    residue of a full-length entry; an entry without exon 1 takes its first-field
    group's residue when that group agrees). A typing below the allele is
    expanded as in rule 2 (:func:`expand_typing`) and every reading is kept: the
    genotype is known only when every reading agrees (propagation, §A.0).
    Null alleles are left out of an expansion; a position that can only be a
    null allele makes the genotype unknown (``null_allele``), as does an allele
    whose residue is not known (``no_sequence_coverage``), an untyped locus
    (``hla_untyped``) or a MAC without MAC data (``mac_unavailable``). One
    typing at the locus is read per ``single_allele`` (§A.4).

    Petersdorf EW et al., Lancet Haematol 2020;7:e50-e60; Fuchs EJ, McCurdy SR
    et al., Blood 2022;139:1452-1468.

    Raises
    ------
    TypeError
        An argument has the wrong type; the message names it.
    UsageError
        ``lt`` is not an HLA-B typing, or ``single_allele`` is not a policy.

    >>> from kirmatch.hla import parse_hla_genotype
    >>> from kirmatch.tables import load_reference_tables
    >>> t = load_reference_tables()
    >>> def leader(gl):
    ...     return b_leader_genotype(parse_hla_genotype(gl).locus("B"), t)
    >>> leader("B*07:02+B*44:02").value, leader("B*08:01+B*07:02").value
    ('M/T', 'M/M')
    >>> leader("B*07:02").value  # one typing: homozygous by default
    'M/M'
    >>> c = leader("B*07:02+B*08:01/B*44:02")
    >>> sorted(c.values), c.reason
    (['M/M', 'M/T'], 'ambiguous_typing')
    >>> leader("B*07:02+B*07").reason, leader("B*07:44N+B*07:02").reason
    ('ambiguous_typing', 'null_allele')
    """
    from kirmatch.api import check_type
    from kirmatch.pyard_backend import PyardBackend

    check_type("lt", lt, HLALocusTyping, none_ok=True)
    check_type("tables", tables, ReferenceTables)
    check_type("pyard", pyard, PyardBackend, none_ok=True)
    if check_type("single_allele", single_allele, str) not in ("homozygous", "unknown"):
        raise UsageError(f"single_allele must be homozygous or unknown, not {single_allele!r}",
                         raw=single_allele)
    if lt is None:
        return Cand(frozenset({None}), "hla_untyped")
    if lt.locus != "B":
        raise UsageError(f"the leader genotype is an HLA-B fact; {lt.locus!r} typing given: "
                         f"{lt}", raw=str(lt))
    values: set[str | None] = set()
    reasons: list[str] = []
    for alt in lt.alternatives:
        try:
            slots = [_slot_leaders(s, tables, pyard) for s in alt]
        except KirmatchError as exc:  # the ligand resolver reports the typing itself
            return Cand(frozenset({None}), exc.code)
        reasons.extend(r for _, r in slots if r)
        first = slots[0][0]
        if len(slots) == 2:
            second = slots[1][0]
        elif single_allele == "homozygous":
            values.update(None if x is None else f"{x}/{x}" for x in first)
            continue
        else:
            second = frozenset({"M", "T"})
            reasons.append("single_allele")
        for x in first:
            for y in second:
                values.add(None if x is None or y is None else "/".join(sorted((x, y))))
    if len(lt.alternatives) > 1:
        reasons.append("ambiguous_typing")
    why = reasons[0] if reasons else "ambiguous_typing"
    if None in values:
        return Cand(frozenset({None}), why)
    return Cand.any_of(values, why)
