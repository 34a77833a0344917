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

from pathlib import Path

import pytest

from kirmatch.errors import HLAParseError, InputSchemaError
from kirmatch.hla import KNOWN_LOCI, HLAGenotype
from kirmatch.ligands import LigandResolver
from kirmatch.readers import detect_hla_format, read_hla, read_kir
from kirmatch.tables import ReferenceTables, load_reference_tables

DATA = Path(__file__).resolve().parent / "data" / "readers"


@pytest.fixture(scope="module")
def tables() -> ReferenceTables:
    return load_reference_tables()


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
