#!/usr/bin/env python
"""Generate the batch golden files (run once; commit the outputs).

    python tests/data/make_golden.py

writes, next to this script:

* ``golden_genotypes.csv``: 1,200 people (seed 20241121): mostly 2-field
  typings of common HLA-A/B/C alleles and common KIR gene-content profiles,
  plus 1-field typings, allele lists, null alleles, single typings, missing
  loci, allele-level KIR (KIR2DL1, KIR3DL1, KIR3DS1), per-gene KIR with
  unknown genes, untyped KIR, an unparsable and an unknown allele, a bad KIR
  allele, and duplicate sample ids (one conflicting, one identical);
* ``golden_pairs.csv``: 10,000 pairs with pass-through columns (``pair_no``,
  ``note`` with commas, quotes, non-ASCII text and formula-like cells), some
  unknown and some empty ids;
* ``golden_10k_expected.csv.gz``: ``kirmatch batch`` output for them (default
  options), after checking every ``status=ok`` row against
  :func:`kirmatch.assess_pair`.

The helpers (:func:`random_people`) are reused by ``tests/test_batch.py``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

SEED = 20241121
HERE = Path(__file__).resolve().parent

COMMON = {
    "A": ["A*01:01", "A*02:01", "A*03:01", "A*11:01", "A*24:02", "A*26:01", "A*29:02",
          "A*30:01", "A*31:01", "A*32:01", "A*68:01", "A*23:01", "A*25:01", "A*33:01"],
    "B": ["B*07:02", "B*08:01", "B*15:01", "B*18:01", "B*35:01", "B*40:01", "B*44:02",
          "B*44:03", "B*51:01", "B*57:01", "B*14:02", "B*27:05", "B*38:01", "B*13:02",
          "B*52:01", "B*58:01", "B*49:01", "B*46:01"],
    "C": ["C*07:01", "C*07:02", "C*04:01", "C*06:02", "C*03:04", "C*05:01", "C*12:03",
          "C*02:02", "C*01:02", "C*08:02", "C*15:02", "C*16:01", "C*03:03", "C*14:02"],
}
#: Harder typings: 1-field, XX, allele lists, null alleles, G groups, unclassified.
ODD = {
    "A": ["A*02", "A*24", "A*02:01/A*02:05", "A*01:01:01:02N", "A*24:XX", "A*02:01:01G",
          "A*23:01/A*24:02"],
    "B": ["B*44", "B*15", "B*15:01/B*15:02", "B*41:05", "B*57:01:01", "B*35"],
    "C": ["C*07", "C*03", "C*07:01/C*07:02", "C*03:04/C*03:03", "C*04:09N", "C*15"],
}
GENES = ["KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR2DL4", "KIR2DL5", "KIR2DS1", "KIR2DS2",
         "KIR2DS3", "KIR2DS4", "KIR2DS5", "KIR3DL1", "KIR3DL2", "KIR3DL3", "KIR3DS1",
         "KIR2DP1", "KIR3DP1"]
_FW = "+KIR2DL4+KIR3DL2+KIR3DL3+KIR3DP1"
PROFILES = [
    "KIR2DL1+KIR2DL3+KIR2DS4+KIR3DL1+KIR2DP1" + _FW,
    "KIR2DL1+KIR2DL2+KIR2DL3+KIR2DS2+KIR2DS4+KIR3DL1+KIR2DP1" + _FW,
    "KIR2DL1+KIR2DL3+KIR2DL5+KIR2DS1+KIR2DS4+KIR2DS5+KIR3DL1+KIR3DS1+KIR2DP1" + _FW,
    "KIR2DL1+KIR2DL2+KIR2DL3+KIR2DL5+KIR2DS1+KIR2DS2+KIR2DS3+KIR2DS4+KIR2DS5+KIR3DL1+"
    "KIR3DS1+KIR2DP1" + _FW,
    "KIR2DL1+KIR2DL2+KIR2DL5+KIR2DS1+KIR2DS2+KIR2DS3+KIR3DS1+KIR2DP1" + _FW,
    "KIR2DL2+KIR2DL3+KIR2DS2+KIR2DS4+KIR3DL1" + _FW,
    "KIR2DL1+KIR2DL3+KIR2DL5+KIR2DS1+KIR2DS5+KIR3DS1+KIR2DP1" + _FW,
]
ALLELE_KIR = [
    "KIR2DL1*003+KIR2DL1*004+KIR2DL3+KIR2DL4+KIR2DS4+KIR3DL1*001+KIR3DL1*004+KIR3DL2+KIR3DL3",
    "KIR2DL1*002+KIR2DL2+KIR2DL4+KIR2DS2+KIR3DL1*005+KIR3DS1*013+KIR3DL2+KIR3DL3",
    "KIR2DL1*004+KIR2DL3+KIR2DL4+KIR2DS4+KIR3DL1*002+KIR3DL1*015+KIR3DL2+KIR3DL3",
    "KIR2DL1*001/KIR2DL1*002+KIR2DL3+KIR3DL1*004+KIR3DL2",
]
NOTES = ["", "first look", "a,b", 'say "hi"', "=1+2", "+44 20", "-5", "@SUM(A1)",
         "Zürich", "日本", "  padded  ", "NA", "007"]


def random_hla(rng: random.Random, *, odd: float, missing: float, single: float) -> str:
    """A GL string: common 2-field alleles, sometimes harder typings."""
    parts = []
    for loc in ("A", "B", "C"):
        if rng.random() < missing:
            continue

        def one(loc: str = loc) -> str:
            return rng.choice(ODD[loc]) if rng.random() < odd else rng.choice(COMMON[loc])

        parts.append(one() if rng.random() < single else f"{one()}+{one()}")
    return "^".join(parts)


def random_kir(rng: random.Random, *, unknown: float, allele: float, empty: float) -> str:
    """A KIR string: gene content, allele level, or per-gene with unknown genes."""
    if rng.random() < empty:
        return ""
    if rng.random() < allele:
        return rng.choice(ALLELE_KIR)
    prof = rng.choice(PROFILES)
    if rng.random() < unknown:
        present = set(prof.split("+"))
        items = []
        for g in GENES:
            v = "POS" if g in present else "NEG"
            if rng.random() < 0.15:
                v = rng.choice(["NA", ""])
            items.append(f"{g[3:]}={v}")
        return ";".join(items)
    return prof


def random_people(rng: random.Random, n: int, *, odd: float = 0.1, missing: float = 0.01,
                  single: float = 0.05, unknown: float = 0.15, allele: float = 0.15,
                  empty: float = 0.08, prefix: str = "P") -> list[tuple[str, str, str]]:
    """``n`` people as (sample_id, hla, kir)."""
    return [(f"{prefix}{i:05d}",
             random_hla(rng, odd=odd, missing=missing, single=single),
             random_kir(rng, unknown=unknown, allele=allele, empty=empty))
            for i in range(n)]


def golden_inputs() -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str, str]]]:
    """The golden people and pairs (deterministic)."""
    rng = random.Random(SEED)
    people = random_people(rng, 1200)
    people[10] = (people[10][0], "A*0x:01+A*02:01^B*07:02+B*08:01^C*07:01+C*07:02",
                  people[10][2])                                    # input_parse_error
    people[11] = (people[11][0], "A*99:99+A*02:01^B*07:02+B*08:01^C*07:01+C*07:02",
                  people[11][2])                                    # unknown_allele
    people[12] = (people[12][0], people[12][1], "KIR2DL1*999+KIR2DL3")  # unknown KIR allele
    people.append((people[20][0], people[21][1], people[21][2]))    # conflicting duplicate
    people.append(people[30])                                       # identical duplicate
    ids = [p[0] for p in people]
    pairs = []
    for j in range(10_000):
        r = rng.choice(ids)
        d = rng.choice(ids)
        x = rng.random()
        if x < 0.003:
            r = f"NOPE{j}"
        elif x < 0.004:
            d = ""
        pairs.append((r, d, str(j), rng.choice(NOTES)))
    return people, pairs


def main() -> int:
    import csv

    import pandas as pd

    from kirmatch import assess_pair, load_reference_tables, make_person
    from kirmatch.batch import run_batch
    from kirmatch.errors import KirmatchError

    people, pairs = golden_inputs()
    g = HERE / "golden_genotypes.csv"
    p = HERE / "golden_pairs.csv"
    with open(g, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["sample_id", "hla", "kir"])
        w.writerows(people)
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["recipient_id", "donor_id", "pair_no", "note"])
        w.writerows(pairs)
    out = HERE / "golden_10k_expected.csv.gz"
    summary = run_batch(g, p, out, chunk_rows=3_000)
    out.with_name(out.name + ".provenance.json").unlink()
    t = load_reference_tables()
    got = pd.read_csv(out, dtype="str", keep_default_na=False)
    persons: dict[str, object] = {}
    for pid, hla, kir in people:
        try:
            persons.setdefault(pid, make_person(pid, hla, kir, tables=t))
        except KirmatchError as exc:
            persons.setdefault(pid, exc)
    checked = 0
    for row in got.itertuples(index=False):
        if row.status != "ok":
            continue
        r, d = persons[row.recipient_id], persons[row.donor_id]
        exp = assess_pair(r, d, tables=t).to_row()  # type: ignore[arg-type]
        got_row = row._asdict()
        bad = {k: (got_row[k], v) for k, v in exp.items() if got_row[k] != v}
        if bad:
            raise SystemExit(f"row {row.pair_no} differs from assess_pair: {bad}")
        checked += 1
    print(f"{summary.rows_in} rows ({summary.rows_ok} ok, {summary.rows_error} error); "
          f"{checked} ok rows equal assess_pair; wrote {out.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
