"""``kirmatch persons``: the per-person table of a genotypes input (rule 18).

Thin: parse options, call :func:`kirmatch.persons.run_persons`, show progress on
a terminal, and map the outcome to an exit code (0 ok; 1 invalid input, or any
row error under ``--strict``; 2 usage).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from .batch_cmd import effective_command, genotype_source, report_run
from .options import (
    A25Bw4Opt,
    Ambiguity,
    AmbiguityOpt,
    ChunkOpt,
    ColumnMapOpt,
    ErrorsOpt,
    ExcludeNullOpt,
    GenotypesOpt,
    HlaABw4Opt,
    HlaFormat,
    HlaFormatOpt,
    HlaimpMinPosteriorOpt,
    HlaOpt,
    KirFormat,
    KirFormatOpt,
    KirimpMinPosteriorOpt,
    KirOpt,
    OutputOpt,
    QuietOpt,
    SingleAllele,
    SingleAlleleOpt,
    StrictOpt,
    T1kMinQualityOpt,
    build_options,
)
from .progress import showing_progress


def register(app: typer.Typer, handle_errors: Callable[..., Any]) -> None:
    """Add the ``persons`` command to ``app``."""

    @app.command("persons")
    @handle_errors
    def persons(
        ctx: typer.Context,
        output: OutputOpt,
        genotypes: GenotypesOpt = None,
        hla: HlaOpt = None,
        hla_format: HlaFormatOpt = HlaFormat.auto,
        kir: KirOpt = None,
        kir_format: KirFormatOpt = KirFormat.auto,
        t1k_min_quality: T1kMinQualityOpt = 0.0,
        kirimp_min_posterior: KirimpMinPosteriorOpt = 0.5,
        hlaimp_min_posterior: HlaimpMinPosteriorOpt = 0.5,
        errors: ErrorsOpt = None,
        strict: StrictOpt = False,
        quiet: QuietOpt = False,
        column_map: ColumnMapOpt = None,
        chunk_size: ChunkOpt = 100_000,
        ambiguity: AmbiguityOpt = Ambiguity.strict,
        hla_a_bw4: HlaABw4Opt = True,
        a25_bw4: A25Bw4Opt = False,
        exclude_null_kir3dl1: ExcludeNullOpt = False,
        single_allele: SingleAlleleOpt = SingleAllele.homozygous,
    ) -> None:
        """One row per person: ligands, HLA-B leader, KIR genotype, functional iKIR (rule 18).

        The person-level facts the pair models use (HLA-C group, HLA-B class,
        ligands, B-C1, A3/A11, HLA-A Bw4, KIR A/B genotype, Cen/Tel motifs, B
        content, KIR3DL1 classes, KIR2DL1 residue 245, HLA-B leader, and the
        functional iKIR of the person with its own ligands), in input order. A
        person that cannot be read gets status=error; nothing is dropped.
        """
        from kirmatch.persons import run_persons
        from kirmatch.pyard_backend import get_backend
        from kirmatch.tables import load_reference_tables

        opts = build_options(**locals())
        source, files = genotype_source(genotypes, hla, hla_format, kir, kir_format, opts,
                                        quiet=quiet)
        with showing_progress(quiet) as display:
            summary = run_persons(
                source, output, opts, errors=errors, column_map=column_map,
                chunk_rows=chunk_size, tables=load_reference_tables(), pyard=get_backend(),
                progress=display, command=effective_command(ctx), genotype_files=files)
        report_run("persons", summary, "rows", quiet=quiet, strict=strict, rate_unit="people")
