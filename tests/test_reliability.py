"""Reliability harness for ``kirmatch batch`` (issue 9): a seeded pairs file of
12,000 data rows that mixes valid rows with every kind of malformed row a lab
export produces, written as CSV and as Parquet (pass-through and id columns as
string, categorical and binary).

What is generated (:func:`make_rows`):

* valid rows: ids of the genotypes cohort (some unparsable or unknown people,
  ids with blanks around them, unknown and empty ids), and two pass-through
  columns (``note``, ``comment``) whose cells hold delimiters, quotes, line
  breaks (LF and CRLF inside quotes), tabs, non-ASCII text and formula cells
  (``=``, ``+``, ``-``, ``@``, TAB- and CR-prefixed); ``pair_no`` numbers the
  rows so that order can be checked;
* ragged rows: one or two fields too many (a value, or an empty trailing
  field), one to three fields too few, some of them with a quoted line break;
* a NUL byte inside a cell; Latin-1 bytes (``Zürich``) inside the UTF-8 file;
* blank lines between rows (not data rows: not counted) and no final newline;
  the same rows also semicolon-delimited with CRLF line ends.

What is checked, for every run (library :func:`run_batch` with a chunk size
that puts chunk boundaries among the bad rows, and once through the CLI):

* one output row per input data row, in order (``pair_no``);
* every pass-through cell of every readable row exactly as written, the only
  change allowed being a leading ``'`` before a formula prefix (CSV output);
  raw and unchanged in Parquet output;
* ``status=error`` for each malformed row with the exact message naming its
  data row (and the column, and the value or byte, where one cell is at fault);
* the expected status of every readable row (error exactly when an id is
  empty, unknown or names a person whose typing cannot be parsed);
* the computed columns of a few hundred distinct pairs equal to the same pair
  computed alone by ``assess_pair(make_person(...), make_person(...)).to_row()``,
  and every row of the same pair equal to each other (position and chunk
  boundaries change nothing).
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from kirmatch import assess_pair, load_reference_tables, make_person
from kirmatch.batch import OUTPUT_COLUMNS, run_batch
from kirmatch.errors import KirmatchError
from kirmatch.tables import ReferenceTables

DATA = Path(__file__).resolve().parent / "data"
SEED = 20260909
N_ROWS = 12_000
HEADER = ["pair_no", "recipient_id", "donor_id", "note", "comment"]
PASS = HEADER  # every pairs column passes through
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SAMPLED_PAIRS = 300


# Cells of the pass-through columns: plain, awkward for CSV, and formula-like.
PLAIN = ["", "first look", "007", "NA", "  padded  ", "Zürich", "日本", "🧬 dna", "x;y",
         "tab\tinside", "ends with space ", "ok"]
AWKWARD = ["a,b", 'say "hi"', "line1\nline2", "crlf\r\ninside", '"', ",", "a,\"b\"\nc",
           "\n", "semi;colon,comma"]
FORMULAS = ["=1+2", '=HYPERLINK("http://x","y")', "+44 20", "-5", "@SUM(A1)", "\t=1+2",
            "\r=1+2", "=", "-", "+", "@", "-1,5", "=A1\n+B2"]


@dataclass
class Row:
    """One logical data row: its cells and what is wrong with it (``kind``)."""

    cells: list[str]
    kind: str = "good"          # good | more | fewer | nul | latin1
    bad_column: str | None = None
    extra: list[str] | None = None
    keep: int = 5               # fewer: fields written


def _cell(rng: random.Random) -> str:
    x = rng.random()
    pool = PLAIN if x < 0.45 else AWKWARD if x < 0.7 else FORMULAS
    return rng.choice(pool)


def make_people(rng: random.Random) -> list[tuple[str, str, str]]:
    with open(DATA / "golden_genotypes.csv", newline="", encoding="utf-8") as fh:
        golden = [tuple(r) for r in csv.reader(fh)][1:]
    # 90 valid people of the golden cohort (its own broken rows 10-12 left out)
    people: list[tuple[str, str, str]] = [
        (f"G{i:05d}", hla, kir) for i, (_, hla, kir) in enumerate(rng.sample(golden[20:1200], 90))]
    people[5] = (people[5][0], "A*0x:01+A*02:01^B*07:02+B*08:01", people[5][2])  # unparsable
    people[6] = (people[6][0], "A*99:99+A*01:01^B*07:02+B*08:01", people[6][2])  # unknown allele
    people[7] = (people[7][0], people[7][1], "KIR2DL1*999+KIR2DL3")              # bad KIR
    people[8] = ("=G-formula", people[8][1], people[8][2])                       # formula id
    return people


def make_rows(rng: random.Random, ids: list[str]) -> list[Row]:
    rows = []
    for i in range(N_ROWS):
        r, d = rng.choice(ids), rng.choice(ids)
        x = rng.random()
        if x < 0.01:
            r = f"GHOST{i}"
        elif x < 0.015:
            d = ""
        elif x < 0.03:
            r = f"  {r} "
        cells = [str(i + 1), r, d, _cell(rng), _cell(rng)]
        row = Row(cells)
        y = rng.random()
        if y < 0.02:
            row.kind = "more"
            row.extra = rng.choice([["EXTRA"], [""], ["", "late"], ["x,y"]])
        elif y < 0.035:
            row.kind = "fewer"
            row.keep = rng.choice([2, 3, 4])
        elif y < 0.045:
            row.kind, row.bad_column = "nul", rng.choice(["note", "comment", "donor_id"])
            col = HEADER.index(row.bad_column)
            row.cells[col] = row.cells[col][:1] + "\x00" + row.cells[col][1:]
        elif y < 0.055:
            row.kind, row.bad_column = "latin1", rng.choice(["note", "comment"])
            row.cells[HEADER.index(row.bad_column)] = f"Zürich {i}"
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------
# Writing the inputs
# ---------------------------------------------------------------------------

def _quote(cell: str, delimiter: str = ",") -> str:
    """RFC 4180: quote a cell holding the delimiter, a quote, CR or LF. (Python's
    csv writer with LF line ends leaves a lone CR unquoted: a line break to readers.)"""
    if any(ch in cell for ch in (delimiter, '"', "\r", "\n")):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def write_csv(path: Path, rows: list[Row], rng: random.Random, delimiter: str = ",",
              newline: str = "\n") -> None:
    def line(cells: list[str], bad: int | None = None) -> bytes:
        parts = [_quote(c, delimiter).encode("latin-1" if i == bad else "utf-8")
                 for i, c in enumerate(cells)]
        return delimiter.encode().join(parts) + newline.encode()

    out = bytearray(line(HEADER))
    for row in rows:
        if rng.random() < 0.01:
            out += newline.encode()  # a blank line: not a data row
        if row.kind == "more":
            out += line(row.cells + (row.extra or []))
        elif row.kind == "fewer":
            out += line(row.cells[: row.keep])
        elif row.kind == "latin1":  # only the bad cell in Latin-1, the others UTF-8
            out += line(row.cells, HEADER.index(row.bad_column or "note"))
        else:
            out += line(row.cells)
    path.write_bytes(bytes(out[: -len(newline)]))  # no final line break


def write_parquet(path: Path, rows: list[Row], variant: str) -> None:
    """Ragged rows cannot exist in Parquet: they are written as their valid cells.
    Latin-1 cells are valid text in string/categorical columns and raw Latin-1
    bytes (not UTF-8: error rows) in binary columns."""
    cols: dict[str, list[Any]] = {c: [] for c in HEADER}
    for row in rows:
        for c, v in zip(HEADER, row.cells, strict=True):
            if variant == "binary":
                raw = v.encode("latin-1") if row.kind == "latin1" and c == row.bad_column \
                    else v.encode()
                cols[c].append(raw)
            else:
                cols[c].append(v)
    arrays = {}
    for c, values in cols.items():
        if variant == "binary":
            arrays[c] = pa.array(values, pa.binary() if c != "comment" else pa.large_binary())
        elif variant == "dictionary":
            arrays[c] = pa.array(values, pa.string()).dictionary_encode()
        else:
            arrays[c] = pa.array(values, pa.string() if c != "comment" else pa.large_string())
    pq.write_table(pa.table(arrays), path, row_group_size=2_500)


def write_genotypes(path: Path, people: list[tuple[str, str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sample_id", "hla", "kir"])
        w.writerows(people)


# ---------------------------------------------------------------------------
# Expectations
# ---------------------------------------------------------------------------

def neutral(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text


def expected_error(row: Row, n: int, fmt: str) -> str | None:
    """The exact error of a malformed row (``n``: its 1-based data row), or None."""
    head = f"input_parse_error: pairs row {n} "
    if fmt == "csv" and row.kind == "more":
        got = 5 + len(row.extra or [])
        value = next((v for v in row.extra or [] if v.strip()), "")
        what = f"extra value {value!r}" if value else "an empty extra field: a trailing delimiter?"
        return f"{head}has {got} fields but the header has 5 ({what})"
    if fmt == "csv" and row.kind == "fewer":
        return f"{head}has {row.keep} fields but the header has 5"
    if row.kind == "nul":
        return f"{head}column {row.bad_column!r} holds a NUL byte (a corrupt or binary file?)"
    if row.kind == "latin1" and fmt in ("csv", "binary"):
        return (f"{head}column {row.bad_column!r} is not valid UTF-8 text (byte 0xfc at "
                "character 2)")
    return None


def read_csv_output(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, [dict(zip(header, r, strict=True)) for r in reader]


@dataclass
class Cohort:
    people: list[tuple[str, str, str]]
    persons: dict[str, Any]           # id -> Person or the KirmatchError it raised
    rows: list[Row]
    genotypes: Path
    csv_path: Path
    tables: ReferenceTables


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    rng = random.Random(SEED)
    t = load_reference_tables()
    people = make_people(rng)
    rows = make_rows(rng, [p[0] for p in people])
    folder = tmp_path_factory.mktemp("reliability")
    geno = folder / "genotypes.csv"
    write_genotypes(geno, people)
    pairs = folder / "pairs.csv"
    write_csv(pairs, rows, rng)
    persons: dict[str, Any] = {}
    for pid, hla, kir in people:
        try:
            person = make_person(pid, hla, kir, tables=t)
            # an unknown allele is found when the pair is assessed: a person whose
            # pair with itself cannot be assessed fails every pair it is in
            assess_pair(person, person, tables=t)
            persons[pid] = person
        except KirmatchError as exc:
            persons[pid] = exc
    return Cohort(people, persons, rows, geno, pairs, t)


def test_generated_input_has_every_kind(cohort: Cohort) -> None:
    """The harness exercises what it claims: enough rows of every kind."""
    kinds = {k: sum(r.kind == k for r in cohort.rows) for k in
             ("good", "more", "fewer", "nul", "latin1")}
    assert len(cohort.rows) >= 10_000
    assert kinds["good"] > 10_000 and min(kinds.values()) >= 60, kinds
    good = [r for r in cohort.rows if r.kind == "good"]
    for needle in ("\n", "\r\n", ",", '"', "\t=", "\r="):
        assert sum(needle in c for r in good for c in r.cells[3:]) > 20, needle
    for prefix in "=+-@":
        assert sum(c.startswith(prefix) for r in good for c in r.cells[3:]) > 20, prefix
    assert sum(isinstance(p, KirmatchError) for p in cohort.persons.values()) == 3
    raw = cohort.csv_path.read_bytes()
    assert b"\x00" in raw and b"\n\n" in raw and not raw.endswith(b"\n")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def _expected_status(cohort: Cohort, row: Row) -> str:
    rid, did = row.cells[1].strip(), row.cells[2].strip()
    if not rid or not did:
        return "error"
    r, d = cohort.persons.get(rid), cohort.persons.get(did)
    if r is None or d is None or isinstance(r, KirmatchError) or isinstance(d, KirmatchError):
        return "error"
    return "ok"


def check_output(cohort: Cohort, got: list[dict[str, str]], fmt: str,
                 sample_seed: int) -> None:
    """Every assertion of the module docstring, for one output."""
    rows = cohort.rows
    assert len(got) == len(rows)
    computed: dict[tuple[str, str], dict[str, str]] = {}
    for n, (row, out) in enumerate(zip(rows, got, strict=True), start=1):
        err = expected_error(row, n, fmt)
        if err is not None:
            assert (out["status"], out["error"]) == ("error", err), n
            assert all(out[c] == "" for c in PASS), (n, {c: out[c] for c in PASS})
            assert all(out[c] == "" for c in OUTPUT_COLUMNS[2:]), n
            continue
        want = [neutral(c) for c in row.cells]
        assert [out[c] for c in PASS] == want, n
        status = _expected_status(cohort, row)
        assert out["status"] == status, (n, out["error"])
        if status == "error":
            assert out["error"] != "" and all(out[c] == "" for c in OUTPUT_COLUMNS[2:]), n
            rid, did = row.cells[1].strip(), row.cells[2].strip()
            missing = [x for x in (rid, did) if x and x not in cohort.persons]
            for x in missing:
                assert f"{x!r} has no record" in out["error"], (n, out["error"])
            if not rid or not did:
                assert "is empty" in out["error"], (n, out["error"])
            continue
        key = (row.cells[1].strip(), row.cells[2].strip())
        values = {c: out[c] for c in OUTPUT_COLUMNS}
        # the same pair gives the same result wherever it stands in the file
        assert computed.setdefault(key, values) == values, (n, key)
    # every malformed-row kind was seen for this format
    assert any(expected_error(r, i, fmt) for i, r in enumerate(rows, 1))
    # a few hundred distinct pairs against assess_pair, computed alone
    rng = random.Random(sample_seed)  # each output checks other pairs
    keys = sorted(computed)
    for key in rng.sample(keys, min(SAMPLED_PAIRS, len(keys))):
        exp = assess_pair(cohort.persons[key[0]], cohort.persons[key[1]],
                          tables=cohort.tables).to_row()
        got_row = computed[key]
        diff = {k: (got_row[k], v) for k, v in exp.items() if k in got_row and got_row[k] != v}
        assert not diff, (key, diff)
        assert set(OUTPUT_COLUMNS) <= set(exp)


def test_csv_library_and_cli(cohort: Cohort, tmp_path: Path) -> None:
    """Issue 9: 12,000 mixed rows from CSV: count, order, pass-through, errors
    naming the row, and results equal to assess_pair; the CLI writes the same
    bytes (another chunk size) and says how many rows failed."""
    out = tmp_path / "out.csv"
    errors = tmp_path / "errors.csv"
    summary = run_batch(cohort.genotypes, cohort.csv_path, out, errors=errors,
                        chunk_rows=997, tables=cohort.tables)
    header, got = read_csv_output(out)
    assert header == [*HEADER, *OUTPUT_COLUMNS]
    check_output(cohort, got, "csv", sample_seed=1)
    n_err = sum(r["status"] == "error" for r in got)
    assert (summary.rows_in, summary.rows_error) == (N_ROWS, n_err)
    _, errs = read_csv_output(errors)
    assert [e["pairs_row"] for e in errs] == [str(i) for i, r in enumerate(got, 1)
                                              if r["status"] == "error"]
    assert all(e["error"] == got[int(e["pairs_row"]) - 1]["error"] for e in errs)

    from kirmatch.cli.main import app

    cli_out = tmp_path / "cli.csv"
    res = CliRunner().invoke(app, ["batch", "--genotypes", str(cohort.genotypes), "--pairs",
                                   str(cohort.csv_path), "--output", str(cli_out)])
    assert res.exit_code == 0, res.output
    assert f"{N_ROWS:,} pairs ({N_ROWS - n_err:,} ok, {n_err:,} error" in res.stderr
    assert cli_out.read_bytes() == out.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cli.csv", "cli.csv.provenance.json", "errors.csv", "out.csv",
        "out.csv.provenance.json"]


def test_csv_semicolon_crlf(cohort: Cohort, tmp_path: Path) -> None:
    """The same rows as semicolon-delimited text with CRLF line ends (European
    Excel): read exactly as the comma/LF file."""
    pairs = tmp_path / "pairs.csv"
    write_csv(pairs, cohort.rows, random.Random(SEED + 2), delimiter=";", newline="\r\n")
    raw = pairs.read_bytes()
    assert raw.count(b"\r\n\r\n") > 50 and raw.count(b";") >= 4 * N_ROWS
    out = tmp_path / "out.csv"
    summary = run_batch(cohort.genotypes, pairs, out, chunk_rows=2_003, tables=cohort.tables)
    assert summary.notes == ("pairs file pairs.csv read as semicolon-delimited text",)
    header, got = read_csv_output(out)
    assert header == [*HEADER, *OUTPUT_COLUMNS]
    check_output(cohort, got, "csv", sample_seed=2)


@pytest.mark.parametrize("variant", ["string", "dictionary", "binary"])
def test_parquet_pass_through_types(cohort: Cohort, tmp_path: Path, variant: str) -> None:
    """Issue 9 (items 6 and the harness): the same rows from Parquet whose id and
    pass-through columns are text, categorical or binary: neutralised exactly
    like text in CSV output; NUL bytes and (binary) non-UTF-8 cells are error
    rows naming row and column; the others are computed as from CSV."""
    pairs = tmp_path / "pairs.parquet"
    write_parquet(pairs, cohort.rows, variant)
    out = tmp_path / "out.csv"
    run_batch(cohort.genotypes, pairs, out, chunk_rows=1_499, tables=cohort.tables)
    header, got = read_csv_output(out)
    assert header == [*HEADER, *OUTPUT_COLUMNS]
    check_output(cohort, got, variant,
                 sample_seed={"string": 3, "dictionary": 4, "binary": 5}[variant])


def test_parquet_output_is_raw(cohort: Cohort, tmp_path: Path) -> None:
    """Parquet output keeps every pass-through cell exactly (no neutralisation)."""
    pairs = tmp_path / "pairs.parquet"
    write_parquet(pairs, cohort.rows, "dictionary")
    out = tmp_path / "out.parquet"
    run_batch(cohort.genotypes, pairs, out, tables=cohort.tables)
    table = pq.read_table(out)
    assert table.num_rows == N_ROWS
    status = table.column("status").to_pylist()
    for c in PASS:
        values = table.column(c).to_pylist()
        for n, (row, v, s) in enumerate(zip(cohort.rows, values, status, strict=True), 1):
            if row.kind == "nul":
                assert s == "error" and v is None, (n, c)
            else:
                assert v == row.cells[HEADER.index(c)], (n, c)


def test_ragged_row_in_another_encoding_is_a_row_error(tmp_path: Path) -> None:
    """Issue 9 harness, the two faults in one row: more fields than the header AND
    Latin-1 bytes. Like every other malformed row it must be an error row in its
    place (naming data row 2), the rows around it read."""
    from kirmatch.tabular import TableReader

    path = tmp_path / "pairs.csv"
    path.write_bytes(b"recipient_id,donor_id,note\nR1,D1,a\nR2,D2,Z\xfcrich,extra\nR3,D3,c\n")
    chunk = TableReader(path, what="pairs").read()
    assert chunk.num_rows == 3
    assert chunk.text("recipient_id").to_pylist() == ["R1", "", "R3"]
    assert chunk.text("note").to_pylist() == ["a", "", "c"]
    assert list(chunk.errors) == [1] and chunk.errors[1].startswith("row 2 ")
