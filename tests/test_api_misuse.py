"""Library misuse: every public entry point, every parameter, values of the wrong type.

For each entry point below and each of its parameters, one call per bad value
(``None``, an int, a float, NaN, inf, a bool, bytes, a list, a dict,
``object()``, a typing string where an object is expected, an empty string, a
10 000-character string and a non-ASCII string) is made while every other
argument is valid. A call passes when it

* returns normally, and the (entry point, parameter, value) is listed in
  ``ACCEPTED`` - a deliberate decision, not an accident (``make_person("P",
  ["A*02:01"])`` once dropped the HLA silently);
* raises a :class:`~kirmatch.errors.KirmatchError` subclass (a bad *value* of
  an accepted type; a non-blank string must be named in the message); or
* raises a :class:`TypeError` of the form ``"<param> must be <type>, not
  <type> (<repr>)"`` (a bad *type*), raised by the argument checks of
  :mod:`kirmatch.api` at the public boundary.

Anything else - ``AttributeError``, ``KeyError``, ``IndexError``, a bare
``ValueError``, ``OSError``, or a ``TypeError`` from inside such as
``'NoneType' object is not iterable`` - fails, and the test id names the call
(``assess_pair-recipient-none``).

Generated calls: 14 bad values x 150 parameters of 55 entry points = 2100
(``test_call_count`` keeps this number honest). Before the boundary checks of
:mod:`kirmatch.api` were added, 1113 of them failed: 475 ``AttributeError``,
212 ``TypeError`` from inside, 60 ``KeyError``, 6 ``OSError`` (a folder or a
too-long file name), 5 errors not naming the value, and 355 silent returns
(``make_person("P", 42)``, ``Person("P", "A*02:01")``, ``Options(t1k_min_quality="x")``,
``assess_dsa(..., tables="x")`` ...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

import kirmatch
from kirmatch import batch, dsa, expand, hla, kir, persons, ranking, readers
from kirmatch.errors import KirmatchError

REPO = Path(__file__).resolve().parents[1]
READERS = REPO / "tests" / "data" / "readers"
EXAMPLES = REPO / "examples"

#: The bad values: (id, value). ``str`` is a typing string where an object is expected.
BAD: list[tuple[str, Any]] = [
    ("none", None),
    ("int", 7),
    ("float", 1.5),
    ("nan", math.nan),
    ("inf", math.inf),
    ("bool", True),
    ("bytes", b"A*02:01"),
    ("list", ["A*02:01"]),
    ("dict", {"x": 1}),
    ("object", object()),
    ("str", "A*02:01"),
    ("empty", ""),
    ("long", "A" * 10_000),
    ("nonascii", "Ĥ*02:01 ü"),
]


class Env:
    """Valid arguments for every entry point (built once per module)."""

    def __init__(self, tmp: Path) -> None:
        import pandas as pd

        from kirmatch.hla import HLASlot
        from kirmatch.ligands import LigandResolver
        from kirmatch.ranking import Candidate, Clinical, builtin_policy

        self.tmp = tmp
        self.tables = kirmatch.load_reference_tables()
        self.hla_r = "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01"
        self.hla_d = "A*02:01+A*11:01^B*07:02+B*35:01^C*07:02+C*04:01"
        self.kir = "KIR2DL1+KIR2DL3+KIR3DL1+KIR2DS4+KIR2DL4+KIR3DL2+KIR3DL3"
        self.r = kirmatch.make_person("R1", self.hla_r, tables=self.tables)
        self.d = kirmatch.make_person("D1", self.hla_d, self.kir, tables=self.tables)
        self.genotype = self.d.hla
        self.kir_genotype = self.d.kir
        self.antibody = kirmatch.parse_antibody("A*11:01", 3200)
        self.options = kirmatch.Options()
        self.resolver = LigandResolver(self.tables)
        self.typing = kirmatch.parse_hla_typing("C*07:02")
        self.slot = HLASlot((self.typing,))
        self.locus_typing = self.genotype.locus("C")
        self.person_hla = self.resolver.resolve_genotype(self.genotype)
        self.assessment = kirmatch.assess_pair(self.r, self.d, tables=self.tables)
        self.policy = builtin_policy("kir-first")
        self.candidates = [Candidate("Da", {"dsa_tier": "none", "cf_ikir": 4},
                                     Clinical(donor_age=34))]
        self.policy_file = tmp / "policy.toml"
        self.policy_file.write_text('[policy]\nname = "mine"\ncriteria = ["cf_ikir"]\n')
        self.genotypes_csv = EXAMPLES / "genotypes.csv"
        self.pairs_csv = tmp / "pairs.csv"
        self.pairs_csv.write_text("recipient_id,donor_id\nR1,D1\n")
        self.output = tmp / "out.csv"
        self.genotypes_df = pd.DataFrame({"sample_id": ["R1", "D1"],
                                          "hla": [self.hla_r, self.hla_d],
                                          "kir": ["", self.kir]})
        self.pairs_df = pd.DataFrame({"recipient_id": ["R1"], "donor_id": ["D1"]})


@dataclass(frozen=True)
class Entry:
    """One public entry point: how to get it, and valid keyword arguments."""

    name: str
    target: Callable[[Env], Callable[..., Any]]
    valid: Callable[[Env], dict[str, Any]]


def _options_kwargs(env: Env) -> dict[str, Any]:
    return {f.name: getattr(env.options, f.name) for f in fields(kirmatch.Options)}


ENTRIES: list[Entry] = [
    # --- kirmatch.hla
    Entry("parse_hla_typing", lambda e: kirmatch.parse_hla_typing,
          lambda e: {"text": "A*02:01", "locus": None}),
    Entry("parse_hla_typing_locus", lambda e: kirmatch.parse_hla_typing,
          lambda e: {"text": "02:01", "locus": "A"}),
    Entry("parse_hla_genotype", lambda e: kirmatch.parse_hla_genotype,
          lambda e: {"text": e.hla_d}),
    Entry("hla_genotype_from_columns",
          lambda e: hla.hla_genotype_from_columns,
          lambda e: {"values": {"A": ("02:01", "24:02")}, "raw": None}),
    Entry("hla_genotype_from_columns_cells",
          lambda e: lambda cells: hla
          .hla_genotype_from_columns({"A": cells}),
          lambda e: {"cells": ("02:01", "24:02")}),
    Entry("HLAGenotype.locus", lambda e: e.genotype.locus, lambda e: {"name": "A"}),
    # --- kirmatch.kir
    Entry("parse_kir_genotype", lambda e: kirmatch.parse_kir_genotype,
          lambda e: {"text": e.kir, "tables": e.tables}),
    Entry("parse_kir_value", lambda e: kir.parse_kir_value,
          lambda e: {"gene": "KIR3DL1", "value": "001+004", "tables": e.tables, "raw": None}),
    Entry("KIRGenotype.gene", lambda e: e.kir_genotype.gene, lambda e: {"name": "KIR2DL1"}),
    # --- kirmatch.pair
    Entry("make_person", lambda e: kirmatch.make_person,
          lambda e: {"pid": "D1", "hla": e.hla_d, "kir": e.kir, "tables": e.tables}),
    Entry("Person", lambda e: kirmatch.Person,
          lambda e: {"id": "D1", "hla": e.genotype, "kir": e.kir_genotype}),
    Entry("assess_pair", lambda e: kirmatch.assess_pair,
          lambda e: {"recipient": e.r, "donor": e.d, "options": None, "tables": e.tables,
                     "antibodies": None, "pyard": None}),
    Entry("assess_pair_antibody_item",
          lambda e: lambda item: kirmatch.assess_pair(e.r, e.d, tables=e.tables,
                                                      antibodies=[e.antibody, item]),
          lambda e: {"item": e.antibody}),
    Entry("assess_pair_mapping",
          lambda e: lambda id, hla, kir: kirmatch.assess_pair(
              {"id": id, "hla": hla, "kir": kir}, e.d, tables=e.tables),
          lambda e: {"id": "R1", "hla": e.hla_r, "kir": e.kir}),
    Entry("PairAssessment.value", lambda e: e.assessment.value,
          lambda e: {"column": "cf_ikir"}),
    # --- kirmatch.dsa
    Entry("parse_antibody", lambda e: kirmatch.parse_antibody,
          lambda e: {"specificity": "B*57:01", "mfi": 14500, "c1q": None, "tables": e.tables}),
    Entry("parse_mfi", lambda e: dsa.parse_mfi,
          lambda e: {"value": "14500"}),
    Entry("parse_specificity", lambda e: dsa.parse_specificity,
          lambda e: {"text": "DQA1*05:01/DQB1*02:01", "tables": e.tables}),
    Entry("parse_flow_crossmatch", lambda e: dsa.parse_flow_crossmatch,
          lambda e: {"value": "pos"}),
    Entry("DSAScreen", lambda e: dsa.DSAScreen,
          lambda e: {"tables": e.tables, "options": e.options, "pyard": None}),
    Entry("DSAScreen.assess", lambda e: dsa.DSAScreen(e.tables).assess,
          lambda e: {"antibodies": [e.antibody], "donor": e.genotype,
                     "recipient": e.r.hla, "flow_crossmatch": None}),
    # --- kirmatch.options
    Entry("Options", lambda e: kirmatch.Options, _options_kwargs),
    Entry("Options.from_dict", lambda e: kirmatch.Options.from_dict,
          lambda e: {"data": {"include_a3a11": True}}),
    # --- kirmatch.tables
    Entry("load_reference_tables", lambda e: kirmatch.load_reference_tables,
          lambda e: {"directory": None, "verify": True}),
    Entry("ReferenceTables", lambda e: kirmatch.ReferenceTables,
          lambda e: {"directory": e.tables.directory, "verify": False}),
    Entry("ReferenceTables.hla_record", lambda e: e.tables.hla_record,
          lambda e: {"allele": "C*07:02:01:01"}),
    Entry("ReferenceTables.hla_records_with_prefix", lambda e: e.tables.hla_records_with_prefix,
          lambda e: {"name": "C*07:02"}),
    Entry("ReferenceTables.hla_records_for_protein", lambda e: e.tables.hla_records_for_protein,
          lambda e: {"protein": "C*07:02"}),
    Entry("ReferenceTables.protein_call", lambda e: e.tables.protein_call,
          lambda e: {"protein": "C*07:02"}),
    Entry("ReferenceTables.hla_first_fields", lambda e: e.tables.hla_first_fields,
          lambda e: {"locus": "C"}),
    Entry("ReferenceTables.kir_gene", lambda e: e.tables.kir_gene, lambda e: {"alias": "2DL1"}),
    Entry("ReferenceTables.kir_allele_exists", lambda e: e.tables.kir_allele_exists,
          lambda e: {"gene": "KIR3DL1", "digits": "001"}),
    Entry("ReferenceTables.kir3dl1_class", lambda e: e.tables.kir3dl1_class,
          lambda e: {"allele_group": "KIR3DL1*001"}),
    Entry("ReferenceTables.kir2dl1_245", lambda e: e.tables.kir2dl1_245,
          lambda e: {"allele_group": "KIR2DL1*004"}),
    Entry("ReferenceTables.sha256_of", lambda e: e.tables.sha256_of,
          lambda e: {"file": e.tables.manifest["tables"]["kir_genes"]["file"]}),
    # --- kirmatch.ligands
    Entry("LigandResolver", lambda e: kirmatch.LigandResolver,
          lambda e: {"tables": e.tables, "options": None, "pyard": None}),
    Entry("LigandResolver.universal", lambda e: e.resolver.universal, lambda e: {"locus": "C"}),
    Entry("LigandResolver.resolve_typing", lambda e: e.resolver.resolve_typing,
          lambda e: {"t": e.typing, "who": "donor"}),
    Entry("LigandResolver.resolve_slot", lambda e: e.resolver.resolve_slot,
          lambda e: {"slot": e.slot, "who": "donor"}),
    Entry("LigandResolver.resolve_locus", lambda e: e.resolver.resolve_locus,
          lambda e: {"locus": "C", "lt": e.locus_typing, "who": "donor"}),
    Entry("LigandResolver.resolve_genotype", lambda e: e.resolver.resolve_genotype,
          lambda e: {"genotype": e.genotype, "who": "donor"}),
    Entry("LigandResolver.summarize", lambda e: e.resolver.summarize,
          lambda e: {"person": e.person_hla}),
    # --- kirmatch.ranking
    Entry("rank_donors", lambda e: ranking.rank_donors,
          lambda e: {"candidates": e.candidates, "policy": e.policy}),
    Entry("load_policy", lambda e: ranking.load_policy, lambda e: {"path": e.policy_file}),
    Entry("resolve_policy", lambda e: ranking.resolve_policy, lambda e: {"spec": "ebmt"}),
    Entry("parse_clinical", lambda e: ranking.parse_clinical,
          lambda e: {"row": {"donor_age": "34", "donor_sex": "M"}}),
    Entry("parse_clinical_cell",
          lambda e: lambda donor_age, donor_sex: ranking.parse_clinical(
              {"donor_age": donor_age, "donor_sex": donor_sex}),
          lambda e: {"donor_age": "34", "donor_sex": "M"}),
    Entry("abo_class", lambda e: ranking.abo_class,
          lambda e: {"donor": "O", "recipient": "A"}),
    # --- kirmatch.readers
    Entry("read_kir", lambda e: readers.read_kir,
          lambda e: {"path": READERS / "dkms_kir.csv", "fmt": "auto", "tables": e.tables,
                     "options": None, "copy_number": None}),
    Entry("read_hla", lambda e: readers.read_hla,
          lambda e: {"path": READERS / "hla_gl.csv", "fmt": "auto", "options": None,
                     "sample": None}),
    # --- kirmatch.batch
    Entry("assess_pairs", lambda e: batch.assess_pairs,
          lambda e: {"genotypes": e.genotypes_df, "pairs": e.pairs_df, "options": None,
                     "tables": e.tables, "pyard": None}),
    # --- kirmatch.persons
    Entry("assess_persons", lambda e: persons.assess_persons,
          lambda e: {"genotypes": e.genotypes_df, "options": None, "tables": e.tables,
                     "pyard": None}),
    Entry("run_persons", lambda e: persons.run_persons,
          lambda e: {"genotypes": e.genotypes_csv, "output": e.output, "options": None,
                     "errors": None, "column_map": None, "chunk_rows": 1000,
                     "tables": e.tables, "pyard": None, "progress": None, "command": None,
                     "genotype_files": ()}),
    # --- kirmatch.expand
    Entry("b_leader_genotype", lambda e: expand.b_leader_genotype,
          lambda e: {"lt": e.genotype.locus("B"), "tables": e.tables, "pyard": None,
                     "single_allele": "homozygous"}),
    Entry("run_batch", lambda e: batch.run_batch,
          lambda e: {"genotypes": e.genotypes_csv, "pairs": e.pairs_csv, "output": e.output,
                     "options": None, "errors": None, "column_map": None, "chunk_rows": 1000,
                     "tables": e.tables, "pyard": None, "progress": None, "command": None,
                     "genotype_files": ()}),
]

#: Parameter names of each entry point (the valid kwargs need an Env, the names do not).
PARAMS: dict[str, tuple[str, ...]] = {
    "parse_hla_typing": ("text", "locus"),
    "parse_hla_typing_locus": ("text", "locus"),
    "parse_hla_genotype": ("text",),
    "hla_genotype_from_columns": ("values", "raw"),
    "hla_genotype_from_columns_cells": ("cells",),
    "HLAGenotype.locus": ("name",),
    "parse_kir_genotype": ("text", "tables"),
    "parse_kir_value": ("gene", "value", "tables", "raw"),
    "KIRGenotype.gene": ("name",),
    "make_person": ("pid", "hla", "kir", "tables"),
    "Person": ("id", "hla", "kir"),
    "assess_pair": ("recipient", "donor", "options", "tables", "antibodies", "pyard"),
    "assess_pair_antibody_item": ("item",),
    "assess_pair_mapping": ("id", "hla", "kir"),
    "PairAssessment.value": ("column",),
    "parse_antibody": ("specificity", "mfi", "c1q", "tables"),
    "parse_mfi": ("value",),
    "parse_specificity": ("text", "tables"),
    "parse_flow_crossmatch": ("value",),
    "DSAScreen": ("tables", "options", "pyard"),
    "DSAScreen.assess": ("antibodies", "donor", "recipient", "flow_crossmatch"),
    "Options": tuple(f.name for f in fields(kirmatch.Options)),
    "Options.from_dict": ("data",),
    "load_reference_tables": ("directory", "verify"),
    "ReferenceTables": ("directory", "verify"),
    "ReferenceTables.hla_record": ("allele",),
    "ReferenceTables.hla_records_with_prefix": ("name",),
    "ReferenceTables.hla_records_for_protein": ("protein",),
    "ReferenceTables.protein_call": ("protein",),
    "ReferenceTables.hla_first_fields": ("locus",),
    "ReferenceTables.kir_gene": ("alias",),
    "ReferenceTables.kir_allele_exists": ("gene", "digits"),
    "ReferenceTables.kir3dl1_class": ("allele_group",),
    "ReferenceTables.kir2dl1_245": ("allele_group",),
    "ReferenceTables.sha256_of": ("file",),
    "LigandResolver": ("tables", "options", "pyard"),
    "LigandResolver.universal": ("locus",),
    "LigandResolver.resolve_typing": ("t", "who"),
    "LigandResolver.resolve_slot": ("slot", "who"),
    "LigandResolver.resolve_locus": ("locus", "lt", "who"),
    "LigandResolver.resolve_genotype": ("genotype", "who"),
    "LigandResolver.summarize": ("person",),
    "rank_donors": ("candidates", "policy"),
    "load_policy": ("path",),
    "resolve_policy": ("spec",),
    "parse_clinical": ("row",),
    "parse_clinical_cell": ("donor_age", "donor_sex"),
    "abo_class": ("donor", "recipient"),
    "read_kir": ("path", "fmt", "tables", "options", "copy_number"),
    "read_hla": ("path", "fmt", "options", "sample"),
    "assess_pairs": ("genotypes", "pairs", "options", "tables", "pyard"),
    "run_batch": ("genotypes", "pairs", "output", "options", "errors", "column_map",
                  "chunk_rows", "tables", "pyard", "progress", "command", "genotype_files"),
    "assess_persons": ("genotypes", "options", "tables", "pyard"),
    "run_persons": ("genotypes", "output", "options", "errors", "column_map", "chunk_rows",
                    "tables", "pyard", "progress", "command", "genotype_files"),
    "b_leader_genotype": ("lt", "tables", "pyard", "single_allele"),
}

#: The name a TypeError gives a parameter of a wrapper entry point (default: the parameter).
LABELS: dict[tuple[str, str], str] = {
    ("hla_genotype_from_columns_cells", "cells"): "values['A']",
    ("assess_pair_antibody_item", "item"): "antibodies[1]",
    ("assess_pair_mapping", "id"): "recipient['id']",
}

_NONE = frozenset({"none"})
_VALID_STR = frozenset({"str"})
_ANY_STR = frozenset({"str", "empty", "long", "nonascii"})
_NAMES = frozenset({"str", "long", "nonascii"})     # any non-blank string is a fine id/label
_NUMBERS = frozenset({"int", "float"})
_MISSING = frozenset({"none", "nan", "empty"})      # None, NaN and "" all mean "not given"

#: Normal returns that are deliberate: entry point -> parameter -> ids of BAD accepted.
#: ``str`` is ``"A*02:01"``: a valid allele, typing, or list element.
ACCEPTED: dict[str, dict[str, frozenset[str]]] = {
    "parse_hla_typing": {"text": _VALID_STR, "locus": _NONE},
    "parse_hla_typing_locus": {"text": _VALID_STR},
    "parse_hla_genotype": {"text": _VALID_STR},
    "hla_genotype_from_columns": {"raw": _NONE | _ANY_STR},           # a label only
    "hla_genotype_from_columns_cells": {"cells": frozenset({"list"})},  # ["A*02:01"]
    "HLAGenotype.locus": {"name": _ANY_STR},                          # None: not typed
    "parse_kir_genotype": {"text": _MISSING},                         # untyped
    "parse_kir_value": {"value": _MISSING | {"bool"},                 # unknown; True = POS
                        "raw": _NONE | _ANY_STR},                     # a label only
    "make_person": {"pid": _NAMES | {"int"},                          # an int id -> "7"
                    "hla": _MISSING | {"str", "list"},                # ["A*02:01"] is a list
                    "kir": _MISSING,                                  # "" = untyped KIR
                    "tables": _NONE},
    "Person": {"id": _NAMES, "hla": _NONE, "kir": _NONE},
    "assess_pair": {"options": _NONE, "tables": _NONE, "antibodies": _NONE, "pyard": _NONE},
    "assess_pair_mapping": {"id": _NAMES | {"int"}, "hla": _MISSING | {"str", "list"},
                            "kir": _MISSING},
    "parse_antibody": {"specificity": _VALID_STR, "mfi": _NUMBERS,
                       "c1q": _MISSING | {"bool"}, "tables": _NONE},
    "parse_mfi": {"value": _NUMBERS},
    "parse_specificity": {"text": _VALID_STR, "tables": _NONE},
    "parse_flow_crossmatch": {"value": _MISSING | {"bool", "int"}},   # 1 = pos, blank = None
    "DSAScreen": {"tables": _NONE, "options": _NONE, "pyard": _NONE},
    "DSAScreen.assess": {"antibodies": _NONE, "donor": _NONE, "recipient": _NONE,
                         "flow_crossmatch": _NONE | {"bool"}},
    "Options": {**{name: frozenset({"bool"}) for name in (
        "hla_a_bw4", "a25_bw4", "include_a3a11", "ipd_compatible", "exclude_null_kir3dl1",
        "dsa_count_self")},
        "dsa_low_mfi": _NUMBERS,                    # below the other thresholds
        "ranking_policy": _NAMES,                   # resolved when ranking (a file name?)
        "t1k_min_quality": _NUMBERS},
    "load_reference_tables": {"directory": _NONE, "verify": frozenset({"bool"})},
    "ReferenceTables": {"verify": frozenset({"bool"})},
    **{f"ReferenceTables.{m}": {p: _ANY_STR} for m, p in (     # lookups: None / () if absent
        ("hla_record", "allele"), ("hla_records_with_prefix", "name"),
        ("hla_records_for_protein", "protein"), ("protein_call", "protein"),
        ("hla_first_fields", "locus"), ("kir_gene", "alias"),
        ("kir3dl1_class", "allele_group"), ("kir2dl1_245", "allele_group"))},
    "ReferenceTables.kir_allele_exists": {"gene": _ANY_STR, "digits": _ANY_STR},
    "LigandResolver": {"options": _NONE, "pyard": _NONE},
    "LigandResolver.resolve_typing": {"who": _ANY_STR},     # who: a label in warnings
    "LigandResolver.resolve_slot": {"who": _ANY_STR},
    "LigandResolver.resolve_locus": {"lt": _NONE, "who": _ANY_STR},
    "LigandResolver.resolve_genotype": {"genotype": _NONE, "who": _ANY_STR},
    "parse_clinical": {"row": frozenset({"dict"})},         # other columns are ignored
    "parse_clinical_cell": {"donor_age": _MISSING | _NUMBERS, "donor_sex": _MISSING},
    "abo_class": {"donor": _NONE, "recipient": _NONE},
    "read_kir": {"tables": _NONE, "options": _NONE, "copy_number": _NONE},
    "read_hla": {"options": _NONE, "sample": _NONE},
    "assess_pairs": {"options": _NONE, "tables": _NONE, "pyard": _NONE},
    "run_batch": {"options": _NONE, "errors": _NONE, "column_map": _NONE,
                  "chunk_rows": frozenset({"int"}), "tables": _NONE, "pyard": _NONE,
                  "progress": _NONE, "command": frozenset({"none", "list"}),
                  "genotype_files": frozenset({"list"})},
    "assess_persons": {"options": _NONE, "tables": _NONE, "pyard": _NONE},
    "run_persons": {"options": _NONE, "errors": _NONE, "column_map": _NONE,
                    "chunk_rows": frozenset({"int"}), "tables": _NONE, "pyard": _NONE,
                    "progress": _NONE, "command": frozenset({"none", "list"}),
                    "genotype_files": frozenset({"list"})},
    "b_leader_genotype": {"lt": _NONE, "pyard": _NONE},    # None: not typed (unknown)
}

CASES = [
    pytest.param(entry.name, param, bad_id, id=f"{entry.name}-{param}-{bad_id}")
    for entry in ENTRIES
    for param in PARAMS[entry.name]
    for bad_id, _ in BAD
]
_ENTRIES = {e.name: e for e in ENTRIES}
_BAD = dict(BAD)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    return Env(tmp_path_factory.mktemp("misuse"))


_BOUNDARY_TYPE_ERROR = re.compile(r"^(?P<param>.+?) must be (?P<expected>.+), "
                                  r"not (?P<actual>[\w.]+)(?: \(|$)", re.DOTALL)
#: Errors about a combination of arguments, which need not repeat this one's value.
NAMES_OTHER_ARGUMENT = {("read_kir", "copy_number")}


def classify(exc: BaseException, entry: str, param: str, value: Any) -> str | None:
    """``None`` when ``exc`` is an allowed outcome, else why it is not."""
    if isinstance(exc, KirmatchError):
        squeezed = "".join(str(value).split())
        if isinstance(value, str) and squeezed and len(value) < 100 \
                and (entry, param) not in NAMES_OTHER_ARGUMENT \
                and squeezed not in "".join(str(exc).split()):
            return f"{type(exc).__name__} does not name the value: {exc}"
        return None
    if type(exc) is TypeError:
        label = LABELS.get((entry, param), param)
        m = _BOUNDARY_TYPE_ERROR.match(str(exc))
        named = m.group("param") if m else ""
        if not (named == label or named.startswith((f"{label}[", f"{label} "))):
            return f"TypeError from inside (no '{label} must be ...'): {exc}"
        return None
    return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize(("entry_name", "param", "bad_id"), CASES)
def test_misuse(env: Env, entry_name: str, param: str, bad_id: str) -> None:
    entry = _ENTRIES[entry_name]
    kwargs = entry.valid(env)
    value = _BAD[bad_id]
    kwargs[param] = value
    func = entry.target(env)
    try:
        func(**kwargs)
    except Exception as exc:  # classifying every exception is the point of this test
        why = classify(exc, entry_name, param, value)
        assert why is None, why
    else:
        accepted = ACCEPTED.get(entry_name, {}).get(param, frozenset())
        assert bad_id in accepted, (
            f"{entry_name}({param}={value!r:.60}) returned normally; list it in ACCEPTED "
            "if that is deliberate"
        )


def test_valid_calls_work(env: Env) -> None:
    """Every entry point works with its valid arguments (the cases are not vacuous)."""
    for entry in ENTRIES:
        entry.target(env)(**entry.valid(env))


def test_call_count() -> None:
    n_params = sum(len(PARAMS[e.name]) for e in ENTRIES)
    assert len(CASES) == len(BAD) * n_params
    assert set(PARAMS) == {e.name for e in ENTRIES}
    doc = __doc__ or ""
    assert f"= {len(CASES)}" in doc and f"{n_params} parameters of {len(ENTRIES)} entry" in doc


# ---------------------------------------------------------------------------
# make_person: the rules for lists (the silent HLA drop)
# ---------------------------------------------------------------------------

def test_make_person_joins_allele_lists(env: Env) -> None:
    from kirmatch.hla import parse_hla_genotype

    p = kirmatch.make_person("P", ["A*02:01", "B*07:02", "A*24:02", "DRB4*NNNN"],
                             ("KIR2DL1", "KIR3DL1*001", "KIR3DL1*004"), tables=env.tables)
    # DRB4*NNNN is a typing: the gene is absent on both haplotypes
    assert p.hla == parse_hla_genotype("A*02:01+A*24:02^B*07:02^DRB4*NNNN")
    assert p.kir == kirmatch.parse_kir_genotype("KIR2DL1+KIR3DL1*001+KIR3DL1*004", env.tables)
    q = kirmatch.make_person("Q", ("C*07:01/C*07:02",), tables=env.tables)
    assert str(q.hla) == "C*07:01/C*07:02"
    assert kirmatch.make_person("R", [], [], tables=env.tables) == kirmatch.Person("R")


@pytest.mark.parametrize(("hla", "kir", "error", "match"), [
    (["A*02:01", "A*24:02", "A*01:01"], None, kirmatch.HLAParseError,
     r"'A\*01:01': hla\[2\] is a third allele of locus A"),
    (["A*02:01", "A*0x:01"], None, kirmatch.HLAParseError, r"'A\*0x:01': hla\[1\]"),
    (["A*02:01+A*24:02"], None, kirmatch.HLAParseError, r"hla\[0\] must be one allele"),
    (["A*02:01", " "], None, kirmatch.HLAParseError, r"hla\[1\] must be one allele"),
    (["A*02:01", 7], None, TypeError, r"^hla\[1\] must be str, not int \(7\)$"),
    ({"A*02:01"}, None, TypeError, r"^hla must be str or HLAGenotype or a list/tuple of str"),
    (None, ["KIR2DL1", "KIR2DL9"], kirmatch.KIRParseError, r"'KIR2DL9': kir\[1\]"),
    (None, ["KIR2DL1+KIR2DL3"], kirmatch.KIRParseError, r"kir\[0\] must be one gene"),
    (None, ["KIR2DL1", None], TypeError, r"^kir\[1\] must be str, not NoneType"),
    (None, 42, TypeError, r"^kir must be str or KIRGenotype or a list/tuple of str"),
])
def test_make_person_rejects_bad_lists(env: Env, hla: Any, kir: Any, error: type,
                                       match: str) -> None:
    with pytest.raises(error, match=match):
        kirmatch.make_person("P", hla, kir, tables=env.tables)


@pytest.mark.parametrize(("pid", "expected"), [(7, "7"), ("D 1", "D 1")])
def test_make_person_ids(env: Env, pid: Any, expected: str) -> None:
    assert kirmatch.make_person(pid, tables=env.tables).id == expected


@pytest.mark.parametrize(("pid", "error"), [("", kirmatch.UsageError), ("  ", kirmatch.UsageError),
                                            (True, TypeError), (7.0, TypeError)])
def test_make_person_rejects_ids(env: Env, pid: Any, error: type) -> None:
    with pytest.raises(error, match="pid"):
        kirmatch.make_person(pid, tables=env.tables)


def test_assess_pair_mapping_keys(env: Env) -> None:
    with pytest.raises(kirmatch.UsageError, match=r"recipient has unknown key.*'hal'"):
        kirmatch.assess_pair({"id": "R1", "hal": env.hla_r}, env.d, tables=env.tables)
    with pytest.raises(kirmatch.UsageError, match="antibodies is empty"):
        kirmatch.assess_pair(env.r, env.d, tables=env.tables, antibodies=[])


def test_api_doctests() -> None:
    """kirmatch.api is not in tests/test_doctests.py's list: run its examples here."""
    import doctest

    from kirmatch import api

    res = doctest.testmod(api, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0
    assert res.failed == 0
