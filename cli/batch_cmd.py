"""``kirmatch batch``: every pair of a pairs file against a genotypes file.

Thin: parse options, call :func:`kirmatch.batch.run_batch`, show progress on a
terminal, and map the outcome to an exit code (0 ok; 1 invalid input, or any
row error under ``--strict``; 2 usage).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from .options import (
    A25Bw4Opt,
    Ambiguity,
    AmbiguityOpt,
    AntibodiesOpt,
    ChunkOpt,
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
    KirFormat,
    KirFormatOpt,
    KirimpMinPosteriorOpt,
    KirOpt,
    OutputOpt,
    PairsOpt,
    QuietOpt,
    SingleAllele,
    SingleAlleleOpt,
    StrictOpt,
    T1kMinQualityOpt,
    WkirWeightsOpt,
    build_options,
)
from .progress import showing_progress


def genotype_source(genotypes: Path | None, hla: Path | None, hla_format: HlaFormat,
                    kir: Path | None, kir_format: KirFormat, options: Any, *,
                    quiet: bool = False) -> tuple[Any, list[Path]]:
    """The genotypes input of a command: the ``--genotypes`` file, or the people
    read from ``--hla``/``--kir`` by the format readers (and the files read)."""
    if genotypes is None:
        from kirmatch.batch import genotype_source_from_readers

        people, description, files = genotype_source_from_readers(
            hla=hla, hla_format=hla_format.value, kir=kir, kir_format=kir_format.value,
            options=options)
        if not quiet:
            typer.echo(f"genotypes read as: {description}", err=True)
        return people, files
    if hla is not None or kir is not None:
        from kirmatch.errors import UsageError

        raise UsageError("give either --genotypes or --hla/--kir, not both")
    return genotypes, []


def effective_command(ctx: typer.Context) -> list[str]:
    """The command line with every option's effective value (defaults included).

    Recorded in the run record: it reproduces the run whatever shell, wrapper or
    test harness started it.
    """
    parts = ["kirmatch", ctx.info_name or "batch"]
    for param in ctx.command.params:
        # Duck-typed: Typer may use its own copy of Click's classes.
        if getattr(param, "param_type_name", "") != "option" or param.name is None:
            continue
        value = ctx.params.get(param.name)
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                parts.append(param.opts[0])
            elif getattr(param, "secondary_opts", None):
                parts.append(param.secondary_opts[0])  # type: ignore[attr-defined]
            continue
        parts.extend([param.opts[0], str(getattr(value, "value", value))])
    return parts


def register(app: typer.Typer, handle_errors: Callable[..., Any]) -> None:
    """Add the ``batch`` command to ``app``."""

    @app.command("batch")
    @handle_errors
    def batch(
        ctx: typer.Context,
        pairs: PairsOpt,
        output: OutputOpt,
        genotypes: GenotypesOpt = None,
        hla: HlaOpt = None,
        hla_format: HlaFormatOpt = HlaFormat.auto,
        kir: KirOpt = None,
        kir_format: KirFormatOpt = KirFormat.auto,
        t1k_min_quality: T1kMinQualityOpt = 0.0,
        kirimp_min_posterior: KirimpMinPosteriorOpt = 0.5,
        hlaimp_min_posterior: HlaimpMinPosteriorOpt = 0.5,
        antibodies: AntibodiesOpt = None,
        errors: ErrorsOpt = None,
        strict: StrictOpt = False,
        quiet: QuietOpt = False,
        column_map: ColumnMapOpt = None,
        chunk_size: ChunkOpt = 100_000,
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
        """Every model for every pair of a pairs table, streamed (millions of pairs).

        One output row per pairs row, in input order: the pairs table's own
        columns, then the computed columns (docs/rules.md). A row that cannot be
        computed gets status=error and an error message; the other rows are still
        computed. A run record OUTPUT.provenance.json (versions, options, input
        checksums, command) is written beside the output.
        """
        from kirmatch.batch import run_batch
        from kirmatch.pyard_backend import get_backend
        from kirmatch.tables import load_reference_tables

        opts = build_options(**locals())
        source, files = genotype_source(genotypes, hla, hla_format, kir, kir_format, opts,
                                        quiet=quiet)
        with showing_progress(quiet) as display:
            summary = run_batch(
                source, pairs, output, opts, errors=errors, column_map=column_map,
                chunk_rows=chunk_size, tables=load_reference_tables(), pyard=get_backend(),
                progress=display, command=effective_command(ctx), genotype_files=files,
                antibodies=antibodies,
            )
        report_run("batch", summary, "pairs", quiet=quiet, strict=strict)


def report_run(command: str, summary: Any, unit: str, *, quiet: bool, strict: bool,
               rate_unit: str | None = None) -> None:
    """A streaming run's notes and one summary line on stderr (unless ``quiet``),
    then exit 1 under ``strict`` if any row has status=error.

    The rate is the one the progress bar ends on: rows over the wall time of the
    stage that made them (:attr:`kirmatch.batch.BatchSummary.rate`).
    """
    from .progress import stage_summary

    if not quiet:
        for note in summary.notes:
            typer.echo(f"note: {note}", err=True)
        codes = ", ".join(f"{c} {n:,}" for c, n in summary.error_codes.items())
        stages = stage_summary(summary.stage_seconds)
        typer.echo(
            f"kirmatch {command}: {summary.rows_in:,} {unit} ({summary.rows_ok:,} ok, "
            f"{summary.rows_error:,} error{f': {codes}' if codes else ''}) in "
            f"{summary.seconds:.1f} s ({stages}; {summary.rate:,.0f} {rate_unit or unit}/s) -> "
            f"{summary.output}", err=True)
        if summary.duplicate_ids:
            typer.echo(
                f"warning: {len(summary.duplicate_ids):,} sample_id(s) have conflicting "
                f"records in the genotypes file (duplicate_person): "
                f"{', '.join(summary.duplicate_ids)}", err=True)
    if strict and summary.rows_error:
        typer.echo(f"error: {summary.rows_error:,} row(s) have status=error (--strict)",
                   err=True)
        raise typer.Exit(1)
