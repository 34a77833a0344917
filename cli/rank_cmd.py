"""``kirmatch rank``: rank each recipient's candidate donors (rule 14), with DSA
(rule 13), a terminal summary, a CSV/TSV/Parquet/XLSX output and an HTML report."""

from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from .options import (
    A25Bw4Opt,
    Ambiguity,
    AmbiguityOpt,
    AntibodiesOpt,
    ColumnMapOpt,
    DsaCountSelfOpt,
    DsaHighOpt,
    DsaLowOpt,
    DsaModerateOpt,
    DsaVeryHighOpt,
    ErrorsOpt,
    ExcludeNullOpt,
    GenotypesOpt,
    HlaABw4Opt,
    HlaFormat,
    HlaFormatOpt,
    HlaimpMinPosteriorOpt,
    HlaOpt,
    IncludeA3A11Opt,
    IpdCompatibleOpt,
    JsonOpt,
    KirFormat,
    KirFormatOpt,
    KirimpMinPosteriorOpt,
    KirOpt,
    OutputOpt,
    PairsOpt,
    PolicyOpt,
    QuietOpt,
    ReportOpt,
    SingleAllele,
    SingleAlleleOpt,
    StrictOpt,
    T1kMinQualityOpt,
    WkirWeightsOpt,
    build_options,
)
from .progress import showing_progress

#: rule-16 relation, short for the terminal table
_RELATION = {"identical": "identical", "haploidentical": "haplo",
             "not haploidentical": "NOT haplo"}


#: While a ranking runs, a full collection follows this many collections of the
#: middle generation (Python's default: 10).
FULL_COLLECTION_EVERY = 1000


@contextmanager
def rare_full_collections() -> Iterator[None]:
    """Python's cyclic garbage collector with full collections much rarer (the
    young generations as usual) while a ranking runs.

    A run makes millions of small objects that live to its end and next to no
    cyclic garbage, and every full collection walks all of them: on 50,000
    pairs they took a fifth of the run.
    """
    old = gc.get_threshold()
    gc.set_threshold(old[0], old[1], max(old[2], FULL_COLLECTION_EVERY))
    try:
        yield
    finally:
        gc.set_threshold(*old)


def register(app: typer.Typer, handle_errors: Any) -> None:
    @app.command("rank")
    @handle_errors
    def rank(
        pairs: PairsOpt,
        genotypes: GenotypesOpt = None,
        antibodies: AntibodiesOpt = None,
        policy: PolicyOpt = "kir-first",
        output: OutputOpt = None,
        errors: ErrorsOpt = None,
        report: ReportOpt = None,
        hla: HlaOpt = None,
        hla_format: HlaFormatOpt = HlaFormat.auto,
        kir: KirOpt = None,
        kir_format: KirFormatOpt = KirFormat.auto,
        t1k_min_quality: T1kMinQualityOpt = 0.0,
        kirimp_min_posterior: KirimpMinPosteriorOpt = 0.5,
        hlaimp_min_posterior: HlaimpMinPosteriorOpt = 0.5,
        column_map: ColumnMapOpt = None,
        strict: StrictOpt = False,
        quiet: QuietOpt = False,
        json_out: JsonOpt = False,
        ambiguity: AmbiguityOpt = Ambiguity.strict,
        hla_a_bw4: HlaABw4Opt = True,
        a25_bw4: A25Bw4Opt = False,
        include_a3a11: IncludeA3A11Opt = False,
        ipd_compatible: IpdCompatibleOpt = False,
        exclude_null_kir3dl1: ExcludeNullOpt = False,
        single_allele: SingleAlleleOpt = SingleAllele.homozygous,
        dsa_low_mfi: DsaLowOpt = 1000.0,
        dsa_moderate_mfi: DsaModerateOpt = 2000.0,
        dsa_high_mfi: DsaHighOpt = 5000.0,
        dsa_very_high_mfi: DsaVeryHighOpt = 20000.0,
        dsa_count_self: DsaCountSelfOpt = False,
        wkir_weights: WkirWeightsOpt = "0.80,0.14,0.99",
    ) -> None:
        """Rank each recipient's donors: DSA, CF-iKIR, HLA and clinical factors, with reasons.

        Prints one table per recipient, or one line per recipient with --output or
        --report (or when there are many). --output writes every column plus rank
        and rank_reason (and OUTPUT.provenance.json beside it); --report a
        self-contained HTML report. The policies are described in docs/guide.md.
        """
        from kirmatch.output import OutputPlan
        from kirmatch.ranking import resolve_policy

        t0 = time.perf_counter()
        pol = resolve_policy(policy)
        opts = build_options(**{**locals(), "ranking_policy": pol.name})
        inputs = [p for p in (genotypes, pairs, antibodies, hla, kir, column_map)
                  if p is not None]
        policy_file = Path(policy) if Path(policy).is_file() else None
        plan = OutputPlan({"output": output, "errors": errors, "report": report,
                           "provenance": output.with_name(output.name + ".provenance.json")
                           if output is not None else None},
                          inputs=[*inputs, policy_file])
        with plan, rare_full_collections():
            _rank(plan, t0=t0, pol=pol, opts=opts, inputs=inputs, genotypes=genotypes,
                  pairs=pairs, antibodies=antibodies, hla=hla, kir=kir, hla_format=hla_format,
                  kir_format=kir_format, column_map=column_map, output=output,
                  errors=errors, report=report, json_out=json_out, quiet=quiet, strict=strict)


def _rank(plan: Any, *, t0: float, pol: Any, opts: Any, inputs: list[Path],
          genotypes: Path | None, pairs: Path, antibodies: Path | None, hla: Path | None,
          kir: Path | None, hla_format: HlaFormat, kir_format: KirFormat,
          column_map: Path | None, output: Path | None,
          errors: Path | None, report: Path | None, json_out: bool, quiet: bool,
          strict: bool) -> None:
    """The body of ``kirmatch rank`` (every output goes through ``plan``)."""
    import pyarrow as pa

    from kirmatch.batch import (
        genotype_source_from_readers,
        input_record,
        pyard_record,
        read_antibodies,
        read_genotypes,
        rename_pairs,
    )
    from kirmatch.errors import UsageError
    from kirmatch.io import detect_format
    from kirmatch.pair import RANK_COLUMNS, run_record
    from kirmatch.pyard_backend import get_backend
    from kirmatch.ranking import rank_cohort, ranked_table
    from kirmatch.report import render_report
    from kirmatch.tables import load_reference_tables
    from kirmatch.tabular import Chunk, TableReader

    tables = load_reference_tables()
    if genotypes is None and hla is None and kir is None:
        raise UsageError("give --genotypes, or --hla and/or --kir with their formats")
    if genotypes is not None and (hla is not None or kir is not None):
        raise UsageError("give either --genotypes or --hla/--kir, not both")
    notes: list[str] = []
    if genotypes is not None:
        people, cmap = read_genotypes(genotypes, column_map, tables)
    else:
        people, description, _ = genotype_source_from_readers(
            hla=hla, hla_format=hla_format.value, kir=kir, kir_format=kir_format.value,
            tables=tables, options=opts)
        _, cmap = read_genotypes(people, column_map, tables)
        notes.append(f"genotypes read as: {description}")
    notes.extend(people.notes)
    reader = TableReader(pairs, what="pairs")
    notes.extend(reader.notes)
    chunk = rename_pairs(reader.read(), cmap)
    from kirmatch.batch import check_pair_columns

    check_pair_columns(chunk.columns, extra_reserved=RANK_COLUMNS)
    abs_by_recipient: dict[str, Any] | None = None
    if antibodies is not None:
        areader = TableReader(antibodies, what="antibodies")
        notes.extend(areader.notes)
        abs_by_recipient = read_antibodies(areader, tables)
    pyard = get_backend()
    with showing_progress(quiet) as display:
        ranked = rank_cohort(people, chunk, policy=pol, options=opts, tables=tables,
                             antibodies=abs_by_recipient, pyard=pyard,
                             details=report is not None, progress=display)
    record = run_record(opts, tables)
    meta = {
        **{k: record[k] for k in ("rules", "kirmatch_version", "ipd_imgt_hla", "ipd_kir")},
        "options": record,
        "policy": pol.to_dict(),
        "tables_sha256": dict(tables.sha256),
        "inputs": {str(p): input_record(p) for p in inputs if p.is_file()},
        "genotypes": people.record(),
        "pairs_dialect": reader.dialect.to_dict(),
        "pyard": pyard_record(pyard),
        "command": " ".join(["kirmatch", *sys.argv[1:]]),
        "notes": notes,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    pcols = list(chunk.columns)
    table = ranked_table(ranked, pcols)
    if not ranked:  # no rows: untyped columns, as a table of no rows has always been written
        table = pa.table({c: pa.nulls(0) for c in table.column_names})
    columns = table.column_names
    failed = [i for i, r in enumerate(ranked) if r.assessment.status == "error"]
    n_err = len(failed)
    if output is not None:
        written = table
        if not detect_format(output).is_text:  # Parquet, XLSX: plain text columns, as before
            written = table.cast(pa.schema([(c, t.value_type if pa.types.is_dictionary(t) else t)
                                            for c, t in zip(columns, table.schema.types,
                                                            strict=True)]))
        plan.write_table("output", written, neutralise=[*pcols, "error"])
        plan.write_text("provenance", json.dumps(meta, indent=2, ensure_ascii=False,
                                                 allow_nan=False) + "\n")
    if errors is not None:
        import pandas as pd

        bad = [{"pairs_row": ranked[i].row, **row} for i, row in zip(
            failed, Chunk(table.take(pa.array(failed, pa.int64())), 1).records(), strict=True)]
        plan.write_table("errors", pd.DataFrame(bad, columns=["pairs_row", *columns]),
                         neutralise=[*pcols, "error"])
    if report is not None:
        plan.write_text("report", render_report(ranked, policy=pol.to_dict(), meta=meta))
    if not quiet:
        for note in notes:
            typer.echo(f"note: {note}", err=True)
    if json_out:
        typer.echo(json.dumps({"meta": meta, "results": Chunk(table, 1).records()}, indent=2,
                              ensure_ascii=False, allow_nan=False))
    elif not quiet:
        if output is not None or report is not None or len(_groups(ranked)) > MAX_TABLES:
            _print_summary(ranked, output, report)
        else:
            _print_tables(ranked)
    if strict and n_err:
        plan.commit()  # --strict: everything is written, then the exit status says so
        typer.echo(f"error: {n_err:,} row(s) have status=error (--strict)", err=True)
        raise typer.Exit(1)


#: How the rows without a recipient id (blank, or a row that could not be read) are
#: named in the terminal summary and tables.
NO_RECIPIENT = "(no recipient id)"


def _groups(ranked: Any) -> dict[str, list[Any]]:
    """Rows by recipient, recipients in file order."""
    groups: dict[str, list[Any]] = {}
    for r in ranked:
        groups.setdefault(r.assessment.recipient_id or NO_RECIPIENT, []).append(r)
    return groups


#: With more recipients than this, the terminal gets one line per recipient
#: instead of a table each (every column is in --output, --report and --json).
MAX_TABLES = 10
#: At most this many recipient lines, then a count of the others.
MAX_LINES = 40
#: At most this many donors in one recipient's table, then a count of the others.
MAX_ROWS = 25


def _print_summary(ranked: Any, output: Path | None, report: Path | None) -> None:
    """One line per recipient (at most :data:`MAX_LINES`), and where the full
    tables are (or how to get them)."""
    groups = _groups(ranked)
    for shown, (rid, rows) in enumerate(groups.items()):
        if shown == MAX_LINES:
            typer.echo(f"… and {len(groups) - MAX_LINES:,} more recipient(s)")
            break
        ok = sorted((r for r in rows if r.rank is not None), key=lambda r: r.rank)
        n_err = len(rows) - len(ok)
        top = ok[0].assessment.donor_id if ok else "none"
        # a DSA screen that did not run must be seen without opening the report
        unscreened = sum(1 for r in ok
                         if r.assessment.unknown.get("dsa_tier") == "no_antibody_data")
        typer.echo(f"{rid}: {len(ok)} donor(s) ranked, top {top}"
                   + (f", {n_err} error row(s)" if n_err else "")
                   + ("; DSA NOT CHECKED: no antibody data for this recipient"
                      if ok and unscreened == len(ok) else
                      f"; DSA not checked for {unscreened} donor(s): no antibody data"
                      if unscreened else ""))
    where = " and ".join(str(p) for p in (output, report) if p is not None)
    typer.echo(f"{len(groups):,} recipient(s), {len(ranked):,} candidate(s)"
               + (f" -> {where}" if where else
                  "; every donor and column: --output FILE (.csv, .xlsx, …) or --report "
                  "FILE.html"))
    typer.echo("Research and decision support, not a medical device.")


def _print_tables(ranked: Any) -> None:
    """One compact table per recipient that fits the terminal width (no side
    borders; long reasons wrap at word boundaries)."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    for rid, rows in _groups(ranked).items():
        table = Table(title=f"Recipient {escape(rid)}", box=box.SIMPLE_HEAD, expand=False,
                      pad_edge=False, title_justify="left", collapse_padding=True,
                      padding=(0, 1))
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("donor", overflow="fold", min_width=6)
        # every column but the numbers may wrap, so the table fits the terminal
        # and no reason is cut (rich crops a table whose unwrappable columns are
        # wider than the terminal)
        table.add_column("DSA", overflow="fold", min_width=4)
        table.add_column("CF-iKIR", justify="right", no_wrap=True)
        table.add_column("HLA", overflow="fold", min_width=5)
        table.add_column("age/sex/rel", overflow="fold")
        table.add_column("why not higher", overflow="fold", ratio=1, min_width=10)
        ordered = sorted(rows, key=lambda x: (x.rank is None, x.rank or 0))
        # the first MAX_ROWS ranked donors, then every error row (never hidden)
        ranked = [r for r in ordered if r.assessment.status != "error"]
        shown = ranked[:MAX_ROWS] + [r for r in ordered if r.assessment.status == "error"]
        for r in shown:
            a = r.assessment
            if a.status == "error":
                table.add_row("-", escape(a.donor_id), "", "", "", "",
                              f"[red]{escape(a.error)}[/red]")
                continue
            v = a.to_dict()
            c = r.clinical
            clin = "/".join("?" if x in (None, "") else str(x) for x in (
                f"{c.donor_age:g}" if c and c.donor_age is not None else None,
                c.donor_sex if c else None, c.relationship if c else None))
            dsa = v["dsa_tier"] or (
                "not checked" if a.unknown.get("dsa_tier") == "no_antibody_data" else
                f"unknown (worst {v['dsa_tier_worst']})" if v["dsa_tier_worst"] else "unknown")
            table.add_row(str(r.rank), escape(a.donor_id), dsa,
                          str(v["cf_ikir"]) if v["cf_ikir"] != "" else "?",
                          _RELATION.get(v["hla_relation"], "?"), escape(clin),
                          escape(r.rank_reason))
        console.print(table)
        if len(ranked) > MAX_ROWS:
            console.print(f"… and {len(ranked) - MAX_ROWS:,} more ranked donor(s) of "
                          f"{escape(rid)}: --output or --report lists them all.")
    console.print("Research and decision support, not a medical device. Unknown values "
                  "show as '?'; --output/--json/--report carry every column.")
