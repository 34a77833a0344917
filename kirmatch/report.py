"""Self-contained HTML report of a ranking run (no network assets, inline SVG),
printable on A4 or Letter.

Per recipient: the ranked donors with the deciding reason; the HLA typings side
by side with mismatches marked per locus and direction (rule 16); each donor's
KIR gene content and the KIR-ligand picture (which donor inhibitory KIR find
no ligand in the recipient: the alloreactive direction); every model value with
a one-line meaning and, when unknown, its reason; the DSA screen (rule 13) with
definite and possible hits; the warnings in words. Then the policy as a chain,
the inputs, the releases, the date, and a sign-off block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from typing import Any

from kirmatch.hlamatch import MATCH_LOCI, OPTIONAL_LOCI
from kirmatch.options import RULES_VERSION
from kirmatch.scores import RECEPTOR_LIGAND

__all__ = ["REASON_WORDS", "WARNING_WORDS", "render_report", "warning_in_words"]

DISCLAIMER = ("kirmatch is research and decision-support software, not a medical device. "
              "It does not choose a donor and does not replace the judgement of the transplant "
              "team or the HLA laboratory. Unknown values are shown as unknown, with their "
              "reason, never guessed.")
#: Donor inhibitory KIR and the ligand each needs (Leung 2004; kirmatch.scores).
_IKIR = tuple(RECEPTOR_LIGAND.items())
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif;margin:24px;color:#222;
 font-size:13px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 6px;border-bottom:2px solid #446}
h3{font-size:14px;margin:14px 0 4px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:12px}
th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef} .meta{color:#555;font-size:12px} .err{color:#a00}
.disc{background:#fff6e0;border:1px solid #e0c070;padding:8px;font-size:12px;margin:12px 0}
.tier-none{color:#070} .tier-low,.tier-moderate{color:#a60}
.tier-high,.tier-very{color:#b00;font-weight:bold} .tier-unknown{color:#555;font-style:italic}
.unknown{color:#666;font-style:italic} .mm{background:#fde9c8} .same{color:#555}
tr.below td,tr.self td{color:#999} tr.possible td{font-style:italic}
.donor{display:inline-block;margin:4px 18px 8px 0;vertical-align:top}
.key{font-size:11px;color:#444} .sign td{height:34px;min-width:180px}
.chain{font-family:ui-monospace,Menlo,Consolas,monospace}
section.recipient{page-break-before:auto}
@media print{
 @page{size:auto;margin:12mm}
 body{margin:0;font-size:10px} table{font-size:9.5px} h2{page-break-before:always}
 h2:first-of-type{page-break-before:avoid} table,.donor,.sign{page-break-inside:avoid}
 .noprint{display:none}
}
"""

#: Warning codes (DOMAIN.md §A.17) in words; ``{0}`` is the detail (also the
#: warnings table of the generated rules reference).
WARNING_WORDS = {
    "hla_untyped": "{0}: this HLA locus is not typed",
    "single_allele": "{0}: one typing only; read as homozygous",
    "no_sequence_coverage": "{0}: no sequence covers the KIR-ligand residues",
    "ambiguous_typing": "{0}: the typing allows different calls",
    "resolved_by_cwd": "{0}: decided by the common and well-documented allele list",
    "resolved_by_majority": "{0}: decided by the majority of candidate alleles",
    "null_allele": "{0}: null allele (not expressed)",
    "null_in_expansion": "{0}: the typing includes null alleles (left out)",
    "expression_variant": "{0}: expression variant (L, S, C, A or Q suffix)",
    "unclassified_allele": "{0}: the allele has no classification",
    "mac_unavailable": "{0}: an NMDP MAC code without MAC data: not expanded",
    "kir_gene_unknown": "{0}: presence of this KIR gene is unknown",
    "gene_level_kir": "{0}: only the gene was typed; an allele-level typing is needed",
    "kir3dl1_unclassified_allele": "KIR3DL1 allele {0} has no H/L/N class",
    "kir2dl1_245_other": "KIR2DL1 allele {0}: residue 245 neither Arg nor Cys",
    "no_kir3dl1_or_kir3ds1": "the donor carries neither KIR3DL1 nor KIR3DS1",
    "antibody_locus_untyped": "antibody {0}: the donor is not typed at its locus",
    "self_antigen_antibody": "antibody {0}: the recipient carries this antigen; left out",
    "cen_unclassifiable": "centromeric KIR motif cannot be classified",
    "clinical_unknown": "clinical value missing: {0}",
    "not_haploidentical": "the {0} shares no HLA allele with the recipient at some locus: "
                          "check the typing or the relationship",
}
#: The reasons of an unknown value (``unknown(<column>: <reason>)``) in words.
REASON_WORDS = {
    "hla_untyped": "a locus is not typed", "ambiguous_typing": "the typing is ambiguous",
    "single_allele": "only one allele typed", "mac_unavailable": "MAC code not expanded",
    "kir_gene_unknown": "a KIR gene's presence is unknown",
    "gene_level_kir": "allele-level KIR needed", "no_recipient_kir": "recipient KIR not typed",
    "no_antibody_data": "no antibody data", "antibody_locus_untyped":
    "an antibody's locus is not typed in the donor", "unclassified_allele":
    "an allele has no classification", "cen_unclassifiable": "Cen motif unclassifiable",
}
_W = re.compile(r"^(?P<code>[a-z0-9_]+)\((?P<detail>.*)\)$")


def warning_in_words(item: str) -> str:
    """One ``code(detail)`` warning as a sentence for a clinician.

    >>> warning_in_words("hla_untyped(donor DRB1)")
    'donor DRB1: this HLA locus is not typed'
    >>> warning_in_words("unknown(dpb1_tce: hla_untyped)")
    'dpb1_tce is unknown: a locus is not typed'
    """
    m = _W.match(item)
    if m is None:
        return item
    code, detail = m.group("code"), m.group("detail")
    if code == "unknown":
        col, _, reason = detail.partition(": ")
        return f"{col} is unknown: {REASON_WORDS.get(reason, reason)}"
    template = WARNING_WORDS.get(code)
    return template.format(detail) if template else item


def _v(x: Any) -> str:
    return '<span class="unknown">unknown</span>' if x in ("", None) else escape(str(x))


def _tier_class(tier: str) -> str:
    return "tier-" + (tier.split(" ")[0] if tier else "unknown")


def _tier_cell(v: Mapping[str, Any]) -> str:
    """The DSA tier of a donor; unknown shows its worst case."""
    tier, worst = v["dsa_tier"], v["dsa_tier_worst"]
    if tier:
        return f'<td class="{_tier_class(tier)}">{escape(tier)}</td>'
    text = f"unknown (worst case {escape(worst)})" if worst else "unknown"
    return f'<td class="tier-unknown">{text}</td>'


def _donor_picture(donor_id: str, donor_genes: frozenset[str] | None,
                   recipient_ligands: str | None) -> str:
    """Inline SVG: one row per donor iKIR with its ligand and what the donor cells
    see. A missing ligand is the alloreactive direction (blue), not a fault.
    ``recipient_ligands`` is ``None`` when unknown (``""``: known, none)."""
    rlig = None if recipient_ligands is None else set(filter(None, recipient_ligands.split(";")))
    rows = []
    for i, (gene, lig) in enumerate(_IKIR):
        y = 28 + i * 24
        if donor_genes is None:
            has, colour, text = None, "#999", "KIR typing unknown"
        elif gene not in donor_genes:
            has, colour, text = False, "#ccc", "gene absent in donor"
        elif rlig is None:
            has, colour, text = True, "#999", f"recipient {lig} unknown"
        elif lig in rlig:
            has, colour, text = True, "#8a8a8a", f"finds {lig} in recipient (inhibited)"
        else:
            has, colour, text = True, "#1f6fb2", f"no {lig} in recipient: missing ligand, " \
                                                  "alloreactive"
        fill = colour if has else "#fff"
        rows.append(
            f'<circle cx="14" cy="{y - 4}" r="7" fill="{fill}" stroke="{colour}" '
            f'stroke-width="2"/><text x="28" y="{y}" font-size="12">{gene} → {lig}: '
            f"{escape(text)}</text>")
    h = 28 + len(_IKIR) * 24
    return (f'<div class="donor"><svg xmlns="http://www.w3.org/2000/svg" width="400" '
            f'height="{h}" role="img" aria-label="KIR-ligand picture of donor '
            f'{escape(donor_id)}"><text x="4" y="14" font-size="13" font-weight="bold">'
            f"Donor {escape(donor_id)}</text>{''.join(rows)}</svg></div>")


def _locus_typing(hla: Any, locus: str) -> str:
    if hla is None:
        return ""
    lt = hla.locus(locus)
    return "" if lt is None else str(lt)


def _typing_html(text: str) -> str:
    """A locus typing, one allele per line (narrow columns)."""
    if not text:
        return _v("")
    return "<br>".join(escape(part) for part in text.replace("+", "+\n").split("\n"))


def _relation_html(value: Any) -> str:
    if value == "not haploidentical":
        return '<span class="err"><b>not haploidentical</b></span>'
    return _v(value)


def _hla_table(group: Sequence[Any]) -> str:
    """Typings side by side: the recipient, then each donor with its GvH/HvG
    mismatches per locus (rule 16)."""
    ok = [r for r in group if r.assessment.status == "ok"]
    if not ok:
        return ""
    rhla = ok[0].assessment.facts.get("recipient_hla")
    shown = [loc for loc in MATCH_LOCI if loc not in OPTIONAL_LOCI or any(
        _locus_typing(r.assessment.facts.get("donor_hla"), loc) for r in ok)
        or _locus_typing(rhla, loc)]
    head = "".join(f"<th>{escape(r.assessment.donor_id)}</th>" for r in ok)
    rows = []
    for loc in shown:
        cells = [f"<th>{loc}</th><td>{_typing_html(_locus_typing(rhla, loc))}</td>"]
        for r in ok:
            v = r.assessment.to_dict()
            typing = _typing_html(_locus_typing(r.assessment.facts.get("donor_hla"), loc))
            g, h = v[f"hla_mm_gvh_{loc}"], v[f"hla_mm_hvg_{loc}"]
            unknown = any(f"hla_mm_{d}_{loc}" in r.assessment.unknown for d in ("gvh", "hvg"))
            if g == "" and h == "" and not unknown:      # not compared (optional locus)
                mark = ""
            else:
                mark = f"<br><small>GvH {_v(g)} · HvG {_v(h)}</small>"
            cls = ' class="mm"' if (g not in ("", 0) or h not in ("", 0)) else ""
            cells.append(f"<td{cls}>{typing}{mark}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    total = ["<th>total</th><td></td>"]
    for r in ok:
        v = r.assessment.to_dict()
        total.append(f"<td>GvH {_v(v['hla_mm_gvh'])} · HvG {_v(v['hla_mm_hvg'])}<br>"
                     f"{_relation_html(v['hla_relation'])}</td>")
    return ("<h3>HLA typings (rule 16: mismatches per locus, GvH = recipient alleles the "
            "donor lacks, HvG = donor alleles the recipient lacks)</h3>"
            f"<table><tr><th>Locus</th><th>Recipient</th>{head}</tr>{''.join(rows)}"
            f"<tr>{''.join(total)}</tr></table>"
            '<p class="key">Shaded: a mismatch in either direction. Alleles are compared at '
            "antigen-recognition-site identity (P group).</p>")


def _kir_table(group: Sequence[Any]) -> str:
    ok = [r for r in group if r.assessment.status == "ok"]
    if not ok:
        return ""
    rows = []
    for r in ok:
        a = r.assessment
        v = a.to_dict()
        kir = a.facts.get("donor_kir")
        rows.append(
            f"<tr><td>{escape(a.donor_id)}</td><td>{escape(str(kir)) if kir else _v('')}</td>"
            f"<td>{_v(v['donor_kir_genotype'])}</td><td>{_v(v['cen_motif'])} / "
            f"{_v(v['tel_motif'])}</td><td>{_v(v['b_content_score'])} "
            f"({_v(v['b_content_group'])})</td><td>{_v(v['kir2ds1_status'])}</td>"
            f"<td>{_v(v['kir3dl1_hlab'])}</td><td>{_v(v['kir2dl1_245'])}</td></tr>")
    return ("<h3>Donor KIR gene content</h3><table><tr><th>Donor</th><th>KIR typing</th>"
            "<th>Genotype</th><th>Cen / Tel</th><th>B content</th><th>KIR2DS1</th>"
            "<th>KIR3DL1 × HLA-B</th><th>KIR2DL1 245</th></tr>" + "".join(rows) + "</table>")


def _models_table(group: Sequence[Any]) -> str:
    """Every computed column with its one-line meaning; unknown with its reason."""
    from kirmatch.registry import COLUMNS, model_of

    ok = [r for r in group if r.assessment.status == "ok"]
    if not ok:
        return ""
    head = "".join(f"<th>{escape(r.assessment.donor_id)}</th>" for r in ok)
    rows = []
    for col in COLUMNS:
        m = model_of(col)
        cells = []
        for r in ok:
            a = r.assessment
            val = a.to_dict()[col]
            if val in ("", None) and col in a.unknown:
                reason = a.unknown[col]
                cells.append(f'<td class="unknown">unknown: '
                             f"{escape(REASON_WORDS.get(reason, reason))}</td>")
            elif isinstance(val, bool):
                cells.append(f"<td>{'yes' if val else 'no'}</td>")
            else:
                cells.append(f"<td>{escape(str(val)) if val != '' else '–'}</td>")
        meaning = m.meaning.get(col, "")
        rows.append(f"<tr><th>{escape(col)}</th><td>{escape(meaning)} <small>(rule "
                    f"{escape(m.rule)})</small></td>{''.join(cells)}</tr>")
    return ("<h3>Every model</h3><table><tr><th>Column</th><th>Meaning</th>"
            f"{head}</tr>{''.join(rows)}</table>")


def _dsa_section(group: Sequence[Any]) -> str:
    """Per donor: definite and possible DSA, which typing made a hit possible and
    what typing would settle it, sub-threshold antibodies greyed, the thresholds."""
    out = ["<h3>Donor-specific antibodies (rule 13)</h3>"]
    opts = next((r.assessment.options for r in group if r.assessment.status == "ok"), None)
    if opts:
        out.append(
            '<p class="meta">Tiers by MFI: low ≥ {:,.0f}, moderate ≥ {:,.0f}, high ≥ {:,.0f} '
            "(or C1q-positive, or a positive flow crossmatch), very high ≥ {:,.0f}. A possible "
            "DSA (the donor typing leaves it open) makes the tier unknown when it could raise "
            "it; ranking then uses the worst case. Antibodies against the recipient's own "
            "antigens are {}.</p>".format(
                opts["dsa_low_mfi"], opts["dsa_moderate_mfi"], opts["dsa_high_mfi"],
                opts["dsa_very_high_mfi"],
                "counted" if opts.get("dsa_count_self") else "left out"))
    rows = []
    for r in group:
        a = r.assessment
        if a.status != "ok":
            continue
        d = a.dsa
        donor = escape(a.donor_id)
        if d is None or d.no_data:
            rows.append(f'<tr><td>{donor}</td><td colspan="5" class="tier-unknown">no antibody '
                        "data: DSA unknown</td></tr>")
            continue
        v = a.to_dict()
        head = (f"<tr><td>{donor}</td>{_tier_cell(v)}<td>max {_v(v['dsa_max_mfi'])}, total "
                f"{_v(v['dsa_total_mfi'])}"
                + (", flow crossmatch positive" if d.flow_crossmatch else "")
                + '</td><td colspan="3"></td></tr>')
        rows.append(head)
        for kind, css, hits in (("definite", "", d.hits), ("possible", "possible", d.possible),
                                ("below low threshold", "below", d.below),
                                ("recipient's own antigen: left out", "self",
                                 d.self_antigen)):
            for h in hits:
                why = escape(", ".join(h.why)) if h.why else ""
                # only a possible hit that counts can change a column: below the
                # threshold, more typing changes nothing
                hint = escape(h.resolution_hint()) if h.why and css == "possible" else ""
                rows.append(
                    f'<tr class="{css}"><td></td><td>{escape(h.specificity)}</td>'
                    f"<td>{h.mfi:,.0f}{' C1q+' if h.c1q else ''} ({escape(h.tier)})</td>"
                    f"<td>{escape(kind)}</td><td>{why}</td><td>{hint}</td></tr>")
        if not (d.hits or d.possible or d.below or d.self_antigen):
            rows.append('<tr><td></td><td colspan="5">no antibody against this donor</td></tr>')
    out.append("<table><tr><th>Donor</th><th>Tier / specificity</th><th>MFI</th>"
               "<th>Hit</th><th>Typing that leaves it open</th><th>To settle it</th></tr>"
               + "".join(rows) + "</table>")
    return "".join(out)


def _warnings_section(group: Sequence[Any]) -> str:
    items = []
    for r in group:
        a = r.assessment
        if a.status == "error":
            items.append(f'<li><b>{escape(a.donor_id)}</b>: <span class="err">not assessed: '
                         f"{escape(a.error)}</span></li>")
            continue
        words = [warning_in_words(w) for w in a.warnings if not w.startswith("unknown(")]
        if words:
            items.append(f"<li><b>{escape(a.donor_id)}</b>: "
                         + "; ".join(escape(w) for w in dict.fromkeys(words)) + "</li>")
    if not items:
        return ""
    return ("<h3>Warnings</h3><ul>" + "".join(items) + "</ul>"
            '<p class="key">Unknown values and their reasons are in the model table.</p>')


def _policy_chain(policy: Mapping[str, Any]) -> str:
    bands = policy.get("bands", {})
    parts = []
    for c in policy.get("criteria", []):
        b = bands.get(c)
        parts.append(escape(c) + (f" (bands at {', '.join(f'{x:g}' for x in b)})" if b else ""))
    return " → ".join(parts)


def render_report(rows: Sequence[Any], *, policy: Mapping[str, Any],
                  meta: Mapping[str, Any], generated: datetime | None = None) -> str:
    """HTML for ranked rows (:class:`kirmatch.ranking.RankedRow`), grouped by recipient."""
    when = (generated or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    by_recipient: dict[str, list[Any]] = {}
    for r in rows:
        by_recipient.setdefault(r.assessment.recipient_id, []).append(r)
    inputs = ", ".join(escape(str(p).rsplit("/", 1)[-1]) for p in meta.get("inputs", {}))
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>kirmatch donor ranking</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>kirmatch donor ranking</h1>",
        f'<p class="meta">Generated {escape(when)} · {escape(RULES_VERSION)} · kirmatch '
        f"{escape(str(meta.get('kirmatch_version', '')))} · IPD-IMGT/HLA "
        f"{escape(str(meta.get('ipd_imgt_hla', '')))} · IPD-KIR "
        f"{escape(str(meta.get('ipd_kir', '')))}<br>Inputs: {inputs or 'not recorded'}</p>",
        f'<p>Policy <b>{escape(str(policy.get("name", "")))}</b>: donors are ordered by '
        f'<span class="chain">{_policy_chain(policy)}</span>; unknown sorts last within a '
        "criterion; the reason shown is the first criterion on which a donor differs from "
        "the donor above.</p>",
        f'<div class="disc">{escape(DISCLAIMER)}</div>',
    ]
    for rid in sorted(by_recipient):
        group = sorted(by_recipient[rid], key=lambda r: (r.rank is None, r.rank or 0,
                                                        r.assessment.donor_id))
        first_ok = next((r for r in group if r.assessment.status == "ok"), None)
        parts.append(f'<section class="recipient"><h2>Recipient {escape(rid)}</h2>')
        if first_ok is not None:
            v = first_ok.assessment.to_dict()
            rkir = first_ok.assessment.facts.get("recipient_kir")
            unknown = first_ok.assessment.unknown
            ligands = (f"unknown ({unknown['recipient_ligands']})" if "recipient_ligands"
                       in unknown else _v(v["recipient_ligands"]) if v["recipient_ligands"]
                       else "none")
            parts.append(f'<p>HLA-C {_v(v["recipient_c_group"])}, HLA-B '
                         f'{_v(v["recipient_b_class"])}, KIR ligands {escape(ligands)}'
                         f"; KIR typing {escape(str(rkir)) if rkir else 'not given'}</p>")
        parts.append("<table><tr><th>Rank</th><th>Donor</th><th>DSA tier</th><th>CF-iKIR</th>"
                     "<th>GvH ligand mismatch</th><th>HLA mismatches GvH / HvG</th>"
                     "<th>Age / sex / relation</th><th>Why not higher</th></tr>")
        for r in group:
            a = r.assessment
            if a.status == "error":
                parts.append(f"<tr><td>–</td><td>{escape(a.donor_id)}</td>"
                             f'<td colspan="6" class="err">{escape(a.error)}</td></tr>')
                continue
            v = a.to_dict()
            c = r.clinical
            clin = _v("")
            if c is not None:
                clin = " / ".join(_v(x) for x in (
                    f"{c.donor_age:g}" if c.donor_age is not None else None,
                    c.donor_sex, c.relationship))
            gvh = v["gvh_ligand_mismatch"]
            which = (f"which: unknown, {a.unknown['gvh_mismatched_ligands']}"
                     if "gvh_mismatched_ligands" in a.unknown else v["gvh_mismatched_ligands"])
            gvh_txt = (f"yes ({escape(which)})" if gvh is True
                       else ("no" if gvh is False else _v("")))
            parts.append(
                f"<tr><td>{r.rank}</td><td>{escape(a.donor_id)}</td>{_tier_cell(v)}"
                f"<td>{_v(v['cf_ikir'])}</td><td>{gvh_txt}</td>"
                f"<td>{_v(v['hla_mm_gvh'])} / {_v(v['hla_mm_hvg'])} "
                f"({_relation_html(v['hla_relation'])})</td><td>{clin}</td>"
                f"<td>{escape(r.rank_reason)}</td></tr>")
        parts.append("</table>")
        parts.append(_hla_table(group))
        parts.append(_kir_table(group))
        parts.append("<h3>KIR–ligand picture (donor inhibitory KIR against the recipient's "
                     "ligands)</h3><p class=\"key\">Blue: the donor KIR finds no ligand in the "
                     "recipient (missing ligand, the NK-alloreactive direction). Grey: ligand "
                     "present (inhibited). Open: gene absent.</p>")
        for r in group:
            a = r.assessment
            if a.status != "ok":
                continue
            cand = a.facts.get("donor_ikir")
            genes = next(iter(cand.values)) if cand is not None and len(cand.values) == 1 \
                else None
            parts.append(_donor_picture(a.donor_id, genes, None if "recipient_ligands" in
                                        a.unknown else a.to_dict()["recipient_ligands"]))
        parts.append(_dsa_section(group))
        parts.append(_models_table(group))
        parts.append(_warnings_section(group))
        parts.append("</section>")
    opts = meta.get("options", {}) or {}
    shown = ", ".join(f"{escape(str(k))} = {escape(str(v))}" for k, v in opts.items()
                      if k not in ("kirmatch_version", "ipd_imgt_hla", "ipd_kir"))
    parts.append(f'<h3>Options</h3><p class="meta">{shown}</p>')
    parts.append('<h3>Sign-off</h3><table class="sign"><tr><th>Role</th><th>Name</th>'
                 "<th>Signature</th><th>Date</th></tr><tr><td>HLA laboratory</td><td></td>"
                 "<td></td><td></td></tr><tr><td>Transplant physician</td><td></td><td></td>"
                 "<td></td></tr></table>")
    parts.append("</body></html>")
    return "\n".join(parts)
