"""The batch engine on Dask (kirmatch.distributed, the user guide's Dask recipe).

* on a ``dask.distributed.LocalCluster`` (2 worker processes) the results equal
  the single-process :func:`kirmatch.batch.assess_pairs` row for row: index,
  columns, dtypes and every cell, with low-resolution typings (XX, 1-field,
  serology, allele lists, G groups), a v2 name that only py-ard converts (each
  worker opens its own backend), antibody panels, and error rows of every kind;
* each worker process prepares the cohort once, however many partitions it
  assesses, and later computations with the same inputs reuse it (counted on
  the workers, not timed); the cohort is one task of the graph;
* the same with the threaded and synchronous schedulers, in-process;
* errors survive pickling (they travel to workers inside cohorts and panels,
  and back to the client when a task fails);
* misuse is refused before anything runs, and ``import kirmatch`` needs no Dask.
"""

from __future__ import annotations

import json
import logging
import pickle
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from kirmatch import Options, errors
from kirmatch.batch import OUTPUT_COLUMNS, assess_pairs
from kirmatch.dsa import antibodies_by_recipient
from kirmatch.errors import InputSchemaError, KirmatchError, UsageError
from kirmatch.pyard_backend import get_backend
from kirmatch.tables import ReferenceTables

#: Serological typings mixed into the random cohort (no py-ard needed).
SEROLOGY = ["A2+A24^B44+B7^Cw7+Cw4", "A*01:01+A2^B44+B*08:01^C*07:01+Cw4",
            "A24+A*02:01^B7+B57^C*06:02+Cw7"]
#: A v2 name that only py-ard converts (A*02:101).
V2_PYARD = "A*02101+A*01:01^B*07:02+B*08:01^C*07:01+C*07:02"
OPTIONS = Options(include_a3a11=True, ambiguity_policy="cwd")
NPARTITIONS = 8


def _cohort(golden: ModuleType, tables: ReferenceTables
            ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Genotypes, pairs and antibody panels exercising every path of the engine."""
    rng = random.Random(2026)
    people = golden.random_people(rng, 240, odd=0.25, missing=0.03, single=0.08,
                                  unknown=0.3, allele=0.2, empty=0.1)
    for i in range(0, 240, 20):
        people[i] = (people[i][0], SEROLOGY[(i // 20) % len(SEROLOGY)], people[i][2])
    people[7] = (people[7][0], V2_PYARD, people[7][2])
    people[11] = (people[11][0], "A*0x:01+A*02:01", people[11][2])     # input_parse_error
    people.append((people[13][0], people[14][1], people[14][2]))        # duplicate_person
    ids = [p[0] for p in people]
    n = 960
    rec = [rng.choice(ids) for _ in range(n)]
    don = [rng.choice(ids) for _ in range(n)]
    for j in range(0, n, 97):
        rec[j] = "GHOST"                                                # person_not_found
    for j in range(5, n, 113):
        don[j] = ""                                                     # empty id
    for j in range(n):
        if j % 41 == 3:
            don[j] = people[7][0]                                       # needs py-ard
    flow = [rng.choice(["pos", "neg", "", ""]) for _ in range(n)]
    for j in range(30, n, 150):
        flow[j] = "weak"                                                # row error, row named
    pairs = pd.DataFrame({"recipient_id": rec, "donor_id": don, "flow_crossmatch": flow,
                          "pair_no": [str(j) for j in range(n)]}, dtype="str")
    pairs.index = pd.RangeIndex(1000, 1000 + n)
    specs = ["A2", "A24", "B44", "B7", "B57", "Cw4", "Cw7", "A*02:01", "B*08:01", "DR4"]
    rows = [{"recipient_id": pid, "specificity": rng.choice(specs),
             "mfi": str(rng.choice([800, 1500, 3000, 12000, 25000]))}
            for pid in ids[::3] for _ in range(3)]
    rows.append({"recipient_id": ids[6], "specificity": "B44", "mfi": "x"})  # panel error
    panels = antibodies_by_recipient(["recipient_id", "specificity", "mfi"], rows,
                                     source="antibodies.csv", tables=tables,
                                     require_recipient=True)
    g = pd.DataFrame(people, columns=["sample_id", "hla", "kir"], dtype="str")
    return g, pairs, panels


def _with_unknown_allele(g: pd.DataFrame) -> pd.DataFrame:
    """The cohort with one unknown allele (an error of its pairs only)."""
    # Not with antibodies: a bad typing anywhere in the cohort makes the panel
    # screen raise (see test_dsa.py::test_panel_screen_with_an_unknown_allele_in_the_cohort).
    out = g.copy()
    out.loc[9, "hla"] = "A*99:99+A*02:01"
    return out


@pytest.fixture(scope="module")
def cohort(golden: ModuleType, tables: ReferenceTables
           ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    return _cohort(golden, tables)


@pytest.fixture(scope="module")
def expected(cohort: tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]],
             tables: ReferenceTables, pyard_dir: Path) -> pd.DataFrame:
    """The single-process run: assess_pairs on the whole table, with antibodies."""
    g, pairs, panels = cohort
    out = assess_pairs(g, pairs, OPTIONS, tables=tables, pyard=get_backend(pyard_dir),
                       antibodies=panels)
    # Non-vacuous: every path the cluster run must reproduce is taken.
    codes = out.loc[out["status"] == "error", "error"].str.split(":").str[0]
    for code in ("person_not_found", "input_parse_error", "duplicate_person"):
        assert (codes == code).any(), code
    assert out["error"].str.contains(r"'weak'.*\[row 31,", regex=True).any()
    assert out["error"].str.contains(r"antibodies.csv: cannot parse 'x'").any()
    v2 = out[(out["donor_id"] == g["sample_id"][7]) & (out["status"] == "ok")]
    assert len(v2) > 5, "the v2 name resolved with py-ard"
    sero = out[out["recipient_id"].isin(g["sample_id"][::20]) & (out["status"] == "ok")]
    assert len(sero) > 20
    assert (out["dsa_hits"] != "").sum() > 20
    assert out["warnings"].str.contains("no_antibody_data").any()
    return out


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
    pytest.importorskip("distributed", reason="dask.distributed is not installed: "
                        "pip install 'dask[distributed]' to run the cluster tests")
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def _dask_pairs(pairs: pd.DataFrame, npartitions: int) -> Any:
    import dask.dataframe as dd

    return dd.from_pandas(pairs, npartitions=npartitions)


@pytest.fixture()
def keep_pandas_strings() -> Iterator[None]:
    """dask would turn the pairs' ``str`` columns into its own string dtype; the
    comparison is with the pandas frame as given."""
    dask = pytest.importorskip("dask")
    with dask.config.set({"dataframe.convert-string": False}):
        yield


@pytest.mark.usefixtures("keep_pandas_strings")
def test_local_cluster_equals_single_process(dask_client: Any, cohort: Any,
                                             expected: pd.DataFrame, tables: ReferenceTables,
                                             pyard_dir: Path) -> None:
    from kirmatch.distributed import assess_partitions, cache_info, clear_cache

    g, pairs, panels = cohort
    dask_client.run(clear_cache)
    ddf = _dask_pairs(pairs, NPARTITIONS)
    results = assess_partitions(g, ddf, OPTIONS, pyard_dir=pyard_dir, antibodies=panels)
    assert results.npartitions == NPARTITIONS
    assert list(results.columns) == [*pairs.columns, *OUTPUT_COLUMNS]
    # the cohort (genotypes, options, panels) is one task of the graph, not one per partition
    graph = dict(results.__dask_graph__())
    assert sum("kirmatch-cohort-" in str(k) for k in graph) == 1
    assert_frame_equal(results.compute(), expected)
    # each worker prepared the cohort once for all of its partitions
    info = dask_client.run(cache_info)
    assert len(info) == 2
    assert sum(i["partitions"] for i in info.values()) == NPARTITIONS
    assert sum(i["rows"] for i in info.values()) == len(pairs)
    assert max(i["partitions"] for i in info.values()) >= NPARTITIONS // 2
    assert all(i["built"] == (1 if i["partitions"] else 0) for i in info.values()), info
    # a second computation with the same inputs reuses the prepared cohorts ...
    again = assess_partitions(g, _dask_pairs(pairs, 3), OPTIONS, pyard_dir=pyard_dir,
                              antibodies=panels).compute()
    assert_frame_equal(again, expected)
    info2 = dask_client.run(cache_info)
    assert sum(i["partitions"] for i in info2.values()) == NPARTITIONS + 3
    assert all(i["built"] <= 1 for i in info2.values()), info2
    # ... while other inputs are another cohort: default options, no antibodies and an
    # unknown allele in the genotypes
    g2 = _with_unknown_allele(g)
    other = assess_partitions(g2, ddf, pyard_dir=pyard_dir).compute()
    single = assess_pairs(g2, pairs, tables=tables, pyard=get_backend(pyard_dir))
    assert (single["error"].str.startswith("unknown_allele: ")).sum() > 3
    assert_frame_equal(other, single)
    info3 = dask_client.run(cache_info)
    assert sum(i["built"] for i in info3.values()) > sum(i["built"] for i in info2.values())
    assert all(i["cached"] == i["built"] for i in info3.values()), info3


def _readme_recipe() -> str:
    text = (Path(__file__).resolve().parents[1] / "docs" / "guide.md").read_text(
        encoding="utf-8")
    section = text[text.index("`kirmatch.distributed.write_partitions`"):]
    return section[section.index("```python\n") + 10:section.index("```\n", 1)]


def test_readme_recipe(dask_client: Any, cohort: Any, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The user guide's Dask recipe (linked from the README), run as written on the test cluster (only the
    scheduler address differs): its output equals one process."""
    from kirmatch.io import read_table

    g, pairs, _ = cohort
    g.to_csv(tmp_path / "genotypes.csv", index=False)
    pairs.iloc[:500].to_csv(tmp_path / "pairs-1.csv", index=False)
    pairs.iloc[500:].to_csv(tmp_path / "pairs-2.csv", index=False)
    code = _readme_recipe()
    address = 'Client("tcp://scheduler:8786")'
    assert address in code
    code = code.replace(address, f"Client({dask_client.scheduler.address!r})")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    try:
        exec(compile(code, "docs/guide.md", "exec"), namespace)
    finally:
        if "client" in namespace:
            namespace["client"].close()
    got = pd.read_parquet(tmp_path / "results")
    # the workers use their $KIRMATCH_PYARD_DIR, as this process does with get_backend()
    exp = assess_pairs(read_table(tmp_path / "genotypes.csv"),
                       pd.concat([pd.read_csv(tmp_path / f"pairs-{k}.csv", dtype=str,
                                              keep_default_na=False) for k in (1, 2)]),
                       Options(include_a3a11=True), pyard=get_backend())
    assert list(got.columns) == list(exp.columns)
    assert len(got) == len(exp) == len(pairs)
    assert got.astype(str).values.tolist() == exp.astype(str).values.tolist()
    assert (exp["status"] == "error").sum() > 20
    summary = namespace["summary"]
    assert summary["rows"] == len(pairs)
    assert summary["error"] == (exp["status"] == "error").sum()
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == \
        ["_kirmatch_run.json", *summary["files"]]


def _text_columns(table: pa.Table) -> list[list[Any]]:
    return [pc.cast(c, pa.large_string()).to_pylist() for c in table.columns]


def _read_parts(folder: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(f) for f in sorted(folder.glob("part.*.parquet"))])


@pytest.mark.usefixtures("keep_pandas_strings")
def test_write_partitions_equals_one_process(dask_client: Any, cohort: Any,
                                             expected: pd.DataFrame, pyard_dir: Path,
                                             tmp_path: Path) -> None:
    """Each worker writes its partitions' Parquet; read in file order the rows
    equal assess_pairs on the whole table cell for cell (low-resolution
    typings, py-ard, antibody panels, every kind of error row); the cohort is
    prepared once per worker; the summary and run record count the rows."""
    from kirmatch.distributed import cache_info, clear_cache, write_partitions

    g, pairs, panels = cohort
    dask_client.run(clear_cache)
    folder = tmp_path / "results"
    summary = write_partitions(g, _dask_pairs(pairs, NPARTITIONS), folder, OPTIONS,
                               pyard_dir=pyard_dir, antibodies=panels).compute()
    assert summary["files"] == [f"part.{i:05d}.parquet" for i in range(NPARTITIONS)]
    assert sorted(p.name for p in folder.iterdir()) == ["_kirmatch_run.json",
                                                        *summary["files"]]
    got = _read_parts(folder)
    assert got.column_names == list(expected.columns)
    assert _text_columns(got) == [[None if pd.isna(v) else v for v in expected[c]]
                                  for c in expected.columns]
    n_err = int((expected["status"] == "error").sum())
    assert summary["rows"] == len(pairs) and summary["error"] == n_err > 20
    assert summary["ok"] == len(pairs) - n_err
    codes = expected.loc[expected["status"] == "error", "error"].str.split(":").str[0]
    assert summary["error_codes"] == codes.value_counts().sort_index().to_dict()
    record = json.loads((folder / "_kirmatch_run.json").read_text(encoding="utf-8"))
    assert record["rows"] == len(pairs) and record["options"]["include_a3a11"] is True
    info = dask_client.run(cache_info)
    assert sum(i["partitions"] for i in info.values()) == NPARTITIONS
    assert all(i["built"] == (1 if i["partitions"] else 0) for i in info.values()), info


def test_write_partitions_equals_batch(cohort: Any, tables: ReferenceTables, pyard_dir: Path,
                                       tmp_path: Path) -> None:
    """From the same files (the genotypes and pairs as CSV, the pairs read by
    dask), the part files hold run_batch's Parquet output row for row."""
    dd = pytest.importorskip("dask.dataframe")
    from kirmatch.batch import run_batch
    from kirmatch.distributed import write_partitions
    from kirmatch.io import read_table

    g, pairs, _ = cohort
    g.to_csv(tmp_path / "genotypes.csv", index=False)
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    run_batch(tmp_path / "genotypes.csv", tmp_path / "pairs.csv", tmp_path / "batch.parquet",
              OPTIONS, tables=tables, pyard=get_backend(pyard_dir))
    ddf = dd.read_csv(tmp_path / "pairs.csv", dtype=str, keep_default_na=False,
                      blocksize=8_000).repartition(npartitions=5)
    assert ddf.npartitions == 5
    write_partitions(read_table(tmp_path / "genotypes.csv"), ddf, tmp_path / "parts",
                     OPTIONS, tables=tables, pyard_dir=pyard_dir).compute(scheduler="sync")
    batch = pq.read_table(tmp_path / "batch.parquet")
    got = _read_parts(tmp_path / "parts")
    assert got.column_names == batch.column_names
    assert _text_columns(got) == _text_columns(batch)
    assert (pc.sum(pc.equal(batch.column("status"), "error")).as_py() or 0) > 20


def test_write_partitions_refuses_a_used_folder(cohort: Any, tmp_path: Path) -> None:
    """A folder holding anything, or a file, is refused before anything runs."""
    pytest.importorskip("dask.dataframe")
    from kirmatch.distributed import write_partitions

    g, pairs, _ = cohort
    ddf = _dask_pairs(pairs, 2)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "part.00007.parquet").write_bytes(b"from another run")
    with pytest.raises(UsageError, match=r"folder '.*old' is not empty .*part.00007.parquet"):
        write_partitions(g, ddf, tmp_path / "old")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match=r"'.*file' is a file"):
        write_partitions(g, ddf, tmp_path / "file")
    with pytest.raises(InputSchemaError, match=r"no 'donor_id' column"):
        write_partitions(g, ddf.rename(columns={"donor_id": "donor"}), tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "old" / "part.00007.parquet").read_bytes() == b"from another run"


@pytest.mark.usefixtures("keep_pandas_strings")
def test_write_partitions_one_schema_and_empty_partitions(cohort: Any, tables: ReferenceTables,
                                                          tmp_path: Path) -> None:
    """A pass-through column of Python objects that one partition holds only
    missing values in, and an empty partition: every part file has the same
    schema, and the folder reads back as the rows in order."""
    dd = pytest.importorskip("dask.dataframe")
    from kirmatch.distributed import write_partitions

    g, pairs, _ = cohort
    head = pairs.iloc[:40].assign(note=pd.Series([None] * 40, dtype=object,
                                                 index=pairs.index[:40]))
    tail = pairs.iloc[40:90].assign(note=pd.Series([f"n{i}" for i in range(50)], dtype=object,
                                                   index=pairs.index[40:90]))
    ddf = dd.concat([dd.from_pandas(head, npartitions=1),
                     dd.from_pandas(tail.iloc[:0], npartitions=1),
                     dd.from_pandas(tail, npartitions=1)])
    assert ddf.npartitions == 3
    summary = write_partitions(g, ddf, tmp_path / "out", tables=tables).compute(
        scheduler="sync")
    files = [tmp_path / "out" / f for f in summary["files"]]
    schemas = {pq.read_schema(f).remove_metadata() for f in files}
    assert len(schemas) == 1
    assert [pq.read_metadata(f).num_rows for f in files] == [40, 0, 50]
    back = pd.read_parquet(tmp_path / "out")
    assert back["pair_no"].tolist() == pairs["pair_no"].iloc[:90].tolist()
    assert [None if pd.isna(v) else v for v in back["note"].iloc[38:42]] == \
        [None, None, "n0", "n1"]


@pytest.mark.usefixtures("keep_pandas_strings")
def test_write_partitions_failed_run_leaves_no_part(cohort: Any, tables: ReferenceTables,
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose third partition fails leaves no part file in the folder
    (read back, it holds no rows rather than some), only its hidden staging
    folder, which the next run names; a file that appears in the folder while
    a run writes stops that run before it moves its parts."""
    pytest.importorskip("dask.dataframe")
    import kirmatch.distributed as dist

    g, pairs, _ = cohort
    real = dist._conform

    def failing(table: pa.Table, schema: pa.Schema, number: int) -> pa.Table:
        if number == 2:
            raise OSError(28, "No space left on device")
        return real(table, schema, number)

    monkeypatch.setattr(dist, "_conform", failing)
    folder = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        dist.write_partitions(g, _dask_pairs(pairs, 4), folder, tables=tables).compute(
            scheduler="sync")
    visible = [p.name for p in folder.iterdir() if not p.name.startswith(".")]
    assert visible == []
    (staging,) = folder.iterdir()
    assert staging.name.startswith(".kirmatch-partial-")
    written = {p.name for p in staging.iterdir()}   # the scheduler's order
    assert written <= {f"part.0000{i}.parquet" for i in (0, 1, 3)}   # never the failed one
    with pytest.raises(UsageError, match=r"a failed run's partitions: remove it"):
        dist.write_partitions(g, _dask_pairs(pairs, 4), folder, tables=tables)
    monkeypatch.setattr(dist, "_conform", real)
    other = tmp_path / "other"
    run = dist.write_partitions(g, _dask_pairs(pairs, 2), other, tables=tables)
    (other / "stray.csv").write_text("x")
    with pytest.raises(UsageError, match=r"received 'stray.csv' while this run wrote"):
        run.compute(scheduler="sync")
    assert sorted(p.name for p in other.iterdir() if not p.name.startswith(".")) == \
        ["stray.csv"]


@pytest.mark.usefixtures("keep_pandas_strings")
@pytest.mark.parametrize("scheduler", ["threads", "sync"])
def test_in_process_schedulers(scheduler: str, cohort: Any, expected: pd.DataFrame,
                               pyard_dir: Path) -> None:
    """Threads share the process's one prepared cohort (built once, used in turn)."""
    pytest.importorskip("dask.dataframe")
    from kirmatch.distributed import assess_partitions, cache_info, clear_cache

    g, pairs, panels = cohort
    clear_cache()
    results = assess_partitions(g, _dask_pairs(pairs, 6), OPTIONS, pyard_dir=pyard_dir,
                                antibodies=panels)
    got = results.compute(scheduler=scheduler, num_workers=4) if scheduler == "threads" \
        else results.compute(scheduler=scheduler)
    assert_frame_equal(got, expected)
    assert cache_info() == {"built": 1, "partitions": 6, "rows": len(pairs), "cached": 1}
    clear_cache()
    assert cache_info()["cached"] == 0


def test_dask_string_columns_equal_the_same_frame(cohort: Any, tables: ReferenceTables,
                                                  pyard_dir: Path) -> None:
    """With dask's default string conversion, the result equals assess_pairs on the
    frame dask holds (the pair columns in dask's string dtype)."""
    pytest.importorskip("dask.dataframe")
    from kirmatch.distributed import assess_partitions

    g, pairs, _ = cohort
    ddf = _dask_pairs(pairs.head(300), 3)
    got = assess_partitions(g, ddf, tables=tables, pyard_dir=pyard_dir).compute(scheduler="sync")
    assert_frame_equal(got, assess_pairs(g, ddf.compute(), tables=tables,
                                         pyard=get_backend(pyard_dir)))


def test_misuse_is_refused_before_anything_runs(cohort: Any) -> None:
    pytest.importorskip("dask.dataframe")
    from kirmatch.distributed import assess_partitions

    g, pairs, _ = cohort
    ddf = _dask_pairs(pairs, 2)
    with pytest.raises(TypeError, match=r"pairs must be a dask DataFrame, not DataFrame"):
        assess_partitions(g, pairs)
    with pytest.raises(TypeError, match=r"genotypes must be a pandas DataFrame or "):
        assess_partitions("genotypes.csv", ddf)
    with pytest.raises(TypeError, match=r"options must be Options or None"):
        assess_partitions(g, ddf, {"include_a3a11": True})
    with pytest.raises(TypeError, match=r"antibodies must be a mapping"):
        assess_partitions(g, ddf, antibodies=["B44"])
    with pytest.raises(InputSchemaError, match=r"no 'donor_id' column"):
        assess_partitions(g, ddf.rename(columns={"donor_id": "donor"}))
    with pytest.raises(InputSchemaError, match=r"'status' clash"):
        assess_partitions(g, ddf.assign(status="x"))


def test_kirmatch_imports_without_dask() -> None:
    code = ("import sys; sys.modules['dask'] = None; sys.modules['distributed'] = None\n"
            "import kirmatch, kirmatch.batch, kirmatch.distributed\n"
            "print(kirmatch.distributed.cache_info()['built'])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "0"


def _every_error() -> list[KirmatchError]:
    return [
        errors.HLAParseError("C*07:0x", "field 2 must be digits", position=6),
        errors.KIRParseError("KIR2DL1*9x", "bad allele", row=3, column="kir"),
        errors.UnknownAlleleError("A*99:99", "IPD-IMGT/HLA 3.58.0").located(
            row=4, column="hla", source="g.csv"),
        errors.UnknownAntigenError("Bxx", "IPD-IMGT/HLA 3.58.0", column="specificity"),
        errors.InputSchemaError("no column", column="donor_id"),
        errors.PyardUnavailableError("no database"),
        errors.ReferenceTableError("bad table"),
        errors.UsageError("bad option", raw="x"),
        errors.AmbiguityError("ambiguous"),
        errors.EnvironmentFault("disk full", path="out.csv", errno=28),
        errors.KirmatchError("plain"),
    ]


@pytest.mark.parametrize("exc", _every_error(), ids=lambda e: type(e).__name__)
def test_errors_survive_pickling(exc: KirmatchError) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert back.as_cell() == exc.as_cell()
    assert back.__dict__ == exc.__dict__
    assert back.located(row=9).row == 9
