"""``kirmatch rank``: rank each recipient's candidate donors (rule 14), with DSA
(rule 13), a terminal table, a CSV/TSV/Parquet/XLSX output and an HTML report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .options import (
    A25Bw4Opt,
    Ambiguity,
    AmbiguityOpt,
    DsaHighOpt,
    DsaLowOpt,
    DsaVeryHighOpt,
    ExcludeNullOpt,
    HlaABw4Opt,
    IncludeA3A11Opt,
    IpdCompatibleOpt,
    JsonOpt,
    SingleAllele,
    SingleAlleleOpt,
    build_options,
)

FileOpt = Annotated[Path | None, typer.Option(exists=True, dir_okay=False)]


def _records(df: Any) -> tuple[list[str], list[dict[str, Any]]]:
    cols = [str(c) for c in df.columns]
    return cols, [dict(zip(cols, r, strict=True)) for r in df.itertuples(index=False)]


def register(app: typer.Typer, handle_errors: Any) -> None:
    @app.command("rank")
    @handle_errors
    def rank(
        pairs: Annotated[Path, typer.Option("--pairs", exists=True, dir_okay=False,
                                            help="Pairs file: recipient_id, donor_id and "
                                                 "optional clinical columns.")],
        genotypes: Annotated[Path | None, typer.Option(
            "--genotypes", exists=True, dir_okay=False,
            help="Genotypes file (sample_id, hla, kir, or the wide forms).")] = None,
        antibodies: Annotated[Path | None, typer.Option(
            "--antibodies", exists=True, dir_okay=False,
            help="Antibodies file: recipient_id, specificity, mfi[, c1q].")] = None,
        policy: Annotated[str, typer.Option(
            "--policy", help="kir-first (default), ebmt, or a policy TOML file.")] = "kir-first",
        output: Annotated[Path | None, typer.Option(
            "--output", help="Write one row per candidate (CSV, TSV, Parquet, XLSX).")] = None,
        report: Annotated[Path | None, typer.Option(
            "--report", help="Write a self-contained HTML report.")] = None,
        hla: Annotated[Path | None, typer.Option(
            "--hla", exists=True, help="HLA typings from another format (see --hla-format).")]
        = None,
        hla_format: Annotated[str, typer.Option(
            "--hla-format", help="gl, columns, hml or auto.")] = "auto",
        kir: Annotated[Path | None, typer.Option(
            "--kir", exists=True, help="KIR typings from a genotyper (see --kir-format).")]
        = None,
        kir_format: Annotated[str, typer.Option(
            "--kir-format", help="ping, t1k, kirimp, matrix or auto.")] = "auto",
        json_out: JsonOpt = False,
        ambiguity: AmbiguityOpt = Ambiguity.strict,
        hla_a_bw4: HlaABw4Opt = True,
        a25_bw4: A25Bw4Opt = False,
        include_a3a11: IncludeA3A11Opt = False,
        ipd_compatible: IpdCompatibleOpt = False,
        exclude_null_kir3dl1: ExcludeNullOpt = False,
        single_allele: SingleAlleleOpt = SingleAllele.homozygous,
        dsa_low_mfi: DsaLowOpt = 1000.0,
        dsa_high_mfi: DsaHighOpt = 5000.0,
        dsa_very_high_mfi: DsaVeryHighOpt = 20000.0,
    ) -> None:
        """Rank each recipient's donors: DSA, CF-iKIR and clinical factors, with reasons."""
        from kirmatch.dsa import antibodies_by_recipient
        from kirmatch.errors import InputSchemaError, KirmatchError, UsageError
        from kirmatch.io import file_sha256, read_table, write_table
        from kirmatch.pair import CONTRACT_COLUMNS, RANK_COLUMNS, run_record
        from kirmatch.people import people_from_readers, people_from_rows
        from kirmatch.pyard_backend import get_backend
        from kirmatch.ranking import rank_pairs, resolve_policy
        from kirmatch.report import render_report
        from kirmatch.tables import load_reference_tables

        t0 = time.perf_counter()
        pol = resolve_policy(policy)
        opts = build_options(**{**locals(), "ranking_policy": pol.name})
        tables = load_reference_tables()
        if genotypes is None and hla is None and kir is None:
            raise UsageError("give --genotypes, or --hla and/or --kir with their formats")
        people: dict[str, Any] = {}
        if genotypes is not None:
            cols, rows = _records(read_table(genotypes, what="genotypes"))
            people.update(people_from_rows(cols, rows, tables))
        if hla is not None or kir is not None:
            from kirmatch.readers import read_hla, read_kir

            h = read_hla(hla, hla_format) if hla is not None else None
            k = read_kir(kir, kir_format, tables=tables, options=opts) if kir is not None \
                else None
            for what, res in (("HLA", h), ("KIR", k)):
                if res is not None:
                    typer.echo(f"{what}: read {len(res.genotypes)} samples as {res.format}",
                               err=True)
            people.update(people_from_readers(h.genotypes if h else None,
                                              k.genotypes if k else None))
        pcols, prow = _records(read_table(pairs, what="pairs"))
        for need in ("recipient_id", "donor_id"):
            if need not in pcols:
                raise KirmatchError(f"pairs file {pairs} has no {need!r} column", column=need)
        abs_by_recipient: dict[str, Any] | None = None
        if antibodies is not None:
            acols, arows = _records(read_table(antibodies, what="antibodies"))
            if "recipient_id" not in {c.strip().lower() for c in acols}:
                raise InputSchemaError(f"antibodies file {antibodies} has no 'recipient_id' "
                                       "column", column="recipient_id")
            abs_by_recipient = antibodies_by_recipient(acols, arows, source=antibodies.name,
                                                       tables=tables)
        pyard = get_backend()
        ranked = rank_pairs(people, prow, policy=pol, options=opts, tables=tables,
                            antibodies=abs_by_recipient, pyard=pyard)
        record = run_record(opts, tables)
        meta = {
            **{k: record[k] for k in ("rules", "kirmatch_version", "ipd_imgt_hla", "ipd_kir")},
            "options": record,
            "policy": pol.to_dict(),
            "tables_sha256": dict(tables.sha256),
            "inputs": {str(p): file_sha256(p) for p in (genotypes, pairs, antibodies, hla, kir)
                       if p is not None and p.is_file()},
            "command": " ".join(["kirmatch", *sys.argv[1:]]),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        rows_out = []
        # The pairs file's own columns first (in its order), then the contract.
        clash = [c for c in pcols if c in (*CONTRACT_COLUMNS[2:], *RANK_COLUMNS)]
        if clash:
            raise UsageError(f"pairs file column {clash[0]!r} clashes with an output column")
        extra = list(pcols)
        for r in ranked:
            row = {c: ("" if r.pair_row.get(c) is None else str(r.pair_row.get(c)))
                   for c in extra}
            row.update(r.to_row())
            rows_out.append(row)
        if output is not None:
            import pandas as pd

            columns = [*extra, *(c for c in CONTRACT_COLUMNS if c not in extra), *RANK_COLUMNS]
            write_table(pd.DataFrame(rows_out, columns=columns), output,
                        neutralise=[*extra, "error"])
            Path(str(output) + ".provenance.json").write_text(json.dumps(meta, indent=2))
        if report is not None:
            report.write_text(render_report(ranked, policy=pol.to_dict(), meta=meta),
                              encoding="utf-8")
        if json_out:
            typer.echo(json.dumps({"meta": meta, "results": rows_out}, indent=2))
            return
        _print_tables(ranked)


def _print_tables(ranked: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=160)
    groups: dict[str, list[Any]] = {}
    for r in ranked:
        groups.setdefault(r.assessment.recipient_id, []).append(r)
    for rid in sorted(groups):
        table = Table(title=f"Recipient {rid}", show_lines=False)
        for col in ("rank", "donor", "DSA tier", "cf_ikir", "GvH ligand mm", "B content",
                    "age/sex/relationship", "reason"):
            table.add_column(col)
        for r in sorted(groups[rid], key=lambda x: (x.rank is None, x.rank or 0)):
            a = r.assessment
            if a.status == "error":
                table.add_row("-", escape(a.donor_id), "", "", "", "", "",
                              f"[red]{escape(a.error)}[/red]")
                continue
            v = a.to_dict()
            c = r.clinical
            clin = "/".join("?" if x in (None, "") else str(x) for x in (
                f"{c.donor_age:g}" if c and c.donor_age is not None else None,
                c.donor_sex if c else None, c.relationship if c else None))
            gvh = v["gvh_ligand_mismatch"]
            table.add_row(str(r.rank), escape(a.donor_id), v["dsa_tier"] or "unknown",
                          str(v["cf_ikir"]) if v["cf_ikir"] != "" else "unknown",
                          ("yes " + v["gvh_mismatched_ligands"]) if gvh is True else
                          ("no" if gvh is False else "unknown"),
                          v["b_content_group"] or "unknown", escape(clin),
                          escape(r.rank_reason))
        console.print(table)
    console.print("Research and decision support, not a medical device.")
