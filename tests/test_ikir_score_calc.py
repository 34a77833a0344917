"""The per-person functional iKIR columns against iKIR_SCORE_CALC (DOMAIN.md §A.21).

iKIR_SCORE_CALC (GitHub ChrisMBrooks/iKIR_SCORE_CALC, commit 1b2b1b3) documents,
in its README and ``ref_data/*.json``, a per-subject table with ``func_kir2dl1`` …
``func_kir3dl1`` (booleans), ``func_ikir_count``, ``func_ikir_score`` and
``ikir_count`` (floats). Its rules, restated here in our own words (no code is
copied):

* per allele, from the mature protein: *C1* when residues 77-80 are S-L-R-N,
  *C2* when N-L-R-K, *Bw4* when residue 80 is T or I;
* ligands of a subject: HLA-C C1, HLA-C C2, HLA-B\\*46 or \\*73 with the C1 motif,
  HLA-B Bw4, HLA-A\\*23, \\*24 or \\*32 with Bw4;
* KIR2DL1 functional (1) with C2; KIR2DL2 with C1, B\\*46-C1 or B\\*73-C1 (1),
  else with C2 (0.5); KIR2DL3 with C1, B\\*46-C1 or B\\*73-C1 (0.75); KIR3DL1 with
  HLA-B Bw4 or HLA-A Bw4 (1); the count and the score add them up; ``ikir_count``
  counts the four genes carried.

:func:`peer_row` applies those rules to residues 77-80 of the pinned release
(the best case for the peer: its own pipeline reads whatever IPD entry comes
first). On a generated cohort, every person whose values differ from kirmatch's
differs for a reason DOMAIN.md names:

* §C.1, HLA-A: Bw4 from residue 80 alone calls non-motif A\\*23/\\*24/\\*32 alleles
  (A\\*24:04, A\\*24:28, A\\*23:27 …) Bw4; kirmatch needs Leu82-Arg83 too;
* §C.1, HLA-B: the same residue-80 rule on HLA-B;
* §C.1, HLA-C: the IPD-KIR grid calls C1/C2 from residue 80 whatever residue
  77; the peer also requires S77/N77 and L78-R79;
* §C.4: B-C1 is Val76 + Asn80 on any HLA-B allele; the peer flags B\\*46 and
  B\\*73 names with S77 only, which leaves out B\\*73:01 (G77) and the rare
  B-C1 alleles of other groups.

With kirmatch's own ligand facts fed into the same rules, every person agrees.

The peer's own script (``scripts/calc_ikir_score.py``, run unmodified outside
this repository on the cohort of :func:`test_every_difference_is_a_documented_peer_defect`,
with its allele-definition file built from the pinned FASTA by its own
``compute_motif_posession``, first conventional entry of each allele, signal
peptide 24) gave the same values as :func:`peer_row` for every subject whose
alleles' first entries are full length: 2,000 of 2,000 with common alleles only
(``rare=0``), 1,936 of 2,000 in the cohort with rare alleles. The other 64 carry
an allele whose first entry is partial (exon 2-3), which the peer indexes as if
it began with the leader (§A.2: partial entries "must be aligned, never indexed
blindly"). Six of the 636 distinct alleles of that cohort have no
suffix-free entry at all (``A*24:378Q`` …), on which the peer's allele-definition
step fails. Against kirmatch, the real run agreed for 1,958 of 2,000 (common
alleles; the 42 others are B*73:01, §C.4) and 1,898 of 2,000 (rare alleles too:
46 B-C1, 67 partial entries, 1 HLA-C motif; some subjects have two causes).
"""

from __future__ import annotations

import random
from collections import Counter

import pandas as pd
import pytest

from kirmatch.persons import assess_persons

GENES = ("kir2dl1", "kir2dl2", "kir2dl3", "kir3dl1")
#: Common 2-field alleles (with the B-C1 and HLA-A Bw4 groups well represented).
COMMON = {
    "A": ["A*01:01", "A*02:01", "A*03:01", "A*11:01", "A*24:02", "A*23:01", "A*32:01",
          "A*26:01", "A*68:01", "A*25:01", "A*29:02", "A*30:01", "A*31:01", "A*33:01"],
    "B": ["B*07:02", "B*08:01", "B*44:02", "B*35:01", "B*15:01", "B*51:01", "B*57:01",
          "B*27:05", "B*13:02", "B*46:01", "B*73:01", "B*40:01", "B*18:01", "B*14:02"],
    "C": ["C*07:01", "C*07:02", "C*04:01", "C*06:02", "C*03:04", "C*05:01", "C*01:02",
          "C*02:02", "C*12:03", "C*15:02", "C*16:01", "C*08:02"],
}
#: Gene frequencies for the iKIR draw (KIR*IMP-style presence calls).
KIR_FREQ = {"kir2dl1": 0.95, "kir2dl2": 0.5, "kir2dl3": 0.9, "kir3dl1": 0.93}


def proteins(tables, locus: str) -> list[str]:
    """Every expressed 2-field protein of ``locus`` with residues 76-83 covered."""
    out = set()
    for ff in tables.hla_first_fields(locus):
        for a in tables.hla_alleles_with_prefix(f"{locus}*{ff}"):
            if a.expressed:
                out.add(a.protein)
    return sorted(p for p in out if residues(tables, p) is not None)


def residues(tables, protein: str) -> str | None:
    """Mature residues 76-83 of the first expressed allele of ``protein`` that has them."""
    for r in sorted(tables.hla_records_for_protein(protein), key=lambda r: r.allele):
        if r.expressed and r.residues:
            return r.residues
    return None


def cohort(tables, n: int, seed: int, rare: float = 0.05) -> list[dict]:
    """``n`` subjects: 2-field HLA-A/B/C (mostly common, ``rare`` of them any
    protein of the release) and iKIR presence calls."""
    rng = random.Random(seed)
    pool = {loc: proteins(tables, loc) for loc in "ABC"}
    out = []
    for i in range(n):
        row: dict = {"subject_id": f"S{i:05d}"}
        for loc in "ABC":
            for k in (1, 2):
                src = pool[loc] if rng.random() < rare else COMMON[loc]
                row[f"{loc.lower()}_{k}"] = rng.choice(src)
        for g, f in KIR_FREQ.items():
            row[g] = rng.random() < f
        out.append(row)
    return out


def peer_ligands(tables, row: dict) -> dict[str, bool]:
    """The peer's ligand possession of one subject (motifs at residues 77-80)."""
    def motif(allele: str) -> tuple[bool, bool, bool]:
        r77_80 = residues(tables, allele)[1:5]
        return r77_80 == "SLRN", r77_80 == "NLRK", r77_80[3] in "TI"

    a = [row["a_1"], row["a_2"]]
    b = [row["b_1"], row["b_2"]]
    c = [row["c_1"], row["c_2"]]
    return {
        "c1": any(motif(x)[0] for x in c), "c2": any(motif(x)[1] for x in c),
        "b_c1": any(x.startswith(("B*46", "B*73")) and motif(x)[0] for x in b),
        "b_bw4": any(motif(x)[2] for x in b),
        "a_bw4": any(x.startswith(("A*23", "A*24", "A*32")) and motif(x)[2] for x in a),
    }


def our_ligands(p: pd.Series) -> dict[str, bool]:
    """kirmatch's facts of one person, in the peer's terms (rule 3 and B-C1)."""
    lig = p["ligands"].split(";")
    return {"c1": "C1" in lig, "c2": "C2" in lig, "b_c1": p["b_c1"] == "true",
            "b_bw4": p["b_class"].startswith("Bw4"), "a_bw4": p["hla_a_bw4"] == "true"}


def peer_row(kir: dict[str, bool], lig: dict[str, bool]) -> dict[str, float]:
    """The peer's documented functional iKIR columns from gene presence and ligands."""
    c1 = lig["c1"] or lig["b_c1"]
    func = {
        "kir2dl1": 1.0 if lig["c2"] else 0.0,
        "kir2dl2": 1.0 if c1 else (0.5 if lig["c2"] else 0.0),
        "kir2dl3": 0.75 if c1 else 0.0,
        "kir3dl1": 1.0 if (lig["b_bw4"] or lig["a_bw4"]) else 0.0,
    }
    out = {f"func_{g}": float(kir[g] and func[g] > 0) for g in GENES}
    out["func_ikir_count"] = sum(out.values())
    out["func_ikir_score"] = sum(func[g] for g in GENES if kir[g])
    out["ikir_count"] = float(sum(kir[g] for g in GENES))
    return out


def ours(p: pd.Series) -> dict[str, float]:
    """kirmatch's columns in the peer's form (a weight > 0 is a functional gene)."""
    out = {f"func_{g}": float(float(p[f"func_{g}"]) > 0) for g in GENES}
    for c in ("func_ikir_count", "func_ikir_score", "ikir_count"):
        out[c] = float(p[c])
    return out


def causes(peer: dict[str, bool], mine: dict[str, bool]) -> set[str]:
    names = {"a_bw4": "C.1 HLA-A Bw4", "b_bw4": "C.1 HLA-B Bw4", "c1": "C.1 HLA-C",
             "c2": "C.1 HLA-C", "b_c1": "C.4 B-C1"}
    return {names[k] for k in peer if peer[k] != mine[k]}


def genotypes(rows: list[dict]) -> pd.DataFrame:
    """The subjects as a kirmatch genotypes table."""
    return pd.DataFrame({
        "sample_id": [r["subject_id"] for r in rows],
        "hla": ["^".join(f"{r[f'{x}_1']}+{r[f'{x}_2']}" for x in "abc") for r in rows],
        "kir": ["+".join(g.upper() for g in GENES if r[g]) or "KIR2DL4" for r in rows]})


def compare(tables, rows: list[dict]) -> tuple[int, Counter[str], list[str]]:
    """Agreeing subjects, the causes of the differences, and the differing ids."""
    got = assess_persons(genotypes(rows), tables=tables)
    assert (got["status"] == "ok").all()
    agree = 0
    why: Counter[str] = Counter()
    differing = []
    for r, (_, p) in zip(rows, got.iterrows(), strict=True):
        kir = {g: r[g] for g in GENES}
        peer_lig, my_lig = peer_ligands(tables, r), our_ligands(p)
        mine = ours(p)
        # the same rules on kirmatch's facts give kirmatch's values, always
        assert peer_row(kir, my_lig) == mine, r["subject_id"]
        if peer_row(kir, peer_lig) == mine:
            agree += 1
            continue
        found = causes(peer_lig, my_lig)
        assert found, (r["subject_id"], peer_row(kir, peer_lig), mine)
        why.update(found)
        differing.append(r["subject_id"])
    return agree, why, differing


def test_every_difference_is_a_documented_peer_defect(tables) -> None:
    """2,000 subjects of common alleles, 5 % of alleles drawn from the whole
    release: every difference has a documented cause; the figures are pinned
    for the record."""
    agree, why, _ = compare(tables, cohort(tables, 2000, seed=21))
    assert agree == 1962
    # B*73:01 is one of the 14 common HLA-B alleles drawn here, far more often than
    # in any population: most differences are it (§C.4); one rare HLA-C allele
    # with Asn80 but not Ser77 is C1 for kirmatch and neither C1 nor C2 for the peer.
    assert dict(why) == {"C.4 B-C1": 38, "C.1 HLA-C": 1}


def test_common_alleles_only_differ_through_b73(tables) -> None:
    """Without the rare draw, the only difference left is B*73:01 (§C.4: its
    Gly77 fails the peer's C1 motif)."""
    rows = cohort(tables, 500, seed=4, rare=0.0)
    _, why, differing = compare(tables, rows)
    by_id = {r["subject_id"]: r for r in rows}
    assert differing and set(why) == {"C.4 B-C1"}
    assert all("B*73:01" in (by_id[i]["b_1"], by_id[i]["b_2"]) for i in differing)


ALL = dict.fromkeys(GENES, True)


@pytest.mark.parametrize(("a", "b", "c", "column", "cause"), [
    # §C.1: non-motif A*24:04 / A*24:28 / A*23:27 have Ile/Thr80 (peer: Bw4)
    (("A*24:04", "A*01:01"), ("B*07:02", "B*08:01"), ("C*07:01", "C*07:02"),
     "func_kir3dl1", "C.1 HLA-A Bw4"),
    (("A*24:28", "A*01:01"), ("B*07:02", "B*08:01"), ("C*07:01", "C*07:02"),
     "func_kir3dl1", "C.1 HLA-A Bw4"),
    (("A*23:27", "A*01:01"), ("B*07:02", "B*08:01"), ("C*07:01", "C*07:02"),
     "func_kir3dl1", "C.1 HLA-A Bw4"),
    # §C.4: B*73:01 (Gly77) and B*07:13 (another group) carry B-C1
    (("A*01:01", "A*02:01"), ("B*73:01", "B*08:01"), ("C*06:02", "C*05:01"),
     "func_kir2dl3", "C.4 B-C1"),
    (("A*01:01", "A*02:01"), ("B*07:13", "B*08:01"), ("C*06:02", "C*05:01"),
     "func_kir2dl3", "C.4 B-C1"),
])
def test_named_defects(tables, a, b, c, column: str, cause: str) -> None:
    r = {"subject_id": "X", "a_1": a[0], "a_2": a[1], "b_1": b[0], "b_2": b[1],
         "c_1": c[0], "c_2": c[1], **ALL}
    p = assess_persons(genotypes([r]), tables=tables).iloc[0]
    peer = peer_row(ALL, peer_ligands(tables, r))
    assert peer[column] != ours(p)[column]
    assert causes(peer_ligands(tables, r), our_ligands(p)) == {cause}
