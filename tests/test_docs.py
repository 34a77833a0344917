"""The documentation generated from the code (issue 14): docs/rules.md and the
generated blocks of README.md and docs/guide.md are fresh, complete, in the
project's own words, and their worked data is the project's example data.

When a test here fails because the code changed, refresh the files from the
project folder with::

    python -m kirmatch.docs --write
"""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

import pytest
import typer
from kirmatch.cli.main import app

import kirmatch.errors as errors
from kirmatch import docs
from kirmatch.options import OPTION_HELP, Options, option_flag
from kirmatch.pair import CONTRACT_COLUMNS, RANK_COLUMNS
from kirmatch.registry import MODELS, PERSON_COLUMNS, PERSON_MODELS

REPO = Path(__file__).resolve().parents[1]
REFRESH = "stale: refresh it with `python -m kirmatch.docs --write` from the project folder"
#: Words for documents a user of the package does not have.
FOREIGN = re.compile(r"DOMAIN\.md|§|rule ?book|Part [AB]\b")


@pytest.fixture(scope="module")
def reference() -> str:
    return docs.rules_reference()


def test_rules_reference_is_fresh(reference: str) -> None:
    assert (REPO / "docs" / "rules.md").read_text(encoding="utf-8") == reference, REFRESH


@pytest.mark.parametrize("rel", docs.FILLED_FILES, ids=str)
def test_generated_blocks_are_fresh(rel: Path) -> None:
    text = (REPO / rel).read_text(encoding="utf-8")
    assert "<!-- generated: " in text
    assert docs.fill_blocks(text) == text, f"{rel} {REFRESH}"


def test_reference_covers_every_model_column_and_option(reference: str) -> None:
    for column in (*CONTRACT_COLUMNS, *RANK_COLUMNS, *PERSON_COLUMNS):
        assert f"`{column}`" in reference, column
    for m in (*MODELS, *PERSON_MODELS):
        assert m.citation and all(c in m.meaning for c in m.columns), m.name
    for f in dataclasses.fields(Options):
        assert f"`{f.name}`" in reference and f"`{option_flag(f.name)}`" in reference
    assert reference.count("Worked pairs") >= 20 and "```python" in reference


def test_documents_use_the_projects_own_words(reference: str) -> None:
    for name, text in (("docs/rules.md", reference),
                       *((str(p), (REPO / p).read_text(encoding="utf-8"))
                         for p in ("README.md", "docs/guide.md", "examples/README.md"))):
        found = FOREIGN.search(text)
        assert found is None, f"{name}: {found.group()!r} names a document users do not have"


def test_every_option_has_one_line_and_a_flag() -> None:
    assert set(OPTION_HELP) == {f.name for f in dataclasses.fields(Options)}
    flags = {o for cmd in _all_commands() for p in cmd.params for o in
             (*p.opts, *getattr(p, "secondary_opts", ()))}
    for name in OPTION_HELP:
        assert option_flag(name) in flags, name


def _all_commands() -> list[object]:
    out = []

    def walk(cmd: object) -> None:
        out.append(cmd)
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    return out


def test_every_error_code_is_documented() -> None:
    codes = {cls.code for cls in vars(errors).values()
             if isinstance(cls, type) and issubclass(cls, errors.KirmatchError)}
    assert codes <= set(errors.ERROR_CODES)
    assert {"person_not_found", "duplicate_person"} <= set(errors.ERROR_CODES)


def test_worked_data_is_the_example_data() -> None:
    with open(REPO / "examples" / "genotypes.csv", newline="", encoding="utf-8") as fh:
        people = {r["sample_id"]: (r["hla"], r["kir"]) for r in csv.DictReader(fh)}
    for pid, typing in docs.WORKED_PEOPLE.items():
        assert people[pid] == typing, pid
    with open(REPO / "examples" / "antibodies.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for rid, abs_ in docs.WORKED_ANTIBODIES.items():
        assert tuple((r["specificity"], r["mfi"], r["c1q"]) for r in rows
                     if r["recipient_id"] == rid) == abs_, rid


def test_check_mode_names_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    for rel in (*docs.FILLED_FILES, docs.RULES_FILE):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((REPO / rel).read_text(encoding="utf-8"), encoding="utf-8")
    assert docs.main(["--check", str(tmp_path)]) == 0
    (tmp_path / "README.md").write_text("x\n<!-- generated: columns -->\nold\n"
                                        "<!-- end generated -->\n", encoding="utf-8")
    assert docs.main(["--check", str(tmp_path)]) == 1
    assert "stale: " in capsys.readouterr().err
    assert docs.main(["--write", str(tmp_path)]) == 0
    assert docs.main(["--check", str(tmp_path)]) == 0


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_documents_resolve() -> None:
    files = [REPO / "README.md", REPO / "examples" / "README.md", REPO / "docs" / "guide.md",
             REPO / "docs" / "rules.md"]
    anchors = {f.resolve(): {_slug(h) for h in re.findall(r"^#+ (.+)$", f.read_text(
        encoding="utf-8"), re.M)} for f in files}
    checked = 0
    for f in files:
        for target in re.findall(r"\]\(([^)\s]+)\)", f.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            dest = (f.parent / path).resolve() if path else f.resolve()
            assert dest.exists(), f"{f.name}: link to missing {target}"
            if anchor:
                assert anchor in anchors[dest], f"{f.name}: no heading for #{anchor}"
            checked += 1
    assert checked >= 20
