"""Plain-text rendering for the terminal (what a transplant physician reads)."""

from __future__ import annotations

from typing import Any

from kirmatch.ligands import AlleleCall
from kirmatch.options import RULES_VERSION, Options
from kirmatch.pair import PairAssessment, Person
from kirmatch.tables import ReferenceTables

DISCLAIMER = "Research and decision support, not a medical device."

CITATIONS = {
    "ligand": "Ruggeri L et al., Science 2002;295:2097 (doi:10.1126/science.1068440)",
    "missing": "Hsu KC et al., Blood 2005;105:4878 (doi:10.1182/blood-2004-12-4825)",
    "receptor": "Leung W et al., J Immunol 2004;172:644 (doi:10.4049/jimmunol.172.1.644)",
    "genegene": "Symons HJ et al., Biol Blood Marrow Transplant 2010;16:533",
    "cfikir": ("Zou J et al., Front Immunol 2022;13:1033871 (doi:10.3389/fimmu.2022.1033871); "
               "Ciurea SO et al., Am J Hematol 2024 (doi:10.1002/ajh.27281); "
               "Boelen L et al., Sci Immunol 2018"),
    "bcontent": "Cooley S et al., Blood 2009;113:726 and Blood 2010;116:2411",
    "2ds1": "Venstrom JM et al., N Engl J Med 2012;367:805",
    "3dl1": "Boudreau JE et al., J Clin Oncol 2017;35:2268",
    "245": "Bari R et al., J Clin Oncol 2013;31:3782 (doi:10.1200/JCO.2012.47.4007)",
    "dsa": "Ciurea SO et al., Bone Marrow Transplant 2018;53:521 (EBMT consensus)",
}


def _v(x: Any) -> str:
    if x is None or x == "":
        return "unknown"
    if isinstance(x, bool):
        return "yes" if x else "no"
    return str(x)


def render_ligands(result: dict[str, Any]) -> str:
    lines = [f"HLA typing: {result['genotype']}", ""]
    lines.append(f"{'typing':<22} {'locus':<5} {'ligand':<14} {'B-C1':<5} {'A3/A11':<6} "
                 f"{'76-83':<9} status")
    for a in result["alleles"]:
        lig = a["ligand"] or (f"ambiguous ({a['candidates'].replace(';', '|')})"
                              if a["status"] == "ambiguous" else "unknown")
        lines.append(f"{a['typing']:<22} {a['locus']:<5} {lig:<14} {_v(a['b_c1']):<5} "
                     f"{_v(a['a3a11']):<6} {a['residues_76_83'] or '-':<9} {a['status']}"
                     + (f"  ({a['note']})" if a["note"] else ""))
    lines += ["", f"HLA-C group:  {_v(result['c_group'])}",
              f"HLA-B class:  {_v(result['b_class'])}",
              f"Ligand set:   {result['ligands'] if result['ligands'] != '' else 'unknown'}"
              + ("" if result["ligands"] != "" else f" ({result['unknown'].get('ligands')})")]
    if result["warnings"]:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in result["warnings"]]
    o = result["options"]
    lines += ["", f"{RULES_VERSION}; IPD-IMGT/HLA {o['ipd_imgt_hla']}; ambiguity policy "
              f"{o['ambiguity_policy']}. {DISCLAIMER}"]
    return "\n".join(lines)


def _sources(calls: tuple[AlleleCall, ...], opts: Options) -> dict[str, list[str]]:
    """Which typed alleles supply each ligand (for the explanations)."""
    out: dict[str, list[str]] = {}
    for c in calls:
        if c.call is None:
            continue
        if c.locus == "C" and c.call in ("C1", "C2"):
            out.setdefault(c.call, []).append(c.typing)
        if c.locus == "B" and c.call.startswith("Bw4"):
            out.setdefault("Bw4", []).append(c.typing)
        if c.locus == "A":
            ff = c.typing.split("*")[1][:2] if "*" in c.typing else ""
            groups = {"23", "24", "32"} | ({"25"} if opts.a25_bw4 else set())
            if c.call.startswith("Bw4") and ff in groups and opts.hla_a_bw4:
                out.setdefault("Bw4", []).append(c.typing)
            if c.a3a11:
                out.setdefault("A3/A11", []).append(c.typing)
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


def _with_src(ligs: str, src: dict[str, list[str]]) -> str:
    if not ligs:
        return "none"
    return ", ".join(f"{x} ({', '.join(src.get(x, [])) or '?'})" for x in ligs.split(";"))


def render_pair(res: PairAssessment, r: Person, d: Person, tables: ReferenceTables,
                opts: Options) -> str:
    from kirmatch.ligands import LigandResolver

    v = res.to_dict()
    if v["status"] == "error":
        return f"error: {v['error']}"
    resolver = LigandResolver(tables, opts)
    try:
        rs = _sources(resolver.resolve_genotype(r.hla, "recipient").calls, opts)
        ds = _sources(resolver.resolve_genotype(d.hla, "donor").calls, opts)
    except Exception:  # pragma: no cover - explanation only
        rs, ds = {}, {}
    rc = v["recipient_c_group"] or "C group unknown"
    lines = [
        f"Pair {res.recipient_id} (recipient) <- {res.donor_id} (donor)",
        f"  Recipient: HLA-C {_v(v['recipient_c_group'])}, HLA-B {_v(v['recipient_b_class'])},"
        f" ligands {_with_src(v['recipient_ligands'], rs) if v['recipient_ligands'] else _v('')}",
        f"  Donor:     HLA-C {_v(v['donor_c_group'])}, HLA-B {_v(v['donor_b_class'])},"
        f" ligands {_with_src(v['donor_ligands'], ds) if v['donor_ligands'] else _v('')}",
        "",
        "KIR-ligand mismatch [" + CITATIONS["ligand"] + "]",
    ]
    if v["gvh_ligand_mismatch"] is True:
        lines.append(f"  GvH mismatch: donor {_with_src(v['gvh_mismatched_ligands'], ds)} "
                     f"absent in recipient ({rc})")
    else:
        lines.append(f"  GvH mismatch: {_v(v['gvh_ligand_mismatch'])}")
    if v["hvg_ligand_mismatch"] is True:
        lines.append(f"  HvG mismatch: recipient {_with_src(v['hvg_mismatched_ligands'], rs)} "
                     "absent in donor")
    else:
        lines.append(f"  HvG mismatch: {_v(v['hvg_ligand_mismatch'])}")
    lines += [
        "Missing ligand [" + CITATIONS["missing"] + "]",
        f"  {_v(v['missing_ligand_count'])} missing"
        + (f": recipient lacks {v['missing_ligands']} for the donor's iKIR"
           if v["missing_ligands"] else ""),
        "Receptor-ligand mismatch [" + CITATIONS["receptor"] + "]",
        f"  {v['receptor_ligand_mismatches'] or ('none' if v['missing_ligand_count'] != '' else 'unknown')}",
        "Gene-gene mismatch [" + CITATIONS["genegene"] + "]",
        f"  {v['gene_gene_mismatches'] or ('unknown' if 'gene_gene_mismatches' in res.unknown else 'none')}",
        "CF-iKIR [" + CITATIONS["cfikir"] + "]",
        f"  cf_ikir (recipient ligands) {_v(v['cf_ikir'])}; with donor's own ligands "
        f"{_v(v['cf_ikir_donor_ligands'])}; weighted {_v(v['ikir_score_weighted'])}",
        "KIR gene content [" + CITATIONS["bcontent"] + "]",
        f"  donor {_v(v['donor_kir_genotype'])}, Cen {_v(v['cen_motif'])}, Tel "
        f"{_v(v['tel_motif'])}, B content {_v(v['b_content_score'])} "
        f"({_v(v['b_content_group'])})",
        "KIR2DS1 [" + CITATIONS["2ds1"] + "]",
        f"  {_v(v['kir2ds1_status'])} (donor HLA-C {_v(v['donor_c_group'])})",
        "KIR3DL1 x HLA-B [" + CITATIONS["3dl1"] + "]",
        f"  {_v(v['kir3dl1_hlab'])} (recipient HLA-B {_v(v['recipient_b_class'])})",
        "KIR2DL1 residue 245 [" + CITATIONS["245"] + "]",
        f"  {_v(v['kir2dl1_245'])}",
        "Donor-specific antibodies [" + CITATIONS["dsa"] + "]",
        f"  tier {_v(v['dsa_tier'])}, max MFI {_v(v['dsa_max_mfi'])}"
        + (": " + "; ".join(f"{h.label()} -> {h.donor_allele}" for h in res.dsa.hits)
           if res.dsa and res.dsa.hits else ""),
    ]
    if res.warnings:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in res.warnings]
    o = res.options
    lines += ["", f"{RULES_VERSION}; IPD-IMGT/HLA {o['ipd_imgt_hla']}; IPD-KIR {o['ipd_kir']}. "
              f"{DISCLAIMER}"]
    return "\n".join(lines)
