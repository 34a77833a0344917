"""Help screens that teach: every ``kirmatch … --help`` in one layout.

Typer's own help shows a ``<bool>`` placeholder after every flag and squeezes
long option names at 80 columns. Every command of the app is therefore built
with :class:`HelpCommand` (groups with :class:`HelpGroup`; :class:`App` makes
that the default), whose help is rendered here, at the terminal's width:

* the usage line and the command's docstring;
* its options in panels (``rich_help_panel``), each name written in full
  (``--include-a3a11`` and ``--no-include-a3a11`` on two lines), a value
  placeholder only for options that take a value, ``*`` for required ones;
* then the parts declared in :data:`COMMANDS` for that command: the input
  formats it reads (from :mod:`kirmatch.formats`, the same text as the user
  guide), runnable examples on the ``examples/`` files, the exit codes and where
  the documentation is.

Nothing here parses options or runs a command.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["COMMANDS", "EXIT_CODES", "App", "CommandHelp", "HelpCommand", "HelpGroup",
           "render_help"]

#: Exit codes of every command (what :func:`cli.main.handle_errors` returns).
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success (ambiguous or unknown results are not errors)"),
    (1, "invalid input: the message names the file, row, column or value; also "
        "--strict with any status=error row"),
    (2, "usage error: a bad option or combination, or an output that would overwrite "
        "an input"),
    (3, "the system refused: disk full, no permission, read-only file system, out of "
        "memory"),
    (4, "internal error: a bug in kirmatch; please report it with the message"),
    (130, "interrupted (Ctrl-C); 143 terminated (SIGTERM), 129 hang-up (SIGHUP)"),
)

#: Where the documentation is (the last line of every help screen).
DOCS_POINTER = ("Documentation: docs/guide.md (user guide) and docs/rules.md (every model, "
                "generated from the code) in the kirmatch source; the rules reference "
                "also prints with `python -m kirmatch.docs`.")


@dataclass(frozen=True, slots=True)
class CommandHelp:
    """The teaching parts of one command's help.

    ``summary`` is its line in ``kirmatch --help``; ``inputs`` names the input
    sections shown (keys of :data:`INPUT_SECTIONS`); ``examples`` are
    ``(what it does, command line)`` pairs, run by the tests from the project
    folder.
    """

    summary: str
    examples: tuple[tuple[str, str], ...] = ()
    inputs: tuple[str, ...] = ()
    exit_codes: bool = True


_G = "-g examples/genotypes.csv"
_P = "-p examples/pairs.csv"
_A = "-a examples/antibodies.csv"
_R1 = "'A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01'"
_D1 = "'A*02:01+A*11:01^B*07:02+B*35:01^C*07:02+C*04:01'"

#: The teaching parts of every command, by command path (``""`` is ``kirmatch``).
COMMANDS: dict[str, CommandHelp] = {
    "": CommandHelp(
        "KIR/HLA NK-alloreactivity models and donor ranking",
        (("rank the example families and write a report",
          f"kirmatch rank {_G} {_P} {_A} --report report.html"),
         ("help on one command", "kirmatch rank --help")),
        exit_codes=True),
    "ligands": CommandHelp(
        "KIR-ligand call of each HLA allele and of the genotype",
        (("ligand calls of one HLA genotype", f"kirmatch ligands {_R1}"),
         ("the same as JSON, with HLA-A Bw4 left out",
          f"kirmatch ligands --json --no-hla-a-bw4 {_R1}")),
        ("hla",)),
    "pair": CommandHelp(
        "every model for one recipient-donor pair, explained",
        (("one pair, donor KIR typed at gene level",
          f"kirmatch pair --recipient-hla {_R1} --donor-hla {_D1} "
          "--donor-kir 'KIR2DL1+KIR2DL3+KIR3DL1+KIR2DS4'"),
         ("with the recipient's antibodies (R1 in the file), as JSON",
          f"kirmatch pair --recipient-hla {_R1} --donor-hla {_D1} --recipient-id R1 "
          f"{_A} --json")),
        ("hla", "kir", "antibodies", "specificity")),
    "batch": CommandHelp(
        "every model for every pair of a pairs file (millions)",
        (("all models for the example pairs, with DSA",
          f"kirmatch batch {_G} {_P} {_A} -o results.csv"),
         ("Parquet output, failed rows also in errors.csv, exit 1 if any",
          f"kirmatch batch {_G} {_P} -o results.parquet --errors errors.csv --strict")),
        ("genotypes", "pairs", "antibodies", "hla", "kir", "specificity")),
    "rank": CommandHelp(
        "rank each recipient's donors (DSA, CF-iKIR, clinical)",
        (("rank the example families; report for the team",
          f"kirmatch rank {_G} {_P} {_A} --report report.html"),
         ("the PTCy-haplo policy, every column to a spreadsheet",
          f"kirmatch rank {_G} {_P} {_A} --policy haplo-ptcy -o ranked.xlsx"),
         ("machine-readable", f"kirmatch rank {_G} {_P} --json")),
        ("genotypes", "pairs", "antibodies", "hla", "kir", "specificity")),
    "persons": CommandHelp(
        "one row per person: ligands, KIR genotype, functional iKIR",
        (("the per-person table of the example cohort",
          f"kirmatch persons {_G} -o persons.csv"),),
        ("genotypes", "hla", "kir")),
    "convert": CommandHelp(
        "genotyper and lab files to kirmatch's genotypes table",
        (("a presence/absence KIR matrix with a GL-string HLA table",
          "kirmatch convert --kir examples/kir_matrix.csv --hla examples/genotypes.csv "
          "--hla-format gl -o genotypes_converted.csv"),),
        ("hla", "kir")),
    "data": CommandHelp(
        "the py-ard database (MAC codes, v2 names)",
        (("where the database is and whether it is built", "kirmatch data status"),)),
    "data status": CommandHelp(
        "where the py-ard database is and whether it is built",
        (("show it", "kirmatch data status"),
         ("as JSON", "kirmatch data status --json"))),
    "data build": CommandHelp(
        "build the py-ard database, online or offline",
        (("from a local copy of the IPD-IMGT/HLA files (no network)",
          "kirmatch data build --imgt-mirror ../shared/imgt"),
         ("somewhere else (also set KIRMATCH_PYARD_DIR to use it)",
          "kirmatch data build --imgt-mirror ../shared/imgt --data-dir /data/pyard"))),
}

def _input_sections() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Input sections by key: (title, rows of (name, text))."""
    from kirmatch.formats import (
        ANTIBODIES_COLUMNS,
        ANTIBODY_FORMS,
        GENOTYPES_COLUMNS,
        HLA_TYPING,
        KIR_TYPING,
        PAIRS_COLUMNS,
    )

    def forms(items: Sequence[Any]) -> list[tuple[str, str]]:
        return [(f.name, f"{f.example}\n{f.meaning}") for f in items]

    def columns(items: Sequence[Any]) -> list[tuple[str, str]]:
        return [(("* " if c.required else "  ") + c.name,
                 c.meaning + (f": {c.values}" if c.values else "")) for c in items]

    return {
        "hla": ("HLA typing", forms(HLA_TYPING)),
        "kir": ("KIR typing", forms(KIR_TYPING)),
        "genotypes": ("Genotypes table (--genotypes; * = required)", columns(GENOTYPES_COLUMNS)),
        "pairs": ("Pairs table (--pairs; * = required, blank = unknown)",
                  columns(PAIRS_COLUMNS)),
        "antibodies": ("Antibodies table (--antibodies; * = required)",
                       columns(ANTIBODIES_COLUMNS)),
        "specificity": ("Antibody specificities", forms(ANTIBODY_FORMS)),
    }


# ---------------------------------------------------------------------------
# Typer classes
# ---------------------------------------------------------------------------

def _path(ctx: Any) -> str:
    """The command path without the program name: ``"data build"``, ``""`` for the root."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


class HelpCommand(TyperCommand):
    """A Typer command whose ``--help`` is :func:`render_help`."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(render_help(self, ctx))


class HelpGroup(TyperGroup):
    """A Typer group whose ``--help`` is :func:`render_help`."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(render_help(self, ctx))


class App(typer.Typer):
    """``typer.Typer`` whose commands and groups render help with this module."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", HelpGroup)
        kwargs.setdefault("context_settings", {"help_option_names": ["--help", "-h"]})
        super().__init__(**kwargs)

    def command(self, name: str | None = None, *, cls: Any = None,
                **kwargs: Any) -> Callable[[Any], Any]:
        return super().command(name, cls=cls or HelpCommand, **kwargs)


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------

#: Help is never wider than this, however wide the terminal: long lines are
#: hard to read.
MAX_WIDTH = 100


def help_width() -> int:
    """The terminal's width (``$COLUMNS`` first), at most :data:`MAX_WIDTH`."""
    return max(40, min(shutil.get_terminal_size((80, 24)).columns, MAX_WIDTH))


def _value_hint(param: Any) -> str:
    """The placeholder after an option that takes a value (``FILE``, ``NUMBER``…)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if getattr(param, "metavar", None):
        return str(param.metavar)
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:  # Typer ≥ 0.2x
        if desc.is_choice:
            return "CHOICE"
        if desc.is_path:
            return {"file": "FILE", "dir": "DIR"}.get(str(desc.path_type), "PATH")
        annotation = desc.annotation
    else:  # Click parameter types
        ptype = getattr(param, "type", None)
        if getattr(ptype, "choices", None):
            return "CHOICE"
        if type(ptype).__name__ == "Path":
            return ("DIR" if not ptype.file_okay else "FILE" if not ptype.dir_okay
                    else "PATH")
        annotation = {"integer": int, "float": float}.get(getattr(ptype, "name", ""), str)
    return {int: "INTEGER", float: "NUMBER"}.get(annotation, "TEXT")


def _choices(param: Any) -> list[str]:
    desc = getattr(param, "type_descriptor", None)
    values = (desc.choices if desc is not None and desc.is_choice else
              getattr(getattr(param, "type", None), "choices", None)) or ()
    return [str(getattr(c, "value", c)) for c in values]


def _default_text(param: Any) -> str:
    if getattr(param, "show_default", True) is False or param.required:
        return ""
    default = param.default
    if callable(default) or default is None:
        return ""
    if isinstance(default, bool):
        if not param.secondary_opts:
            return ""
        return param.opts[0] if default else param.secondary_opts[0]
    default = getattr(default, "value", default)
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def _names(param: Any) -> list[str]:
    """The option's names as help lines: long names first, then short ones on the
    first line, the ``--no-…`` names on the next, then the value placeholder."""
    if getattr(param, "param_type_name", "") == "argument":
        return [str(param.metavar or param.name.upper())]
    longs = [o for o in param.opts if o.startswith("--")]
    shorts = [o for o in param.opts if not o.startswith("--")]
    first = ", ".join(longs + shorts)
    hint = _value_hint(param)
    lines = [f"{first} {hint}" if hint else first]
    lines += list(param.secondary_opts)
    return lines


def _option_help(param: Any) -> str:
    from .options import REQUIRED_UNLESS

    text = " ".join((getattr(param, "help", None) or "").split())
    extra = []
    choices = _choices(param)
    if choices:
        extra.append(" | ".join(choices))
    default = _default_text(param)
    if default:
        extra.append(f"default: {default}")
    if param.required:
        extra.append("required")
    elif param.name in REQUIRED_UNLESS:
        extra.append(f"required unless {REQUIRED_UNLESS[param.name]}")
    return text + (f" [{'; '.join(extra)}]" if extra else "")


def _is_required(param: Any) -> bool:
    from .options import REQUIRED_UNLESS

    return bool(param.required) or param.name in REQUIRED_UNLESS


def _rows_table(rows: Sequence[tuple[str, str]], width: int, *, name_style: str = "bold cyan",
                marks: Sequence[str] | None = None) -> Any:
    """Two columns (name, text) at ``width``; the text goes under the name when the
    names would take more than 40% of the line."""
    from rich.table import Table
    from rich.text import Text

    name_w = max((len(line) for name, _ in rows for line in name.split("\n")), default=0)
    mark_w = 3 if marks and any(marks) else 0
    inner = width - 4  # panel border and padding
    table = Table.grid(padding=(0, 2), expand=True)
    if mark_w:
        table.add_column(width=1, no_wrap=True, style="red")
    if name_w + mark_w <= 0.4 * inner:
        table.add_column(width=name_w, no_wrap=True, style=name_style)
        table.add_column(ratio=1, overflow="fold")
        for i, (name, text) in enumerate(rows):
            cells = [Text(name), Text(text)]
            table.add_row(*([marks[i]] if mark_w and marks else []), *cells)
        return table
    # Stacked: names on their own lines, the text indented under them.
    from rich.console import Group
    from rich.padding import Padding

    table.add_column(ratio=1, overflow="fold")
    for i, (name, text) in enumerate(rows):
        body = Group(Text(name, style=name_style), Padding(Text(text), (0, 0, 0, 4)))
        table.add_row(*([marks[i]] if mark_w and marks else []), body)
    return table


def _panel(title: str, body: Any) -> Any:
    from rich import box
    from rich.panel import Panel

    return Panel(body, title=title, title_align="left", box=box.ROUNDED, border_style="dim",
                 padding=(0, 1))


def _param_panels(command: Any, ctx: Any, width: int) -> list[Any]:
    panels: dict[str, list[Any]] = {}
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if getattr(param, "param_type_name", "") == "argument":
            title = "Arguments"
        else:
            title = getattr(param, "rich_help_panel", None) or "Options"
        panels.setdefault(title, []).append(param)
    from .options import PAIR_PANEL

    first = ("Arguments", PAIR_PANEL, "Files", "Options")
    order = sorted(panels, key=lambda t: first.index(t) if t in first else len(first))
    out = []
    for title in order:
        params = panels[title]
        rows = [("\n".join(_names(p)), _option_help(p)) for p in params]
        marks = ["*" if _is_required(p) else "" for p in params]
        out.append(_panel(title, _rows_table(rows, width, marks=marks)))
    return out


def usage_line(command: Any, ctx: Any) -> str:
    """``Usage: kirmatch ligands [OPTIONS] HLA_TYPING``."""
    pieces = [ctx.command_path, "[OPTIONS]"]
    for param in command.get_params(ctx):
        if getattr(param, "param_type_name", "") == "argument":
            name = str(param.metavar or param.name.upper())
            pieces.append(name + ("..." if param.nargs != 1 else ""))
    if hasattr(command, "list_commands"):
        pieces.append("COMMAND [ARGS]...")
    return "Usage: " + " ".join(pieces)


def _commands_panel(group: Any, ctx: Any, width: int) -> Any:
    from rich.table import Table

    prefix = _path(ctx)
    table = Table.grid(padding=(0, 2))
    names = [n for n in group.list_commands(ctx)
             if not getattr(group.get_command(ctx, n), "hidden", False)]
    name_w = max((len(n) for n in names), default=0)
    table.add_column(width=name_w, no_wrap=True, style="bold cyan")
    table.add_column(no_wrap=True, overflow="ellipsis", max_width=max(width - name_w - 6, 10))
    for name in names:
        key = f"{prefix} {name}".strip()
        cmd = group.get_command(ctx, name)
        summary = COMMANDS[key].summary if key in COMMANDS else (
            cmd.get_short_help_str(limit=width - name_w - 6))
        table.add_row(name, summary)
    return _panel("Commands", table)


def shell_lines(command: str, width: int) -> list[str]:
    """A command line cut into shell continuation lines (`` \\``) of at most
    ``width`` characters, at spaces before options, so that it can be copied.

    >>> shell_lines("kirmatch rank -g g.csv -p p.csv --report report.html", 30)
    ['kirmatch rank -g g.csv \\', '    -p p.csv \\', '    --report report.html']
    """
    words = command.split(" ")
    lines: list[str] = []
    current = ""
    for i, word in enumerate(words):
        candidate = f"{current} {word}" if current else word
        starts_option = word.startswith("-")
        # keep an option and its value together
        if (current and starts_option and len(candidate) + _rest_len(words, i) > width - 2):
            lines.append(current + " \\")
            current = "    " + word
        else:
            current = candidate
    lines.append(current)
    return lines


def _rest_len(words: Sequence[str], i: int) -> int:
    """Length of the value that follows option ``words[i]`` (0 if none)."""
    if i + 1 < len(words) and not words[i + 1].startswith("-"):
        return 1 + len(words[i + 1])
    return 0


def _examples(entry: CommandHelp, width: int) -> Any:
    from rich.text import Text

    text = Text()
    for i, (what, line) in enumerate(entry.examples):
        if i:
            text.append("\n")
        text.append(f"# {what}\n", style="dim")
        text.append("\n".join(shell_lines(line, width - 4)), style="bold")
    return text


def render_help(command: Any, ctx: Any, width: int | None = None) -> str:
    """The help screen of ``command`` (a Click/Typer command or group) as text."""
    from rich.console import Console, Group
    from rich.padding import Padding
    from rich.text import Text

    width = width or help_width()
    out = io.StringIO()
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    console = Console(file=out, width=width, force_terminal=color, color_system="standard"
                      if color else None, highlight=False, emoji=False, soft_wrap=False)
    key = _path(ctx)
    entry = COMMANDS.get(key)
    parts: list[Any] = [Padding(Text(usage_line(command, ctx), style="bold"), (1, 1, 0, 1))]
    doc = (command.help or "").split("\f")[0].strip()
    if doc:
        paragraphs = [" ".join(p.split()) for p in doc.split("\n\n")]
        parts.append(Padding(Text("\n\n".join(paragraphs)), (1, 1, 1, 1)))
    parts.extend(_param_panels(command, ctx, width))
    if hasattr(command, "list_commands"):
        parts.append(_commands_panel(command, ctx, width))
    if entry is not None:
        sections = _input_sections()
        for name in entry.inputs:
            title, rows = sections[name]
            parts.append(_panel(title, _rows_table(rows, width, name_style="bold")))
        if entry.examples:
            parts.append(_panel("Examples (from the kirmatch source folder)",
                                _examples(entry, width)))
        if entry.exit_codes:
            parts.append(_panel("Exit codes", _rows_table(
                [(str(c), m) for c, m in EXIT_CODES], width, name_style="bold")))
    parts.append(Padding(Text(DOCS_POINTER, style="dim"), (0, 1, 1, 1)))
    console.print(Group(*parts))
    return "\n".join(line.rstrip() for line in out.getvalue().split("\n"))

