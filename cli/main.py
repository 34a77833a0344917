"""The ``kirmatch`` command line (Typer). Thin: parse options, call one library
function, render, and map errors to exit codes (:func:`handle_errors`: 0 ok,
1 invalid input, 2 usage, 3 system refused, 4 internal error, 130/143/129
interrupted or terminated).
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from kirmatch import __version__
from kirmatch.errors import EnvironmentFault, KirmatchError, UsageError
from kirmatch.options import RULES_VERSION

from .help import App
from .options import (
    PAIR_PANEL,
    A25Bw4Opt,
    Ambiguity,
    AmbiguityOpt,
    AntibodiesOpt,
    DsaCountSelfOpt,
    DsaHighOpt,
    DsaLowOpt,
    DsaModerateOpt,
    DsaVeryHighOpt,
    ExcludeNullOpt,
    HlaABw4Opt,
    IncludeA3A11Opt,
    IpdCompatibleOpt,
    JsonOpt,
    SingleAllele,
    SingleAlleleOpt,
    WkirWeightsOpt,
    build_options,
)
from .signals import Terminated, raise_on_signals

app = App(
    name="kirmatch",
    help=("KIR/HLA NK-alloreactivity models and transparent haploidentical donor ranking. "
          "Research and decision support, not a medical device."),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = App(help="The py-ard (HLA nomenclature) database: status and build. It is needed "
               "only for NMDP MAC codes and v2 names the shipped tables cannot convert.",
               no_args_is_help=True)
app.add_typer(data_app, name="data")

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


# Exceptions Click/Typer turn into exit codes and messages themselves.
_PASS_THROUGH: tuple[type[BaseException], ...] = (
    typer.Exit, typer.Abort, SystemExit,
    *{c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"})
# OS errors that can only come from writing, worded "cannot write".
_WRITE_ERRNOS = frozenset(getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "EFBIG")
                          if hasattr(errno, n))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def os_error_message(exc: OSError) -> str:
    """One line for an OS error that escaped the library, naming its path.

    >>> import errno
    >>> os_error_message(OSError(errno.ENOSPC, "No space left on device", "/data/out.csv"))
    "cannot write '/data/out.csv': No space left on device"
    >>> os_error_message(PermissionError(errno.EACCES, "Permission denied", "in.csv"))
    "cannot access 'in.csv': Permission denied"
    """
    reason = exc.strerror or str(exc) or type(exc).__name__
    verb = "cannot write" if exc.errno in _WRITE_ERRNOS else "cannot access"
    if exc.filename is None:
        return _one_line(f"{verb}: {reason}" if exc.errno in _WRITE_ERRNOS
                         else f"operating system error: {reason}")
    where = repr(os.fsdecode(exc.filename))
    if exc.filename2 is not None:
        where += f" or {os.fsdecode(exc.filename2)!r}"
    return _one_line(f"{verb} {where}: {reason}")


def handle_errors(fn: F) -> F:
    """Turn errors into one line on stderr and an exit code; never a traceback.

    The exit codes (0 success, 1 invalid input, 2 usage error, 3 the system
    refused, 4 internal error, 130/143/129 interrupted or terminated) are listed
    with their meanings in :data:`cli.help.EXIT_CODES`, which every help screen
    and the documentation show.

    SIGTERM and SIGHUP raise :class:`~.signals.Terminated` while the command
    runs, so that its ``with OutputPlan(...)`` blocks remove their temporary
    files before the process exits.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with raise_on_signals():
                return fn(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except Terminated as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except UsageError as exc:
            raise fail(_one_line(str(exc)), 2) from None
        except EnvironmentFault as exc:
            raise fail(_one_line(str(exc)), 3) from None
        except KirmatchError as exc:
            raise fail(_one_line(str(exc)), 1) from None
        except MemoryError:
            raise fail("out of memory; free memory or give a smaller input (batch: a "
                       "smaller --chunk-size)", 3) from None
        except OSError as exc:
            raise fail(os_error_message(exc), 3) from None
        except Exception as exc:
            raise fail(_one_line(f"internal error ({type(exc).__name__}: {exc}); please "
                                 "report it"), 4) from None

    return wrapper  # type: ignore[return-value]


def version_text() -> str:
    from kirmatch.tables import load_reference_tables

    try:
        t = load_reference_tables()
        tables = f"IPD-IMGT/HLA {t.hla_release}, IPD-KIR {t.kir_release}"
    except KirmatchError as exc:
        tables = f"reference tables unavailable ({exc})"
    return f"kirmatch {__version__}\n{RULES_VERSION}\n{tables}"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version_callback, is_eager=True,
        help="Print the kirmatch version, rules version and reference table releases.")] = False,
) -> None:
    """kirmatch command line."""


def _backend() -> Any:
    from kirmatch.pyard_backend import get_backend

    return get_backend()


def emit_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False))


# ---------------------------------------------------------------------------
# kirmatch ligands
# ---------------------------------------------------------------------------

@app.command()
@handle_errors
def ligands(
    gl_string: Annotated[str, typer.Argument(
        metavar="HLA_TYPING", help="HLA typing, e.g. a GL string (see HLA typing below); "
        "quote it in the shell.")],
    json_out: JsonOpt = False,
    ambiguity: AmbiguityOpt = Ambiguity.strict,
    hla_a_bw4: HlaABw4Opt = True,
    a25_bw4: A25Bw4Opt = False,
    single_allele: SingleAlleleOpt = SingleAllele.homozygous,
) -> None:
    """KIR-ligand call of each HLA allele (rule 1) and the genotype summary: HLA-C
    group, HLA-B class and ligand set (rule 3)."""
    from kirmatch.hla import parse_hla_genotype
    from kirmatch.ligands import LigandResolver
    from kirmatch.pair import run_record
    from kirmatch.tables import load_reference_tables

    from .render import fit, render_ligands, terminal_width

    opts = build_options(**locals())
    tables = load_reference_tables()
    resolver = LigandResolver(tables, opts, _backend())
    genotype = parse_hla_genotype(gl_string)
    person = resolver.resolve_genotype(genotype, "person")
    summary = resolver.summarize(person)
    result = {
        "genotype": str(genotype),
        "c_group": summary.c_group or "",
        "b_class": summary.b_class or "",
        "ligands": ";".join(sorted(summary.ligands)) if summary.ligands is not None else "",
        "b_c1": summary.b_c1 if summary.b_c1 is not None else "",
        "unknown": summary.unknown,
        "alleles": [c.to_dict() for c in summary.calls],
        "warnings": sorted(set(summary.warnings)),
        "options": run_record(opts, tables),
    }
    if json_out:
        emit_json(result)
    else:
        typer.echo(fit(render_ligands(result), terminal_width()))


# ---------------------------------------------------------------------------
# kirmatch pair
# ---------------------------------------------------------------------------

@app.command()
@handle_errors
def pair(
    recipient_hla: Annotated[str, typer.Option(
        "--recipient-hla", metavar="TYPING", help="Recipient HLA typing (see HLA typing).",
        rich_help_panel=PAIR_PANEL)],
    donor_hla: Annotated[str, typer.Option(
        "--donor-hla", metavar="TYPING", help="Donor HLA typing.", rich_help_panel=PAIR_PANEL)],
    donor_kir: Annotated[str | None, typer.Option(
        "--donor-kir", metavar="TYPING", help="Donor KIR typing (see KIR typing); without it "
        "the KIR models are unknown.", rich_help_panel=PAIR_PANEL)] = None,
    recipient_kir: Annotated[str | None, typer.Option(
        "--recipient-kir", metavar="TYPING", help="Recipient KIR typing (gene-gene "
        "mismatch only).", rich_help_panel=PAIR_PANEL)] = None,
    recipient_id: Annotated[str, typer.Option(
        "--recipient-id", metavar="ID", help="Recipient's name in the output; picks its "
        "rows of --antibodies.", rich_help_panel=PAIR_PANEL)] = "recipient",
    donor_id: Annotated[str, typer.Option(
        "--donor-id", metavar="ID", help="Donor's name in the output.",
        rich_help_panel=PAIR_PANEL)] = "donor",
    antibodies: AntibodiesOpt = None,
    flow_crossmatch: Annotated[str | None, typer.Option(
        "--flow-crossmatch", metavar="pos|neg", help="Flow crossmatch of the pair; pos makes "
        "the DSA tier at least high (rule 13).", rich_help_panel=PAIR_PANEL)] = None,
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
    """Every model for one recipient-donor pair, explained, each with its citation.

    Unknown inputs give unknown results with the reason, never a guess. --json
    prints every output column (their meanings: docs/rules.md).
    """
    from kirmatch.pair import assess_pair, make_person
    from kirmatch.tables import load_reference_tables

    from .render import fit, render_pair, terminal_width

    opts = build_options(**locals())
    tables = load_reference_tables()
    r = make_person(recipient_id, recipient_hla, recipient_kir, tables=tables)
    d = make_person(donor_id, donor_hla, donor_kir, tables=tables)
    abs_ = None
    if antibodies is not None:
        from kirmatch.dsa import antibodies_by_recipient
        from kirmatch.errors import InputSchemaError
        from kirmatch.tabular import TableReader

        areader = TableReader(antibodies, what="antibodies")
        achunk = areader.read()
        by_recipient = antibodies_by_recipient(
            list(achunk.columns), achunk.records(), source=antibodies.name, tables=tables,
            row_errors=achunk.errors)
        abs_ = by_recipient.get(recipient_id)
        if abs_ is None and len(by_recipient) == 1 and "" in by_recipient:
            abs_ = by_recipient[""]
        if abs_ is None:
            found = ", ".join(repr(k) for k in list(by_recipient)[:10])
            raise InputSchemaError(
                f"{antibodies.name} has no antibody rows for recipient {recipient_id!r} "
                f"(recipient ids found: {found}); name the recipient with --recipient-id",
                column="recipient_id")
        if isinstance(abs_, KirmatchError):
            raise abs_
    from kirmatch.dsa import parse_flow_crossmatch

    flow = parse_flow_crossmatch(flow_crossmatch)
    res = assess_pair(r, d, opts, tables=tables, antibodies=abs_, pyard=_backend(),
                      flow_crossmatch=flow)
    if json_out:
        emit_json(res.to_dict())
    else:
        typer.echo(fit(render_pair(res, r, d, tables, opts), terminal_width()))


# ---------------------------------------------------------------------------
# kirmatch data
# ---------------------------------------------------------------------------

DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", file_okay=False, help="The py-ard database folder (default: "
    "$KIRMATCH_PYARD_DIR, else the user cache folder; see `kirmatch data status`).")]


@data_app.command("status")
@handle_errors
def data_status(
    data_dir: DataDirOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the py-ard database: release, path, whether MAC codes are loaded."""
    from kirmatch.pyard_backend import status

    st = status(data_dir)
    if json_out:
        emit_json(st.to_dict())
        return
    typer.echo(f"py-ard {st.pyard_version or '(not installed)'}; IPD-IMGT/HLA release "
               f"{st.imgt_version}")
    typer.echo(f"database: {st.database} "
               f"({'ready' if st.database_ready else 'NOT BUILT'}, {st.size_bytes:,} bytes)")
    typer.echo(f"MAC codes loaded: {'yes' if st.mac_loaded else 'no'}")
    if st.database_ready and not st.built_by_kirmatch:
        typer.echo("this database was not built by kirmatch: opening it would make py-ard "
                   "download files at run time, so kirmatch will not open it; rebuild it with "
                   "`kirmatch data build` (or `--imgt-mirror DIR` offline)")
    if not st.database_ready:
        typer.echo("build it with `kirmatch data build` (online) or "
                   "`kirmatch data build --imgt-mirror DIR` (air-gapped)")


@data_app.command("build")
@handle_errors
def data_build(
    data_dir: DataDirOpt = None,
    imgt_mirror: Annotated[Path | None, typer.Option(
        "--imgt-mirror", help="Local copy of the IPD-IMGT/HLA files (air-gapped sites).",
        exists=True, file_okay=False)] = None,
    mac_file: Annotated[Path | None, typer.Option(
        "--mac-file", help="Local NMDP numer.v3.zip to load MAC codes from.",
        exists=True, dir_okay=False)] = None,
) -> None:
    """Build the py-ard database for IPD-IMGT/HLA 3.58.0 (online, or from a mirror)."""
    import time

    from kirmatch.pyard_backend import build_database

    t0 = time.perf_counter()
    st = build_database(data_dir, imgt_mirror=imgt_mirror, mac_file=mac_file)
    typer.echo(f"built {st.database} ({st.size_bytes:,} bytes, MAC codes "
               f"{'loaded' if st.mac_loaded else 'not loaded'}) in "
               f"{time.perf_counter() - t0:.1f} s")


def _register_optional() -> None:
    """Commands that live in their own modules (batch, rank, convert, persons)."""
    import importlib

    for name in ("batch_cmd", "rank_cmd", "convert_cmd", "persons_cmd"):
        try:
            mod = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(name):
                continue
            raise
        mod.register(app, handle_errors)


_register_optional()


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KirmatchError as exc:  # pragma: no cover - commands handle their own
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
