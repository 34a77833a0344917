"""Assess one recipient-donor pair: every model of rules 3-13 with propagation,
the output contract of rule 15 and the warnings of §A.17.

>>> from kirmatch.tables import load_reference_tables
>>> t = load_reference_tables()
>>> r = make_person("R2", "A*01:01+A*02:01^B*08:01+B*15:01^C*07:01+C*03:04",
...                 "KIR2DL1+KIR2DL3+KIR2DL4+KIR2DS4+KIR3DL1+KIR3DL2+KIR3DL3", tables=t)
>>> d = make_person("D2", "A*01:01+A*03:01^B*08:01+B*57:01^C*07:01+C*06:02",
...     "KIR2DL1*004+KIR2DL1*004+KIR2DL2+KIR2DL4+KIR2DL5+KIR2DS1+KIR2DS2+KIR2DS4+"
...     "KIR3DL1*005+KIR3DS1*013+KIR3DL2+KIR3DL3", tables=t)
>>> res = assess_pair(r, d, tables=t)
>>> res.value("gvh_mismatched_ligands"), res.value("cf_ikir"), res.value("kir2dl1_245")
('Bw4;C2', 1, 'C245')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kirmatch.dsa import Antibody, DSAResult, assess_dsa
from kirmatch.errors import KirmatchError
from kirmatch.hla import HLAGenotype, parse_hla_genotype
from kirmatch.kir import KIRFeatures, KIRGenotype, kir_features, parse_kir_genotype
from kirmatch.ligands import (
    PersonHLA,
    b_class,
    c_group,
    format_set,
    person_facts,
    shared_resolver,
)
from kirmatch.options import RULES_ID, Options
from kirmatch.propagation import Cand, evaluate
from kirmatch.pyard_backend import PyardBackend
from kirmatch.scores import (
    IKIR,
    b_content,
    cen_motif,
    cf_ikir,
    gene_gene_mismatches,
    ikir_score_weighted,
    kir2ds1_status,
    kir3dl1_hlab,
    kir_ab_genotype,
    ligand_mismatch,
    missing_ligands,
    receptor_ligand_mismatches,
    tel_motif,
)
from kirmatch.tables import ReferenceTables, load_reference_tables

__all__ = [
    "CONTRACT_COLUMNS",
    "RANK_COLUMNS",
    "PairAssessment",
    "Person",
    "assess_pair",
    "error_row",
    "make_person",
    "run_record",
]

#: Output contract, DOMAIN.md §A.16 (rank columns only in ranked output).
CONTRACT_COLUMNS = (
    "recipient_id", "donor_id", "status", "error", "warnings",
    "recipient_c_group", "recipient_b_class", "recipient_ligands",
    "donor_c_group", "donor_b_class", "donor_ligands",
    "gvh_ligand_mismatch", "gvh_mismatched_ligands",
    "hvg_ligand_mismatch", "hvg_mismatched_ligands",
    "missing_ligand_count", "missing_ligands",
    "receptor_ligand_mismatches", "gene_gene_mismatches",
    "cf_ikir", "cf_ikir_donor_ligands", "ikir_score_weighted",
    "donor_kir_genotype", "cen_motif", "tel_motif", "b_content_score", "b_content_group",
    "kir2ds1_status", "kir3dl1_hlab", "kir2dl1_245",
    "dsa_max_mfi", "dsa_tier",
)
RANK_COLUMNS = ("rank", "rank_reason")
COMPUTED_COLUMNS = CONTRACT_COLUMNS[5:]

#: Which KIR gene an allele-level column needed (for ``gene_level_kir`` warnings).
_ALLELE_GENE = {"kir3dl1_hlab": "KIR3DL1", "kir2dl1_245": "KIR2DL1", "cf_ikir": "KIR3DL1",
                "cf_ikir_donor_ligands": "KIR3DL1", "ikir_score_weighted": "KIR3DL1"}


@dataclass(frozen=True, slots=True)
class Person:
    """One person's typings (either may be ``None`` = not typed)."""

    id: str
    hla: HLAGenotype | None = None
    kir: KIRGenotype | None = None


def make_person(pid: str, hla: str | HLAGenotype | None = None,
                kir: str | KIRGenotype | None = None, *,
                tables: ReferenceTables | None = None) -> Person:
    """Parse typing strings into a :class:`Person` (errors name the value)."""
    t = tables or load_reference_tables()
    h = parse_hla_genotype(hla) if isinstance(hla, str) and hla.strip() else (
        hla if isinstance(hla, HLAGenotype) else None)
    k = parse_kir_genotype(kir, t) if isinstance(kir, str) else kir
    return Person(str(pid), h, k)


def run_record(options: Options, tables: ReferenceTables) -> dict[str, Any]:
    """Options plus the rules version and table releases (the ``options`` object)."""
    from kirmatch import __version__

    return {
        **options.to_dict(),
        "rules": RULES_ID,
        "kirmatch_version": __version__,
        "ipd_imgt_hla": tables.hla_release,
        "ipd_kir": tables.kir_release,
    }


@dataclass(frozen=True, slots=True)
class PairAssessment:
    """The result for one pair: contract values (``None`` = unknown) and warnings."""

    recipient_id: str
    donor_id: str
    values: dict[str, Any]
    warnings: tuple[str, ...]
    options: dict[str, Any]
    status: str = "ok"
    error: str = ""
    unknown: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    dsa: DSAResult | None = None

    def value(self, column: str) -> Any:
        """The encoded contract value of one column (as in ``to_dict``)."""
        return self.to_dict()[column]

    def to_dict(self) -> dict[str, Any]:
        """Contract keys in contract order (§A.16), then ``options``.

        Booleans stay booleans, lists are sorted ``;``-joined strings, unknown is
        ``""``, ``ikir_score_weighted`` has two decimals.
        """
        out: dict[str, Any] = {
            "recipient_id": self.recipient_id,
            "donor_id": self.donor_id,
            "status": self.status,
            "error": self.error,
            "warnings": ";".join(self.warnings),
        }
        for col in COMPUTED_COLUMNS:
            out[col] = encode(col, self.values.get(col))
        out["options"] = self.options
        return out

    def to_row(self) -> dict[str, str]:
        """CSV cells: like ``to_dict`` with ``true``/``false`` and strings."""
        d = self.to_dict()
        d.pop("options")
        return {k: to_cell(v) for k, v in d.items()}


def encode(column: str, value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (frozenset, set)):
        return format_set(value)
    if column == "ikir_score_weighted":
        return f"{value:.2f}"
    if column == "dsa_max_mfi":
        return int(round(value))
    return value


def to_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def error_row(recipient_id: str, donor_id: str, error: KirmatchError | str,
              options: dict[str, Any]) -> PairAssessment:
    """A ``status=error`` result: computed columns empty, ``error`` = ``code: message``."""
    text = error.as_cell() if isinstance(error, KirmatchError) else str(error)
    return PairAssessment(str(recipient_id), str(donor_id), {}, (), options,
                          status="error", error=text.replace("\n", " "))


def _as_person(p: Person | Mapping[str, Any], tables: ReferenceTables, default_id: str) -> Person:
    if isinstance(p, Person):
        return p
    return make_person(str(p.get("id", default_id)), p.get("hla"), p.get("kir"), tables=tables)


def assess_pair(
    recipient: Person | Mapping[str, Any],
    donor: Person | Mapping[str, Any],
    options: Options | None = None,
    *,
    tables: ReferenceTables | None = None,
    antibodies: Sequence[Antibody] | None = None,
    pyard: PyardBackend | None = None,
) -> PairAssessment:
    """Compute every model of kirmatch rules v1 for one pair.

    Parameters
    ----------
    recipient, donor:
        :class:`Person` objects (or mappings with ``id``, ``hla``, ``kir`` strings).
    options:
        Rule-set options (defaults: :class:`~kirmatch.options.Options`).
    antibodies:
        The recipient's antibody screen (rule 13); ``None`` = no antibody data,
        an empty sequence is not allowed (record a negative screen as ``NONE``).
    pyard:
        A py-ard backend for serology/MAC expansion; ``None`` = tables only.

    Raises
    ------
    KirmatchError
        Unparseable typing or an allele unknown to the pinned release.
    """
    opts = options or Options()
    t = tables or load_reference_tables()
    rp = _as_person(recipient, t, "recipient")
    dp = _as_person(donor, t, "donor")
    resolver = shared_resolver(t, opts, pyard)
    rh = resolver.resolve_genotype(rp.hla, "recipient")
    dh = resolver.resolve_genotype(dp.hla, "donor")
    dk = kir_features(dp.kir, t, "donor")
    rk = kir_features(rp.kir, t, "recipient") if rp.kir is not None else None
    values, unknown, facts = compute_models(rh, dh, dk, rk, opts)
    warnings: list[str] = [*rh.warnings, *dh.warnings, *dk.warnings]
    if rk is not None:
        warnings.extend(w for w in rk.warnings if w.startswith("kir_gene_unknown"))
    dsa = None
    if antibodies is None:
        unknown["dsa_max_mfi"] = unknown["dsa_tier"] = "no_antibody_data"
    else:
        dsa = assess_dsa(antibodies, dp.hla, opts, tables=t, pyard=pyard,
                         donor_hla=dh)
        if dsa.tier is None:
            unknown["dsa_max_mfi"] = unknown["dsa_tier"] = dsa.reason or "antibody_unparsed"
        else:
            values["dsa_max_mfi"] = dsa.max_mfi
            values["dsa_tier"] = dsa.tier
        warnings.extend(dsa.warnings)
    for col, reason in unknown.items():
        values[col] = None
        warnings.append(f"unknown({col}: {reason})")
        if reason == "gene_level_kir" and col in _ALLELE_GENE:
            warnings.append(f"gene_level_kir(donor {_ALLELE_GENE[col]})")
    return PairAssessment(
        recipient_id=rp.id, donor_id=dp.id, values=values,
        warnings=tuple(sorted(set(w.replace(";", ",") for w in warnings))),
        options=run_record(opts, t), unknown=dict(unknown), facts=facts, dsa=dsa,
    )


def compute_models(rh: PersonHLA, dh: PersonHLA, dk: KIRFeatures, rk: KIRFeatures | None,
                   opts: Options) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """All model columns for resolved persons: (values, unknown reasons, facts)."""
    values: dict[str, Any] = {}
    unknown: dict[str, str] = {}
    facts: dict[str, Any] = {}

    def put(col: str, fn: Any, *cands: Cand[Any]) -> Any:
        v, reason = evaluate(fn, *cands)
        if v is None:
            unknown[col] = reason or "ambiguous_typing"
        values[col] = v
        return v

    # Collapse each person's loci to what the models use, then to joint facts:
    # (rule-3 ligand set, IPD-style ligand set, B-C1 flag). This keeps the
    # propagation products small whatever the input ambiguity.
    rb, rc = rh.cand("B"), rh.cand("C")
    dc = dh.cand("C")
    rf = person_facts(rh, opts)
    df = person_facts(dh, opts)

    put("recipient_c_group", c_group, rc)
    put("recipient_b_class", b_class, rb)
    put("recipient_ligands", lambda f: f[0], rf)
    put("donor_c_group", c_group, dc)
    put("donor_b_class", b_class, dh.cand("B"))
    put("donor_ligands", lambda f: f[0], df)

    ipd = opts.ipd_compatible
    idx = 1 if ipd else 0
    a3 = opts.include_a3a11 and not ipd

    def mm(side: int) -> Any:
        def fn(r: Any, d: Any) -> frozenset[str]:
            return ligand_mismatch(d[idx], r[idx], include_a3a11=a3)[side]
        return fn

    gvh = put("gvh_mismatched_ligands", mm(0), rf, df)
    hvg = put("hvg_mismatched_ligands", mm(1), rf, df)
    for col, side, sets in (("gvh_ligand_mismatch", 0, gvh), ("hvg_ligand_mismatch", 1, hvg)):
        if sets is None:
            fn = mm(side)
            put(col, lambda r, d, fn=fn: bool(fn(r, d)), rf, df)
        else:
            values[col] = bool(sets)

    # Donor iKIR gene set (and KIR3DL1 as "functional" under exclude_null_kir3dl1).
    d_ikir = dk.genes(IKIR)
    if opts.exclude_null_kir3dl1:
        base = dk.genes(("KIR2DL1", "KIR2DL2", "KIR2DL3"))
        cf_genes = _combine_3dl1(base, dk.kir3dl1_functional)
    else:
        cf_genes = d_ikir
    rl_genes = dk.genes((*IKIR, "KIR3DL2")) if opts.include_a3a11 else d_ikir

    ml = put("missing_ligands", lambda g, f: missing_ligands(g, f[0]), d_ikir, rf)
    if ml is None:
        put("missing_ligand_count", lambda g, f: len(missing_ligands(g, f[0])), d_ikir, rf)
    else:
        values["missing_ligand_count"] = len(ml)
    put("receptor_ligand_mismatches",
        lambda g, f: receptor_ligand_mismatches(g, f[0], include_a3a11=opts.include_a3a11),
        rl_genes, rf)
    if rk is None or not rk.typed:
        values["gene_gene_mismatches"] = None
        unknown["gene_gene_mismatches"] = "no_recipient_kir"
    else:
        put("gene_gene_mismatches", gene_gene_mismatches, d_ikir, rk.genes(IKIR))
    put("cf_ikir", lambda g, f: cf_ikir(g, f[0], f[2]), cf_genes, rf)
    put("cf_ikir_donor_ligands", lambda g, f: cf_ikir(g, f[0], f[2]), cf_genes, df)
    put("ikir_score_weighted", lambda g, f: ikir_score_weighted(g, f[0], f[2]), cf_genes, rf)

    content = dk.genes(("KIR2DL2", "KIR2DL3", "KIR2DL5", "KIR2DS1", "KIR2DS2", "KIR2DS3",
                        "KIR2DS4", "KIR2DS5", "KIR3DL1", "KIR3DS1"))
    put("donor_kir_genotype", kir_ab_genotype, content)
    put("cen_motif", cen_motif, content)
    put("tel_motif", tel_motif, content)

    def bc(idx: int) -> Any:
        def fn(g: frozenset[str]) -> Any:
            r = b_content(g)
            return r if not isinstance(r, tuple) else r[idx]
        return fn

    put("b_content_score", bc(0), content)
    put("b_content_group", bc(1), content)
    put("kir2ds1_status", kir2ds1_status, dk.present["KIR2DS1"], dc.map(c_group))
    put("kir3dl1_hlab", kir3dl1_hlab, dk.kir3dl1_class, rb.map(b_class))
    put("kir2dl1_245", lambda x: x, dk.kir2dl1_245)

    facts["donor_ikir"] = d_ikir
    facts["kir3dl1_class"] = dk.kir3dl1_class
    return values, unknown, facts


def _combine_3dl1(base: Cand[frozenset[str]], functional: Cand[bool | None]) -> Cand[Any]:
    vals: set[Any] = set()
    for g in base.values:
        for f in functional.values:
            vals.add(None if f is None else (g | {"KIR3DL1"} if f else g))
    reason = base.reason if len(base.values) > 1 else functional.reason
    return Cand.any_of(vals, reason)
