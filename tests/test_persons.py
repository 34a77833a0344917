"""Rule 18 (DOMAIN.md §A.21): the per-person table, ``kirmatch persons`` and
:func:`kirmatch.persons.assess_persons`.

The columns are the registry's person-scope models, evaluated by the batch
engine from the same person facts as the pair models, so every column that a
pair column also reports must agree with the person paired with itself; the
hand-worked rows pin the new columns (B-C1, A3/A11, HLA-A Bw4, KIR3DL1 classes,
HLA-B leader, the functional iKIR weights) to their rules.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kirmatch import Options
from kirmatch.batch import assess_pairs
from kirmatch.engine import Engine
from kirmatch.errors import UsageError
from kirmatch.people import people_from_table, table_from_pandas
from kirmatch.persons import PERSON_COLUMNS, assess_persons, run_persons
from kirmatch.registry import PERSON_MODELS

REPO = Path(__file__).resolve().parents[1]
READERS = REPO / "tests" / "data" / "readers"

#: DOMAIN.md §A.21, transcribed.
A21 = [
    "sample_id", "status", "error", "warnings", "c_group", "b_class", "ligands", "b_c1",
    "a3a11", "hla_a_bw4", "kir_genotype", "cen_motif", "tel_motif", "b_content_score",
    "b_content_group", "kir3dl1_classes", "kir2dl1_245", "b_leader", "func_kir2dl1",
    "func_kir2dl2", "func_kir2dl3", "func_kir3dl1", "func_ikir_count", "func_ikir_score",
    "ikir_count"
]


def table(rows: list[tuple[str, str, str]], **opts) -> pd.DataFrame:
    g = pd.DataFrame(rows, columns=["sample_id", "hla", "kir"], dtype="str")
    return assess_persons(g, Options(**opts))


def one(hla: str, kir: str = "", **opts) -> dict[str, str]:
    return table([("P", hla, kir)], **opts).iloc[0].to_dict()


def test_columns_are_a21() -> None:
    assert list(PERSON_COLUMNS) == A21
    assert {m.scope for m in PERSON_MODELS} == {"person"}
    assert all(role == "person" for m in PERSON_MODELS for role, _ in m.inputs)


# ---------------------------------------------------------------------------
# Hand-worked rows
# ---------------------------------------------------------------------------

BASE = "A*02:01+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01"


@pytest.mark.parametrize(("hla", "column", "expected"), [
    # B-C1 (rule 1, §C.4): Val76 + Asn80 on B*46:01 and B*73:01, not B*07:02
    ("A*02:01+A*01:01^B*46:01+B*08:01^C*07:02+C*07:01", "b_c1", "true"),
    ("A*02:01+A*01:01^B*73:01+B*08:01^C*07:02+C*07:01", "b_c1", "true"),
    (BASE, "b_c1", "false"),
    # A3/A11: an expressed A*03 or A*11 (rule 3)
    ("A*03:01+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01", "a3a11", "true"),
    ("A*11:01+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01", "a3a11", "true"),
    (BASE, "a3a11", "false"),
    # HLA-A Bw4 of A*23/*24/*32 (§A.4); A*24:04 lacks the motif (§C.1)
    ("A*24:02+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01", "hla_a_bw4", "true"),
    ("A*32:01+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01", "hla_a_bw4", "true"),
    ("A*24:04+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01", "hla_a_bw4", "false"),
    ("A*25:01+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01", "hla_a_bw4", "false"),
    # HLA-B leader (§A.19 worked checks)
    ("A*02:01+A*01:01^B*07:02+B*44:02^C*07:02+C*07:01", "b_leader", "M/T"),
    ("A*02:01+A*01:01^B*07:02+B*35:01^C*07:02+C*07:01", "b_leader", "M/T"),
    ("A*02:01+A*01:01^B*08:01+B*07:02^C*07:02+C*07:01", "b_leader", "M/M"),
    ("A*02:01+A*01:01^B*44:02+B*35:01^C*07:02+C*07:01", "b_leader", "T/T"),
    # rule 3 summaries (§C.16 cross-checks)
    ("A*02:01+A*01:01^B*07:02+B*08:02^C*02:03+C*07:59", "c_group", "C1/C2"),
    ("A*02:01+A*01:01^B*07:02+B*07:36^C*04:10+C*05:50", "b_class", "Bw4-80I"),
    ("A*02:01+A*01:01^B*07:02+B*39:15^C*04:10+C*05:50", "c_group", "C2/C2"),
])
def test_hla_columns(hla: str, column: str, expected: str) -> None:
    assert one(hla)[column] == expected


def test_hla_a_bw4_is_carriage_and_follows_a25() -> None:
    hla = "A*24:02+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01"
    off = one(hla, hla_a_bw4=False)
    assert off["hla_a_bw4"] == "true" and off["ligands"] == "C1"  # carried, not counted
    assert one(hla)["ligands"] == "Bw4;C1"
    a25 = "A*25:01+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01"
    assert one(a25, a25_bw4=True)["hla_a_bw4"] == "true"


@pytest.mark.parametrize(("kir", "classes"), [
    ("KIR3DL1*001+KIR3DL1*004", "H;N"),
    ("KIR3DL1*005+KIR3DS1*013", "L;N"),        # KIR3DS1 is N (rule 11)
    ("KIR3DL1*001+KIR3DL1*002", "H"),
    ("KIR3DS1*013", "N"),
    ("KIR2DL1+KIR2DL3", ""),                   # neither gene: an empty list, not unknown
])
def test_kir3dl1_classes(kir: str, classes: str) -> None:
    row = one(BASE, kir)
    assert row["kir3dl1_classes"] == classes
    assert "kir3dl1_classes" not in row["warnings"]


def test_gene_level_kir3dl1_classes_are_unknown() -> None:
    row = one(BASE, "KIR3DL1+KIR2DL1")
    assert row["kir3dl1_classes"] == ""
    assert "unknown(kir3dl1_classes: gene_level_kir)" in row["warnings"]
    assert "gene_level_kir(person KIR3DL1)" in row["warnings"]


FUNC = ("func_kir2dl1", "func_kir2dl2", "func_kir2dl3", "func_kir3dl1", "func_ikir_count",
        "func_ikir_score", "ikir_count")


@pytest.mark.parametrize(("hla", "kir", "expected"), [
    # C1/C2, Bw4 (B*44:02): every iKIR functional, weights 1, 1, 0.75, 1
    ("A*02:01+A*01:01^B*07:02+B*44:02^C*07:02+C*05:01",
     "KIR2DL1+KIR2DL2+KIR2DL3+KIR3DL1", ("1.00", "1.00", "0.75", "1.00", "4", "3.75", "4")),
    # C2/C2 without B-C1: KIR2DL2 weak (0.5), KIR2DL3 not functional
    ("A*02:01+A*01:01^B*07:02+B*08:01^C*05:01+C*06:02",
     "KIR2DL1+KIR2DL2+KIR2DL3+KIR3DL1", ("1.00", "0.50", "0.00", "0.00", "2", "1.50", "4")),
    # C2/C2 with B*46:01 (B-C1): DOMAIN §C.16 row 2 (2.75 with 3 counted)
    ("A*02:01+A*01:01^B*07:02+B*46:01^C*05:01+C*06:02",
     "KIR2DL1+KIR2DL2+KIR2DL3", ("1.00", "1.00", "0.75", "0.00", "3", "2.75", "3")),
    # genes not carried weigh 0; ikir_count counts genes, functional or not
    ("A*02:01+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01",
     "KIR2DL1+KIR3DL1", ("0.00", "0.00", "0.00", "0.00", "0", "0.00", "2")),
])
def test_functional_ikir(hla: str, kir: str, expected: tuple[str, ...]) -> None:
    row = one(hla, kir)
    assert tuple(row[c] for c in FUNC) == expected


def test_unknown_is_empty_with_a_warning() -> None:
    # KIR2DL1 unknown: its weight, the count and the score are unknown, the other
    # genes' weights are not (propagation, §A.0)
    row = one("A*02:01+A*01:01^B*07:02+B*44:02^C*07:02+C*05:01",
              "2DL1=NA;2DL2=NEG;2DL3=POS;3DL1=POS")
    assert (row["func_kir2dl1"], row["func_kir2dl3"], row["func_ikir_count"]) == ("", "0.75", "")
    assert "unknown(func_kir2dl1: kir_gene_unknown)" in row["warnings"]
    assert "unknown(func_ikir_count: kir_gene_unknown)" in row["warnings"]
    assert "kir_gene_unknown(person KIR2DL1)" in row["warnings"]
    # no KIR typing at all: every KIR column unknown, every HLA column known
    row = one(BASE)
    assert row["c_group"] == "C1/C1" and row["kir_genotype"] == ""
    assert "unknown(kir_genotype: kir_gene_unknown)" in row["warnings"]
    # an ambiguous HLA-B typing: B class unknown, the leader too
    row = one("A*02:01+A*01:01^B*07:02+B*15^C*07:02+C*07:01")
    assert row["b_class"] == "" and "unknown(b_class: ambiguous_typing)" in row["warnings"]
    assert row["b_leader"] == "" and "unknown(b_leader: ambiguous_typing)" in row["warnings"]


def test_single_allele_option_reaches_b_leader() -> None:
    hla = "A*02:01+A*01:01^B*07:02^C*07:02+C*07:01"
    assert one(hla)["b_leader"] == "M/M"
    row = one(hla, single_allele="unknown")
    assert row["b_leader"] == "" and "unknown(b_leader: single_allele)" in row["warnings"]


# ---------------------------------------------------------------------------
# The person paired with itself (thousands of random people)
# ---------------------------------------------------------------------------

#: person column -> the pair column of the person paired with itself.
SELF_PAIR = {
    "c_group": "recipient_c_group", "b_class": "recipient_b_class",
    "ligands": "recipient_ligands", "kir_genotype": "donor_kir_genotype",
    "cen_motif": "cen_motif", "tel_motif": "tel_motif", "b_content_score": "b_content_score",
    "b_content_group": "b_content_group", "kir2dl1_245": "kir2dl1_245",
    "func_ikir_count": "cf_ikir_donor_ligands", "func_ikir_score": "ikir_score_weighted",
}


@pytest.mark.parametrize("opts", [{}, {"exclude_null_kir3dl1": True, "hla_a_bw4": False}],
                         ids=["defaults", "variant"])
def test_equal_to_the_person_paired_with_itself(tables, golden: ModuleType, opts: dict) -> None:
    rng = random.Random(18)
    people = golden.random_people(rng, 3000, odd=0.15, missing=0.02, single=0.05,
                                  unknown=0.2, allele=0.25, empty=0.05)
    g = pd.DataFrame(people, columns=["sample_id", "hla", "kir"], dtype="str")
    options = Options(**opts)
    got = assess_persons(g, options, tables=tables)
    pairs = pd.DataFrame({"recipient_id": g["sample_id"], "donor_id": g["sample_id"]})
    selfp = assess_pairs(g, pairs, options, tables=tables)
    assert got["sample_id"].tolist() == g["sample_id"].tolist()
    assert (got["status"] == selfp["status"]).all()
    ok = got["status"] == "ok"
    for col, pcol in SELF_PAIR.items():
        assert (got.loc[ok, col] == selfp.loc[ok, pcol]).all(), col
        # unknown in one is unknown in the other, for the same reason
        for a, b in zip(got.loc[ok, "warnings"], selfp.loc[ok, "warnings"], strict=True):
            ua = [w.split(": ")[1] for w in a.split(";") if w.startswith(f"unknown({col}:")]
            ub = [w.split(": ")[1] for w in b.split(";") if w.startswith(f"unknown({pcol}:")]
            assert ua == ub, (col, a, b)
    # non-vacuous: most values are known, and the score takes many values
    assert (got.loc[ok, "func_ikir_count"] != "").mean() > 0.4
    assert got.loc[ok, "func_ikir_score"].nunique() > 8
    assert (~ok).sum() == 0


def test_each_person_model_is_evaluated_once_per_distinct_input(tables, golden) -> None:
    rng = random.Random(5)
    people = golden.random_people(rng, 2000)
    g = pd.DataFrame(people, columns=["sample_id", "hla", "kir"], dtype="str")
    engine = Engine(people_from_table(table_from_pandas(g), tables), Options(), tables)
    engine.assess_persons(np.arange(len(engine.people)))
    ok = ~engine.error_mask
    for m in PERSON_MODELS:
        combos = {tuple(int(engine.fact_codes[f][i]) for _, f in m.inputs)
                  for i in np.flatnonzero(ok)}
        assert int((engine._tables[(m.name, 0)].cells >= 0).sum()) == len(combos), m.name
        assert len(combos) < ok.sum() / 4


# ---------------------------------------------------------------------------
# Rows, errors and files
# ---------------------------------------------------------------------------

GOOD = "A*02:01+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01"
ROWS = [
    ("P1", GOOD, "KIR2DL1+KIR3DL1*001"),
    ("BAD", "A*0x:01+A*02:01", ""),                 # unparsable: error row
    ("", GOOD, "KIR2DL1"),                           # a typing without an id
    ("P2", "A*99:99+A*02:01", ""),                   # unknown allele: error row
    ("DUP", GOOD, ""),
    ("P3", GOOD, "KIR2DL1*999"),                     # unknown KIR allele
    ("DUP", "A*01:01", ""),                          # conflicting duplicate
    ("SAME", GOOD, ""),
    ("SAME", GOOD, ""),                              # identical duplicate: one row
    ("P4", GOOD, ""),
]


def write_genotypes(tmp: Path) -> Path:
    path = tmp / "genotypes.csv"
    pd.DataFrame(ROWS, columns=["sample_id", "hla", "kir"]).to_csv(path, index=False)
    return path


def test_rows_in_input_order_and_nothing_dropped(tmp_path: Path) -> None:
    s = run_persons(write_genotypes(tmp_path), tmp_path / "out.csv",
                    errors=tmp_path / "err.csv")
    got = pd.read_csv(tmp_path / "out.csv", dtype="str", keep_default_na=False)
    assert got["sample_id"].tolist() == ["P1", "BAD", "", "P2", "DUP", "P3", "SAME", "P4"]
    assert got["status"].tolist() == ["ok", "error", "error", "error", "error", "error", "ok",
                                      "ok"]
    err = dict(zip(got["sample_id"], got["error"], strict=True))
    assert err["BAD"].startswith("input_parse_error: person 'BAD' (genotypes row 2, column "
                                 "'hla'): cannot parse 'A*0x:01+A*02:01'")
    assert got.loc[2, "error"] == ("input_parse_error: genotypes.csv row 3 has a typing but "
                                   "no sample_id")
    assert err["P2"].startswith("unknown_allele: person 'P2'") and "A*99:99" in err["P2"]
    assert err["DUP"].startswith("duplicate_person: person 'DUP'") and "rows 5, 7" in err["DUP"]
    assert err["P3"].startswith("unknown_allele: person 'P3'") and "KIR2DL1*999" in err["P3"]
    # an error row has every computed column empty
    assert (got.loc[got["status"] == "error", A21[3:]] == "").all().all()
    assert s.rows_in == 8 and s.rows_error == 5 and s.duplicate_ids == ("DUP",)
    assert s.error_codes == {"input_parse_error": 2, "unknown_allele": 2,
                             "duplicate_person": 1}
    errs = pd.read_csv(tmp_path / "err.csv", dtype="str", keep_default_na=False)
    assert errs["genotypes_row"].tolist() == ["2", "3", "4", "5", "6"]
    assert list(errs.columns) == ["genotypes_row", *A21]
    prov = json.loads((tmp_path / "out.csv.provenance.json").read_text())
    assert prov["rows"] == {"out": 8, "ok": 3, "error": 5, "error_codes": {
        "duplicate_person": 1, "input_parse_error": 2, "unknown_allele": 2}}
    assert prov["inputs"]["genotypes"]["repeated_identical_ids"] == ["SAME"]
    assert prov["options"] == Options().to_dict() and prov["rules"] == "kirmatch-rules-v2"
    assert len(prov["inputs"]["genotypes"]["sha256"]) == 64


def test_unreadable_row_is_an_error_row(tmp_path: Path) -> None:
    g = tmp_path / "g.csv"
    g.write_text(f"sample_id,hla,kir\nP1,{GOOD},\nP2,{GOOD},,extra\nP3,{GOOD},\n")
    run_persons(g, tmp_path / "out.csv")
    got = pd.read_csv(tmp_path / "out.csv", dtype="str", keep_default_na=False)
    assert got["sample_id"].tolist() == ["P1", "", "P3"]
    assert got.loc[1, "error"].startswith("input_parse_error: g.csv row 2 could not be read")


@pytest.mark.parametrize("ext", ["csv", "tsv", "csv.gz", "parquet", "xlsx"])
def test_every_output_format(tmp_path: Path, ext: str) -> None:
    g = write_genotypes(tmp_path)
    ref = assess_persons(pd.read_csv(g, dtype="str", keep_default_na=False))
    out = tmp_path / f"out.{ext}"
    run_persons(g, out, errors=tmp_path / f"err.{ext}", chunk_rows=3)
    if ext == "parquet":
        got = pd.read_parquet(out).astype("str")
    elif ext == "xlsx":
        got = pd.read_excel(out, dtype="str", keep_default_na=False)
    else:
        got = pd.read_csv(out, dtype="str", keep_default_na=False,
                          sep="\t" if ext == "tsv" else ",")
    # the in-memory table names the source "genotypes"; the file its name
    ref["error"] = ref["error"].str.replace("genotypes row 3", "genotypes.csv row 3")
    pd.testing.assert_frame_equal(got, ref)
    assert (tmp_path / f"out.{ext}.provenance.json").exists()


def test_chunk_size_does_not_change_output(tmp_path: Path, golden: ModuleType) -> None:
    rng = random.Random(3)
    g = tmp_path / "g.csv"
    pd.DataFrame(golden.random_people(rng, 500), columns=["sample_id", "hla", "kir"]).to_csv(
        g, index=False)
    run_persons(g, tmp_path / "a.csv", chunk_rows=7)
    run_persons(g, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_formula_cells_are_neutralised(tmp_path: Path) -> None:
    g = tmp_path / "g.csv"
    g.write_text(f'sample_id,hla,kir\n"=1+2",{GOOD},\n')
    run_persons(g, tmp_path / "out.csv")
    assert pd.read_csv(tmp_path / "out.csv", dtype="str").loc[0, "sample_id"] == "'=1+2"


def test_usage_errors(tmp_path: Path) -> None:
    g = write_genotypes(tmp_path)
    with pytest.raises(UsageError, match="would overwrite an input"):
        run_persons(g, g)
    with pytest.raises(UsageError, match="chunk_rows"):
        run_persons(g, tmp_path / "o.csv", chunk_rows=0)


def test_genotyper_inputs(tmp_path: Path) -> None:
    from kirmatch.batch import genotype_source_from_readers

    people, _, files = genotype_source_from_readers(hla=READERS / "hla_gl.csv",
                                                    kir=READERS / "dkms_kir.csv")
    run_persons(people, tmp_path / "out.csv", genotype_files=files)
    got = pd.read_csv(tmp_path / "out.csv", dtype="str", keep_default_na=False)
    assert got["sample_id"].tolist() == list(people.ids)
    prov = json.loads((tmp_path / "out.csv.provenance.json").read_text())
    assert len(prov["inputs"]["genotypes"]["files"]) == 2


def _cli():
    from kirmatch.cli.main import app

    return app


def test_cli(tmp_path: Path) -> None:
    g = write_genotypes(tmp_path)
    runner = CliRunner()
    args = ["persons", "--genotypes", str(g), "--output", str(tmp_path / "out.parquet"),
            "--errors", str(tmp_path / "err.csv")]
    res = runner.invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    assert "kirmatch persons: 8 rows (3 ok, 5 error: input_parse_error 2" in res.stderr
    assert "people/s" in res.stderr and "duplicate_person): DUP" in res.stderr
    res = runner.invoke(_cli(), [*args, "--strict", "--quiet"])
    assert res.exit_code == 1 and "people/s" not in res.stderr
    assert "5 row(s) have status=error (--strict)" in res.stderr
    prov = json.loads((tmp_path / "out.parquet.provenance.json").read_text())
    assert prov["command"][:2] == ["kirmatch", "persons"]
    res = runner.invoke(_cli(), ["persons", "--hla", str(READERS / "hla_gl.csv"), "--kir",
                                 str(READERS / "midas_kir.csv"), "-o", str(tmp_path / "r.csv"),
                                 "--no-hla-a-bw4"])
    assert res.exit_code == 0, res.output
    assert "genotypes read as: HLA:" in res.stderr
    prov = json.loads((tmp_path / "r.csv.provenance.json").read_text())
    assert prov["options"]["hla_a_bw4"] is False
    res = runner.invoke(_cli(), ["persons", "--genotypes", str(g), "--hla",
                                 str(READERS / "hla_gl.csv"), "-o", str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and "not both" in res.stderr
    res = runner.invoke(_cli(), ["persons", "-o", str(tmp_path / "x.csv")])
    assert res.exit_code == 2 and "--genotypes" in res.stderr


def test_facade() -> None:
    import kirmatch

    assert kirmatch.assess_persons is assess_persons and "run_persons" in kirmatch.__all__
