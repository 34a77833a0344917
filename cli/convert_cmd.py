"""``kirmatch convert``: read genotyper / lab output into kirmatch's genotypes table.

The command reads a KIR input (PING, T1K, KIR*IMP, presence/absence or
per-gene string matrix) and/or an HLA input (GL-string table, per-locus
columns, NMDP HML, HLA*IMP:03 imputations, OptiType calls) and writes
``sample_id,hla,kir`` so that a lab can check what was understood before
ranking. The detected formats, the files read and
every reader warning go to stderr.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer

from kirmatch.errors import UsageError
from kirmatch.output import OutputPlan
from kirmatch.progress import Stages

from .options import (
    READER_PANEL,
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
    T1kMinQualityOpt,
    build_options,
)
from .progress import showing_progress

__all__ = ["register"]


def _describe(kind: str, path: Path, requested: str, result: Any) -> str:
    how = "detected" if requested == "auto" else "format"
    files = ", ".join(Path(s).name for s in result.sources) or path.name
    return (f"{kind}: {how} {result.format} in {path} ({len(result.genotypes)} samples; "
            f"read {files})")


def register(app: typer.Typer, handle_errors: Callable[..., Any]) -> None:
    """Add the ``convert`` command to ``app``."""

    @app.command("convert")
    @handle_errors
    def convert(
        output: OutputOpt,
        kir: KirOpt = None,
        kir_format: KirFormatOpt = KirFormat.auto,
        hla: HlaOpt = None,
        hla_format: HlaFormatOpt = HlaFormat.auto,
        quiet: QuietOpt = False,
        kir_copy_number: Annotated[Path | None, typer.Option(
            "--kir-copy-number", help="PING copy-number frame to use (default: the "
            "manual/predicted frame beside the calls).", exists=True, dir_okay=False,
            rich_help_panel=READER_PANEL)] = None,
        t1k_min_quality: T1kMinQualityOpt = 0.0,
        kirimp_min_posterior: KirimpMinPosteriorOpt = 0.5,
        hlaimp_min_posterior: HlaimpMinPosteriorOpt = 0.5,
        hla_sample: Annotated[str | None, typer.Option(
            "--hla-sample", help="OptiType *_result.tsv: the sample id (default: the file "
            "name without _result.tsv).", rich_help_panel=READER_PANEL)] = None,
    ) -> None:
        """Convert KIR/HLA typing files into kirmatch's genotypes table (sample_id,hla,kir).

        Give --kir and/or --hla. What was detected and read, and every reader
        warning, go to stderr, so that a lab can check what was understood before
        ranking.
        """
        from kirmatch.readers import (
            GENOTYPES_TABLE_COLUMNS,
            genotypes_table,
            read_hla,
            read_kir,
        )
        from kirmatch.tables import load_reference_tables

        if kir is None and hla is None:
            raise UsageError("give --kir and/or --hla")
        if kir_copy_number is not None and kir is None:
            raise UsageError("--kir-copy-number needs --kir")
        if hla_sample is not None and hla is None:
            raise UsageError("--hla-sample needs --hla")
        with OutputPlan({"output": output}, inputs=[kir, hla, kir_copy_number]) as plan:
            options = build_options(**locals())
            kir_result = hla_result = None
            with showing_progress(quiet) as display:
                stages = Stages(display)
                if kir is not None:
                    stages.start("kir", unit="samples", detail=f"reading KIR typings: {kir}")
                    kir_result = read_kir(kir, kir_format.value, tables=load_reference_tables(),
                                          options=options, copy_number=kir_copy_number)
                    stages.finish(len(kir_result.genotypes))
                if hla is not None:
                    stages.start("hla", unit="samples", detail=f"reading HLA typings: {hla}")
                    hla_result = read_hla(hla, hla_format.value, options=options,
                                          sample=hla_sample)
                    stages.finish(len(hla_result.genotypes))
            if not quiet:
                for what, path, fmt, result in (("kir", kir, kir_format, kir_result),
                                                 ("hla", hla, hla_format, hla_result)):
                    if result is not None:
                        typer.echo(_describe(what, path, fmt.value, result), err=True)
            for result in (kir_result, hla_result):
                if result is not None and not quiet:
                    _report_warnings(result)
            rows = genotypes_table(kir_result, hla_result)
            plan.write_table("output", pa.table(
                {c: pa.array([r[i] for r in rows], pa.string())
                 for i, c in enumerate(GENOTYPES_TABLE_COLUMNS)}))
        if not quiet:
            typer.echo(f"wrote {len(rows)} samples to {output}", err=True)


def _report_warnings(result: Any, shown: int = 20) -> None:
    """Reader warnings on stderr: every one for small inputs, else a count per kind
    (with the first few) so that 100,000 samples do not print a million lines."""
    from collections import Counter

    if result.ignored:
        where = ", ".join(Path(f).name for f in result.sources) or "input"
        typer.echo(f"note: {where}: columns not read: {', '.join(result.ignored)}", err=True)
    every = [w for warns in result.warnings.values() for w in warns]
    if len(every) <= shown:
        for w in every:
            typer.echo(f"warning: {w}", err=True)
        return
    kinds = Counter(w.split("(", 1)[0] for w in every)
    first: dict[str, str] = {}
    for w in every:
        first.setdefault(w.split("(", 1)[0], w)
    for kind, n in kinds.most_common():
        typer.echo(f"warning: {kind}: {n:,} warning(s), e.g. {first[kind]}", err=True)
