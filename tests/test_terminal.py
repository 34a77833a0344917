"""Terminal output fits the terminal (issue 14): rank's tables and pair's text at
80 columns, and many recipients summarised instead of printed table by table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from kirmatch.cli.main import app
from kirmatch.cli.rank_cmd import MAX_TABLES
from typer.testing import CliRunner

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
G, P, A = (str(EXAMPLES / n) for n in ("genotypes.csv", "pairs.csv", "antibodies.csv"))
runner = CliRunner()


def _widest(text: str) -> int:
    return max(len(line.rstrip()) for line in text.splitlines())


@pytest.mark.parametrize("antibodies", [True, False])
def test_rank_tables_fit_80_columns_and_lose_nothing(antibodies: bool, tmp_path: Path) -> None:
    """The tables fit 80 columns by wrapping, never by cropping: every word of
    every donor's reason and DSA cell is in the output (rich crops a table whose
    columns cannot shrink enough; 'not checked' without antibodies is the
    widest DSA cell)."""
    extra = ["-a", A] if antibodies else []
    res = runner.invoke(app, ["rank", "-g", G, "-p", P, *extra], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "Recipient P3" in res.stdout and _widest(res.stdout) <= 80
    out = tmp_path / "ranked.csv"
    ranked = runner.invoke(app, ["rank", "-g", G, "-p", P, *extra, "-o", str(out), "-q"])
    assert ranked.exit_code == 0, ranked.output
    words = set(res.stdout.split())
    with open(out, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for word in row["rank_reason"].split():
                assert word in words, (row["donor_id"], row["rank_reason"], word)
    assert ("not" in words and "checked" in words) != antibodies


def test_pair_text_fits_80_columns() -> None:
    res = runner.invoke(app, ["pair", "--recipient-hla", "A*02:01+A*24:02^B*07:02+B*44:02^"
                              "C*07:02+C*05:01", "--donor-hla", "A*02:01+A*11:01^B*07:02+"
                              "B*35:01^C*07:02+C*04:01", "--donor-kir", "KIR2DL1+KIR2DL3"],
                        env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "doi:10.1126/science.1068440" in res.stdout and _widest(res.stdout) <= 80


def test_many_recipients_are_summarised(tmp_path: Path) -> None:
    with open(G, newline="", encoding="utf-8") as fh:
        ids = [r["sample_id"] for r in csv.DictReader(fh)]
    assert len(ids) > MAX_TABLES + 1
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("recipient_id,donor_id\n" + "".join(
        f"{r},{ids[(i + 1) % len(ids)]}\n" for i, r in enumerate(ids)))
    res = runner.invoke(app, ["rank", "-g", G, "-p", str(pairs)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "Recipient " not in res.stdout            # no table per recipient
    assert f"{len(ids)} recipient(s)" in res.stdout and "--output FILE" in res.stdout
    assert len(res.stdout.splitlines()) == len(ids) + 2
