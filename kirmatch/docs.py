"""The rules reference and the documentation tables, generated from the code.

``docs/rules.md`` is :func:`rules_reference`: every model of the registry
(:mod:`kirmatch.registry`) with what it computes, what it reads, its output
columns and their meanings, its options, its formula and missing-data
behaviour (from the docstring of the function the model names in
``Model.doc``), its citation, a table of worked pairs computed by kirmatch when
the reference is generated, and the tested examples of its docstring. Then the
per-person table, the options, the warning, reason and error codes, and every
output column.

``README.md`` and ``docs/guide.md`` hold generated blocks between
``<!-- generated: NAME -->`` and ``<!-- end generated -->``; :func:`fill_blocks`
rewrites them from :data:`BLOCKS`.

Command line (from the project folder)::

    python -m kirmatch.docs            # print the rules reference
    python -m kirmatch.docs --write    # rewrite docs/rules.md and the generated blocks
    python -m kirmatch.docs --check    # exit 1, naming the stale files

``tests/test_docs.py`` fails when a committed file differs from what the code
generates now.

>>> print(markdown_table(["a", "b"], [["x|y", "1"]]))
| a | b |
|---|---|
| x\\|y | 1 |
>>> clean("Rule 8 (DOMAIN.md §A.9): see :func:`cf_ikir` and ``B-C1``.")
'Rule 8: see `cf_ikir` and `B-C1`.'
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["BLOCKS", "DocParts", "clean", "columns_table", "doc_parts", "fill_blocks",
           "main", "markdown_table", "rules_reference"]

# ---------------------------------------------------------------------------
# Docstrings
# ---------------------------------------------------------------------------

_ROLE = re.compile(r":(?:func|data|class|mod|attr|meth|obj):`~?([\w.]+)`")
_PAREN_REF = re.compile(r"\s*\([^()]*(?:DOMAIN\.md|§)[^()]*\)")
_DOMAIN_REF = re.compile(r"[;,]?\s*DOMAIN\.md(?:\s*(?:rules? [\d\-, and]+|§[A-Z]?[\d.]*))?")
_SECTION_REF = re.compile(r"[;,]?\s*§[A-Z]\.?\d*(?:\.\d+)?")


def clean(text: str) -> str:
    """A docstring's words as Markdown, without references to documents users do
    not have (the project's internal rule book) and with reST roles as code."""
    text = _ROLE.sub(lambda m: f"``{m.group(1).rsplit('.', 1)[-1]}``", text)
    text = _PAREN_REF.sub("", text)
    text = _DOMAIN_REF.sub("", text)
    text = _SECTION_REF.sub("", text)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    return re.sub(r"[ \t]+", " ", text).strip()


@dataclass
class DocParts:
    """A docstring cut into what the reference shows."""

    name: str
    summary: str = ""
    body: list[str] = field(default_factory=list)
    formula: str = ""
    missing: str = ""
    examples: list[str] = field(default_factory=list)


_SKIP_SECTIONS = {"Raises", "Parameters", "Returns", "Yields", "See Also", "Attributes"}


def _is_citation(paragraph: str) -> bool:
    return bool(re.search(r"\bdoi:|\bPMID\b", paragraph)) or bool(
        re.match(r"^[A-Z][a-zA-Z'\-]+ [A-Z]{1,3}(?:,| et al)", paragraph))


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:]


def doc_parts(obj: Any) -> DocParts:
    """Summary, other paragraphs, ``Formula:``, ``Missing data:`` and doctest
    examples of ``obj``'s docstring (numpydoc sections other than examples are
    left out; so are citation paragraphs: the registry holds the citation)."""
    name = getattr(obj, "__name__", str(obj)).rsplit(".", 1)[-1]
    parts = DocParts(name)
    lines = (inspect.getdoc(obj) or "").splitlines()
    paragraphs: list[tuple[str, list[str]]] = []   # (kind, lines)
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1].strip()) and line.strip():
            section = line.strip()
            i += 2
            continue
        if not line.strip():
            i += 1
            continue
        if line.lstrip().startswith(">>>"):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i].strip() if lines[i].lstrip().startswith(
                    (">>>", "...")) else lines[i])
                i += 1
            paragraphs.append(("example", block))
            continue
        block = []
        while i < len(lines) and lines[i].strip() and not lines[i].lstrip().startswith(">>>"):
            block.append(lines[i])
            i += 1
        if section not in _SKIP_SECTIONS:
            paragraphs.append(("text" if not block[0].lstrip().startswith("=") else "table",
                               block))
    for kind, block in paragraphs:
        if kind == "example":
            parts.examples.append("\n".join(block))
            continue
        if kind == "table":
            continue  # reST tables: the reference has its own
        text = clean(" ".join(x.strip() for x in block))
        if not parts.summary:
            parts.summary = text
        elif text.startswith("Formula:"):
            parts.formula = _sentence(text.removeprefix("Formula:"))
        elif text.startswith("Missing data:"):
            parts.missing = _sentence(text.removeprefix("Missing data:"))
        elif not _is_citation(text) and text:
            parts.body.append(text)
    return parts


# ---------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------

def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub Markdown table (``|`` in a cell escaped)."""
    out = ["| " + " | ".join(_cell(h) for h in headers) + " |",
           "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _code(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


# ---------------------------------------------------------------------------
# Worked pairs: the example data of the project (examples/), computed here
# ---------------------------------------------------------------------------

#: Persons of ``examples/genotypes.csv`` used as worked examples (the tests check
#: that they are the same): id -> (HLA, KIR).
WORKED_PEOPLE: dict[str, tuple[str, str]] = {
    "R1": ("A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01", ""),
    "D1": ("A*02:01+A*11:01^B*07:02+B*35:01^C*07:02+C*04:01",
           "KIR2DL1*002+KIR2DL1*003+KIR2DL3+KIR2DL4+KIR2DS4+KIR3DL1*001+KIR3DL1*002+KIR3DL2+"
           "KIR3DL3"),
    "R2": ("A*01:01+A*02:01^B*08:01+B*15:01^C*07:01+C*03:04",
           "KIR2DL1+KIR2DL3+KIR2DL4+KIR2DS4+KIR3DL1+KIR3DL2+KIR3DL3"),
    "D2": ("A*01:01+A*03:01^B*08:01+B*57:01^C*07:01+C*06:02",
           "KIR2DL1*004+KIR2DL1*004+KIR2DL2+KIR2DL4+KIR2DL5+KIR2DS1+KIR2DS2+KIR2DS4+"
           "KIR3DL1*005+KIR3DS1*013+KIR3DL2+KIR3DL3"),
    "P3": ("A*01:01+A*02:01^B*08:01+B*44:02^C*07:01+C*05:01^DRB1*03:01+DRB1*04:01^"
           "DQB1*02:01+DQB1*03:02^DPB1*04:01+DPB1*02:01",
           "KIR2DL1+KIR2DL3+KIR3DL1+KIR2DS4+KIR2DL4+KIR3DL2+KIR3DL3"),
    "P3-mother": ("A*02:01+A*24:02^B*44:02+B*35:01^C*05:01+C*04:01^DRB1*04:01+DRB1*11:01^"
                  "DQB1*03:02+DQB1*03:01^DPB1*02:01+DPB1*09:01",
                  "KIR2DL1+KIR2DL3+KIR3DL1+KIR2DS4+KIR2DL4+KIR3DL2+KIR3DL3"),
}
#: Antibodies of ``examples/antibodies.csv``: recipient -> (specificity, MFI, C1q).
WORKED_ANTIBODIES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "R1": (("A*11:01", "3200", "neg"), ("B57", "9000", "neg")),
    "R2": (("B57", "14500", "pos"), ("A3", "2100", "neg"), ("B44", "3000", "neg")),
    "P3": (("B7", "12500", "pos"), ("A3", "6000", "neg"), ("DPB1*09:01", "1500", "neg"),
           ("DR52", "800", "")),
}
#: The worked pairs (recipient, donor).
WORKED_PAIRS = (("R1", "D1"), ("R2", "D2"), ("P3", "P3-mother"))


@dataclass
class _Worked:
    """Cells of the worked pairs and people, and which cells are unknown."""

    pairs: dict[tuple[str, str], dict[str, Any]]
    persons: dict[str, dict[str, str]]
    unknown: dict[str, frozenset[str]] = field(default_factory=dict)  # row label -> columns

    def cell(self, row: str, values: dict[str, Any], column: str) -> str:
        """A cell as the reference shows it: *unknown*, – (empty: none), or the value."""
        if column in self.unknown.get(row, frozenset()):
            return "*unknown*"
        value = values[column]
        return "–" if value in ("", None) else str(value)


def _worked() -> _Worked:
    """Every pair column of the worked pairs and every person column of their
    people, computed with the default options."""
    import pandas as pd

    from kirmatch.dsa import parse_antibody
    from kirmatch.pair import assess_pair, make_person
    from kirmatch.persons import assess_persons
    from kirmatch.tables import load_reference_tables

    tables = load_reference_tables()
    people = {pid: make_person(pid, hla, kir or None, tables=tables)
              for pid, (hla, kir) in WORKED_PEOPLE.items()}
    pairs, unknown = {}, {}
    for r, d in WORKED_PAIRS:
        abs_ = [parse_antibody(s, m, c or None, tables=tables)
                for s, m, c in WORKED_ANTIBODIES.get(r, ())]
        res = assess_pair(people[r], people[d], tables=tables, antibodies=abs_)
        pairs[(r, d)] = res.to_row()
        unknown[_pair_label(r, d)] = frozenset(res.unknown)
    frame = pd.DataFrame([{"sample_id": pid, "hla": hla, "kir": kir}
                          for pid, (hla, kir) in WORKED_PEOPLE.items()])
    table = assess_persons(frame, tables=tables)
    persons = {row["sample_id"]: row for row in table.to_dict("records")}
    for pid, row in persons.items():
        unknown[pid] = frozenset(re.findall(r"unknown\((\w+):", row["warnings"]))
    return _Worked(pairs, persons, unknown)


# ---------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------

@dataclass
class _Group:
    """Models documented together (recipient and donor sides, per-locus models)."""

    key: str
    models: list[Any]

    @property
    def first(self) -> Any:
        return self.models[0]

    @property
    def columns(self) -> list[str]:
        return [c for m in self.models for c in m.columns]


def _group_key(model: Any) -> str:
    from kirmatch.hlamatch import MATCH_LOCI

    name = re.sub(r"^(recipient|donor)_(?=(c_group|b_class|ligands|b_leader)$)", "", model.name)
    if name.startswith("hla_mm_") and name.removeprefix("hla_mm_") in MATCH_LOCI:
        return "hla_mm_<locus>"
    return name


def _groups(models: Iterable[Any]) -> list[_Group]:
    out: dict[str, _Group] = {}
    for m in models:
        out.setdefault(_group_key(m), _Group(_group_key(m), [])).models.append(m)
    return list(out.values())


def _pair_models() -> list[Any]:
    """The pair-table models in output-column order, the DSA model in its place."""
    from kirmatch.registry import COLUMNS, DSA_MODEL, model_of

    seen: dict[str, Any] = {}
    for c in COLUMNS:
        m = model_of(c)
        seen.setdefault(m.name, m)
    assert DSA_MODEL.name in seen
    return list(seen.values())


_SCOPES = {"pair": "the pair (recipient and donor)", "recipient": "the recipient",
           "donor": "the donor", "person": "one person"}


def _reads(model: Any, *, roles: bool = False) -> str:
    """What ``model`` reads, in words (``roles``: the recipient and donor models of a
    group, each reading its own person)."""
    from kirmatch.registry import FACTS, PAIR_FACTS

    if not model.inputs:
        return ("the recipient's antibodies (`--antibodies`), the donor's HLA typing and the "
                "pair's flow crossmatch")
    items = []
    loci = [PAIR_FACTS[f].fact.removeprefix("hla_") for r, f in model.inputs if r == "pair"]
    if loci:
        items.append(f"the recipient's and the donor's HLA-{', HLA-'.join(loci)} compared at "
                     "antigen-recognition-site identity (mismatches in each direction, and "
                     "whether an allele is shared)")
    for role, fact in dict.fromkeys(model.inputs):
        if role == "pair":
            continue
        who = "each person" if roles or role == "person" else f"the {role}"
        items.append(f"{who}'s `{fact}` ({clean(FACTS[fact].doc)})")
    return "; ".join(items)


_DEFAULT_MISSING = ("An input that is unknown makes the columns unknown, with the reason, "
                    "unless every value it could take gives the same result.")


def _model_section(group: _Group, worked: _Worked, *, level: str = "###") -> list[str]:
    from kirmatch.hlamatch import MATCH_LOCI, OPTIONAL_LOCI

    m = group.first
    docs = [doc_parts(d) for d in m.doc]
    title = _code(dict.fromkeys(group.columns)) if group.key != "hla_mm_<locus>" else \
        "`hla_mm_gvh_<locus>`, `hla_mm_hvg_<locus>`"
    out = [f"{level} Rule {m.rule}: {title}", ""]
    if docs and docs[0].summary:
        out += [docs[0].summary, ""]
    scope = " and ".join(_SCOPES[x.scope] for x in group.models
                         if x.scope != group.models[0].scope) or _SCOPES[m.scope]
    if len({x.scope for x in group.models}) > 1:
        scope = "the recipient (`recipient_…`) and the donor (`donor_…`), each on its own"
    reads = _reads(m, roles=len(group.models) > 1)
    if group.key == "hla_mm_<locus>":
        reads = reads.replace(f"HLA-{m.name.rsplit('_', 1)[-1]} ", "HLA-<locus> ")
    out += [f"**Computed for** {scope}. **Reads** {reads}.", ""]
    if group.key == "hla_mm_<locus>":
        loci = [loc for loc in MATCH_LOCI]
        out += [f"**Loci:** {', '.join(loci)}; {', '.join(OPTIONAL_LOCI)} only when both "
                "persons are typed there (otherwise empty, without a warning).", ""]
        meaning = {k.replace(f"_{m.name.rsplit('_', 1)[-1]}", "_<locus>"): v.replace(
            f"HLA-{m.name.rsplit('_', 1)[-1]}", "HLA-<locus>") for k, v in m.meaning.items()}
    else:
        meaning = {c: x.meaning.get(c, "") for x in group.models for c in x.columns}
    out += [markdown_table(["Column", "Meaning"],
                           [[f"`{c}`", clean(t)] for c, t in meaning.items()]), ""]
    if m.options:
        out += [f"**Options:** {_code(m.options)} (see [Options](#options)).", ""]
    for parts in docs:
        label = f" (`{parts.name}`)" if len(docs) > 1 else ""
        if len(docs) > 1 and parts.summary and parts is not docs[0]:
            out += [f"**`{parts.name}`:** {parts.summary}", ""]
        for para in parts.body:
            out += [para, ""]
        if parts.formula:
            out += [f"**Formula{label}.** {parts.formula}", ""]
        if parts.missing:
            out += [f"**Missing data{label}.** {parts.missing}", ""]
    if not any(p.missing for p in docs):
        out += [f"**Missing data.** {_DEFAULT_MISSING}", ""]
    genes = sorted({g for x in group.models for g in x.allele_gene.values()})
    if genes:
        out += [f"**Allele-level KIR.** Needs the donor's {', '.join(genes)} alleles; with a "
                "gene-level typing the value is unknown (`gene_level_kir`) unless every "
                "allele would give the same answer.", ""]
    for x in group.models:
        for col, values in x.value_warnings.items():
            for value, warning in values.items():
                out += [f"**Warning.** `{col}` = `{value}` adds the warning `{warning}`.", ""]
    out += [f"**Citation.** {clean(m.citation)}", ""]
    out += _worked_table(group, worked)
    examples = [e for p in docs for e in p.examples]
    if examples:
        out += ["Examples (tested with the code):", "", "```python", *examples, "```", ""]
    return out


def _pair_label(r: str, d: str) -> str:
    return f"{r} ← {d}"


def _worked_table(group: _Group, worked: _Worked) -> list[str]:
    from kirmatch.hlamatch import MATCH_LOCI

    head = ["Worked pairs (`examples/`, default options; computed by kirmatch; – = none):", ""]
    if group.key == "hla_mm_<locus>":
        loci = MATCH_LOCI[:6]  # the others are typed in none of the worked pairs
        rows = [[_pair_label(r, d), *(
            f"{worked.cell(_pair_label(r, d), v, f'hla_mm_gvh_{loc}')} / "
            f"{worked.cell(_pair_label(r, d), v, f'hla_mm_hvg_{loc}')}" for loc in loci)]
            for (r, d), v in worked.pairs.items()]
        return [*head, "GvH / HvG per locus:", "",
                markdown_table(["Pair", *loci], rows), ""]
    cols = list(dict.fromkeys(group.columns))
    rows = [[_pair_label(r, d), *(worked.cell(_pair_label(r, d), v, c) for c in cols)]
            for (r, d), v in worked.pairs.items()]
    return [*head, markdown_table(["Pair", *(f"`{c}`" for c in cols)], rows), ""]


def _dsa_tiers() -> list[str]:
    from kirmatch.dsa import TIERS
    from kirmatch.options import DSA_THRESHOLDS, Options

    o = Options()
    rows = [["none", "below `dsa_low_mfi`"]]
    for tier, name in zip(TIERS[1:], DSA_THRESHOLDS, strict=True):
        rows.append([tier, f"`{name}` = {getattr(o, name):,.0f} MFI or more"
                     + (", or C1q-positive, or a positive flow crossmatch"
                        if tier == "high" else "")])
    return ["Tiers of one antibody (the highest that applies; default thresholds):", "",
            markdown_table(["Tier", "From"], rows), ""]


def _person_section(worked: _Worked) -> list[str]:
    from kirmatch.registry import PERSON_COLUMNS, PERSON_MODELS

    out = ["## The per-person table (rule 18)", "",
           "`kirmatch persons` (and `kirmatch.assess_persons`) writes one row per person of a "
           "genotypes table, in input order: the person-level facts the pair models read, "
           "computed by the same engine. Columns `sample_id`, `status`, `error` and "
           "`warnings` as in the pair table, then:", ""]
    for group in _groups(PERSON_MODELS):
        m = group.first
        docs = [doc_parts(d) for d in m.doc]
        out += [f"### Rule {m.rule}: {_code(group.columns)}", ""]
        if docs and docs[0].summary:
            out += [docs[0].summary, ""]
        out += [f"**Reads** {_reads(m)}.", ""]
        out += [markdown_table(["Column", "Meaning"],
                               [[f"`{c}`", clean(m.meaning.get(c, ""))] for c in m.columns]), ""]
        if m.options:
            out += [f"**Options:** {_code(m.options)}.", ""]
        formulas = [p for p in docs if p.formula]
        for p in formulas:
            out += ["**Formula" + (f" (`{p.name}`)" if len(docs) > 1 else "")
                    + f".** {p.formula}", ""]
        out += [f"**Citation.** {clean(m.citation)}", ""]
    people = list(worked.persons)
    cols = [c for c in PERSON_COLUMNS if c not in ("sample_id", "status", "error", "warnings")]
    out += ["Worked people (`examples/`, default options; computed by kirmatch; – = none):",
            "",
            markdown_table(["Column", *people],
                           [[f"`{c}`", *(worked.cell(p, worked.persons[p], c) for p in people)]
                            for c in cols]), ""]
    return out


#: What the options that no model lists change.
_OPTION_SCOPE = {
    "ambiguity_policy": "every column read from an ambiguous HLA typing",
    "ranking_policy": "`rank`, `rank_reason`",
    "kirimp_min_posterior": "reading KIR*IMP files (`convert`, `--kir`)",
    "t1k_min_quality": "reading T1K files (`convert`, `--kir`)",
    "hlaimp_min_posterior": "reading HLA*IMP:03 files (`convert`, `--hla`)",
}


def _options_section() -> list[str]:
    from kirmatch.options import OPTION_HELP, Options, option_flag
    from kirmatch.registry import DSA_MODEL, MODELS, PERSON_MODELS

    users: dict[str, list[str]] = {}
    for m in (*MODELS, DSA_MODEL, *PERSON_MODELS):
        for o in m.options:
            users.setdefault(o, [])
            for c in m.columns:
                if c not in users[o]:
                    users[o].append(c)
    rows = []
    for f in fields(Options):
        default = f.default
        shown = (", ".join(f"{x:g}" for x in default) if isinstance(default, tuple)
                 else f"{default:g}" if isinstance(default, float) else
                 str(default).lower() if isinstance(default, bool) else str(default))
        used = users.get(f.name, [])
        rows.append([f"`{f.name}`", f"`{option_flag(f.name)}`", f"`{shown}`",
                     OPTION_HELP[f.name],
                     (_code(used[:4]) + (f" and {len(used) - 4} more" if len(used) > 4
                                         else "")) if used else _OPTION_SCOPE[f.name]])
    return ["## Options", "",
            "Every option is recorded with the results (`options` in JSON, the run record "
            "`OUTPUT.provenance.json`). API name (`kirmatch.Options`), command-line flag, "
            "default:", "",
            markdown_table(["Option", "Flag", "Default", "Meaning", "Changes"], rows), ""]


def _codes_section() -> list[str]:
    from kirmatch.errors import ERROR_CODES
    from kirmatch.report import REASON_WORDS, WARNING_WORDS

    return [
        "## Warnings, unknown reasons and error codes", "",
        "The `warnings` column lists codes separated by `;`, each `code(detail)`. "
        "`unknown(<column>: <reason>)` says that a column is empty because of that reason.",
        "", "### Warnings", "",
        markdown_table(["Code", "Means"], [
            [f"`{k}(<detail>)`" if "{0}" in v else f"`{k}`", v.replace("{0}", "<detail>")]
            for k, v in WARNING_WORDS.items()]), "",
        "### Reasons of unknown values", "",
        markdown_table(["Reason", "Means"], [[f"`{k}`", v] for k, v in REASON_WORDS.items()]),
        "", "### Error codes", "",
        "A row that cannot be computed has `status` = `error` and `error` = `code: message`:",
        "", markdown_table(["Code", "Means"], [[f"`{k}`", v] for k, v in ERROR_CODES.items()]),
        ""]


#: The columns every row has, and the ranking columns, in words.
ROW_COLUMNS = {
    "recipient_id": "the recipient's id, from the pairs table",
    "donor_id": "the donor's id, from the pairs table",
    "status": "`ok`, or `error` when the row could not be computed",
    "error": "`code: message` when `status` is `error` (see error codes)",
    "warnings": "warning codes separated by `;` (see warnings)",
}
RANK_COLUMNS_MEANING = {
    "rank": "the donor's place for this recipient (1 = first; empty for an error row)",
    "rank_reason": "the first criterion on which the donor differs from the one ranked above "
                   "(`top` for the first)",
}


def columns_table(*, short: bool = False) -> str:
    """Every output column of the pair table (``kirmatch pair --json``, ``batch``,
    ``rank --output``) with its rule and meaning; ``short``: one row per model."""
    from kirmatch.hlamatch import MATCH_LOCI
    from kirmatch.pair import CONTRACT_COLUMNS, RANK_COLUMNS
    from kirmatch.registry import model_of

    if not short:
        rows = [[f"`{c}`", "", ROW_COLUMNS[c]] for c in ROW_COLUMNS]
        for c in CONTRACT_COLUMNS[len(ROW_COLUMNS):]:
            m = model_of(c)
            rows.append([f"`{c}`", m.rule, clean(m.meaning.get(c, ""))])
        rows += [[f"`{c}`", "14", RANK_COLUMNS_MEANING[c]] for c in RANK_COLUMNS]
        return markdown_table(["Column", "Rule", "Meaning"], rows)
    rows = [[_code(ROW_COLUMNS), "", "ids from the pairs table; `status` ok or error, `error` "
             "`code: message`, `warnings` codes separated by `;`"]]
    for group in _groups(_pair_models()):
        m = group.first
        if group.key == "hla_mm_<locus>":
            names = "`hla_mm_gvh_<locus>`, `hla_mm_hvg_<locus>`"
            text = (f"the same per locus (0-2): {', '.join(MATCH_LOCI)}")
        elif len(group.models) > 1:  # the recipient's and the donor's, each on its own
            names = _code(dict.fromkeys(group.columns))
            first = clean(m.meaning[m.columns[0]])
            text = re.sub(r"^(the recipient's|recipient)\b", "each person's", first)
        else:
            names = _code(dict.fromkeys(group.columns))
            meanings = [clean(x.meaning[c]) for x in group.models for c in x.columns]
            text = meanings[0] if len(set(meanings)) == 1 or len(meanings) == 1 else \
                "; ".join(f"`{c}`: {t}" for c, t in zip(group.columns, meanings, strict=True))
        rows.append([names, m.rule, text])
    rows.append([_code(RANK_COLUMNS), "14", "`kirmatch rank` only: " + "; ".join(
        f"`{c}`: {t}" for c, t in RANK_COLUMNS_MEANING.items())])
    return markdown_table(["Columns", "Rule", "Meaning"], rows)


def rules_reference() -> str:
    """The whole rules reference (``docs/rules.md``) as Markdown."""
    from kirmatch.options import RULES_VERSION
    from kirmatch.tables import load_reference_tables

    tables = load_reference_tables()
    worked = _worked()
    groups = _groups(_pair_models())
    out = [
        "# kirmatch rules reference", "",
        "<!-- Generated from the code by `python -m kirmatch.docs --write`: do not edit by "
        "hand. tests/test_docs.py fails when this file is stale. -->", "",
        f"{RULES_VERSION}, reference tables IPD-IMGT/HLA {tables.hla_release} and IPD-KIR "
        f"{tables.kir_release}. Research and decision support, not a medical device.", "",
        "Each model below is one entry of kirmatch's model registry (`kirmatch/registry.py`) "
        "and one pure function; this page is generated from them, so it says what the code "
        "does. Rule numbers are kirmatch's own. The [user guide](guide.md) explains the "
        "commands and the input formats.", "",
        "## How to read this reference", "",
        "* **Facts.** A model reads *facts* of the recipient, the donor or both: the HLA-C "
        "group, the ligand set, the KIR genes present, a KIR3DL1 class… Each fact is "
        "computed once per distinct typing.",
        "* **Unknown is not absent.** A fact that cannot be decided (an untyped locus, an "
        "ambiguous typing, a gene-level KIR typing where alleles matter) is carried as every "
        "value it could take. A model's column gets a value only when all of them give the "
        "same answer; otherwise it is empty and the row's `warnings` say why, as "
        "`unknown(<column>: <reason>)`.",
        "* **Options** change some models; every option is recorded with the results.",
        "* **Worked pairs** are computed from the example data in `examples/` when this page "
        "is generated; the **examples** are the tested examples of each function.", "",
        "## Contents", "",
        markdown_table(["Rule", "Columns", "Computed for"],
                       [[g.first.rule, f"[{_code(list(dict.fromkeys(g.columns))[:3])}"
                         f"{' …' if len(g.columns) > 3 else ''}](#{_anchor(g)})",
                         ", ".join(dict.fromkeys(x.scope for x in g.models))]
                        for g in groups]), "",
        "Also: [the per-person table](#the-per-person-table-rule-18), [options](#options), "
        "[warnings, unknown reasons and error codes]"
        "(#warnings-unknown-reasons-and-error-codes), [all output columns](#output-columns).",
        "", "## The pair models", ""]
    for g in groups:
        out += _model_section(g, worked)
        if g.first.name == "dsa":
            out += _dsa_tiers()
    out += _person_section(worked)
    out += _options_section()
    out += _codes_section()
    out += ["## Output columns", "",
            "The pair table, in output order (`kirmatch pair --json`, `kirmatch batch`, "
            "`kirmatch rank --output`):", "", columns_table(), ""]
    return "\n".join(out).rstrip() + "\n"


def _anchor(group: _Group) -> str:
    """GitHub's anchor of a model section's heading."""
    m = group.first
    title = (f"Rule {m.rule}: " + (", ".join(dict.fromkeys(group.columns))
                                   if group.key != "hla_mm_<locus>"
                                   else "hla_mm_gvh_<locus>, hla_mm_hvg_<locus>"))
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


# ---------------------------------------------------------------------------
# Generated blocks of README.md and docs/guide.md
# ---------------------------------------------------------------------------

def _exit_codes() -> str:
    from kirmatch.cli.help import EXIT_CODES

    return markdown_table(["Code", "Meaning"], [[str(c), m] for c, m in EXIT_CODES])


def _commands() -> str:
    from kirmatch.cli.help import COMMANDS

    rows = [[f"`kirmatch {path}`", entry.summary,
             "<br>".join(f"`{line}`" for _, line in entry.examples[:1])]
            for path, entry in COMMANDS.items() if path and " " not in path and path != "data"]
    rows += [[f"`kirmatch {path}`", entry.summary,
              "<br>".join(f"`{line}`" for _, line in entry.examples[:1])]
             for path, entry in COMMANDS.items() if " " in path]
    return markdown_table(["Command", "What it does", "Example"], rows)


def _forms(items: Iterable[Any]) -> str:
    return markdown_table(["Form", "Example", "Meaning"],
                          [[f.name, f"`{f.example}`", f.meaning] for f in items])


def _columns(items: Iterable[Any]) -> str:
    return markdown_table(["Column", "Meaning", "Values"],
                          [[f"`{c.name}`" + (" (required)" if c.required else ""), c.meaning,
                            c.values] for c in items])


def _formats(name: str) -> Callable[[], str]:
    def block() -> str:
        from kirmatch import formats

        if name in ("HLA_TYPING", "KIR_TYPING", "ANTIBODY_FORMS"):
            return _forms(getattr(formats, name))
        return _columns(formats.INPUT_TABLES[name])
    return block


def _policies() -> str:
    from kirmatch.ranking import BUILTIN_POLICIES, builtin_policy

    rows = []
    for name in BUILTIN_POLICIES:
        pol = builtin_policy(name)
        crit = [f"`{c}`" + (f" (bands at {', '.join(f'{b:g}' for b in pol.bands[c])})"
                            if c in pol.bands else "") for c in pol.criteria]
        rows.append([f"`{name}`" + (" (default)" if name == "kir-first" else ""),
                     " → ".join(crit)])
    return markdown_table(["Policy", "Criteria, in order"], rows)


def _options_block() -> str:
    return "\n".join(_options_section()[4:]).strip()


#: Generated blocks by name: ``<!-- generated: NAME -->`` … ``<!-- end generated -->``.
BLOCKS: dict[str, Callable[[], str]] = {
    "columns": lambda: columns_table(short=True),
    "exit-codes": _exit_codes,
    "commands": _commands,
    "hla-typing": _formats("HLA_TYPING"),
    "kir-typing": _formats("KIR_TYPING"),
    "antibody-specificities": _formats("ANTIBODY_FORMS"),
    "genotypes-columns": _formats("genotypes"),
    "pairs-columns": _formats("pairs"),
    "antibodies-columns": _formats("antibodies"),
    "options": _options_block,
    "policies": _policies,
}

_BLOCK = re.compile(r"(<!-- generated: ([\w-]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def fill_blocks(text: str) -> str:
    """``text`` with every generated block rewritten from :data:`BLOCKS`.

    >>> fill_blocks("a\\n<!-- generated: exit-codes -->\\nold\\n<!-- end generated -->\\n")[:41]
    'a\\n<!-- generated: exit-codes -->\\n| Code |'
    """
    def one(m: re.Match[str]) -> str:
        name = m.group(2)
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r} (known: {', '.join(BLOCKS)})")
        return f"{m.group(1)}{BLOCKS[name]()}\n{m.group(4)}"
    return _BLOCK.sub(one, text)


#: The files generated or filled, relative to the project folder.
RULES_FILE = Path("docs/rules.md")
FILLED_FILES = (Path("README.md"), Path("docs/guide.md"))


def generated(root: Path) -> dict[Path, str]:
    """What each generated file of the project at ``root`` should hold."""
    out = {root / RULES_FILE: rules_reference()}
    for rel in FILLED_FILES:
        path = root / rel
        out[path] = fill_blocks(path.read_text(encoding="utf-8"))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m kirmatch.docs [--write | --check] [ROOT]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m kirmatch.docs",
                                 description="Print or regenerate kirmatch's generated docs.")
    ap.add_argument("root", nargs="?", type=Path, default=Path.cwd(),
                    help="the project folder (default: the current folder)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite docs/rules.md and the "
                      "generated blocks of README.md and docs/guide.md")
    mode.add_argument("--check", action="store_true", help="exit 1 if any is stale")
    args = ap.parse_args(argv)
    if not (args.write or args.check):
        sys.stdout.write(rules_reference())
        return 0
    stale = []
    for path, text in generated(args.root).items():
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old == text:
            continue
        stale.append(path)
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "rewrote" if args.write else "stale"
    for path in stale:
        print(f"{verb}: {path}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
