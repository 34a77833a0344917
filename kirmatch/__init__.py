"""kirmatch: KIR/HLA NK-alloreactivity models and transparent donor ranking.

Research and decision support, not a medical device. Every result names the
rule set (kirmatch rules v2), its options and the reference releases
(IPD-IMGT/HLA 3.58.0, IPD-KIR 2.13.0).

Entry points::

    import kirmatch
    tables = kirmatch.load_reference_tables()
    r = kirmatch.make_person("R1", "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01")
    d = kirmatch.make_person("D1", "A*02:01+A*11:01^B*07:02+B*35:01^C*07:02+C*04:01",
                             "KIR2DL1+KIR2DL3+KIR3DL1+KIR2DS4+KIR2DL4+KIR3DL2+KIR3DL3")
    kirmatch.assess_pair(r, d).to_dict()

Importing kirmatch opens nothing and touches no network.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path as _Path

# The command line lives in <project>/cli and is mapped into the wheel as
# kirmatch/cli. In a source tree or an editable install (pip install -e .) there
# is no kirmatch/cli folder: let the package also look in the project folder, so
# that `kirmatch.cli` and the `kirmatch` console script work the same way there.
_project = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).resolve().parent / "cli").is_dir() and \
        (_project / "cli" / "main.py").is_file():
    __path__.append(str(_project))  # type: ignore[name-defined]

try:
    __version__ = version("kirmatch")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+source"

from kirmatch.dsa import Antibody, parse_antibody
from kirmatch.errors import (
    HLAParseError,
    InputSchemaError,
    KirmatchError,
    KIRParseError,
    ParseError,
    PyardUnavailableError,
    ReferenceTableError,
    UnknownAlleleError,
    UsageError,
)
from kirmatch.hla import HLAGenotype, parse_hla_genotype, parse_hla_typing
from kirmatch.kir import GeneState, KIRGenotype, parse_kir_genotype
from kirmatch.ligands import LigandResolver
from kirmatch.options import RULES_ID, RULES_VERSION, Options
from kirmatch.pair import CONTRACT_COLUMNS, PairAssessment, Person, assess_pair, make_person
from kirmatch.tables import ReferenceTables, load_reference_tables

__all__ = [
    "CONTRACT_COLUMNS",
    "RULES_ID",
    "RULES_VERSION",
    "Antibody",
    "GeneState",
    "HLAGenotype",
    "HLAParseError",
    "InputSchemaError",
    "KIRGenotype",
    "KIRParseError",
    "KirmatchError",
    "LigandResolver",
    "Options",
    "PairAssessment",
    "ParseError",
    "Person",
    "PyardUnavailableError",
    "ReferenceTableError",
    "ReferenceTables",
    "UnknownAlleleError",
    "UsageError",
    "__version__",
    "assess_pair",
    "assess_pairs",
    "assess_persons",
    "load_reference_tables",
    "make_person",
    "parse_antibody",
    "parse_hla_genotype",
    "parse_hla_typing",
    "parse_kir_genotype",
    "run_batch",
    "run_persons",
]


def __getattr__(name: str) -> object:
    # The batch engine pulls in pandas and pyarrow: load it only when asked for.
    if name in ("assess_pairs", "run_batch"):
        from kirmatch import batch

        return getattr(batch, name)
    if name in ("assess_persons", "run_persons"):
        from kirmatch import persons

        return getattr(persons, name)
    raise AttributeError(f"module 'kirmatch' has no attribute {name!r}")
