"""Person facts: what the registry's models read of one person, resolved once.

A person is resolved role-independently: its warnings are kept as templates
with a ``{who}`` placeholder (``single_allele({who} A)``) and become
``recipient``/``donor`` only at output (:meth:`PersonFacts.role_warnings`), so
one resolution serves both roles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kirmatch.hla import CLASS_I_LOCI, HLAGenotype, HLALocusTyping
from kirmatch.hlamatch import MATCH_LOCI, OPTIONAL_LOCI, LocusReadings, locus_readings
from kirmatch.kir import KIRFeatures, KIRGenotype, kir_features
from kirmatch.ligands import LigandResolver, LocusResolution
from kirmatch.options import Options
from kirmatch.propagation import Cand
from kirmatch.registry import FACTS, PAIR_FACTS, TYPING_LOCI
from kirmatch.tables import ReferenceTables

__all__ = ["WHO", "PersonFacts", "compute_fact", "kir_role_warnings", "pair_fact",
           "readings_warnings", "resolve_person"]

#: Placeholder for the role in warning templates.
WHO = "{who}"


def compute_fact(name: str, deps: Mapping[str, Any], options: Options,
                 tables: ReferenceTables | None = None, pyard: Any = None) -> Cand[Any]:
    """Fact ``name`` from its dependencies' values (see :data:`kirmatch.registry.FACTS`);
    ``tables`` and ``pyard`` are passed on to a fact that reads them (``context``)."""
    fact = FACTS[name]
    if fact.context:
        return fact.fn(*(deps[d] for d in fact.deps), options, tables, pyard)
    return fact.fn(*(deps[d] for d in fact.deps), options)


def kir_role_warnings(warnings: tuple[str, ...], role: str, typed: bool) -> tuple[str, ...]:
    """Which KIR warnings a role reports: all of them for the donor; for the
    recipient only ``kir_gene_unknown`` (its KIR matters for gene-gene only), and
    nothing when the recipient has no KIR typing."""
    if role == "donor":
        return warnings
    if not typed:
        return ()
    return tuple(w for w in warnings if w.startswith("kir_gene_unknown"))


@dataclass
class PersonFacts:
    """One person's resolved loci, KIR features and (lazily) registry facts."""

    loci: dict[str, LocusResolution]
    kir: KIRFeatures
    kir_given: bool
    options: Options
    readings: dict[str, LocusReadings] = field(default_factory=dict)
    typings: dict[str, HLALocusTyping | None] = field(default_factory=dict)
    tables: ReferenceTables | None = None
    pyard: Any = None
    _facts: dict[str, Cand[Any]] = field(default_factory=dict)

    def get(self, name: str) -> Cand[Any]:
        hit = self._facts.get(name)
        if hit is None:
            fact = FACTS[name]
            deps: dict[str, Any] = {}
            for d in fact.deps:
                if d.startswith("locus:"):
                    deps[d] = self.loci[d[6:]].cand
                elif d.startswith("hla:"):
                    deps[d] = self.readings[d[4:]]
                elif d.startswith("typing:"):
                    deps[d] = (self.typings.get(d[7:]),)
                elif d == "kir":
                    deps[d] = self.kir
                else:
                    deps[d] = self.get(d)
            hit = compute_fact(name, deps, self.options, self.tables, self.pyard)
            self._facts[name] = hit
        return hit

    @property
    def hla_warnings(self) -> tuple[str, ...]:
        out: list[str] = []
        for loc in CLASS_I_LOCI:
            out.extend(self.loci[loc].warnings)
        for loc, r in self.readings.items():
            if loc not in CLASS_I_LOCI:
                out.extend(readings_warnings(loc, r))
        return tuple(dict.fromkeys(out))

    def role_warnings(self, role: str) -> tuple[str, ...]:
        """This person's warnings as ``role`` (``recipient`` or ``donor``)."""
        out = [*self.hla_warnings, *kir_role_warnings(self.kir.warnings, role, self.kir_given)]
        return tuple(w.replace(WHO, role) for w in out)


def resolve_person(hla: HLAGenotype | None, kir: KIRGenotype | None,
                   resolver: LigandResolver, tables: ReferenceTables) -> PersonFacts:
    """Resolve one person's typings (rule 2) into facts, role-independently."""
    loci = {loc: resolver.resolve_locus(loc, hla.locus(loc) if hla is not None else None, WHO)
            for loc in CLASS_I_LOCI}
    readings = {loc: locus_readings(hla.locus(loc) if hla is not None else None, loc, tables,
                                    resolver.options, resolver.pyard, WHO)
                for loc in MATCH_LOCI}
    typings = {loc: hla.locus(loc) if hla is not None else None for loc in TYPING_LOCI}
    return PersonFacts(loci, kir_features(kir, tables, WHO), kir is not None,
                       resolver.options, readings=readings, typings=typings, tables=tables,
                       pyard=resolver.pyard)


def readings_warnings(locus: str, r: LocusReadings) -> tuple[str, ...]:
    """The warnings a class II locus adds to a person: an untyped locus is warned
    only for the loci every rule-16 total needs (DRB1, DQB1) and DPB1; the
    optional loci (DRB3/4/5, DQA1, DPA1) are compared only when typed."""
    if locus in OPTIONAL_LOCI:
        return tuple(w for w in r.warnings if not w.startswith("hla_untyped("))
    return r.warnings


def pair_fact(name: str, recipient: PersonFacts, donor: PersonFacts) -> Cand[Any]:
    """Pair fact ``name`` (:data:`kirmatch.registry.PAIR_FACTS`) of two persons."""
    p = PAIR_FACTS[name]
    return p.fn(recipient.get(p.fact), donor.get(p.fact))
