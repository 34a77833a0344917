"""HLA typing syntax (kirmatch.hla): accepted and rejected inputs from tables."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from kirmatch.errors import HLAParseError, KirmatchError
from kirmatch.hla import hla_genotype_from_columns, parse_hla_genotype, parse_hla_typing

DATA = Path(__file__).parent / "data"


def _rows(name: str) -> list[dict[str, str]]:
    with open(DATA / name, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ACCEPT = _rows("hla_accept.tsv")
REJECT = _rows("hla_reject.tsv")


@pytest.mark.parametrize("row", ACCEPT, ids=[r["input"].strip() for r in ACCEPT])
def test_accepts(row: dict[str, str]) -> None:
    t = parse_hla_typing(row["input"])
    assert t.name == row["canonical"]
    assert t.kind.value == row["kind"]


@pytest.mark.parametrize("row", ACCEPT, ids=[r["input"].strip() for r in ACCEPT])
def test_normalisation_is_idempotent(row: dict[str, str]) -> None:
    once = parse_hla_typing(row["input"])
    assert parse_hla_typing(once.name) == parse_hla_typing(once.name)
    assert parse_hla_typing(once.name).name == once.name


@pytest.mark.parametrize("row", REJECT, ids=[r["input"] or "<empty>" for r in REJECT])
def test_rejects(row: dict[str, str]) -> None:
    with pytest.raises(HLAParseError, match=row["reason"]) as info:
        parse_hla_typing(row["input"])
    assert isinstance(info.value, KirmatchError)
    assert isinstance(info.value, ValueError)


def test_suffix_read_from_typed_name() -> None:
    assert parse_hla_typing("A*01:01:01:02N").suffix == "N"
    assert parse_hla_typing("A*01:01").suffix == ""
    assert parse_hla_typing("B*39:01:01:02L").suffix == "L"


def test_numeric_only_in_locus_column() -> None:
    assert parse_hla_typing("02:01", locus="A").name == "A*02:01"
    with pytest.raises(HLAParseError, match="locus B in a A column"):
        parse_hla_typing("B*07:02", locus="A")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01",
         "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01"),
        ("HLA-A*02:01+HLA-A*24:02", "A*02:01+A*24:02"),
        ("hla#3.58.0#HLA-C*07:01+HLA-C*05:01|HLA-C*07:02+HLA-C*05:01",
         "C*07:01+C*05:01|C*07:02+C*05:01"),
        ("A*02:01 A*24:02 B*07:02", "A*02:01+A*24:02^B*07:02"),
        ("A*02:01~B*07:02+A*24:02~B*44:02", "A*02:01+A*24:02^B*07:02+B*44:02"),
        ("C*07:01/C*07:06+C*05:01", "C*07:01/C*07:06+C*05:01"),
        ("A*02:01", "A*02:01"),
        ("DRB1*15:01+DRB1*04:01^DRB3*NNNN", "DRB1*15:01+DRB1*04:01^DRB3*NNNN"),  # absent gene: kept
        ("DRB1*15:01+DRB1*04:01^DQB1*XXXX", "DRB1*15:01+DRB1*04:01"),  # untyped: dropped
    ],
)
def test_gl_strings(text: str, canonical: str) -> None:
    assert str(parse_hla_genotype(text)) == canonical


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("A*02:01+A*24:02+A*03:01", "at most 2"),
        ("A*02:01/B*07:02", "mix loci"),
        ("A*02:01^^B*07:02", "empty locus block"),
        ("KIR2DL5A?KIR2DL5B", "'\\?' operator"),
        ("kir#2.13.0#KIR2DL1", "not 'hla'"),
        ("A*02:01+C*07:0x", "C\\*07:0x"),
    ],
)
def test_gl_rejects(text: str, reason: str) -> None:
    with pytest.raises(HLAParseError, match=reason):
        parse_hla_genotype(text)


def test_gl_version_recorded() -> None:
    assert parse_hla_genotype("hla#3.25.0#HLA-A*01:01").gl_version == "3.25.0"


def test_columns() -> None:
    g = hla_genotype_from_columns({"A": ("02:01", "24:02"), "B": ("B*07:02", None),
                                   "C": ("", "NA")})
    assert str(g) == "A*02:01+A*24:02^B*07:02"
    assert g.locus("C") is None
