"""One small function per published model (DOMAIN.md rules 4-12, 16 and 17).

Each function takes *resolved* inputs (sets of ligands, sets of present KIR
genes, a KIR3DL1 class …) and returns the model's value. Unresolved inputs are
handled one level up, by propagation (:mod:`kirmatch.propagation`): a function
here is evaluated over every candidate and its value reported only when all
candidates agree. "Missing data" paragraphs say which inputs each model needs;
a model that does not need a missing part still runs.

Ligand sets are subsets of ``{"A3/A11", "Bw4", "C1", "C2"}``; gene sets hold
canonical names (``KIR2DL1`` …).
"""

from __future__ import annotations

from typing import Any

from kirmatch.propagation import Unknown

__all__ = [
    "IKIR",
    "KRIEGER_ACTIVATING",
    "KRIEGER_INHIBITORY",
    "MISSING_LIGAND_GROUPS",
    "WKIR_WEIGHTS",
    "b_content",
    "b_leader_match",
    "cen_motif",
    "cf_ikir",
    "dpb1_tce",
    "drb1_mm_dqb1_match",
    "gene_gene_mismatches",
    "hla_mismatch_totals",
    "hla_relation",
    "ikir_score_weighted",
    "ikir_weights",
    "kir2ds1_status",
    "kir3dl1_hlab",
    "kir_ab_genotype",
    "krieger_counts",
    "krieger_scores",
    "ligand_mismatch",
    "missing_ligands",
    "receptor_ligand_mismatches",
    "tel_motif",
]

#: The inhibitory KIR of the v1 models (KIR3DL2 only where an option says so).
IKIR = ("KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR3DL1")
#: Hsu 2005 groups: (genes of the group, ligand it needs in the recipient).
MISSING_LIGAND_GROUPS = (
    (("KIR2DL1",), "C2"),
    (("KIR2DL2", "KIR2DL3"), "C1"),
    (("KIR3DL1",), "Bw4"),
)
#: Leung 2004 receptor-ligand pairs.
RECEPTOR_LIGAND = {"KIR2DL1": "C2", "KIR2DL2": "C1", "KIR2DL3": "C1", "KIR3DL1": "Bw4"}
B_HAPLOTYPE_GENES = ("KIR2DL2", "KIR2DL5", "KIR2DS1", "KIR2DS2", "KIR2DS3", "KIR2DS5",
                     "KIR3DS1")
_MODEL_M = frozenset({"C1", "C2", "Bw4"})


def ligand_mismatch(donor: frozenset[str], recipient: frozenset[str], *,
                    include_a3a11: bool = False) -> tuple[frozenset[str], frozenset[str]]:
    """KIR-ligand (ligand-ligand) mismatch, rule 4.

    Ruggeri L et al., Science 2002;295:2097-2100, doi:10.1126/science.1068440.

    Formula: with M = {C1, C2, Bw4} (plus A3/A11 under ``include_a3a11``), the
    GvH set is (D ∩ M) − R and the HvG set is (R ∩ M) − D. A mismatch is a
    non-empty set. Donor KIR is not used. For the IPD-KIR calculator variant
    (``ipd_compatible``) pass ligand sets built from HLA-B and HLA-C only.

    Missing data: needs HLA-A, -B and -C of both persons; no KIR typing.

    >>> gvh, hvg = ligand_mismatch(frozenset({"A3/A11", "Bw4", "C1", "C2"}), frozenset({"C1"}))
    >>> sorted(gvh), sorted(hvg)
    (['Bw4', 'C2'], [])
    >>> sorted(ligand_mismatch(frozenset({"A3/A11"}), frozenset(), include_a3a11=True)[0])
    ['A3/A11']
    """
    m = _MODEL_M | ({"A3/A11"} if include_a3a11 else set())
    return frozenset((donor & m) - recipient), frozenset((recipient & m) - donor)


def missing_ligands(donor_genes: frozenset[str], recipient: frozenset[str]) -> frozenset[str]:
    """Missing-ligand model, rule 5.

    Hsu KC et al., Blood 2005;105:4878-4884, doi:10.1182/blood-2004-12-4825.

    Formula: for each donor iKIR group - KIR2DL1 (needs C2), KIR2DL2 or KIR2DL3
    (one group, needs C1 from HLA-C; B-C1 does not count), KIR3DL1 (needs Bw4)
    - that the donor carries, the group's ligand is *missing* when it is absent
    from the recipient's rule-3 ligand set. ``missing_ligand_count`` is the
    size of the returned set (0-3). The donor's own HLA is not used.

    Missing data: needs recipient HLA-A, -B, -C and donor KIR2DL1, 2DL2, 2DL3,
    3DL1 gene content.

    >>> sorted(missing_ligands(frozenset({"KIR2DL1", "KIR2DL2", "KIR3DL1"}), frozenset({"C1"})))
    ['Bw4', 'C2']
    """
    out = set()
    for genes, ligand in MISSING_LIGAND_GROUPS:
        if any(g in donor_genes for g in genes) and ligand not in recipient:
            out.add(ligand)
    return frozenset(out)


def receptor_ligand_mismatches(donor_genes: frozenset[str], recipient: frozenset[str], *,
                               include_a3a11: bool = False) -> frozenset[str]:
    """Receptor-ligand mismatch, rule 6.

    Leung W et al., J Immunol 2004;172:644-650, doi:10.4049/jimmunol.172.1.644.

    Formula: a donor gene k among KIR2DL1→C2, KIR2DL2→C1, KIR2DL3→C1,
    KIR3DL1→Bw4 (and KIR3DL2→A3/A11 under ``include_a3a11``) is mismatched when
    k is present in the donor and its ligand is absent from the recipient's
    ligand set. KIR2DL2 and KIR2DL3 are listed separately.

    Missing data: recipient HLA-A, -B, -C; donor iKIR gene content (+KIR3DL2).

    >>> sorted(receptor_ligand_mismatches(frozenset({"KIR2DL1", "KIR3DL2"}), frozenset({"C1"}),
    ...        include_a3a11=True))
    ['KIR2DL1', 'KIR3DL2']
    """
    pairs = dict(RECEPTOR_LIGAND)
    if include_a3a11:
        pairs["KIR3DL2"] = "A3/A11"
    return frozenset(k for k, lig in pairs.items() if k in donor_genes and lig not in recipient)


def gene_gene_mismatches(donor_genes: frozenset[str],
                         recipient_genes: frozenset[str]) -> frozenset[str]:
    """Gene-gene (KIR genotype) mismatch, rule 7, GvH direction.

    Symons HJ et al., Biol Blood Marrow Transplant 2010;16:533-542,
    doi:10.1016/j.bbmt.2009.11.022.

    Formula: the donor genes among KIR2DL1, KIR2DL2, KIR2DL3 and KIR3DL1 that
    are absent from the recipient's KIR genotype.

    Missing data: needs both persons' KIR typing; without recipient KIR the
    value is unknown (reason ``no_recipient_kir``).

    >>> sorted(gene_gene_mismatches(frozenset({"KIR2DL1", "KIR2DL2"}), frozenset({"KIR2DL1"})))
    ['KIR2DL2']
    """
    return frozenset(g for g in IKIR if g in donor_genes and g not in recipient_genes)


def _functional_ligands(ligands: frozenset[str], b_c1: bool) -> frozenset[str]:
    return ligands | ({"B-C1"} if b_c1 else frozenset())


def ikir_weights(donor_ikir: frozenset[str], ligands: frozenset[str],
                 b_c1: bool) -> dict[str, float]:
    """Each iKIR gene's rule-8 weight: how strongly it is functional with ``ligands``.

    Boelen L et al., Sci Immunol 2018;3:eaao2892, doi:10.1126/sciimmunol.aao2892
    (the weights); DOMAIN.md §A.9.

    Formula: with L = the ligand set plus ``B-C1`` when the flag is set,
    KIR2DL1 weighs 1.0 with C2; KIR2DL2 1.0 with C1 or B-C1, else 0.5 with C2;
    KIR2DL3 0.75 with C1 or B-C1; KIR3DL1 1.0 with Bw4. A gene that is not
    carried, or whose ligand is not in L, weighs 0.0. A gene is *functional*
    when its weight is above 0: :func:`cf_ikir` counts those, and
    :func:`ikir_score_weighted` sums the weights.

    Missing data: as :func:`cf_ikir`.

    >>> ikir_weights(frozenset({"KIR2DL2", "KIR2DL3", "KIR3DL1"}), frozenset({"C2"}), False)
    {'KIR2DL1': 0.0, 'KIR2DL2': 0.5, 'KIR2DL3': 0.0, 'KIR3DL1': 0.0}
    """
    lig = _functional_ligands(ligands, b_c1)
    c1 = bool(lig & {"C1", "B-C1"})
    return {
        "KIR2DL1": 1.0 if "KIR2DL1" in donor_ikir and "C2" in lig else 0.0,
        "KIR2DL2": (1.0 if c1 else 0.5 if "C2" in lig else 0.0)
        if "KIR2DL2" in donor_ikir else 0.0,
        "KIR2DL3": 0.75 if "KIR2DL3" in donor_ikir and c1 else 0.0,
        "KIR3DL1": 1.0 if "KIR3DL1" in donor_ikir and "Bw4" in lig else 0.0,
    }


def cf_ikir(donor_ikir: frozenset[str], ligands: frozenset[str], b_c1: bool) -> int:
    """Count of functional inhibitory KIR (CF-iKIR), rule 8.

    Zou J et al., Front Immunol 2022;13:1033871, doi:10.3389/fimmu.2022.1033871;
    Ciurea SO et al., Am J Hematol 2024;99:890-899, doi:10.1002/ajh.27281;
    definition after Boelen L et al., Sci Immunol 2018;3:eaao2892,
    doi:10.1126/sciimmunol.aao2892.

    Formula: with L = the ligand set plus ``B-C1`` when the flag is set, count
    the donor iKIR that are functional: KIR2DL1 with C2; KIR2DL2 with C1, B-C1
    or C2; KIR2DL3 with C1 or B-C1; KIR3DL1 with Bw4 (the genes of non-zero
    weight in :func:`ikir_weights`). KIR2DL2 and KIR2DL3 count separately
    (0-4). ``cf_ikir`` uses the recipient's L; ``cf_ikir_donor_ligands`` the
    donor's own L (education/licensing reading). Under
    ``exclude_null_kir3dl1`` pass KIR3DL1 in ``donor_ikir`` only if a donor
    allele is class H or L.

    Missing data: the ligand person's HLA-A, -B, -C and donor iKIR gene content.

    >>> cf_ikir(frozenset({"KIR2DL1", "KIR2DL3", "KIR3DL1"}), frozenset({"Bw4", "C1", "C2"}), False)
    3
    >>> cf_ikir(frozenset({"KIR2DL2", "KIR2DL3"}), frozenset({"C2"}), True)
    2
    """
    return sum(1 for w in ikir_weights(donor_ikir, ligands, b_c1).values() if w > 0)


def ikir_score_weighted(donor_ikir: frozenset[str], ligands: frozenset[str], b_c1: bool) -> float:
    """Weighted iKIR score (Boelen 2018 weights), rule 8.

    Boelen L et al., Sci Immunol 2018;3:eaao2892, doi:10.1126/sciimmunol.aao2892.

    Formula: the sum of :func:`ikir_weights`: KIR2DL1 with C2 scores 1.0;
    KIR2DL2 scores 1.0 with C1 or B-C1 and 0.5 with C2 only; KIR2DL3 scores
    0.75 with C1 or B-C1; KIR3DL1 scores 1.0 with Bw4. Range 0-3.75, computed
    with the recipient's ligands.

    Missing data: as :func:`cf_ikir`.

    >>> ikir_score_weighted(frozenset({"KIR2DL1", "KIR2DL2", "KIR2DL3"}), frozenset({"C2"}), True)
    2.75
    """
    return round(sum(ikir_weights(donor_ikir, ligands, b_c1).values()), 2)


def kir_ab_genotype(genes: frozenset[str]) -> str:
    """KIR A/A vs B/x, rule 9.

    Cooley S et al., Blood 2009;113:726-732, doi:10.1182/blood-2008-07-171926.

    Formula: ``B/x`` if any of KIR2DL2, 2DL5, 2DS1, 2DS2, 2DS3, 2DS5 or 3DS1 is
    present, otherwise ``A/A``.

    Missing data: needs those seven genes; an unknown one leaves the value
    unknown unless another B gene is present.

    >>> kir_ab_genotype(frozenset({"KIR2DL1", "KIR2DL3"})), kir_ab_genotype(frozenset({"KIR3DS1"}))
    ('A/A', 'B/x')
    """
    return "B/x" if any(g in genes for g in B_HAPLOTYPE_GENES) else "A/A"


def cen_motif(genes: frozenset[str]) -> str | Unknown:
    """Centromeric motif, rule 9 (DKMS CTUtools rules).

    Cooley S et al., Blood 2010;116:2411-2419, doi:10.1182/blood-2010-05-283051.

    Formula: KIR2DL3 present with neither KIR2DL2 nor KIR2DS2 → ``A/A``; with
    either → ``A/B``; KIR2DL3 absent with either → ``B/B``; all three absent →
    unknown (``cen_unclassifiable``).

    >>> cen_motif(frozenset({"KIR2DS2"}))
    'B/B'
    >>> cen_motif(frozenset())
    Unknown(reason='cen_unclassifiable')
    """
    l3 = "KIR2DL3" in genes
    b = "KIR2DL2" in genes or "KIR2DS2" in genes
    if l3:
        return "A/B" if b else "A/A"
    return "B/B" if b else Unknown("cen_unclassifiable")


def tel_motif(genes: frozenset[str]) -> str:
    """Telomeric motif, rule 9 (DKMS CTUtools rules).

    Cooley S et al., Blood 2010;116:2411-2419, doi:10.1182/blood-2010-05-283051.

    Formula: KIR3DL1 and KIR2DS4 both present with neither KIR3DS1 nor KIR2DS1
    → ``A/A``; both present with either → ``A/B``; either absent → ``B/B``.

    >>> tel_motif(frozenset({"KIR3DL1", "KIR2DS4", "KIR2DS1"})), tel_motif(frozenset({"KIR3DL1"}))
    ('A/B', 'B/B')
    """
    if "KIR3DL1" in genes and "KIR2DS4" in genes:
        return "A/B" if ("KIR3DS1" in genes or "KIR2DS1" in genes) else "A/A"
    return "B/B"


_MOTIF_SCORE = {"A/A": 0, "A/B": 1, "B/B": 2}


def b_content(genes: frozenset[str]) -> tuple[int, str] | Unknown:
    """B-content score and group, rule 9.

    Cooley S et al., Blood 2010;116:2411-2419, doi:10.1182/blood-2010-05-283051;
    group labels after the IPD-KIR B-content calculator.

    Formula: score = Cen + Tel with A/A = 0, A/B = 1, B/B = 2 (0-4); group
    ``Best`` if Cen is B/B, else ``Better`` if the score is ≥ 2, else ``Neutral``.

    Missing data: unknown when the Cen motif is unclassifiable.

    >>> b_content(frozenset({"KIR2DL2", "KIR3DL1", "KIR2DS4", "KIR3DS1"}))
    (3, 'Best')
    """
    cen = cen_motif(genes)
    if isinstance(cen, Unknown):
        return cen
    score = _MOTIF_SCORE[cen] + _MOTIF_SCORE[tel_motif(genes)]
    group = "Best" if cen == "B/B" else ("Better" if score >= 2 else "Neutral")
    return score, group


def kir2ds1_status(has_2ds1: bool, donor_c_group: str) -> str | Unknown:
    """Donor KIR2DS1 with the donor's HLA-C group, rule 10.

    Venstrom JM et al., N Engl J Med 2012;367:805-816, doi:10.1056/NEJMoa1200503.

    Formula: ``2DS1-`` without KIR2DS1; with KIR2DS1, ``2DS1+/C1+`` when the
    donor carries C1 (C1/C1, C1/C2, C1/-), ``2DS1+/C2C2`` when it carries C2 but
    no C1 (C2/C2, C2/-); unknown when the donor group is ``-/-``. Whether C1
    means the donor's or the recipient's group is not confirmed in the primary
    paper; v1 uses the donor's.

    Missing data: needs donor HLA-C (unless KIR2DS1 is absent) and KIR2DS1.

    >>> kir2ds1_status(True, "C1/C2"), kir2ds1_status(True, "C2/-"), kir2ds1_status(False, "-/-")
    ('2DS1+/C1+', '2DS1+/C2C2', '2DS1-')
    """
    if not has_2ds1:
        return "2DS1-"
    if "C1" in donor_c_group:
        return "2DS1+/C1+"
    if "C2" in donor_c_group:
        return "2DS1+/C2C2"
    return Unknown("unclassified_allele")


_HLAB_TABLE = {
    ("H", "Bw4-80I"): "strong inhibiting", ("H", "Bw4-80T"): "weak inhibiting",
    ("L", "Bw4-80I"): "weak inhibiting", ("L", "Bw4-80T"): "strong inhibiting",
}


def kir3dl1_hlab(donor_class: str, recipient_b_class: str) -> str:
    """KIR3DL1 subtype × recipient HLA-B, rule 11.

    Boudreau JE et al., J Clin Oncol 2017;35:2268-2278, doi:10.1200/JCO.2016.70.7059.

    Formula: donor class (H, L or N; precedence L > H > N over its alleles,
    KIR3DS1 and null alleles N) against the recipient's HLA-B class:
    H+80I and L+80T strong inhibiting; H+80T and L+80I weak inhibiting; any
    class with Bw6, and N with anything, non-inhibiting.

    Missing data: needs donor KIR3DL1/KIR3DS1 alleles and recipient HLA-B; with a
    Bw6 recipient every class gives the same answer, so gene-level typing still
    yields a value by propagation.

    >>> kir3dl1_hlab("H", "Bw4-80T"), kir3dl1_hlab("L", "Bw6"), kir3dl1_hlab("N", "Bw4-80I")
    ('weak inhibiting', 'non-inhibiting', 'non-inhibiting')
    """
    return _HLAB_TABLE.get((donor_class, recipient_b_class), "non-inhibiting")


# ---------------------------------------------------------------------------
# Rule 16: HLA-level assessment of a related donor (DOMAIN.md §A.19)
# ---------------------------------------------------------------------------

def hla_mismatch_totals(*loci: Any) -> tuple[int, int]:
    """Total GvH and HvG mismatches over HLA-A, -B, -C, -DRB1 and -DQB1, rule 16.

    Fuchs EJ, McCurdy SR et al., Blood 2022;139:1452-1468,
    doi:10.1182/blood.2021013443.

    Formula: the sum over the five loci of the recipient alleles the donor
    lacks (GvH) and of the donor alleles the recipient lacks (HvG), alleles
    compared at antigen-recognition-site identity (P group, else 2-field
    protein); each locus contributes 0-2 per direction.

    Missing data: a locus untyped in either person makes both totals unknown
    (``hla_untyped``); ambiguous typings give a value only when every reading
    gives the same total.

    >>> from kirmatch.hlamatch import LocusComparison as L
    >>> hla_mismatch_totals(L(1, 0, True), L(0, 0, True), L(1, 1, True), L(0, 2, True),
    ...                     L(0, 0, True))
    (2, 3)
    """
    return sum(c.gvh for c in loci), sum(c.hvg for c in loci)


def hla_relation(*loci: Any) -> str:
    """Relationship check over HLA-A, -B, -C, -DRB1 and -DQB1, rule 16.

    Fuchs EJ, McCurdy SR et al., Blood 2022;139:1452-1468 (haploidentical
    donors share one haplotype).

    Formula: ``identical`` with no mismatch in either direction;
    ``haploidentical`` when every locus shares at least one allele; else
    ``not haploidentical`` (warned ``not_haploidentical``: a data error or a
    recombination the team must see).

    Missing data: a locus untyped in either person could hold anything, so the
    value is unknown unless another typed locus already shares nothing (then
    ``not haploidentical`` whatever the untyped locus holds, §A.0).

    >>> from kirmatch.hlamatch import LocusComparison as L
    >>> hla_relation(*[L(0, 0, True)] * 5), hla_relation(L(1, 1, True), *[L(0, 0, True)] * 4)
    ('identical', 'haploidentical')
    >>> hla_relation(L(2, 2, False), *[L(1, 1, True)] * 4)
    'not haploidentical'
    """
    if all(c.gvh == 0 and c.hvg == 0 for c in loci):
        return "identical"
    if all(c.shared for c in loci):
        return "haploidentical"
    return "not haploidentical"


def b_leader_match(recipient: str, donor: str) -> bool:
    """HLA-B leader match, rule 16.

    Petersdorf EW et al., Lancet Haematol 2020;7:e50-e60; Fuchs EJ, McCurdy SR et
    al., Blood 2022;139:1452-1468 (better disease-free survival with a leader-
    matched haploidentical donor).

    Formula: true when the recipient's and the donor's HLA-B leader genotypes
    (residue -21: ``M/M``, ``M/T`` or ``T/T``) are equal.

    Missing data: needs HLA-B of both persons; an allele whose leader is
    unknown makes it unknown unless every reading gives the same answer.

    >>> b_leader_match("M/T", "M/T"), b_leader_match("M/T", "M/M")
    (True, False)
    """
    return recipient == donor


def drb1_mm_dqb1_match(drb1: Any, dqb1: Any) -> bool:
    """HLA-DRB1 mismatch with HLA-DQB1 match, rule 16.

    Fuchs EJ, McCurdy SR et al., Blood 2022;139:1452-1468 (better
    disease-free survival with a DRB1 mismatch and a DQB1 match).

    Formula: true when DRB1 has a mismatch in either direction and DQB1 none
    in either direction.

    Missing data: needs DRB1 and DQB1 of both persons.

    >>> from kirmatch.hlamatch import LocusComparison as L
    >>> drb1_mm_dqb1_match(L(1, 1, True), L(0, 0, True)), drb1_mm_dqb1_match(
    ...     L(0, 0, True), L(0, 0, True))
    (True, False)
    """
    return (drb1.gvh > 0 or drb1.hvg > 0) and dqb1.gvh == 0 and dqb1.hvg == 0


def dpb1_tce(dpb1: Any, recipient_group: int | str, donor_group: int | str) -> str | Unknown:
    """HLA-DPB1 T-cell-epitope (TCE) permissiveness and direction, rule 16.

    Crivello P et al., Biol Blood Marrow Transplant 2015;21:233-241 (V2 groups);
    Fuchs 2022; Blood Adv 2020;4:3474 (GvH-direction non-permissive mismatch).

    Formula: ``match`` when DPB1 has no mismatch in either direction; else the
    lowest TCE group of each person (1 most immunogenic): equal
    ``permissive``; the recipient's lower ``non-permissive GvH``; the donor's
    lower ``non-permissive HvG``.

    Missing data: needs DPB1 of both persons; an allele without a TCE
    assignment makes a mismatched pair unknown (``unclassified_allele``).

    >>> from kirmatch.hlamatch import LocusComparison as L
    >>> dpb1_tce(L(0, 1, True), 3, 1), dpb1_tce(L(1, 0, True), 1, 3), dpb1_tce(L(1, 1, True), 3, 3)
    ('non-permissive HvG', 'non-permissive GvH', 'permissive')
    >>> dpb1_tce(L(0, 0, True), "unassigned", 3)
    'match'
    """
    if dpb1.gvh == 0 and dpb1.hvg == 0:
        return "match"
    if not (isinstance(recipient_group, int) and isinstance(donor_group, int)):
        return Unknown("unclassified_allele")
    if recipient_group == donor_group:
        return "permissive"
    return "non-permissive GvH" if recipient_group < donor_group else "non-permissive HvG"


#: Krieger 2020 inhibitory pairs (donor KIR, recipient ligand). ``Bw4`` here is
#: HLA-B Bw4 only; ``A3/A11`` an expressed HLA-A*03 or *11 allele.
KRIEGER_INHIBITORY = (("KIR2DL1", "C2"), ("KIR2DL2", "C1"), ("KIR2DL3", "C1"),
                      ("KIR3DL1", "Bw4"), ("KIR3DL2", "A3/A11"))
#: Krieger 2020 activating pairs; ``A11`` is an expressed HLA-A*11 allele.
KRIEGER_ACTIVATING = (("KIR2DS1", "C2"), ("KIR2DS2", "A11"), ("KIR2DS4", "A11"),
                      ("KIR2DS5", "C2"))
#: The wKIR weights of iKIR, aKIR and mKIR (Krieger 2020; DOMAIN.md §A.20), the
#: default of the ``wkir_weights`` option.
WKIR_WEIGHTS = (0.80, 0.14, 0.99)


def krieger_counts(donor_genes: frozenset[str],
                   recipient_ligands: frozenset[str]) -> tuple[int, int, int]:
    """Krieger's receptor-ligand counts ``(iKIR, mKIR, aKIR)``, rule 17.

    Krieger E et al., Biol Blood Marrow Transplant 2020, PMID 31676338;
    definitions as DKMS CTUtools ``score_krieger`` (DOMAIN.md §A.20).

    Formula: for each inhibitory pair of :data:`KRIEGER_INHIBITORY` whose KIR
    the donor carries, iKIR + 1 when the recipient has the ligand, else
    mKIR + 1; for each activating pair of :data:`KRIEGER_ACTIVATING` whose KIR
    the donor carries, aKIR + 1 when the recipient has the ligand.

    ``donor_genes`` holds ``KIR3DL2`` unless it was typed absent (a framework
    gene) and ``KIR2DS4`` only for a full-length (expressed) KIR2DS4 allele;
    ``recipient_ligands`` holds ``C1``/``C2`` (HLA-C), ``Bw4`` (HLA-B only),
    ``A3/A11`` and ``A11``.

    Missing data: needs the donor's genes above (KIR2DS4 at allele or variant
    level) and the recipient's HLA-A, -B and -C.

    >>> krieger_counts(frozenset({"KIR2DL1", "KIR2DL3", "KIR3DL2", "KIR2DS4"}),
    ...                frozenset({"C1", "A11", "A3/A11"}))
    (2, 1, 1)
    """
    i = m = a = 0
    for kir, ligand in KRIEGER_INHIBITORY:
        if kir in donor_genes:
            if ligand in recipient_ligands:
                i += 1
            else:
                m += 1
    for kir, ligand in KRIEGER_ACTIVATING:
        if kir in donor_genes and ligand in recipient_ligands:
            a += 1
    return i, m, a


def krieger_scores(donor_genes: frozenset[str], recipient_ligands: frozenset[str],
                   weights: tuple[float, float, float] = WKIR_WEIGHTS
                   ) -> tuple[int, int, float]:
    """Krieger's scores ``(kir_l_score, imkir_score, wkir_score)``, rule 17.

    Krieger E et al., Biol Blood Marrow Transplant 2020, PMID 31676338.

    Formula: with (iKIR, mKIR, aKIR) from :func:`krieger_counts`,
    KIR-L = −iKIR + mKIR + aKIR; imKIR = iKIR + mKIR; wKIR = w_i·iKIR +
    w_a·aKIR + w_m·mKIR (two decimals), ``weights`` = (w_i, w_a, w_m),
    by default (0.80, 0.14, 0.99).

    Missing data: as :func:`krieger_counts`.

    >>> krieger_scores(frozenset({"KIR2DL1", "KIR2DL3", "KIR3DL2", "KIR2DS4"}),
    ...                frozenset({"C1", "A11", "A3/A11"}))
    (0, 3, 2.73)
    """
    i, m, a = krieger_counts(donor_genes, recipient_ligands)
    wi, wa, wm = weights
    return -i + m + a, i + m, round(wi * i + wa * a + wm * m, 2)
