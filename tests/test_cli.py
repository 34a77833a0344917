"""The Typer CLI through CliRunner: both output modes and the error paths."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from kirmatch.cli.main import app

runner = CliRunner()
PAIR2 = [
    "--recipient-hla", "A*01:01+A*02:01^B*08:01+B*15:01^C*07:01+C*03:04",
    "--donor-hla", "A*01:01+A*03:01^B*08:01+B*57:01^C*07:01+C*06:02",
    "--donor-kir", "KIR2DL1+KIR2DL2+KIR2DS2+KIR3DL1*005+KIR3DL1*015+KIR2DS4+KIR3DS1+KIR2DS1+"
                   "KIR2DL5+KIR3DL2+KIR3DL3+KIR2DL4",
    "--recipient-id", "R2", "--donor-id", "D2",
]


def test_version() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert "kirmatch rules v2" in res.output
    assert "IPD-IMGT/HLA 3.58.0" in res.output and "IPD-KIR 2.13.0" in res.output


def test_ligands_json_issue_example() -> None:
    res = runner.invoke(app, ["ligands", "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01",
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["c_group"] == "C1/C2"
    assert out["b_class"] == "Bw4-80T"
    assert out["ligands"] == "Bw4;C1;C2"
    calls = {a["typing"]: a["ligand"] for a in out["alleles"]}
    assert calls["A*24:02"] == "Bw4-80I" and calls["C*05:01"] == "C2"


def test_ligands_text_and_ambiguity_exit_zero() -> None:
    res = runner.invoke(app, ["ligands", "A*01:01+A*02:01^B*44+B*07:02^C*07+C*05:01"])
    assert res.exit_code == 0, res.output
    assert "ambiguous" in res.output
    assert "HLA-C group:  unknown" in res.output


def test_ligands_options() -> None:
    gl = "A*24:02+A*01:01^B*07:02+B*08:01^C*07:02+C*05:01"
    on = json.loads(runner.invoke(app, ["ligands", gl, "--json"]).output)
    off = json.loads(runner.invoke(app, ["ligands", gl, "--json", "--no-hla-a-bw4"]).output)
    assert on["ligands"] == "Bw4;C1;C2" and off["ligands"] == "C1;C2"
    assert off["options"]["hla_a_bw4"] is False
    maj = json.loads(runner.invoke(app, ["ligands", "A*01:01^B*07:02^C*07", "--json",
                                         "--ambiguity", "majority"]).output)
    assert maj["c_group"] == "C1/C1"


@pytest.mark.parametrize(("gl", "needle"), [
    ("C*07:0x", "C*07:0x"),
    ("A*99:99", "A*99:99"),
    ("Bw4", "public epitopes"),
])
def test_ligands_errors(gl: str, needle: str) -> None:
    res = runner.invoke(app, ["ligands", gl])
    assert res.exit_code == 1
    assert needle in res.output
    assert "Traceback" not in res.output


def test_pair_json_issue_example() -> None:
    res = runner.invoke(app, ["pair", *PAIR2, "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["gvh_ligand_mismatch"] is True
    assert out["gvh_mismatched_ligands"] == "Bw4;C2"
    assert out["missing_ligand_count"] == 2
    assert out["cf_ikir"] == 1 and out["cf_ikir_donor_ligands"] == 3
    assert out["cen_motif"] == "B/B" and out["tel_motif"] == "A/B"
    assert out["b_content_group"] == "Best"
    assert out["kir2ds1_status"] == "2DS1+/C1+"
    assert out["kir3dl1_hlab"] == "non-inhibiting"
    assert out["kir2dl1_245"] == ""  # gene-level KIR2DL1
    assert "unknown(kir2dl1_245: gene_level_kir)" in out["warnings"]
    assert out["options"]["rules"] == "kirmatch-rules-v2"


def test_pair_text_explains() -> None:
    res = runner.invoke(app, ["pair", *PAIR2])
    assert res.exit_code == 0, res.output
    assert "GvH mismatch: donor Bw4 (B*57:01), C2 (C*06:02) absent in recipient (C1/C1)" \
        in res.output
    assert "Ruggeri" in res.output and "Zou J" in res.output
    assert "not a medical device" in res.output


def test_pair_text_shows_unknown_as_unknown() -> None:
    """§A.16: an empty cell with an ``unknown(...)`` warning is unknown, never an
    empty list; the text view said "none" for an unknown list of mismatched
    ligands and of receptor-ligand mismatches, and "unknown" for a known-empty
    ligand set (a recipient of two null HLA-C alleles and Bw6)."""
    rec = "A*01:01+A*02:01^B*08:01+B*15:01^C*07:01+C*03:04"
    res = runner.invoke(app, ["pair", "--recipient-hla", rec, "--donor-hla",
                              "A*02:XX+A*03:01^B*44:XX+B*08:01^C*07:01+C*05:01",
                              "--donor-kir", "2DL1=POS;2DL2=NA;2DL3=POS;3DL1=POS;2DS1=NEG"])
    assert res.exit_code == 0, res.output
    assert "GvH mismatch: donor unknown (ambiguous_typing) absent in recipient" in res.output
    res = runner.invoke(app, ["pair", "--recipient-hla", rec, "--donor-hla",
                              "A*11:01+A*03:01^B*44:02+B*08:01^C*07:01+C*05:01",
                              "--donor-kir", "2DL1=POS;2DL2=NEG;2DL3=POS;3DL1=POS;2DS1=NEG",
                              "--include-a3a11"])
    assert res.exit_code == 0, res.output
    block = res.output.split("Receptor-ligand mismatch")[1].split("Gene-gene mismatch")[0]
    value = block.rsplit("]", 1)[1].strip()          # after the citation
    assert value == "unknown (kir_gene_unknown)"
    res = runner.invoke(app, ["pair", "--recipient-hla",
                              "A*01:01+A*02:01^B*08:01+B*08:01^C*04:09N+C*04:09N",
                              "--donor-hla", rec, "--donor-kir", "KIR2DL1+KIR2DL3+KIR3DL1"])
    assert res.exit_code == 0, res.output
    assert "Recipient: HLA-C -/-, HLA-B Bw6, ligands none" in res.output


def test_pair_errors() -> None:
    res = runner.invoke(app, ["pair", "--recipient-hla", "A*01:01", "--donor-hla", "B*07:0x"])
    assert res.exit_code == 1 and "B*07:0x" in res.output
    res = runner.invoke(app, ["pair", "--recipient-hla", "A*01:01", "--donor-hla", "A*01:01",
                              "--donor-kir", "KIR9XX1"])
    assert res.exit_code == 1 and "KIR9XX1" in res.output
    res = runner.invoke(app, ["pair", "--recipient-hla", "A*01:01"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["pair", *PAIR2, "--ambiguity", "sometimes"])
    assert res.exit_code == 2


def test_pair_with_antibodies_needs_no_pyard(tmp_path, monkeypatch) -> None:
    """Rule 13 v2: antigen-level antibodies are matched with the shipped antigen
    table; no py-ard database is needed (v1 needed one and stopped here)."""
    monkeypatch.setenv("KIRMATCH_PYARD_DIR", str(tmp_path / "none"))
    import kirmatch.pyard_backend as pb

    pb._BACKENDS.clear()
    f = tmp_path / "ab.csv"
    f.write_text("recipient_id,specificity,mfi,c1q\nR2,B57,14500,pos\n")
    res = runner.invoke(app, ["pair", *PAIR2, "--antibodies", str(f), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["dsa_tier"], doc["dsa_hits"]) == ("high", "B57 14500 C1q+")
    assert not (tmp_path / "none").exists()
    pb._BACKENDS.clear()


@pytest.mark.pyard
def test_pair_with_antibodies(tmp_path, pyard_dir, monkeypatch) -> None:
    monkeypatch.setenv("KIRMATCH_PYARD_DIR", str(pyard_dir))
    import kirmatch.pyard_backend as pb

    pb._BACKENDS.clear()
    f = tmp_path / "ab.csv"
    f.write_text("recipient_id,specificity,mfi,c1q\nR2,B57,14500,pos\nR2,A3,2100,neg\n"
                 "R2,B44,3000,neg\n")
    res = runner.invoke(app, ["pair", *PAIR2, "--antibodies", str(f), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["dsa_tier"] == "high" and out["dsa_max_mfi"] == 14500
    bad = tmp_path / "bad.csv"
    bad.write_text("recipient_id,specificity,mfi\nR2,B57,-3\n")
    res = runner.invoke(app, ["pair", *PAIR2, "--antibodies", str(bad)])
    assert res.exit_code == 1 and "row 1" in res.output  # data rows, 1-based
    pb._BACKENDS.clear()


def test_data_status(tmp_path) -> None:
    res = runner.invoke(app, ["data", "status", "--data-dir", str(tmp_path), "--json"])
    assert res.exit_code == 0
    st = json.loads(res.output)
    assert st["database_ready"] is False and st["imgt_version"] == "3580"
    assert st["mac_loaded"] is False


def test_data_build_bad_mirror(tmp_path) -> None:
    res = runner.invoke(app, ["data", "build", "--data-dir", str(tmp_path / "db"),
                              "--imgt-mirror", str(tmp_path)])
    assert res.exit_code == 1
    assert "incomplete" in res.output and "Traceback" not in res.output
