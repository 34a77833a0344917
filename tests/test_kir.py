"""KIR typing strings (kirmatch.kir): accepted inputs with their gene states, and
rejected inputs with the reason."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kirmatch.errors import KIRParseError, UnknownAlleleError
from kirmatch.kir import GeneState, parse_kir_genotype

DATA = Path(__file__).parent / "data"
with open(DATA / "kir_cases.tsv", newline="") as fh:
    CASES = list(csv.DictReader(fh, delimiter="\t"))


def _split(text: str) -> list[str]:
    return [x for x in (text or "").split(";") if x.strip()]


@pytest.mark.parametrize("case", CASES, ids=[c["input"] or "<blank>" for c in CASES])
def test_accepts(tables, case) -> None:
    g = parse_kir_genotype(case["input"], tables)
    for gene in _split(case["present"]):
        assert g.gene(gene).state is GeneState.PRESENT, gene
    for gene in _split(case["absent"]):
        assert g.gene(gene).state is GeneState.ABSENT, gene
    for gene in _split(case["unknown"]):
        assert g.gene(gene).state is GeneState.UNKNOWN, gene
    for spec in _split(case["alleles"]):
        gene, copies = spec.split(":")
        expected = tuple(tuple(c.split("/")) for c in copies.split("+"))
        assert g.gene(gene).genotypes == (expected,)


@pytest.mark.parametrize("case", CASES, ids=[c["input"] or "<blank>" for c in CASES])
def test_round_trip_keeps_meaning(tables, case) -> None:
    g = parse_kir_genotype(case["input"], tables)
    again = parse_kir_genotype(g.to_string(), tables) if g.to_string() else g
    assert [(x.gene, x.state, x.genotypes) for x in again.genes] == \
        [(x.gene, x.state, x.genotypes) for x in g.genes]


@pytest.mark.parametrize(("text", "error", "match"), [
    ("KIR9XX1", KIRParseError, "unknown KIR gene 'KIR9XX1'"),
    ("KIR2DL1*999", UnknownAlleleError, r"KIR2DL1\*999.*IPD-KIR 2\.13\.0"),
    ("KIR3DL1*00499", UnknownAlleleError, r"KIR3DL1\*00499"),
    ("KIR2DL1+", KIRParseError, "empty item"),
    ("KIR2DL1*001/KIR3DL1*001", KIRParseError, "mixes genes"),
    ("2DL1=POS;2DL1=NEG", KIRParseError, "given twice"),
    ("2DL1=POS;3DL1", KIRParseError, "GENE=VALUE"),
    ("2DL1=abc", KIRParseError, "not a KIR allele"),
    ("hla#3.58.0#KIR2DL1", KIRParseError, "not 'kir'"),
])
def test_rejects(tables, text, error, match) -> None:
    with pytest.raises(error, match=match):
        parse_kir_genotype(text, tables)


def test_unknown_never_read_as_absent(tables) -> None:
    g = parse_kir_genotype("", tables)
    assert not g.typed
    assert all(x.state is GeneState.UNKNOWN for x in g.genes)
