"""Self-contained HTML report of a ranking run (no network assets, inline SVG).

One section per recipient: the ranked donors, each donor's KIR-ligand picture
(which donor inhibitory KIR see a ligand in the recipient and which miss one),
the DSA list, the policy, the rules and table versions, and the disclaimer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from kirmatch.options import RULES_VERSION
from kirmatch.scores import RECEPTOR_LIGAND

__all__ = ["render_report"]

DISCLAIMER = ("kirmatch is research and decision-support software, not a medical device. "
              "It does not choose a donor and does not replace the judgement of the transplant "
              "team or the HLA laboratory. Unknown values are shown as unknown, never guessed.")
#: Donor inhibitory KIR and the ligand each needs (Leung 2004; kirmatch.scores).
_IKIR = tuple(RECEPTOR_LIGAND.items())
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif;margin:24px;color:#222}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 6px;border-bottom:2px solid #446}
h3{font-size:14px;margin:14px 0 4px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #bbb;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eef} .meta{color:#555;font-size:12px} .err{color:#a00}
.disc{background:#fff6e0;border:1px solid #e0c070;padding:8px;font-size:12px;margin:12px 0}
.tier-none{color:#070} .tier-low{color:#a60} .tier-high,.tier-very{color:#b00;font-weight:bold}
.donor{display:inline-block;margin:4px 18px 8px 0;vertical-align:top}
.tier-moderate{color:#a50} .tier-unknown{color:#555;font-style:italic}
tr.below td,tr.self td{color:#999} tr.possible td{font-style:italic}
"""


def _v(x: Any) -> str:
    return "unknown" if x in ("", None) else escape(str(x))


def _donor_picture(donor_id: str, donor_genes: frozenset[str] | None,
                   recipient_ligands: str) -> str:
    """Inline SVG: one row per donor iKIR with its ligand and what the donor cells see."""
    rlig = set(recipient_ligands.split(";")) if recipient_ligands else None
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
            has, colour, text = True, "#4a7", f"sees {lig} in recipient (inhibited)"
        else:
            has, colour, text = True, "#d33", f"recipient lacks {lig}: missing ligand"
        fill = colour if has else "#fff"
        rows.append(
            f'<circle cx="14" cy="{y - 4}" r="7" fill="{fill}" stroke="{colour}" '
            f'stroke-width="2"/><text x="28" y="{y}" font-size="12">{gene} → {lig}: '
            f"{escape(text)}</text>")
    h = 28 + len(_IKIR) * 24
    return (f'<div class="donor"><svg xmlns="http://www.w3.org/2000/svg" width="360" '
            f'height="{h}" role="img" aria-label="KIR-ligand picture of donor '
            f'{escape(donor_id)}"><text x="4" y="14" font-size="13" font-weight="bold">'
            f"Donor {escape(donor_id)}</text>{''.join(rows)}</svg></div>")


def _tier_class(tier: str) -> str:
    return "tier-" + (tier.split(" ")[0] if tier else "unknown")


def _tier_cell(v: Mapping[str, Any]) -> str:
    """The DSA tier of a donor; unknown shows its worst case."""
    tier, worst = v["dsa_tier"], v["dsa_tier_worst"]
    if tier:
        return f'<td class="{_tier_class(tier)}">{escape(tier)}</td>'
    text = f"unknown (worst case {escape(worst)})" if worst else "unknown"
    return f'<td class="tier-unknown">{text}</td>'


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
                hint = escape(h.resolution_hint()) if h.why else ""
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


def render_report(rows: Sequence[Any], *, policy: Mapping[str, Any],
                  meta: Mapping[str, Any]) -> str:
    """HTML for ranked rows (:class:`kirmatch.ranking.RankedRow`), grouped by recipient."""
    by_recipient: dict[str, list[Any]] = {}
    for r in rows:
        by_recipient.setdefault(r.assessment.recipient_id, []).append(r)
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>kirmatch donor ranking</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>kirmatch donor ranking</h1>",
        f'<p class="meta">{escape(RULES_VERSION)} · kirmatch {escape(str(meta.get("kirmatch_version", "")))}'
        f" · IPD-IMGT/HLA {escape(str(meta.get('ipd_imgt_hla', '')))}"
        f" · IPD-KIR {escape(str(meta.get('ipd_kir', '')))}"
        f" · policy <b>{escape(str(policy.get('name', '')))}</b>: "
        f"{escape(' → '.join(policy.get('criteria', [])))}</p>",
        f'<div class="disc">{escape(DISCLAIMER)}</div>',
    ]
    for rid in sorted(by_recipient):
        group = sorted(by_recipient[rid], key=lambda r: (r.rank is None, r.rank or 0,
                                                        r.assessment.donor_id))
        first_ok = next((r for r in group if r.assessment.status == "ok"), None)
        parts.append(f"<h2>Recipient {escape(rid)}</h2>")
        if first_ok is not None:
            v = first_ok.assessment.to_dict()
            parts.append(f'<p>HLA-C {_v(v["recipient_c_group"])}, HLA-B '
                         f'{_v(v["recipient_b_class"])}, ligands '
                         f'{_v(v["recipient_ligands"]) if v["recipient_ligands"] else "none or unknown"}</p>')
        parts.append("<table><tr><th>Rank</th><th>Donor</th><th>DSA tier</th><th>CF-iKIR</th>"
                     "<th>GvH ligand mismatch</th><th>B content</th><th>Age / sex / relation"
                     "</th><th>Why not higher</th></tr>")
        for r in group:
            a = r.assessment
            if a.status == "error":
                parts.append(f"<tr><td>–</td><td>{escape(a.donor_id)}</td>"
                             f'<td colspan="6" class="err">{escape(a.error)}</td></tr>')
                continue
            v = a.to_dict()
            c = r.clinical
            clin = "unknown"
            if c is not None:
                clin = " / ".join(_v(x) for x in (
                    f"{c.donor_age:g}" if c.donor_age is not None else None,
                    c.donor_sex, c.relationship))
            gvh = v["gvh_ligand_mismatch"]
            gvh_txt = (f"yes ({escape(v['gvh_mismatched_ligands'])})" if gvh is True
                       else ("no" if gvh is False else "unknown"))
            parts.append(
                f"<tr><td>{r.rank}</td><td>{escape(a.donor_id)}</td>{_tier_cell(v)}"
                f"<td>{_v(v['cf_ikir'])}</td><td>{gvh_txt}</td>"
                f"<td>{_v(v['b_content_group'])}</td><td>{clin}</td>"
                f"<td>{escape(r.rank_reason)}</td></tr>")
        parts.append("</table><h3>KIR–ligand picture (donor inhibitory KIR against the "
                     "recipient's ligands)</h3>")
        for r in group:
            a = r.assessment
            if a.status != "ok":
                continue
            cand = a.facts.get("donor_ikir")
            genes = next(iter(cand.values)) if cand is not None and len(cand.values) == 1 \
                else None
            parts.append(_donor_picture(a.donor_id, genes, a.to_dict()["recipient_ligands"]))
        parts.append(_dsa_section(group))
    parts.append(f'<p class="meta">Options: {escape(str(meta.get("options", "")))}</p>')
    parts.append("</body></html>")
    return "\n".join(parts)
