"""Help that teaches (issue 14): every ``--help`` at 80 columns shows whole option
names, no ``<bool>`` placeholder, the input formats, runnable examples and the
exit codes; every example runs; every typing example of the help parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from kirmatch.cli.help import COMMANDS, EXIT_CODES, shell_lines
from kirmatch.cli.main import app
from typer.testing import CliRunner

from kirmatch.formats import ANTIBODY_FORMS, HLA_TYPING, INPUT_TABLES, KIR_TYPING

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _commands() -> dict[str, object]:
    """Every command of the app by path ("" = kirmatch, "data build" …)."""
    out: dict[str, object] = {}

    def walk(cmd: object, path: str) -> None:
        out[path] = cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return out


COMMAND_PATHS = sorted(_commands())


def _help(path: str, columns: int = 80) -> str:
    res = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": str(columns)})
    assert res.exit_code == 0, res.output
    return res.output


def test_every_command_has_teaching_help() -> None:
    assert set(COMMAND_PATHS) == set(COMMANDS), "declare every command in cli/help.COMMANDS"
    assert len(COMMAND_PATHS) >= 10  # non-vacuous: root, 6 commands, data and its 2


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: p or "kirmatch")
def test_help_at_80_columns(path: str) -> None:
    text = _help(path)
    assert "<bool>" not in text and re.search(r"<[a-z]+>", text) is None
    assert "Examples" in text and "Exit codes" in text and "docs/guide.md" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in "".join(line for line in text.splitlines() if "--" in line)
    cmd = _commands()[path]
    for param in getattr(cmd, "params", []):
        for name in (*param.opts, *param.secondary_opts):
            if name.startswith("-"):
                assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), (path, name)
    for code, _ in EXIT_CODES:
        assert re.search(rf"^│ {code}\b", text, re.M), code


def test_root_help_lists_each_command_on_one_line() -> None:
    text = _help("")
    for name in ("ligands", "pair", "batch", "rank", "convert", "persons", "data"):
        line = next(line for line in text.splitlines() if line.startswith(f"│ {name} "))
        assert COMMANDS[name].summary in line


def test_help_shows_the_input_tables_and_required_options() -> None:
    text = _help("rank")
    for col in INPUT_TABLES["pairs"]:
        assert col.name in text
    flat = " ".join(text.replace("│", " ").split())
    assert "child, sibling, father, mother, other" in flat
    assert "[required unless --hla or --kir]" in flat
    assert re.search(r"\*\s+--pairs, -p FILE", text)
    for alias in ("-o", "-q", "-g", "-p", "-a"):
        assert re.search(rf", {alias}\b", text), alias


def test_flags_take_no_value() -> None:
    """The issue's trap: ``--json true`` read 'true' as the typing."""
    res = runner.invoke(app, ["ligands", "--json", "A*02:01+A*24:02"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["ligands", "--json", "true", "A*02:01"])
    assert res.exit_code == 2


def test_shell_lines_fit_and_join_back() -> None:
    for entry in COMMANDS.values():
        for _, line in entry.examples:
            parts = shell_lines(line, 76)
            assert all(len(p) <= 76 for p in parts), parts
            assert " ".join(p.removesuffix(" \\").strip() for p in parts) == line


def _examples() -> list[tuple[str, str]]:
    return [(path, line) for path, entry in COMMANDS.items() for _, line in entry.examples
            if not line.startswith("kirmatch data build")]  # builds take a minute


@pytest.mark.parametrize(("path", "line"), _examples(), ids=lambda v: v[:40])
def test_examples_run(path: str, line: str, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    monkeypatch.chdir(tmp_path)
    args = shlex.split(line)
    assert args[0] == "kirmatch"
    res = runner.invoke(app, args[1:])
    assert res.exit_code == 0, (line, res.output, res.stderr)


def test_typing_examples_parse(tables) -> None:
    from kirmatch.dsa import parse_specificity
    from kirmatch.hla import parse_hla_genotype
    from kirmatch.kir import parse_kir_genotype
    from kirmatch.ligands import LigandResolver
    from kirmatch.options import Options
    from kirmatch.pyard_backend import get_backend

    resolver = LigandResolver(tables, Options(), get_backend())
    for form in HLA_TYPING:
        for example in form.example.split(", "):
            if form.name == "lower resolution" and ":AB" in example:
                continue  # a MAC code: needs the py-ard database (tests/test_pyard)
            resolver.resolve_genotype(parse_hla_genotype(example), "person")
    for form in KIR_TYPING:
        parse_kir_genotype(form.example, tables)
    for form in ANTIBODY_FORMS:
        for example in form.example.split(", "):
            parse_specificity(example, tables)


def test_exit_codes_shown_are_the_ones_returned() -> None:
    codes = dict(EXIT_CODES)
    res = runner.invoke(app, ["rank", "-p", str(REPO / "examples" / "pairs.csv")])
    assert res.exit_code == 2 and "usage" in codes[2]
    assert "give --genotypes" in res.stderr  # the option help says: required unless --hla/--kir
    res = runner.invoke(app, ["ligands", "A*99:99+A*02:01"])
    assert res.exit_code == 1 and "invalid input" in codes[1]
