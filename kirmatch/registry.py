"""The model registry: the one place where an NK-alloreactivity model is declared.

A model is one pure function in :mod:`kirmatch.scores` plus one
:class:`Model` entry here, which says

* which output columns it fills (in output-contract order, DOMAIN.md §A.16),
* its scope: ``recipient`` or ``donor`` (one person) or ``pair`` (both),
* the *person facts* it reads (``(role, fact)`` pairs, see :data:`FACTS`),
* the options it depends on, its rule and its citation, and a one-line meaning
  of each column.

Everything else is derived from these entries: :func:`kirmatch.pair.assess_pair`
evaluates them on one pair, the batch engine (:mod:`kirmatch.engine`) evaluates
them once per distinct combination of input facts and broadcasts the results,
``rank``, the terminal text, the JSON, the HTML report, the generated rules
reference and the "every model has a test" check all read the registry.

Adding a model = one function in :mod:`kirmatch.scores` + one :class:`Model`
entry (+ its facts, if new) + its tests.

Facts
-----
A *fact* is what a model needs to know of one person, as a candidate set
(:class:`~kirmatch.propagation.Cand`, DOMAIN.md §A.0). Facts are role
independent: they are computed once per distinct typing and shared by the
recipient and the donor sides. HLA facts are derived from the resolved loci
(``locus:A`` …), KIR facts from the person's KIR features (``kir``).

>>> [m.name for m in MODELS][:4]
['recipient_c_group', 'recipient_b_class', 'recipient_ligands', 'donor_c_group']
>>> COLUMNS[:3]
('recipient_c_group', 'recipient_b_class', 'recipient_ligands')
>>> model_of("cf_ikir").rule, model_of("cf_ikir").inputs
('8', (('donor', 'cf_genes'), ('recipient', 'ligand_facts')))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import kirmatch.dsa as _dsa_module
from kirmatch.dsa import COLUMNS as _DSA_COLUMNS
from kirmatch.dsa import antibody_tier
from kirmatch.expand import b_leader_genotype
from kirmatch.hlamatch import (
    MATCH_LOCI,
    NOT_COMPARED,
    OPTIONAL_LOCI,
    TOTAL_LOCI,
    LocusComparison,
    compare_locus,
    compare_many,
    compare_optional,
    dpb1_tce_of,
)
from kirmatch.kir import KIRFeatures
from kirmatch.ligands import (
    Pair,
    _a_proj,
    _b_proj,
    _c_proj,
    _facts,
    b_class,
    c_group,
    format_set,
    has_b_c1,
    ligand_set,
)
from kirmatch.options import Options
from kirmatch.propagation import Cand, Tabulated, Unknown, image
from kirmatch.scores import (
    IKIR,
    b_content,
    b_leader_match,
    cen_motif,
    cf_ikir,
    dpb1_tce,
    drb1_mm_dqb1_match,
    gene_gene_mismatches,
    hla_mismatch_totals,
    hla_relation,
    ikir_score_weighted,
    ikir_weights,
    kir2ds1_status,
    kir3dl1_hlab,
    kir_ab_genotype,
    krieger_counts,
    krieger_scores,
    ligand_mismatch,
    missing_ligands,
    receptor_ligand_mismatches,
    tel_motif,
)

__all__ = [
    "COLUMNS",
    "DSA_COLUMNS",
    "FACTS",
    "MODELS",
    "PAIR_FACTS",
    "PERSON_COLUMNS",
    "PERSON_MODELS",
    "Fact",
    "Model",
    "ModelEvaluator",
    "PairFact",
    "cell",
    "decode",
    "encode",
    "evaluate_model",
    "model_of",
    "person_model_of",
]

# ---------------------------------------------------------------------------
# Facts
# ---------------------------------------------------------------------------

#: KIR genes read by the gene-content models (rule 9).
CONTENT_GENES = ("KIR2DL2", "KIR2DL3", "KIR2DL5", "KIR2DS1", "KIR2DS2", "KIR2DS3", "KIR2DS4",
                 "KIR2DS5", "KIR3DL1", "KIR3DS1")


@dataclass(frozen=True, slots=True)
class Fact:
    """A person-level input of the models.

    ``deps`` are other facts or sources (``locus:A``, ``locus:B``, ``locus:C``
    for a resolved locus's candidate pairs; ``typing:<locus>`` for the locus's
    typing as typed, a 1-tuple ``(HLALocusTyping or None,)``; ``kir`` for the
    KIR features); ``fn(*dep_values, options)`` returns the fact as a candidate
    set, ``fn(*dep_values, options, tables, pyard)`` when ``context`` is set
    (the reference tables and py-ard backend of the run). ``options`` names the
    options it reads (its cache key includes them).
    """

    name: str
    deps: tuple[str, ...]
    fn: Callable[..., Cand[Any]]
    options: tuple[str, ...] = ()
    doc: str = ""
    context: bool = False


def _map(fn: Callable[[Any], Any]) -> Callable[..., Cand[Any]]:
    def run(c: Cand[Any], _o: Options) -> Cand[Any]:
        return c.map(fn)
    return run


def _kir_genes(names: tuple[str, ...]) -> Callable[[KIRFeatures, Options], Cand[Any]]:
    def run(k: KIRFeatures, _o: Options) -> Cand[Any]:
        return k.genes(names)
    return run


def _ikir_typed(k: KIRFeatures, _o: Options) -> Cand[Any]:
    if not k.typed:
        return Cand(frozenset({None}), "no_recipient_kir")
    return k.genes(IKIR)


def _rl_genes(k: KIRFeatures, o: Options) -> Cand[Any]:
    return k.genes((*IKIR, "KIR3DL2")) if o.include_a3a11 else k.genes(IKIR)


def _cf_genes(k: KIRFeatures, o: Options) -> Cand[Any]:
    if not o.exclude_null_kir3dl1:
        return k.genes(IKIR)
    base = k.genes(("KIR2DL1", "KIR2DL2", "KIR2DL3"))
    vals: set[Any] = set()
    for g in base.values:
        for f in k.kir3dl1_functional.values:
            vals.add(None if f is None else (g | {"KIR3DL1"} if f else g))
    reason = base.reason if len(base.values) > 1 else k.kir3dl1_functional.reason
    return Cand.any_of(vals, reason)


def _a_fact(c: Cand[Pair], o: Options) -> Cand[Any]:
    return c.map(lambda p: _a_proj(p, o))


def _ligand_facts(a: Cand[Any], b: Cand[Any], c: Cand[Any], _o: Options) -> Cand[Any]:
    return image(_facts, a, b, c)


#: Rule 17's donor genes, besides KIR2DS4 (full length only) and KIR3DL2.
KRIEGER_GENES = ("KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR3DL1", "KIR2DS1", "KIR2DS2", "KIR2DS5")


def _krieger_genes(k: KIRFeatures, _o: Options) -> Cand[Any]:
    """Rule 17's donor genes: KIR3DL2 is a framework gene (present unless typed
    absent) and KIR2DS4 counts only with a full-length allele (§A.20)."""
    framework = k.present["KIR3DL2"].values != frozenset({False})
    extra = frozenset({"KIR3DL2"}) if framework else frozenset()
    return image(lambda g, fl: g | extra | ({"KIR2DS4"} if fl else frozenset()),
                 k.genes(KRIEGER_GENES), k.kir2ds4_full_length)


def _a_bw4(c: Cand[Pair], o: Options) -> Cand[Any]:
    """Whether an HLA-A allele of a group rule 3 may count carries Bw4 (A*23, *24,
    *32; *25 with ``a25_bw4``), whether or not ``hla_a_bw4`` counts it."""
    counted = o if o.hla_a_bw4 else o.replace(hla_a_bw4=True)
    return c.map(lambda p: _a_proj(p, counted)[0])


def _b_leader(typing: tuple[Any], o: Options, tables: Any, pyard: Any) -> Cand[Any]:
    return b_leader_genotype(typing[0], tables, pyard, single_allele=o.single_allele)


def _a_groups(pair: Pair) -> tuple[bool, bool]:
    """(an expressed HLA-A*03 or *11 allele, an expressed HLA-A*11 allele)."""
    return (any(f.a3a11 and f.expressed for f in pair),
            any(f.a_group == "11" and f.expressed for f in pair))


def _krieger_ligands(a: Cand[Any], b: Cand[Any], c: Cand[Any], _o: Options) -> Cand[Any]:
    """Rule 17's recipient ligands: C1/C2 (HLA-C), Bw4 (HLA-B only), A3/A11, A11."""
    def one(a3a11: tuple[bool, bool], bp: tuple[bool, bool], cp: frozenset[str]
            ) -> frozenset[str]:
        return cp | {lig for lig, has in (("Bw4", bp[0]), ("A3/A11", a3a11[0]),
                                          ("A11", a3a11[1])) if has}
    return image(one, a, b, c)


FACTS: dict[str, Fact] = {f.name: f for f in (
    Fact("c_group", ("locus:C",), _map(c_group), doc="HLA-C group (rule 3)"),
    Fact("b_class", ("locus:B",), _map(b_class), doc="HLA-B Bw4/Bw6 class (rule 3)"),
    Fact("b_c1", ("locus:B",), _map(has_b_c1), doc="HLA-B C1-epitope flag (rule 1)"),
    Fact("a_proj", ("locus:A",), _a_fact, ("hla_a_bw4", "a25_bw4"),
         doc="HLA-A's ligand contribution: (adds Bw4, adds A3/A11)"),
    Fact("b_proj", ("locus:B",), _map(_b_proj), doc="HLA-B's contribution: (Bw4, B-C1)"),
    Fact("c_proj", ("locus:C",), _map(_c_proj), doc="HLA-C's C1/C2 groups"),
    Fact("ligand_facts", ("a_proj", "b_proj", "c_proj"), _ligand_facts,
         doc="rule-3 LigandFacts: ligand set, HLA-B/C-only ligand set, B-C1 flag"),
    Fact("ikir", ("kir",), _kir_genes(IKIR), doc="iKIR genes present (2DL1, 2DL2, 2DL3, 3DL1)"),
    Fact("ikir_typed", ("kir",), _ikir_typed,
         doc="iKIR genes present; unknown (no_recipient_kir) without KIR typing"),
    Fact("rl_genes", ("kir",), _rl_genes, ("include_a3a11",),
         doc="receptor-ligand genes (iKIR, plus KIR3DL2 with include_a3a11)"),
    Fact("cf_genes", ("kir",), _cf_genes, ("exclude_null_kir3dl1",),
         doc="iKIR genes counted by CF-iKIR (KIR3DL1 only if H/L with exclude_null_kir3dl1)"),
    Fact("content", ("kir",), _kir_genes(CONTENT_GENES), doc="gene-content genes (rule 9)"),
    Fact("kir2ds1", ("kir",), lambda k, _o: k.present["KIR2DS1"], doc="KIR2DS1 present"),
    Fact("kir3dl1_class", ("kir",), lambda k, _o: k.kir3dl1_class,
         doc="KIR3DL1 class H/L/N (rule 11)"),
    Fact("kir2dl1_245", ("kir",), lambda k, _o: k.kir2dl1_245,
         doc="KIR2DL1 residue 245 call (rule 12)"),
    *(Fact(f"hla_{loc}", (f"hla:{loc}",), lambda r, _o: r.cand,
           doc=f"HLA-{loc} readings at ARS identity (rule 16)") for loc in MATCH_LOCI),
    Fact("dpb1_tce", ("hla:DPB1",), lambda r, _o: dpb1_tce_of(r.cand, r.tce),
         doc="lowest DPB1 TCE group of each reading (rule 16)"),
    Fact("a_bw4", ("locus:A",), _a_bw4, ("a25_bw4",),
         doc="carries HLA-A Bw4 of A*23/*24/*32 (*25 with a25_bw4), counted or not"),
    Fact("kir3dl1_classes", ("kir",), lambda k, _o: k.kir3dl1_classes,
         doc="the rule-11 classes (H/L/N) of the KIR3DL1 and KIR3DS1 alleles carried"),
    Fact("a_groups", ("locus:A",), _map(_a_groups),
         doc="HLA-A: (carries A*03 or A*11, carries A*11), expressed alleles"),
    Fact("krieger_genes", ("kir",), _krieger_genes,
         doc="rule-17 donor genes: 2DL1-3, 3DL1, 3DL2 (unless typed absent), 2DS1, 2DS2, "
             "2DS4 (full length only), 2DS5"),
    Fact("krieger_ligands", ("a_groups", "b_proj", "c_proj"), _krieger_ligands,
         doc="rule-17 ligands: C1/C2 (HLA-C), Bw4 (HLA-B only), A3/A11, A11"),
    Fact("b_leader", ("typing:B",), _b_leader, ("single_allele",),
         doc="HLA-B leader genotype, residue -21: 'M/M', 'M/T' or 'T/T' (rule 16; "
             "kirmatch.expand.b_leader_genotype)", context=True),
)}

#: Loci whose typing (as typed) some fact reads (``typing:<locus>`` sources).
TYPING_LOCI = tuple(sorted({d.split(":", 1)[1] for f in FACTS.values() for d in f.deps
                            if d.startswith("typing:")}))


@dataclass(frozen=True, slots=True)
class PairFact:
    """A comparison of the recipient's and the donor's values of one fact
    (``fn(recipient_value, donor_value) -> Cand``), read by models as
    ``("pair", name)``; computed once per distinct pair of fact values."""

    name: str
    fact: str
    fn: Callable[[Cand[Any], Cand[Any]], Cand[Any]]
    doc: str = ""
    #: ``fn`` over many pairs at once (lists of recipient and donor values), when
    #: that is faster than one call per pair; the same results.
    many: Callable[[list[Cand[Any]], list[Cand[Any]]], list[Cand[Any]]] | None = None


PAIR_FACTS: dict[str, PairFact] = {p.name: p for p in (
    PairFact(f"cmp_{loc}", f"hla_{loc}",
             compare_optional if loc in OPTIONAL_LOCI else compare_locus,
             doc=f"HLA-{loc}: (GvH, HvG) mismatches and whether an allele is shared"
             + (" (compared only when both persons are typed)" if loc in OPTIONAL_LOCI
                else ""),
             many=partial(compare_many, optional=loc in OPTIONAL_LOCI))
    for loc in MATCH_LOCI)}


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Model:
    """One published model (or one rule-3 summary) and how to evaluate it.

    ``fn(*input_values, options)`` takes one resolved value per input (in
    ``inputs`` order) and returns a tuple aligned with ``columns`` (or an
    :class:`~kirmatch.propagation.Unknown`, which makes every column unknown
    with its reason).
    """

    name: str
    rule: str
    scope: str
    columns: tuple[str, ...]
    inputs: tuple[tuple[str, str], ...]
    fn: Callable[..., Any]
    options: tuple[str, ...] = ()
    citation: str = ""
    meaning: Mapping[str, str] = field(default_factory=dict)
    #: Allele-level KIR gene each column needs (for ``gene_level_kir`` warnings).
    allele_gene: Mapping[str, str] = field(default_factory=dict)
    #: Warnings a column value raises (``{"hla_relation": {"not haploidentical":
    #: "not_haploidentical(donor)"}}``).
    value_warnings: Mapping[str, Mapping[Any, str]] = field(default_factory=dict)
    #: What of each input the model reads (applied to every candidate before the
    #: combinations are formed, so that propagation enumerates only what matters).
    project: Callable[[Any], Any] | None = None
    #: A faster exact propagation for a model whose columns are sums over its
    #: inputs: ``(k, cands) -> (value, reason)`` (the same result as
    #: :func:`~kirmatch.propagation.evaluate`, without forming every combination).
    evaluator: Callable[[int, tuple[Cand[Any], ...]], tuple[Any, str | None]] | None = None
    #: The functions (or module) whose docstrings document the model: formula,
    #: missing data and worked examples (the generated rules reference,
    #: :mod:`kirmatch.docs`, reads them).
    doc: tuple[Any, ...] = ()


_RUGGERI = "Ruggeri L et al., Science 2002;295:2097-2100, doi:10.1126/science.1068440"
_HSU = "Hsu KC et al., Blood 2005;105:4878-4884, doi:10.1182/blood-2004-12-4825"
_LEUNG = "Leung W et al., J Immunol 2004;172:644-650, doi:10.4049/jimmunol.172.1.644"
_SYMONS = ("Symons HJ et al., Biol Blood Marrow Transplant 2010;16:533-542, "
           "doi:10.1016/j.bbmt.2009.11.022")
_ZOU = ("Zou J et al., Front Immunol 2022;13:1033871, doi:10.3389/fimmu.2022.1033871; "
        "Ciurea SO et al., Am J Hematol 2024;99:890-899, doi:10.1002/ajh.27281; "
        "Boelen L et al., Sci Immunol 2018;3:eaao2892, doi:10.1126/sciimmunol.aao2892")
_BOELEN = "Boelen L et al., Sci Immunol 2018;3:eaao2892, doi:10.1126/sciimmunol.aao2892"
_COOLEY = ("Cooley S et al., Blood 2009;113:726-732, doi:10.1182/blood-2008-07-171926; "
           "Cooley S et al., Blood 2010;116:2411-2419, doi:10.1182/blood-2010-05-283051")
_VENSTROM = "Venstrom JM et al., N Engl J Med 2012;367:805-816, doi:10.1056/NEJMoa1200503"
_BOUDREAU = "Boudreau JE et al., J Clin Oncol 2017;35:2268-2278, doi:10.1200/JCO.2016.70.7059"
_BARI = "Bari R et al., J Clin Oncol 2013;31:3782-3790, doi:10.1200/JCO.2012.47.4007"
_RULES = "kirmatch rules v2, DOMAIN.md §A.4 (rule 3)"
_PETERSDORF = ("Petersdorf EW et al., Lancet Haematol 2020;7:e50-e60; Fuchs EJ, McCurdy SR "
               "et al., Blood 2022;139:1452-1468")
_FUCHS = ("Fuchs EJ, McCurdy SR et al., Blood 2022;139:1452-1468, "
          "doi:10.1182/blood.2021013443")
_CRIVELLO = ("Crivello P et al., Biol Blood Marrow Transplant 2015;21:233-241, "
             "doi:10.1016/j.bbmt.2014.10.017; Fuchs 2022")
_KRIEGER = ("Krieger E et al., Biol Blood Marrow Transplant 2020, PMID 31676338 "
            "(as DKMS CTUtools score_krieger)")
_DSA = ("Ciurea SO et al., Bone Marrow Transplant 2018;53:521-534 (EBMT consensus); "
        "Kongtim P et al., Transplant Cell Ther 2024, doi:10.1016/j.jtct.2024.09.005")


def _summary(role: str) -> tuple[Model, ...]:
    return (
        Model(f"{role}_c_group", "3", role, (f"{role}_c_group",), ((role, "c_group"),),
              lambda g, _o: (g,), citation=_RULES,
              meaning={f"{role}_c_group": f"the {role}'s HLA-C KIR-ligand groups (C1/C2; - = "
                                          "null or unclassified)"},
              doc=(c_group,)),
        Model(f"{role}_b_class", "3", role, (f"{role}_b_class",), ((role, "b_class"),),
              lambda b, _o: (b,), citation=_RULES,
              meaning={f"{role}_b_class": f"the {role}'s HLA-B class: Bw4-80I, Bw4-80T or Bw6"},
              doc=(b_class,)),
        Model(f"{role}_ligands", "3", role, (f"{role}_ligands",), ((role, "ligand_facts"),),
              lambda f, _o: (f.ligands,), ("hla_a_bw4", "a25_bw4"), citation=_RULES,
              meaning={f"{role}_ligands": f"the {role}'s KIR ligands (A3/A11, Bw4, C1, C2)"},
              doc=(ligand_set,)),
    )


def _ligand_mismatch(r: Any, d: Any, o: Options) -> tuple[Any, ...]:
    a3 = o.include_a3a11 and not o.ipd_compatible
    if o.ipd_compatible:
        gvh, hvg = ligand_mismatch(d.ipd_ligands, r.ipd_ligands, include_a3a11=a3)
    else:
        gvh, hvg = ligand_mismatch(d.ligands, r.ligands, include_a3a11=a3)
    return bool(gvh), gvh, bool(hvg), hvg


def _missing(g: Any, r: Any, _o: Options) -> tuple[Any, ...]:
    ml = missing_ligands(g, r.ligands)
    return len(ml), ml


def _content(g: Any, _o: Options) -> tuple[Any, ...] | Any:
    bc = b_content(g)
    cen = cen_motif(g)
    return (kir_ab_genotype(g), cen, tel_motif(g),
            bc if not isinstance(bc, tuple) else bc[0],
            bc if not isinstance(bc, tuple) else bc[1])


def _locus_counts(c: Any) -> Any:
    """HLA mismatches at one locus, in each direction, rule 16.

    Formula: the recipient's alleles whose antigen-recognition site (same P
    group, else same 2-field protein) the donor does not carry (GvH, 0-2), and
    the donor's alleles the recipient does not carry (HvG, 0-2); null alleles
    are absent. Typings below allele level are expanded and a count is given
    only when every reading gives the same one.

    Missing data: a locus untyped in either person is unknown (``hla_untyped``);
    an optional locus (DRB3/4/5, DQA1, DPA1) not typed in both persons does not
    apply: empty, without a warning (§A.19 "when both are typed").
    """
    return Unknown(NOT_APPLICABLE) if c == NOT_COMPARED else (c.gvh, c.hvg)


MODELS: tuple[Model, ...] = (
    *_summary("recipient"),
    *_summary("donor"),
    Model("ligand_mismatch", "4", "pair",
          ("gvh_ligand_mismatch", "gvh_mismatched_ligands", "hvg_ligand_mismatch",
           "hvg_mismatched_ligands"),
          (("recipient", "ligand_facts"), ("donor", "ligand_facts")), _ligand_mismatch,
          ("include_a3a11", "ipd_compatible", "hla_a_bw4", "a25_bw4"), _RUGGERI,
          {"gvh_ligand_mismatch": "the donor carries a KIR ligand the recipient lacks",
           "gvh_mismatched_ligands": "those ligands (GvH direction)",
           "hvg_ligand_mismatch": "the recipient carries a ligand the donor lacks",
           "hvg_mismatched_ligands": "those ligands (HvG direction)"},
          doc=(ligand_mismatch,)),
    Model("missing_ligand", "5", "pair", ("missing_ligand_count", "missing_ligands"),
          (("donor", "ikir"), ("recipient", "ligand_facts")), _missing,
          ("hla_a_bw4", "a25_bw4"), _HSU,
          {"missing_ligand_count": "donor iKIR groups whose ligand the recipient lacks (0-3)",
           "missing_ligands": "the recipient's missing ligands"},
          doc=(missing_ligands,)),
    Model("receptor_ligand", "6", "pair", ("receptor_ligand_mismatches",),
          (("donor", "rl_genes"), ("recipient", "ligand_facts")),
          lambda g, r, o: (receptor_ligand_mismatches(g, r.ligands,
                                                    include_a3a11=o.include_a3a11),),
          ("include_a3a11", "hla_a_bw4", "a25_bw4"), _LEUNG,
          {"receptor_ligand_mismatches": "donor inhibitory KIR whose ligand the recipient "
                                         "lacks"},
          doc=(receptor_ligand_mismatches,)),
    Model("gene_gene", "7", "pair", ("gene_gene_mismatches",),
          (("donor", "ikir"), ("recipient", "ikir_typed")),
          lambda d, r, _o: (gene_gene_mismatches(d, r),), (), _SYMONS,
          {"gene_gene_mismatches": "donor inhibitory KIR genes the recipient lacks"},
          doc=(gene_gene_mismatches,)),
    Model("cf_ikir", "8", "pair", ("cf_ikir",),
          (("donor", "cf_genes"), ("recipient", "ligand_facts")),
          lambda g, r, _o: (cf_ikir(g, r.ligands, r.b_c1),),
          ("exclude_null_kir3dl1", "hla_a_bw4", "a25_bw4"), _ZOU,
          {"cf_ikir": "count of functional donor inhibitory KIR with the recipient's ligands "
                      "(0-4)"},
          {"cf_ikir": "KIR3DL1"},
          doc=(cf_ikir, ikir_weights)),
    Model("cf_ikir_donor_ligands", "8", "donor", ("cf_ikir_donor_ligands",),
          (("donor", "cf_genes"), ("donor", "ligand_facts")),
          lambda g, d, _o: (cf_ikir(g, d.ligands, d.b_c1),),
          ("exclude_null_kir3dl1", "hla_a_bw4", "a25_bw4"), _ZOU,
          {"cf_ikir_donor_ligands": "the same count with the donor's own ligands "
                                    "(education)"},
          {"cf_ikir_donor_ligands": "KIR3DL1"},
          doc=(cf_ikir,)),
    Model("ikir_score_weighted", "8", "pair", ("ikir_score_weighted",),
          (("donor", "cf_genes"), ("recipient", "ligand_facts")),
          lambda g, r, _o: (ikir_score_weighted(g, r.ligands, r.b_c1),),
          ("exclude_null_kir3dl1", "hla_a_bw4", "a25_bw4"), _BOELEN,
          {"ikir_score_weighted": "weighted functional iKIR score (0-3.75)"},
          {"ikir_score_weighted": "KIR3DL1"},
          doc=(ikir_score_weighted, ikir_weights)),
    Model("kir_content", "9", "donor",
          ("donor_kir_genotype", "cen_motif", "tel_motif", "b_content_score",
           "b_content_group"),
          (("donor", "content"),), _content, (), _COOLEY,
          {"donor_kir_genotype": "A/A or B/x", "cen_motif": "centromeric motif",
           "tel_motif": "telomeric motif", "b_content_score": "number of B motifs (0-4)",
           "b_content_group": "Best, Better or Neutral"},
          doc=(kir_ab_genotype, cen_motif, tel_motif, b_content)),
    Model("kir2ds1", "10", "donor", ("kir2ds1_status",),
          (("donor", "kir2ds1"), ("donor", "c_group")),
          lambda s, c, _o: (kir2ds1_status(s, c),), (), _VENSTROM,
          {"kir2ds1_status": "donor KIR2DS1 with the donor's HLA-C group"},
          doc=(kir2ds1_status,)),
    Model("kir3dl1_hlab", "11", "pair", ("kir3dl1_hlab",),
          (("donor", "kir3dl1_class"), ("recipient", "b_class")),
          lambda c, b, _o: (kir3dl1_hlab(c, b),), (), _BOUDREAU,
          {"kir3dl1_hlab": "donor KIR3DL1 subtype against the recipient's HLA-B"},
          {"kir3dl1_hlab": "KIR3DL1"},
          doc=(kir3dl1_hlab,)),
    Model("kir2dl1_245", "12", "donor", ("kir2dl1_245",), (("donor", "kir2dl1_245"),),
          lambda x, _o: (x,), (), _BARI,
          {"kir2dl1_245": "donor KIR2DL1 residue 245: R245 (strong) or C245 (weak)"},
          {"kir2dl1_245": "KIR2DL1"}),
    # Rule 16 (after the DSA columns in the output contract, §A.16 32e-32j).
    Model("hla_mm_totals", "16", "pair", ("hla_mm_gvh", "hla_mm_hvg"),
          tuple(("pair", f"cmp_{loc}") for loc in TOTAL_LOCI),
          lambda *a: hla_mismatch_totals(*a[:-1]), ("single_allele",), _FUCHS,
          {"hla_mm_gvh": "recipient alleles the donor lacks, A/B/C/DRB1/DQB1 (0-10)",
           "hla_mm_hvg": "donor alleles the recipient lacks, A/B/C/DRB1/DQB1 (0-10)"},
          evaluator=lambda k, cands: _sum_over_loci(cands, "gvh" if k == 0 else "hvg"),
          doc=(hla_mismatch_totals,)),
    *(Model(f"hla_mm_{loc}", "16", "pair", (f"hla_mm_gvh_{loc}", f"hla_mm_hvg_{loc}"),
            (("pair", f"cmp_{loc}"),), lambda c, _o: _locus_counts(c), ("single_allele",), _FUCHS,
            {f"hla_mm_gvh_{loc}": f"HLA-{loc} recipient alleles the donor lacks (0-2)",
             f"hla_mm_hvg_{loc}": f"HLA-{loc} donor alleles the recipient lacks (0-2)"},
            doc=(_locus_counts,))
      for loc in MATCH_LOCI),
    Model("hla_relation", "16", "pair", ("hla_relation",),
          tuple(("pair", f"cmp_{loc}") for loc in TOTAL_LOCI),
          lambda *a: (hla_relation(*a[:-1]),), ("single_allele",), _FUCHS,
          {"hla_relation": "identical, haploidentical or not haploidentical (A/B/C/DRB1/DQB1)"},
          value_warnings={"hla_relation": {"not haploidentical": "not_haploidentical(donor)"}},
          project=lambda c: LocusComparison(int(c.gvh > 0 or c.hvg > 0), 0, c.shared),
          doc=(hla_relation,)),
    Model("recipient_b_leader", "16", "recipient", ("recipient_b_leader",),
          (("recipient", "b_leader"),), lambda x, _o: (x,), ("single_allele",), _PETERSDORF,
          {"recipient_b_leader": "recipient HLA-B leader, residue -21: M/M, M/T or T/T"},
          doc=(b_leader_genotype,)),
    Model("donor_b_leader", "16", "donor", ("donor_b_leader",),
          (("donor", "b_leader"),), lambda x, _o: (x,), ("single_allele",), _PETERSDORF,
          {"donor_b_leader": "donor HLA-B leader, residue -21: M/M, M/T or T/T"},
          doc=(b_leader_genotype,)),
    Model("b_leader_match", "16", "pair", ("b_leader_match",),
          (("recipient", "b_leader"), ("donor", "b_leader")),
          lambda r, d, _o: (b_leader_match(r, d),), ("single_allele",), _PETERSDORF,
          {"b_leader_match": "the two HLA-B leader genotypes are equal"},
          doc=(b_leader_match,)),
    Model("drb1_mm_dqb1_match", "16", "pair", ("drb1_mm_dqb1_match",),
          (("pair", "cmp_DRB1"), ("pair", "cmp_DQB1")),
          lambda a, b, _o: (drb1_mm_dqb1_match(a, b),), ("single_allele",), _FUCHS,
          {"drb1_mm_dqb1_match": "DRB1 mismatched and DQB1 matched"},
          doc=(drb1_mm_dqb1_match,)),
    Model("dpb1_tce", "16", "pair", ("dpb1_tce",),
          (("pair", "cmp_DPB1"), ("recipient", "dpb1_tce"), ("donor", "dpb1_tce")),
          lambda c, r, d, _o: _tuple(dpb1_tce(c, r, d)), ("single_allele",), _CRIVELLO,
          {"dpb1_tce": "DPB1 TCE: match, permissive, non-permissive GvH or HvG"},
          doc=(dpb1_tce,)),
    # Rule 17: the output contract (§A.16) does not place these columns; they
    # follow the other model columns, before the DSA columns.
    Model("krieger", "17", "pair", ("kir_l_score", "imkir_score", "wkir_score"),
          (("donor", "krieger_genes"), ("recipient", "krieger_ligands")),
          lambda g, r, o: krieger_scores(g, r, o.wkir_weights), ("wkir_weights",), _KRIEGER,
          {"kir_l_score": "KIR-L: -iKIR + mKIR + aKIR (donor KIR with and without their "
                          "ligand in the recipient, activating KIR with it)",
           "imkir_score": "imKIR: iKIR + mKIR (donor inhibitory KIR counted)",
           "wkir_score": "wKIR: 0.80 iKIR + 0.14 aKIR + 0.99 mKIR (weights: wkir_weights)"},
          {"kir_l_score": "KIR2DS4", "wkir_score": "KIR2DS4"},
          doc=(krieger_counts, krieger_scores)),
)


def _sum_over_loci(cands: tuple[Cand[Any], ...], attr: str) -> tuple[Any, str | None]:
    """Propagation of a sum over loci (:func:`hla_mismatch_totals`): the set of
    possible sums is built locus by locus, so no combination is enumerated; the
    reason is that of the first untyped locus, else of the first that varies."""
    sums = {0}
    for c in cands:
        if None in c.values:
            return None, c.reason
        sums = {s + getattr(v, attr) for s in sums for v in c.values}
    if len(sums) == 1:
        return sums.pop(), None
    for c in sorted(cands, key=lambda c: not c.missing):     # an untyped locus first
        if len({getattr(v, attr) for v in c.values}) > 1:
            return None, c.reason
    return None, None  # pragma: no cover - a varying sum has a varying locus


def _tuple(value: Any) -> Any:
    """A model value as a 1-tuple (an :class:`Unknown` stays as it is)."""
    return value if isinstance(value, Unknown) else (value,)


#: The reason of a column that does not apply (an optional rule-16 locus not
#: typed in both persons): the cell is empty and no warning is added.
NOT_APPLICABLE = "not_applicable"

#: The DSA columns (rule 13), computed from the antibody screen, not from facts.
DSA_COLUMNS = _DSA_COLUMNS
DSA_MODEL = Model("dsa", "13", "pair", DSA_COLUMNS, (), lambda: (), (
    "dsa_low_mfi", "dsa_moderate_mfi", "dsa_high_mfi", "dsa_very_high_mfi", "dsa_count_self",
    "single_allele"),
    _DSA,
    {"dsa_max_mfi": "highest MFI among definite donor-specific antibodies",
     "dsa_tier": "DSA risk tier (unknown if a possible DSA could raise it)",
     "dsa_tier_worst": "DSA tier counting possible DSA too (ranking uses it)",
     "dsa_total_mfi": "sum of MFI over definite DSA (cumulative)",
     "dsa_hits": "definite DSA: specificity, MFI, C1q+",
     "dsa_possible": "possible DSA and the typing that leaves each open"},
      doc=(_dsa_module, antibody_tier))


def _before_dsa(m: Model) -> bool:
    """The KIR models (rules 3-12 and Krieger's rule 17) come before the DSA
    columns, the HLA-level models of rule 16 after them (§A.16 32e-32j)."""
    return int(m.rule) < 13 or m.rule == "17"


#: Every computed column, in output-contract order (DOMAIN.md §A.16): the KIR
#: models (rules 3-12, then 17, which §A.16 does not place), the DSA columns
#: (rule 13), then rule 16.
COLUMNS: tuple[str, ...] = (*(c for m in MODELS if _before_dsa(m) for c in m.columns),
                            *DSA_COLUMNS,
                            *(c for m in MODELS if not _before_dsa(m) for c in m.columns))

_BY_COLUMN = {c: m for m in (*MODELS, DSA_MODEL) for c in m.columns}


def model_of(column: str) -> Model:
    """The model that fills ``column``."""
    return _BY_COLUMN[column]


# ---------------------------------------------------------------------------
# The per-person table (rule 18)
# ---------------------------------------------------------------------------

_PERSONS = "kirmatch rules v2, DOMAIN.md §A.21 (rule 18)"


def _person(column: str, fact: str, rule: str, citation: str, meaning: str,
            options: tuple[str, ...] = (), doc: tuple[Any, ...] = ()) -> Model:
    """A person column that is one person fact as it is."""
    return Model(f"person_{column}", rule, "person", (column,), (("person", fact),),
                 lambda v, _o: (v,), options, citation, {column: meaning}, doc=doc)


def _functional(g: Any, f: Any, _o: Options) -> tuple[Any, ...]:
    """Each iKIR gene's rule-8 weight with the person's own ligands, their count
    and their sum (the person paired with itself)."""
    # cf_ikir counts the non-zero weights and ikir_score_weighted sums them
    weights = tuple(ikir_weights(g, f.ligands, f.b_c1).values())
    return (*weights, sum(1 for w in weights if w > 0), round(sum(weights), 2))


#: The person-scope models of ``kirmatch persons`` (DOMAIN.md §A.21): one row
#: per person, the person-level facts the pair models use. Scope ``person``:
#: every input is ``("person", fact)``.
PERSON_MODELS: tuple[Model, ...] = (
    _person("c_group", "c_group", "3", _RULES,
            "HLA-C KIR-ligand groups (C1/C2; - = null or unclassified)", doc=(c_group,)),
    _person("b_class", "b_class", "3", _RULES, "HLA-B class: Bw4-80I, Bw4-80T or Bw6",
            doc=(b_class,)),
    Model("person_ligands", "3", "person", ("ligands",), (("person", "ligand_facts"),),
          lambda f, _o: (f.ligands,), ("hla_a_bw4", "a25_bw4"), _RULES,
          {"ligands": "KIR ligands (A3/A11, Bw4, C1, C2)"},
          doc=(ligand_set,)),
    _person("b_c1", "b_c1", "1", _RULES,
            "an expressed HLA-B allele has the C1 epitope (Val76, Asn80; B*46, B*73)",
            doc=(has_b_c1,)),
    Model("person_a3a11", "3", "person", ("a3a11",), (("person", "a_groups"),),
          lambda a, _o: (a[0],), (), _RULES,
          {"a3a11": "an expressed HLA-A*03 or *11 allele (the KIR3DL2 ligand)"}),
    _person("hla_a_bw4", "a_bw4", "3", _RULES,
            "an HLA-A*23/*24/*32 allele (*25 with a25_bw4) has Bw4, whether or not the "
            "hla_a_bw4 option counts it in ligands", ("a25_bw4",)),
    Model("person_kir_content", "9", "person",
          ("kir_genotype", "cen_motif", "tel_motif", "b_content_score", "b_content_group"),
          (("person", "content"),), _content, (), _COOLEY,
          {"kir_genotype": "A/A or B/x", "cen_motif": "centromeric motif",
           "tel_motif": "telomeric motif", "b_content_score": "number of B motifs (0-4)",
           "b_content_group": "Best, Better or Neutral"},
          doc=(kir_ab_genotype, cen_motif, tel_motif, b_content)),
    _person("kir3dl1_classes", "kir3dl1_classes", "11", _BOUDREAU,
            "classes (H, L, N) of the KIR3DL1 and KIR3DS1 alleles carried (KIR3DS1 is N)"),
    _person("kir2dl1_245", "kir2dl1_245", "12", _BARI,
            "KIR2DL1 residue 245: R245 (strong), C245 (weak) or absent"),
    _person("b_leader", "b_leader", "16", _PETERSDORF,
            "HLA-B leader genotype, residue -21: M/M, M/T or T/T", ("single_allele",),
            doc=(b_leader_genotype,)),
    Model("person_functional_ikir", "8", "person",
          ("func_kir2dl1", "func_kir2dl2", "func_kir2dl3", "func_kir3dl1", "func_ikir_count",
           "func_ikir_score"),
          (("person", "cf_genes"), ("person", "ligand_facts")), _functional,
          ("exclude_null_kir3dl1", "hla_a_bw4", "a25_bw4"), _ZOU,
          {"func_kir2dl1": "KIR2DL1 carried with C2 in the same person: 1 (else 0)",
           "func_kir2dl2": "KIR2DL2 with C1 or B-C1: 1; with C2 only: 0.5 (else 0)",
           "func_kir2dl3": "KIR2DL3 with C1 or B-C1: 0.75 (else 0)",
           "func_kir3dl1": "KIR3DL1 with Bw4: 1 (else 0)",
           "func_ikir_count": "functional iKIR with the person's own ligands (0-4; "
                              "cf_ikir_donor_ligands of the person paired with itself)",
           "func_ikir_score": "sum of the four weights (0-3.75; the weighted score of the "
                              "person paired with itself)"},
          doc=(ikir_weights,)),
    Model("person_ikir_count", "18", "person", ("ikir_count",), (("person", "ikir"),),
          lambda g, _o: (len(g),), (), _PERSONS,
          {"ikir_count": "inhibitory KIR genes carried among KIR2DL1, 2DL2, 2DL3, 3DL1 (0-4)"}),
)

#: The columns of the per-person table, in DOMAIN.md §A.21 order.
PERSON_COLUMNS: tuple[str, ...] = ("sample_id", "status", "error", "warnings",
                                   *(c for m in PERSON_MODELS for c in m.columns))

_PERSON_BY_COLUMN = {c: m for m in PERSON_MODELS for c in m.columns}


def person_model_of(column: str) -> Model:
    """The person-scope model that fills ``column`` of the per-person table."""
    return _PERSON_BY_COLUMN[column]


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------

def evaluate_model(model: Model, cands: tuple[Cand[Any], ...], options: Options
                   ) -> list[tuple[Any, str | None]]:
    """Every column of ``model`` over every combination of the input candidates
    (propagation, §A.0), the model's function called once per combination:
    ``(value, None)`` or ``(None, reason)`` per column, in column order."""
    from kirmatch.propagation import evaluate_all

    if model.evaluator is not None:
        return [model.evaluator(k, cands) for k in range(len(model.columns))]
    if model.project is not None:
        cands = tuple(c.map(model.project) for c in cands)
    return evaluate_all(lambda *values: model.fn(*values, options), len(model.columns), *cands)


class ModelEvaluator:
    """:func:`evaluate_model` of one model and options over many input
    combinations at once (:class:`~kirmatch.propagation.Tabulated`: the model's
    function is called once per distinct combination of input values, kept for
    later calls); a model with its own ``evaluator`` is evaluated combination
    by combination."""

    __slots__ = ("_mapped", "_table", "model", "options")

    def __init__(self, model: Model, options: Options) -> None:
        self.model, self.options = model, options
        self._table = None if model.evaluator is not None else Tabulated(
            lambda *values: model.fn(*values, options), len(model.columns))
        self._mapped: dict[Cand[Any], Cand[Any]] = {}

    def evaluate_many(self, combos: list[tuple[Cand[Any], ...]]
                      ) -> list[list[tuple[Any, str | None]]]:
        """``[evaluate_model(model, c, options) for c in combos]``."""
        m = self.model
        if self._table is None:         # the model's own evaluator
            return [evaluate_model(m, c, self.options) for c in combos]
        if m.project is not None:
            project, mapped = m.project, self._mapped
            combos = [tuple(mapped.get(c) or mapped.setdefault(c, c.map(project)) for c in cands)
                      for cands in combos]
        return self._table.evaluate_many(combos)


def encode(column: str, value: Any) -> Any:
    """A column value as JSON encodes it: sets ``;``-joined, weighted score with two
    decimals, MFI as an integer, unknown ``""``; booleans and integers unchanged."""
    if value is None:
        return ""
    if isinstance(value, (frozenset, set)):
        return format_set(value)
    if column in FLOAT_COLUMNS:
        return f"{value:.2f}"
    if column in ("dsa_max_mfi", "dsa_total_mfi"):
        return round(value)
    return value


def cell(column: str, value: Any) -> str:
    """A column value as a CSV cell (``true``/``false`` for booleans)."""
    v = encode(column, value)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


#: Column value kinds, for reading cells back (:func:`decode`).
BOOL_COLUMNS = frozenset({"gvh_ligand_mismatch", "hvg_ligand_mismatch", "drb1_mm_dqb1_match",
                          "b_leader_match", "b_c1", "a3a11", "hla_a_bw4"})
INT_COLUMNS = frozenset({"missing_ligand_count", "cf_ikir", "cf_ikir_donor_ligands",
                         "b_content_score", "dsa_max_mfi", "dsa_total_mfi", "kir_l_score",
                         "imkir_score", "func_ikir_count", "ikir_count", "hla_mm_gvh",
                         "hla_mm_hvg",
                         *(f"hla_mm_{d}_{loc}" for d in ("gvh", "hvg") for loc in MATCH_LOCI)})
#: Decimals, written with two decimals.
FLOAT_COLUMNS = frozenset({"ikir_score_weighted", "wkir_score", "func_kir2dl1",
                           "func_kir2dl2", "func_kir2dl3", "func_kir3dl1", "func_ikir_score"})


def decode(column: str, text: str) -> Any:
    """A CSV cell back to the value :func:`encode` would encode the same way
    (``""`` → ``None``; booleans and numbers typed; lists stay ``;``-joined text).

    >>> decode("cf_ikir", "3"), decode("gvh_ligand_mismatch", "false"), decode("cf_ikir", "")
    (3, False, None)
    """
    if text == "" or text is None:
        return None
    if column in BOOL_COLUMNS:
        return text == "true"
    if column in INT_COLUMNS:
        return int(text)
    if column in FLOAT_COLUMNS:
        return float(text)
    return text


def unknown_warnings(column: str, reason: str, model: Model | None = None
                     ) -> tuple[str, ...]:
    """The warnings an unknown column adds (DOMAIN.md §A.17); ``model`` is the
    column's model (default: the pair model of that name). A column that does
    not apply (:data:`NOT_APPLICABLE`) adds none."""
    if reason == NOT_APPLICABLE:
        return ()
    out = [f"unknown({column}: {reason})"]
    gene = (model or model_of(column)).allele_gene.get(column)
    if reason == "gene_level_kir" and gene:
        out.append(f"gene_level_kir(donor {gene})")
    return tuple(out)
