"""The batch engine (kirmatch.batch), its file IO (kirmatch.io) and ``kirmatch batch``.

* equality with :func:`kirmatch.assess_pair`, row for row and cell for cell,
  on seeded random pairs (common alleles, serology, 1-field, XX, G groups,
  allele lists, unknown KIR genes, missing loci, antibody panels, flow
  crossmatch) under a covering design of every option that changes a pair's
  columns (every pair of values, every ligand-option combination); error rows
  in full: status, the error text (derived from the inputs), empty cells;
* every format for input and output, the wide genotype forms, column maps;
* each row error (rows and order preserved), schema errors, ``--strict``;
* formula neutralisation, Dask partitions, streaming in chunks, the run record;
* a 10,000-pair golden file (``tests/data/make_golden.py``).
"""

from __future__ import annotations

import gzip
import itertools
import json
import random
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal
from typer.testing import CliRunner

from kirmatch import Options, assess_pair, load_reference_tables, make_person
from kirmatch.batch import OUTPUT_COLUMNS, assess_pairs, run_batch
from kirmatch.dsa import antibodies_by_recipient
from kirmatch.engine import Engine
from kirmatch.errors import InputSchemaError, KirmatchError, UsageError
from kirmatch.grammar import detect_layout
from kirmatch.io import file_sha256, iter_table, read_column_map, read_table, write_table
from kirmatch.pair import CONTRACT_COLUMNS
from kirmatch.people import People, people_from_table, table_from_pandas
from kirmatch.registry import MODELS
from kirmatch.tables import ReferenceTables

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def t() -> ReferenceTables:
    return load_reference_tables()


# A small hand-made cohort: every kind of person the engine must handle.
PEOPLE = [
    ("R1", "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01",
     "KIR2DL1+KIR2DL3+KIR2DL4+KIR2DS4+KIR3DL1+KIR3DL2+KIR3DL3"),
    ("D1", "A*02:01+A*11:01^B*07:02+B*35:01^C*07:02+C*04:01",
     "KIR2DL1+KIR2DL3+KIR3DL1+KIR2DS4+KIR2DL4+KIR3DL2+KIR3DL3"),
    ("D2", "A*01:01+A*03:01^B*08:01+B*57:01^C*07:01+C*06:02",
     "KIR2DL1*004+KIR2DL1*004+KIR2DL2+KIR2DL4+KIR2DL5+KIR2DS1+KIR2DS2+KIR2DS4+"
     "KIR3DL1*005+KIR3DS1*013+KIR3DL2+KIR3DL3"),
    ("D3", "A*02+A*24^B*44^C*07", "2DL1=POS;2DL2=NA;2DL3=POS;3DL1=NEG;2DS1=NA"),
    ("N1", "A*01:01+A*02:01^B*08:01+B*07:02^C*04:09N+C*04:09N", ""),       # C group -/-
    ("BAD", "A*0x:01+A*02:01^B*07:02+B*08:01^C*07:01+C*07:02", ""),       # parse error
    ("NEW", "A*99:99+A*02:01^B*07:02+B*08:01^C*07:01+C*07:02", ""),       # unknown allele
    ("KBAD", "A*02:01+A*02:01^B*07:02+B*08:01^C*07:01+C*07:02", "KIR2DL1*999"),
    ("DUP", "A*02:01+A*02:01^B*07:02+B*08:01^C*07:01+C*07:02", "KIR2DL1+KIR2DL3"),
    ("DUP", "A*01:01+A*02:01^B*07:02+B*08:01^C*07:01+C*07:02", "KIR2DL1+KIR2DL3"),
    ("DUP2", "A*03:01+A*02:01^B*07:02+B*08:01^C*07:01+C*07:02", "KIR2DL2"),
    ("DUP2", "A*03:01+A*03:01^B*07:02+B*08:01^C*07:01+C*07:02", "KIR2DL2"),
    ("SAME", "A*11:01+A*02:01^B*07:02+B*08:01^C*07:01+C*07:02", "KIR2DL2"),
    ("SAME", "A*11:01+A*02:01^B*07:02+B*08:01^C*07:01+C*07:02", "KIR2DL2"),  # identical
]
PAIRS = [
    ("R1", "D1", "p1", "=HYPERLINK(\"http://x\")"),
    ("R1", "D2", "p2", "plain"),
    ("D3", "R1", "p3", "a,b"),
    ("R1", "D3", "p4", "+44"),
    ("N1", "D1", "p5", "-5"),
    ("R1", "GHOST", "p6", "@SUM(A1)"),
    ("R1", "", "p7", "007"),
    ("BAD", "D1", "p8", "NA"),
    ("R1", "NEW", "p9", "Zürich"),
    ("R1", "KBAD", "p10", 'say "hi"'),
    ("DUP", "D1", "p11", ""),
    ("R1", "DUP2", "p12", "x"),
    ("SAME", "D1", "p13", "  padded  "),
    ("R1", "D1", "p14", "last"),
]
ERROR_PAIRS = {"p6": "person_not_found", "p7": "input_parse_error", "p8": "input_parse_error",
               "p9": "unknown_allele", "p10": "unknown_allele", "p11": "duplicate_person",
               "p12": "duplicate_person"}


def genotypes_frame() -> pd.DataFrame:
    return pd.DataFrame(PEOPLE, columns=["sample_id", "hla", "kir"], dtype="str")


def pairs_frame() -> pd.DataFrame:
    return pd.DataFrame(PAIRS, columns=["recipient_id", "donor_id", "pair_no", "note"],
                        dtype="str")


def write_inputs(tmp: Path, ext: str = "csv") -> tuple[Path, Path]:
    g, p = tmp / f"genotypes.{ext}", tmp / f"pairs.{ext}"
    write_table(genotypes_frame(), g)
    write_table(pairs_frame(), p)
    return g, p


def read_out(path: Path) -> pd.DataFrame:
    return read_table(path).astype("str")


# ---------------------------------------------------------------------------
# Equality with assess_pair, over every option combination
# ---------------------------------------------------------------------------

#: Every option that changes a model output, with its values (default first).
#: ``dsa_thresholds`` sets the four tier bounds together; ``antibodies`` is an
#: input, not an option: without it the DSA columns take the no-data path.
FACTORS: dict[str, tuple[Any, ...]] = {
    "ambiguity_policy": ("strict", "cwd", "majority"),
    "hla_a_bw4": (True, False),
    "a25_bw4": (False, True),
    "include_a3a11": (False, True),
    "ipd_compatible": (False, True),
    "exclude_null_kir3dl1": (False, True),
    "single_allele": ("homozygous", "unknown"),
    "dsa_count_self": (False, True),
    "wkir_weights": ((0.80, 0.14, 0.99), (1.0, 0.5, 2.0)),
    "dsa_thresholds": ("default", "custom"),
    "antibodies": (False, True),
}
THRESHOLDS = {"default": {}, "custom": {"dsa_low_mfi": 500.0, "dsa_moderate_mfi": 3000.0,
                                        "dsa_high_mfi": 8000.0, "dsa_very_high_mfi": 15000.0}}
#: Options that change no column of a pair (ranking, other readers' settings).
NOT_PAIR_OPTIONS = {"ranking_policy", "kirimp_min_posterior", "t1k_min_quality",
                    "hlaimp_min_posterior"}
#: Rules 3 and 4 combine these by definition (a25_bw4 acts only with hla_a_bw4,
#: ipd_compatible overrides the other two): all their combinations are run.
LIGAND_OPTIONS = ("hla_a_bw4", "a25_bw4", "include_a3a11", "ipd_compatible")


def covering_design() -> list[dict[str, Any]]:
    """Few combinations of :data:`FACTORS` holding every pair of values of any
    two factors and every combination of :data:`LIGAND_OPTIONS` (greedy, fixed
    order: the same list every run)."""
    names = list(FACTORS)
    lig = [names.index(n) for n in LIGAND_OPTIONS]
    rows = list(itertools.product(*(range(len(FACTORS[n])) for n in names)))

    def needs(row: tuple[int, ...]) -> frozenset[tuple[Any, ...]]:
        pairs = {(i, j, row[i], row[j]) for i, j in itertools.combinations(range(len(row)), 2)}
        return frozenset({*pairs, ("ligand", *(row[i] for i in lig))})

    covers = {row: needs(row) for row in rows}
    todo = set().union(*covers.values())
    chosen = []
    while todo:
        best = max(rows, key=lambda r: len(covers[r] & todo))
        chosen.append(best)
        todo -= covers[best]
    return [{n: FACTORS[n][v] for n, v in zip(names, row, strict=True)} for row in chosen]


COMBINATIONS = covering_design()


def _options(combo: dict[str, Any]) -> Options:
    plain = {k: v for k, v in combo.items() if k not in ("dsa_thresholds", "antibodies")}
    return Options(**plain, **THRESHOLDS[combo["dsa_thresholds"]])


def _combo_id(combo: dict[str, Any]) -> str:
    return "-".join(f"{k}={v}" for k, v in combo.items() if v != FACTORS[k][0]) or "defaults"


def test_covering_design() -> None:
    """Non-vacuous guard: every option of a pair is a factor, every value of each
    factor meets every value of every other, every ligand combination is there."""
    model = {f.name for f in fields(Options)} - NOT_PAIR_OPTIONS - set(THRESHOLDS["custom"])
    assert model == set(FACTORS) - {"dsa_thresholds", "antibodies"}
    for a, b in itertools.combinations(FACTORS, 2):
        got = {(c[a], c[b]) for c in COMBINATIONS}
        assert got == set(itertools.product(FACTORS[a], FACTORS[b])), (a, b)
    assert len({tuple(c[n] for n in LIGAND_OPTIONS) for c in COMBINATIONS}) == 16
    assert len(COMBINATIONS) <= 20


@dataclass
class DiffCohort:
    """People of every kind, parsed once for the reference (assess_pair)."""

    people: list[tuple[str, str, str]]
    parsed: dict[str, Any]
    records: dict[str, list[tuple[int, str, str]]]
    panels: dict[str, Any]
    ids: list[str]
    bad: list[str]          # people whose pairs are errors (parse, unknown allele, duplicate)
    genotypes: People       # the batch side, read once for every combination


def _diff_cohort(golden: ModuleType, t: ReferenceTables, *, unknown_hla: bool) -> DiffCohort:
    rng = random.Random(1017)
    people = golden.random_people(rng, 400, odd=0.25, missing=0.03, single=0.08,
                                  unknown=0.3, allele=0.2, empty=0.1)
    for i in range(0, 400, 25):                       # serology
        people[i] = (people[i][0], ["A2+A24^B44+B7^Cw7+Cw4", "A*01:01+A2^B44+B*08:01"][i % 2],
                     people[i][2])
    people[5] = (people[5][0], "A*0x:01+A*01:01", people[5][2])          # input_parse_error
    people[6] = (people[6][0], people[6][1], "KIR2DL1*999+KIR2DL3")      # unknown KIR allele
    people[7] = (people[7][0], people[7][1], "2DL1=POX")                 # KIR parse error
    bad = [people[k][0] for k in (5, 6, 7)]
    if unknown_hla:  # with antibodies this fails the whole batch (see test_dsa.py xfail)
        people[8] = (people[8][0], "A*99:99+A*02:01^B*07:02", people[8][2])
        people[9] = (people[9][0], "A*02:01^B*99:99+B*07:02^C*07:01", people[9][2])
        bad += [people[8][0], people[9][0]]
    people.append((people[10][0], people[11][1], people[11][2]))        # duplicate_person
    people.append(people[12])                                          # identical: accepted
    bad.append(people[10][0])
    records: dict[str, list[tuple[int, str, str]]] = {}
    for row, (pid, hla, kir) in enumerate(people, start=1):
        records.setdefault(pid, []).append((row, hla, kir))
    parsed: dict[str, Any] = {}
    for pid, hla, kir in people:
        try:
            parsed.setdefault(pid, make_person(pid, hla, kir, tables=t))
        except KirmatchError as exc:
            parsed.setdefault(pid, exc)
    ids = list(records)
    specs = ["A2", "A24", "A1", "B44", "B7", "B8", "B57", "Cw4", "Cw7", "Bw4", "A*02:01",
             "B*08:01", "C*07:02", "DR4", "DQ2"]
    rows = [{"recipient_id": pid, "specificity": rng.choice(specs),
             "mfi": str(rng.choice([600, 1500, 2500, 4000, 9000, 17000, 30000])),
             "c1q": rng.choice(["", "", "pos", "neg"])}
            for pid in ids[1::3] for _ in range(rng.randint(1, 5))]
    rows.append({"recipient_id": ids[2], "specificity": "B44", "mfi": "-1", "c1q": ""})
    panels = antibodies_by_recipient(["recipient_id", "specificity", "mfi", "c1q"], rows,
                                     source="antibodies.csv", tables=t, require_recipient=True)
    genotypes = people_from_table(table_from_pandas(pd.DataFrame(
        people, columns=["sample_id", "hla", "kir"], dtype="str")), t)
    return DiffCohort(people, parsed, records, panels, ids, bad, genotypes)


@pytest.fixture(scope="module")
def diff_cohorts(golden: ModuleType, t: ReferenceTables) -> dict[bool, DiffCohort]:
    """By ``antibodies``: the cohort with antibodies has no unknown HLA allele."""
    return {False: _diff_cohort(golden, t, unknown_hla=True),
            True: _diff_cohort(golden, t, unknown_hla=False)}


def _diff_pairs(c: DiffCohort, rng: random.Random, n: int) -> pd.DataFrame:
    rec = [rng.choice(c.ids) for _ in range(n)]
    don = [rng.choice(c.ids) for _ in range(n)]
    flow = [rng.choice(["", "", "", "pos", "neg"]) for _ in range(n)]
    # every failing person in both roles, two at once, unknown and empty ids, bad flow
    special = [(b, rng.choice(c.ids)) for b in c.bad] + [(rng.choice(c.ids), b) for b in c.bad]
    special += [(c.bad[0], c.bad[-1]), ("GHOST", c.ids[0]), (c.ids[0], ""), ("", "GHOST"),
                (c.ids[2], c.ids[0]), (c.ids[2], "")]
    for j, (r, d) in enumerate(special):
        rec[3 * j], don[3 * j] = r, d
    flow[4] = flow[61] = "weak"
    return pd.DataFrame({"recipient_id": rec, "donor_id": don, "flow_crossmatch": flow,
                         "pair_no": [str(j) for j in range(n)]}, dtype="str")


class Reference:
    """The expected row of each pair, from assess_pair and the inputs alone."""

    def __init__(self, c: DiffCohort, opts: Options, t: ReferenceTables,
                 antibodies: bool) -> None:
        self.c, self.opts, self.t, self.antibodies = c, opts, t, antibodies

    def person_message(self, role: str, pid: str, *, resolve: bool = False) -> str:
        """Why this person cannot be assessed in ``role`` ("" if it can). Errors of
        resolution (an unknown allele) are looked for only with ``resolve``."""
        if pid == "":
            return f"input_parse_error: {role}_id is empty"
        recs = self.c.records.get(pid)
        if recs is None:
            return f"person_not_found: {role} {pid!r} has no record in the genotypes file"
        if len({(h, k) for _, h, k in recs}) > 1:
            rows = ", ".join(str(r) for r, _, _ in recs)
            return (f"duplicate_person: {role} {pid!r}: sample_id {pid!r} has {len(recs)} "
                    f"conflicting records in the genotypes file (rows {rows})")
        row, hla, _ = recs[0]
        p = self.c.parsed[pid]
        exc, column = None, "hla"
        if isinstance(p, KirmatchError):
            exc = p
            try:
                make_person(pid, hla, "", tables=self.t)
                column = "kir"
            except KirmatchError:
                pass
        elif resolve:
            try:   # the person alone shows its resolution errors
                assess_pair(p, p, self.opts, tables=self.t)
            except KirmatchError as e:
                exc = e
        if exc is None:
            return ""
        return f"{exc.code}: {role} {pid!r} (genotypes row {row}, column {column!r}): {exc}"

    def row(self, j: int, rid: str, did: str, flow: str) -> dict[str, str]:
        """The pair's computed cells (status, error, warnings, every model column)."""
        from kirmatch.dsa import parse_flow_crossmatch

        try:
            fx = parse_flow_crossmatch(flow)
        except KirmatchError as exc:
            return self.error(exc.located(row=j + 1).as_cell())
        panel = self.c.panels.get(rid) if self.antibodies else None
        if isinstance(panel, KirmatchError) and rid in self.c.records and \
                did in self.c.records:
            return self.error(panel.as_cell())
        cheap = [self.person_message(role, pid) for role, pid in (("recipient", rid),
                                                                   ("donor", did))]
        if not any(cheap):
            try:
                exp = assess_pair(self.c.parsed[rid], self.c.parsed[did], self.opts,
                                  tables=self.t, antibodies=panel, flow_crossmatch=fx).to_row()
                return {k: v for k, v in exp.items() if k in OUTPUT_COLUMNS}
            except KirmatchError:
                pass   # attributed to the person(s) below
        msgs = [m for m in (self.person_message("recipient", rid, resolve=True),
                            self.person_message("donor", did, resolve=True)) if m]
        assert msgs, f"assess_pair raises for ({rid!r}, {did!r}) but neither person alone does"
        return self.error("; ".join(msgs))

    @staticmethod
    def error(text: str) -> dict[str, str]:
        return {c: "" for c in OUTPUT_COLUMNS} | {"status": "error",
                                                  "error": text.replace("\n", " ")}


@pytest.mark.parametrize("k", range(len(COMBINATIONS)),
                         ids=[_combo_id(c) for c in COMBINATIONS])
def test_equal_to_assess_pair_over_option_combinations(t: ReferenceTables, k: int,
                                                       diff_cohorts: dict[bool, DiffCohort]
                                                       ) -> None:
    """The engine equals assess_pair on every row, error rows in full (status,
    error text, every computed cell empty), under each combination."""
    combo = COMBINATIONS[k]
    opts = _options(combo)
    c = diff_cohorts[combo["antibodies"]]
    pairs = _diff_pairs(c, random.Random(100 + k), 360)
    out = assess_pairs(c.genotypes, pairs, opts, tables=t,
                       antibodies=c.panels if combo["antibodies"] else None)
    assert list(out.columns) == [*pairs.columns, *OUTPUT_COLUMNS]
    assert_frame_equal(out[list(pairs.columns)], pairs)
    ref = Reference(c, opts, t, combo["antibodies"])
    for j, row in enumerate(out.itertuples(index=False)):
        exp = ref.row(j, row.recipient_id, row.donor_id, row.flow_crossmatch)
        got = {col: getattr(row, col) for col in OUTPUT_COLUMNS}
        diff = {col: (got[col], exp[col]) for col in OUTPUT_COLUMNS if got[col] != exp[col]}
        assert not diff, f"pair {j} ({row.recipient_id!r}, {row.donor_id!r}): {diff}"
    # Non-vacuous: each combination takes the error, unknown and ambiguous paths.
    codes = set(out.loc[out["status"] == "error", "error"].str.split(":").str[0])
    assert {"input_parse_error", "unknown_allele", "person_not_found",
            "duplicate_person"} <= codes
    assert out["error"].str.contains("; ").any()
    ok = out[out["status"] == "ok"]
    assert len(ok) > 0.8 * len(out)
    assert ok["warnings"].str.contains(r"unknown\(").sum() > 50
    assert ok["warnings"].str.contains("ambiguous_typing|resolved_by", regex=True).any()
    if combo["antibodies"]:
        assert (ok["dsa_hits"] != "").sum() > 20 and (ok["dsa_tier"] != "").sum() > 50
        assert out["error"].str.startswith("input_parse_error: antibodies.csv").any()


def test_each_model_is_evaluated_once_per_distinct_input(t: ReferenceTables,
                                                        golden: ModuleType) -> None:
    """Non-vacuous guard: the engine evaluates a model once per distinct combination
    of its input facts, not once per pair, and broadcasts the result exactly."""
    rng = random.Random(11)
    people = golden.random_people(rng, 300, odd=0.0, missing=0.0, single=0.0, unknown=0.0,
                                  allele=0.2, empty=0.0)
    ids = [p[0] for p in people]
    g = pd.DataFrame(people, columns=["sample_id", "hla", "kir"], dtype="str")
    pairs = pd.DataFrame({"recipient_id": [rng.choice(ids) for _ in range(1000)],
                          "donor_id": [rng.choice(ids) for _ in range(1000)]}, dtype="str")
    engine = Engine(people_from_table(table_from_pandas(g), t), Options(), t)
    index = engine.people.index
    res = engine.assess(pairs["recipient_id"].map(index).to_numpy(),
                        pairs["donor_id"].map(index).to_numpy())
    assert res.n_error == 0
    r_i = pairs["recipient_id"].map(index).to_numpy()
    d_i = pairs["donor_id"].map(index).to_numpy()
    for (name, k), tab in engine._tables.items():
        model = next(m for m in MODELS if m.name == name)
        combos = {tuple(int(engine.fact_codes[f][(r_i if role == "recipient" else d_i)[j]])
                        for role, f in model.inputs) for j in range(len(pairs))}
        assert int((tab.cells >= 0).sum()) == len(combos), (name, k)
    assert max(len(c) for c in [combos]) < len(pairs)
    out = assess_pairs(g, pairs, tables=t)
    parsed = {pid: make_person(pid, h, k, tables=t) for pid, h, k in people}
    for row in out.head(300).itertuples(index=False):
        exp = assess_pair(parsed[row.recipient_id], parsed[row.donor_id], tables=t).to_row()
        assert {k: getattr(row, k) for k in exp} == exp


def test_error_rows_do_not_change_the_other_rows(t: ReferenceTables, golden: ModuleType
                                                 ) -> None:
    """A chunk without error rows takes a shortcut (no scatter into full-length
    columns); the same pairs among error rows (unknown ids, empty ids, row
    errors), and in a fresh engine, give the same cells, warnings included."""
    rng = random.Random(5)
    people = golden.random_people(rng, 200, odd=0.1, missing=0.1, single=0.1, unknown=0.0,
                                  allele=0.2, empty=0.0)
    ids = [p[0] for p in people]
    g = pd.DataFrame(people, columns=["sample_id", "hla", "kir"], dtype="str")
    r = np.array([rng.randrange(len(ids)) for _ in range(400)], np.int64)
    d = np.array([rng.randrange(len(ids)) for _ in range(400)], np.int64)
    first = Engine(people_from_table(table_from_pandas(g), t), Options(), t)
    first.prepare()
    ok_rows = ~(first.error_mask[r] | first.error_mask[d])
    r, d = r[ok_rows], d[ok_rows]
    clean = first.assess(r, d)
    assert clean.n_error == 0 and len(r) > 300
    # the same pairs at every third row of a longer chunk, the rows between failing
    n = 3 * len(r)
    rr, dd = np.full(n, -1, np.int64), np.full(n, -2, np.int64)
    rr[::3], dd[::3] = r, d
    rr[1::3], dd[1::3] = r, -2
    second = Engine(people_from_table(table_from_pandas(g), t), Options(), t)
    mixed = second.assess(rr, dd, row_errors={2: "input_parse_error: pairs row 3: bad"})
    assert mixed.n_error == n - len(r)
    for col, arr in clean.columns.items():
        got = mixed.columns[col].take(pa.array(np.arange(0, n, 3)))
        assert got.cast(pa.string()).to_pylist() == arr.cast(pa.string()).to_pylist(), col


def test_factorize_matches_a_plain_grouping() -> None:
    """The engine's row factorisation (one array, packed keys, keys too wide to
    pack, empty input): codes in order of first appearance and the rows they
    stand for, as Python ints."""
    from kirmatch.engine import _factorize

    rng = np.random.default_rng(3)
    cases = [[rng.integers(0, 5, 50)],
             [rng.integers(0, 4, 60), rng.integers(0, 300, 60).astype(np.int32)],
             [rng.integers(0, 3, 40), rng.integers(0, 3, 40), rng.integers(0, 2, 40)],
             [rng.integers(0, 2**40, 30) % 3 * 2**40, rng.integers(0, 2**30, 30) % 4],
             [np.zeros(0, np.int64), np.zeros(0, np.int64)]]
    for arrays in cases:
        codes, rows = _factorize(*arrays)
        seen: dict[tuple[int, ...], int] = {}
        expect = [seen.setdefault(tuple(int(a[j]) for a in arrays), len(seen))
                  for j in range(len(arrays[0]))]
        assert codes.tolist() == expect
        assert rows == list(seen)
        assert all(type(x) is int for row in rows for x in row)


@pytest.mark.parametrize(("dense_limit", "held_limit"), [(1 << 24, 1 << 28), (0, 1 << 28),
                                                       (1 << 24, 0)])
def test_warning_cells_are_the_sorted_union_of_their_sets(
        dense_limit: int, held_limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warnings column is built from bitmasks and text ids put in text order
    (``_WarningCells``: as rows of booleans, or, for chunks with too many
    combinations times texts, by sorting); each cell must be the definition
    (§A.17): the row's person sets with the role for ``{who}`` and its models'
    unknown sets, as one set of texts (``;`` inside a warning as ``,``), sorted,
    ``;``-joined; error rows empty. Sets and texts keep appearing between
    chunks, and more than 64 unknown warnings need several mask words. One
    instance serves pairs (recipient, donor) and single people (``person``), as
    the engine's does, and a single role of another name (keys of the same
    shape, texts not). Each chunk is given twice: the second time no cell is
    built again, unless the built cells may hold nothing (``held_limit`` 0:
    all are dropped before the next chunk)."""
    from kirmatch.engine import WHO, _Interner, _WarningCells

    built: list[int] = []
    build = _WarningCells._build

    def counted(self: Any, roles: Any, sets: Any, mask: Any) -> Any:
        built.append(len(sets))
        return build(self, roles, sets, mask)

    monkeypatch.setattr(_WarningCells, "_build", counted)
    rng = random.Random(5)
    wsets, usets = _Interner(), _Interner()
    wsets.code(frozenset())
    usets.code(frozenset())
    cells = _WarningCells(wsets, usets, dense_limit, held_limit)
    # person warnings; unknown warnings, some shared with people, some sorting
    # before or among theirs, most after (as "unknown(...)" does)
    persons = [f"ambiguous_typing({WHO} A*{i:02d}:XX: C1;C2)" for i in range(30)] + \
        ["not_haploidentical(donor)", f"zz_last({WHO} KIR)"]
    unknowns = [f"unknown(col{i}: ambiguous_typing)" for i in range(90)] + \
        ["not_haploidentical(donor)", "gene_level_kir(donor KIR2DL1)", "b_first(x)"]
    for chunk in range(4):
        for _ in range(12):           # new sets between chunks
            wsets.code(frozenset(rng.sample(persons, rng.randint(0, 4))))
            usets.code(frozenset(rng.sample(unknowns[20 * chunk:], rng.randint(0, 10))))
        n = 200
        okr = np.array(sorted(rng.sample(range(n), 150)), np.int64)
        for roles in (("recipient", "donor"), ("person",), ("donor",)):
            people = [(role, np.array([rng.randrange(len(wsets.items)) for _ in okr], np.int32))
                      for role in roles]
            unknown = [np.array([rng.choice([0, rng.randrange(len(usets.items))]) for _ in okr],
                                np.int32) for _ in range(3)]
            want = [""] * n
            for j, row in enumerate(okr.tolist()):
                texts = {w.replace(WHO, role).replace(";", ",")
                         for role, codes in people for w in wsets.items[codes[j]]}
                texts |= {w.replace(";", ",") for u in unknown for w in usets.items[u[j]]}
                want[row] = ";".join(sorted(texts))
            for again in (False, True):
                built.clear()
                column = cells.column(n, okr, people, unknown)
                assert column.cast(pa.string()).to_pylist() == want
                # the dictionary: "" first, then each distinct cell once
                assert column.dictionary.to_pylist() == list(dict.fromkeys(["", *want]))
                if again and held_limit:
                    assert built == []
                elif again:     # every distinct (person sets, unknown texts) again
                    assert sum(built) == len({
                        (*(int(c[j]) for _, c in people),
                         frozenset().union(*(usets.items[u[j]] for u in unknown)))
                        for j in range(len(okr))})
    assert len(cells._bits.items) > 64
    empty = cells.column(3, np.zeros(0, np.int64), [("person", np.zeros(0, np.int32))], [])
    assert empty.cast(pa.string()).to_pylist() == ["", "", ""]


def test_collector_paused_restores_the_collector() -> None:
    """The engine pauses automatic cyclic garbage collection while it works
    (``collector_paused``); the collector's state must come back however the
    block ends, only when the last of overlapping blocks is left; a collector
    the caller disabled must be left alone, and the yielded function must free
    cycles that are garbage by then."""
    import gc
    import weakref

    from kirmatch.engine import collector_paused

    class Node:
        pass

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled()
    with collector_paused() as collect_young:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()          # the inner block did not re-enable it
        node = Node()
        node.self = node                   # type: ignore[attr-defined]
        alive = weakref.ref(node)
        del node
        assert alive() is not None         # a cycle: only the collector frees it
        collect_young()
        assert alive() is None
    assert gc.isenabled()
    # blocks that overlap without nesting (as two threads' do): the collector
    # stays off until the last one is left
    first, second = collector_paused(), collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused() as collect_young:
            node = Node()
            node.self = node               # type: ignore[attr-defined]
            alive = weakref.ref(node)
            del node
            collect_young()                # the caller's choice: no collection
            assert alive() is not None
        assert not gc.isenabled()
    finally:
        gc.enable()
        gc.collect()


def test_run_batch_leaves_the_collector_on(tmp_path: Path) -> None:
    """run_batch pauses the collector for its run (its progress events see it
    off) and turns it back on, after a run and after a failed one."""
    import gc

    g, p = write_inputs(tmp_path)
    during: list[bool] = []
    run_batch(g, p, tmp_path / "out.csv", progress=lambda _: during.append(gc.isenabled()))
    assert during and not any(during)       # paused while it ran
    assert gc.isenabled()
    bad = tmp_path / "bad_pairs.csv"
    bad.write_text("recipient,donor\nR1,D1\n", encoding="utf-8")
    with pytest.raises(InputSchemaError):
        run_batch(g, bad, tmp_path / "out2.csv")
    assert gc.isenabled()


def test_warning_cells_keep_an_empty_warning() -> None:
    """A cell's head that holds only an empty warning text is still a head: the
    sorted union {"", "u"} is ";u" (as the definition joins it)."""
    from kirmatch.engine import _Interner, _WarningCells

    wsets, usets = _Interner(), _Interner()
    for interner, item in ((wsets, ""), (usets, "u")):
        interner.code(frozenset())
        interner.code(frozenset({item}))
    got = _WarningCells(wsets, usets).column(
        2, np.array([0, 1]), [("donor", np.array([1, 0], np.int32))],
        [np.array([1, 1], np.int32)])
    assert got.cast(pa.string()).to_pylist() == [";u", "u"]


# ---------------------------------------------------------------------------
# Golden file
# ---------------------------------------------------------------------------

def test_golden_10k(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    summary = run_batch(DATA / "golden_genotypes.csv", DATA / "golden_pairs.csv", out,
                        chunk_rows=3_000)
    assert summary.rows_in == 10_000
    got = pd.read_csv(out, dtype="str", keep_default_na=False)
    expected = pd.read_csv(DATA / "golden_10k_expected.csv.gz", dtype="str",
                           keep_default_na=False)
    assert_frame_equal(got, expected)
    assert summary.rows_error == (expected["status"] == "error").sum() > 0


def test_golden_inputs_are_what_make_golden_writes(golden: ModuleType) -> None:
    people, pairs = golden.golden_inputs()
    g = pd.read_csv(DATA / "golden_genotypes.csv", dtype="str", keep_default_na=False)
    p = pd.read_csv(DATA / "golden_pairs.csv", dtype="str", keep_default_na=False)
    assert [tuple(r) for r in g.itertuples(index=False)] == people
    assert [tuple(r) for r in p.itertuples(index=False)] == pairs


# ---------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------

FORMATS = ["csv", "tsv", "tsv.gz", "csv.gz", "parquet", "xlsx"]


@pytest.fixture(scope="module")
def reference_output(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    tmp = tmp_path_factory.mktemp("ref")
    g, p = write_inputs(tmp)
    run_batch(g, p, tmp / "out.csv")
    return pd.read_csv(tmp / "out.csv", dtype="str", keep_default_na=False)


@pytest.mark.parametrize("ext", FORMATS)
def test_every_input_format(tmp_path: Path, ext: str,
                            reference_output: pd.DataFrame) -> None:
    g, p = write_inputs(tmp_path, ext)
    run_batch(g, p, tmp_path / "out.csv")
    got = pd.read_csv(tmp_path / "out.csv", dtype="str", keep_default_na=False)
    assert_frame_equal(got, reference_output)


@pytest.mark.parametrize("ext", FORMATS)
def test_every_output_format(tmp_path: Path, ext: str,
                             reference_output: pd.DataFrame) -> None:
    g, p = write_inputs(tmp_path)
    out = tmp_path / f"out.{ext}"
    run_batch(g, p, out, errors=tmp_path / f"errors.{ext}")
    got = read_out(out)
    if ext == "parquet":  # no formula neutralisation in Parquet: the raw input text
        assert got.loc[0, "note"] == '=HYPERLINK("http://x")'
        got["note"] = reference_output["note"]
        got["recipient_id"] = reference_output["recipient_id"]
        got["donor_id"] = reference_output["donor_id"]
    assert_frame_equal(got, reference_output)
    errs = read_out(tmp_path / f"errors.{ext}")
    assert errs["pairs_row"].tolist() == [str(i + 1) for i, pr in enumerate(PAIRS)
                                          if pr[2] in ERROR_PAIRS]
    if ext.endswith(".gz"):
        with gzip.open(out, "rt", encoding="utf-8") as fh:
            assert fh.readline().startswith("recipient_id")


def test_parquet_keeps_pass_through_types(tmp_path: Path) -> None:
    g, _ = write_inputs(tmp_path)
    p = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"recipient_id": ["R1", "R1"], "donor_id": ["D1", "D2"],
                             "n": pa.array([1, None], pa.int64()),
                             "score": [0.5, 1.5]}), p)
    run_batch(g, p, tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.field("n").type == pa.int64()
    assert table.column("n").to_pylist() == [1, None]
    assert table.column("score").to_pylist() == [0.5, 1.5]
    assert table.column("status").to_pylist() == ["ok", "ok"]
    run_batch(g, p, tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_text().splitlines()
    assert text[1].startswith("R1,D1,1,0.5,ok,") and text[2].startswith("R1,D2,,1.5,ok,")


def test_pass_through_cells_are_unchanged(tmp_path: Path) -> None:
    g, p = write_inputs(tmp_path)
    run_batch(g, p, tmp_path / "out.csv")
    got = pd.read_csv(tmp_path / "out.csv", dtype="str", keep_default_na=False)
    notes = got["note"].tolist()
    assert notes[2] == "a,b" and notes[6] == "007" and notes[7] == "NA"
    assert notes[8] == "Zürich" and notes[9] == 'say "hi"' and notes[12] == "  padded  "
    assert got["pair_no"].tolist() == [pr[2] for pr in PAIRS]


# ---------------------------------------------------------------------------
# Wide genotype forms and column maps
# ---------------------------------------------------------------------------

WIDE_PEOPLE = {
    # id: (A_1, A_2, B_1, B_2, C_1, C_2) and KIR gene values
    "R1": (("02:01", "24:02", "07:02", "44:02", "07:02", "05:01"),
           {"2DL1": "POS", "2DL2": "NEG", "2DL3": "1", "3DL1": "001/095+004", "2DS1": "0",
            "2DS4": "2DS4N", "3DS1": "NEG"}),
    "D1": (("A*02:01", "A*11:01", "B*07:02", "B*35:01", "C*07:02", "C*04:01"),
           {"2DL1": "004+003|006+010", "2DL2": "POS", "2DL3": "NA", "3DL1": "NEG",
            "2DS1": "POS", "2DS4": "", "3DS1": "013"}),
    "D2": (("01:01", "", "08:01", "57:01", "07:01", "NA"),
           {"2DL1": "POS", "2DL2": "NEG", "2DL3": "POS", "3DL1": "POS", "2DS1": "NEG",
            "2DS4": "POS", "3DS1": "NEG"}),
}
KIR_ORDER = ["2DL1", "2DL2", "2DL3", "3DL1", "2DS1", "2DS4", "3DS1"]


def _long_from_wide() -> pd.DataFrame:
    rows = []
    for pid, (hla, kir) in WIDE_PEOPLE.items():
        loci = []
        for i, loc in enumerate("ABC"):
            alleles = [a if "*" in a else f"{loc}*{a}" for a in hla[2 * i: 2 * i + 2]
                       if a and a != "NA"]
            if alleles:
                loci.append("+".join(alleles))
        explicit = ";".join(f"{g}={kir[g]}" for g in KIR_ORDER)
        rows.append((pid, "^".join(loci), explicit))
    return pd.DataFrame(rows, columns=["sample_id", "hla", "kir"], dtype="str")


@pytest.mark.parametrize("style", ["plain", "hla_prefix", "dkms"])
def test_wide_forms_equal_long_form(t: ReferenceTables, style: str) -> None:
    hla_cols = {"plain": ["A_1", "A_2", "B_1", "B_2", "C_1", "C_2"],
                "hla_prefix": ["HLA-A_1", "HLA-A_2", "HLA-B_1", "HLA-B_2", "HLA-C_1",
                               "HLA-C_2"],
                "dkms": ["A.1", "A.2", "B.1", "B.2", "C.1", "C.2"]}[style]
    kir_cols = {"plain": [f"KIR{g}" for g in KIR_ORDER],
                "hla_prefix": KIR_ORDER,
                "dkms": [f"kir_{g}" for g in KIR_ORDER]}[style]
    id_col = {"plain": "sample_id", "hla_prefix": "ID", "dkms": "Sample_ID"}[style]
    rows = []
    for pid, (hla, kir) in WIDE_PEOPLE.items():
        rows.append([pid, *hla, *[kir[g] for g in KIR_ORDER]])
    wide = pd.DataFrame(rows, columns=[id_col, *hla_cols, *kir_cols], dtype="str")
    lay = detect_layout(list(wide.columns), t)
    assert lay.id_column == id_col and len(lay.kir_genes) == len(KIR_ORDER)
    pairs = pd.DataFrame({"recipient_id": ["R1", "D1", "D2", "R1"],
                          "donor_id": ["D1", "R1", "R1", "D2"]}, dtype="str")
    got = assess_pairs(wide, pairs, tables=t)
    exp = assess_pairs(_long_from_wide(), pairs, tables=t)
    assert (got["status"] == "ok").all()
    assert_frame_equal(got, exp)


@pytest.mark.parametrize("cell", ["", "NA", "n"])
def test_wide_form_blank_deletion_variant_column(t: ReferenceTables, cell: str) -> None:
    """A blank (or not-tested) ``KIR2DS4N`` cell is read as the string form's
    ``KIR2DS4N=NA``: unknown copies of the deletion variant, which are never
    full length (§A.20: KIR2DS4 counts only with a full-length allele). With
    KIR2DS4*006 (a deletion allele) every reading has no full-length KIR2DS4, so
    the Krieger scores are known (§A.0), in both forms."""
    kir = {"KIR2DL1": "NEG", "KIR2DL2": "NEG", "KIR2DL3": "POS", "KIR3DL1": "NEG",
           "KIR3DL2": "POS", "KIR2DS1": "NEG", "KIR2DS2": "NEG", "KIR2DS5": "NEG",
           "KIR2DS4": "006"}
    rec = "A*11:01+A*02:01^B*57:01+B*51:01^C*06:02+C*15:02"
    don = "A*02:01+A*11:01^B*07:02+B*35:01^C*07:02+C*04:01"
    pairs = pd.DataFrame({"recipient_id": ["R"], "donor_id": ["D"]}, dtype="str")
    text = ";".join(f"{g}={v}" for g, v in kir.items()) + f";KIR2DS4N={cell or 'NA'}"
    long = pd.DataFrame({"sample_id": ["R", "D"], "hla": [rec, don], "kir": ["", text]},
                        dtype="str")
    wide = pd.DataFrame([{"sample_id": "R", "hla": rec, **dict.fromkeys(kir, ""),
                          "KIR2DS4N": ""},
                         {"sample_id": "D", "hla": don, **kir, "KIR2DS4N": cell}], dtype="str")
    scores = ["kir_l_score", "imkir_score", "wkir_score"]
    got = assess_pairs(wide, pairs, tables=t).loc[0]
    exp = assess_pairs(long, pairs, tables=t).loc[0]
    assert [got[c] for c in scores] == [exp[c] for c in scores] == ["0", "2", "1.79"]
    assert got["warnings"] == exp["warnings"]
    # without the KIR2DS4 column nothing says whether a full-length copy exists:
    # the untyped deletion-variant part leaves the scores that count KIR2DS4
    # unknown (§A.0), in both forms ("n" is not-tested only in a gene column;
    # in the string form it is absent)
    if cell == "n":
        return
    del kir["KIR2DS4"]
    text = ";".join(f"{g}={v}" for g, v in kir.items()) + f";KIR2DS4N={cell or 'NA'}"
    long = pd.DataFrame({"sample_id": ["R", "D"], "hla": [rec, don], "kir": ["", text]},
                        dtype="str")
    wide = wide.drop(columns="KIR2DS4")
    got = assess_pairs(wide, pairs, tables=t).loc[0]
    exp = assess_pairs(long, pairs, tables=t).loc[0]
    assert [got[c] for c in scores] == [exp[c] for c in scores] == ["", "2", ""]
    assert "unknown(kir_l_score: kir_gene_unknown)" in got["warnings"].split(";")


def test_wide_form_errors_name_the_column(t: ReferenceTables) -> None:
    wide = pd.DataFrame({"sample_id": ["R1", "D1"], "A_1": ["02:01", "0x:01"],
                         "A_2": ["", ""], "KIR2DL1": ["POS", "POS"], "KIR3DL1": ["POS", "999"]},
                        dtype="str")
    pairs = pd.DataFrame({"recipient_id": ["R1", "R1"], "donor_id": ["D1", "R1"]},
                         dtype="str")
    out = assess_pairs(wide, pairs, tables=t)
    assert out["status"].tolist() == ["error", "ok"]
    assert out.loc[0, "error"].startswith("input_parse_error: donor 'D1' (genotypes row 2")
    assert "'A_1'" in out.loc[0, "error"]


def test_wide_form_merges_paralog_columns(t: ReferenceTables) -> None:
    wide = pd.DataFrame({"sample_id": ["R1", "D1"], "hla": [PEOPLE[0][1], PEOPLE[1][1]],
                         "KIR2DL5A": ["NEG", "NEG"], "KIR2DL5B": ["POS", "NEG"],
                         "KIR2DL1": ["POS", "POS"], "KIR2DL2": ["NEG", "NEG"],
                         "KIR2DL3": ["POS", "POS"], "KIR2DS1": ["NEG", "NEG"],
                         "KIR2DS2": ["NEG", "NEG"], "KIR2DS3": ["NEG", "NEG"],
                         "KIR2DS5": ["NEG", "NEG"], "KIR3DS1": ["NEG", "NEG"]}, dtype="str")
    pairs = pd.DataFrame({"recipient_id": ["D1", "R1"], "donor_id": ["R1", "D1"]}, dtype="str")
    out = assess_pairs(wide, pairs, tables=t)
    assert out["donor_kir_genotype"].tolist() == ["B/x", "A/A"]  # KIR2DL5 from 2DL5B


@pytest.mark.parametrize("kind", ["toml", "json", "toml_sections"])
def test_column_map(tmp_path: Path, kind: str, reference_output: pd.DataFrame) -> None:
    g = genotypes_frame().rename(columns={"sample_id": "Patient", "hla": "HLA typing",
                                          "kir": "KIR typing"})
    p = pairs_frame().rename(columns={"recipient_id": "rid", "donor_id": "did"})
    write_table(g, tmp_path / "g.csv")
    write_table(p, tmp_path / "p.csv")
    mapping = {"sample_id": "Patient", "hla": "HLA typing", "kir": "KIR typing",
               "recipient_id": "rid", "donor_id": "did"}
    if kind == "json":
        cmap = tmp_path / "map.json"
        cmap.write_text(json.dumps(mapping))
    elif kind == "toml":
        cmap = tmp_path / "map.toml"
        cmap.write_text("\n".join(f'{k} = "{v}"' for k, v in mapping.items()))
    else:
        cmap = tmp_path / "map.toml"
        cmap.write_text('[genotypes]\nsample_id = "Patient"\nhla = "HLA typing"\n'
                        'kir = "KIR typing"\n[pairs]\nrecipient_id = "rid"\ndonor_id = "did"\n')
    m = read_column_map(cmap)
    assert m.pairs == {"recipient_id": "rid", "donor_id": "did"}
    run_batch(tmp_path / "g.csv", tmp_path / "p.csv", tmp_path / "out.csv", column_map=cmap)
    got = pd.read_csv(tmp_path / "out.csv", dtype="str", keep_default_na=False)
    assert_frame_equal(got, reference_output)


def test_column_map_for_wide_columns(tmp_path: Path, t: ReferenceTables) -> None:
    wide = pd.DataFrame({"Donor": ["R1", "D1"], "HLA-A first": ["02:01", "01:01"],
                         "2DL1 result": ["POS", "NEG"], "2DL5A call": ["NEG", "POS"],
                         "2DL5B call": ["NEG", "NEG"]}, dtype="str")
    write_table(wide, tmp_path / "g.xlsx")
    pd.DataFrame({"recipient_id": ["D1"], "donor_id": ["R1"]}).to_csv(tmp_path / "p.csv",
                                                                     index=False)
    cmap = tmp_path / "m.toml"
    cmap.write_text('[genotypes]\nsample_id = "Donor"\nA_1 = "HLA-A first"\n'
                    '"2DL1" = "2DL1 result"\nKIR2DL5A = "2DL5A call"\n'
                    'kir2dl5b = "2DL5B call"\n')
    run_batch(tmp_path / "g.xlsx", tmp_path / "p.csv", tmp_path / "o.csv", column_map=cmap)
    got = pd.read_csv(tmp_path / "o.csv", dtype="str", keep_default_na=False)
    assert got.loc[0, "status"] == "ok", got.loc[0, "error"]
    assert "single_allele(donor A)" in got.loc[0, "warnings"]
    assert "hla_untyped(donor B)" in got.loc[0, "warnings"]


def test_column_map_errors(tmp_path: Path) -> None:
    g, p = write_inputs(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('sample_id = "nope"\n')
    with pytest.raises(InputSchemaError, match="no column 'nope'"):
        run_batch(g, p, tmp_path / "o.csv", column_map=bad)
    bad.write_text('favourite_colour = "x"\n')
    with pytest.raises(InputSchemaError, match="unknown genotypes column 'favourite_colour'"):
        run_batch(g, p, tmp_path / "o.csv", column_map=bad)
    bad.write_text('[pairs]\nnote = "x"\n')
    with pytest.raises(InputSchemaError, match="not 'note'"):
        read_column_map(bad)
    assert not (tmp_path / "o.csv").exists()


# ---------------------------------------------------------------------------
# Row errors, schema errors, strict
# ---------------------------------------------------------------------------

def test_row_errors_keep_every_row_in_order(tmp_path: Path) -> None:
    g, p = write_inputs(tmp_path)
    s = run_batch(g, p, tmp_path / "out.csv", errors=tmp_path / "err.csv", chunk_rows=4)
    got = pd.read_csv(tmp_path / "out.csv", dtype="str", keep_default_na=False)
    assert got["pair_no"].tolist() == [pr[2] for pr in PAIRS]
    assert s.rows_in == len(PAIRS) and s.rows_error == len(ERROR_PAIRS)
    assert s.rows_ok == len(PAIRS) - len(ERROR_PAIRS)
    for row in got.itertuples(index=False):
        code = ERROR_PAIRS.get(row.pair_no)
        if code is None:
            assert row.status == "ok" and row.error == "", row
            assert row.warnings != ""
        else:
            assert row.status == "error", row
            assert row.error.startswith(f"{code}: "), row.error
            assert all(getattr(row, c) == "" for c in OUTPUT_COLUMNS[2:]), row
    errs = pd.read_csv(tmp_path / "err.csv", dtype="str", keep_default_na=False)
    assert errs["pair_no"].tolist() == [pr[2] for pr in PAIRS if pr[2] in ERROR_PAIRS]
    assert list(errs.columns) == ["pairs_row", *got.columns]
    by_no = got.set_index("pair_no")["error"]
    assert "'GHOST' has no record" in by_no["p6"]
    assert by_no["p7"] == "input_parse_error: donor_id is empty"
    assert "'A*0x:01'" in by_no["p8"] and "(genotypes row 6, column 'hla')" in by_no["p8"]
    assert "'A*99:99'" in by_no["p9"]
    assert "KIR2DL1*999" in by_no["p10"]
    assert "sample_id 'DUP' has 2 conflicting records" in by_no["p11"]
    assert "(rows 9, 10)" in by_no["p11"]
    assert s.duplicate_ids == ("DUP", "DUP2")
    # Identical duplicates are one record, not a conflict (DOMAIN.md §A.17).
    assert got.set_index("pair_no").loc["p13", "status"] == "ok"
    assert s.error_codes == {"person_not_found": 1, "input_parse_error": 2,
                             "unknown_allele": 2, "duplicate_person": 2}


def test_both_ids_failing_name_both(t: ReferenceTables) -> None:
    pairs = pd.DataFrame({"recipient_id": ["GHOST"], "donor_id": ["NEW"]}, dtype="str")
    out = assess_pairs(genotypes_frame(), pairs, tables=t)
    err = out.loc[0, "error"]
    assert err.startswith("person_not_found: recipient 'GHOST'")
    assert "; unknown_allele: donor 'NEW'" in err


@pytest.mark.parametrize("case, match", [
    ("no_sample_id", "has no sample id column"),
    ("no_donor_id", "no 'donor_id' column"),
    ("empty_genotypes", "genotypes file genotypes.csv is empty"),
    ("empty_pairs", "pairs file pairs.csv is empty"),
    ("clash", "column\\(s\\) 'warnings' clash"),
    ("duplicate_header", "duplicate column name\\(s\\) 'note'"),
    ("both_forms", "column 'A_1' types HLA per locus next to the GL-string column 'hla'"),
])
def test_schema_errors_stop_early(tmp_path: Path, case: str, match: str) -> None:
    g, p = write_inputs(tmp_path)
    if case == "no_sample_id":
        write_table(genotypes_frame().rename(columns={"sample_id": "who"}), g)
    elif case == "no_donor_id":
        write_table(pairs_frame().drop(columns="donor_id"), p)
    elif case == "empty_genotypes":
        g.write_bytes(b"")
    elif case == "empty_pairs":
        p.write_bytes(b"\n\n")
    elif case == "clash":
        write_table(pairs_frame().assign(warnings="x"), p)
    elif case == "duplicate_header":
        p.write_text("recipient_id,donor_id,note,note\nR1,D1,1,a\n")
    elif case == "both_forms":
        write_table(genotypes_frame().assign(A_1="02:01"), g)
    with pytest.raises(InputSchemaError, match=match):
        run_batch(g, p, tmp_path / "out.csv", errors=tmp_path / "err.csv")
    assert not (tmp_path / "out.csv").exists()
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("case, message", [
    ("undecodable", "input_parse_error: pairs row 2 column 'donor_id' is not valid UTF-8 text "
                    "(byte 0xff at character 2)"),
    ("ragged", "input_parse_error: pairs row 2 has 5 fields but the header has 4 (extra "
               "value 'c')"),
])
def test_unreadable_pairs_rows_are_row_errors(tmp_path: Path, case: str, message: str) -> None:
    """A row that cannot be read is an error row in its place; the others are computed."""
    g, p = write_inputs(tmp_path)
    if case == "undecodable":
        p.write_bytes(b"recipient_id,donor_id,pair_no,note\nR1,D1,1,a\nR1,D\xff1,2,b\n"
                      b"R1,D2,3,c\n")
    else:
        p.write_text("recipient_id,donor_id,pair_no,note\nR1,D1,1,a\nR1,D1,2,b,c\n"
                     "R1,D2,3,c\n")
    s = run_batch(g, p, tmp_path / "out.csv", errors=tmp_path / "err.csv")
    got = pd.read_csv(tmp_path / "out.csv", dtype="str", keep_default_na=False)
    assert got["status"].tolist() == ["ok", "error", "ok"]
    assert got["pair_no"].tolist() == ["1", "", "3"]
    assert got.loc[1, "error"] == message
    assert s.rows_in == 3 and s.rows_error == 1
    errs = pd.read_csv(tmp_path / "err.csv", dtype="str", keep_default_na=False)
    assert errs["pairs_row"].tolist() == ["2"]


def test_usage_errors(tmp_path: Path) -> None:
    g, p = write_inputs(tmp_path)
    with pytest.raises(UsageError, match="would overwrite an input"):
        run_batch(g, p, p)
    with pytest.raises(UsageError, match="cannot tell the format of 'out.json'"):
        run_batch(g, p, tmp_path / "out.json")


def test_api_rejects_missing_and_clashing_columns(t: ReferenceTables) -> None:
    with pytest.raises(InputSchemaError, match="no 'recipient_id'"):
        assess_pairs(genotypes_frame(), pairs_frame().drop(columns="recipient_id"), tables=t)
    with pytest.raises(InputSchemaError, match="'status'"):
        assess_pairs(genotypes_frame(), pairs_frame().assign(status="x"), tables=t)


# ---------------------------------------------------------------------------
# Formula neutralisation
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("ext", ["csv", "tsv", "xlsx"])
def test_formula_neutralisation(tmp_path: Path, ext: str) -> None:
    g, _ = write_inputs(tmp_path)
    p = tmp_path / "pairs.csv"
    pd.DataFrame({"recipient_id": ["R1", "=R1", "N1"], "donor_id": ["D1", "D1", "D1"],
                  "note": ["=1+2", "+x", "@me"], "n": ["-3", "ok", "a=b"]},
                 dtype="str").to_csv(p, index=False)
    write_table(pd.DataFrame(PEOPLE + [("=R1", PEOPLE[0][1], PEOPLE[0][2])],
                             columns=["sample_id", "hla", "kir"], dtype="str"), g)
    out = tmp_path / f"out.{ext}"
    run_batch(g, p, out)
    got = read_out(out)
    assert got["note"].tolist() == ["'=1+2", "'+x", "'@me"]
    assert got["n"].tolist() == ["'-3", "ok", "a=b"]
    assert got["recipient_id"].tolist() == ["R1", "'=R1", "N1"]
    assert got["status"].tolist() == ["ok", "ok", "ok"]
    # Computed values are never touched, even one that starts with '-'.
    assert got.loc[2, "recipient_c_group"] == "-/-"
    if ext == "xlsx":
        from openpyxl import load_workbook

        ws = load_workbook(out).worksheets[0]
        assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)


# ---------------------------------------------------------------------------
# Dask, streaming, run record, CLI
# ---------------------------------------------------------------------------

def test_dask_partitions_equal_single_process(t: ReferenceTables, golden: ModuleType) -> None:
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    rng = random.Random(3)
    people = golden.random_people(rng, 150)
    ids = [p[0] for p in people] + ["GHOST"]
    g = pd.DataFrame(people, columns=["sample_id", "hla", "kir"], dtype="str")
    pairs = pd.DataFrame({"recipient_id": [rng.choice(ids) for _ in range(600)],
                          "donor_id": [rng.choice(ids) for _ in range(600)],
                          "k": [str(i) for i in range(600)]}, dtype="str")
    opts = Options(include_a3a11=True)
    single = assess_pairs(g, pairs, opts, tables=t)
    with dask.config.set({"dataframe.convert-string": False}):  # keep pandas' str dtype
        ddf = dd.from_pandas(pairs, npartitions=4)
        meta = assess_pairs(g, pairs.head(0), opts, tables=t)
        result = ddf.map_partitions(lambda part: assess_pairs(g, part, opts, tables=t),
                                    meta=meta).compute(scheduler="threads")
    assert ddf.npartitions == 4
    assert_frame_equal(result, single)


def test_streaming_chunk_size_does_not_change_output(tmp_path: Path) -> None:
    g, p = DATA / "golden_genotypes.csv", DATA / "golden_pairs.csv"
    small = tmp_path / "p.csv"
    pd.read_csv(p, dtype="str", keep_default_na=False, nrows=1500).to_csv(small, index=False)
    run_batch(g, small, tmp_path / "a.csv", chunk_rows=97)
    run_batch(g, small, tmp_path / "b.csv", chunk_rows=100_000)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    chunks = list(iter_table(small, chunk_rows=400))
    assert [len(c) for c in chunks] == [400, 400, 400, 300]


def test_provenance_record(tmp_path: Path) -> None:
    g, p = write_inputs(tmp_path)
    seen: list[Any] = []
    s = run_batch(g, p, tmp_path / "out.csv", options=Options(include_a3a11=True),
                  chunk_rows=5, progress=seen.append, command=["kirmatch", "batch", "x"])
    assert [e.done for e in seen if e.stage == "pairs"] == [0, 5, 10, len(PAIRS)]
    prov = json.loads((tmp_path / "out.csv.provenance.json").read_text())
    assert s.provenance == tmp_path / "out.csv.provenance.json"
    assert prov["rules"] == "kirmatch-rules-v2"
    assert prov["ipd_imgt_hla"] == "3.58.0" and prov["ipd_kir"] == "2.13.0"
    assert prov["options"] == Options(include_a3a11=True).to_dict()
    assert prov["inputs"]["pairs"]["sha256"] == file_sha256(p)
    assert prov["inputs"]["genotypes"]["sha256"] == file_sha256(g)
    assert prov["command"] == ["kirmatch", "batch", "x"]
    assert prov["rows"]["in"] == len(PAIRS)
    assert prov["rows"]["ok"] + prov["rows"]["error"] == len(PAIRS)
    assert prov["genotypes"]["duplicate_ids"] == ["DUP", "DUP2"]
    assert set(prov["reference_tables"]) >= {"hla_kir_ligands.tsv", "kir_genes.tsv"}
    assert prov["pyard"]["version"] and prov["wall_seconds"] >= 0
    assert "kirmatch_version" in prov


def _cli() -> Any:
    from kirmatch.cli.main import app

    return app


def test_cli_batch_exit_codes_and_summary(tmp_path: Path) -> None:
    g, p = write_inputs(tmp_path)
    runner = CliRunner()
    args = ["batch", "--genotypes", str(g), "--pairs", str(p), "--output",
            str(tmp_path / "out.csv"), "--errors", str(tmp_path / "err.tsv")]
    res = runner.invoke(_cli(), args)
    assert res.exit_code == 0, res.output
    assert f"{len(PAIRS)} pairs ({len(PAIRS) - len(ERROR_PAIRS)} ok, {len(ERROR_PAIRS)} error" \
        in res.stderr
    assert "duplicate_person): DUP, DUP2" in res.stderr
    assert "pairs/s" in res.stderr and "\r" not in res.stderr  # no progress bar: not a tty
    assert (tmp_path / "err.tsv").exists() and (tmp_path / "out.csv.provenance.json").exists()
    res = runner.invoke(_cli(), [*args, "--strict", "--quiet"])
    assert res.exit_code == 1
    assert "row(s) have status=error (--strict)" in res.stderr
    assert "pairs/s" not in res.stderr
    assert len(pd.read_csv(tmp_path / "out.csv")) == len(PAIRS)  # written before exiting
    res = runner.invoke(_cli(), ["batch", "--genotypes", str(g), "--pairs", str(p),
                                 "--output", str(tmp_path / "out.json")])
    assert res.exit_code == 2 and "cannot tell the format" in res.stderr
    p.write_text("recipient_id,donor\nR1,D1\n")
    res = runner.invoke(_cli(), ["batch", "--genotypes", str(g), "--pairs", str(p),
                                 "--output", str(tmp_path / "o2.csv")])
    assert res.exit_code == 1 and "no 'donor_id' column" in res.stderr


def test_cli_strict_passes_without_errors(tmp_path: Path) -> None:
    g, p = write_inputs(tmp_path)
    pairs_frame().iloc[:5].to_csv(p, index=False)
    res = CliRunner().invoke(_cli(), ["batch", "--genotypes", str(g), "--pairs", str(p),
                                      "--output", str(tmp_path / "o.parquet"), "--strict",
                                      "--include-a3a11", "--chunk-size", "2"])
    assert res.exit_code == 0, res.output
    prov = json.loads((tmp_path / "o.parquet.provenance.json").read_text())
    assert prov["options"]["include_a3a11"] is True
    assert prov["command"][:2] == ["kirmatch", "batch"]


def test_numeric_ids_from_parquet_match_text_ids(t: ReferenceTables) -> None:
    g = pd.DataFrame({"sample_id": pd.array([101, 102], dtype="int64"),
                      "hla": [PEOPLE[0][1], PEOPLE[1][1]], "kir": [PEOPLE[0][2], ""]})
    pairs = pd.DataFrame({"recipient_id": ["101", " 102 "], "donor_id": ["102", "101"]})
    out = assess_pairs(g, pairs, tables=t)
    assert out["status"].tolist() == ["ok", "ok"]
    assert out["recipient_id"].tolist() == ["101", " 102 "]  # kept as given
    assert np.all(out.index == pairs.index)


def test_contract_columns_follow_pair_columns(t: ReferenceTables) -> None:
    out = assess_pairs(genotypes_frame(), pairs_frame(), tables=t)
    assert list(out.columns) == ["recipient_id", "donor_id", "pair_no", "note",
                                 *CONTRACT_COLUMNS[2:]]


def test_result_frame_text_columns_are_arrow_backed() -> None:
    """result_frame's columns are pandas ``str`` backed by Arrow ``large_string``
    (no Python string per cell; a ``string`` cast of a whole column overflowed
    Arrow's 2 GB limit on 4M pairs); nulls stay missing, chunks in order."""
    import pyarrow as pa

    from kirmatch.batch import _text_values

    d = pa.DictionaryArray.from_arrays(pa.array([1, None, 0, 1], pa.int32()),
                                       pa.array(["a", "b,c"]))
    got = _text_values(d)
    assert str(got.dtype) == "str"
    assert pa.array(got).type == pa.large_string()
    assert [None if pd.isna(v) else v for v in got] == ["b,c", None, "a", "b,c"]
    chunked = pa.chunked_array([d, pa.DictionaryArray.from_arrays(
        pa.array([0], pa.int32()), pa.array(["z"]))])
    assert [None if pd.isna(v) else v for v in _text_values(chunked)] == \
        ["b,c", None, "a", "b,c", "z"]
    assert [None if pd.isna(v) else v for v in _text_values(pa.array(["x", None]))] == \
        ["x", None]


def test_result_frame_under_pandas_2_keeps_nulls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where pandas' ``str`` is Python objects (pandas 2), computed columns are
    decoded per vocabulary entry and a null stays missing (never the text
    'None'); result_frame gives the same frame as with Arrow strings."""
    import pyarrow as pa

    from kirmatch import batch

    d = pa.chunked_array([pa.DictionaryArray.from_arrays(
        pa.array([1, None, 0], pa.int32()), pa.array(["a", "b,c"])), pa.DictionaryArray.from_arrays(
        pa.array([0], pa.int32()), pa.array(["z"]))])
    pairs = pd.DataFrame({"recipient_id": ["R1", "R2", "R3", "R4"]})
    computed = {c: d for c in batch.OUTPUT_COLUMNS}
    arrow = batch.result_frame(pairs, computed)
    monkeypatch.setattr(batch, "_pandas_str_is_arrow", lambda: False)
    values = batch._text_values(d)
    assert values.dtype == object and values.tolist() == ["b,c", None, "a", "z"]
    objects = batch.result_frame(pairs, computed)
    pd.testing.assert_frame_equal(objects, arrow)
