"""`kirmatch rank` end to end: family scenarios (DSA overrides KIR; CF-iKIR decides),
bad-input rows, outputs, and the HTML report rendered in headless Chromium."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kirmatch.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


@pytest.fixture
def env(pyard_dir, monkeypatch):
    import kirmatch.pyard_backend as pb

    monkeypatch.setenv("KIRMATCH_PYARD_DIR", str(pyard_dir))
    pb._BACKENDS.clear()
    yield
    pb._BACKENDS.clear()


def rank(*extra: str, pairs: Path | None = None, genotypes: Path | None = None,
         antibodies: Path | None = None) -> object:
    args = ["rank", "--genotypes", str(genotypes or EXAMPLES / "genotypes.csv"),
            "--pairs", str(pairs or EXAMPLES / "pairs.csv"),
            "--antibodies", str(antibodies or EXAMPLES / "antibodies.csv"), *extra]
    return runner.invoke(app, args)


def _json(res) -> dict:
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _by(results: list[dict], rid: str) -> list[tuple[str, str, str]]:
    rows = [r for r in results if r["recipient_id"] == rid]
    return [(r["donor_id"], r["rank"], r["rank_reason"])
            for r in sorted(rows, key=lambda r: (r["rank"] == "", r["rank"]))]


@pytest.mark.pyard
def test_dsa_overrides_kir(env) -> None:
    out = _json(rank("--json"))
    p1 = _by(out["results"], "P1")
    assert p1[0] == ("P1-son", "1", "top")
    # rules v2 kir-first: the 68-year-old father falls in the donor-age band >= 58
    # before CF-iKIR is compared (v1 gave "cf_ikir: 2 vs 3", the same order)
    assert p1[1] == ("P1-father", "2", "donor_age_band: 68 (≥ 58) vs 24 (< 58)")
    # the sister has the best CF-iKIR (4) but a B57 DSA at MFI 12,000
    assert p1[2] == ("P1-sister", "3", "dsa_tier: high (B57 12000) vs none")
    sister = next(r for r in out["results"] if r["donor_id"] == "P1-sister")
    assert sister["cf_ikir"] == "4" and sister["dsa_max_mfi"] == "12000"


@pytest.mark.pyard
def test_cf_ikir_decides_and_ebmt_differs(env) -> None:
    out = _json(rank("--json"))
    # rules v2 kir-first: the 58-year-old mother (CF-iKIR 4, top under v1) is in the
    # donor-age band >= 58, so she follows both younger siblings; CF-iKIR decides
    # between them
    assert _by(out["results"], "P2") == [("P2-brother", "1", "top"),
                                        ("P2-sister", "2", "cf_ikir: 2 vs 3"),
                                        ("P2-mother", "3",
                                         "donor_age_band: 58 (≥ 58) vs 33 (< 58)")]
    ebmt = _json(rank("--json", "--policy", "ebmt"))
    assert _by(ebmt["results"], "P2") == [("P2-sister", "1", "top"),
                                         ("P2-brother", "2", "donor_age: 35 vs 33"),
                                         ("P2-mother", "3", "donor_age: 58 vs 35")]
    assert ebmt["meta"]["policy"]["name"] == "ebmt"


@pytest.mark.pyard
def test_worked_pairs_ranked(env) -> None:
    out = _json(rank("--json"))
    res = {r["donor_id"]: r for r in out["results"]}
    # rules v2: 3200 is moderate (>= dsa_moderate_mfi 2000; v1 had no moderate tier)
    assert (res["D1"]["dsa_tier"], res["D1"]["dsa_max_mfi"]) == ("moderate", "3200")
    assert (res["D2"]["dsa_tier"], res["D2"]["dsa_max_mfi"]) == ("high", "14500")
    assert res["D1"]["rank"] == "1"


@pytest.mark.pyard
def test_row_order_does_not_change_ranking(env, tmp_path) -> None:
    rows = list(csv.reader(open(EXAMPLES / "pairs.csv")))
    shuffled = tmp_path / "pairs.csv"
    with open(shuffled, "w", newline="") as fh:
        csv.writer(fh).writerows([rows[0], *reversed(rows[1:])])
    a = {(r["recipient_id"], r["donor_id"]): (r["rank"], r["rank_reason"])
         for r in _json(rank("--json"))["results"]}
    b = {(r["recipient_id"], r["donor_id"]): (r["rank"], r["rank_reason"])
         for r in _json(rank("--json", pairs=shuffled))["results"]}
    assert a == b


@pytest.mark.pyard
def test_bad_rows_are_errors_others_ranked(env, tmp_path) -> None:
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "recipient_id,donor_id,donor_age,relationship\n"
        "P1,P1-son,24,child\nP1,P1-father,68,uncle\nP1,P1-son,24,child\n"
        "P2,P2-brother,35,sibling\nP2,P2-sister,33,sibling\nP2,NOBODY,30,sibling\n")
    out = _json(rank("--json", pairs=pairs))["results"]
    assert [r["donor_id"] for r in out] == ["P1-son", "P1-father", "P1-son", "P2-brother",
                                           "P2-sister", "NOBODY"]
    assert "relationship" in out[1]["error"] and "uncle" in out[1]["error"]
    # rows are data rows, 1-based (the numbering of pairs_row)
    assert "row 2" in out[1]["error"]
    assert "listed more than once" in out[0]["error"] and "rows 1, 3" in out[0]["error"]
    assert out[5]["error"].startswith("person_not_found")
    assert [r["rank"] for r in out[3:5]] == ["1", "2"]  # CF-iKIR 3 vs 2
    assert all(r["rank"] == "" for r in (out[0], out[1], out[2], out[5]))


@pytest.mark.pyard
def test_bad_antibody_row_fails_only_that_recipient(env, tmp_path) -> None:
    ab = tmp_path / "ab.csv"
    ab.write_text("recipient_id,specificity,mfi,c1q\nP1,B57,-5,neg\nP2,A*02:01,900,neg\n")
    out = _json(rank("--json", antibodies=ab))["results"]
    p1 = [r for r in out if r["recipient_id"] == "P1"]
    p2 = [r for r in out if r["recipient_id"] == "P2"]
    assert all(r["status"] == "error" and "row 1" in r["error"] for r in p1)
    assert all(r["status"] == "ok" and r["rank"] for r in p2)
    bad = tmp_path / "ab2.csv"
    bad.write_text("recipient_id,specificity,mfi\nP2,Q99,900\n")
    out = _json(rank("--json", antibodies=bad))["results"]
    assert all(r["status"] == "error" and "Q99" in r["error"]
               for r in out if r["recipient_id"] == "P2")


def test_policy_file_errors_exit_2(tmp_path) -> None:
    pol = tmp_path / "p.toml"
    pol.write_text('[policy]\nname = "x"\ncriteria = ["dsa_tier", "eye_colour"]\n')
    res = rank("--policy", str(pol))
    assert res.exit_code == 2 and "eye_colour" in res.output
    # a band too large for a number is a usage error, not a crash (exit 4)
    pol.write_text('[policy]\nname = "x"\ncriteria = ["dsa_tier", "donor_age_band"]\n'
                   f'[policy.bands]\ndonor_age_band = [{"9" * 400}]\n')
    res = rank("--policy", str(pol))
    assert res.exit_code == 2 and "must be finite numbers" in res.output


@pytest.mark.pyard
@pytest.mark.parametrize("parity", ["inf", "1e400", "1.7", "-0.5"])
def test_donor_parity_that_is_no_whole_number_is_a_row_error(env, tmp_path,
                                                              parity: str) -> None:
    """§A.17: a cell that cannot be read makes its row an error naming the value
    and the column; the other rows are ranked (inf and 1e400 stopped the run
    with an internal error; 1.7 was read as 1, -0.5 as 0)."""
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("recipient_id,donor_id,donor_sex,recipient_sex,donor_parity\n"
                     f"P1,P1-sister,F,M,{parity}\nP1,P1-son,M,M,\nP1,P1-father,M,M,0\n")
    out = _json(rank("--json", pairs=pairs))["results"]
    assert [r["status"] for r in out] == ["error", "ok", "ok"]
    assert "donor_parity" in out[0]["error"] and parity in out[0]["error"]
    assert sorted(r["rank"] for r in out[1:]) == ["1", "2"]


@pytest.mark.pyard
def test_antibody_row_without_recipient_is_a_file_error(env, tmp_path) -> None:
    """An antibody row with an empty recipient_id belongs to no recipient: kept
    aside, a donor carrying its antigen ranked with no DSA (a false 'none',
    rule 13's worst error). The whole file is refused, naming row and column."""
    ab = tmp_path / "ab.csv"
    ab.write_text("recipient_id,specificity,mfi,c1q\nP1,A11,800,neg\n,B57,12000,neg\n")
    res = rank("--json", antibodies=ab)
    assert res.exit_code == 1, res.output
    assert "recipient_id is empty in row 2" in res.output and "Traceback" not in res.output


@pytest.mark.pyard
def test_rank_reason_names_the_antibody_that_sets_the_tier(env, tmp_path) -> None:
    """§A.15 ``dsa_tier: high (B51, MFI 8000) vs none``: the DSA behind the
    tier. A2 at 4000 MFI is moderate; B7 C1q-positive at 3000 is high (rule 13),
    so the reason names B7, not the higher-MFI A2."""
    geno = tmp_path / "g.csv"
    geno.write_text("sample_id,hla,kir\n"
                    "R,A*01:01+A*03:01^B*08:01+B*44:02^C*07:01+C*05:01,KIR2DL1+KIR2DL3\n"
                    "D1,A*01:01+A*02:01^B*08:01+B*07:02^C*07:01+C*07:02,KIR2DL1+KIR2DL3\n"
                    "D2,A*01:01+A*03:01^B*08:01+B*44:02^C*07:01+C*05:01,KIR2DL1+KIR2DL3\n")
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id\nR,D1\nR,D2\n")
    ab = tmp_path / "ab.csv"
    ab.write_text("recipient_id,specificity,mfi,c1q\nR,A2,4000,neg\nR,B7,3000,pos\n")
    out = {r["donor_id"]: r for r in _json(rank("--json", genotypes=geno, pairs=pairs,
                                                antibodies=ab))["results"]}
    assert out["D1"]["dsa_hits"] == "A2 4000;B7 3000 C1q+"
    assert out["D1"]["rank_reason"] == "dsa_tier: high (B7 3000 C1q+) vs none"


@pytest.mark.pyard
def test_outputs_and_clinical_warnings(env, tmp_path) -> None:
    out = tmp_path / "ranked.csv"
    res = rank("--output", str(out))
    assert res.exit_code == 0, res.output
    # with --output the terminal shows one line per recipient, in file order
    lines = res.output.splitlines()
    assert [ln.split(":")[0] for ln in lines[:4]] == ["R1", "R2", "P1", "P2"]
    assert "P1: 3 donor(s) ranked, top P1-son" in res.output
    full = rank()
    assert "Recipient P1" in full.output and "dsa_tier: high" in full.output
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0])[:3] == ["recipient_id", "donor_id", "donor_age"]
    assert list(rows[0])[-2:] == ["rank", "rank_reason"]
    d1 = next(r for r in rows if r["donor_id"] == "D1")
    assert "clinical_unknown(donor_age)" in d1["warnings"]
    prov = json.loads(Path(str(out) + ".provenance.json").read_text())
    assert prov["rules"] == "kirmatch-rules-v2" and prov["policy"]["name"] == "kir-first"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_html_report_renders(tmp_path) -> None:
    """Report v2 (issue 12): typings side by side with mismatches per locus and
    direction, KIR gene content, every model with its meaning and unknown
    reasons, DSA hits and possible hits, warnings in words, the policy chain,
    inputs, releases, date and a sign-off block; self-contained; rendered by
    headless Chromium (screenshot, printed PDF and the rendered DOM's text)."""
    html = tmp_path / "report.html"
    res = rank("--report", str(html))
    assert res.exit_code == 0, res.output
    text = html.read_text()
    for needle in (
            "Recipient P1", "Recipient P3", "P1-sister", "<svg", "missing ligand",
            "not a medical device", "IPD-IMGT/HLA 3.58.0", "IPD-KIR 2.13.0", "Generated ",
            "Inputs: genotypes.csv, pairs.csv, antibodies.csv",
            "dsa_tier → donor_age_band (bands at 58) → cf_ikir",
            # rule 16: typings side by side, mismatches per direction, the relation
            "<th>Locus</th><th>Recipient</th>", "DRB1*15:01:01G", "GvH 1 · HvG 1",
            "<b>not haploidentical</b>", "identical</td>",
            # KIR content, the model table with meanings and unknown reasons
            "Donor KIR gene content", "<th>cf_ikir</th><td>count of functional donor",
            "unknown: allele-level KIR needed",
            # DSA: the G-typed father, thresholds, possible hits and how to settle them
            "B7</td><td>12,500 C1q+ (high)", "Tiers by MFI: low ≥ 1,000",
            "untyped DRB3</td><td></td>",     # below the threshold: nothing to settle
            # warnings in words, the sign-off block, print stylesheet
            "the donor shares no HLA allele with the recipient at some locus",
            "<h3>Sign-off</h3>", "Transplant physician", "@media print"):
        assert needle in text, needle
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text and "{'" not in text      # no raw Python dict
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (.ci/run installs Debian's chromium)")
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    png, pdf = tmp_path / "report.png", tmp_path / "report.pdf"
    for extra in ([f"--screenshot={png}", "--window-size=1200,1600"],
                  [f"--print-to-pdf={pdf}", "--no-pdf-header-footer"]):
        proc = subprocess.run([*base, *extra, html.as_uri()], capture_output=True, text=True,
                              timeout=120, check=False)
    assert png.exists() and pdf.exists(), proc.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.read_bytes().count(b"/Type /Page") >= 3
    dom = subprocess.run([*base, "--dump-dom", html.as_uri()], capture_output=True, text=True,
                         timeout=120, check=False).stdout
    for needle in ("Recipient P3", "not haploidentical", "Sign-off", "P3-father"):
        assert needle in dom, needle


def test_wide_genotypes_mean_the_same_to_rank_and_batch(tmp_path) -> None:
    # KIR2DL5 typed in two columns (2DL5A absent, 2DL5B present): both commands
    # merge them the same way, so the gene is present (B/x donor).
    geno = tmp_path / "wide.csv"
    geno.write_text(
        "sample_id,A_1,A_2,B_1,B_2,C_1,C_2,KIR2DL1,KIR2DL3,KIR3DL1,KIR2DS4,KIR2DL5A,KIR2DL5B\n"
        "R,01:01,02:01,08:01,15:01,07:01,03:04,POS,POS,POS,POS,NEG,NEG\n"
        "D,01:01,03:01,08:01,57:01,07:01,06:02,POS,POS,POS,POS,NEG,POS\n")
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("recipient_id,donor_id\nR,D\n")
    res = runner.invoke(app, ["rank", "--genotypes", str(geno), "--pairs", str(pairs),
                              "--json"])
    ranked = _json(res)["results"][0]
    out = tmp_path / "batch.csv"
    res = runner.invoke(app, ["batch", "--genotypes", str(geno), "--pairs", str(pairs),
                              "--output", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    batched = next(csv.DictReader(open(out)))
    assert ranked["donor_kir_genotype"] == batched["donor_kir_genotype"] == "B/x"
    for col in batched:
        if col not in ("warnings",):
            assert ranked[col] == batched[col], col


def test_column_map_renames_genotypes_and_pairs_as_batch_does(env, tmp_path) -> None:
    """rank takes the same --column-map as batch and persons: the lab's own column
    names give the same ranking as the canonical ones."""
    geno = tmp_path / "g.csv"
    text = (EXAMPLES / "genotypes.csv").read_text(encoding="utf-8")
    assert text.startswith("sample_id,")
    geno.write_text("PatientID," + text.split(",", 1)[1], encoding="utf-8")
    pairs = tmp_path / "p.csv"
    lines = (EXAMPLES / "pairs.csv").read_text(encoding="utf-8").split("\n", 1)
    assert lines[0].startswith("recipient_id,donor_id,")
    pairs.write_text(lines[0].replace("recipient_id,donor_id", "patient,donor", 1) + "\n"
                     + lines[1], encoding="utf-8")
    cmap = tmp_path / "map.toml"
    cmap.write_text('[genotypes]\nsample_id = "PatientID"\n'
                    '[pairs]\nrecipient_id = "patient"\ndonor_id = "donor"\n')
    mapped = _json(rank("--json", "--column-map", str(cmap), genotypes=geno, pairs=pairs))
    plain = _json(rank("--json"))
    assert mapped["results"] == plain["results"]
    assert {r["recipient_id"] for r in mapped["results"]} == {"R1", "R2", "P1", "P2", "P3"}
    # without the map the renamed id column is not guessed
    res = rank("--json", genotypes=geno, pairs=pairs)
    assert res.exit_code == 1 and "no sample id column" in res.output


def test_summary_line_says_when_dsa_was_not_checked(env, tmp_path) -> None:
    """With --output the terminal shows one line per recipient: a recipient without
    antibody rows must not look screened there (every DSA column is unknown)."""
    ab = tmp_path / "ab.csv"
    ab.write_text("".join(line for line in (EXAMPLES / "antibodies.csv").read_text(
        encoding="utf-8").splitlines(keepends=True) if not line.startswith("P1,")))
    res = rank("-o", str(tmp_path / "out.csv"), antibodies=ab)
    assert res.exit_code == 0, res.output
    lines = {line.split(":")[0]: line for line in res.output.splitlines() if ": " in line}
    assert "DSA NOT CHECKED: no antibody data" in lines["P1"]
    for rid in ("R1", "R2", "P2", "P3"):
        assert "DSA" not in lines[rid], lines[rid]
    # the table view says it in the DSA column
    tables = rank(antibodies=ab)
    assert tables.exit_code == 0, tables.output
    p1 = tables.output[tables.output.index("Recipient P1"):tables.output.index("Recipient P2")]
    assert p1.count("not checked") == 3
    assert "not checked" not in tables.output[tables.output.index("Recipient P2"):]


def test_displays_show_unknown_as_unknown(tmp_path) -> None:
    """What a clinician reads must be what was computed (§A.16: an unknown is
    unknown, with its reason). The report said "yes ()" for a GvH mismatch
    whose ligands are unknown and left a locus whose mismatch is unknown
    unmarked (read as matched); the terminal table said a bare "unknown" for a
    DSA tier whose worst case is known, and hid error rows after 25 donors."""
    rec = "A*01:01+A*02:01^B*08:01+B*15:01^C*07:01+C*03:04"
    donors = {"DA": "A*02:XX+A*03:01^B*44:XX+B*08:01^C*07:01+C*05:01"}
    donors.update({f"D{i:02d}": "A*01:01+A*02:01^B*08:01+B*15:01^C*07:01+C*03:04"
                   for i in range(26)})
    geno = tmp_path / "g.csv"
    geno.write_text("sample_id,hla,kir\n" + f"R,{rec},KIR2DL1+KIR2DL3+KIR3DL1\n" + "".join(
        f"{d},{h},KIR2DL1+KIR2DL2+KIR2DL3+KIR3DL1\n" for d, h in donors.items()))
    pairs = tmp_path / "p.csv"
    pairs.write_text("recipient_id,donor_id\n" + "".join(f"R,{d}\n" for d in donors)
                     + "R,NOBODY\n")
    ab = tmp_path / "a.csv"
    ab.write_text("recipient_id,specificity,mfi\nR,B45,15000\n")
    html = tmp_path / "r.html"
    res = rank("--report", str(html), genotypes=geno, pairs=pairs, antibodies=ab)
    assert res.exit_code == 0, res.output
    text = html.read_text()
    assert "yes (which: unknown, ambiguous_typing)" in text and "yes ()" not in text
    unknown = '<span class="unknown">unknown</span>'
    assert f"GvH {unknown} · HvG {unknown}" in text      # DA's HLA-A (A*02:XX)
    res = runner.invoke(app, ["rank", "-g", str(geno), "-p", str(pairs), "-a", str(ab)])
    assert res.exit_code == 0, res.output
    assert "NOBODY" in res.output and "person_not_found" in res.output   # after 25 rows
    assert "… and 2 more ranked donor(s) of R" in res.output
    few = tmp_path / "few.csv"
    few.write_text("recipient_id,donor_id\nR,DA\nR,D00\n")
    res = runner.invoke(app, ["rank", "-g", str(geno), "-p", str(few), "-a", str(ab)],
                        env={"COLUMNS": "200"})            # one line per row
    assert res.exit_code == 0, res.output
    assert "unknown (worst high)" in res.output


@pytest.mark.pyard
def test_ranked_table_is_to_row(env, tables, tmp_path) -> None:
    """The output table, built column by column, holds each row's to_row over its
    pairs cells: ok rows, rows the engine failed, duplicate and bad clinical rows."""
    from kirmatch.batch import read_antibodies
    from kirmatch.options import Options
    from kirmatch.people import load_people
    from kirmatch.pyard_backend import get_backend
    from kirmatch.ranking import builtin_policy, rank_cohort, ranked_table
    from kirmatch.tabular import TableReader

    def ranked(pairs: Path) -> tuple[list, list[str]]:
        chunk = TableReader(pairs, what="pairs").read()
        return rank_cohort(
            load_people(EXAMPLES / "genotypes.csv", tables), chunk,
            policy=builtin_policy("kir-first"), options=Options(), tables=tables,
            antibodies=read_antibodies(TableReader(EXAMPLES / "antibodies.csv",
                                                   what="antibodies"), tables),
            pyard=get_backend(), details=False), list(chunk.columns)

    def rows(rs: list, columns: list[str]) -> list[dict[str, str]]:
        return [{**{c: r.pair_row.get(c, "") for c in columns}, **r.to_row()} for r in rs]

    pairs = tmp_path / "pairs.csv"
    pairs.write_text((EXAMPLES / "pairs.csv").read_text(encoding="utf-8")
                     + "P1,P1-son,24,M,M,son,neg,pos,O,A,\nP2,NOBODY,30,F,F,sister,,,,,1\n"
                     " P3 ,P2-sister,22,female,female,Sister,-,NEG,a,ab,0\n"
                     "P3,P1-son,31,X,F,,,,,,\n", encoding="utf-8")
    rs, columns = ranked(pairs)
    # details=False: none of what only the HTML report shows (each pair's typings)
    ok = [r for r in rs if r.assessment.status == "ok"]
    assert ok and not any("recipient_hla" in r.assessment.facts for r in ok)
    table = ranked_table(rs, columns)
    want = rows(rs, columns)
    assert table.to_pylist() == want
    assert list(want[0]) == table.column_names
    assert {str(t) for t in table.schema.types} == {
        "dictionary<values=large_string, indices=int32, ordered=0>"}
    status = table.column("status").to_pylist()
    assert [i for i, s in enumerate(status) if s == "error"] == [3, 14, 15, 17]
    assert "listed more than once" in want[3]["error"] and "donor_sex" in want[17]["error"]
    sister = want[16]   # a padded recipient id and the lab's words, as kirmatch read them
    assert (sister["recipient_id"], sister["relationship"], sister["recipient_sex"],
            sister["donor_abo"], sister["rank"]) == ("P3", "sibling", "F", "A", "6")
    # no error row: the engine's codes as they are
    rs, columns = ranked(EXAMPLES / "pairs.csv")
    assert {r.assessment.status for r in rs} == {"ok"}
    assert ranked_table(rs, columns).to_pylist() == rows(rs, columns)
    assert ranked_table(rs[1:], ["note"]).to_pylist() == rows(rs[1:], ["note"])
    assert ranked_table([], ["note"]).num_rows == 0


@pytest.mark.pyard
def test_full_collections_rarer_while_ranking_only(env) -> None:
    import gc

    from kirmatch.cli.rank_cmd import FULL_COLLECTION_EVERY, rare_full_collections

    before = gc.get_threshold()
    with rare_full_collections():
        assert gc.get_threshold() == (*before[:2], max(before[2], FULL_COLLECTION_EVERY))
    assert gc.get_threshold() == before
    with pytest.raises(RuntimeError), rare_full_collections():
        raise RuntimeError
    assert gc.get_threshold() == before
    assert rank("--json").exit_code == 0 and gc.get_threshold() == before


def test_records_of_dictionary_columns() -> None:
    """Chunk.records gives the same text for a dictionary column as for its
    plain values (nulls and non-text values included)."""
    import pyarrow as pa

    from kirmatch.tabular import Chunk

    plain = pa.table({"a": pa.array(["x", None, "y", "x"]),
                      "n": pa.array([1.0, 2.5, None, 1.0]),
                      "b": pa.array([True, None, False, True])})
    coded = pa.table({c: plain.column(c).combine_chunks().dictionary_encode()
                      for c in plain.column_names})
    want = [{"a": "x", "n": "1", "b": "true"}, {"a": "", "n": "2.5", "b": ""},
            {"a": "y", "n": "", "b": "false"}, {"a": "x", "n": "1", "b": "true"}]
    assert Chunk(plain, 1).records() == want == Chunk(coded, 1).records()
    nulls = pa.DictionaryArray.from_arrays(pa.array([0, 1, None], pa.int32()),
                                           pa.array(["x", None]))
    assert Chunk(pa.table({"d": nulls}), 1).records() == [{"d": "x"}, {"d": ""}, {"d": ""}]
    assert Chunk(pa.table({}), 1).records() == []
