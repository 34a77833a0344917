"""Readers for genotyper and lab output (issue 6; DOMAIN.md §C.13).

Every fixture in ``tests/data/readers`` (origins in its README) has its
expected genotype asserted gene by gene: the expectation is the DKMS-style
value of each of the 16 genes (``NEG`` absent, ``NA`` unknown, ``POS`` present
at gene level, ``003+004`` present with allele groups, ``|`` between
alternative genotypes). Malformed files must fail with errors naming file,
line and column. Every KIR genotype must survive the trip through the
genotypes-table string (``KIRGenotype.to_string`` → ``parse_kir_genotype``)
with the same meaning.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kirmatch.cli.main import app
from kirmatch.errors import (
    HLAParseError,
    InputSchemaError,
    KirmatchError,
    KIRParseError,
    UnknownAlleleError,
    UsageError,
)
from kirmatch.hla import HLAGenotype, parse_hla_genotype
from kirmatch.kir import CANONICAL_GENES, GeneState, KIRGenotype, parse_kir_genotype
from kirmatch.options import Options
from kirmatch.readers import (
    ReadResult,
    detect_hla_format,
    detect_kir_format,
    genotypes_table,
    read_hla,
    read_kir,
)
from kirmatch.readers.ping import read_ping
from kirmatch.readers.t1k import read_t1k
from kirmatch.tables import ReferenceTables, load_reference_tables

DATA = Path(__file__).resolve().parent / "data" / "readers"

GENES = ("KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR2DL4", "KIR2DL5", "KIR2DS1", "KIR2DS2",
         "KIR2DS3", "KIR2DS4", "KIR2DS5", "KIR3DL1", "KIR3DL2", "KIR3DL3", "KIR3DS1",
         "KIR2DP1", "KIR3DP1")


@pytest.fixture(scope="module")
def tables() -> ReferenceTables:
    return load_reference_tables()


def expected(spec: str) -> dict[str, str]:
    """``"KIR2DL1=003+004 KIR2DL2=NEG …"`` → gene → value; all 16 genes required."""
    out = dict(item.split("=", 1) for item in spec.split())
    assert tuple(out) == GENES, "an expectation must list all 16 genes in canonical order"
    return out


def assert_genes(genotype: KIRGenotype | HLAGenotype, spec: str) -> None:
    """Assert every gene's state and alleles (via its DKMS-style value)."""
    assert isinstance(genotype, KIRGenotype)
    want = expected(spec)
    got = {g.gene: g.value_string() for g in genotype.genes}
    assert got == want
    for g in genotype.genes:
        state = {"NEG": GeneState.ABSENT, "NA": GeneState.UNKNOWN}.get(want[g.gene],
                                                                     GeneState.PRESENT)
        assert g.state is state, g.gene


def same_meaning(a: KIRGenotype, b: KIRGenotype) -> bool:
    """Same state and the same allele candidates for every gene."""
    def norm(g: KIRGenotype) -> dict[str, tuple[str, object]]:
        out: dict[str, tuple[str, object]] = {}
        for t in g.genes:
            gts = None if t.genotypes is None else frozenset(
                tuple(sorted(c)) for c in t.genotypes)
            out[t.gene] = (t.state.value, gts)
        return out
    return norm(a) == norm(b)


def assert_round_trip(result: ReadResult, tables: ReferenceTables) -> None:
    for sid, g in result.genotypes.items():
        assert isinstance(g, KIRGenotype)
        back = parse_kir_genotype(g.to_string(), tables)
        assert same_meaning(g, back), (sid, g.to_string())
        # Unknown stays unknown (never absent) after the trip.
        for t in g.genes:
            if t.state is GeneState.UNKNOWN:
                assert back.gene(t.gene).state is GeneState.UNKNOWN


def reason(genotype: KIRGenotype | HLAGenotype, gene: str) -> str:
    assert isinstance(genotype, KIRGenotype)
    return genotype.gene(gene).reason


# ---------------------------------------------------------------------------
# PING
# ---------------------------------------------------------------------------

PING_CALLS = {
    "S1_KIR_": "KIR2DL1=003+004 KIR2DL2=NEG KIR2DL3=001+002 KIR2DL4=001+005 KIR2DL5=NEG "
               "KIR2DS1=NEG KIR2DS2=NEG KIR2DS3=NEG KIR2DS4=001+003 KIR2DS5=NEG "
               "KIR3DL1=001+004 KIR3DL2=001+002 KIR3DL3=001+003 KIR3DS1=NEG "
               "KIR2DP1=002+003 KIR3DP1=003+009",
    "S2_KIR_": "KIR2DL1=002 KIR2DL2=001 KIR2DL3=001 KIR2DL4=005+POS KIR2DL5=001+002 "
               "KIR2DS1=002 KIR2DS2=001 KIR2DS3=001 KIR2DS4=NA KIR2DS5=002 KIR3DL1=001 "
               "KIR3DL2=001+007 KIR3DL3=POS KIR3DS1=013 KIR2DP1=NA KIR3DP1=003",
    "S3_KIR_": "KIR2DL1=POS KIR2DL2=NA KIR2DL3=001|001+POS KIR2DL4=001+001 KIR2DL5=NEG "
               "KIR2DS1=002 KIR2DS2=NEG KIR2DS3=NEG KIR2DS4=001+001 KIR2DS5=NEG "
               "KIR3DL1=001|001+005 KIR3DL2=001+001 KIR3DL3=001+001 KIR3DS1=NA "
               "KIR2DP1=002+002 KIR3DP1=003+003",
    "S4_KIR_": "KIR2DL1=003+003 KIR2DL2=NEG KIR2DL3=001+001 KIR2DL4=001+001 KIR2DL5=NEG "
               "KIR2DS1=NEG KIR2DS2=NEG KIR2DS3=NEG KIR2DS4=001+001 KIR2DS5=NEG KIR3DL1=NA "
               "KIR3DL2=001+001 KIR3DL3=001+001 KIR3DS1=NA KIR2DP1=002+002 KIR3DP1=003+003",
}


def test_ping_calls_gene_by_gene(tables: ReferenceTables) -> None:
    res = read_ping(DATA / "ping" / "finalAlleleCalls.csv", tables, find_copy_number=False)
    assert res.format == "ping"
    assert list(res.genotypes) == list(PING_CALLS)  # file order, R row names as ids
    for sid, spec in PING_CALLS.items():
        assert_genes(res.genotypes[sid], spec)
    s2, s3, s4 = (res.genotypes[s] for s in ("S2_KIR_", "S3_KIR_", "S4_KIR_"))
    # `failed` is unknown with a reason and a warning, never absent.
    assert reason(s2, "KIR2DP1") == "failed"
    assert "kir_gene_failed(S2_KIR_ KIR2DP1)" in res.warnings["S2_KIR_"]
    assert reason(s4, "KIR3DL1") == reason(s4, "KIR3DS1") == "failed"
    # Alternatives that disagree on presence make the gene unknown.
    assert reason(s2, "KIR2DS4") == "genotype_alternatives"
    assert "ping_alternatives_disagree(S2_KIR_ KIR2DS4)" in res.warnings["S2_KIR_"]
    assert reason(s3, "KIR3DS1") == "genotype_alternatives"
    # A combined-name unresolved copy may be KIR2DL2 or KIR2DL3.
    assert reason(s3, "KIR2DL2") == "genotype_alternatives"
    assert "kir_gene_unknown(S3_KIR_ KIR2DL2)" in res.warnings["S3_KIR_"]
    assert res.warnings["S1_KIR_"] == ()


def test_ping_alternatives_that_agree_collapse(tables: ReferenceTables) -> None:
    res = read_ping(DATA / "ping" / "finalAlleleCalls.csv", tables, find_copy_number=False)
    s1 = res.genotypes["S1_KIR_"]
    assert isinstance(s1, KIRGenotype)
    # KIR2DS4*0010101+*0030101 and *00102+*0030102 are one protein-level genotype.
    assert s1.gene("KIR2DS4").genotypes == ((("KIR2DS4*001",), ("KIR2DS4*003",)),)
    # Every gene known and no alternatives left: the compact list form.
    assert "=" not in s1.to_string()


def test_ping_copy_number_frame_fills_and_cross_checks(tables: ReferenceTables) -> None:
    res = read_kir(DATA / "ping" / "finalAlleleCalls.csv", "ping", tables=tables)
    assert [Path(s).name for s in res.sources] == ["finalAlleleCalls.csv",
                                                   "manualCopyNumberFrame.csv"]
    assert list(res.genotypes) == [*PING_CALLS, "S5_KIR_"]  # CN-only sample kept, last
    assert_genes(res.genotypes["S1_KIR_"], PING_CALLS["S1_KIR_"])
    assert res.warnings["S1_KIR_"] == ()
    assert_genes(res.genotypes["S2_KIR_"], PING_CALLS["S2_KIR_"]
                 .replace("KIR2DS4=NA", "KIR2DS4=001").replace("KIR2DP1=NA", "KIR2DP1=POS"))
    assert "ping_filled_by_copy_number(S2_KIR_ KIR2DP1: failed, copy number 2)" \
        in res.warnings["S2_KIR_"]
    assert_genes(res.genotypes["S3_KIR_"], PING_CALLS["S3_KIR_"]
                 .replace("KIR2DS1=002", "KIR2DS1=NA").replace("KIR3DS1=NA", "KIR3DS1=NEG"))
    assert reason(res.genotypes["S3_KIR_"], "KIR2DS1") == "copy_number_conflict"
    assert "ping_copy_number_conflict(S3_KIR_ KIR2DS1: calls present, copy number 0)" \
        in res.warnings["S3_KIR_"]
    assert reason(res.genotypes["S3_KIR_"], "KIR2DL2") == "genotype_alternatives"  # CN NA
    assert_genes(res.genotypes["S4_KIR_"], PING_CALLS["S4_KIR_"]
                 .replace("KIR3DL1=NA", "KIR3DL1=POS").replace("KIR3DS1=NA", "KIR3DS1=POS"))
    assert_genes(res.genotypes["S5_KIR_"],
                 "KIR2DL1=POS KIR2DL2=POS KIR2DL3=POS KIR2DL4=POS KIR2DL5=POS KIR2DS1=POS "
                 "KIR2DS2=POS KIR2DS3=POS KIR2DS4=POS KIR2DS5=NEG KIR3DL1=POS KIR3DL2=POS "
                 "KIR3DL3=POS KIR3DS1=NEG KIR2DP1=POS KIR3DP1=POS")
    assert res.warnings["S5_KIR_"] == ("ping_no_allele_calls(S5_KIR_)",)
    assert_round_trip(res, tables)


def test_ping_results_folder_and_copy_number_alone(tables: ReferenceTables) -> None:
    folder = read_kir(DATA / "ping", tables=tables)
    assert folder.format == "ping" and len(folder.genotypes) == 5
    cn = read_kir(DATA / "ping" / "manualCopyNumberFrame.csv", tables=tables)
    assert cn.format == "ping"
    assert_genes(cn.genotypes["S3_KIR_"],
                 "KIR2DL1=POS KIR2DL2=NA KIR2DL3=POS KIR2DL4=POS KIR2DL5=NEG KIR2DS1=NEG "
                 "KIR2DS2=NEG KIR2DS3=NEG KIR2DS4=POS KIR2DS5=NEG KIR3DL1=POS KIR3DL2=POS "
                 "KIR3DL3=POS KIR3DS1=NEG KIR2DP1=POS KIR3DP1=POS")


def test_ping_explicit_copy_number_and_combined_zero(tables: ReferenceTables,
                                                     tmp_path: Path) -> None:
    calls = tmp_path / "calls.csv"
    calls.write_text('"","KIR2DL23","KIR3DL1S1"\n'
                     '"A","failed","KIR3DL1*00101+KIR3DL1S1*null"\n', encoding="utf-8")
    frame = tmp_path / "cn.csv"
    frame.write_text('"","KIR2DL23","KIR3DL1","KIR3DS1"\n"A",0,1,0\n', encoding="utf-8")
    res = read_kir(calls, "ping", tables=tables, copy_number=frame)
    a = res.genotypes["A"]
    assert isinstance(a, KIRGenotype)
    assert a.gene("KIR2DL2").state is a.gene("KIR2DL3").state is GeneState.ABSENT
    assert a.gene("KIR3DL1").genotypes == ((("KIR3DL1*001",),),)
    assert a.gene("KIR3DS1").state is GeneState.ABSENT
    assert a.gene("KIR2DS4").state is GeneState.UNKNOWN  # no column: untyped
    assert reason(a, "KIR2DS4") == "untyped"


def test_ping_r_write_table_header_without_row_name_cell(tables: ReferenceTables,
                                                        tmp_path: Path) -> None:
    calls = tmp_path / "finalAlleleCalls.csv"
    calls.write_text('"KIR2DL1","KIR2DS4"\n'
                     '"A","KIR2DL1*00302+KIR2DL1*null","KIR2DS4*null+KIR2DS4*null"\n',
                     encoding="utf-8")
    a = read_ping(calls, tables).genotypes["A"]
    assert isinstance(a, KIRGenotype)
    assert a.gene("KIR2DL1").genotypes == ((("KIR2DL1*003",),),)
    assert a.gene("KIR2DS4").state is GeneState.ABSENT


def test_ping_more_than_64_alternatives_is_failed(tables: ReferenceTables,
                                                  tmp_path: Path) -> None:
    calls = tmp_path / "finalAlleleCalls.csv"
    calls.write_text(',KIR2DL1,KIR2DS4,KIR3DL1S1\n'
                     'A,KIR2DL1*failed,FAILED,KIR3DL1*00101+KIR3DL1*00401 failed\n',
                     encoding="utf-8")
    res = read_ping(calls, tables)
    a = res.genotypes["A"]
    assert reason(a, "KIR2DL1") == reason(a, "KIR2DS4") == "failed"
    assert reason(a, "KIR3DL1") == reason(a, "KIR3DS1") == "failed"


@pytest.mark.parametrize(("header", "row", "exc", "match"), [
    ('"","KIR2DL1"', '"A","KIR2DL1*00302+KIR2DL2*00101"', KIRParseError,
     r"calls\.csv: .*KIR2DL2 call in the KIR2DL1 column.*\[row 1, column 'KIR2DL1'\]"),
    ('"","KIR2DL1"', '"A","KIR2DL1-00302"', KIRParseError,
     r"calls\.csv: .*expected GENE\*allele.*\[row 1, column 'KIR2DL1'\]"),
    ('"","KIR3DL1S1"', '"A","KIR3DL1S1*00101+KIR3DL1*00401"', KIRParseError,
     r"must name one gene.*\[row 1, column 'KIR3DL1S1'\]"),
    ('"","KIR2DL9"', '"A","KIR2DL1*001"', InputSchemaError,
     r"calls\.csv: column 'KIR2DL9' is not a PING KIR locus \[column 'KIR2DL9'\]"),
    ('"","KIR2DL1"', '"","KIR2DL1*001+KIR2DL1*002"', InputSchemaError,
     r"calls\.csv: blank sample id \[row 1"),
    ('"","KIR2DL1"', '"A","KIR2DL1*001"\n"A","KIR2DL1*002"', InputSchemaError,
     r"sample 'A' appears twice \(rows 1 and 2\)"),
])
def test_ping_malformed(tables: ReferenceTables, tmp_path: Path, header: str, row: str,
                        exc: type[Exception], match: str) -> None:
    p = tmp_path / "calls.csv"
    p.write_text(f"{header}\n{row}\n", encoding="utf-8")
    with pytest.raises(exc, match=match):
        read_ping(p, tables, find_copy_number=False)


def test_ping_unknown_allele_names_file_line_column(tables: ReferenceTables) -> None:
    with pytest.raises(UnknownAlleleError,
                       match=r"ping_bad_allele\.csv: unknown allele 'KIR2DL1\*99999'.*"
                             r"\[row 2, column 'KIR2DL1'\]"):
        read_kir(DATA / "ping_bad_allele.csv", "ping", tables=tables)


def test_ping_bad_copy_number(tables: ReferenceTables, tmp_path: Path) -> None:
    calls = tmp_path / "finalAlleleCalls.csv"
    calls.write_text(',KIR2DL1\nA,KIR2DL1*00302+KIR2DL1*null\n', encoding="utf-8")
    (tmp_path / "predictedCopyNumberFrame.csv").write_text(',KIR2DL1\nA,1.5\n',
                                                           encoding="utf-8")
    with pytest.raises(InputSchemaError,
                       match=r"predictedCopyNumberFrame\.csv: copy number '1\.5' is not a "
                             r"non-negative integer \[row 1, column 'KIR2DL1'\]"):
        read_kir(calls, tables=tables)


# ---------------------------------------------------------------------------
# T1K
# ---------------------------------------------------------------------------

T1K_D1 = ("KIR2DL1=003+004 KIR2DL2=001 KIR2DL3=001 KIR2DL4=001+005 KIR2DL5=001 KIR2DS1=NEG "
          "KIR2DS2=NA KIR2DS3=NEG KIR2DS4=001+POS KIR2DS5=NEG KIR3DL1=001/002+004 "
          "KIR3DL2=001+007 KIR3DL3=NA KIR3DS1=NEG KIR2DP1=001+002 KIR3DP1=003")
T1K_D2 = ("KIR2DL1=002 KIR2DL2=NEG KIR2DL3=001+002 KIR2DL4=001 KIR2DL5=001+002 KIR2DS1=002 "
          "KIR2DS2=NEG KIR2DS3=NEG KIR2DS4=001 KIR2DS5=002 KIR3DL1=001 KIR3DL2=001 "
          "KIR3DL3=001 KIR3DS1=013 KIR2DP1=001 KIR3DP1=003")


def test_t1k_folder_gene_by_gene(tables: ReferenceTables) -> None:
    res = read_kir(DATA / "t1k", "t1k", tables=tables)
    assert res.format == "t1k"
    assert list(res.genotypes) == ["D1", "D2"]  # file name minus _genotype.tsv
    assert_genes(res.genotypes["D1"], T1K_D1)
    assert_genes(res.genotypes["D2"], T1K_D2)
    d1 = res.genotypes["D1"]
    # All calls at quality <= 0: unknown (low_quality), not absent.
    assert reason(d1, "KIR2DS2") == "low_quality"
    # A gene missing from the file is unknown (untyped).
    assert reason(d1, "KIR3DL3") == "untyped"
    assert res.warnings["D1"] == (
        "t1k_kir2dl5_low_quality(D1 KIR2DL5A*001 quality 12)",
        "t1k_low_quality(D1 KIR2DS2*001 quality 0)",
        "t1k_low_quality(D1 KIR2DS4*003 quality 0)",
        "kir_gene_unknown(D1 KIR2DS2)",
        "kir_gene_unknown(D1 KIR3DL3)",
    )
    assert res.warnings["D2"] == ()
    assert_round_trip(res, tables)


def test_t1k_quality_threshold_option(tables: ReferenceTables) -> None:
    res = read_kir(DATA / "t1k" / "D1_genotype.tsv", tables=tables,
                   options=Options(t1k_min_quality=50.0))
    d1 = res.genotypes["D1"]
    assert_genes(d1, T1K_D1.replace("KIR2DL2=001", "KIR2DL2=NA")
                 .replace("KIR2DL5=001", "KIR2DL5=NA")
                 .replace("KIR3DL1=001/002+004", "KIR3DL1=001/002+POS"))
    assert reason(d1, "KIR2DL2") == reason(d1, "KIR2DL5") == "low_quality"
    assert "t1k_low_quality(D1 KIR3DL1*004 quality 33)" in res.warnings["D1"]
    # The default keeps quality > 0 (DOMAIN.md §A.1).
    assert Options().t1k_min_quality == 0.0


T1K_GOOD = "KIR2DL1\t2\tKIR2DL1*00302\t120.5\t60\tKIR2DL1*004\t98.2\t60\n"


@pytest.mark.parametrize("shape", ["gzip", "utf-16", "parquet"])
@pytest.mark.parametrize(("name", "kind"), [("midas_kir.csv", "kir"), ("hla_columns.csv", "hla"),
                                           ("t1k_consolidated.csv", "kir")])
def test_genotyper_tables_in_every_table_form(tables: ReferenceTables, tmp_path: Path,
                                              name: str, kind: str, shape: str) -> None:
    """The guide ("Text files"): every table kirmatch reads, the genotyper files
    too, may be gzip, UTF-16 with a byte-order mark or Parquet. Detecting the
    format (and telling a T1K consolidated table) read them as UTF-8 text and
    refused them ("binary content"); each now reads as the plain file does."""
    import gzip

    import pandas as pd

    plain = DATA / name
    if shape == "gzip":
        path = tmp_path / (name + ".gz")
        path.write_bytes(gzip.compress(plain.read_bytes()))
    elif shape == "utf-16":
        path = tmp_path / name
        path.write_bytes(plain.read_text(encoding="utf-8").encode("utf-16"))   # with a BOM
    else:
        path = tmp_path / name.replace(".csv", ".parquet")
        pd.read_csv(plain, dtype=str, keep_default_na=False).to_parquet(path)
    read = (lambda p: read_kir(p, tables=tables)) if kind == "kir" else read_hla
    want, got = read(plain), read(path)
    assert got.format == want.format
    assert {k: str(v) for k, v in got.genotypes.items()} == \
        {k: str(v) for k, v in want.genotypes.items()}
    assert got.warnings == want.warnings


@pytest.mark.parametrize("form", ["file", "consolidated", "matrix"])
def test_a_missing_paralog_or_variant_is_unknown(tables: ReferenceTables, tmp_path: Path,
                                                 form: str) -> None:
    """§C.13 T1K: "a gene missing from the file is unknown"; §A.0: KIR2DL5A and
    KIR2DL5B count as KIR2DL5, and unknown is never absent. KIR2DL5A absent
    with no KIR2DL5B line (or column) says nothing of KIR2DL5B: KIR2DL5 is
    unknown, warned, and the B-content models stay unknown; so is KIR2DS4 from
    a lone 2DS4N (deletion-variant) column."""
    if form == "file":
        path = tmp_path / "R1_genotype.tsv"
        path.write_text(T1K_GOOD + "KIR2DL5A\t0\t.\t0\t-1\t.\t0\t-1\n"
                        "KIR2DS4\t1\tKIR2DS4*001\t70\t60\t.\t0\t-1\n", encoding="utf-8")
    elif form == "consolidated":
        path = tmp_path / "t1k.csv"
        path.write_text("sample_id,kir_gene,allele_count,abundance,quality_score\n"
                        "R1,KIR2DL1,2,100,60\nR1,KIR2DL5A,0,0,-1\nR1,KIR2DS4,1,50,60\n",
                        encoding="utf-8")
    else:
        path = tmp_path / "kir.csv"
        path.write_text("ID,KIR2DL1,KIR2DL5A,KIR2DS4N\nR1,1,0,0\n", encoding="utf-8")
    res = read_kir(path, "matrix" if form == "matrix" else "t1k", tables=tables)
    g = res.genotypes["R1"]
    assert g.gene("KIR2DL5").state is GeneState.UNKNOWN
    assert "kir_gene_unknown(R1 KIR2DL5)" in res.warnings["R1"]
    assert g.gene("KIR2DS4").state is (GeneState.UNKNOWN if form == "matrix"
                                       else GeneState.PRESENT)
    # with both paralogs (or the gene's own column) it is decided as before
    if form == "matrix":
        path.write_text("ID,KIR2DL1,KIR2DL5A,KIR2DL5B,KIR2DS4,KIR2DS4N\nR1,1,0,0,0,0\n",
                        encoding="utf-8")
        both = read_kir(path, "matrix", tables=tables).genotypes["R1"]
        assert both.gene("KIR2DL5").state is both.gene("KIR2DS4").state is GeneState.ABSENT


@pytest.mark.parametrize(("text", "exc", "match"), [
    (T1K_GOOD + "KIR2DL2\t1\tKIR2DL2*999\t80\t45\t.\t0\t-1\n", UnknownAlleleError,
     r"S9_genotype\.tsv: unknown allele 'KIR2DL2\*999'.*\[row 2, column 'allele_1'\]"),
    (T1K_GOOD + "KIR2DL2\t1\tKIR2DL2*001\t80\t45\n", InputSchemaError,
     r"S9_genotype\.tsv: 5 columns, T1K writes 8 \(allele_2 is missing\) "
     r"\[row 2, column 'allele_2'\]"),
    (T1K_GOOD + "KIR2DL2\t1\tKIR2DL2*001\t80\thigh\t.\t0\t-1\n", InputSchemaError,
     r"quality_1 'high' is not a number \[row 2, column 'quality_1'\]"),
    (T1K_GOOD + "KIR2DL2\tone\tKIR2DL2*001\t80\t45\t.\t0\t-1\n", InputSchemaError,
     r"num_alleles 'one' is not a non-negative integer \[row 2, column 'num_alleles'\]"),
    (T1K_GOOD + T1K_GOOD, InputSchemaError, r"gene KIR2DL1 on lines 1 and 2 \[row 2"),
    ("KIR2DL1\t1\tKIR2DL2*001\t80\t45\t.\t0\t-1\n", KIRParseError,
     r"not an allele of KIR2DL1 \[row 1, column 'allele_1'\]"),
    ("HLA-A\t2\tHLA-A*02:01\t80\t60\tHLA-A*24:02\t70\t60\n", InputSchemaError,
     r"'HLA-A' is not a KIR gene \[row 1, column 'gene_name'\]"),
    ("KIR2DL1\t0\tKIR2DL1*001\t80\t60\t.\t0\t-1\n", InputSchemaError,
     r"num_alleles is 0 but an allele is given \[row 1"),
    ("\n  \n", InputSchemaError, r"S9_genotype\.tsv: empty file"),
])
def test_t1k_malformed(tables: ReferenceTables, tmp_path: Path, text: str,
                       exc: type[Exception], match: str) -> None:
    p = tmp_path / "S9_genotype.tsv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(exc, match=match):
        read_t1k(p, tables)


def test_t1k_undecodable_bytes(tables: ReferenceTables, tmp_path: Path) -> None:
    p = tmp_path / "S9_genotype.tsv"
    p.write_bytes(T1K_GOOD.encode() + b"KIR2DL2\t1\tKIR2DL2*001\t80\t45\t\xff\t0\t-1\n")
    with pytest.raises(InputSchemaError,
                       match=r"S9_genotype\.tsv: undecodable bytes \(not UTF-8\).*\[row 2\]"):
        read_t1k(p, tables)


def test_t1k_empty_folder(tables: ReferenceTables, tmp_path: Path) -> None:
    with pytest.raises(InputSchemaError, match=r"no \*_genotype\.tsv files"):
        read_t1k(tmp_path, tables)


# ---------------------------------------------------------------------------
# KIR*IMP
# ---------------------------------------------------------------------------

KIRIMP_P1 = ("KIR2DL1=POS KIR2DL2=NEG KIR2DL3=POS KIR2DL4=POS KIR2DL5=NEG KIR2DS1=NEG "
             "KIR2DS2=NA KIR2DS3=NEG KIR2DS4=POS KIR2DS5=NEG KIR3DL1=POS KIR3DL2=NA "
             "KIR3DL3=NA KIR3DS1=NA KIR2DP1=POS KIR3DP1=POS")
KIRIMP_P2 = ("KIR2DL1=POS KIR2DL2=POS KIR2DL3=NA KIR2DL4=NA KIR2DL5=NA KIR2DS1=NA KIR2DS2=NA "
             "KIR2DS3=NA KIR2DS4=POS KIR2DS5=NA KIR3DL1=POS KIR3DL2=NA KIR3DL3=NA KIR3DS1=NA "
             "KIR2DP1=NA KIR3DP1=NA")


def test_kirimp_gene_by_gene(tables: ReferenceTables) -> None:
    res = read_kir(DATA / "imputations.csv", tables=tables)
    assert res.format == "kirimp"
    assert list(res.genotypes) == ["P1", "P2"]  # ID_2, or ID_1 when ID_2 is blank
    assert_genes(res.genotypes["P1"], KIRIMP_P1)
    assert_genes(res.genotypes["P2"], KIRIMP_P2)
    w1 = res.warnings["P1"]
    assert "kirimp_exon_disagree(P1 KIR3DL1: ex4 present, ex9 absent)" in w1
    assert "kirimp_low_posterior(P1 KIR2DS2)" in w1  # a 1 below 0.5
    assert "kirimp_low_posterior(P1 KIR3DS1)" in w1  # a 0 below 0.5: not absent
    assert "kir_gene_unknown(P1 KIR3DL2)" in w1  # not imputed
    assert reason(res.genotypes["P1"], "KIR3DS1") == "low_posterior"
    # ex4 alone (no ex9 rows) is not a disagreement.
    assert not any(w.startswith("kirimp_exon_disagree") for w in res.warnings["P2"])
    assert reason(res.genotypes["P2"], "KIR3DS1") == "low_posterior"  # one haplotype row
    assert_round_trip(res, tables)


def test_kirimp_posterior_threshold_option(tables: ReferenceTables) -> None:
    low = read_kir(DATA / "imputations.csv", "kirimp", tables=tables,
                   options=Options(kirimp_min_posterior=0.4))
    assert_genes(low.genotypes["P1"], KIRIMP_P1.replace("KIR2DS2=NA", "KIR2DS2=POS")
                 .replace("KIR3DS1=NA", "KIR3DS1=NEG"))
    high = read_kir(DATA / "imputations.csv", "kirimp", tables=tables,
                    options=Options(kirimp_min_posterior=0.6))
    assert_genes(high.genotypes["P2"], KIRIMP_P2.replace("KIR2DL2=POS", "KIR2DL2=NA"))
    assert Options().kirimp_min_posterior == 0.5


KIRIMP_HEADER = "ID_1,ID_2,haplotypeID,locus,imputedType,posteriorProbability\n"


@pytest.mark.parametrize(("text", "match"), [
    ("ID_1,ID_2,haplotypeID,locus,imputedType\n1,A,hap.1.1,KIR2DL1,1\n",
     r"imp\.csv: missing KIR\*IMP column\(s\) posteriorProbability \[column"),
    (KIRIMP_HEADER + "1,A,hap.1.1,KIR9XX1,1,0.9\n",
     r"imp\.csv: 'KIR9XX1' is not a KIR\*IMP locus \[row 1, column 'locus'\]"),
    (KIRIMP_HEADER + "1,A,hap.1.1,KIR2DL1,2,0.9\n",
     r"imputedType '2' for KIR2DL1 should be 0 or 1 \[row 1, column 'imputedType'\]"),
    (KIRIMP_HEADER + "1,A,hap.1.1,KIR2DL1,1,1.7\n",
     r"posteriorProbability '1\.7' should be a number within 0\.\.1 "
     r"\[row 1, column 'posteriorProbability'\]"),
    (KIRIMP_HEADER + "1,A,hap.1.1,KIR2DL1,1,0.9\n1,A,hap.1.1,KIR2DL1,0,0.9\n",
     r"sample 'A' locus KIR2DL1 haplotype 1 on rows 1 and 2 \[row 2"),
    (KIRIMP_HEADER + "1,A,hap.1.3,KIR2DL1,1,0.9\n",
     r"haplotypeID 'hap\.1\.3' should end in \.1 or \.2"),
    (KIRIMP_HEADER + ",,hap.1.1,KIR2DL1,1,0.9\n", r"blank sample id"),
])
def test_kirimp_malformed(tables: ReferenceTables, tmp_path: Path, text: str,
                          match: str) -> None:
    p = tmp_path / "imp.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(InputSchemaError, match=match):
        read_kir(p, "kirimp", tables=tables)


# ---------------------------------------------------------------------------
# Presence/absence and per-gene string matrices
# ---------------------------------------------------------------------------

MATRIX_CASES = {
    ("midas_kir.csv", "M1"): "KIR2DL1=POS KIR2DL2=NEG KIR2DL3=POS KIR2DL4=POS KIR2DL5=NEG "
    "KIR2DS1=NEG KIR2DS2=NEG KIR2DS3=NEG KIR2DS4=POS KIR2DS5=NEG KIR3DL1=POS KIR3DL2=POS "
    "KIR3DL3=POS KIR3DS1=NEG KIR2DP1=POS KIR3DP1=POS",
    ("midas_kir.csv", "M2"): "KIR2DL1=POS KIR2DL2=POS KIR2DL3=NA KIR2DL4=POS KIR2DL5=POS "
    "KIR2DS1=POS KIR2DS2=POS KIR2DS3=POS KIR2DS4=POS KIR2DS5=NEG KIR3DL1=POS KIR3DL2=POS "
    "KIR3DL3=POS KIR3DS1=POS KIR2DP1=POS KIR3DP1=POS",
    ("midas_kir.csv", "M3"): " ".join(f"{g}=NA" for g in GENES),
    ("afnd_kir.csv", "Pop A"): "KIR2DL1=POS KIR2DL2=NEG KIR2DL3=POS KIR2DL4=POS KIR2DL5=NEG "
    "KIR2DS1=NEG KIR2DS2=NEG KIR2DS3=NEG KIR2DS4=POS KIR2DS5=NEG KIR3DL1=POS KIR3DL2=POS "
    "KIR3DL3=POS KIR3DS1=NEG KIR2DP1=POS KIR3DP1=POS",
    ("afnd_kir.csv", "Pop B"): "KIR2DL1=POS KIR2DL2=POS KIR2DL3=NA KIR2DL4=POS KIR2DL5=NA "
    "KIR2DS1=POS KIR2DS2=POS KIR2DS3=NA KIR2DS4=POS KIR2DS5=NEG KIR3DL1=POS KIR3DL2=POS "
    "KIR3DL3=POS KIR3DS1=POS KIR2DP1=POS KIR3DP1=POS",
    ("dkms_kir.csv", "DK1"): "KIR2DL1=001+002 KIR2DL2=NEG KIR2DL3=POS KIR2DL4=POS "
    "KIR2DL5=NEG KIR2DS1=NEG KIR2DS2=NEG KIR2DS3=NEG KIR2DS4=003+004|006+010 KIR2DS5=NEG "
    "KIR3DL1=001/095+004 KIR3DL2=POS KIR3DL3=POS KIR3DS1=NEG KIR2DP1=POS KIR3DP1=POS",
    ("dkms_kir.csv", "DK2"): "KIR2DL1=POS KIR2DL2=POS KIR2DL3=NA KIR2DL4=NA KIR2DL5=POS "
    "KIR2DS1=POS KIR2DS2=POS KIR2DS3=NEG KIR2DS4=POS KIR2DS5=NEG KIR3DL1=NEG KIR3DL2=POS "
    "KIR3DL3=POS KIR3DS1=013 KIR2DP1=POS KIR3DP1=POS",
}


@pytest.mark.parametrize(("file", "sample"), list(MATRIX_CASES),
                         ids=[f"{f}:{s}" for f, s in MATRIX_CASES])
def test_matrix_gene_by_gene(tables: ReferenceTables, file: str, sample: str) -> None:
    res = read_kir(DATA / file, tables=tables)
    assert res.format == "matrix"
    assert_genes(res.genotypes[sample], MATRIX_CASES[(file, sample)])
    assert_round_trip(res, tables)


def test_matrix_not_tested_and_blank_are_unknown(tables: ReferenceTables) -> None:
    res = read_kir(DATA / "afnd_kir.csv", "matrix", tables=tables)
    b = res.genotypes["Pop B"]
    assert reason(b, "KIR2DL3") == reason(b, "KIR2DS3") == "not_tested"  # `n`
    assert reason(b, "KIR2DL5") == "untyped"  # blank
    assert res.warnings["Pop B"] == ("kir_gene_unknown(Pop B KIR2DL3)",
                                     "kir_gene_unknown(Pop B KIR2DL5)",
                                     "kir_gene_unknown(Pop B KIR2DS3)")
    assert list(res.genotypes) == ["Pop A", "Pop B"]


@pytest.mark.parametrize("column", ["KIR2DL1", "2DL1", "kir_2DL1", "KIR-2DL1", "kir.2dl1"])
def test_matrix_column_names(tables: ReferenceTables, tmp_path: Path, column: str) -> None:
    p = tmp_path / "m.csv"
    p.write_text(f"ID,{column},KIR2DS4N\nA,POS,1\n", encoding="utf-8")
    a = read_kir(p, "matrix", tables=tables).genotypes["A"]
    assert isinstance(a, KIRGenotype)
    assert a.gene("KIR2DL1").state is GeneState.PRESENT
    assert a.gene("KIR2DS4").state is GeneState.PRESENT  # the deletion variant counts
    assert a.gene("KIR2DL2").state is GeneState.UNKNOWN  # no column: untyped


def test_matrix_yes_no_convention(tables: ReferenceTables, tmp_path: Path) -> None:
    p = tmp_path / "yn.csv"
    p.write_text("ID,2DL1,2DL2\nA,Y,N\n", encoding="utf-8")
    a = read_kir(p, "matrix", tables=tables).genotypes["A"]
    assert isinstance(a, KIRGenotype)
    assert a.gene("KIR2DL2").state is GeneState.ABSENT  # N is "no" where Y is used


def test_matrix_failed_value_is_unknown_with_warning(tables: ReferenceTables,
                                                     tmp_path: Path) -> None:
    p = tmp_path / "f.csv"
    p.write_text("sample_id,kir_2DL1\nA,failed\n", encoding="utf-8")
    res = read_kir(p, tables=tables)
    assert reason(res.genotypes["A"], "KIR2DL1") == "failed"
    assert "kir_gene_failed(A KIR2DL1)" in res.warnings["A"]


@pytest.mark.parametrize(("text", "exc", "match"), [
    ("ID,KIR2DL6\nA,1\n", InputSchemaError,
     r"m\.csv: column 'KIR2DL6' is not a KIR gene known to IPD-KIR 2\.13\.0"),
    ("ID,KIR2DL1,HLA-H_1\nA,1,x\n", InputSchemaError,
     r"m\.csv: column 'HLA-H_1' looks like a typing column"),
    ("ID,kir_3DL1\nA,001+004\nB,001+7x\n", KIRParseError,
     r"m\.csv: cannot parse '001\+7x'.*\[row 2, column 'kir_3DL1'\]"),
    ("ID,kir_3DL1\nA,001+999\n", UnknownAlleleError,
     r"m\.csv: unknown allele 'KIR3DL1\*999'.*\[row 1, column 'kir_3DL1'\]"),
    ("ID,KIR2DL1\nA,1\nA,0\n", InputSchemaError,
     r"m\.csv: sample_id 'A' has 2 conflicting records in the KIR file \(rows 1, 2\)"),
    ("ID,KIR2DL1\nA,1,0\n", InputSchemaError, r"m\.csv: row 1 has 3 fields but the header has 2 "
     r"\(extra value '0'\) \[row 1\]"),
    ("ID,kir,KIR2DL1\nA,KIR2DL1,1\n", InputSchemaError, r"column 'KIR2DL1' is a KIR gene column next to the KIR genotype column 'kir'"),
])
def test_matrix_malformed(tables: ReferenceTables, tmp_path: Path, text: str,
                          exc: type[Exception], match: str) -> None:
    p = tmp_path / "m.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(exc, match=match):
        read_kir(p, "matrix", tables=tables)


def test_matrix_whole_genotype_column_and_gl_strings(tables: ReferenceTables,
                                                     tmp_path: Path) -> None:
    p = tmp_path / "g.csv"
    p.write_text("sample_id,hla,kir\n"
                 "A,,kir#2.13.0#KIR2DL1*001+KIR2DL1*002^KIR3DL1*001+KIR3DS1*013\n"
                 "B,,KIR2DL1+KIR2DL3+KIR3DL1\n", encoding="utf-8")
    res = read_kir(p, tables=tables)
    assert res.format == "matrix"
    a, b = res.genotypes["A"], res.genotypes["B"]
    assert isinstance(a, KIRGenotype) and isinstance(b, KIRGenotype)
    # A GL string marks no gene absent: genes not mentioned are unknown.
    assert a.gene("KIR2DS4").state is GeneState.UNKNOWN
    assert a.gene("KIR3DS1").genotypes == ((("KIR3DS1*013",),),)
    # The gene-list convention: genes not mentioned are absent.
    assert b.gene("KIR2DS4").state is GeneState.ABSENT


# ---------------------------------------------------------------------------
# Round trip through the genotypes table (every KIR fixture, every sample)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["ping", "t1k", "imputations.csv", "midas_kir.csv",
                                    "afnd_kir.csv", "dkms_kir.csv"])
def test_kir_strings_read_back_with_the_same_meaning(tables: ReferenceTables,
                                                     source: str) -> None:
    res = read_kir(DATA / source, tables=tables)
    assert_round_trip(res, tables)
    for g in res.genotypes.values():
        assert isinstance(g, KIRGenotype)
        assert tuple(t.gene for t in g.genes) == CANONICAL_GENES
        if any(t.state is GeneState.UNKNOWN for t in g.genes):
            # The explicit per-gene form, so unknown is written as NA, not left out.
            assert all(f"{t}=" in g.to_string() for t in CANONICAL_GENES)


# ---------------------------------------------------------------------------
# HLA
# ---------------------------------------------------------------------------

def test_hla_gl_table(tables: ReferenceTables) -> None:
    res = read_hla(DATA / "hla_gl.csv")
    assert res.format == "gl"
    assert {s: str(g) for s, g in res.genotypes.items()} == {
        "R1": "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01",
        "D1": "A*01:01:01:01/A*01:02+A*24:02:01:01^B*08:01+B*57:01^C*07:01+C*06:02",
        "D2": "A*02:01+A*03:01^B*35:01+B*44:03^C*04:01+C*16:01|C*04:01+C*16:02",
        "D3": "",
    }
    d2 = res.genotypes["D2"]
    assert isinstance(d2, HLAGenotype)
    c = d2.locus("C")
    assert c is not None and c.is_ambiguous_genotype  # `|`: two genotype candidates
    assert res.warnings["D1"] == ("gl_version(D1 hla 3.25.0)",)
    assert res.warnings["D3"] == ("hla_untyped(D3 A)", "hla_untyped(D3 B)",
                                  "hla_untyped(D3 C)")  # kept, never dropped
    # Same objects as the parser gives.
    assert res.genotypes["R1"] == parse_hla_genotype(
        "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01")


def test_hla_columns(tables: ReferenceTables) -> None:
    res = read_hla(DATA / "hla_columns.csv")
    assert res.format == "columns"
    assert {s: str(g) for s, g in res.genotypes.items()} == {
        "R1": "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01",
        "D1": "A*01:01+A*24:02^B*08:01+B*57:01^C*07:01/C*07:06",
        "D2": "A*02:01^B*35:01+B*44:03",
    }
    assert res.warnings["D2"] == ("hla_untyped(D2 C)",)
    pre = read_hla(DATA / "hla_columns_prefixed.tsv")
    assert pre.format == "columns"
    # NNNN in a DRB3 column is the absent gene (a typing), not a blank
    assert str(pre.genotypes["T1"]) == ("A*11:01+A*32:01^B*51:01+B*15:01^C*03:04+C*15:02"
                                        "^DRB3*NNNN+DRB3*NNNN")


@pytest.mark.parametrize(("text", "exc", "match"), [
    ("ID,A_1,A_2\nR1,02:01,24:0x\n", HLAParseError,
     r"h\.csv: cannot parse '24:0x'.*\[row 1, column 'A_2'\]"),
    ("ID,A_1,B_1\nR1,02:01,A*01:01\n", HLAParseError,
     r"allele of locus A in a B column \[row 1, column 'B_1'\]"),
    ("ID,A_1,race\nR1,02:01,A*01:01\n", InputSchemaError,
     r"h\.csv: column 'race' holds allele names \('A\*01:01' …\)"),
])
def test_hla_columns_malformed(tmp_path: Path, text: str, exc: type[Exception],
                               match: str) -> None:
    p = tmp_path / "h.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(exc, match=match):
        read_hla(p, "columns")


def test_columns_without_typings_are_ignored_and_listed(tmp_path: Path,
                                                      tables: ReferenceTables) -> None:
    """One grammar: a column that is not a typing is ignored and listed, never read."""
    p = tmp_path / "h.csv"
    p.write_text("ID,A_1,race,notes\nR1,02:01,x,y\n", encoding="utf-8")
    res = read_hla(p, "columns")
    assert str(res.genotypes["R1"]) == "A*02:01" and res.ignored == ("race", "notes")
    m = tmp_path / "m.csv"
    m.write_text("ID,KIR2DL1,notes\nA,1,x\n", encoding="utf-8")
    res = read_kir(m, "matrix", tables=tables)
    assert res.ignored == ("notes",)


def test_hla_gl_malformed(tmp_path: Path) -> None:
    p = tmp_path / "g.csv"
    p.write_text("sample_id,hla\nR1,A*02:01+A*24:02\nR2,A*02:01+B*07:0x\n", encoding="utf-8")
    with pytest.raises(HLAParseError, match=r"g\.csv: cannot parse .*\[row 2, column 'hla'\]"):
        read_hla(p, "gl")


def test_hla_gl_headerless_two_columns(tmp_path: Path) -> None:
    p = tmp_path / "g.tsv"
    p.write_text("R1\tA*02:01+A*24:02\nR2\tA*01:01\n", encoding="utf-8")
    res = read_hla(p)
    assert res.format == "gl"
    assert list(res.genotypes) == ["R1", "R2"]


def test_hml_two_samples() -> None:
    res = read_hla(DATA / "two_samples.hml")
    assert res.format == "hml"
    assert {s: str(g) for s, g in res.genotypes.items()} == {
        "HML-001": "A*02:01:01:01+A*24:02:01:01^B*07:02:01:01+B*44:02:01:01/B*44:02:01:02S"
                   "^C*07:02:01:01+C*05:01:01:01|C*07:02:01:01+C*05:01:01:02",
        "HML-002": "A*01:01+A*03:01^B*08:01+B*35:01",
    }
    assert res.warnings["HML-001"] == ("hml_not_hla(HML-001 KIR)",)
    assert res.warnings["HML-002"] == ("hml_allele_version(HML-002 IMGT/HLA 3.25.0)",
                                       "hla_untyped(HML-002 C)")


@pytest.mark.parametrize(("file", "match"), [
    ("doctype.hml", r"doctype\.hml: refusing XML with a <!DOCTYPE declaration.*\[row 2\]"),
    ("broken.hml", r"broken\.hml: not well-formed XML \(mismatched tag.*\[row 7\]"),
    ("bad_gl.hml", r"bad_gl\.hml: cannot parse .*07:0x.*\[row 11, column 'glstring'\]"),
])
def test_hml_malformed(file: str, match: str) -> None:
    with pytest.raises(InputSchemaError if file != "bad_gl.hml" else HLAParseError,
                       match=match):
        read_hla(DATA / file, "hml")


def test_hml_entity_without_doctype_keyword_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "e.hml"
    p.write_text('<?xml version="1.0"?>\n<!ENTITY x "y">\n<hml/>\n', encoding="utf-8")
    with pytest.raises(InputSchemaError, match=r"refusing XML with a <!ENTITY"):
        read_hla(p, "hml")


def test_hml_not_hml_root(tmp_path: Path) -> None:
    p = tmp_path / "x.xml"
    p.write_text('<?xml version="1.0"?>\n<report><sample id="1"/></report>\n',
                 encoding="utf-8")
    with pytest.raises(InputSchemaError, match=r"root element is <report>, not <hml>"):
        read_hla(p)


# ---------------------------------------------------------------------------
# Format detection and the facade
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "fmt"), [
    ("ping", "ping"), ("ping/finalAlleleCalls.csv", "ping"),
    ("ping/manualCopyNumberFrame.csv", "ping"), ("ping_bad_allele.csv", "ping"),
    ("t1k", "t1k"), ("t1k/D1_genotype.tsv", "t1k"), ("imputations.csv", "kirimp"),
    ("midas_kir.csv", "matrix"), ("afnd_kir.csv", "matrix"), ("dkms_kir.csv", "matrix"),
])
def test_detect_kir_format(path: str, fmt: str) -> None:
    assert detect_kir_format(DATA / path) == fmt


@pytest.mark.parametrize(("path", "fmt"), [
    ("hla_gl.csv", "gl"), ("hla_columns.csv", "columns"),
    ("hla_columns_prefixed.tsv", "columns"), ("two_samples.hml", "hml"),
])
def test_detect_hla_format(path: str, fmt: str) -> None:
    assert detect_hla_format(DATA / path) == fmt


def test_t1k_content_detection_without_the_file_name(tmp_path: Path) -> None:
    p = tmp_path / "calls.tsv"
    p.write_text(T1K_GOOD, encoding="utf-8")
    assert detect_kir_format(p) == "t1k"


def test_detection_failures(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("name,age\nA,3\n", encoding="utf-8")
    with pytest.raises(InputSchemaError, match=r"x\.csv: cannot tell the KIR format"):
        detect_kir_format(p)
    with pytest.raises(InputSchemaError, match=r"x\.csv: cannot tell the HLA format"):
        detect_hla_format(p)
    empty = tmp_path / "e.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(InputSchemaError, match=r"e\.csv: empty file"):
        read_kir(empty)


def test_unknown_format_name_is_a_usage_error(tables: ReferenceTables) -> None:
    with pytest.raises(UsageError, match="unknown KIR format 'kpi'"):
        read_kir(DATA / "midas_kir.csv", "kpi", tables=tables)
    with pytest.raises(UsageError, match="unknown HLA format 'hlahd'"):
        read_hla(DATA / "hla_gl.csv", "hlahd")


def test_every_error_is_a_kirmatch_error(tables: ReferenceTables) -> None:
    with pytest.raises(KirmatchError):
        read_kir(DATA / "ping_bad_allele.csv", tables=tables)


def test_genotypes_table_joins_by_sample(tables: ReferenceTables) -> None:
    kir = ReadResult("matrix", {"A": parse_kir_genotype("KIR2DL1+KIR3DL1", tables),
                                "B": parse_kir_genotype("KIR2DL1=POS", tables)}, {})
    hla = ReadResult("gl", {"B": parse_hla_genotype("A*01:01"),
                            "C": parse_hla_genotype("A*02:01")}, {})
    rows = genotypes_table(kir, hla)
    assert [r[0] for r in rows] == ["B", "C", "A"]
    assert rows[1] == ("C", "A*02:01", "")
    assert rows[2][1] == ""
    assert parse_kir_genotype(rows[0][2], tables).gene("KIR2DL2").state is GeneState.UNKNOWN


# ---------------------------------------------------------------------------
# kirmatch convert
# ---------------------------------------------------------------------------

runner = CliRunner()


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_convert_ping_and_hla(tables: ReferenceTables, tmp_path: Path) -> None:
    hla = tmp_path / "hla.csv"
    hla.write_text("sample_id,hla\nS1_KIR_,A*02:01+A*24:02\nR9,A*01:01\n", encoding="utf-8")
    out = tmp_path / "genotypes.csv"
    result = runner.invoke(app, ["convert", "--kir", str(DATA / "ping"), "--hla", str(hla),
                                 "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "kir: detected ping" in result.stderr
    assert "manualCopyNumberFrame.csv" in result.stderr
    assert "hla: detected gl" in result.stderr
    assert "warning: ping_copy_number_conflict(S3_KIR_ KIR2DS1" in result.stderr
    rows = read_csv(out)
    assert list(rows[0]) == ["sample_id", "hla", "kir"]
    assert [r["sample_id"] for r in rows] == ["S1_KIR_", "R9", "S2_KIR_", "S3_KIR_",
                                              "S4_KIR_", "S5_KIR_"]
    by_id = {r["sample_id"]: r for r in rows}
    assert by_id["R9"]["kir"] == ""  # in the HLA input only
    assert by_id["S2_KIR_"]["hla"] == ""  # in the KIR input only
    assert by_id["S1_KIR_"]["hla"] == "A*02:01+A*24:02"
    read = read_kir(DATA / "ping", tables=tables)
    for sid, g in read.genotypes.items():
        assert isinstance(g, KIRGenotype)
        back = parse_kir_genotype(by_id[sid]["kir"], tables)
        assert same_meaning(g, back), sid
    s3 = parse_kir_genotype(by_id["S3_KIR_"]["kir"], tables)
    assert s3.gene("KIR2DS1").state is GeneState.UNKNOWN  # unknown, not absent


def test_convert_output_reads_back_identically(tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    r1 = runner.invoke(app, ["convert", "--kir", str(DATA / "dkms_kir.csv"), "--hla",
                             str(DATA / "two_samples.hml"), "-o", str(first)])
    assert r1.exit_code == 0, r1.output
    second = tmp_path / "second.csv"
    r2 = runner.invoke(app, ["convert", "--kir", str(first), "--hla", str(first),
                             "--output", str(second)])
    assert r2.exit_code == 0, r2.output
    assert "kir: detected matrix" in r2.stderr and "hla: detected gl" in r2.stderr
    assert read_csv(first) == read_csv(second)


def test_convert_reader_options(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    r = runner.invoke(app, ["convert", "--kir", str(DATA / "t1k"), "--kir-format", "t1k",
                            "--t1k-min-quality", "50", "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert "kir: format t1k" in r.stderr
    d1 = {row["sample_id"]: row["kir"] for row in read_csv(out)}["D1"]
    assert "KIR2DL2=NA" in d1
    out2 = tmp_path / "o2.csv"
    r = runner.invoke(app, ["convert", "--kir", str(DATA / "imputations.csv"),
                            "--kirimp-min-posterior", "0.4", "--output", str(out2)])
    assert r.exit_code == 0, r.output
    p1 = {row["sample_id"]: row["kir"] for row in read_csv(out2)}["P1"]
    assert "KIR2DS2=POS" in p1 and "KIR3DS1=NEG" in p1


@pytest.mark.parametrize("command", ["persons", "batch", "rank"])
def test_reader_settings_of_every_command(tmp_path: Path, command: str) -> None:
    """The reader settings (DOMAIN.md §A.1: every option settable from the CLI)
    apply to ``--kir``/``--hla`` of batch, rank and persons as to ``convert``:
    reading the genotyper files directly equals converting them first with the
    same settings (KIR*IMP at posterior 0.4 calls KIR2DS2 present for P1, which
    0.5 leaves unknown; HLA*IMP at 0.4 keeps H2's HLA-C)."""
    kirimp = DATA / "imputations.csv"

    def run(*args: str) -> list[dict[str, str]]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}.csv"
        extra = [] if command == "persons" else ["--pairs", str(pairs)]
        r = runner.invoke(app, [command, *args, *extra, "--output", str(out), "--quiet"])
        assert r.exit_code == 0, r.output
        return read_csv(out)

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("recipient_id,donor_id\nP1,P2\nP2,P1\n", encoding="utf-8")
    converted = tmp_path / "converted.csv"
    r = runner.invoke(app, ["convert", "--kir", str(kirimp), "--kirimp-min-posterior", "0.4",
                            "--output", str(converted)])
    assert r.exit_code == 0, r.output
    assert "KIR2DS2=POS" in {row["sample_id"]: row["kir"] for row in read_csv(converted)}["P1"]
    direct = run("--kir", str(kirimp), "--kirimp-min-posterior", "0.4")
    assert direct == run("-g", str(converted))
    assert direct != run("--kir", str(kirimp))            # 0.5: another reading
    if command == "persons":                              # HLA*IMP the same way
        hlaimp = DATA / "hlaimp_imputations.csv"
        converted_hla = tmp_path / "converted_hla.csv"
        r = runner.invoke(app, ["convert", "--hla", str(hlaimp), "--hlaimp-min-posterior",
                                "0.4", "--output", str(converted_hla)])
        assert r.exit_code == 0, r.output
        direct = run("--hla", str(hlaimp), "--hlaimp-min-posterior", "0.4")
        assert direct == run("-g", str(converted_hla))
        assert direct != run("--hla", str(hlaimp))


def test_convert_hml_hla_only(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    r = runner.invoke(app, ["convert", "--hla", str(DATA / "two_samples.hml"),
                            "--hla-format", "hml", "--output", str(out)])
    assert r.exit_code == 0, r.output
    rows = read_csv(out)
    assert [(x["sample_id"], x["kir"]) for x in rows] == [("HML-001", ""), ("HML-002", "")]
    assert rows[1]["hla"] == "A*01:01+A*03:01^B*08:01+B*35:01"


def test_convert_names_the_columns_it_does_not_read(tmp_path: Path) -> None:
    """--hla on a genotypes table reads its HLA only: its kir column is not read,
    and convert says so (the KIR of the output comes from --kir alone)."""
    examples = Path(__file__).resolve().parents[1] / "examples"
    r = runner.invoke(app, ["convert", "--kir", str(examples / "kir_matrix.csv"),
                            "--hla", str(examples / "genotypes.csv"), "--hla-format", "gl",
                            "--output", str(tmp_path / "o.csv")])
    assert r.exit_code == 0, r.output
    assert "note: genotypes.csv: columns not read: kir" in r.stderr


def test_convert_errors(tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    r = runner.invoke(app, ["convert", "--output", str(out)])
    assert r.exit_code == 2
    assert "give --kir and/or --hla" in r.output
    r = runner.invoke(app, ["convert", "--kir", str(DATA / "ping_bad_allele.csv"),
                            "--output", str(out)])
    assert r.exit_code == 1
    assert "ping_bad_allele.csv: unknown allele 'KIR2DL1*99999'" in r.stderr
    assert "[row 2, column 'KIR2DL1']" in r.stderr
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["convert", "--hla", str(DATA / "doctype.hml"), "--output",
                            str(out)])
    assert r.exit_code == 1 and "refusing XML" in r.stderr
    r = runner.invoke(app, ["convert", "--kir", str(DATA / "imputations.csv"),
                            "--kirimp-min-posterior", "1.5", "--output", str(out)])
    assert r.exit_code == 2
    assert not out.exists()
