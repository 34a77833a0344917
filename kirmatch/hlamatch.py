"""HLA-level facts of a related donor (rule 16, DOMAIN.md §A.19): what each
locus typing stands for at antigen-recognition-site (ARS) identity, and how a
recipient's and a donor's typings of one locus compare.

Two typed alleles *match* when they encode the same ARS: the same P group, or,
for an allele without one, the same 2-field protein (null alleles are absent).
A typing below that level is expanded as in rule 2 (:mod:`kirmatch.expand`);
the locus becomes the set of its possible *readings* (one identity per slot),
and a comparison is the set of its possible outcomes (propagation, §A.0).

Basis: Fuchs EJ, McCurdy SR et al., Blood 2022;139:1452-1468,
doi:10.1182/blood.2021013443; Crivello P et al., Biol Blood Marrow Transplant
2015;21:233-241 (DPB1 TCE); Petersdorf EW et al., Lancet Haematol 2020;7:e50
(HLA-B leader).

>>> from kirmatch.hla import parse_hla_genotype
>>> from kirmatch.tables import load_reference_tables
>>> t = load_reference_tables()
>>> r = locus_readings(parse_hla_genotype("A*01:01+A*02:01").locus("A"), "A", t)
>>> d = locus_readings(parse_hla_genotype("A*01:01+A*01:01").locus("A"), "A", t)
>>> sorted(compare_locus(r.cand, d.cand).values)
[LocusComparison(gvh=1, hvg=0, shared=True)]
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import islice, product
from typing import Any

from kirmatch.expand import TypingCache, expand_typing, slot_alternatives
from kirmatch.hla import HLALocusTyping, HLASlot
from kirmatch.options import Options
from kirmatch.propagation import Cand
from kirmatch.tables import ReferenceTables

__all__ = [
    "MATCH_LOCI",
    "OPTIONAL_LOCI",
    "TOTAL_LOCI",
    "LocusComparison",
    "LocusReadings",
    "NOT_COMPARED",
    "ReadingSet",
    "compare_locus",
    "compare_many",
    "compare_optional",
    "dpb1_tce_of",
    "locus_readings",
]

#: Loci compared per locus (§A.19), in output order; totals and the relation
#: check use the first five.
TOTAL_LOCI = ("A", "B", "C", "DRB1", "DQB1")
OPTIONAL_LOCI = ("DRB3", "DRB4", "DRB5", "DQA1", "DPA1")
MATCH_LOCI = (*TOTAL_LOCI, "DPB1", *OPTIONAL_LOCI)

#: An absent allele (a null allele) in a reading.
ABSENT = ""
#: Above this many (recipient reading, donor reading) combinations a comparison
#: is left unknown rather than enumerated.
MAX_COMBINATIONS = 4_000_000
#: Above this many readings of one locus typing the locus is left unknown.
MAX_READINGS = 5_000


@dataclass(frozen=True, slots=True)
class LocusReadings:
    """A locus typing as its possible readings (sorted pairs of ARS identities,
    ``""`` = absent), the DPB1 TCE group of each identity it names, and the
    warnings (templates with ``{who}``)."""

    cand: Cand[tuple[str, str]]
    tce: dict[str, int | None]
    warnings: tuple[str, ...] = ()


class ReadingSet(frozenset):  # type: ignore[type-arg]
    """The readings of a locus typing (a frozenset of sorted identity pairs) with
    the sets they were formed from: ``slots`` holds, per typing alternative, the
    identities of its first and of its second slot, and the readings are every
    (first, second) of each. Equal to (and hashed as) the plain frozenset; the
    comparisons use ``slots`` to work per slot instead of per reading.

    >>> rs = ReadingSet.of(((frozenset({"A*02:01", "A*02:05"}), frozenset({"A*24:02"})),))
    >>> sorted(rs), rs == {("A*02:01", "A*24:02"), ("A*02:05", "A*24:02")}
    ([('A*02:01', 'A*24:02'), ('A*02:05', 'A*24:02')], True)
    """

    __slots__ = ("slots",)
    slots: tuple[tuple[frozenset[str], frozenset[str]], ...]

    @classmethod
    def of(cls, slots: tuple[tuple[frozenset[str], frozenset[str]], ...]) -> ReadingSet:
        out = cls((x, y) if x <= y else (y, x) for first, second in slots
                  for x, y in product(first, second))
        out.slots = slots
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        return (ReadingSet.of, (self.slots,))


@dataclass(frozen=True, slots=True, order=True)
class LocusComparison:
    """One outcome of comparing a recipient and a donor at one locus: recipient
    alleles the donor lacks (``gvh``), donor alleles the recipient lacks
    (``hvg``), and whether they share an allele."""

    gvh: int
    hvg: int
    shared: bool


@dataclass(frozen=True, slots=True)
class _TypingIds:
    ids: frozenset[str] | None          # None: cannot be expanded
    unknown: str | None
    has_null: bool
    tce: tuple[tuple[str, int | None], ...]


_IDS = TypingCache()


def _typing_ids(t: Any, tables: ReferenceTables, pyard: Any) -> _TypingIds:
    """The ARS identities one typing token may stand for (cached per name, for
    these tables and this py-ard backend)."""
    return _IDS.get(tables, t.name, pyard,  # type: ignore[no-any-return]
                    lambda: _typing_ids_uncached(t, tables, pyard))


def _typing_ids_uncached(t: Any, tables: ReferenceTables, pyard: Any) -> _TypingIds:
    exp = expand_typing(t, tables, pyard)
    if exp.unknown:
        hit = _TypingIds(None, exp.unknown, False, ())
    else:
        expressed = exp.expressed
        ids: set[str] = set()
        tce: dict[str, int | None] = {}
        for a in expressed:
            ident = a.ars_identity or a.protein
            ids.add(ident)
            if a.locus == "DPB1":
                group = tables.dpb1_tce(a.allele)
                if ident in tce and tce[ident] != group:
                    tce[ident] = None     # members of one identity disagree: unassigned
                else:
                    tce.setdefault(ident, group)
        hit = _TypingIds(frozenset(ids) if expressed else frozenset({ABSENT}), None,
                         exp.has_null and bool(expressed), tuple(tce.items()))
    return hit


def _slot_ids(slot: HLASlot, tables: ReferenceTables, pyard: Any, who: str,
              warnings: list[str], tce: dict[str, int | None]) -> frozenset[str] | None:
    """The ARS identities a slot may stand for (``""`` for a null allele);
    ``None`` when it cannot be expanded (a MAC code without MAC data)."""
    out: set[str] = set()
    alternatives = slot_alternatives(slot, tables, pyard)
    if len(alternatives) < len(slot.alternatives):      # null alleles left out (rule 2)
        warnings.append(f"null_in_expansion({who} {slot})")
    for t in alternatives:
        got = _typing_ids(t, tables, pyard)
        if got.ids is None:
            warnings.append(f"{got.unknown}({who} {t.name})")
            return None
        if got.has_null:
            warnings.append(f"null_in_expansion({who} {t.name})")
        out |= got.ids
        for ident, group in got.tce:
            if ident in tce and tce[ident] != group:
                tce[ident] = None
            else:
                tce.setdefault(ident, group)
    return frozenset(out)


def locus_readings(lt: HLALocusTyping | None, locus: str, tables: ReferenceTables,
                   options: Options | None = None, pyard: Any = None,
                   who: str = "{who}") -> LocusReadings:
    """The readings of one locus typing (``None`` = untyped: unknown, ``hla_untyped``).

    Raises
    ------
    UnknownAlleleError
        A well-formed allele (or antigen) the pinned release does not have.
    """
    opts = options or Options()
    if lt is None:
        return LocusReadings(Cand(frozenset({None}), "hla_untyped"), {},
                             (f"hla_untyped({who} {locus})",))
    warnings: list[str] = []
    tce: dict[str, int | None] = {}
    slots: list[tuple[frozenset[str], frozenset[str]]] = []
    unknown = False
    reason = None
    for alt in lt.alternatives:
        ids = [_slot_ids(s, tables, pyard, who, warnings, tce) for s in alt]
        if any(i is None for i in ids):
            unknown = True
            reason = reason or "mac_unavailable"
            continue
        if len(ids) == 1 and ids[0] == frozenset({ABSENT}):
            ids = [ids[0], ids[0]]      # NNNN alone: the gene is absent on both haplotypes
        if len(ids) == 1:
            warnings.append(f"single_allele({who} {locus})")
            if opts.single_allele == "unknown":
                unknown = True
                reason = reason or "single_allele"
                continue
            ids = [ids[0], ids[0]]
        first, second = ids
        if len(first) * len(second) > MAX_READINGS:
            unknown = True
            reason = reason or "ambiguous_typing"
            continue
        slots.append((first, second))  # type: ignore[arg-type]
    if unknown:
        return LocusReadings(Cand(frozenset({None}), reason), tce, tuple(dict.fromkeys(warnings)))
    return LocusReadings(_readings_of(slots), tce, tuple(dict.fromkeys(warnings)))


#: Reading sets by their slots, each slot pair unordered (the readings are the
#: same): typings such as ``A*02+A*24`` and ``A*24+A*02`` or ``A*02:XX``
#: share one set, and so the comparisons kept per set (:func:`_readings`).
#: (At most about a million readings are kept.)
_READING_SETS: dict[frozenset[frozenset[frozenset[str]]], Cand[tuple[str, str]]] = {}
_HELD = [0]     # readings in _READING_SETS


def _readings_of(slots: list[tuple[frozenset[str], frozenset[str]]]) -> Cand[tuple[str, str]]:
    key = frozenset(frozenset(pair) for pair in slots)
    cand = _READING_SETS.get(key)
    if cand is None:
        readings = ReadingSet.of(tuple(dict.fromkeys(slots)))
        cand = Cand(readings, "ambiguous_typing" if len(readings) != 1 else None)
        if _HELD[0] > 1_000_000:
            _READING_SETS.clear()
            _HELD[0] = 0
        _READING_SETS[key] = cand
        _HELD[0] += len(readings)
    return cand


def _compare(r: tuple[str, str], d: tuple[str, str]) -> LocusComparison:
    r1, r2 = r
    d1, d2 = d
    gvh = (r1 != ABSENT and r1 != d1 and r1 != d2) + (r2 != ABSENT and r2 != d1 and r2 != d2)
    hvg = (d1 != ABSENT and d1 != r1 and d1 != r2) + (d2 != ABSENT and d2 != r1 and d2 != r2)
    shared = (r1 != ABSENT and (r1 == d1 or r1 == d2)) or \
        (r2 != ABSENT and (r2 == d1 or r2 == d2))
    return LocusComparison(gvh, hvg, shared)


#: Every outcome a comparison can have (used when the readings are too many to
#: enumerate: a superset never makes a value known that is not).
ALL_OUTCOMES = frozenset(LocusComparison(g, h, s) for g in range(3) for h in range(3)
                         for s in (False, True))


def compare_locus(r: Cand[tuple[str, str]], d: Cand[tuple[str, str]]
                  ) -> Cand[LocusComparison]:
    """Every outcome of comparing the recipient's and the donor's readings.

    When a side is unknown (untyped, not expandable) or the combinations of
    readings exceed :data:`MAX_COMBINATIONS`, every outcome is taken as possible,
    so only values that no outcome changes are reported (``hla_relation`` is
    ``not haploidentical`` when another locus shares nothing, whatever the
    untyped one holds). The reason is the unknown or varying side's
    (recipient first).
    """
    if None in r.values or None in d.values:
        # an untyped or unexpandable side could be anything: every outcome is
        # possible, so values that no outcome changes are still reported (§A.0)
        side = r if None in r.values else d
        return Cand(ALL_OUTCOMES, side.reason or "hla_untyped", missing=True)
    reason = r.reason if len(r.values) > 1 else d.reason
    n = len(r.values) * len(d.values)
    if n > MAX_COMBINATIONS:
        return Cand(ALL_OUTCOMES, reason or "ambiguous_typing")
    if n <= 64:
        out = {_compare(x, y) for x in r.values for y in d.values}
    elif len(d.values) == 1:    # the reason is the many side's, as the cached one has
        return _compare_with_one(r, next(iter(d.values)), recipient_varies=True)
    elif len(r.values) == 1:
        return _compare_with_one(d, next(iter(r.values)), recipient_varies=False)
    else:
        out = _compare_arrays(*_reduced(r, d))
    return Cand.any_of(out, reason)


#: Two identities no typing has: a reading of alleles the other side lacks.
_FOREIGN = ("\x00foreign-1", "\x00foreign-2")


@dataclass(slots=True)
class _Readings:
    """What the comparisons keep of one reading set, per candidate object while
    it is alive (:func:`_readings`); attributes filled later are set at once
    (threads may share a record)."""

    cand: Cand[Any]
    #: the product sets the readings were formed from (:class:`ReadingSet`), or
    #: ``None`` (readings given as a plain set)
    slots: tuple[tuple[frozenset[str], frozenset[str]], ...] | None
    #: each identity's partners in the readings, and how many readings have 0,
    #: 1 or 2 absent alleles (filled by :func:`_partners`, for plain sets only)
    partners: dict[str, set[str]] | None = None
    absents: dict[int, int] | None = None
    #: identity (absent left out) -> class: identities with the same partners
    #: share one (filled by :func:`_classes`, with ``groups``)
    class_of: dict[str, int] | None = None
    #: the comparison against one reading, per class key (see :func:`_compare_with_one`)
    ones: dict[tuple[Any, ...], Cand[LocusComparison]] = field(default_factory=dict)
    #: the identities of each class, and all of them (filled by :func:`_classes`)
    groups: tuple[tuple[frozenset[str], ...], frozenset[str]] | None = None


_READINGS: dict[int, _Readings] = {}


def _readings(c: Cand[tuple[str, str]]) -> _Readings:
    """The record of ``c``'s readings (kept per candidate object while it is alive)."""
    hit = _READINGS.get(id(c))
    if hit is not None and hit.cand is c:
        return hit
    got = _Readings(c, getattr(c.values, "slots", None))
    if len(_READINGS) > 20_000:
        _READINGS.clear()
    _READINGS[id(c)] = got
    return got


def _partners(rd: _Readings) -> dict[str, set[str]]:
    """The partners of each identity in ``rd``'s readings (and, in ``rd.absents``,
    how many readings have 0, 1 or 2 absent alleles)."""
    if rd.partners is None:
        grouped: defaultdict[str, set[str]] = defaultdict(set)   # no set made per lookup
        values = rd.cand.values
        for x, y in values:
            grouped[x].add(y)
            grouped[y].add(x)
        partners = dict(grouped)
        lone = partners.get(ABSENT, ())
        both = int(ABSENT in lone)                  # (absent, absent)
        one_absent = len(lone) - both               # (absent, x): x's partner set holds absent
        rd.absents = {0: len(values) - one_absent - both, 1: one_absent, 2: both}
        rd.partners = partners
    return rd.partners


def _compare_one(many: Cand[tuple[str, str]], one: tuple[str, str], *,
                 recipient_varies: bool) -> set[LocusComparison]:
    """:func:`_compare` of every reading of ``many`` with the single reading
    ``one``, on representatives: a reading's outcome depends only on which of
    its alleles are ``one``'s, absent, or foreign (any other).

    Readings formed from slots (:class:`ReadingSet`) are represented slot by
    slot: each slot by those of ``one``'s alleles and absent that it holds,
    and one foreign allele if it holds any other. Otherwise each reading
    holding one of ``one``'s alleles is represented with its other allele
    reduced to those classes, and the readings holding none of them by two
    foreign alleles with the same number of absent ones."""
    rd = _readings(many)
    reps: set[tuple[str, str]] = set()
    if rd.slots is not None:
        special = {*one, ABSENT}
        for first, second in rd.slots:
            sides = []
            for members in (first, second):
                inside = [x for x in special if x in members]
                if len(members) > len(inside):
                    inside.append(_FOREIGN[0])
                sides.append(inside)
            reps.update(product(*sides))
    else:
        partners = _partners(rd)
        absents = rd.absents
        assert absents is not None
        mine = [x for x in dict.fromkeys(one) if x != ABSENT]
        special_order = (*mine, ABSENT)
        touching = {0: 0, 1: 0}
        for x in mine:
            px = partners.get(x)
            if not px:
                continue
            known = [y for y in special_order if y in px]
            reps.update((x, y) for y in known)
            if len(px) > len(known):
                reps.add((x, _FOREIGN[0]))
            touching[1] += ABSENT in px
            touching[0] += len(px) - (ABSENT in px)
        if len(mine) == 2 and mine[1] in partners.get(mine[0], ()):
            touching[0] -= 1        # (x, y) of both of one's alleles was counted twice
        for k in (0, 1, 2):
            if absents[k] > touching.get(k, 0):
                reps.add((ABSENT,) * k + _FOREIGN[:2 - k])  # type: ignore[arg-type]
    return {(_compare(reading, one) if recipient_varies else _compare(one, reading))
            for reading in reps}


_CODES: dict[str, int] = {ABSENT: 0}
_CODES_LOCK = threading.Lock()


def _code(identity: str) -> int:
    """The integer code of an identity (0 = absent), the same for the whole
    process; new codes are handed out under a lock (engines may run in threads)."""
    code = _CODES.get(identity)
    if code is None:
        with _CODES_LOCK:
            code = _CODES.setdefault(identity, len(_CODES))
    return code


_NONE: frozenset[str] = frozenset()


def _classes(c: Cand[tuple[str, str]]) -> _Readings:
    """:func:`_readings` of ``c`` with the classes of its identities
    (``class_of``): identities that share one have the same partners in ``c``.

    For readings formed from slots, an identity's class is the set of slots
    that hold it, found by splitting the identities by each slot in set
    operations. Its partners are the other slot's identities of each, so two
    identities in the same slots have the same partners (the classes may be
    finer than needed, which only keeps a few more representatives). Otherwise
    the partners themselves are compared. ``groups`` is filled with them."""
    rd = _readings(c)
    if rd.class_of is None:
        if rd.slots is not None:    # split the identities by each slot, in set operations
            parts = [frozenset().union(*(s for pair in rd.slots for s in pair)) - {ABSENT}]
            for pair in rd.slots:
                for slot in pair:
                    parts = [q for p in parts for q in (p & slot, p - slot) if q]
            class_of: dict[str, int] = {}
            for k, members in enumerate(parts):
                class_of.update(dict.fromkeys(members, k))
            rd.groups = (tuple(parts), frozenset(class_of))
            rd.class_of = class_of
        else:
            kinds: dict[frozenset[str], int] = {}
            class_of = {x: kinds.setdefault(frozenset(p), len(kinds))
                        for x, p in _partners(rd).items() if x != ABSENT}
            members: dict[int, set[str]] = {}
            for x, k in class_of.items():
                members.setdefault(k, set()).add(x)
            rd.groups = (tuple(frozenset(m) for m in members.values()), frozenset(class_of))
            rd.class_of = class_of
    return rd


def _compare_with_one(many: Cand[tuple[str, str]], one: tuple[str, str], *,
                      recipient_varies: bool) -> Cand[LocusComparison]:
    """:func:`_compare_one` as a candidate set (``many``'s reason), kept per
    class of ``one``'s alleles in ``many``.

    The outcomes depend on ``one`` only up to swapping interchangeable
    identities (:func:`_reduced`): an allele's class in ``many`` (every allele
    ``many`` lacks is one class), whether it is absent, and whether ``one`` is
    homozygous. (A homozygous ``one`` is kept apart; two different alleles of
    one class map onto any two others of it.)"""
    cls = _classes(many)
    assert cls.class_of is not None
    x, y = one
    key = (-2 if x == ABSENT else cls.class_of.get(x, -1),
           -2 if y == ABSENT else cls.class_of.get(y, -1), x == y, recipient_varies)
    hit = cls.ones.get(key)
    if hit is None:
        hit = cls.ones[key] = Cand.any_of(
            _compare_one(many, one, recipient_varies=recipient_varies), many.reason)
    return hit


def _reduced(r: Cand[tuple[str, str]], d: Cand[tuple[str, str]]) -> tuple[Any, Any]:
    """Both sides' readings (coded as :func:`_kept` codes them) restricted to representatives
    with the same comparison outcomes.

    Two identities with the same partners in the recipient's readings and the
    same partners in the donor's are interchangeable: swapping them everywhere
    maps each side's readings onto themselves (first-field or XX typings hold
    hundreds of such identities). A recipient and a donor reading together hold
    at most four identities, and a comparison's outcome depends only on which
    of them are equal or absent, so every outcome is met by readings that use
    at most four identities of each class: the other readings are dropped.
    (Four is a safe bound, not the least one.)
    """
    rcls, dcls = _classes(r), _classes(d)
    assert rcls.groups is not None and dcls.groups is not None
    assert rcls.class_of is not None and dcls.class_of is not None
    (rmem, rids), (dmem, dids) = rcls.groups, dcls.groups
    keep = {ABSENT}                     # absent is never swapped
    if len(rmem) * len(dmem) <= 64:     # few classes (typings): set operations
        for a in rmem:
            for b in dmem:
                small, big = (a, b) if len(a) <= len(b) else (b, a)
                keep.update(islice((x for x in small if x in big), 4))
            keep.update(islice((x for x in a if x not in dids), 4))
        for b in dmem:
            keep.update(islice((x for x in b if x not in rids), 4))
    else:                               # many: one pass over the identities
        seen: dict[tuple[int, int], int] = {}
        for x in rids | dids:
            key = (rcls.class_of.get(x, -1), dcls.class_of.get(x, -1))
            k = seen.get(key, 0)
            if k < 4:
                seen[key] = k + 1
                keep.add(x)
    return _kept(rcls, keep), _kept(dcls, keep)


def _kept(rd: _Readings, keep: set[str]) -> Any:
    """The readings of ``rd`` whose identities are all in ``keep``, as an (n, 2)
    integer array (identities coded by :func:`_code`, 0 = absent)."""
    import numpy as np

    if rd.slots is not None:
        found: set[tuple[int, int]] = set()
        for first, second in rd.slots:
            for x, y in product(first & keep, second & keep):
                a, b = _code(x), _code(y)
                found.add((a, b) if a <= b else (b, a))
        rows = list(found)
    else:
        partners = _partners(rd)
        rows = [(_code(x), _code(y)) for x in keep for y in partners.get(x, _NONE) & keep
                if x <= y]
    return np.array(rows, np.int64).reshape(-1, 2)


def _compare_arrays(r: Any, d: Any) -> set[LocusComparison]:
    """:func:`_compare` over every (recipient reading, donor reading), vectorised.

    An allele the other side cannot carry compares unequal to everything there,
    so all such alleles of one side are one code (-1 recipient, -2 donor) and
    the readings are deduplicated before the product is formed.
    """
    import numpy as np

    if len(r) * len(d) > 4096:
        r = _collapse(r, d, -1)
        d = _collapse(d, r, -2)
    seen = np.bincount(_outcomes(r[:, 0:1], r[:, 1:2], d[None, :, 0], d[None, :, 1]).ravel(),
                       minlength=18)
    return {_OUTCOME[int(c)] for c in np.flatnonzero(seen)}


def _outcomes(r1: Any, r2: Any, d1: Any, d2: Any) -> Any:
    """:func:`_compare` on coded readings (numpy arrays that broadcast; 0 =
    absent), each outcome as ``gvh * 6 + hvg * 2 + shared`` (see :data:`_OUTCOME`)."""
    import numpy as np

    r1_in = (r1 == d1) | (r1 == d2)
    r2_in = (r2 == d1) | (r2 == d2)
    gvh = ((r1 != 0) & ~r1_in).astype(np.int8) + ((r2 != 0) & ~r2_in)
    hvg = ((d1 != 0) & (d1 != r1) & (d1 != r2)).astype(np.int8) + \
        ((d2 != 0) & (d2 != r1) & (d2 != r2))
    shared = ((r1 != 0) & r1_in) | ((r2 != 0) & r2_in)
    return gvh * 6 + hvg * 2 + shared


#: Each outcome code of :func:`_outcomes`.
_OUTCOME = tuple(LocusComparison(c // 6, c % 6 // 2, bool(c % 2)) for c in range(18))
_KNOWN = tuple(Cand.of(x) for x in _OUTCOME)


def _single(c: Cand[tuple[str, str]]) -> tuple[int, int] | None:
    """The coded alleles of ``c``'s only reading (``None``: several or unknown)."""
    if len(c.values) != 1:
        return None
    reading = next(iter(c.values))
    if reading is None:
        return None
    return _code(reading[0]), _code(reading[1])


def compare_many(recipients: list[Cand[tuple[str, str]]], donors: list[Cand[tuple[str, str]]],
                 *, optional: bool = False) -> list[Cand[Any]]:
    """:func:`compare_locus` (:func:`compare_optional` with ``optional``) of each
    (``recipients[i]``, ``donors[i]``); pairs of single readings, the usual case
    at high resolution, compared at once in numpy."""
    import numpy as np

    compare = compare_optional if optional else compare_locus
    out: list[Cand[Any]] = []
    at: list[int] = []
    coded: list[tuple[int, int, int, int]] = []
    # each side's reading, once per candidate object (the lists keep them alive)
    singles = {id(c): _single(c) for c in {id(c): c for c in (*recipients, *donors)}.values()}
    for i, (r, d) in enumerate(zip(recipients, donors, strict=True)):
        x, y = singles[id(r)], singles[id(d)]
        if x is None or y is None:
            out.append(compare(r, d))
        else:
            out.append(_KNOWN[0])
            at.append(i)
            coded.append((*x, *y))
    if coded:
        a = np.array(coded, np.int64)
        for i, c in zip(at, _outcomes(a[:, 0], a[:, 1], a[:, 2], a[:, 3]).tolist(), strict=True):
            out[i] = _KNOWN[c]
    return out


def _collapse(side: Any, other: Any, foreign: int) -> Any:
    """``side``'s readings with every allele absent from ``other`` as ``foreign``,
    duplicates removed (each reading stays sorted: order does not matter)."""
    import numpy as np

    keep = np.isin(side, other) | (side == 0)
    mapped = np.where(keep, side, foreign)
    lo, hi = np.minimum(mapped[:, 0], mapped[:, 1]), np.maximum(mapped[:, 0], mapped[:, 1])
    key = np.unique((lo + 2) * (1 << 32) + (hi + 2))
    return np.stack([key // (1 << 32) - 2, key % (1 << 32) - 2], axis=1)


#: The comparison of an optional locus (DRB3/4/5, DQA1, DPA1) that is not
#: typed in both persons: rule 16 compares those loci only when both are typed,
#: so its columns are empty without an unknown warning (not applicable).
NOT_COMPARED = "not compared"


def compare_optional(r: Cand[tuple[str, str]], d: Cand[tuple[str, str]]) -> Cand[Any]:
    """:func:`compare_locus` for an optional locus: :data:`NOT_COMPARED` when
    either person has no typing there."""
    if any(None in c.values and c.reason == "hla_untyped" for c in (r, d)):
        return Cand.of(NOT_COMPARED)
    return compare_locus(r, d)


def dpb1_tce_of(readings: Cand[tuple[str, str]], tce: dict[str, int | None]
                ) -> Cand[int | str]:
    """The lowest DPB1 TCE group of each reading (``"unassigned"`` when an
    allele of the reading has no TCE assignment; absent alleles are skipped)."""
    if None in readings.values:
        return Cand(frozenset({None}), readings.reason)
    vals: set[int | str] = set()
    for reading in readings.values:
        groups = [tce.get(x) for x in reading if x != ABSENT]
        if not groups or any(g is None for g in groups):
            vals.add("unassigned")
        else:
            vals.add(min(g for g in groups if g is not None))
    return Cand.any_of(vals, readings.reason)
