"""Plain-text rendering for the terminal (what a transplant physician reads)."""

from __future__ import annotations

from typing import Any

from kirmatch.ligands import AlleleCall
from kirmatch.options import RULES_VERSION, Options
from kirmatch.pair import PairAssessment, Person
from kirmatch.tables import ReferenceTables

DISCLAIMER = "Research and decision support, not a medical device."

def terminal_width() -> int:
    """The terminal's width (``$COLUMNS`` first; 80 when not a terminal)."""
    import shutil

    return max(40, shutil.get_terminal_size((80, 24)).columns)


def fit(text: str, width: int) -> str:
    """Each line of ``text`` wrapped at word boundaries to ``width`` columns, its
    continuation lines indented under it (4 more spaces).

    >>> print(fit("KIR2DS1 [Venstrom JM et al., N Engl J Med 2012]", 30))
    KIR2DS1 [Venstrom JM et al.,
        N Engl J Med 2012]
    """
    import textwrap

    out = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip()))
        out.extend(textwrap.wrap(line, width, initial_indent="", subsequent_indent=indent + "    ",
                                 break_long_words=False, break_on_hyphens=False) or [line])
    return "\n".join(out)


def _cite(column: str) -> str:
    """The citation of the model that fills ``column`` (from the registry)."""
    from kirmatch.registry import model_of

    return model_of(column).citation


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
    """Which typed alleles supply each ligand (for the explanations), by the same
    per-locus rules as the ligand set (:mod:`kirmatch.ligands`)."""
    from kirmatch.ligands import _a_proj, _b_proj, _c_proj

    out: dict[str, list[str]] = {}
    for c in calls:
        if c.call is None or len(c.features) != 1:
            continue
        (f,) = c.features
        pair = (f, f)
        supplied: set[str] = set()
        if c.locus == "A":
            bw4, a3a11 = _a_proj(pair, opts)
            supplied |= {"Bw4"} if bw4 else set()
            supplied |= {"A3/A11"} if a3a11 else set()
        elif c.locus == "B":
            supplied |= {"Bw4"} if _b_proj(pair)[0] else set()
        elif c.locus == "C":
            supplied |= _c_proj(pair)
        for lig in supplied:
            out.setdefault(lig, []).append(c.typing)
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


def _with_src(ligs: str, src: dict[str, list[str]]) -> str:
    if not ligs:
        return "none"
    return ", ".join(f"{x} ({', '.join(src.get(x, [])) or '?'})" for x in ligs.split(";"))


def _listed(res: PairAssessment, v: dict[str, Any], col: str,
            src: dict[str, list[str]] | None = None) -> str:
    """A list column as computed (``v``: the pair's row): ``unknown (<reason>)``
    when it is unknown, ``none`` when it is known to be empty, else its items
    (with the typings they come from, given ``src``)."""
    if col in res.unknown:
        return f"unknown ({res.unknown[col]})"
    value = v[col]
    if not value:
        return "none"
    return _with_src(value, src) if src is not None else value


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
        f" ligands {_listed(res, v, 'recipient_ligands', rs)}",
        f"  Donor:     HLA-C {_v(v['donor_c_group'])}, HLA-B {_v(v['donor_b_class'])},"
        f" ligands {_listed(res, v, 'donor_ligands', ds)}",
        "",
        "KIR-ligand mismatch [" + _cite("gvh_ligand_mismatch") + "]",
    ]
    if v["gvh_ligand_mismatch"] is True:
        lines.append(f"  GvH mismatch: donor {_listed(res, v, 'gvh_mismatched_ligands', ds)} "
                     f"absent in recipient ({rc})")
    else:
        lines.append(f"  GvH mismatch: {_v(v['gvh_ligand_mismatch'])}")
    if v["hvg_ligand_mismatch"] is True:
        lines.append(f"  HvG mismatch: recipient {_listed(res, v, 'hvg_mismatched_ligands', rs)} "
                     "absent in donor")
    else:
        lines.append(f"  HvG mismatch: {_v(v['hvg_ligand_mismatch'])}")
    lines += [
        "Missing ligand [" + _cite("missing_ligands") + "]",
        f"  {_v(v['missing_ligand_count'])} missing"
        + (f": recipient lacks {v['missing_ligands']} for the donor's iKIR"
           if v["missing_ligands"] else ""),
        "Receptor-ligand mismatch [" + _cite("receptor_ligand_mismatches") + "]",
        f"  {_listed(res, v, 'receptor_ligand_mismatches')}",
        "Gene-gene mismatch [" + _cite("gene_gene_mismatches") + "]",
        f"  {_listed(res, v, 'gene_gene_mismatches')}",
        "CF-iKIR [" + _cite("cf_ikir") + "]",
        f"  cf_ikir (recipient ligands) {_v(v['cf_ikir'])}; with donor's own ligands "
        f"{_v(v['cf_ikir_donor_ligands'])}; weighted {_v(v['ikir_score_weighted'])}",
        "KIR gene content [" + _cite("b_content_group") + "]",
        f"  donor {_v(v['donor_kir_genotype'])}, Cen {_v(v['cen_motif'])}, Tel "
        f"{_v(v['tel_motif'])}, B content {_v(v['b_content_score'])} "
        f"({_v(v['b_content_group'])})",
        "KIR2DS1 [" + _cite("kir2ds1_status") + "]",
        f"  {_v(v['kir2ds1_status'])} (donor HLA-C {_v(v['donor_c_group'])})",
        "KIR3DL1 x HLA-B [" + _cite("kir3dl1_hlab") + "]",
        f"  {_v(v['kir3dl1_hlab'])} (donor KIR3DL1 class "
        f"{_v(v['facts']['donor_kir3dl1_class'])}, recipient HLA-B "
        f"{_v(v['recipient_b_class'])})",
        "KIR2DL1 residue 245 [" + _cite("kir2dl1_245") + "]",
        f"  {_v(v['kir2dl1_245'])}",
        "Krieger KIR-ligand scores [" + _cite("kir_l_score") + "]",
        f"  KIR-L {_v(v['kir_l_score'])}, imKIR {_v(v['imkir_score'])}, wKIR "
        f"{_v(v['wkir_score'])}",
        "Donor-specific antibodies [" + _cite("dsa_tier") + "]",
        *_dsa_lines(res),
        "HLA matching (rule 16) [" + _cite("hla_relation") + "]",
        *_hla_lines(v),
    ]
    if res.warnings:
        lines += ["", "Warnings:"] + [f"  - {w}" for w in res.warnings]
    o = res.options
    lines += ["", f"{RULES_VERSION}; IPD-IMGT/HLA {o['ipd_imgt_hla']}; IPD-KIR {o['ipd_kir']}. "
              f"{DISCLAIMER}"]
    return "\n".join(lines)


def _dsa_lines(res: Any) -> list[str]:
    """The DSA block of ``kirmatch pair``: tiers, definite and possible hits,
    the sub-threshold ones and what typing would settle a possible hit."""
    v = res.to_dict()
    d = res.dsa
    if d is None or d.no_data:
        return ["  unknown: no antibody data (give --antibodies)"]
    tier = v["dsa_tier"] or f"unknown ({res.unknown.get('dsa_tier', '')})"
    out = [f"  tier {tier}; worst case {v['dsa_tier_worst']}; max MFI {v['dsa_max_mfi']}, "
           f"total MFI {v['dsa_total_mfi']}"
           + ("; flow crossmatch positive" if d.flow_crossmatch else "")]
    out += [f"  DSA: {h.text()} ({h.tier})" for h in d.hits]
    out += [f"  possible DSA: {h.text()} ({h.tier}); to settle it: {h.resolution_hint()}"
            for h in d.possible]
    out += [f"  below the low threshold: {h.text()}" for h in d.below]
    out += [f"  left out (recipient's own antigen): {h.text()}" for h in d.self_antigen]
    if not (d.hits or d.possible or d.below or d.self_antigen):
        out.append("  no antibody against this donor")
    return out


def _hla_lines(v: dict[str, Any]) -> list[str]:
    """Rule 16: relation, mismatches per locus and direction, DRB1/DQB1, DPB1 TCE."""
    from kirmatch.hlamatch import MATCH_LOCI, OPTIONAL_LOCI

    loci = []
    for loc in MATCH_LOCI:
        g, h = v[f"hla_mm_gvh_{loc}"], v[f"hla_mm_hvg_{loc}"]
        if loc in OPTIONAL_LOCI and g == "" and h == "":
            continue      # compared only when both persons are typed
        loci.append(f"{loc} {_v(g)}/{_v(h)}")
    out = [f"  relation {_v(v['hla_relation'])}; mismatches GvH/HvG (A, B, C, DRB1, DQB1) "
           f"{_v(v['hla_mm_gvh'])}/{_v(v['hla_mm_hvg'])}",
           "  per locus GvH/HvG: " + ", ".join(loci)]
    extra = [f"DRB1 mismatched with DQB1 matched: {_v(v['drb1_mm_dqb1_match'])}",
             f"DPB1 TCE: {_v(v['dpb1_tce'])}"]
    for col in ("recipient_b_leader", "donor_b_leader", "b_leader_match"):
        if col in v:
            extra.append(f"{col.replace('_', ' ')}: {_v(v[col])}")
    out.append("  " + "; ".join(extra))
    return out
