"""Rule 16 (DOMAIN.md §A.19): HLA-level assessment of a related donor.

Every worked check of §A.19 through the library, ``pair --json``, ``batch`` and
``rank``; allele identity at the antigen-recognition site (P groups), null
alleles, homozygous and single typings, rule-2 expansion and propagation, the
``not_haploidentical`` warning and class II typing errors.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kirmatch import Options, assess_pair
from kirmatch.cli.main import app

runner = CliRunner()

#: (id, recipient HLA, donor HLA, expected cells) — DOMAIN.md §A.19 worked checks.
WORKED: list[tuple[str, str, str, dict[str, str]]] = [
    ("drb1_mm_dqb1_match", "DRB1*15:01+DRB1*04:01^DQB1*06:02+DQB1*03:02",
     "DRB1*15:01+DRB1*04:04^DQB1*06:02+DQB1*03:02",
     {"drb1_mm_dqb1_match": "true", "hla_mm_gvh_DRB1": "1", "hla_mm_hvg_DRB1": "1",
      "hla_mm_gvh_DQB1": "0", "hla_mm_hvg_DQB1": "0"}),
    ("dpb1_nonpermissive_hvg", "DPB1*04:01+DPB1*04:01", "DPB1*04:01+DPB1*09:01",
     {"dpb1_tce": "non-permissive HvG", "hla_mm_gvh_DPB1": "0", "hla_mm_hvg_DPB1": "1"}),
    ("dpb1_nonpermissive_gvh", "DPB1*04:01+DPB1*09:01", "DPB1*04:01+DPB1*04:01",
     {"dpb1_tce": "non-permissive GvH"}),
    ("dpb1_permissive", "DPB1*04:01+DPB1*02:01", "DPB1*04:01+DPB1*04:02",
     {"dpb1_tce": "permissive"}),
    ("hla_a_counts", "A*01:01+A*02:01", "A*01:01+A*01:01",
     {"hla_mm_gvh_A": "1", "hla_mm_hvg_A": "0"}),
    ("b_leader_match", "B*07:02+B*44:02", "B*07:02+B*35:01",
     {"recipient_b_leader": "M/T", "donor_b_leader": "M/T", "b_leader_match": "true"}),
    ("b_leader_mismatch", "B*07:02+B*44:02", "B*08:01+B*07:02",
     {"recipient_b_leader": "M/T", "donor_b_leader": "M/M", "b_leader_match": "false"}),
]
FULL_R = ("A*01:01+A*02:01^B*07:02+B*44:02^C*07:02+C*05:01^DRB1*15:01+DRB1*04:01^"
          "DQB1*06:02+DQB1*03:02^DPB1*04:01+DPB1*02:01")


def _row(r: str, d: str, **opts: Any) -> dict[str, str]:
    return assess_pair({"id": "R", "hla": r}, {"id": "D", "hla": d},
                       Options(**opts)).to_row()


@pytest.mark.parametrize("case", [w[0] for w in WORKED])
def test_worked_checks_library(case: str) -> None:
    _, r, d, exp = next(w for w in WORKED if w[0] == case)
    row = _row(r, d)
    assert {k: row[k] for k in exp} == exp


@pytest.mark.parametrize("case", [w[0] for w in WORKED])
def test_worked_checks_pair_json(case: str) -> None:
    _, r, d, exp = next(w for w in WORKED if w[0] == case)
    res = runner.invoke(app, ["pair", "--recipient-hla", r, "--donor-hla", d, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    cells = {k: ("true" if v is True else "false" if v is False else str(v))
             for k, v in doc.items() if k in exp}
    assert cells == exp


def _files(tmp_path: Path, cases: list[tuple[str, str, str]]) -> tuple[Path, Path]:
    geno = tmp_path / "g.csv"
    pairs = tmp_path / "p.csv"
    with open(geno, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sample_id", "hla", "kir"])
        for case, r, d in cases:
            w.writerows([[f"R_{case}", r, ""], [f"D_{case}", d, ""]])
    with open(pairs, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["recipient_id", "donor_id"])
        w.writerows([f"R_{c}", f"D_{c}"] for c, _, _ in cases)
    return geno, pairs


def _batch(tmp_path: Path, geno: Path, pairs: Path) -> list[dict[str, str]]:
    """``kirmatch batch`` on the files; the output rows."""
    out = tmp_path / "o.csv"
    res = runner.invoke(app, ["batch", "--genotypes", str(geno), "--pairs", str(pairs),
                              "--output", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    with open(out, newline="") as fh:
        return list(csv.DictReader(fh))


def test_worked_checks_batch_and_rank(tmp_path: Path) -> None:
    geno, pairs = _files(tmp_path, [(c, r, d) for c, r, d, _ in WORKED])
    rows = _batch(tmp_path, geno, pairs)
    ranked = runner.invoke(app, ["rank", "-g", str(geno), "-p", str(pairs), "--json"])
    assert ranked.exit_code == 0, ranked.output
    rank_rows = json.loads(ranked.stdout)["results"]
    for (case, _, _, exp), row, rrow in zip(WORKED, rows, rank_rows, strict=True):
        assert {k: row[k] for k in exp} == exp, case
        assert {k: rrow[k] for k in exp} == exp, case


def test_b_relation_identical_haploidentical_not(tmp_path: Path) -> None:
    same = _row(FULL_R, FULL_R)
    assert (same["hla_relation"], same["hla_mm_gvh"], same["hla_mm_hvg"]) == (
        "identical", "0", "0")
    haplo = ("A*01:01+A*24:02^B*07:02+B*35:01^C*07:02+C*04:01^DRB1*15:01+DRB1*11:01^"
             "DQB1*06:02+DQB1*03:01^DPB1*04:01+DPB1*02:01")
    h = _row(FULL_R, haplo)
    assert (h["hla_relation"], h["hla_mm_gvh"], h["hla_mm_hvg"], h["dpb1_tce"]) == (
        "haploidentical", "5", "5", "match")
    assert "not_haploidentical" not in h["warnings"]
    stranger = ("A*03:01+A*24:02^B*08:01+B*35:01^C*07:01+C*04:01^DRB1*03:01+DRB1*11:01^"
                "DQB1*02:01+DQB1*03:01")
    n = _row(FULL_R, stranger)
    assert (n["hla_relation"], n["hla_mm_gvh"], n["hla_mm_hvg"]) == (
        "not haploidentical", "10", "10")
    assert "not_haploidentical(donor)" in n["warnings"].split(";")
    # DPB1 untyped in the donor: totals and relation do not need it
    assert n["dpb1_tce"] == "" and "unknown(dpb1_tce: hla_untyped)" in n["warnings"]


def test_ars_identity_p_groups_g_groups_and_nulls() -> None:
    # A*02:09 is in A*02:01P: the same antigen-recognition site, no mismatch
    p = _row("A*02:01+A*01:01", "A*02:09+A*01:01")
    assert (p["hla_mm_gvh_A"], p["hla_mm_hvg_A"]) == ("0", "0")
    g = _row("DRB1*15:01+DRB1*04:01", "DRB1*15:01:01G+DRB1*04:01")
    assert (g["hla_mm_gvh_DRB1"], g["hla_mm_hvg_DRB1"]) == ("0", "0")
    # a null allele is absent: nothing to mismatch in either direction
    n = _row("A*01:01:01:02N+A*02:01", "A*02:01+A*02:01")
    assert (n["hla_mm_gvh_A"], n["hla_mm_hvg_A"]) == ("0", "0")
    n2 = _row("A*02:01+A*02:01", "A*01:01:01:02N+A*02:01")
    assert (n2["hla_mm_gvh_A"], n2["hla_mm_hvg_A"]) == ("0", "0")
    # homozygous typing (one allele given): both slots
    h = _row("A*02:01", "A*02:01+A*01:01")
    assert (h["hla_mm_gvh_A"], h["hla_mm_hvg_A"]) == ("0", "1")
    assert "single_allele(recipient A)" in h["warnings"]


def test_expansion_and_propagation() -> None:
    # an allele list whose members share the ARS with the other side's allele
    agree = _row("A*02:01/A*02:09+A*01:01", "A*02:01+A*01:01")
    assert (agree["hla_mm_gvh_A"], agree["hla_mm_hvg_A"]) == ("0", "0")
    # XX: A*02:01 or another A*02 protein: the count varies, so it is unknown ...
    xx = _row("A*02:XX+A*01:01", "A*02:01+A*01:01")
    assert xx["hla_mm_gvh_A"] == "" and "unknown(hla_mm_gvh_A: ambiguous_typing)" in \
        xx["warnings"]
    # ... but the donor shares A*01:01 whatever the reading: haploidentical at A
    typed = "^B*07:02+B*44:02^C*07:02+C*05:01^DRB1*15:01+DRB1*04:01^DQB1*06:02+DQB1*03:02"
    rel = _row("A*02:XX+A*01:01" + typed, "A*24:02+A*01:01" + typed)
    assert rel["hla_relation"] == "haploidentical"
    # single_allele=unknown: the second allele could be anything
    s = _row("DQB1*06:02", "DQB1*06:02+DQB1*03:02", single_allele="unknown")
    assert s["hla_mm_gvh_DQB1"] == "" and "unknown(hla_mm_gvh_DQB1: single_allele)" in \
        s["warnings"]


def test_an_allele_list_leaves_its_null_alleles_out() -> None:
    """§A.19 expands a typing below the allele as rule 2 does, and rule 2
    (§A.3 item 3) leaves nulls out: ``B*07:02/B*07:44N`` reads as B*07:02 (as
    the B leader and the ligands read it, and as its G group B*07:02:01G, which
    holds B*07:44N, does), with ``null_in_expansion``. Only null alleles:
    absent. An absent gene (NNNN) stays a reading (see the DRB3 tests)."""
    typed = "^A*02:01+A*01:01^C*07:02+C*05:01^DRB1*15:01+DRB1*04:01^DQB1*06:02+DQB1*03:02"
    rec = "B*07:02+B*44:02" + typed
    for donor in ("B*07:02/B*07:44N+B*44:02", "B*07:02:01G+B*44:02"):
        row = _row(rec, donor + typed)
        assert (row["hla_mm_gvh_B"], row["hla_mm_hvg_B"], row["hla_relation"]) == \
            ("0", "0", "identical"), donor
    listed = _row(rec, "B*07:02/B*07:44N+B*44:02" + typed)
    assert listed["donor_b_leader"] == "M/T" and listed["b_leader_match"] == "true"
    # class II: the warning names the list (§A.17), as the ligands' does at class I
    d = _row("DRB1*15:01+DRB1*04:01", "DRB1*15:01/DRB1*15:17N+DRB1*04:01")
    assert (d["hla_mm_gvh_DRB1"], d["hla_mm_hvg_DRB1"]) == ("0", "0")
    assert "null_in_expansion(donor DRB1*15:01/DRB1*15:17N)" in d["warnings"].split(";")
    # a list of null alleles only is absent: nothing to mismatch on that slot
    nulls = _row("DRB1*15:01+DRB1*04:01", "DRB1*15:17N/DRB1*15:50N+DRB1*04:01")
    assert (nulls["hla_mm_gvh_DRB1"], nulls["hla_mm_hvg_DRB1"]) == ("1", "0")


def test_optional_loci_compared_only_when_typed() -> None:
    both = _row("DRB3*01:01+DRB3*02:02", "DRB3*01:01+DRB3*01:01")
    assert (both["hla_mm_gvh_DRB3"], both["hla_mm_hvg_DRB3"]) == ("1", "0")
    # typed in one person only: not compared (§A.19 "when both are typed"): empty
    # cells, and no unknown warning, since nothing is unknown
    one = _row("DRB3*01:01+DRB3*02:02", "DRB1*15:01+DRB1*04:01")
    assert (one["hla_mm_gvh_DRB3"], one["hla_mm_hvg_DRB3"]) == ("", "")
    assert "DRB3" not in one["warnings"]
    # typed in both but ambiguous: unknown, warned
    amb = _row("DRB3*01:01+DRB3*02:02", "DRB3*01:XX+DRB3*02:02")
    assert amb["hla_mm_gvh_DRB3"] == "" and \
        "unknown(hla_mm_gvh_DRB3: ambiguous_typing)" in amb["warnings"]


def test_class_ii_unknown_allele_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="DRB1\\*99:99"):
        _row("DRB1*99:99+DRB1*04:01", "DRB1*15:01+DRB1*04:01")
    geno, pairs = _files(tmp_path, [("bad", "A*01:01+A*02:01^DRB1*99:99+DRB1*04:01",
                                     "A*01:01+A*02:01"),
                                    ("good", "A*01:01+A*02:01", "A*01:01+A*02:01")])
    rows = _batch(tmp_path, geno, pairs)
    assert rows[0]["status"] == "error" and "DRB1*99:99" in rows[0]["error"]
    assert rows[0]["error"].startswith("unknown_allele:")
    assert rows[1]["status"] == "ok" and rows[1]["hla_mm_gvh_A"] == "0"


def test_absent_drb345_gene_nnnn(tmp_path: Path) -> None:
    """``DRB3*NNNN`` is the absent gene (WMDA), a typing: one DRB3 gene, or none;
    never read as untyped or homozygous (review finding)."""
    one = _row("DRB1*03:01+DRB1*08:01^DRB3*01:01+DRB3*NNNN",
               "DRB1*11:01+DRB1*13:01^DRB3*02:02+DRB3*03:01")
    assert (one["hla_mm_gvh_DRB3"], one["hla_mm_hvg_DRB3"]) == ("1", "2")
    assert "single_allele(recipient DRB3)" not in one["warnings"]
    none = _row("DRB1*01:01+DRB1*08:01^DRB3*NNNN+DRB3*NNNN",
                "DRB1*11:01+DRB1*13:01^DRB3*01:01+DRB3*02:02")
    assert (none["hla_mm_gvh_DRB3"], none["hla_mm_hvg_DRB3"]) == ("0", "2")
    # the same people in a genotypes file, through batch (no error row)
    geno, pairs = _files(tmp_path, [("nnnn", "A*01:01+A*02:01^DRB3*NNNN+DRB3*NNNN",
                                     "A*01:01+A*02:01^DRB3*01:01+DRB3*NNNN")])
    rows = _batch(tmp_path, geno, pairs)
    assert rows[0]["status"] == "ok", rows[0]["error"]
    assert (rows[0]["hla_mm_gvh_DRB3"], rows[0]["hla_mm_hvg_DRB3"]) == ("0", "1")


def test_four_digit_first_field_dpb1() -> None:
    """DPB1 has alleles with a four-digit first field (DPB1*1000:01, in DPB1*03:01P)."""
    row = _row("DPB1*03:01+DPB1*04:01", "DPB1*1000:01+DPB1*04:01")
    assert (row["hla_mm_gvh_DPB1"], row["hla_mm_hvg_DPB1"], row["dpb1_tce"]) == (
        "0", "0", "match")


def test_an_untyped_locus_does_not_hide_what_another_decides() -> None:
    """§A.0: a value is reported when no reading of the unknown input could change
    it: no HLA-A allele shared makes the donor not haploidentical whatever the
    untyped class II loci hold; a DQB1 mismatch makes drb1_mm_dqb1_match false
    with DRB1 untyped."""
    r = _row("A*01:01+A*02:01^B*07:02+B*08:01", "A*03:01+A*11:01^B*07:02+B*44:02")
    assert r["hla_relation"] == "not haploidentical"
    assert "not_haploidentical(donor)" in r["warnings"].split(";")
    assert r["hla_mm_gvh"] == "" and "unknown(hla_mm_gvh: hla_untyped)" in r["warnings"]
    d = _row("DQB1*06:02+DQB1*03:02", "DQB1*05:01+DQB1*02:01")
    assert d["drb1_mm_dqb1_match"] == "false"
    # XX at both slots: too many readings to enumerate, still nothing shared
    x = _row("A*01:01+A*02:01", "A*03:XX+A*11:XX")
    assert x["hla_mm_gvh_A"] == ""         # unknown, never guessed



def test_an_untyped_locus_is_the_reason_before_an_ambiguous_one() -> None:
    """§A.19: an untyped locus makes the totals unknown with hla_untyped. Another
    locus typed at low resolution also makes them vary, but typing it would not
    make them known: the reason names the untyped locus (what settles it)."""
    r = ("A*02:XX+A*01:01^B*07:02+B*08:01^C*07:01+C*07:02^DRB1*01:01+DRB1*03:01"
         "^DQB1*02:01+DQB1*05:01")
    d = "A*02:01+A*01:01^B*07:02+B*08:01^C*07:01+C*07:02^DQB1*02:01+DQB1*05:01"
    row = _row(r, d)
    assert row["hla_mm_gvh"] == "" and row["hla_mm_hvg"] == ""
    warnings = row["warnings"].split(";")
    assert "unknown(hla_mm_gvh: hla_untyped)" in warnings
    assert "unknown(hla_mm_hvg: hla_untyped)" in warnings
    assert "unknown(hla_relation: hla_untyped)" in warnings
    assert "unknown(hla_mm_gvh_A: ambiguous_typing)" in warnings   # A itself varies


def test_a_slash_list_with_nnnn_in_a_person_list_is_kept() -> None:
    """make_person with an allele list: 'DRB3*01:01/DRB3*NNNN' is a typing (DRB3*01:01
    or no DRB3 gene), read as the GL grammar reads it, never dropped as a
    placeholder (which made the other DRB3 allele homozygous)."""
    from kirmatch import make_person

    listed = make_person("P", ["DRB1*03:01", "DRB1*11:01", "DRB3*02:02",
                               "DRB3*01:01/DRB3*NNNN"])
    gl = make_person("P", "DRB1*03:01+DRB1*11:01^DRB3*02:02+DRB3*01:01/DRB3*NNNN")
    assert listed.hla == gl.hla
    donor = {"id": "D", "hla": "DRB1*03:01+DRB1*11:01^DRB3*01:01+DRB3*02:02"}
    row = assess_pair(listed, donor).to_row()
    assert row["hla_mm_hvg_DRB3"] == ""      # 0 or 1: DRB3*01:01 may be absent
    assert "unknown(hla_mm_hvg_DRB3: ambiguous_typing)" in row["warnings"].split(";")

_IDS = ["", "A*01:01", "A*02:01", "A*03:01", "A*11:01", "A*24:02", "A*26:01", "A*29:02",
        "A*30:01", "A*31:01", "A*32:01", "A*33:01", "A*68:01"]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_fast_comparisons_equal_every_combination(data: st.DataObject) -> None:
    """compare_locus' shortcuts (one side with one reading; arrays with foreign
    alleles collapsed) give exactly the outcomes of comparing every recipient
    reading with every donor reading."""
    from kirmatch.hlamatch import _compare, _compare_arrays, _compare_one, compare_locus
    from kirmatch.propagation import Cand

    def readings(min_size: int, max_size: int) -> frozenset[tuple[str, str]]:
        pairs = st.tuples(st.sampled_from(_IDS), st.sampled_from(_IDS)).map(
            lambda p: tuple(sorted(p)))
        return frozenset(data.draw(st.lists(pairs, min_size=min_size, max_size=max_size)))

    shape = data.draw(st.sampled_from(["one-donor", "one-recipient", "many", "large"]))
    big = 91 if shape == "large" else 40
    r = readings(1, 1) if shape == "one-recipient" else readings(2, big)
    d = readings(1, 1) if shape == "one-donor" else readings(2, big)
    rc, dc = Cand.any_of(r, "ambiguous_typing"), Cand.any_of(d, "ambiguous_typing")
    every = frozenset(_compare(x, y) for x in r for y in d)
    assert compare_locus(rc, dc).values == every
    # each shortcut on its own, whatever the size compare_locus would use it at
    if len(d) == 1:
        assert _compare_one(rc, next(iter(d)), recipient_varies=True) == every
    if len(r) == 1:
        assert _compare_one(dc, next(iter(r)), recipient_varies=False) == every
    codes = {x: i for i, x in enumerate(_IDS)}      # "" is 0: absent, as _code codes it
    arr = [np.array([[codes[a], codes[b]] for a, b in sorted(side)], np.int64)
           for side in (r, d)]
    assert _compare_arrays(*arr) == every


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_interchangeable_identities_keep_every_outcome(data: st.DataObject) -> None:
    """Readings shaped as low-resolution typings are (unions of) products of
    two allele sets, so many identities are interchangeable; restricting each
    class to four representatives (``_reduced``) keeps exactly the outcomes of
    comparing every recipient reading with every donor reading."""
    from kirmatch.hlamatch import ReadingSet, _compare, _compare_arrays, _reduced, compare_locus
    from kirmatch.propagation import Cand

    pool = ["", *(f"A*{i:02d}:01" for i in range(1, 15))]
    subsets = st.frozensets(st.sampled_from(pool), min_size=1, max_size=10)

    def readings() -> frozenset[tuple[str, str]]:
        slots = tuple((data.draw(subsets), data.draw(subsets))
                      for _ in range(data.draw(st.integers(1, 2))))   # typing alternatives
        out = ReadingSet.of(slots)
        assert out == {(x, y) if x <= y else (y, x) for a, b in slots for x in a for y in b}
        # the slots (as locus_readings keeps them) or the plain set of readings
        return out if data.draw(st.booleans()) else frozenset(out)

    r, d = readings(), readings()
    rc, dc = Cand(r, "ambiguous_typing"), Cand(d, "ambiguous_typing")
    every = frozenset(_compare(x, y) for x in r for y in d)
    kept_r, kept_d = _reduced(rc, dc)
    assert _compare_arrays(kept_r, kept_d) == every
    assert len(kept_r) <= len(r) and len(kept_d) <= len(d)
    assert compare_locus(rc, dc).values == every


def test_interchangeable_identities_are_dropped() -> None:
    """First-field typings against each other: hundreds of readings each side,
    a handful of representatives compared."""
    from kirmatch.hlamatch import _compare, _compare_arrays, _reduced
    from kirmatch.propagation import Cand

    twos = [f"A*02:{i:02d}" for i in range(1, 41)]
    r = frozenset((x, "A*24:02") for x in twos)            # A*02 + A*24:02
    d = frozenset((x, "A*01:01") for x in twos[10:])       # A*02 (some) + A*01:01
    rc, dc = Cand.any_of(r, "ambiguous_typing"), Cand.any_of(d, "ambiguous_typing")
    kept_r, kept_d = _reduced(rc, dc)
    # classes: shared A*02s, recipient-only A*02s, and each fixed allele
    assert len(kept_r) == 8 and len(kept_d) == 4
    every = {_compare(x, y) for x in r for y in d}
    assert len(every) == 2          # the A*02 shared or not; A*24:02, A*01:01 never
    assert _compare_arrays(kept_r, kept_d) == every


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_compare_many_equals_one_comparison_per_pair(data: st.DataObject) -> None:
    """The engine compares many locus pairs at once (``compare_many``: single
    readings in numpy, the rest one by one); each result is the Cand that
    compare_locus / compare_optional gives for that pair."""
    from kirmatch.hlamatch import compare_locus, compare_many, compare_optional
    from kirmatch.propagation import Cand

    reading = st.tuples(st.sampled_from(_IDS), st.sampled_from(_IDS)).map(
        lambda p: tuple(sorted(p)))
    cand = st.one_of(
        reading.map(Cand.of),
        st.sets(reading, min_size=2, max_size=6).map(
            lambda v: Cand.any_of(v, "ambiguous_typing")),
        st.sampled_from([Cand(frozenset({None}), "hla_untyped"),
                         Cand(frozenset({None}), "mac_unavailable")]))
    pairs = data.draw(st.lists(st.tuples(cand, cand), max_size=12))
    rs, ds = [r for r, _ in pairs], [d for _, d in pairs]
    assert compare_many(rs, ds) == [compare_locus(r, d) for r, d in pairs]
    assert compare_many(rs, ds, optional=True) == [compare_optional(r, d) for r, d in pairs]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_compare_many_one_reading_against_many(data: st.DataObject) -> None:
    """A single reading against a typing of more than 64 readings, as
    ``compare_many`` meets them (``_compare_with_one``: outcomes kept per class
    key of the reading in the typing, shared by the pairs of one typing). Each
    result must be every outcome of comparing the typing's readings with the
    reading (brute force), in either direction, with the typing's reason when
    it varies; typings as slots and as plain sets, readings inside and outside
    them, absent and homozygous."""
    from kirmatch.hlamatch import ReadingSet, _compare, compare_many
    from kirmatch.propagation import Cand

    pool = ["", *(f"A*{i:02d}:01" for i in range(1, 20))]
    subsets = st.frozensets(st.sampled_from(pool), min_size=12, max_size=20)

    def typing(reason: str) -> Cand[tuple[str, str]]:
        slots = tuple((data.draw(subsets), data.draw(subsets))
                      for _ in range(data.draw(st.integers(1, 2))))
        values = ReadingSet.of(slots)
        if data.draw(st.booleans()):
            values = frozenset(values)
        return Cand(values, reason)

    typings = [typing(f"ambiguous_typing{k}") for k in range(data.draw(st.integers(1, 3)))]
    assert all(len(t.values) > 64 for t in typings)
    reading = st.one_of(st.tuples(st.sampled_from(pool), st.sampled_from(pool)),
                        st.sampled_from(pool).map(lambda x: (x, x))).map(
        lambda p: Cand.of(tuple(sorted(p))))
    pairs = data.draw(st.lists(st.tuples(st.sampled_from(typings), reading, st.booleans()),
                               min_size=1, max_size=40))
    rs = [t if varies else one for t, one, varies in pairs]
    ds = [one if varies else t for t, one, varies in pairs]
    got = compare_many(rs, ds)
    for (t, _, _), r, d, cand in zip(pairs, rs, ds, got, strict=True):
        want = Cand.any_of({_compare(x, y) for x in r.values for y in d.values}, t.reason)
        assert cand == want, (r, d)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_comparisons_with_one_reading_kept_per_class(data: st.DataObject) -> None:
    """A typing with many readings compared with many single readings: the
    outcomes are kept per class of the single reading's alleles
    (``_compare_with_one``); each must still equal comparing every reading."""
    from kirmatch.hlamatch import ReadingSet, _compare, compare_locus
    from kirmatch.propagation import Cand

    pool = ["", *(f"A*{i:02d}:01" for i in range(1, 24))]
    # over 64 readings: fewer are compared one by one (compare_locus)
    subsets = st.frozensets(st.sampled_from(pool), min_size=12, max_size=18)
    slots = tuple((data.draw(subsets), data.draw(subsets))
                  for _ in range(data.draw(st.integers(1, 2))))
    many = ReadingSet.of(slots)     # compared slot by slot, or reading by reading:
    mc = Cand(many if data.draw(st.booleans()) else frozenset(many), "ambiguous_typing")
    wide = [*pool, "A*80:01", "A*81:01"]            # alleles the typing lacks too
    ones = data.draw(st.lists(st.tuples(st.sampled_from(wide), st.sampled_from(wide)).map(
        lambda p: tuple(sorted(p))), min_size=1, max_size=15))
    for x, y in ones:
        for one in ((x, y), (x, x), (y, y)):       # homozygous ones are kept apart
            oc = Cand.of(one)
            assert compare_locus(mc, oc).values == {_compare(m, one) for m in many}
            assert compare_locus(oc, mc).values == {_compare(one, m) for m in many}


def test_representatives_of_many_classes() -> None:
    """Reading sets with many classes (over 64 pairs of classes: ``_reduced``
    groups the identities in one pass instead of intersecting class by class)
    still keep several members of a class where an outcome needs them: here
    sharing one allele and not the other (1 GvH, 1 HvG, shared) needs three
    different alleles of the class both sides hold."""
    from kirmatch.hlamatch import (
        LocusComparison,
        _classes,
        _compare,
        _compare_arrays,
        _reduced,
    )
    from kirmatch.propagation import Cand

    both = [f"A*01:{i:02d}" for i in range(1, 7)]         # one class on each side
    within = {(x, y) for x in both for y in both if x <= y}

    def side(tag: str) -> Cand[tuple[str, str]]:
        lone = {(f"A*{tag}{i}:01", f"B*{tag}{i}:01") for i in range(9)}   # 18 classes
        return Cand.any_of(within | lone, "ambiguous_typing")

    rc, dc = side("2"), side("3")
    assert len(set(_classes(rc).class_of.values())) * \
        len(set(_classes(dc).class_of.values())) > 64
    every = frozenset(_compare(x, y) for x in rc.values for y in dc.values)
    assert LocusComparison(1, 1, True) in every
    assert _compare_arrays(*_reduced(rc, dc)) == every


def test_low_resolution_readings_keep_their_slots() -> None:
    """locus_readings keeps the sets a typing's readings are formed from
    (:class:`ReadingSet`), which the comparisons use slot by slot; the set
    equals every (first, second) of them, survives pickling (Dask workers) and
    gives the same comparisons as the plain set of readings."""
    import pickle

    from kirmatch.hla import parse_hla_genotype
    from kirmatch.hlamatch import ReadingSet, compare_locus, locus_readings
    from kirmatch.propagation import Cand
    from kirmatch.tables import load_reference_tables

    t = load_reference_tables()
    low = locus_readings(parse_hla_genotype("A*02:XX+A*24:02").locus("A"), "A", t).cand
    assert isinstance(low.values, ReadingSet) and len(low.values.slots) == 1
    first, second = low.values.slots[0]
    assert len(low.values) == len({tuple(sorted((x, y))) for x in first for y in second}) > 64
    back = pickle.loads(pickle.dumps(low))
    assert back == low and back.values.slots == low.values.slots
    plain = Cand(frozenset(low.values), low.reason)
    for other in ("A*02:01+A*24:02", "A*02:01+A*02:01", "A*01:01+A*03:01", "A*24+A*01:01"):
        o = locus_readings(parse_hla_genotype(other).locus("A"), "A", t).cand
        for r, d in ((low, o), (o, low)):
            want = compare_locus(plain if r is low else r, plain if d is low else d)
            assert compare_locus(r, d) == want
