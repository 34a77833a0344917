"""KIR-ligand calls per HLA allele (rule 1), resolution and ambiguity (rule 2),
and the per-person genotype summary (rule 3).

Calls come only from the shipped, checksum-verified table
``reference_tables/hla_kir_ligands.tsv`` (derived from the IPD-IMGT/HLA 3.58.0
protein sequences). Serological typings are expanded with the shipped antigen
table (the alleles assigned the antigen). py-ard is consulted only for what the
tables cannot expand on their own (MAC codes, some v2 names), and only if its
database has been built.

Terms: an :class:`AlleleFeature` is what the models need to know of one allele
(its call, flags and, for HLA-A, whether its group can add Bw4). An unresolved
typing keeps the *set* of features it could have (DOMAIN.md §A.0).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources

from kirmatch.api import check_type
from kirmatch.errors import (
    HLAParseError,
    PyardUnavailableError,
    UnknownAlleleError,
    UnknownAntigenError,
)
from kirmatch.hla import (
    CLASS_I_LOCI,
    HLAGenotype,
    HLALocusTyping,
    HLASlot,
    HLATyping,
    TypingKind,
    parse_hla_typing,
)
from kirmatch.options import Options
from kirmatch.propagation import Cand, evaluate, image
from kirmatch.pyard_backend import PyardBackend
from kirmatch.tables import HLAAlleleRecord, ReferenceTables

__all__ = [
    "AlleleCall",
    "AlleleFeature",
    "GenotypeSummary",
    "LigandFacts",
    "LigandResolver",
    "LocusResolution",
    "PersonHLA",
    "b_class",
    "c_group",
    "has_b_c1",
    "ligand_set",
    "person_facts",
    "shared_resolver",
]

BW4 = frozenset({"Bw4-80I", "Bw4-80T"})
#: HLA-A groups that carry Bw4 alleles in rule 3 (A*25 only with ``a25_bw4``).
A_BW4_GROUPS = frozenset({"23", "24", "32"})
#: HLA-A first fields kept on an allele's features: the Bw4 groups of rule 3,
#: and 11 (A*11 is the KIR2DS2/KIR2DS4 ligand of rule 17).
_A_GROUP_KEPT = frozenset({"11", "23", "24", "25", "32"})
HLA_RELEASE = "IPD-IMGT/HLA 3.58.0"


@dataclass(frozen=True, slots=True, order=True)
class AlleleFeature:
    """The model-relevant features of one HLA allele.

    ``ligand`` is one of ``C1 C2 Bw4-80I Bw4-80T Bw6 unclassified null``;
    ``a_group`` is the HLA-A first field when it is 23, 24, 25 or 32 (the
    groups rule 3 may count for Bw4) or 11 (rule 17's A*11), else empty.
    """

    locus: str
    ligand: str
    b_c1: bool = False
    a3a11: bool = False
    a_group: str = ""

    @property
    def expressed(self) -> bool:
        return self.ligand != "null"


Pair = tuple[AlleleFeature, AlleleFeature]


@dataclass(frozen=True, slots=True)
class AlleleCall:
    """Rule 1's per-allele record, for one typed position (slot).

    ``status`` is ``resolved`` (one call), ``ambiguous`` (candidates disagree;
    ``candidates`` lists their calls) or ``unknown`` (cannot be called, see
    ``note``). ``features`` is the candidate set used for propagation.
    """

    typing: str
    locus: str
    kind: str
    expression: str
    residues: str | None
    call: str | None
    b_c1: bool | None
    a3a11: bool | None
    status: str
    candidates: tuple[str, ...]
    features: frozenset[AlleleFeature]
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    note: str = ""
    proteins: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "typing": self.typing,
            "locus": self.locus,
            "kind": self.kind,
            "expression": self.expression,
            "residues_76_83": self.residues or "",
            "ligand": self.call if self.call is not None else "",
            "b_c1": self.b_c1 if self.b_c1 is not None else "",
            "a3a11": self.a3a11 if self.a3a11 is not None else "",
            "status": self.status,
            "candidates": ";".join(self.candidates),
            "note": self.note,
            "warnings": ";".join(self.warnings),
        }


@dataclass(frozen=True, slots=True)
class LocusResolution:
    """One resolved locus: candidate genotype pairs, per-allele calls, warnings."""

    cand: Cand[Pair]
    calls: tuple[AlleleCall, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PersonHLA:
    """A person's class I typing resolved to candidate sets per locus."""

    who: str
    loci: dict[str, Cand[Pair]]
    calls: tuple[AlleleCall, ...]
    warnings: tuple[str, ...]
    genotype: HLAGenotype | None = None

    def cand(self, locus: str) -> Cand[Pair]:
        return self.loci[locus]


# ----------------------------------------------------------------------------
# Rule 3 on concrete genotypes
# ----------------------------------------------------------------------------

def _c_code(f: AlleleFeature) -> str:
    return f.ligand if f.ligand in ("C1", "C2") else "-"


def c_group(pair: Pair) -> str:
    """HLA-C group: ``C1/C1`` … ``-/-`` (C1 first, ``-`` last; ``-`` = null/unclassified).

    >>> c_group((AlleleFeature("C", "C2"), AlleleFeature("C", "C1")))
    'C1/C2'
    >>> c_group((AlleleFeature("C", "null"), AlleleFeature("C", "C2")))
    'C2/-'
    """
    order = {"C1": 0, "C2": 1, "-": 2}
    a, b = sorted((_c_code(pair[0]), _c_code(pair[1])), key=order.__getitem__)
    return f"{a}/{b}"


def b_class(pair: Pair) -> str:
    """HLA-B class: ``Bw4-80I`` if any allele is 80I, else ``Bw4-80T`` if any is 80T, else ``Bw6``.

    Null and unclassified alleles fall under ``Bw6`` (each carries its own warning).
    """
    ligs = {f.ligand for f in pair}
    if "Bw4-80I" in ligs:
        return "Bw4-80I"
    if "Bw4-80T" in ligs:
        return "Bw4-80T"
    return "Bw6"


def has_b_c1(pair: Pair) -> bool:
    """True if an expressed HLA-B allele carries the C1 epitope (Val76 + Asn80)."""
    return any(f.b_c1 and f.expressed for f in pair)


def _a_proj(pair: Pair, options: Options) -> tuple[bool, bool]:
    """HLA-A's contribution: (adds Bw4 under the options, adds A3/A11)."""
    groups = A_BW4_GROUPS | ({"25"} if options.a25_bw4 else set())
    bw4 = options.hla_a_bw4 and any(f.ligand in BW4 and f.a_group in groups for f in pair)
    return bw4, any(f.a3a11 and f.expressed for f in pair)


def _b_proj(pair: Pair) -> tuple[bool, bool]:
    """HLA-B's contribution: (adds Bw4, carries B-C1)."""
    return any(f.ligand in BW4 for f in pair), has_b_c1(pair)


def _c_proj(pair: Pair) -> frozenset[str]:
    """HLA-C's contribution: the C1/C2 groups of its expressed alleles."""
    return frozenset(f.ligand for f in pair if f.ligand in ("C1", "C2"))


@dataclass(frozen=True, slots=True, order=True)
class LigandFacts:
    """A person's rule-3 facts, what every ligand-reading model uses.

    ``ligands`` is the rule-3 ligand set (A3/A11, Bw4, C1, C2); ``ipd_ligands``
    the HLA-B and HLA-C-only set of rule 4's IPD-KIR variant; ``b_c1`` the HLA-B
    C1-epitope flag (CF-iKIR only).
    """

    ligands: frozenset[str]
    ipd_ligands: frozenset[str]
    b_c1: bool

    def __repr__(self) -> str:  # stable order for propagation's sorting
        return (f"LigandFacts({sorted(self.ligands)}, {sorted(self.ipd_ligands)}, "
                f"{self.b_c1})")


def _facts(a: tuple[bool, bool], b: tuple[bool, bool], c: frozenset[str]) -> LigandFacts:
    ipd = set(c) | ({"Bw4"} if b[0] else set())
    full = set(ipd) | ({"Bw4"} if a[0] else set()) | ({"A3/A11"} if a[1] else set())
    return LigandFacts(frozenset(full), frozenset(ipd), b[1])


def ligand_set(a: Pair, b: Pair, c: Pair, options: Options, *, ipd: bool = False) -> frozenset[str]:
    """Rule 3 ligand set ⊆ {A3/A11, Bw4, C1, C2}; ``ipd`` = HLA-B and HLA-C only (rule 4).

    C1/C2 come only from expressed HLA-C alleles; Bw4 from an HLA-B Bw4 allele or,
    with ``hla_a_bw4``, an HLA-A*23/*24/*32 (and *25 with ``a25_bw4``) Bw4 allele;
    A3/A11 from an expressed HLA-A*03 or *11 allele.

    >>> opts = Options()
    >>> A = (AlleleFeature("A", "Bw4-80I", a_group="24"), AlleleFeature("A", "unclassified"))
    >>> B = (AlleleFeature("B", "Bw6"), AlleleFeature("B", "Bw6"))
    >>> C = (AlleleFeature("C", "C1"), AlleleFeature("C", "C1"))
    >>> sorted(ligand_set(A, B, C, opts)), sorted(ligand_set(A, B, C, opts, ipd=True))
    (['Bw4', 'C1'], ['C1'])
    """
    facts = _facts(_a_proj(a, options), _b_proj(b), _c_proj(c))
    return facts.ipd_ligands if ipd else facts.ligands


def person_facts(person: PersonHLA, options: Options) -> Cand[LigandFacts]:
    """A person's candidate :class:`LigandFacts` under propagation.

    Each locus is first collapsed to what the models use, so the product stays
    small; the reason of an unresolved result is the locus that makes it vary.
    """
    return image(_facts, person.cand("A").map(lambda p: _a_proj(p, options)),
                 person.cand("B").map(_b_proj), person.cand("C").map(_c_proj))


def format_set(values: Iterable[str]) -> str:
    """Sorted by code point and joined with ``;`` (DOMAIN.md §A.0)."""
    return ";".join(sorted(values))


@dataclass(frozen=True, slots=True)
class GenotypeSummary:
    """Rule 3 summary of one person; ``None`` = unknown (reason in ``unknown``)."""

    c_group: str | None
    b_class: str | None
    ligands: frozenset[str] | None
    b_c1: bool | None
    unknown: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    calls: tuple[AlleleCall, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "c_group": self.c_group or "",
            "b_class": self.b_class or "",
            "ligands": format_set(self.ligands) if self.ligands is not None else "",
            "b_c1": self.b_c1 if self.b_c1 is not None else "",
            "alleles": [c.to_dict() for c in self.calls],
            "warnings": sorted(set(self.warnings)),
        }


# ----------------------------------------------------------------------------
# Resolution
# ----------------------------------------------------------------------------

def _feature(rec: HLAAlleleRecord, *, null: bool) -> AlleleFeature | None:
    if null:
        return AlleleFeature(rec.locus, "null")
    if rec.ligand is None:
        return None
    a_group = ""
    if rec.locus == "A":
        ff = rec.protein.split("*")[1].split(":")[0]
        a_group = ff if ff in _A_GROUP_KEPT else ""
    return AlleleFeature(rec.locus, rec.ligand, rec.b_c1 if rec.locus == "B" else False,
                         rec.a3a11 if rec.locus == "A" else False, a_group)


def _cwd_proteins() -> frozenset[str]:
    """py-ard's bundled CWD 2.0 list (``pyard/loader/CWD2.csv``), 2-field names."""
    try:
        text = resources.files("pyard.loader").joinpath("CWD2.csv").read_text()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise PyardUnavailableError(
            f"py-ard's bundled CWD list (CWD2.csv) cannot be read: {exc}"
        ) from exc
    out = set()
    for line in text.splitlines()[1:]:
        parts = line.strip().split(",")
        if len(parts) >= 2 and "*" in parts[1]:
            name = parts[1].rstrip("NLSCAQ")
            out.add(":".join(name.split(":")[:2]))
    return frozenset(out)


class LigandResolver:
    """Resolve typings to ligand calls with the shipped tables (and py-ard if needed).

    Pure apart from lazily opening py-ard for serology, MAC and odd v2 names.

    Raises
    ------
    TypeError
        An argument of the constructor or of a method has the wrong type; the
        message names it.
    HLAParseError
        A method got a locus that carries no KIR ligand (only A, B and C do).
    """

    def __init__(self, tables: ReferenceTables, options: Options | None = None,
                 pyard: PyardBackend | None = None) -> None:
        check_type("tables", tables, ReferenceTables)
        check_type("options", options, Options, none_ok=True)
        check_type("pyard", pyard, PyardBackend, none_ok=True)
        self.tables = tables
        self.options = options or Options()
        self.pyard = pyard
        self._cache: dict[tuple[str, str], AlleleCall] = {}
        # each expressed protein's call (rule 1.5), None without residues 76-83
        self._protein_features: dict[str, AlleleFeature | None] = {}

    # -- universal feature sets (an untyped or uncoverable allele could be any of these)
    @cached_property
    def _universal(self) -> dict[str, frozenset[AlleleFeature]]:
        out: dict[str, set[AlleleFeature]] = {loc: set() for loc in CLASS_I_LOCI}
        for loc in CLASS_I_LOCI:
            for ff in self.tables.hla_first_fields(loc):
                for rec in self.tables.hla_records_with_prefix(f"{loc}*{ff}"):
                    if rec.expressed:
                        f = _feature(rec, null=False)
                        if f is not None:
                            out[loc].add(f)
        return {k: frozenset(v) for k, v in out.items()}

    def universal(self, locus: str) -> frozenset[AlleleFeature]:
        """Every expressed feature of a class I locus (an untyped allele could be any)."""
        if locus not in CLASS_I_LOCI:
            _check_locus(locus)
        return self._universal[locus]

    @cached_property
    def _cwd(self) -> frozenset[str]:
        return _cwd_proteins()

    # -- one typing ---------------------------------------------------------
    def _unknown(self, t: HLATyping, who: str, *, reason: str, note: str,
                 warnings: tuple[str, ...] = ()) -> AlleleCall:
        return AlleleCall(
            typing=str(t), locus=t.locus, kind=t.kind.value, expression="", residues=None,
            call=None, b_c1=None, a3a11=None, status="unknown", candidates=(),
            features=self.universal(t.locus), reason=reason, warnings=warnings, note=note,
        )

    def _records_for_allele(self, t: HLATyping) -> tuple[HLAAlleleRecord, ...]:
        recs = self.tables.hla_records_with_prefix(t.name)
        if t.suffix:
            recs = tuple(r for r in recs if r.suffix == t.suffix)
        if not recs:
            raise UnknownAlleleError(t.name, HLA_RELEASE)
        return recs

    def _v2_convert(self, t: HLATyping) -> HLATyping:
        digits = t.fields[0]
        candidates: list[str] = []
        if len(digits) in (4, 6, 8):
            candidates.append(":".join(digits[i:i + 2] for i in range(0, len(digits), 2)))
        for text in candidates:
            name = f"{t.locus}*{text}{t.suffix}"
            if self.tables.hla_records_with_prefix(name):
                return parse_hla_typing(name)
        if self.pyard is not None:
            try:
                v3 = self.pyard.v2_to_v3(f"{t.locus}*{digits}{t.suffix}")
            except LookupError as exc:
                raise UnknownAlleleError(t.raw, HLA_RELEASE) from exc
            return parse_hla_typing(v3)
        if candidates:
            raise UnknownAlleleError(t.raw, HLA_RELEASE)
        raise PyardUnavailableError(
            f"v2 name {t.raw!r} needs py-ard to convert; build its database with "
            "`kirmatch data build`"
        )

    def resolve_typing(self, t: HLATyping, who: str = "person") -> AlleleCall:
        """Resolve one typing token to its call (rule 1) under the ambiguity policy (rule 2)."""
        if not (isinstance(t, HLATyping) and isinstance(who, str)):
            check_type("t", t, HLATyping)
            check_type("who", who, str)
        key = (who, t.name)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        call = self._resolve_typing(t, who)
        self._cache[key] = call
        return call

    def _resolve_typing(self, t: HLATyping, who: str) -> AlleleCall:
        if t.locus not in CLASS_I_LOCI:
            raise HLAParseError(t.raw, f"locus {t.locus} carries no KIR ligand")
        if t.kind == TypingKind.V2:
            conv = self._v2_convert(t)
            inner = self._resolve_typing(conv, who)
            return _replace(inner, typing=f"{t.name} ({conv.name})")
        if t.kind == TypingKind.ALLELE:
            return self._resolve_allele(t, who)
        if t.kind in (TypingKind.G_GROUP, TypingKind.P_GROUP):
            # The group's members (hla_nom_g.txt / hla_nom_p.txt, DOMAIN.md §A.3
            # item 2): a name that is no group of the release is unknown (item 6),
            # even when an allele has its fields (C*02:02:01 is in no G group).
            members = (self.tables.g_group_members if t.kind == TypingKind.G_GROUP
                       else self.tables.p_group_members)(t.name)
            if not members:
                raise UnknownAlleleError(t.name, HLA_RELEASE)
            protein = t.protein or ""
            expressed = any(a.expressed for a in members)
            if expressed and self.tables.protein_call(protein) is None:
                # named after a null allele, with expressed members (A*11:403:01G
                # holds A*11:441): their proteins' calls (§A.3 item 3)
                return self._from_records(
                    t, who, [r for a in members if (r := self.tables.hla_record(a.allele))])
            # Residues 76-83 lie in exon 2, inside both G and P groupings: the
            # group's expressed members share the call of its named protein
            # (§A.3 item 5); a group of null alleles only (B*44:23:01G) is a null
            # allele, as its named protein is. Null members are left out, with a
            # warning when the group has any (§A.3 item 3: a P group never has;
            # a G group's may be other proteins', as C*02:150N in C*02:02:02G).
            base = self._resolve_allele(parse_hla_typing(protein), who)
            warns = base.warnings
            if expressed and any(not a.expressed for a in members):
                warns = (*warns, f"null_in_expansion({who} {t.name})")
            return _replace(base, typing=t.name, kind=t.kind.value, warnings=warns)
        if t.kind in (TypingKind.ONE_FIELD, TypingKind.XX):
            if t.first_field not in self.tables.hla_first_fields(t.locus):
                raise UnknownAlleleError(t.name, HLA_RELEASE)
            recs = self.tables.hla_records_with_prefix(f"{t.locus}*{t.first_field}")
            return self._from_records(t, who, recs)
        if t.kind == TypingKind.MAC:
            if self.pyard is None:
                return self._mac_unavailable(t, who)
            try:
                names = self.pyard.expand_mac(t.name)
            except PyardUnavailableError:
                return self._mac_unavailable(t, who)
            except LookupError as exc:
                raise UnknownAlleleError(t.name, "the NMDP MAC table") from exc
            return self._from_names(t, who, names)
        if t.kind == TypingKind.SEROLOGY:
            # The alleles assigned the antigen in the shipped antigen table
            # (rel_dna_ser.txt, rel_ser_ser.txt; DOMAIN.md §A.3): no py-ard.
            names = self.tables.alleles_assigned(t.name)
            recs = [r for n in names if (r := self.tables.hla_record(n)) is not None]
            if not recs:
                raise UnknownAntigenError(t.name, HLA_RELEASE)
            return self._from_records(t, who, recs)
        raise HLAParseError(t.raw, f"unsupported typing kind {t.kind.value}")  # pragma: no cover

    def _mac_unavailable(self, t: HLATyping, who: str) -> AlleleCall:
        return self._unknown(
            t, who, reason="mac_unavailable",
            note=("MAC code cannot be expanded: no NMDP MAC table is loaded; run "
                  "`kirmatch data build --mac-file numer.v3.zip` to enable MAC codes"),
            warnings=(f"mac_unavailable({who} {t.name})",),
        )

    def _resolve_allele(self, t: HLATyping, who: str) -> AlleleCall:
        recs = self._records_for_allele(t)
        protein = t.protein or ""
        if t.suffix:
            null = t.suffix == "N"
        else:
            # A 2-field typing means the expressed protein (rule 2.1); a name
            # that exists only as null alleles is null.
            null = all(not r.expressed for r in recs)
        warnings: list[str] = []
        own = self.tables.hla_record(t.name)
        residues = own.residues if own is not None else None
        rep = self.tables.protein_call(protein)
        if residues is None and rep is not None:
            residues = rep.residues
        if null:
            warnings.append(f"null_allele({who} {t.name})")
            return AlleleCall(
                typing=t.name, locus=t.locus, kind=t.kind.value, expression="null",
                residues=residues, call="null", b_c1=False, a3a11=False, status="resolved",
                candidates=(), features=frozenset({AlleleFeature(t.locus, "null")}),
                warnings=tuple(warnings), proteins=(protein,),
            )
        expression = f"flagged:{t.suffix}" if t.suffix else "expressed"
        if t.suffix:
            warnings.append(f"expression_variant({who} {t.name})")
        if rep is None or rep.ligand is None:
            warnings.append(f"no_sequence_coverage({who} {t.name})")
            call = self._unknown(t, who, reason="no_sequence_coverage",
                                 note="no sequence entry covers residues 76-83",
                                 warnings=tuple(warnings))
            return _replace(call, expression=expression)
        feat = _feature(rep, null=False)
        assert feat is not None
        if feat.ligand == "unclassified" and t.locus in ("B", "C"):
            warnings.append(f"unclassified_allele({who} {t.name})")
        return AlleleCall(
            typing=t.name, locus=t.locus, kind=t.kind.value, expression=expression,
            residues=residues, call=feat.ligand, b_c1=feat.b_c1, a3a11=feat.a3a11,
            status="resolved", candidates=(), features=frozenset({feat}),
            warnings=tuple(warnings), proteins=(protein,),
        )

    def _from_names(self, t: HLATyping, who: str, names: Iterable[str]) -> AlleleCall:
        recs: list[HLAAlleleRecord] = []
        for name in names:
            try:
                sub = parse_hla_typing(name)
            except HLAParseError:
                continue
            recs.extend(self.tables.hla_records_with_prefix(sub.name))
        if not recs:
            raise UnknownAlleleError(t.name, HLA_RELEASE)
        return self._from_records(t, who, recs)

    def _from_records(self, t: HLATyping, who: str,
                      recs: Iterable[HLAAlleleRecord]) -> AlleleCall:
        """Collapse an expansion to distinct expressed 2-field proteins (rule 2.3-2.4)."""
        expressed: dict[str, bool] = {}     # protein -> has an expressed member
        any_null = False
        for r in recs:
            if r.expressed:
                expressed[r.protein] = True
            else:
                any_null = True
                expressed.setdefault(r.protein, False)
        warnings: list[str] = []
        if any_null:
            warnings.append(f"null_in_expansion({who} {t.name})")
        feats: dict[str, AlleleFeature] = {}
        known = self._protein_features
        for protein, has in expressed.items():
            if not has:
                continue  # null-only proteins are left out of the agreement test
            if protein in known:
                f = known[protein]
            else:       # the same for every typing that expands to the protein
                rep = self.tables.protein_call(protein)
                f = known[protein] = _feature(rep, null=False) if rep is not None else None
            if f is not None:
                feats[protein] = f
        if not feats:
            return self._unknown(t, who, reason="no_sequence_coverage",
                                 note="no expressed candidate has residues 76-83",
                                 warnings=(*warnings, f"no_sequence_coverage({who} {t.name})"))
        return self._apply_policy(t, who, feats, warnings)

    def _apply_policy(self, t: HLATyping, who: str, feats: dict[str, AlleleFeature],
                      warnings: list[str]) -> AlleleCall:
        calls = Counter(f.ligand for f in feats.values())
        policy = self.options.ambiguity_policy
        chosen: dict[str, AlleleFeature] = feats
        status = "resolved" if len(calls) == 1 else "ambiguous"
        if status == "ambiguous" and policy == "cwd":
            restricted = {p: f for p, f in feats.items() if p in self._cwd}
            if restricted and len({f.ligand for f in restricted.values()}) == 1:
                chosen, status = restricted, "resolved"
                warnings.append(f"resolved_by_cwd({who} {t.name})")
        elif status == "ambiguous" and policy == "majority":
            top, n = calls.most_common(1)[0]
            if n * 2 > len(feats):
                chosen = {p: f for p, f in feats.items() if f.ligand == top}
                status = "resolved"
                warnings.append(f"resolved_by_majority({who} {t.name})")
        feature_set = frozenset(chosen.values())
        cand_calls = tuple(sorted({f.ligand for f in feats.values()}))
        if status == "ambiguous":
            warnings.append(f"ambiguous_typing({who} {t.name}: {','.join(cand_calls)})")
            return AlleleCall(
                typing=t.name, locus=t.locus, kind=t.kind.value, expression="",
                residues=None, call=None, b_c1=None, a3a11=None, status="ambiguous",
                candidates=cand_calls, features=feature_set, reason="ambiguous_typing",
                warnings=tuple(warnings), proteins=tuple(sorted(feats)),
            )
        only = {f.ligand for f in feature_set}.pop()
        b_c1s = {f.b_c1 for f in feature_set}
        a3s = {f.a3a11 for f in feature_set}
        if only == "unclassified" and t.locus in ("B", "C"):
            warnings.append(f"unclassified_allele({who} {t.name})")
        return AlleleCall(
            typing=t.name, locus=t.locus, kind=t.kind.value, expression="expressed",
            residues=None, call=only, b_c1=b_c1s.pop() if len(b_c1s) == 1 else None,
            a3a11=a3s.pop() if len(a3s) == 1 else None, status="resolved",
            candidates=cand_calls if len(cand_calls) > 1 else (), features=feature_set,
            reason="ambiguous_typing" if len(feature_set) > 1 else None,
            warnings=tuple(warnings), proteins=tuple(sorted(chosen)),
        )

    # -- slots and genotypes -------------------------------------------------
    def resolve_slot(self, slot: HLASlot, who: str = "person") -> AlleleCall:
        """A ``/`` allele list: the union of its alternatives' candidates."""
        if not (isinstance(slot, HLASlot) and isinstance(who, str)):
            check_type("slot", slot, HLASlot)
            check_type("who", who, str)
        if len(slot.alternatives) == 1:
            return self.resolve_typing(slot.alternatives[0], who)
        t0 = slot.alternatives[0]
        feats: dict[str, AlleleFeature] = {}
        warnings: list[str] = []
        for t in slot.alternatives:
            c = self.resolve_typing(t, who)
            if c.status == "unknown" or (c.call == "null"):
                if c.call == "null":
                    warnings.append(f"null_in_expansion({who} {slot})")
                    continue
                return _replace(c, typing=str(slot))
            for w in c.warnings:
                if not w.startswith(("ambiguous_typing", "null_in_expansion")):
                    warnings.append(w)
            if len(c.features) == 1 and c.proteins:
                (only,) = c.features
                for p in c.proteins:
                    feats[p] = only
            else:
                for i, f in enumerate(sorted(c.features)):
                    feats[f"{c.typing}#{i}"] = f
        if not feats:
            null = AlleleFeature(t0.locus, "null")
            return AlleleCall(
                typing=str(slot), locus=t0.locus, kind="allele_list", expression="null",
                residues=None, call="null", b_c1=False, a3a11=False, status="resolved",
                candidates=(), features=frozenset({null}), warnings=tuple(warnings),
            )
        pseudo = HLATyping(raw=str(slot), locus=t0.locus, kind=TypingKind.ALLELE,
                           name=str(slot))
        call = self._apply_policy(pseudo, who, feats, warnings)
        return _replace(call, kind="allele_list")

    def resolve_locus(self, locus: str, lt: HLALocusTyping | None, who: str = "person"
                      ) -> LocusResolution:
        """Resolve one class I locus typing (``None`` = not typed) to its candidate
        genotype pairs, the per-allele calls and the warnings (rule 2, §A.4)."""
        if locus not in CLASS_I_LOCI:
            _check_locus(locus)
        check_type("lt", lt, HLALocusTyping, none_ok=True)
        check_type("who", who, str)
        if lt is None:
            uni = self.universal(locus)
            return LocusResolution(Cand.any_of(_pairs(uni, uni), "hla_untyped"), (),
                                   (f"hla_untyped({who} {locus})",))
        calls: list[AlleleCall] = []
        warnings: list[str] = []
        pairs: set[Pair] = set()
        reason: str | None = None
        for alt in lt.alternatives:
            slot_calls = [self.resolve_slot(s, who) for s in alt]
            calls.extend(slot_calls)
            for c in slot_calls:
                warnings.extend(c.warnings)
                if reason is None and len(c.features) > 1:
                    reason = c.reason or "ambiguous_typing"
            if len(slot_calls) == 1:
                first = slot_calls[0]
                if self.options.single_allele == "homozygous":
                    second = first.features
                else:
                    second = self.universal(locus)
                    reason = reason or "single_allele"
                warnings.append(f"single_allele({who} {locus})")
                pairs |= _pairs(first.features, second)
            else:
                pairs |= _pairs(slot_calls[0].features, slot_calls[1].features)
        if len(lt.alternatives) > 1 and reason is None:
            reason = "ambiguous_typing"
        return LocusResolution(Cand.any_of(pairs, reason or "ambiguous_typing"), tuple(calls),
                               tuple(dict.fromkeys(warnings)))

    def resolve_genotype(self, genotype: HLAGenotype | None, who: str = "person") -> PersonHLA:
        """Resolve a person's class I typing into per-locus candidate genotype pairs."""
        check_type("genotype", genotype, HLAGenotype, none_ok=True)
        check_type("who", who, str)
        loci: dict[str, Cand[Pair]] = {}
        calls: list[AlleleCall] = []
        warnings: list[str] = []
        for loc in CLASS_I_LOCI:
            res = self.resolve_locus(loc, genotype.locus(loc) if genotype is not None else None,
                                     who)
            loci[loc] = res.cand
            calls.extend(res.calls)
            warnings.extend(res.warnings)
        return PersonHLA(who=who, loci=loci, calls=tuple(calls),
                         warnings=tuple(dict.fromkeys(warnings)), genotype=genotype)

    def summarize(self, person: PersonHLA) -> GenotypeSummary:
        """Rule 3 summary (C group, HLA-B class, ligand set, B-C1) with propagation."""
        check_type("person", person, PersonHLA)
        opts = self.options
        unknown: dict[str, str] = {}
        cg, r = evaluate(c_group, person.cand("C"))
        if cg is None:
            unknown["c_group"] = r or "ambiguous_typing"
        bc, r = evaluate(b_class, person.cand("B"))
        if bc is None:
            unknown["b_class"] = r or "ambiguous_typing"
        ls, r = evaluate(lambda f: f.ligands, person_facts(person, opts))
        if ls is None:
            unknown["ligands"] = r or "ambiguous_typing"
        b1, r = evaluate(has_b_c1, person.cand("B"))
        if b1 is None:
            unknown["b_c1"] = r or "ambiguous_typing"
        return GenotypeSummary(cg, bc, ls, b1, unknown, person.warnings, person.calls)


def _check_locus(locus: object) -> None:
    check_type("locus", locus, str)
    raise HLAParseError(str(locus), "not a locus with KIR ligands (expected one of "
                        f"{', '.join(CLASS_I_LOCI)})")


def _pairs(s1: Iterable[AlleleFeature], s2: Iterable[AlleleFeature]) -> set[Pair]:
    out: set[Pair] = set()
    for f1 in s1:
        for f2 in s2:
            out.add((f1, f2) if f1 <= f2 else (f2, f1))
    return out


def _replace(call: AlleleCall, **changes: object) -> AlleleCall:
    from dataclasses import replace

    return replace(call, **changes)  # type: ignore[arg-type]


_RESOLVERS: dict[tuple[int, Options, int], LigandResolver] = {}


def shared_resolver(tables: ReferenceTables, options: Options,
                    pyard: PyardBackend | None = None) -> LigandResolver:
    """One resolver (and its typing cache) per tables, options and py-ard backend."""
    key = (id(tables), options, id(pyard))
    r = _RESOLVERS.get(key)
    # ids can be reused after garbage collection: check the objects themselves
    if r is None or r.tables is not tables or r.pyard is not pyard:
        if len(_RESOLVERS) > 32:
            _RESOLVERS.clear()
        r = LigandResolver(tables, options, pyard)
        _RESOLVERS[key] = r
    return r
