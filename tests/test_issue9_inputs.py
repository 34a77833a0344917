"""Issue 9: bad input gives the right answer or a clear error, never a silent
wrong answer. One test (or parametrized case) per item of the issue, through
the real command line (``typer.testing.CliRunner``; a subprocess for signals)
and the library. Each docstring names its item.

Every case was reproduced on the old main; the assertions are the exact
behaviour now: exit codes, the error text (value, row, column), row counts
and order, pass-through cells, and input files left byte for byte.
"""

from __future__ import annotations

import csv
import errno
import gzip
import io
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kirmatch.cli.main import app
from typer.testing import CliRunner

import kirmatch.output as output_module
from kirmatch import assess_pair, load_reference_tables, make_person
from kirmatch.batch import OUTPUT_COLUMNS, run_batch
from kirmatch.errors import InputSchemaError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DATA = Path(__file__).resolve().parent / "data"
GENOTYPES = EXAMPLES / "genotypes.csv"
runner = CliRunner()


def cli(*args: object) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def rows_of(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (hidden ones included) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def examples_copy(tmp: Path) -> tuple[Path, Path, Path]:
    for name in ("genotypes.csv", "pairs.csv", "antibodies.csv"):
        shutil.copy(EXAMPLES / name, tmp / name)
    return tmp / "genotypes.csv", tmp / "pairs.csv", tmp / "antibodies.csv"


@pytest.fixture(scope="module")
def persons() -> dict[str, Any]:
    t = load_reference_tables()
    return {r["sample_id"]: make_person(r["sample_id"], r["hla"], r["kir"], tables=t)
            for r in rows_of(GENOTYPES)}


def expected(persons: dict[str, Any], rid: str, did: str) -> dict[str, str]:
    """The pair computed alone (the contract columns batch adds)."""
    row = assess_pair(persons[rid], persons[did], tables=load_reference_tables()).to_row()
    return {k: v for k, v in row.items() if k in OUTPUT_COLUMNS}


def computed(row: dict[str, str], like: dict[str, str]) -> dict[str, str]:
    return {k: row[k] for k in like}


# ---------------------------------------------------------------------------
# Item 1: a stray field never shifts the columns
# ---------------------------------------------------------------------------

TRAILING = "(an empty extra field: a trailing delimiter?)"


def test_item1_stray_comma_in_first_pairs_row(tmp_path: Path, persons: dict[str, Any]) -> None:
    """Items 1 and 11: the issue's reproduction. A trailing comma in the first data
    row used to make pandas take the first column as an index (wrong pairs,
    status ok, exit 0). Now that row is an error in its place and the next rows
    are intact, in batch and in rank (which summarises it as having no
    recipient id and ranks the others)."""
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id,other_donor\nR1,D1,P2-brother,\n"
                     "P1,P1-son,P1-father\nP1,P1-father,x\n")
    out = tmp_path / "o.csv"
    res = cli("batch", "--genotypes", GENOTYPES, "--pairs", pairs, "--output", out)
    assert res.exit_code == 0, res.output
    error = f"input_parse_error: pairs row 1 has 4 fields but the header has 3 {TRAILING}"
    cells = [("", "", ""), ("P1", "P1-son", "P1-father"), ("P1", "P1-father", "x")]
    rows = rows_of(out)
    assert [(r["recipient_id"], r["donor_id"], r["other_donor"]) for r in rows] == cells
    assert [(r["status"], r["error"]) for r in rows] == [("error", error), ("ok", ""), ("ok", "")]
    for r in rows[1:]:
        want = expected(persons, r["recipient_id"], r["donor_id"])
        assert computed(r, want) == want
    res = cli("batch", "--genotypes", GENOTYPES, "--pairs", pairs, "--output", out, "--strict")
    assert res.exit_code == 1 and "1 row(s) have status=error (--strict)" in res.stderr
    res = cli("rank", "-g", GENOTYPES, "-p", pairs, "-o", out)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[:2] == [
        "(no recipient id): 0 donor(s) ranked, top none, 1 error row(s)",
        "P1: 2 donor(s) ranked, top P1-son; DSA NOT CHECKED: no antibody data for this "
        "recipient"]
    rows = rows_of(out)
    assert [(r["recipient_id"], r["donor_id"], r["other_donor"]) for r in rows] == cells
    assert [(r["error"], r["rank"]) for r in rows] == [(error, ""), ("", "1"), ("", "2")]


def test_item1_extra_field_in_row_10(tmp_path: Path, persons: dict[str, Any]) -> None:
    """Item 1: the same extra field in data row 10: row 10 is an error naming the
    row and the extra value; the other eleven rows keep their cells and order."""
    pairs_in = rows_of(EXAMPLES / "pairs.csv")
    ids = [(p["recipient_id"], p["donor_id"]) for p in pairs_in]
    lines = ["pair_no,recipient_id,donor_id,note"]
    for n in range(1, 13):
        rid, did = ids[n % len(ids)]
        lines.append(f"{n},{rid},{did},note {n}" + (",P9-x" if n == 10 else ""))
    pairs = tmp_path / "p.csv"
    pairs.write_text("\n".join(lines) + "\n")
    out, err = tmp_path / "o.csv", tmp_path / "e.csv"
    res = cli("batch", "--genotypes", GENOTYPES, "--pairs", pairs, "--output", out,
              "--errors", err)
    assert res.exit_code == 0, res.output
    rows = rows_of(out)
    assert [r["pair_no"] for r in rows] == [str(n) if n != 10 else "" for n in range(1, 13)]
    assert rows[9]["error"] == ("input_parse_error: pairs row 10 has 5 fields but the header "
                                "has 4 (extra value 'P9-x')")
    for n, r in enumerate(rows, start=1):
        if n == 10:
            continue
        rid, did = ids[n % len(ids)]
        assert (r["recipient_id"], r["donor_id"], r["note"], r["status"]) == (
            rid, did, f"note {n}", "ok")
        want = expected(persons, rid, did)
        assert computed(r, want) == want, n
    assert [(e["pairs_row"], e["error"]) for e in rows_of(err)] == [("10", rows[9]["error"])]


def test_item1_trailing_comma_on_every_row(tmp_path: Path) -> None:
    """Item 1: a trailing comma on every row used to drop ``pair_no`` silently.
    With the header's trailing comma too: a clear error, nothing written; on
    every data row only: every row an error in its place, none dropped."""
    pairs = tmp_path / "p.csv"
    pairs.write_text("pair_no,recipient_id,donor_id,\n1,R1,D1,\n2,P1,P1-son,\n")
    out = tmp_path / "o.csv"
    res = cli("batch", "--genotypes", GENOTYPES, "--pairs", pairs, "--output", out)
    assert res.exit_code == 1
    assert res.stderr == ("error: pairs file p.csv: column 4 has no name (a trailing "
                          "delimiter?)\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]
    pairs.write_text("pair_no,recipient_id,donor_id\n1,R1,D1,\n2,P1,P1-son,\n3,R2,D2,\n")
    res = cli("batch", "--genotypes", GENOTYPES, "--pairs", pairs, "--output", out)
    assert res.exit_code == 0, res.output
    rows = rows_of(out)
    assert [r["error"] for r in rows] == [
        f"input_parse_error: pairs row {n} has 4 fields but the header has 3 {TRAILING}"
        for n in (1, 2, 3)]
    assert "3 pairs (0 ok, 3 error" in res.stderr


def test_item1_stray_comma_in_first_genotypes_row(tmp_path: Path,
                                                  persons: dict[str, Any]) -> None:
    """Item 1: the genotypes file: its first data row with a trailing comma is
    unreadable (named in the error of the pairs that need it); every other
    person is read from the right columns."""
    lines = GENOTYPES.read_text().splitlines()
    lines[1] += ","
    geno = tmp_path / "g.csv"
    geno.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.csv"
    res = cli("batch", "--genotypes", geno, "--pairs", EXAMPLES / "pairs.csv", "--output", out)
    assert res.exit_code == 0, res.output
    rows = rows_of(out)
    assert len(rows) == len(rows_of(EXAMPLES / "pairs.csv"))
    assert rows[0]["error"] == ("person_not_found: recipient 'R1' has no record in the "
                                "genotypes file (g.csv rows that could not be read: 1, first: "
                                "row 1 has 4 fields but the header has 3 (an empty extra "
                                "field: a trailing delimiter?))")
    for r in rows[1:]:
        assert r["status"] == "ok"
        want = expected(persons, r["recipient_id"], r["donor_id"])
        assert computed(r, want) == want
    prov = json.loads((tmp_path / "o.csv.provenance.json").read_text())
    assert prov["inputs"]["genotypes"]["unreadable_rows"] == {
        "1": f"row 1 has 4 fields but the header has 3 {TRAILING}"}


# ---------------------------------------------------------------------------
# Item 2: DKMS-style locus columns and Cw columns are read, not ignored
# ---------------------------------------------------------------------------

#: The loci of the example genotypes (class II for family P3 only).
CLASS_I_II = ("A", "B", "C", "DRB1", "DQB1", "DPB1")


def _loci(gl: str) -> dict[str, list[str]]:
    """``A*02:01+A*24:02^B*…`` -> {"A": ["02:01", "24:02"], …}."""
    out: dict[str, list[str]] = {}
    for block in gl.split("^"):
        alleles = block.split("+")
        out[alleles[0].split("*")[0]] = [a.split("*")[1] for a in alleles]
    return out


def test_item2_dkms_locus_and_cw_columns(tmp_path: Path, persons: dict[str, Any]) -> None:
    """Item 2: ``hla_a,hla_b,hla_c`` (``02:01+24:02``) and ``A_1 … Cw_1/Cw_2`` used
    to be ignored (HLA untyped, status ok). Both now give byte for byte the
    output of the GL-string table, for batch and for rank."""
    src = rows_of(GENOTYPES)
    dkms = tmp_path / "dkms.csv"
    cw = tmp_path / "cw.csv"
    with open(dkms, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sample_id", "hla_a", "hla_b", "hla_c", "hla_drb1", "hla_dqb1", "hla_dpb1",
                    "kir"])
        for r in src:
            loci = _loci(r["hla"])
            w.writerow([r["sample_id"], *("+".join(loci.get(x, [])) for x in CLASS_I_II),
                        r["kir"]])
    with open(cw, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sample_id", "A_1", "A_2", "B_1", "B_2", "Cw_1", "Cw_2", "DRB1_1", "DRB1_2",
                    "DQB1_1", "DQB1_2", "DPB1_1", "DPB1_2", "kir"])
        for r in src:
            loci = _loci(r["hla"])
            w.writerow([r["sample_id"], *(a for x in CLASS_I_II
                                          for a in (loci.get(x) or ["", ""])), r["kir"]])
    outs = {}
    for name, geno in (("gl", GENOTYPES), ("dkms", dkms), ("cw", cw)):
        out = tmp_path / f"{name}.csv.out.csv"
        res = cli("batch", "--genotypes", geno, "--pairs", EXAMPLES / "pairs.csv", "--output",
                  out, "-q")
        assert res.exit_code == 0, res.output
        outs[name] = out.read_bytes()
        ranked = cli("rank", "-g", geno, "-p", EXAMPLES / "pairs.csv", "--json")
        assert ranked.exit_code == 0, ranked.output
        outs[name + "-rank"] = json.dumps(json.loads(ranked.stdout)["results"]).encode()
    assert outs["dkms"] == outs["gl"] and outs["cw"] == outs["gl"]
    assert outs["dkms-rank"] == outs["gl-rank"] and outs["cw-rank"] == outs["gl-rank"]
    rows = rows_of(tmp_path / "dkms.csv.out.csv")
    # HLA-A, -B and -C are typed (class II is not: rule 16 warns those untyped)
    assert all(r["status"] == "ok" and not re.search(r"hla_untyped\(\w+ [ABC]\)", r["warnings"])
               for r in rows)
    for r in rows:
        want = expected(persons, r["recipient_id"], r["donor_id"])
        assert computed(r, want) == want


# ---------------------------------------------------------------------------
# Item 3: an output over an input is a usage error; the input is untouched
# ---------------------------------------------------------------------------

def _over_input_cases(tmp: Path) -> dict[str, tuple[list[object], str, Path]]:
    g, p, a = examples_copy(tmp)
    h = tmp / "hla.csv"
    h.write_text("sample_id,hla\nS1,A*02:01+A*24:02^B*07:02+B*44:02\n")
    (tmp / "link.csv").symlink_to(p)
    os.link(h, tmp / "hard.csv")
    rank = ["rank", "-g", g, "-p", p]
    return {
        "rank --output pairs": ([*rank, "--output", p], "output", p),
        "rank -o pairs (other spelling)": ([*rank, "-o", tmp / "nowhere" / ".." / "pairs.csv"],
                                          "output", p),
        "rank -o symlink to pairs": ([*rank, "-o", tmp / "link.csv"], "output", p),
        "rank --report genotypes": ([*rank, "--report", g], "report", g),
        "rank --errors antibodies": ([*rank, "-a", a, "--errors", a], "errors", a),
        "convert --output input": (["convert", "--hla", h, "--output", h], "output", h),
        "convert -o hard link of input": (["convert", "--hla", h, "-o", tmp / "hard.csv"],
                                          "output", h),
        "batch --output genotypes": (["batch", "--genotypes", g, "--pairs", p, "--output", g],
                                     "output", g),
    }


OVER_INPUT = ["rank --output pairs", "rank -o pairs (other spelling)", "rank -o symlink to pairs",
              "rank --report genotypes", "rank --errors antibodies", "convert --output input",
              "convert -o hard link of input", "batch --output genotypes"]


@pytest.mark.parametrize("case", OVER_INPUT)
def test_item3_output_over_an_input(tmp_path: Path, case: str) -> None:
    """Item 3: ``rank --output p.csv`` (the pairs input), ``rank --report g.csv``
    (the genotypes input), ``convert --output h.csv`` (its input) used to
    overwrite the input and exit 0. Now: exit 2, one line naming the output and
    the input, and the folder exactly as before (nothing written, no temp)."""
    args, role, victim = _over_input_cases(tmp_path)[case]
    before = snapshot(tmp_path)
    res = cli(*args)
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith(f"error: the {role} file ") and res.stderr.count("\n") == 1
    assert "would overwrite an input: it is the input file" in res.stderr
    assert repr(str(victim)) in res.stderr
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------------------
# Item 4: one grammar, one meaning of blank
# ---------------------------------------------------------------------------

WIDE = ("sample_id,A_1,A_2,HLA-B_1,B2,Cw_1,Cw_2,KIR2DL1,KIR2DL2,KIR2DL3,KIR3DL1,KIR2DS4,"
        "2DS4N,KIR2DL5A,KIR2DL5B\n"
        "S1,02:01,24:02,07:02,44:02,07:02,05:01,POS,NEG,POS,001/095+004,POS,NEG,001,002\n"
        "S2,01:01,A*03:01,08:01,57:01,07:01,06:02,004+003,POS,NEG,NEG,NEG,POS,NEG,POS\n"
        "S3,02:01,,07:02,,,,POS,,POS,POS,,,NEG,NEG\n")


def _hla_key(genotype: Any) -> tuple[Any, ...]:
    """What an HLA typing means (the canonical names, not the text as written)."""
    if genotype is None:  # untyped
        return ()
    return tuple((lt.locus, tuple(tuple(tuple((t.name, t.kind.value) for t in slot.alternatives)
                                        for slot in alt) for alt in lt.alternatives))
                 for lt in genotype.loci)


def _kir_key(genotype: Any) -> tuple[Any, ...]:
    if genotype is None:  # untyped: every gene unknown
        return ()
    return tuple((g.gene, g.state.value, g.genotypes) for g in genotype.genes
                 if g.state.value != "unknown")


def test_item4_same_table_same_persons(tmp_path: Path) -> None:
    """Item 4: two HLA column grammars and two KIR paralog merges gave different
    persons for one table (``2DL5A=001, 2DL5B=002``). Now the loader of batch and
    rank and the format readers (columns, gl, matrix) read the same persons, from
    the wide table and from its GL-string form, and batch and rank compute the
    same values from them."""
    from kirmatch.people import load_people
    from kirmatch.readers import read_hla, read_kir

    t = load_reference_tables()
    table = tmp_path / "wide.csv"
    table.write_text(WIDE)
    people = load_people(table, t)
    assert people.errors == {}
    hla = read_hla(table, "columns").genotypes
    kir = read_kir(table, "matrix", tables=t).genotypes
    assert list(hla) == list(kir) == people.ids == ["S1", "S2", "S3"]
    for i, pid in enumerate(people.ids):
        assert _hla_key(people.hla(i)) == _hla_key(hla[pid]), pid
        assert _kir_key(people.kir(i)) == _kir_key(kir[pid]), pid
    s1 = people.kir(0)
    assert s1 is not None
    assert s1.gene("KIR2DL5").genotypes == ((("KIR2DL5A*001",), ("KIR2DL5B*002",)),)
    assert people.kir(1).gene("KIR2DL5").state.value == "present"   # 2DL5B POS
    assert people.kir(2).gene("KIR2DL5").state.value == "absent"    # both NEG
    assert people.kir(1).gene("KIR2DS4").state.value == "present"   # 2DS4N POS
    assert str(people.hla(2)) == "A*02:01^B*07:02"
    assert [len(_hla_key(people.hla(i))) for i in range(3)] == [3, 3, 2]
    # the same persons written as GL strings: the gl reader and the loader agree
    gl = tmp_path / "gl.csv"
    with open(gl, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sample_id", "hla", "kir"])
        w.writerows([pid, str(people.hla(i)), people.kir(i).to_string()]
                    for i, pid in enumerate(people.ids))
    gl_people = load_people(gl, t)
    gl_hla = read_hla(gl, "gl").genotypes
    gl_kir = read_kir(gl, "matrix", tables=t).genotypes
    for i, pid in enumerate(people.ids):
        assert _hla_key(gl_people.hla(i)) == _hla_key(gl_hla[pid]) == _hla_key(hla[pid]), pid
        assert _kir_key(gl_people.kir(i)) == _kir_key(gl_kir[pid]) == _kir_key(kir[pid]), pid
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id\nS1,S2\nS2,S1\nS3,S1\n")
    out = tmp_path / "o.csv"
    run_batch(table, pairs, out, tables=t)
    ranked = cli("rank", "-g", table, "-p", pairs, "--json")
    assert ranked.exit_code == 0, ranked.output
    results = json.loads(ranked.stdout)["results"]
    for b, r in zip(rows_of(out), results, strict=True):
        assert b["status"] == r["status"] == "ok"
        assert {c: b[c] for c in OUTPUT_COLUMNS if c not in ("warnings",)} == \
            {c: r[c] for c in OUTPUT_COLUMNS if c not in ("warnings",)}


BLANKS = ["", "NA", "N/A", "NaN", "NULL", "na", "null", "nan", " N/A "]
FORMS = {
    # header, the typed recipient's cells, the donor's cells with the token {b}
    "gl": ("sample_id,hla,kir", "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01,"
           "KIR2DL1+KIR2DL3+KIR3DL1", "{b},{b}"),
    "slots": ("sample_id,A_1,A_2,HLA-B_1,B_2,Cw_1,KIR2DL1,KIR3DL1,KIR2DL5A,KIR2DL5B",
              "02:01,24:02,07:02,44:02,07:02,POS,POS,NEG,POS", "01:01,{b},{b},{b},{b},POS,{b},"
              "{b},{b}"),
    "loci": ("sample_id,hla_a,hla_b,hla_c,2DL1,2DS4,2DS4N", "02:01+24:02,07:02+44:02,07:02,"
             "POS,NEG,NEG", "{b},08:01,{b},{b},POS,{b}"),
}


def _blank_table(folder: Path, form: str, token: str) -> Path:
    header, typed, donor = FORMS[form]
    path = folder / f"g-{form}-{BLANKS.index(token)}.csv"
    path.write_text(f"{header}\nR,{typed}\nD,{donor.replace('{b}', token)}\n")
    return path


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("token", BLANKS, ids=lambda b: repr(b))
def test_item4_blank_means_untyped_in_every_typing_column(tmp_path: Path, form: str,
                                                          token: str) -> None:
    """Item 4: nine "blank" checks disagreed (``NA`` in ``hla`` was a row error, in
    ``kir`` or ``A_1`` it meant untyped). Now ``NA``, ``N/A``, ``NaN``, ``NULL`` and
    blank (any case, any spaces) mean untyped in every typing column: the same
    person (loader and format readers), the same batch output, as an empty cell."""
    from kirmatch.people import load_people
    from kirmatch.readers import read_hla, read_kir

    t = load_reference_tables()
    with_token = _blank_table(tmp_path, form, token)
    empty = _blank_table(tmp_path, form, "")
    got, ref = load_people(with_token, t), load_people(empty, t)
    assert got.errors == {} and ref.errors == {}
    assert _hla_key(got.hla(1)) == _hla_key(ref.hla(1))
    assert _kir_key(got.kir(1)) == _kir_key(ref.kir(1))
    fmt = "gl" if form == "gl" else "columns"  # the format readers: the same meaning
    assert _hla_key(read_hla(with_token, fmt).genotypes["D"]) == _hla_key(ref.hla(1))
    assert _kir_key(read_kir(with_token, "matrix", tables=t).genotypes["D"]) == \
        _kir_key(ref.kir(1))
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id\nR,D\nD,R\n")
    run_batch(with_token, pairs, tmp_path / "a.csv", tables=t)
    run_batch(empty, pairs, tmp_path / "b.csv", tables=t)
    a, b = rows_of(tmp_path / "a.csv"), rows_of(tmp_path / "b.csv")
    assert a == b
    assert [r["status"] for r in a] == ["ok", "ok"]


# ---------------------------------------------------------------------------
# Item 5: dialects read right; broken files and refusing systems are one line
# ---------------------------------------------------------------------------

PAIRS_ROWS = [["recipient_id", "donor_id", "note"], ["R1", "D1", "a,b"],
              ["P1", "P1-son", "x\ny"], ["P2", "P2-mother", "plain"]]


def _write_dialect(path: Path, rows: list[list[str]], delimiter: str, newline: str) -> None:
    """RFC 4180 quoting by hand: Python's csv writer leaves a line feed unquoted
    when the line terminator is CR."""
    def cell(text: str) -> str:
        if any(ch in text for ch in (delimiter, '"', "\r", "\n")):
            return '"' + text.replace('"', '""') + '"'
        return text

    path.write_bytes("".join(delimiter.join(map(cell, r)) + newline for r in rows).encode())


@pytest.mark.parametrize("delimiter, newline, note", [
    (";", "\r\n", "read as semicolon-delimited text"),
    (",", "\r", None),
    (";", "\r", "read as semicolon-delimited text"),
], ids=["semicolon-crlf", "cr-only", "semicolon-cr-only"])
def test_item5_semicolon_and_cr_only_files(tmp_path: Path, delimiter: str, newline: str,
                                           note: str | None) -> None:
    """Item 5: semicolon-delimited CSV (European Excel) used to fail with a wrong
    hint, CR-only line endings (Excel for Mac) with an internal error. Both now
    read exactly as the comma/LF file (a note names the delimiter used)."""
    geno_rows = [list(r.values()) for r in rows_of(GENOTYPES)]
    geno_rows.insert(0, ["sample_id", "hla", "kir"])
    _write_dialect(tmp_path / "g.csv", geno_rows, delimiter, newline)
    _write_dialect(tmp_path / "p.csv", PAIRS_ROWS, delimiter, newline)
    _write_dialect(tmp_path / "g_ref.csv", geno_rows, ",", "\n")
    _write_dialect(tmp_path / "p_ref.csv", PAIRS_ROWS, ",", "\n")
    res = cli("batch", "--genotypes", tmp_path / "g.csv", "--pairs", tmp_path / "p.csv",
              "--output", tmp_path / "o.csv")
    assert res.exit_code == 0, res.output
    ref = cli("batch", "--genotypes", tmp_path / "g_ref.csv", "--pairs",
              tmp_path / "p_ref.csv", "--output", tmp_path / "o_ref.csv")
    assert ref.exit_code == 0, ref.output
    assert (tmp_path / "o.csv").read_bytes() == (tmp_path / "o_ref.csv").read_bytes()
    rows = rows_of(tmp_path / "o.csv")
    assert [(r["note"], r["status"]) for r in rows] == [("a,b", "ok"), ("x\ny", "ok"),
                                                       ("plain", "ok")]
    notes = [ln for ln in res.stderr.splitlines() if ln.startswith("note:")]
    if note is None:
        assert notes == []
    else:
        assert notes == [f"note: genotypes file g.csv {note}", f"note: pairs file p.csv {note}"]
    ranked = cli("rank", "-g", tmp_path / "g.csv", "-p", tmp_path / "p.csv", "--json")
    assert ranked.exit_code == 0, ranked.output
    assert [r["note"] for r in json.loads(ranked.stdout)["results"]] == ["a,b", "x\ny", "plain"]
    assert [ln for ln in ranked.stderr.splitlines() if ln.startswith("note:")] == notes


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_item5_utf16_without_bom_is_named(tmp_path: Path, codec: str) -> None:
    """Item 5 (found on replay): UTF-16 without a byte-order mark was read as
    UTF-8 and failed with a misleading "no recipient_id column … --column-map"
    hint. The encoding is not guessed: the error says what the file looks like."""
    pairs = tmp_path / "p.csv"
    pairs.write_bytes("recipient_id,donor_id\nR1,D1\n".encode(codec))
    res = cli("batch", "-g", GENOTYPES, "-p", pairs, "-o", tmp_path / "o.csv")
    assert res.exit_code == 1, res.output
    assert "p.csv: the file looks like UTF-16 text without a byte-order mark" in res.output
    assert "--column-map" not in res.output
    with_bom = tmp_path / "bom.csv"
    with_bom.write_bytes("recipient_id,donor_id\nR1,D1\n".encode("utf-16"))
    ok = cli("batch", "-g", GENOTYPES, "-p", with_bom, "-o", tmp_path / "o2.csv")
    assert ok.exit_code == 0, ok.output


def _truncated_gz(path: Path, source: Path, keep: float) -> None:
    data = gzip.compress(source.read_bytes())
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("which, keep", [("pairs", 0.7), ("pairs", 0.05), ("genotypes", 0.7)])
def test_item5_truncated_gzip_is_one_clear_line(tmp_path: Path, which: str, keep: float) -> None:
    """Item 5: a truncated ``.gz`` ended in "internal error … please report it",
    exit 3. Now exit 1, one line naming the file and saying it is truncated or
    corrupt; nothing is written."""
    geno, pairs = DATA / "golden_genotypes.csv", DATA / "golden_pairs.csv"
    if which == "pairs":
        pairs = tmp_path / "pairs.csv.gz"
        _truncated_gz(pairs, DATA / "golden_pairs.csv", keep)
    else:
        geno = tmp_path / "genotypes.csv.gz"
        _truncated_gz(geno, DATA / "golden_genotypes.csv", keep)
    out = tmp_path / "out" / "o.csv"
    res = cli("batch", "--genotypes", geno, "--pairs", pairs, "--output", out,
              "--chunk-size", "500")
    assert res.exit_code == 1, res.output
    name = f"{which}.csv.gz"
    assert res.stderr.startswith(f"error: {which} file {name}: cannot be read")
    assert res.stderr.endswith("is it truncated or corrupt?\n")
    assert res.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("which", ["pairs", "genotypes"])
def test_item5_parquet_list_column(tmp_path: Path, which: str) -> None:
    """Item 5: a Parquet list column ended in an internal error (exit 3). Now exit
    1 naming the file, the column and its type."""
    pairs = tmp_path / "pairs.parquet"
    geno = tmp_path / "genotypes.parquet"
    pq.write_table(pa.table({"recipient_id": ["R1"], "donor_id": ["D1"],
                             "tags": pa.array([["a", "b"]]) if which == "pairs" else ["x"]}),
                   pairs)
    pq.write_table(pa.table({"sample_id": ["R1", "D1"], "hla": ["A*02:01", "A*01:01"],
                             "extra": pa.array([{"k": 1}, {"k": 2}]) if which == "genotypes"
                             else ["a", "b"]}), geno)
    col, typ = ("tags", "list<element: string>") if which == "pairs" else \
        ("extra", "struct<k: int64>")
    for cmd in (["batch", "--output", tmp_path / "o.csv"], ["rank", "-o", tmp_path / "o.csv"]):
        res = cli(*cmd, "--genotypes", geno, "--pairs", pairs)
        assert res.exit_code == 1, res.output
        assert res.stderr == (
            f"error: {which} file {which}.parquet: column {col!r} has type {typ} (a list or "
            "record per cell); kirmatch reads one value per cell: text, numbers, booleans or "
            f"dates [column {col!r}]\n")
    assert not (tmp_path / "o.csv").exists()


def _command(kind: str, tmp: Path, out: Path) -> list[object]:
    if kind == "batch":
        return ["batch", "--genotypes", GENOTYPES, "--pairs", EXAMPLES / "pairs.csv",
                "--output", out, "-q"]
    if kind == "rank":
        return ["rank", "-g", GENOTYPES, "-p", EXAMPLES / "pairs.csv", "-o", out, "-q"]
    hla = tmp / "hla.csv"
    if not hla.exists():
        hla.write_text("sample_id,hla\nS1,A*02:01+A*24:02^B*07:02+B*44:02\n")
    return ["convert", "--hla", hla, "--output", out]


def _refuse_create(err: int, folder: Path) -> Any:
    real = os.open

    def fake(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT and Path(os.fsdecode(path)).parent == folder:
            raise OSError(err, os.strerror(err), os.fsdecode(path))
        return real(path, flags, *args, **kwargs)

    return fake


@pytest.mark.parametrize("kind", ["batch", "rank", "convert"])
def test_item5_unwritable_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        kind: str) -> None:
    """Item 5: an unwritable output folder ended in an internal error (exit 3
    "please report it"). Now exit 3 with one line naming the output path.
    (Simulated in-process: root may write into read-only folders.)"""
    folder = tmp_path / "locked"
    folder.mkdir()
    out = folder / "out.csv"
    args = _command(kind, tmp_path, out)
    monkeypatch.setattr(os, "open", _refuse_create(errno.EACCES, folder))
    res = cli(*args)
    assert res.exit_code == 3, res.output
    assert res.stderr == f"error: cannot write '{out}': Permission denied\n"
    assert list(folder.iterdir()) == []


class _FillsUp(io.FileIO):
    """A real file on disk that takes ``room`` more bytes, writes them, then fails
    as a full disk does (the partial temporary file is really there)."""

    room = 0
    failed: list[str]

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if len(view) > self.room:
            super().write(view[: self.room])
            self.room = 0
            self.failed.append(self.name)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(view)
        return super().write(view)


def _disk_fills_up(room: int, failed: list[str]) -> Any:
    def fake_open(file: Any, mode: str = "r", buffering: int = -1, encoding: str | None = None,
                  errors: str | None = None, newline: str | None = None) -> Any:
        raw = _FillsUp(file, "w" if "w" in mode else mode.replace("b", ""))
        raw.room, raw.failed = room, failed
        if "b" in mode:
            return raw
        return io.TextIOWrapper(raw, encoding=encoding or "utf-8", errors=errors,
                                newline=newline, write_through=True)

    return fake_open


@pytest.mark.parametrize("kind", ["batch", "rank", "convert"])
def test_item5_and_8_disk_full_mid_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         kind: str) -> None:
    """Items 5 and 8: a full disk ended in an internal error, and rank and convert
    wrote in place. Now exit 3 with one line naming the output, and the
    previous run's files exactly as they were, no temporary file left."""
    out = tmp_path / "out.csv"
    args = _command(kind, tmp_path, out)
    res = cli(*args)
    assert res.exit_code == 0, res.output
    before = snapshot(tmp_path)
    room = 20 if kind == "convert" else 1_000  # the header fits, the rows do not
    failed: list[str] = []
    monkeypatch.setattr(output_module, "open", _disk_fills_up(room, failed), raising=False)
    res = cli(*args)
    assert res.exit_code == 3, res.output
    line = f"error: cannot write '{out}': No space left on device"
    if kind == "convert":  # convert reports what it read before writing
        assert res.stderr.splitlines()[-1] == line and res.stderr.count("error:") == 1
    else:
        assert res.stderr == line + "\n"
    assert len(failed) == 1 and Path(failed[0]).name.startswith(".out.csv.kirmatch-")
    assert snapshot(tmp_path) == before  # the partial temporary file is gone


# ---------------------------------------------------------------------------
# Item 6: formula neutralisation in every Arrow type and for TAB/CR prefixes
# ---------------------------------------------------------------------------

FORMULA_CELLS = ['=HYPERLINK("http://evil.example","click")', "@SUM(1)", "\t=1+2", "+1",
                 "-1", "plain", "=", "a=b"]
NEUTRAL = ['\'=HYPERLINK("http://evil.example","click")', "'@SUM(1)", "'\t=1+2", "'+1",
           "'-1", "plain", "'=", "a=b"]

PASS_COLS = ["cat", "bin", "lbin", "catbin", "text"]
# one donor per row and recipient: rank refuses a donor listed twice for one recipient
DONORS = ["D1", "D1", "D2", "R2", "P1", "P1-sister", "P1-son", "P1-father"]


def _formula_inputs(tmp: Path) -> tuple[Path, Path]:
    src = rows_of(GENOTYPES)
    geno = tmp / "g.csv"
    with open(geno, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sample_id", "hla", "kir"])
        w.writerow(["@R1", src[0]["hla"], src[0]["kir"]])  # an id that looks like a formula
        w.writerows([r["sample_id"], r["hla"], r["kir"]] for r in src)
    rids = ["@R1", *["R1"] * (len(FORMULA_CELLS) - 1)]
    pairs = tmp / "p.parquet"
    pq.write_table(pa.table({
        "recipient_id": pa.array(rids).dictionary_encode(),            # categorical id
        "donor_id": pa.array([d.encode() for d in DONORS], pa.binary()),  # binary id
        "cat": pa.array(FORMULA_CELLS).dictionary_encode(),
        "bin": pa.array([c.encode() for c in FORMULA_CELLS], pa.binary()),
        "lbin": pa.array([c.encode() for c in FORMULA_CELLS], pa.large_binary()),
        "catbin": pa.array([c.encode() for c in FORMULA_CELLS], pa.binary()).dictionary_encode(),
        "text": pa.array(FORMULA_CELLS, pa.large_string()),
    }), pairs)
    return geno, pairs


@pytest.mark.parametrize("ext", ["csv", "tsv", "xlsx"])
def test_item6_parquet_categorical_and_binary_cells_are_neutralised(tmp_path: Path,
                                                                     ext: str) -> None:
    """Item 6: a Parquet input whose id or pass-through columns are categorical
    (dictionary) or binary bypassed neutralisation (``=HYPERLINK(…)``, ``@SUM(1)``
    reached the CSV raw), and TAB-prefixed ``=`` was not neutralised. Now every
    such cell gets the leading ``'`` in CSV, TSV and XLSX, for batch and rank."""
    geno, pairs = _formula_inputs(tmp_path)
    for cmd in ("batch", "rank"):
        out = tmp_path / f"{cmd}.{ext}"
        res = cli(cmd, "--genotypes", geno, "--pairs", pairs, "--output", out, "-q")
        assert res.exit_code == 0, res.output
        if ext == "xlsx":
            from openpyxl import load_workbook

            ws = load_workbook(out).worksheets[0]
            cells = list(ws.iter_rows(values_only=True))
            assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
            rows = [dict(zip(cells[0], (v if v is not None else "" for v in r), strict=True))
                    for r in cells[1:]]
        else:
            rows = rows_of(out, "\t" if ext == "tsv" else ",")
        assert [r["recipient_id"] for r in rows] == ["'@R1", *["R1"] * (len(NEUTRAL) - 1)]
        assert [r["donor_id"] for r in rows] == DONORS
        for c in PASS_COLS:
            assert [r[c] for r in rows] == NEUTRAL, (cmd, c)
        assert [r["status"] for r in rows] == ["ok"] * len(NEUTRAL)


def test_item6_parquet_output_keeps_cells_raw(tmp_path: Path) -> None:
    """Item 6: Parquet output is not a spreadsheet: cells stay exactly as read."""
    geno, pairs = _formula_inputs(tmp_path)
    out = tmp_path / "o.parquet"
    res = cli("batch", "--genotypes", geno, "--pairs", pairs, "--output", out, "-q")
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.column("recipient_id").to_pylist()[0] == "@R1"
    for c in PASS_COLS:
        assert [v.decode() if isinstance(v, bytes) else v
                for v in table.column(c).to_pylist()] == FORMULA_CELLS, c


def test_item6_tab_and_cr_prefixed_cells_from_csv(tmp_path: Path) -> None:
    """Item 6: cells starting with TAB or CR followed by ``=`` were written raw.
    Now neutralised in batch and rank CSV outputs (and their errors files)."""
    pairs = tmp_path / "p.csv"
    pairs.write_bytes(b'recipient_id,donor_id,note\nR1,D1,"\t=1+2"\nR1,D1x,"\r=1+2"\n'
                      b'R1,D2,"\r\n=3"\n')
    for cmd in ("batch", "rank"):
        out, err = tmp_path / f"{cmd}.csv", tmp_path / f"{cmd}-err.csv"
        res = cli(cmd, "--genotypes", GENOTYPES, "--pairs", pairs, "--output", out,
                  "--errors", err, "-q")
        assert res.exit_code == 0, res.output
        assert [r["note"] for r in rows_of(out)] == ["'\t=1+2", "'\r=1+2", "'\r\n=3"]
        assert [(r["pairs_row"], r["note"]) for r in rows_of(err)] == [("2", "'\r=1+2")]


# ---------------------------------------------------------------------------
# Item 7: MFI values, policy bands and JSON are never silently wrong
# ---------------------------------------------------------------------------

def _antibodies(path: Path, p1_mfi: str) -> Path:
    """Allele-level antibodies: R1's A*11:01 hits D1, P1's A*02:01 hits
    P1-sister (P1 carries A*01:01 itself: an antibody against it would be left
    out, rule 13), P2's A*24:02 hits P2-mother."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerows([["recipient_id", "specificity", "mfi", "c1q"],
                     ["R1", "A*11:01", "3200", "neg"], ["P1", "A*02:01", p1_mfi, "neg"],
                     ["P2", "A*24:02", "900", "neg"]])
    return path


FINITE = "MFI must be a finite, non-negative number"


@pytest.mark.parametrize("mfi, reason", [
    ("inf", FINITE), ("1e309", FINITE), ("-1", FINITE), ("NaN", FINITE), ("12abc", FINITE),
    ("14.200", "ambiguous MFI: 14.2 or 14200 (a dot as thousands separator?); write it "
               "without separators, e.g. 14200"),
    ("1.200.000", "ambiguous MFI: dots as thousands separators (1200000?); write it without "
                  "separators, e.g. 1200000"),
    ("14,200", "ambiguous MFI: a decimal comma or a thousands separator? write it without "
               "separators (e.g. 14200) or with a decimal point"),
])
def test_item7_bad_mfi_fails_only_its_recipient(tmp_path: Path, mfi: str, reason: str) -> None:
    """Item 7: MFI ``inf`` or ``1e309`` aborted the whole rank run; ``14.200`` was
    read as 14.2. Now that recipient's rows are errors naming file, value, row
    and column; every other recipient is ranked."""
    ab = _antibodies(tmp_path / "ab.csv", mfi)
    res = cli("rank", "-g", GENOTYPES, "-p", EXAMPLES / "pairs.csv", "-a", ab, "--json")
    assert res.exit_code == 0, res.output
    results = json.loads(res.stdout)["results"]
    assert [r["recipient_id"] for r in results] == [r["recipient_id"] for r in
                                                    rows_of(EXAMPLES / "pairs.csv")]
    error = f"input_parse_error: ab.csv: cannot parse {mfi!r}: {reason} [row 2, column 'mfi']"
    for r in results:
        if r["recipient_id"] == "P1":
            assert (r["status"], r["error"], r["rank"]) == ("error", error, "")
        else:
            assert r["status"] == "ok" and r["rank"] != "", r
    d1 = next(r for r in results if r["donor_id"] == "D1")
    assert (d1["dsa_max_mfi"], d1["dsa_tier"], d1["rank"]) == ("3200", "moderate", "1")
    p2 = {r["donor_id"]: r for r in results if r["recipient_id"] == "P2"}
    assert sorted(r["rank"] for r in p2.values()) == ["1", "2", "3"]
    assert (p2["P2-mother"]["dsa_max_mfi"], p2["P2-mother"]["dsa_tier"]) == ("900", "none")


def test_item7_comma_thousands_separators_accepted(tmp_path: Path) -> None:
    """Item 7: ``1,200,000`` (two commas: no decimal-comma reading) is 1200000."""
    ab = _antibodies(tmp_path / "ab.csv", "1,200,000")
    res = cli("rank", "-g", GENOTYPES, "-p", EXAMPLES / "pairs.csv", "-a", ab, "--json")
    assert res.exit_code == 0, res.output
    p1 = {r["donor_id"]: r for r in json.loads(res.stdout)["results"]
          if r["recipient_id"] == "P1"}
    assert (p1["P1-sister"]["dsa_max_mfi"], p1["P1-sister"]["dsa_tier"]) == \
        ("1200000", "very high")
    for donor in ("P1-son", "P1-father"):
        assert (p1[donor]["dsa_max_mfi"], p1[donor]["dsa_tier"]) == ("0", "none")
    assert p1["P1-sister"]["rank"] == "3"
    assert p1["P1-sister"]["rank_reason"] == "dsa_tier: very high (A*02:01 1200000) vs none"


@pytest.mark.parametrize("band, listed, shown", [
    ("[nan]", "[nan]", "nan"), ("[30, inf]", "[30, inf]", "inf"),
    ("[-inf, 40]", "[-inf, 40]", "-inf"), ("[+nan, 40]", "[nan, 40]", "nan")])
def test_item7_non_finite_policy_band_is_a_usage_error(tmp_path: Path, band: str,
                                                       listed: str, shown: str) -> None:
    """Item 7: a TOML band ``donor_age = [nan]`` passed and silently switched the
    criterion off. Now exit 2 naming the file, the criterion and the value."""
    pol = tmp_path / "centre.toml"
    pol.write_text(f'[policy]\nname = "centre"\ncriteria = ["dsa_tier", "donor_age"]\n'
                   f"[policy.bands]\ndonor_age = {band}\n")
    res = cli("rank", "-g", GENOTYPES, "-p", EXAMPLES / "pairs.csv", "--policy", pol)
    assert res.exit_code == 2, res.output
    assert res.stderr == (f"error: policy file {pol}: [policy.bands] donor_age = {listed}: "
                          f"must be finite numbers, not {shown}\n")


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"JSON holds {name}")

    return json.loads(text, parse_constant=refuse)


def test_item7_json_never_holds_nan(tmp_path: Path) -> None:
    """Item 7: ``--json`` contained NaN. Parquet floats NaN and inf in the pairs
    (clinical and pass-through columns) and in the antibodies' MFI now give
    strict JSON: unknowns, text, or error rows naming the value."""
    pairs = tmp_path / "pairs.parquet"
    src = rows_of(EXAMPLES / "pairs.csv")
    n = len(src)
    nan, inf = float("nan"), float("inf")
    pq.write_table(pa.table({
        "recipient_id": [r["recipient_id"] for r in src],
        "donor_id": [r["donor_id"] for r in src],
        "donor_age": pa.array(([nan, 30.0, 41.0, 24.0, inf, 35.0, 33.0, 58.0] + [40.0] * n)[:n],
                              pa.float64()),
        "score": pa.array(([nan, inf, -inf, 1e300, 2.5, 3.0, None, 0.0] + [None] * n)[:n],
                          pa.float64()),
    }), pairs)
    ab = tmp_path / "ab.parquet"
    pq.write_table(pa.table({"recipient_id": ["R1", "P1", "P2"],
                             "specificity": ["A*11:01", "A*02:01", "A*24:02"],
                             "mfi": pa.array([3200.0, nan, inf], pa.float64())}), ab)
    out = tmp_path / "ranked.csv"
    res = cli("rank", "-g", GENOTYPES, "-p", pairs, "-a", ab, "--json", "-o", out)
    assert res.exit_code == 0, res.output
    doc = _strict_json(res.stdout)
    _strict_json((tmp_path / "ranked.csv.provenance.json").read_text())
    rows = doc["results"]
    assert [r["score"] for r in rows[:8]] == ["nan", "inf", "-inf", "1e+300", "2.5", "3", "",
                                              "0"]
    assert rows[0]["status"] == "ok" and "clinical_unknown(donor_age)" in rows[0]["warnings"]
    mfi_error = ("input_parse_error: ab.parquet: cannot parse {!r}: MFI must be a finite, "
                 "non-negative number [row {}, column 'mfi']")
    # P1's rows (the third names donor_age inf too, reported once the MFI is fixed)
    assert [r["error"] for r in rows[2:8]] == [*[mfi_error.format("nan", 2)] * 3,
                                               *[mfi_error.format("inf", 3)] * 3]
    assert all(r["status"] == "ok" for r in rows[8:])   # family P3: no antibody rows here
    assert rows[0]["dsa_max_mfi"] == "3200" and rows[0]["rank"] == "1"
    for args in (["pair", "--recipient-hla", "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01",
                  "--donor-hla", "A*02:01+A*11:01^B*07:02+B*35:01^C*07:02+C*04:01", "--json"],
                 ["ligands", "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01", "--json"]):
        res = cli(*args)
        assert res.exit_code == 0, res.output
        _strict_json(res.stdout)


# ---------------------------------------------------------------------------
# Item 8: a failed run leaves the previous run's files; no temporary file stays
# ---------------------------------------------------------------------------

def test_item8_failed_batch_leaves_previous_run(tmp_path: Path) -> None:
    """Item 8: a batch failing mid-stream left its new output beside the previous
    run's errors file and provenance. Here the errors file (XLSX) refuses a
    control character in data row 3,000, after thousands of rows were written:
    output, errors and run record stay as the previous run wrote them, byte for
    byte, and no temporary file is left."""
    geno = DATA / "golden_genotypes.csv"
    lines = (DATA / "golden_pairs.csv").read_text().splitlines(keepends=True)[:4001]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("".join(lines))
    out, err = tmp_path / "out.csv", tmp_path / "err.xlsx"
    run_batch(geno, pairs, out, errors=err)
    assert lines[3000].startswith("P0") and lines[0] == "recipient_id,donor_id,pair_no,note\n"
    lines[3000] = "NOPE,P00001,2999,bell\x07\n"  # data row 3,000: an error row (unknown id)
    pairs.write_text("".join(lines))
    before = snapshot(tmp_path)
    seen: list[Any] = []
    with pytest.raises(InputSchemaError, match=r"^err\.xlsx: data row \d+ \(pairs file row "
                                               r"3000\), column 'note': the cell holds the "
                                               r"control character U\+0007"):
        run_batch(geno, pairs, out, errors=err, chunk_rows=500, progress=seen.append)
    # chunks 1-5 were written before chunk 6 failed
    assert (seen[-1].stage, seen[-1].done, seen[-1].finished) == ("pairs", 2_500, False)
    assert snapshot(tmp_path) == before
    res = cli("batch", "--genotypes", geno, "--pairs", pairs, "--output", out, "--errors",
              err, "--chunk-size", "500")
    assert res.exit_code == 1 and "(pairs file row 3000), column 'note'" in res.stderr
    assert snapshot(tmp_path) == before


def test_item8_failed_rank_leaves_previous_run(tmp_path: Path) -> None:
    """Item 8: rank wrote non-atomically. A rank whose errors file fails (a
    control character XLSX cannot hold) after its output and run record were
    written leaves the previous output, errors, record and report as they were."""
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id,note\nR1,D1,a\nR1,NOBODY,b\nP1,P1-son,c\n")
    args = ["rank", "-g", GENOTYPES, "-p", pairs, "-o", tmp_path / "out.csv", "--errors",
            tmp_path / "err.xlsx", "--report", tmp_path / "report.html", "-q"]
    res = cli(*args)
    assert res.exit_code == 0, res.output
    assert {p.name for p in tmp_path.iterdir()} == {"p.csv", "out.csv", "err.xlsx",
                                                    "report.html", "out.csv.provenance.json"}
    pairs.write_text("recipient_id,donor_id,note\nR1,D1,a\nR1,NOBODY,b\x07\nP1,P1-son,c\n")
    before = snapshot(tmp_path)
    res = cli(*args)
    assert res.exit_code == 1, res.output
    assert res.stderr == ("error: err.xlsx: data row 1 (pairs file row 2), column 'note': "
                          "the cell holds the "
                          "control character U+0007, which XLSX cannot store; write CSV or "
                          "Parquet, which keep it whole\n")
    assert snapshot(tmp_path) == before


KIRMATCH = Path(sys.executable).with_name("kirmatch")


@pytest.fixture(scope="module")
def big_pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300,000 pairs rows: a batch that runs long enough to be signalled."""
    path = tmp_path_factory.mktemp("big") / "pairs.csv"
    lines = (DATA / "golden_pairs.csv").read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "".join(lines[1:]) * 30)
    return path


def _start_batch(tmp: Path, pairs: Path) -> tuple[subprocess.Popen[str], Path]:
    out = tmp / "out.csv"
    proc = subprocess.Popen(
        [str(KIRMATCH), "batch", "--genotypes", str(DATA / "golden_genotypes.csv"), "--pairs",
         str(pairs), "--output", str(out), "--errors", str(tmp / "err.csv"), "--chunk-size",
         "2000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until rows are being written to the temporary file
        partial = [p for p in tmp.glob(".out.csv.kirmatch-*.partial") if p.stat().st_size > 4096]
        if partial:
            return proc, out
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("batch never started writing")


def _previous_run(tmp: Path) -> dict[str, bytes]:
    (tmp / "out.csv").write_text("previous output\n")
    (tmp / "err.csv").write_text("previous errors\n")
    (tmp / "out.csv.provenance.json").write_text('{"run": "previous"}\n')
    return snapshot(tmp)


def test_item8_sigterm_removes_temporaries(tmp_path: Path, big_pairs: Path) -> None:
    """Item 8: SIGTERM left hidden ``.partial`` files. Now exit 143 with one line,
    the temporaries removed and the previous run's files untouched."""
    before = _previous_run(tmp_path)
    proc, _ = _start_batch(tmp_path, big_pairs)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert stderr.splitlines()[-1] == "error: terminated by SIGTERM"
    assert snapshot(tmp_path) == before and hidden(tmp_path) == []


def test_item8_sigkill_temporaries_are_cleaned_by_the_next_run(tmp_path: Path,
                                                               big_pairs: Path) -> None:
    """Item 8: SIGKILL cannot be caught: its temporaries stay (the previous files
    untouched), and the next run writing the same outputs removes them."""
    before = _previous_run(tmp_path)
    proc, out = _start_batch(tmp_path, big_pairs)
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    left = hidden(tmp_path)
    assert any(n.startswith(".out.csv.kirmatch-") for n in left), left
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith(".")} == before
    res = cli("batch", "--genotypes", GENOTYPES, "--pairs", EXAMPLES / "pairs.csv", "--output",
              out, "--errors", tmp_path / "err.csv", "-q")
    assert res.exit_code == 0, res.output
    assert hidden(tmp_path) == []
    assert len(rows_of(out)) == len(rows_of(EXAMPLES / "pairs.csv"))


# ---------------------------------------------------------------------------
# Item 9: XLSX never cuts or drops a cell silently
# ---------------------------------------------------------------------------

XLSX_CASES = {
    "32,768 characters": ("x" * 32_768, "the cell holds 32,768 characters; an XLSX cell holds "
                                         "at most 32,767"),
    "16,384 emoji (32,768 UTF-16 units)": (
        "\U0001f9ec" * 16_384, "the cell holds 32,768 characters; an XLSX cell holds at most "
                               "32,767"),
    "a control character": ("bell\x07", "the cell holds the control character U+0007, which "
                                        "XLSX cannot store"),
    "a carriage return": ("a\rb", "the cell holds a carriage return (U+000D), which XLSX "
                                  "turns into a line feed"),
}


@pytest.mark.parametrize("cmd", ["batch", "rank"])
@pytest.mark.parametrize("case", list(XLSX_CASES))
def test_item9_xlsx_cell_it_cannot_hold(tmp_path: Path, cmd: str, case: str) -> None:
    """Item 9: XLSX output silently cut cells at 32,767 characters, and one control
    character failed the whole XLSX obscurely. Now exit 1 with one line naming
    the data row and the column; nothing is written."""
    cell, reason = XLSX_CASES[case]
    pairs = tmp_path / "p.csv"
    _write_dialect(pairs, [["recipient_id", "donor_id", "note"], ["R1", "D1", "a"],
                           ["P1", "P1-son", "b"], ["P1", "P1-father", cell],
                           ["P2", "P2-mother", "d"]], ",", "\n")
    out = tmp_path / "out" / "o.xlsx"
    res = cli(cmd, "--genotypes", GENOTYPES, "--pairs", pairs, "--output", out, "-q")
    assert res.exit_code == 1, res.output
    assert res.stderr == (f"error: o.xlsx: data row 3, column 'note': {reason}; write CSV or "
                          "Parquet, which keep it whole\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]


def test_item9_xlsx_keeps_the_largest_cell_whole(tmp_path: Path) -> None:
    """Item 9: a cell of exactly 32,767 characters is written whole."""
    from openpyxl import load_workbook

    cell = "y" * 32_766 + "z"
    pairs = tmp_path / "p.csv"
    pairs.write_text(f"recipient_id,donor_id,note\nR1,D1,{cell}\n")
    out = tmp_path / "o.xlsx"
    res = cli("batch", "--genotypes", GENOTYPES, "--pairs", pairs, "--output", out, "-q")
    assert res.exit_code == 0, res.output
    rows = list(load_workbook(out, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert rows[1][2] == cell and rows[1][3] == "ok"


# ---------------------------------------------------------------------------
# Item 10: a py-ard folder kirmatch did not build is refused, never downloaded into
# ---------------------------------------------------------------------------

@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


FIX = "build it once with `kirmatch data build` (online) or `kirmatch data build --imgt-mirror"


@pytest.mark.pyard
def test_item10_pyard_folder_without_marker(tmp_path: Path, pyard_dir: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            no_network: None) -> None:
    """Item 10: a py-ard data folder without kirmatch's marker file made py-ard try
    the network at run time. Now a clear error naming the fix, with the network
    blocked: ``ligands`` of a MAC code (the one typing that needs py-ard) exits 1;
    ``ligands`` of serology and ``rank`` with antigen-level antibodies need no py-ard
    (rule 13 v2: the shipped antigen table) and work; ``data status`` says why."""
    import kirmatch.pyard_backend as pb

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for f in pyard_dir.glob("pyard-*.sqlite3"):
        shutil.copy(f, foreign / f.name)
    monkeypatch.setenv("KIRMATCH_PYARD_DIR", str(foreign))
    pb._BACKENDS.clear()
    try:
        res = cli("ligands", "A2+A24^B44^Cw4")
        assert res.exit_code == 0, res.output
        assert "Cw4                    C     ambiguous (C1|C2)" in res.stdout
        res = cli("ligands", "A*02101+A*24:02^B*44:02^C*05:01")  # v2: needs py-ard
        assert res.exit_code == 1, res.output
        assert res.stderr.startswith(f"error: {foreign} holds a py-ard database that kirmatch "
                                     "did not build (no kirmatch-pyard.json)")
        assert FIX in res.stderr and res.stderr.count("\n") == 1
        ab = tmp_path / "ab.csv"
        ab.write_text("recipient_id,specificity,mfi\nR1,A*11:01,3200\nP1,B57,12000\n"
                      "P2,A*24:02,900\n")
        res = cli("rank", "-g", GENOTYPES, "-p", EXAMPLES / "pairs.csv", "-a", ab, "--json")
        assert res.exit_code == 0, res.output
        results = json.loads(res.stdout)["results"]
        for r in results:
            assert r["status"] == "ok" and r["rank"], r
        p1 = {r["donor_id"]: r["dsa_tier"] for r in results if r["recipient_id"] == "P1"}
        assert p1 == {"P1-sister": "high", "P1-son": "none", "P1-father": "none"}
        status = cli("data", "status")
        assert status.exit_code == 0 and "was not built by kirmatch" in status.stdout
    finally:
        pb._BACKENDS.clear()


# ---------------------------------------------------------------------------
# Item 11: rank's options, row numbers, summary, order and relationship words
# ---------------------------------------------------------------------------

REL_PAIRS = ("recipient_id,donor_id,relationship,note\n"
             "Z9,P2-sister,sister,1\n"
             "P2,P2-brother,brother,2\n"
             "P2,P2-sister,SISTER,3\n"
             "P2,P2-mother,mother,4\n"
             "P1,P1-son,son,5\n"
             "P1,P1-sister,Daughter,6\n"
             "A0,D1,,7\n")


def test_item11_rank_strict_errors_quiet_and_short_o(tmp_path: Path) -> None:
    """Item 11: rank lacked ``--strict``, ``--errors``, ``--quiet`` and ``-o``. With
    them: everything is written, then exit 1; nothing on stdout; the errors file
    holds the error rows led by their 1-based data row."""
    pairs = tmp_path / "p.csv"
    pairs.write_text(REL_PAIRS)
    out, err = tmp_path / "o.csv", tmp_path / "e.csv"
    res = cli("rank", "-g", GENOTYPES, "-p", pairs, "-o", out, "--errors", err, "--strict",
              "-q")
    assert res.exit_code == 1
    assert res.stdout == ""
    assert res.stderr == "error: 2 row(s) have status=error (--strict)\n"
    assert [r["note"] for r in rows_of(out)] == [str(n) for n in range(1, 8)]
    assert [(r["pairs_row"], r["recipient_id"], r["error"]) for r in rows_of(err)] == [
        ("1", "Z9", "person_not_found: recipient 'Z9' has no record in the genotypes file"),
        ("7", "A0", "person_not_found: recipient 'A0' has no record in the genotypes file")]
    res = cli("rank", "-g", GENOTYPES, "-p", pairs, "-o", out, "-q")
    assert (res.exit_code, res.stdout, res.stderr) == (0, "", "")


def test_item11_summary_in_file_order_and_synonyms(tmp_path: Path) -> None:
    """Item 11: with ``--output`` rank printed every table (now one line per
    recipient), recipients came out alphabetically (now file order), and
    ``brother``/``sister``/``son``/``daughter`` dropped the donor (now accepted,
    written as ``sibling``/``child``, and ranked as such)."""
    pairs = tmp_path / "p.csv"
    pairs.write_text(REL_PAIRS)
    out = tmp_path / "o.csv"
    res = cli("rank", "-g", GENOTYPES, "-p", pairs, "-o", out)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        "Z9: 0 donor(s) ranked, top none, 1 error row(s)",
        "P2: 3 donor(s) ranked, top P2-mother; DSA NOT CHECKED: no antibody data for this "
        "recipient",
        "P1: 2 donor(s) ranked, top P1-sister; DSA NOT CHECKED: no antibody data for this "
        "recipient",
        "A0: 0 donor(s) ranked, top none, 1 error row(s)",
        f"4 recipient(s), 7 candidate(s) -> {out}",
        "Research and decision support, not a medical device."]
    tables = cli("rank", "-g", GENOTYPES, "-p", pairs)  # no output file: one table each
    assert tables.exit_code == 0, tables.output
    titles = [ln.strip() for ln in tables.stdout.splitlines() if ln.strip().startswith("Recipient")]
    assert titles == ["Recipient Z9", "Recipient P2", "Recipient P1", "Recipient A0"]
    rows = rows_of(out)
    assert [(r["recipient_id"], r["donor_id"], r["relationship"], r["status"]) for r in rows] == [
        ("Z9", "P2-sister", "sister", "error"), ("P2", "P2-brother", "sibling", "ok"),
        ("P2", "P2-sister", "sibling", "ok"), ("P2", "P2-mother", "mother", "ok"),
        ("P1", "P1-son", "child", "ok"), ("P1", "P1-sister", "child", "ok"),
        ("A0", "D1", "", "error")]
    pol = tmp_path / "rel.toml"
    pol.write_text('[policy]\nname = "relationship-first"\ncriteria = ["relationship"]\n')
    res = cli("rank", "-g", GENOTYPES, "-p", pairs, "--policy", pol, "--json")
    assert res.exit_code == 0, res.output
    p2 = {r["donor_id"]: (r["rank"], r["rank_reason"]) for r in json.loads(res.stdout)["results"]
          if r["recipient_id"] == "P2"}
    assert p2 == {"P2-brother": ("1", "top"),  # brother = sister: the id breaks the tie
                  "P2-sister": ("2", "donor_id: P2-sister vs P2-brother"),
                  "P2-mother": ("3", "relationship: mother vs sibling")}
    pairs.write_text("recipient_id,donor_id,relationship\nP2,P2-brother,uncle\n")
    res = cli("rank", "-g", GENOTYPES, "-p", pairs, "--json")
    assert json.loads(res.stdout)["results"][0]["error"] == (
        "input_parse_error: relationship must be one of child, father, mother, other, "
        "sibling, not 'uncle' [row 1, column 'relationship']")


def test_item11_rows_are_data_rows_like_batch(tmp_path: Path) -> None:
    """Item 11: rank counted file lines where batch counts data rows. With blank
    lines and a quoted line break before it, a bad row is named by its 1-based
    data row in rank's message, in rank's and batch's ``pairs_row``."""
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id,donor_age,note\n\n"
                     'R1,NOBODY,30,"two\nlines"\n\n'
                     "P1,P1-son,24,x\n"
                     "P1,P1-father,old,y\n")
    res = cli("rank", "-g", GENOTYPES, "-p", pairs, "--errors", tmp_path / "re.csv", "--json")
    assert res.exit_code == 0, res.output
    results = json.loads(res.stdout)["results"]
    assert [r["status"] for r in results] == ["error", "ok", "error"]
    assert results[2]["error"] == ("input_parse_error: donor_age must be a number of years, "
                                   "not 'old' [row 3, column 'donor_age']")
    assert [r["pairs_row"] for r in rows_of(tmp_path / "re.csv")] == ["1", "3"]
    res = cli("batch", "--genotypes", GENOTYPES, "--pairs", pairs, "--output", tmp_path / "b.csv",
              "--errors", tmp_path / "be.csv")
    assert res.exit_code == 0, res.output
    assert [(r["pairs_row"], r["note"]) for r in rows_of(tmp_path / "be.csv")] == [
        ("1", "two\nlines")]


def test_item11_pair_antibodies_for_another_recipient(tmp_path: Path) -> None:
    """Item 11: ``pair --antibodies`` silently ignored a file whose rows are for
    another recipient id. Now exit 1 naming the recipient and the ids found; the
    right id gives the DSA."""
    ab = tmp_path / "abx.csv"
    ab.write_text("recipient_id,specificity,mfi\nX1,A*11:01,3000\nX2,A*02:01,2000\n")
    base = ["pair", "--recipient-hla", "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01",
            "--donor-hla", "A*02:01+A*11:01^B*07:02+B*35:01^C*07:02+C*04:01", "--antibodies",
            ab, "--json"]
    res = cli(*base, "--recipient-id", "R1")
    assert res.exit_code == 1
    assert res.stderr == ("error: abx.csv has no antibody rows for recipient 'R1' (recipient "
                          "ids found: 'X1', 'X2'); name the recipient with --recipient-id "
                          "[column 'recipient_id']\n")
    res = cli(*base, "--recipient-id", "X1")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert (doc["dsa_max_mfi"], doc["dsa_tier"]) == (3000, "moderate")


# ---------------------------------------------------------------------------
# Found while testing item 4: an XLSX formula without a saved value
# ---------------------------------------------------------------------------

def test_item4_xlsx_formula_without_saved_value_is_not_blank(tmp_path: Path) -> None:
    """Item 4 (blank means untyped) must not extend to cells that are not blank:
    a typing cell holding a formula whose value was never saved is unknown
    input, so the pairs that use it are errors naming the column, not
    computed as untyped."""
    from openpyxl import Workbook

    src = rows_of(GENOTYPES)
    wb = Workbook()
    ws = wb.active
    ws.append(["sample_id", "hla", "kir"])
    for r in src:
        hla = f'="{r["hla"]}"' if r["sample_id"] == "D1" else r["hla"]
        ws.append([r["sample_id"], hla, r["kir"]])
    geno = tmp_path / "g.xlsx"
    wb.save(geno)
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id\nR1,D1\n")
    out = tmp_path / "o.csv"
    res = cli("batch", "--genotypes", geno, "--pairs", pairs, "--output", out, "-q")
    if res.exit_code == 1:  # refused as a whole: the message names the column
        assert "'hla'" in res.stderr and not out.exists()
    else:  # or the pair is an error naming the column
        assert res.exit_code == 0, res.output
        row = rows_of(out)[0]
        assert row["status"] == "error" and "'hla'" in row["error"], row


@pytest.mark.parametrize("header", ["A_0,A_1", "A0,A1", "A.0,A.1", "A_1,A_3", "HLA-A_1,HLA-A_3",
                                    "Cw_0,Cw_1", "A1,A3"])
def test_item4_allele_columns_numbered_otherwise_are_refused(tmp_path: Path, header: str
                                                             ) -> None:
    """Item 4 (found on replay): allele columns numbered from 0 (``A_0/A_1``) or
    with a third slot (``A_3``) used to lose one column silently: every person
    was read as homozygous at that locus (wrong ligands, status ok). Now the
    column is an error naming it, and nothing is written."""
    geno = tmp_path / "g.csv"
    geno.write_text(f"sample_id,{header}\nR1,02:01,24:02\nD1,02:01,11:01\n")
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id\nR1,D1\n")
    out = tmp_path / "o.csv"
    res = cli("batch", "-g", geno, "-p", pairs, "-o", out, "-q")
    bad = next(c for c in header.split(",") if c[-1] in "03")
    assert res.exit_code == 1, res.output
    assert f"column {bad!r} looks like an HLA-" in res.output
    assert "numbered 1 and 2" in res.output
    assert not out.exists()


def test_item4_other_columns_named_like_loci_stay_ignored(tmp_path: Path) -> None:
    """The refusal above is narrow: a lone B27, B7, C3 or DRB345 column (a
    serology flag, a DRB3/4/5 summary) is still not a typing and is ignored (and
    listed in the run record); A_01/A_02 are the allele columns 1 and 2."""
    geno = tmp_path / "g.csv"
    geno.write_text("sample_id,A_01,A_02,B27,B7,C3,DRB345\n"
                    "R1,02:01,24:02,pos,x,y,DR52\nD1,02:01,11:01,neg,x,y,DR53\n")
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id\nR1,D1\n")
    out = tmp_path / "o.csv"
    res = cli("batch", "-g", geno, "-p", pairs, "-o", out, "-q")
    assert res.exit_code == 0, res.output
    row = rows_of(out)[0]
    assert row["status"] == "ok" and "single_allele" not in row["warnings"]
    assert row["hla_mm_hvg_A"] == "1"           # A*11:01 of the donor: both A columns read
    record = json.loads((tmp_path / "o.csv.provenance.json").read_text())
    assert record["inputs"]["genotypes"]["layout"]["ignored_columns"] == [
        "B27", "B7", "C3", "DRB345"]
