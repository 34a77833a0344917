"""Shared Typer option types (defined once, reused by every command)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from kirmatch.options import OPTION_HELP, Options

MODEL_PANEL = "Model options"
IO_PANEL = "Files"
#: A command's own inputs (``kirmatch pair``); shown before the files.
PAIR_PANEL = "Pair"
READER_PANEL = "Reader settings"

#: Options that are required unless others are given (shown in help with ``*``).
REQUIRED_UNLESS = {"genotypes": "--hla or --kir"}


class Ambiguity(str, Enum):
    strict = "strict"
    cwd = "cwd"
    majority = "majority"


class SingleAllele(str, Enum):
    homozygous = "homozygous"
    unknown = "unknown"


class KirFormat(str, Enum):
    """KIR input formats (``auto`` detects from the header and content)."""

    auto = "auto"
    ping = "ping"
    t1k = "t1k"
    kirimp = "kirimp"
    matrix = "matrix"


class HlaFormat(str, Enum):
    """HLA input formats (``auto`` detects from the header and content)."""

    auto = "auto"
    gl = "gl"
    columns = "columns"
    hml = "hml"
    hlaimp = "hlaimp"
    optitype = "optitype"


# -- model options ------------------------------------------------------------

AmbiguityOpt = Annotated[Ambiguity, typer.Option(
    "--ambiguity", help=OPTION_HELP["ambiguity_policy"],
    rich_help_panel=MODEL_PANEL)]
HlaABw4Opt = Annotated[bool, typer.Option(
    "--hla-a-bw4/--no-hla-a-bw4", help=OPTION_HELP["hla_a_bw4"],
    rich_help_panel=MODEL_PANEL)]
A25Bw4Opt = Annotated[bool, typer.Option(
    "--a25-bw4/--no-a25-bw4", help=OPTION_HELP["a25_bw4"],
    rich_help_panel=MODEL_PANEL)]
IncludeA3A11Opt = Annotated[bool, typer.Option(
    "--include-a3a11/--no-include-a3a11",
    help=OPTION_HELP["include_a3a11"],
    rich_help_panel=MODEL_PANEL)]
IpdCompatibleOpt = Annotated[bool, typer.Option(
    "--ipd-compatible/--no-ipd-compatible",
    help=OPTION_HELP["ipd_compatible"],
    rich_help_panel=MODEL_PANEL)]
ExcludeNullOpt = Annotated[bool, typer.Option(
    "--exclude-null-kir3dl1/--no-exclude-null-kir3dl1",
    help=OPTION_HELP["exclude_null_kir3dl1"],
    rich_help_panel=MODEL_PANEL)]
SingleAlleleOpt = Annotated[SingleAllele, typer.Option(
    "--single-allele", help=OPTION_HELP["single_allele"],
    rich_help_panel=MODEL_PANEL)]
DsaLowOpt = Annotated[float, typer.Option(
    "--dsa-low-mfi", metavar="MFI", help=OPTION_HELP["dsa_low_mfi"],
    rich_help_panel=MODEL_PANEL)]
DsaModerateOpt = Annotated[float, typer.Option(
    "--dsa-moderate-mfi", metavar="MFI", help=OPTION_HELP["dsa_moderate_mfi"],
    rich_help_panel=MODEL_PANEL)]
DsaHighOpt = Annotated[float, typer.Option(
    "--dsa-high-mfi", metavar="MFI", help=OPTION_HELP["dsa_high_mfi"],
    rich_help_panel=MODEL_PANEL)]
DsaVeryHighOpt = Annotated[float, typer.Option(
    "--dsa-very-high-mfi", metavar="MFI", help=OPTION_HELP["dsa_very_high_mfi"],
    rich_help_panel=MODEL_PANEL)]
DsaCountSelfOpt = Annotated[bool, typer.Option(
    "--dsa-count-self/--no-dsa-count-self",
    help=OPTION_HELP["dsa_count_self"], rich_help_panel=MODEL_PANEL)]
WkirWeightsOpt = Annotated[str, typer.Option(
    "--wkir-weights", metavar="I,A,M", help=OPTION_HELP["wkir_weights"] + " Comma-separated.",
    rich_help_panel=MODEL_PANEL)]

# -- reader settings (the genotyper files of --hla / --kir) ---------------------

T1kMinQualityOpt = Annotated[float, typer.Option(
    "--t1k-min-quality", help=OPTION_HELP["t1k_min_quality"],
    rich_help_panel=READER_PANEL)]
KirimpMinPosteriorOpt = Annotated[float, typer.Option(
    "--kirimp-min-posterior", help=OPTION_HELP["kirimp_min_posterior"],
    rich_help_panel=READER_PANEL)]
HlaimpMinPosteriorOpt = Annotated[float, typer.Option(
    "--hlaimp-min-posterior", help=OPTION_HELP["hlaimp_min_posterior"],
    rich_help_panel=READER_PANEL)]

# -- files ----------------------------------------------------------------------

GenotypesOpt = Annotated[Path | None, typer.Option(
    "--genotypes", "-g", help="Genotypes table: sample_id, hla, kir, or the wide forms "
    "(see Genotypes table below). CSV, TSV, .gz, Parquet or XLSX.", exists=True,
    dir_okay=False, readable=True, rich_help_panel=IO_PANEL)]
PairsOpt = Annotated[Path, typer.Option(
    "--pairs", "-p", help="Pairs table: recipient_id, donor_id and optional clinical columns "
    "(see Pairs table below); other columns are passed through.", exists=True,
    dir_okay=False, readable=True, rich_help_panel=IO_PANEL)]
AntibodiesOpt = Annotated[Path | None, typer.Option(
    "--antibodies", "-a", exists=True, dir_okay=False,
    help="Recipient antibodies (single-antigen beads): recipient_id, specificity, mfi[, c1q].",
    rich_help_panel=IO_PANEL)]
OutputOpt = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Output table; the format follows the extension (.csv, .tsv, "
    ".gz, .parquet, .xlsx).", dir_okay=False, rich_help_panel=IO_PANEL)]
ReportOpt = Annotated[Path | None, typer.Option(
    "--report", dir_okay=False, rich_help_panel=IO_PANEL,
    help="Write a self-contained HTML report (prints on A4).")]
ErrorsOpt = Annotated[Path | None, typer.Option(
    "--errors", help="Also write the status=error rows here.", dir_okay=False,
    rich_help_panel=IO_PANEL)]
ColumnMapOpt = Annotated[Path | None, typer.Option(
    "--column-map", help="TOML or JSON file mapping our column names to yours.",
    exists=True, dir_okay=False, rich_help_panel=IO_PANEL)]
HlaOpt = Annotated[Path | None, typer.Option(
    "--hla", exists=True, help="HLA typings in another format: a file or a folder (see "
    "--hla-format).", rich_help_panel=IO_PANEL)]
HlaFormatOpt = Annotated[HlaFormat, typer.Option(
    "--hla-format", help="Format of --hla. gl: sample_id and GL string; columns: A_1, A_2, "
    "…; hml: NMDP HML; hlaimp: HLA*IMP:03 imputations.csv; optitype: OptiType "
    "*_result.tsv (a folder of them, or a consolidated CSV); auto detects it.",
    rich_help_panel=IO_PANEL)]
KirOpt = Annotated[Path | None, typer.Option(
    "--kir", exists=True, help="KIR typings from a genotyper: a file or a folder (see "
    "--kir-format).", rich_help_panel=IO_PANEL)]
KirFormatOpt = Annotated[KirFormat, typer.Option(
    "--kir-format", help="Format of --kir. ping: PING finalAlleleCalls.csv (or its folder); "
    "t1k: T1K *_genotype.tsv (a folder, or a consolidated CSV); kirimp: KIR*IMP "
    "imputations.csv; matrix: one column per gene (POS/NEG, 1/0 or alleles); auto detects "
    "it.", rich_help_panel=IO_PANEL)]
PolicyOpt = Annotated[str, typer.Option(
    "--policy", metavar="POLICY", help=OPTION_HELP["ranking_policy"])]

# -- run --------------------------------------------------------------------------

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
StrictOpt = Annotated[bool, typer.Option(
    "--strict", help="Exit 1 if any row has status=error (after writing everything).")]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", help="No progress display and no summary on stderr.")]
ChunkOpt = Annotated[int, typer.Option(
    "--chunk-size", min=1, metavar="ROWS",
    help="Rows per streamed chunk (memory against overhead).")]


def build_options(*, ambiguity: Ambiguity = Ambiguity.strict, hla_a_bw4: bool = True,
                  a25_bw4: bool = False, include_a3a11: bool = False,
                  ipd_compatible: bool = False, exclude_null_kir3dl1: bool = False,
                  single_allele: SingleAllele = SingleAllele.homozygous,
                  dsa_low_mfi: float = 1000.0, dsa_moderate_mfi: float = 2000.0,
                  dsa_high_mfi: float = 5000.0, dsa_very_high_mfi: float = 20000.0,
                  dsa_count_self: bool = False, ranking_policy: str = "kir-first",
                  wkir_weights: str = "0.80,0.14,0.99", t1k_min_quality: float = 0.0,
                  kirimp_min_posterior: float = 0.5, hlaimp_min_posterior: float = 0.5,
                  **_: object) -> Options:
    """Options from a command's parameters (pass ``**locals()``; others are ignored)."""
    return Options(
        ambiguity_policy=ambiguity.value, hla_a_bw4=hla_a_bw4, a25_bw4=a25_bw4,
        include_a3a11=include_a3a11, ipd_compatible=ipd_compatible,
        exclude_null_kir3dl1=exclude_null_kir3dl1, single_allele=single_allele.value,
        dsa_low_mfi=dsa_low_mfi, dsa_moderate_mfi=dsa_moderate_mfi, dsa_high_mfi=dsa_high_mfi,
        dsa_very_high_mfi=dsa_very_high_mfi, dsa_count_self=dsa_count_self,
        ranking_policy=ranking_policy, wkir_weights=parse_weights(wkir_weights),
        t1k_min_quality=t1k_min_quality, kirimp_min_posterior=kirimp_min_posterior,
        hlaimp_min_posterior=hlaimp_min_posterior,
    )


def parse_weights(text: str) -> tuple[float, ...]:
    """``"0.80,0.14,0.99"`` as numbers (the option checks that there are three).

    >>> parse_weights("0.8, 0.14,0.99")
    (0.8, 0.14, 0.99)
    >>> parse_weights("0.8,x,1")
    Traceback (most recent call last):
    ...
    kirmatch.errors.UsageError: --wkir-weights: 'x' is not a number (give three numbers, ...
    """
    from kirmatch.errors import UsageError

    out = []
    for part in text.split(","):
        try:
            out.append(float(part.strip()))
        except ValueError:
            raise UsageError(f"--wkir-weights: {part.strip()!r} is not a number (give three "
                             "numbers, e.g. 0.80,0.14,0.99)", raw=text) from None
    return tuple(out)
