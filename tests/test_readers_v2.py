"""Readers added by issue 13 (part 6 and MiDAS): HLA*IMP, OptiType, the
consolidated T1K CSV, and MiDAS HLA tables with non-classical loci
(DOMAIN.md §C.13).

Every fixture in ``tests/data/readers`` is hand-written (origins in its
README). Expected genotypes are asserted whole (the GL string of every
sample); malformed inputs must fail with errors naming file, data row and
column; a call below a reader threshold must come out unknown (never absent,
never a guess), with a warning.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kirmatch.cli.main import app
from kirmatch.errors import HLAParseError, InputSchemaError, UsageError
from kirmatch.hla import KNOWN_LOCI, HLAGenotype
from kirmatch.kir import KIRGenotype
from kirmatch.ligands import LigandResolver
from kirmatch.options import Options
from kirmatch.readers import detect_hla_format, detect_kir_format, read_hla, read_kir
from kirmatch.tables import ReferenceTables, load_reference_tables

DATA = Path(__file__).resolve().parent / "data" / "readers"
runner = CliRunner()


@pytest.fixture(scope="module")
def tables() -> ReferenceTables:
    return load_reference_tables()


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def gl(result_genotype: object) -> str:
    assert isinstance(result_genotype, HLAGenotype)
    return str(result_genotype)


# ---------------------------------------------------------------------------
# MiDAS HLA tables with non-classical loci
# ---------------------------------------------------------------------------

def test_midas_hla_table_keeps_dra(tables: ReferenceTables) -> None:
    res = read_hla(DATA / "midas_hla.tsv")
    assert detect_hla_format(DATA / "midas_hla.tsv") == "columns"
    assert res.format == "columns"
    # Loci in canonical order: the classical ones first, DRA last.
    assert {s: gl(g) for s, g in res.genotypes.items()} == {
        "M1": "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01^DRB1*15:01+DRB1*11:01"
              "^DQB1*06:02+DQB1*03:01^DRA*01:01:01+DRA*01:02:02",
        "M2": "A*01:01+A*01:01^B*08:01+B*57:01^C*07:01+C*06:02^DRB1*03:01+DRB1*07:01"
              "^DQB1*02:01+DQB1*03:03^DRA*01:01+DRA*01:01",
        "M3": "A*03:01+A*11:01^B*35:01+B*51:01^C*04:01+C*15:02^DRB1*01:01+DRB1*04:01",
    }
    m1 = res.genotypes["M1"]
    assert isinstance(m1, HLAGenotype)
    dra = m1.locus("DRA")
    assert dra is not None
    assert [str(s) for s in dra.alternatives[0]] == ["DRA*01:01:01", "DRA*01:02:02"]
    assert res.warnings == {"M1": (), "M2": (), "M3": ()}
    assert res.ignored == ()


def test_non_classical_loci_never_reach_the_ligand_rules(tables: ReferenceTables) -> None:
    """Only A, B and C are resolved: a genotype carrying DRA, E, F or G resolves the
    same as without them."""
    res = read_hla(DATA / "midas_hla.tsv")
    resolver = LigandResolver(tables)
    m1 = res.genotypes["M1"]
    assert isinstance(m1, HLAGenotype)
    full = resolver.summarize(resolver.resolve_genotype(m1, "M1"))
    classical = HLAGenotype(raw="", loci=tuple(lt for lt in m1.loci
                                                if lt.locus in ("A", "B", "C")))
    only_abc = resolver.summarize(resolver.resolve_genotype(classical, "M1"))
    assert (full.c_group, full.b_class, full.ligands) == (
        only_abc.c_group, only_abc.b_class, only_abc.ligands)


@pytest.mark.parametrize("locus", ["E", "F", "G", "DRA"])
def test_accepted_non_classical_loci(tmp_path: Path, locus: str) -> None:
    assert locus in KNOWN_LOCI
    p = tmp_path / "h.tsv"
    p.write_text(f"ID\tA_1\tA_2\t{locus}_1\t{locus}_2\nS1\t02:01\t24:02\t01:01\t"
                 f"{locus}*01:03\n", encoding="utf-8")
    g = read_hla(p).genotypes["S1"]
    assert gl(g) == f"A*02:01+A*24:02^{locus}*01:01+{locus}*01:03"


@pytest.mark.parametrize("column", ["DOB_1", "HLA-DMA_1", "H_2", "DQA2_1", "MICA_1"])
def test_loci_still_refused(tmp_path: Path, column: str) -> None:
    """A column that looks like typing but is not understood is still refused."""
    p = tmp_path / "h.tsv"
    p.write_text(f"ID\tA_1\t{column}\nS1\t02:01\t01:01\n", encoding="utf-8")
    with pytest.raises(InputSchemaError,
                       match=rf"column '{column}' looks like a typing column"):
        read_hla(p)


def test_midas_value_of_another_locus_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "h.tsv"
    p.write_text("ID\tA_1\tDRA_1\nS1\t02:01\tDRB1*01:01\n", encoding="utf-8")
    with pytest.raises(HLAParseError, match=r"allele of locus DRB1 in a DRA column "
                                           r"\[row 1, column 'DRA_1'\]"):
        read_hla(p)


def test_kir_reader_ignores_hla_columns_of_new_loci(tables: ReferenceTables,
                                                    tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text("ID,KIR2DL1,DRA_1\nA,1,DRA*01:01\n", encoding="utf-8")
    res = read_kir(p, "matrix", tables=tables)
    assert res.ignored == ("DRA_1",)


# ---------------------------------------------------------------------------
# HLA*IMP:03 imputations.csv
# ---------------------------------------------------------------------------

HLAIMP = DATA / "hlaimp_imputations.csv"


def test_hlaimp_sample_by_sample() -> None:
    res = read_hla(HLAIMP)
    assert res.format == "hlaimp"
    assert {s: gl(g) for s, g in res.genotypes.items()} == {
        "H1": "A*02:01+A*11:01^B*07:02+B*44:02^C*07:02+C*05:01^DRB1*04:01+DRB1*15:01"
              "^DQB1*03:02+DQB1*06:02",
        # DPB1 10401 stays a v2 name (DPB1*104:01 after conversion), never split by guess.
        "H2": "A*01:01+A*01:01^B*08:01+B*57:01^DPB1*10401+DPB1*04:01",
        "H3": "B*35:01+B*51:01^C*04:01+C*15:02",
    }
    assert res.warnings["H1"] == ()
    # One haplotype below 0.5: the whole locus is unknown (never a lone allele, which
    # would be read as homozygous), and the allele set aside is named.
    assert res.warnings["H2"] == (
        "hlaimp_low_posterior(H2 C hap 2 C*05:01 posterior 0.42 < 0.5)",
        "hlaimp_locus_untyped(H2 C: C*07:01 kept out, the other haplotype is not called)",
        "hla_untyped(H2 C)")
    assert res.warnings["H3"] == (
        "hlaimp_missing_haplotype(H3 A hap 2)",
        "hlaimp_locus_untyped(H3 A: A*03:01 kept out, the other haplotype is not called)",
        "hlaimp_untyped(H3 DRB4 hap 1 'NA')",
        "hlaimp_locus_untyped(H3 DRB4: DRB4*01:03 kept out, the other haplotype is not "
        "called)",
        "hla_untyped(H3 A)")
    assert res.sources == (str(HLAIMP),) and res.ignored == ()


def test_hlaimp_posterior_threshold_option() -> None:
    assert Options().hlaimp_min_posterior == 0.5
    low = read_hla(HLAIMP, options=Options(hlaimp_min_posterior=0.4))
    assert gl(low.genotypes["H2"]).startswith("A*01:01+A*01:01^B*08:01+B*57:01"
                                              "^C*07:01+C*05:01")
    high = read_hla(HLAIMP, options=Options(hlaimp_min_posterior=0.6))
    # 0.5 counts at 0.5 (at least the threshold) but not at 0.6.
    assert "DQB1" not in gl(high.genotypes["H1"])
    assert "hlaimp_low_posterior(H1 DQB1 hap 2 DQB1*06:02 posterior 0.5 < 0.6)" in \
        high.warnings["H1"]
    with pytest.raises(UsageError, match="hlaimp_min_posterior must be >= 0 and <= 1"):
        Options(hlaimp_min_posterior=1.5)


def test_hlaimp_detection_and_kirimp_confusion(tables: ReferenceTables) -> None:
    assert detect_hla_format(HLAIMP) == "hlaimp"
    with pytest.raises(InputSchemaError, match=r"hlaimp_imputations\.csv: HLA\*IMP "
                                               r"imputations \(locus 'HLAA'\), not a KIR"):
        detect_kir_format(HLAIMP)
    with pytest.raises(InputSchemaError, match=r"imputations\.csv: KIR\*IMP imputations "
                                               r"\(locus 'KIRhaplotype'\), not an HLA"):
        detect_hla_format(DATA / "imputations.csv")
    with pytest.raises(InputSchemaError, match=r"'KIRhaplotype' is not an HLA locus .*"
                                               r"\[row 1, column 'locus'\]"):
        read_hla(DATA / "imputations.csv", "hlaimp")


HLAIMP_HEADER = "ID_1,ID_2,haplotypeID,locus,imputedType,posteriorProbability\n"


@pytest.mark.parametrize(("rows", "exc", "match"), [
    ("F,S,hap.1.1,HLAA,201,0.9\n", InputSchemaError,
     r"h\.csv: imputedType '201' has 3 digits; HLA\*IMP writes 4 or more .*leading zero "
     r"lost.*\[row 1, column 'imputedType'\]"),
    ("F,S,hap.1.1,HLAA,0201,0.9\nF,S,hap.1.2,HLAA,02x1,0.9\n", HLAParseError,
     r"h\.csv: cannot parse '02x1'.*\[row 2, column 'imputedType'\]"),
    ("F,S,hap.1.1,HLAA,B*07:02,0.9\n", HLAParseError,
     r"allele of locus B in a A column \[row 1, column 'imputedType'\]"),
    ("F,S,hap.1.1,HLAX,0201,0.9\n", InputSchemaError,
     r"h\.csv: 'HLAX' is not an HLA locus .*\[row 1, column 'locus'\]"),
    ("F,S,hap.1.1,HLAA,0201,0.9\nF,S,hap.1.3,HLAA,0201,0.9\n", InputSchemaError,
     r"haplotypeID 'hap\.1\.3' should end in \.1 or \.2 .*\[row 2, column 'haplotypeID'\]"),
    ("F,S,hap.1.1,HLAA,0201,1.2\n", InputSchemaError,
     r"posteriorProbability '1\.2' should be a number within 0\.\.1 "
     r"\[row 1, column 'posteriorProbability'\]"),
    ("F,S,hap.1.1,HLAA,0201,\n", InputSchemaError,
     r"posteriorProbability '' should be .*\[row 1, column 'posteriorProbability'\]"),
    (",,hap.1.1,HLAA,0201,0.9\n", InputSchemaError,
     r"blank sample id .*\[row 1, column 'ID_2'\]"),
    ("F,S,hap.1.1,HLAA,0201,0.9\nF,S,hap.1.2,HLAA,0301,0.9\nF,S,hap.1.1,HLAA,1101,0.9\n",
     InputSchemaError, r"sample 'S' locus A haplotype 1 is called '0201' on row 1 and "
     r"'1101' on row 3 \[row 3, column 'imputedType'\]"),
])
def test_hlaimp_malformed(tmp_path: Path, rows: str, exc: type[Exception],
                          match: str) -> None:
    p = tmp_path / "h.csv"
    p.write_text(HLAIMP_HEADER + rows, encoding="utf-8")
    with pytest.raises(exc, match=match):
        read_hla(p, "hlaimp")


def test_hlaimp_missing_column(tmp_path: Path) -> None:
    p = tmp_path / "h.csv"
    p.write_text("ID_1,ID_2,haplotypeID,locus,imputedType\nF,S,hap.1.1,HLAA,0201\n",
                 encoding="utf-8")
    with pytest.raises(InputSchemaError, match=r"h\.csv: missing HLA\*IMP column\(s\) "
                                               r"posteriorProbability"):
        read_hla(p, "hlaimp")


def test_hlaimp_duplicate_rows_and_other_spellings(tmp_path: Path) -> None:
    p = tmp_path / "h.csv"
    p.write_text(HLAIMP_HEADER + "F,S,hap.1.1,HLA-A,02:01,0.9\nF,S,hap.1.2,A,A*24:02,0.8\n"
                 "F,S,hap.1.1,HLAA,0201,0.9\nF,S,hap.1.1,HLAB,0000,0.9\n"
                 "F,S,hap.1.2,HLAB,0702,0.9\nF,S,hap.1.1,HLAC,02101,0.9\n", encoding="utf-8")
    res = read_hla(p, "hlaimp")
    assert gl(res.genotypes["S"]) == "A*02:01+A*24:02"
    assert res.warnings["S"][:2] == ("hlaimp_duplicate_row(S A hap 1 rows 1 and 3)",
                                     "hlaimp_untyped(S B hap 1 '0000')")
    assert "hlaimp_missing_haplotype(S C hap 2)" in res.warnings["S"]


def test_convert_hlaimp(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    r = runner.invoke(app, ["convert", "--hla", str(HLAIMP), "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert "hla: detected hlaimp" in r.stderr
    assert "warning: hlaimp_low_posterior(H2 C hap 2 C*05:01 posterior 0.42 < 0.5)" in r.stderr
    rows = {row["sample_id"]: row["hla"] for row in read_csv(out)}
    assert rows["H2"] == "A*01:01+A*01:01^B*08:01+B*57:01^DPB1*10401+DPB1*04:01"
    out2 = tmp_path / "o2.csv"
    r = runner.invoke(app, ["convert", "--hla", str(HLAIMP), "--hla-format", "hlaimp",
                            "--hlaimp-min-posterior", "0.4", "--output", str(out2)])
    assert r.exit_code == 0, r.output
    assert "hla: format hlaimp" in r.stderr
    rows = {row["sample_id"]: row["hla"] for row in read_csv(out2)}
    assert "C*07:01+C*05:01" in rows["H2"]
    r = runner.invoke(app, ["convert", "--hla", str(HLAIMP), "--hlaimp-min-posterior", "2",
                            "--output", str(tmp_path / "o3.csv")])
    assert r.exit_code == 2 and "hlaimp_min_posterior must be" in r.output


# ---------------------------------------------------------------------------
# OptiType: result TSV, folder, consolidated CSV
# ---------------------------------------------------------------------------

OPTITYPE = DATA / "optitype"
OPTITYPE_HEADER = "\tA1\tA2\tB1\tB2\tC1\tC2\tReads\tObjective\n"


def test_optitype_result_file() -> None:
    res = read_hla(OPTITYPE / "O1_result.tsv")
    assert res.format == "optitype"
    # B*08:01 twice: OptiType's homozygous call (two slots, not a single typing).
    assert {s: gl(g) for s, g in res.genotypes.items()} == {
        "O1": "A*02:01+A*24:02^B*08:01+B*08:01^C*07:01+C*07:02"}
    assert res.warnings == {"O1": ()}
    assert res.ignored == ()
    # The id can be given instead of the file name.
    named = read_hla(OPTITYPE / "O1_result.tsv", "optitype", sample="D-17")
    assert list(named.genotypes) == ["D-17"]


def test_optitype_folder_ties_and_suboptimal_solutions() -> None:
    res = read_hla(OPTITYPE)
    assert res.format == "optitype"
    assert res.sources == tuple(str(OPTITYPE / f"O{i}_result.tsv") for i in (1, 2, 3))
    assert {s: gl(g) for s, g in res.genotypes.items()} == {
        "O1": "A*02:01+A*24:02^B*08:01+B*08:01^C*07:01+C*07:02",
        # Rows 1 and 2 tie (C differs): genotype alternatives; row 3 scores lower: not read.
        "O2": "A*01:01+A*03:01^B*07:02+B*44:02^C*07:02+C*05:01|C*07:02+C*16:01",
        # Both C cells blank: C untyped (never a guess).
        "O3": "A*11:01+A*11:01^B*35:01+B*51:01",
    }
    assert res.warnings["O2"] == (
        "optitype_tied_solutions(O2 2 solutions with the optimal objective)",
        "optitype_suboptimal_ignored(O2 1 solution(s) below the optimum)")
    assert res.warnings["O3"] == ("hla_untyped(O3 C)",)


def test_optitype_consolidated() -> None:
    path = DATA / "optitype_consolidated.csv"
    assert detect_hla_format(path) == "optitype"
    res = read_hla(path)
    assert res.format == "optitype"
    assert {s: gl(g) for s, g in res.genotypes.items()} == {
        # Two samples of one subject are read separately, never merged or voted.
        "S01": "A*23:01+A*23:01^B*44:03+B*49:01^C*04:01+C*07:01",
        "S02": "A*23:01+A*23:01^B*44:03+B*49:01^C*04:01+C*07:02",
        "S03": "A*02:01+A*68:01^B*07:02+B*51:01",
    }
    assert res.warnings["S01"] == (
        "optitype_subject_samples(S01 subject P01 has samples S01, S02: each read "
        "separately)",)
    assert res.warnings["S03"] == ("optitype_duplicate_row(S03 A2 rows 14 and 15)",
                                   "hla_untyped(S03 C)")
    with pytest.raises(UsageError, match=r"a sample id \('X'\) can only be given with a "
                                         r"single OptiType"):
        read_hla(path, sample="X")


@pytest.mark.parametrize(("name", "text", "exc", "match"), [
    ("S_result.tsv", OPTITYPE_HEADER + "0\tA*02:01\t\tB*07:02\tB*08:01\tC*07:01\tC*07:02\t1\t1\n",
     InputSchemaError, r"S_result\.tsv: sample 'S' has A1 but no A2 \(OptiType writes both, "
     r"the same allele twice when homozygous\) \[row 1, column 'A1'\]"),
    ("S_result.tsv", OPTITYPE_HEADER + "0\tA*02:01\tA*02:01\tB*07:02\tA*01:01\t\t\t1\t1\n",
     HLAParseError, r"allele of locus A in a B column \[row 1, column 'B2'\]"),
    ("S_result.tsv", OPTITYPE_HEADER + "0\tA*02:01\tA*02:01\t\t\t\t\t1\tx\n",
     InputSchemaError, r"Objective 'x' is not a number \[row 1, column 'Objective'\]"),
    ("S_result.tsv", OPTITYPE_HEADER + "0\tA*02:01\tA*02:01\t\t\t\t\t1\t5\n"
     "1\tA*02:01\tA*03:01\t\t\t\t\t1\t7\n", InputSchemaError,
     r"solution on row 2 scores above the first row's .*\[row 2, column 'Objective'\]"),
    ("S_result.tsv", "\tA1\tA2\tB1\tB2\tC1\tC2\tReads\n0\tA*02:01\tA*02:01\t\t\t\t\t1\n",
     InputSchemaError, r"S_result\.tsv: missing OptiType column\(s\) Objective"),
    ("S_result.tsv", OPTITYPE_HEADER, InputSchemaError, r"no solution row"),
    ("2014_04_10_12_00_00_result.tsv", OPTITYPE_HEADER + "0\t\t\t\t\t\t\t1\t1\n",
     InputSchemaError, r"the file name gives no sample id \(OptiType's default time-stamped"),
    ("c.csv", "sample_id,hla_gene,hla_allele\nS,A1,A*02:01\nS,A1,A*03:01\n",
     InputSchemaError, r"c\.csv: sample 'S' A1 is A\*02:01 on row 1 and A\*03:01 on row 2 "
     r"\[row 2, column 'hla_allele'\]"),
    ("c.csv", "sample_id,hla_gene,hla_allele\nS,A1,A*02:01\nS,B2,B*07:02\nS,B1,B*08:01\n",
     InputSchemaError, r"sample 'S' has A1 but no A2 .*\[row 1, column 'hla_allele'\]"),
    ("c.csv", "sample_id,hla_gene,hla_allele\nS,DRB1_1,DRB1*01:01\n", InputSchemaError,
     r"hla_gene 'DRB1_1' is not an OptiType allele slot .*\[row 1, column 'hla_gene'\]"),
    ("c.csv", "subject_id,sample_id,hla_gene,hla_allele\nP,S,A1,A*02:01\nQ,S,A2,A*02:01\n",
     InputSchemaError, r"sample 'S' belongs to subject 'P' on row 1 and to 'Q' on row 2 "
     r"\[row 2, column 'subject_id'\]"),
    ("c.csv", "sample_id,hla_gene,hla_allele,quality_score\nS,A1,A*02:01,high\n",
     InputSchemaError, r"quality_score 'high' is not a number \[row 1, column 'quality_score'\]"),
    ("c.csv", "sample_id,hla_gene,hla_allele\n,A1,A*02:01\n", InputSchemaError,
     r"c\.csv: blank sample id \[row 1, column 'sample_id'\]"),
])
def test_optitype_malformed(tmp_path: Path, name: str, text: str, exc: type[Exception],
                            match: str) -> None:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    with pytest.raises(exc, match=match):
        read_hla(p, "optitype")


def test_optitype_detection_and_usage(tmp_path: Path) -> None:
    for path in (OPTITYPE, OPTITYPE / "O2_result.tsv"):
        assert detect_hla_format(path) == "optitype"
    renamed = tmp_path / "calls.tsv"  # the header alone is enough
    renamed.write_text((OPTITYPE / "O1_result.tsv").read_text(encoding="utf-8"),
                       encoding="utf-8")
    assert detect_hla_format(renamed) == "optitype"
    assert list(read_hla(renamed).genotypes) == ["calls"]
    with pytest.raises(UsageError, match=r"a sample id \('X'\) can only be given with a "
                                         r"single OptiType"):
        read_hla(OPTITYPE, sample="X")
    with pytest.raises(UsageError, match=r"a sample id \('X'\) can only be given with an "
                                         r"OptiType result file"):
        read_hla(DATA / "hla_gl.csv", sample="X")
    with pytest.raises(InputSchemaError, match=r"is a folder; only OptiType results"):
        read_hla(OPTITYPE, "gl")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputSchemaError, match=r"is a folder without OptiType"):
        detect_hla_format(empty)
    with pytest.raises(InputSchemaError, match=r"no \*_result\.tsv files in this folder"):
        read_hla(empty, "optitype")


def test_convert_optitype(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    r = runner.invoke(app, ["convert", "--hla", str(OPTITYPE), "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert "hla: detected optitype" in r.stderr and "O2_result.tsv" in r.stderr
    assert "warning: optitype_tied_solutions(O2 2 solutions" in r.stderr
    assert [row["sample_id"] for row in read_csv(out)] == ["O1", "O2", "O3"]
    out2 = tmp_path / "o2.csv"
    r = runner.invoke(app, ["convert", "--hla", str(OPTITYPE / "O1_result.tsv"),
                            "--hla-format", "optitype", "--hla-sample", "R1", "-o", str(out2)])
    assert r.exit_code == 0, r.output
    assert read_csv(out2) == [{"sample_id": "R1", "hla": "A*02:01+A*24:02^B*08:01+B*08:01"
                               "^C*07:01+C*07:02", "kir": ""}]
    out3 = tmp_path / "o3.csv"
    r = runner.invoke(app, ["convert", "--hla", str(DATA / "optitype_consolidated.csv"),
                            "-o", str(out3)])
    assert r.exit_code == 0, r.output
    assert [row["sample_id"] for row in read_csv(out3)] == ["S01", "S02", "S03"]
    r = runner.invoke(app, ["convert", "--kir", str(DATA / "midas_kir.csv"), "--hla-sample",
                            "R1", "-o", str(tmp_path / "o4.csv")])
    assert r.exit_code == 2 and "--hla-sample needs --hla" in r.output


# ---------------------------------------------------------------------------
# T1K: the consolidated multi-sample CSV
# ---------------------------------------------------------------------------

T1K_CONSOLIDATED = DATA / "t1k_consolidated.csv"


def states(genotype: object) -> dict[str, str]:
    """Gene → DKMS-style value (``POS``/``NEG``/``NA``)."""
    assert isinstance(genotype, KIRGenotype)
    return {g.gene: g.value_string() for g in genotype.genes}


def test_t1k_consolidated_sample_by_sample(tables: ReferenceTables) -> None:
    assert detect_kir_format(T1K_CONSOLIDATED) == "t1k"
    res = read_kir(T1K_CONSOLIDATED, tables=tables)
    assert res.format == "t1k" and list(res.genotypes) == ["T1", "T2", "T3"]
    assert states(res.genotypes["T1"]) == {
        "KIR2DL1": "POS", "KIR2DL2": "NEG", "KIR2DL3": "POS", "KIR2DL4": "POS",
        "KIR2DL5": "POS",  # KIR2DL5A present, KIR2DL5B absent
        "KIR2DS1": "NEG", "KIR2DS2": "NA",  # quality 0: unknown, never absent
        "KIR2DS3": "NEG", "KIR2DS4": "POS", "KIR2DS5": "NEG", "KIR3DL1": "POS",
        "KIR3DL2": "POS", "KIR3DL3": "NA",  # no row: unknown
        "KIR3DS1": "NEG", "KIR2DP1": "POS", "KIR3DP1": "POS"}
    assert res.warnings["T1"] == (
        "t1k_kir2dl5_low_quality(T1 KIR2DL5A quality 12)",
        "t1k_low_quality(T1 KIR2DS2 quality 0)",
        "t1k_subject_samples(T1 subject P01 has samples T1, T2: each read separately)",
        "kir_gene_unknown(T1 KIR2DS2)", "kir_gene_unknown(T1 KIR3DL3)")
    t2 = states(res.genotypes["T2"])
    assert (t2["KIR2DL1"], t2["KIR2DL2"], t2["KIR3DL1"], t2["KIR2DS4"]) == (
        "POS", "POS", "NEG", "NA")
    assert res.warnings["T2"][0] == "t1k_duplicate_row(T2 KIR2DL1 rows 17 and 18)"
    t3 = states(res.genotypes["T3"])  # pandas-style floats (2.0, -1.0) read as numbers
    assert (t3["KIR2DL1"], t3["KIR2DL3"], t3["KIR2DL5"], t3["KIR3DS1"]) == (
        "POS", "NEG", "POS", "POS")
    assert res.sources == (str(T1K_CONSOLIDATED),) and res.ignored == ()


def test_t1k_consolidated_quality_threshold(tables: ReferenceTables) -> None:
    res = read_kir(T1K_CONSOLIDATED, "t1k", tables=tables,
                   options=Options(t1k_min_quality=50.0))
    t1 = states(res.genotypes["T1"])
    # Quality 6 and 12 are at or below 50 now: unknown, never absent.
    assert (t1["KIR2DL4"], t1["KIR2DL5"], t1["KIR2DL1"]) == ("NA", "NA", "POS")
    assert states(res.genotypes["T2"])["KIR2DL2"] == "NA"
    assert "t1k_low_quality(T2 KIR2DL2 quality 45)" in res.warnings["T2"]


def test_t1k_consolidated_pipeline_layout(tables: ReferenceTables, tmp_path: Path) -> None:
    """The layout TENX_2_KIR_HLA's consolidate_results.py writes: an unnamed pandas
    index, batch_id, no subject_id."""
    p = tmp_path / "kir_genotyping_results.csv"
    p.write_text(",kir_gene,allele_count,abundance,quality_score,batch_id,sample_id\n"
                 "0,KIR2DL1,2,249.03,60,B1,S9\n1,KIR2DL2,0,0.0,-1,B1,S9\n", encoding="utf-8")
    assert detect_kir_format(p) == "t1k"
    res = read_kir(p, tables=tables)
    assert list(res.genotypes) == ["S9"] and res.ignored == ()
    s9 = states(res.genotypes["S9"])
    assert (s9["KIR2DL1"], s9["KIR2DL2"], s9["KIR2DL3"]) == ("POS", "NEG", "NA")


T1K_CONS_HEADER = "sample_id,kir_gene,allele_count,quality_score\n"


@pytest.mark.parametrize(("rows", "match"), [
    ("S,KIR2DL9,1,60\n", r"t\.csv: 'KIR2DL9' is not a KIR gene \[row 1, column 'kir_gene'\]"),
    ("S,KIR2DL1,1.5,60\n", r"allele_count '1\.5' is not a non-negative integer "
     r"\[row 1, column 'allele_count'\]"),
    ("S,KIR2DL1,-1,60\n", r"allele_count '-1' is not a non-negative integer"),
    ("S,KIR2DL1,2,\n", r"quality_score '' is not a number \[row 1, column 'quality_score'\]"),
    ("S,KIR2DL1,2,60\nS,KIR2DL1,0,-1\n", r"t\.csv: sample 'S' KIR2DL1 has allele_count 2, "
     r"quality 60 on row 1 and 0, -1 on row 2 \[row 2, column 'allele_count'\]"),
    (",KIR2DL1,2,60\n", r"t\.csv: blank sample id \[row 1, column 'sample_id'\]"),
])
def test_t1k_consolidated_malformed(tables: ReferenceTables, tmp_path: Path, rows: str,
                                    match: str) -> None:
    p = tmp_path / "t.csv"
    p.write_text(T1K_CONS_HEADER + rows, encoding="utf-8")
    with pytest.raises(InputSchemaError, match=match):
        read_kir(p, "t1k", tables=tables)


def test_t1k_consolidated_subject_and_columns(tables: ReferenceTables, tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("subject_id,sample_id,kir_gene,allele_count,quality_score\n"
                 "P,S,KIR2DL1,2,60\nQ,S,KIR2DL2,0,-1\n", encoding="utf-8")
    with pytest.raises(InputSchemaError, match=r"sample 'S' belongs to subject 'P' on row 1 "
                                               r"and to 'Q' on row 2"):
        read_kir(p, "t1k", tables=tables)
    p.write_text("sample_id,kir_gene,allele_count,quality_score,abundance\n"
                 "S,KIR2DL1,2,60,lots\n", encoding="utf-8")
    with pytest.raises(InputSchemaError, match=r"abundance 'lots' is not a number"):
        read_kir(p, "t1k", tables=tables)


def test_t1k_merge_matrix_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "merged.tsv"
    p.write_text("sample\tKIR2DL1*001\tKIR2DL1*002\tinconsistency\n"
                 "cell1\t12.0\t0\t\ncell2\t0\t9.5\tKIR2DL1*003_4.0_20\n", encoding="utf-8")
    with pytest.raises(InputSchemaError, match=r"merged\.tsv: a T1K merge matrix "
                                               r"\(t1k-merge\.py"):
        detect_kir_format(p)


def test_convert_t1k_consolidated(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    r = runner.invoke(app, ["convert", "--kir", str(T1K_CONSOLIDATED), "--t1k-min-quality",
                            "50", "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert "kir: detected t1k" in r.stderr
    assert "warning: t1k_low_quality: 5 warning(s), e.g. t1k_low_quality(T1 KIR2DL4 quality 6)" \
        in r.stderr
    t1 = {row["sample_id"]: row["kir"] for row in read_csv(out)}["T1"]
    assert "KIR2DL4=NA" in t1 and "KIR2DL2=NEG" in t1


def test_convert_midas_hla_keeps_dra_and_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    r = runner.invoke(app, ["convert", "--hla", str(DATA / "midas_hla.tsv"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "hla: detected columns" in r.stderr
    rows = {row["sample_id"]: row["hla"] for row in read_csv(out)}
    assert rows["M2"].endswith("^DRA*01:01+DRA*01:01")
    back = read_hla(out)  # the genotypes table reads back with the same meaning
    assert back.format == "gl"
    assert {s: gl(g) for s, g in back.genotypes.items()} == {
        s: gl(g) for s, g in read_hla(DATA / "midas_hla.tsv").genotypes.items()}
