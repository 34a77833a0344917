"""Assess one recipient-donor pair: every model of rules 3-13 with propagation,
the output contract of rule 15 and the warnings of §A.17.

>>> from kirmatch.tables import load_reference_tables
>>> t = load_reference_tables()
>>> r = make_person("R2", "A*01:01+A*02:01^B*08:01+B*15:01^C*07:01+C*03:04",
...                 "KIR2DL1+KIR2DL3+KIR2DL4+KIR2DS4+KIR3DL1+KIR3DL2+KIR3DL3", tables=t)
>>> d = make_person("D2", "A*01:01+A*03:01^B*08:01+B*57:01^C*07:01+C*06:02",
...     "KIR2DL1*004+KIR2DL1*004+KIR2DL2+KIR2DL4+KIR2DL5+KIR2DS1+KIR2DS2+KIR2DS4+"
...     "KIR3DL1*005+KIR3DS1*013+KIR3DL2+KIR3DL3", tables=t)
>>> res = assess_pair(r, d, tables=t)
>>> res.value("gvh_mismatched_ligands"), res.value("cf_ikir"), res.value("kir2dl1_245")
('Bw4;C2', 1, 'C245')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kirmatch.dsa import Antibody, DSAResult, assess_dsa
from kirmatch.errors import KirmatchError
from kirmatch.hla import HLAGenotype, parse_hla_genotype
from kirmatch.kir import KIRGenotype, parse_kir_genotype
from kirmatch.ligands import shared_resolver
from kirmatch.options import RULES_ID, Options
from kirmatch.pyard_backend import PyardBackend
from kirmatch.registry import COLUMNS, DSA_COLUMNS, MODELS, evaluate_column, unknown_warnings
from kirmatch.registry import encode as _encode
from kirmatch.tables import ReferenceTables, load_reference_tables

__all__ = [
    "CONTRACT_COLUMNS",
    "RANK_COLUMNS",
    "PairAssessment",
    "Person",
    "assess_pair",
    "compute_columns",
    "error_row",
    "make_person",
    "run_record",
]

#: Output contract, DOMAIN.md §A.16 (rank columns only in ranked output): the
#: ids, status, error and warnings, then every model column of the registry.
CONTRACT_COLUMNS = ("recipient_id", "donor_id", "status", "error", "warnings", *COLUMNS)
RANK_COLUMNS = ("rank", "rank_reason")
COMPUTED_COLUMNS = CONTRACT_COLUMNS[5:]


@dataclass(frozen=True, slots=True)
class Person:
    """One person's typings (either may be ``None`` = not typed)."""

    id: str
    hla: HLAGenotype | None = None
    kir: KIRGenotype | None = None


def make_person(pid: str, hla: str | HLAGenotype | None = None,
                kir: str | KIRGenotype | None = None, *,
                tables: ReferenceTables | None = None) -> Person:
    """Parse typing strings into a :class:`Person` (errors name the value)."""
    t = tables or load_reference_tables()
    h = parse_hla_genotype(hla) if isinstance(hla, str) and hla.strip() else (
        hla if isinstance(hla, HLAGenotype) else None)
    k = parse_kir_genotype(kir, t) if isinstance(kir, str) else kir
    return Person(str(pid), h, k)


def run_record(options: Options, tables: ReferenceTables) -> dict[str, Any]:
    """Options plus the rules version and table releases (the ``options`` object)."""
    from kirmatch import __version__

    return {
        **options.to_dict(),
        "rules": RULES_ID,
        "kirmatch_version": __version__,
        "ipd_imgt_hla": tables.hla_release,
        "ipd_kir": tables.kir_release,
    }


@dataclass(frozen=True, slots=True)
class PairAssessment:
    """The result for one pair: contract values (``None`` = unknown) and warnings."""

    recipient_id: str
    donor_id: str
    values: dict[str, Any]
    warnings: tuple[str, ...]
    options: dict[str, Any]
    status: str = "ok"
    error: str = ""
    unknown: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    dsa: DSAResult | None = None

    def value(self, column: str) -> Any:
        """The encoded contract value of one column (as in ``to_dict``)."""
        return self.to_dict()[column]

    def to_dict(self) -> dict[str, Any]:
        """Contract keys in contract order (§A.16), then ``options``.

        Booleans stay booleans, lists are sorted ``;``-joined strings, unknown is
        ``""``, ``ikir_score_weighted`` has two decimals.
        """
        out: dict[str, Any] = {
            "recipient_id": self.recipient_id,
            "donor_id": self.donor_id,
            "status": self.status,
            "error": self.error,
            "warnings": ";".join(self.warnings),
        }
        for col in COMPUTED_COLUMNS:
            out[col] = encode(col, self.values.get(col))
        out["options"] = self.options
        return out

    def to_row(self) -> dict[str, str]:
        """CSV cells: like ``to_dict`` with ``true``/``false`` and strings."""
        d = self.to_dict()
        d.pop("options")
        return {k: to_cell(v) for k, v in d.items()}


def encode(column: str, value: Any) -> Any:
    """A column value as JSON encodes it (see :func:`kirmatch.registry.encode`)."""
    return _encode(column, value)


def to_cell(value: Any) -> str:
    """An encoded value as a CSV cell (``true``/``false``; ``""`` for unknown)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def error_row(recipient_id: str, donor_id: str, error: KirmatchError | str,
              options: dict[str, Any]) -> PairAssessment:
    """A ``status=error`` result: computed columns empty, ``error`` = ``code: message``."""
    text = error.as_cell() if isinstance(error, KirmatchError) else str(error)
    return PairAssessment(str(recipient_id), str(donor_id), {}, (), options,
                          status="error", error=text.replace("\n", " "))


def _as_person(p: Person | Mapping[str, Any], tables: ReferenceTables, default_id: str) -> Person:
    if isinstance(p, Person):
        return p
    return make_person(str(p.get("id", default_id)), p.get("hla"), p.get("kir"), tables=tables)


def assess_pair(
    recipient: Person | Mapping[str, Any],
    donor: Person | Mapping[str, Any],
    options: Options | None = None,
    *,
    tables: ReferenceTables | None = None,
    antibodies: Sequence[Antibody] | None = None,
    pyard: PyardBackend | None = None,
) -> PairAssessment:
    """Compute every model of kirmatch rules v1 for one pair.

    Parameters
    ----------
    recipient, donor:
        :class:`Person` objects (or mappings with ``id``, ``hla``, ``kir`` strings).
    options:
        Rule-set options (defaults: :class:`~kirmatch.options.Options`).
    antibodies:
        The recipient's antibody screen (rule 13); ``None`` = no antibody data,
        an empty sequence is not allowed (record a negative screen as ``NONE``).
    pyard:
        A py-ard backend for serology/MAC expansion; ``None`` = tables only.

    Raises
    ------
    KirmatchError
        Unparseable typing or an allele unknown to the pinned release.
    """
    from kirmatch.facts import resolve_person

    opts = options or Options()
    t = tables or load_reference_tables()
    rp = _as_person(recipient, t, "recipient")
    dp = _as_person(donor, t, "donor")
    resolver = shared_resolver(t, opts, pyard)
    rf = resolve_person(rp.hla, rp.kir, resolver, t)
    df = resolve_person(dp.hla, dp.kir, resolver, t)
    values, unknown = compute_columns({"recipient": rf, "donor": df}, opts)
    warnings: list[str] = [*rf.role_warnings("recipient"), *df.role_warnings("donor")]
    dsa = None
    if antibodies is None:
        for col in DSA_COLUMNS:
            unknown[col] = "no_antibody_data"
    else:
        dsa = assess_dsa(antibodies, dp.hla, opts, tables=t, pyard=pyard)
        if dsa.tier is None:
            for col in DSA_COLUMNS:
                unknown[col] = dsa.reason or "antibody_unparsed"
        else:
            values["dsa_max_mfi"] = dsa.max_mfi
            values["dsa_tier"] = dsa.tier
        warnings.extend(dsa.warnings)
    for col, reason in unknown.items():
        values[col] = None
        warnings.extend(unknown_warnings(col, reason))
    facts = {"donor_ikir": df.get("ikir"), "kir3dl1_class": df.get("kir3dl1_class")}
    return PairAssessment(
        recipient_id=rp.id, donor_id=dp.id, values=values,
        warnings=tuple(sorted(set(w.replace(";", ",") for w in warnings))),
        options=run_record(opts, t), unknown=dict(unknown), facts=facts, dsa=dsa,
    )


def compute_columns(people: Any, opts: Options) -> tuple[dict[str, Any], dict[str, str]]:
    """Every model column of the registry for resolved persons (``people`` maps a
    role to its :class:`~kirmatch.facts.PersonFacts`): (values, unknown reasons)."""
    values: dict[str, Any] = {}
    unknown: dict[str, str] = {}
    for m in MODELS:
        cands = tuple(people[role].get(fact) for role, fact in m.inputs)
        for k, col in enumerate(m.columns):
            v, reason = evaluate_column(m, k, cands, opts)
            values[col] = v
            if v is None:
                unknown[col] = reason or "ambiguous_typing"
    return values, unknown
