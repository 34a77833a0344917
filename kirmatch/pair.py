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
from numbers import Integral
from typing import Any

from kirmatch.api import check_mapping, check_sequence, check_type, is_nan, type_error
from kirmatch.dsa import Antibody, DSAResult, shared_screen
from kirmatch.errors import HLAParseError, KirmatchError, KIRParseError, UsageError
from kirmatch.hla import ABSENT_LOCI, HLAGenotype, parse_hla_genotype
from kirmatch.kir import KIRGenotype, parse_kir_genotype
from kirmatch.ligands import shared_resolver
from kirmatch.options import RULES_ID, Options
from kirmatch.pyard_backend import PyardBackend
from kirmatch.registry import COLUMNS, MODELS, NOT_APPLICABLE, evaluate_model, unknown_warnings
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
    """One person's typings (either may be ``None`` = not typed).

    Build it from strings or lists with :func:`make_person`; the constructor
    only checks types (``TypeError``) and that ``id`` is not blank (``UsageError``).
    """

    id: str
    hla: HLAGenotype | None = None
    kir: KIRGenotype | None = None

    def __post_init__(self) -> None:
        if not check_type("id", self.id, str).strip():
            raise UsageError("id is empty: a person needs a non-blank id", raw=self.id)
        check_type("hla", self.hla, HLAGenotype, none_ok=True)
        check_type("kir", self.kir, KIRGenotype, none_ok=True)


#: Characters that join several alleles or genes: one list element holds one.
_HLA_JOINERS = "+^|~,; \t"
#: WMDA placeholders that leave a position untyped: skipped, as in a GL string
#: (NNNN at DRB3/4/5 is the absent gene: kept).
_HLA_PLACEHOLDERS = ("NNNN", "XXXX", "UUUU", "NEW")
_KIR_JOINERS = "+^|,; \t="


def _hla_from_list(alleles: Sequence[str]) -> HLAGenotype | None:
    """Join a list of HLA alleles (each one position, ``/`` alternatives allowed)
    into a genotype: grouped by locus, at most two per locus, errors name ``hla[i]``."""
    by_locus: dict[str, list[str]] = {}
    for i, item in enumerate(check_sequence("hla", alleles, str) or ()):
        text = item.strip()
        if not text or any(ch in _HLA_JOINERS for ch in text):
            raise HLAParseError(item, f"hla[{i}] must be one allele (or a '/' list of "
                                "alternatives), not blank or several joined")
        head, _, body = text.rpartition("*")
        if "/" not in text and body.upper() in _HLA_PLACEHOLDERS and not (
                body.upper() == "NNNN" and head.upper().removeprefix("HLA-") in ABSENT_LOCI):
            continue      # untyped; NNNN at DRB3/4/5 is the absent gene, kept; a '/' list
            # holding a placeholder is read by the GL grammar like any other list
        try:
            loci = parse_hla_genotype(text).loci
        except HLAParseError as exc:
            raise HLAParseError(item, f"hla[{i}]: {exc.detail}") from exc
        for lt in loci:
            slots = by_locus.setdefault(lt.locus, [])
            if len(slots) == 2:
                raise HLAParseError(item, f"hla[{i}] is a third allele of locus {lt.locus} "
                                    f"({', '.join(slots)} already given); at most 2 per locus")
            slots.append(text)
    if not by_locus:
        return None
    return parse_hla_genotype("^".join("+".join(slots) for slots in by_locus.values()))


def _kir_from_list(genes: Sequence[str], tables: ReferenceTables) -> KIRGenotype | None:
    """Join a list of KIR genes/alleles with ``+``; errors name ``kir[i]``."""
    items = check_sequence("kir", genes, str) or ()
    for i, item in enumerate(items):
        text = item.strip()
        if not text or any(ch in _KIR_JOINERS for ch in text):
            raise KIRParseError(item, f"kir[{i}] must be one gene or allele (or a '/' list "
                                "of alternatives), not blank or several joined")
        try:
            parse_kir_genotype(text, tables)
        except KIRParseError as exc:
            raise KIRParseError(item, f"kir[{i}]: {exc.detail}") from exc
    return parse_kir_genotype("+".join(s.strip() for s in items), tables) if items else None


def make_person(pid: str | int, hla: str | HLAGenotype | Sequence[str] | None = None,
                kir: str | KIRGenotype | Sequence[str] | None = None, *,
                tables: ReferenceTables | None = None) -> Person:
    """Parse typings into a :class:`Person` (errors name the value).

    Parameters
    ----------
    pid:
        The person's id: a non-blank str, or an int (e.g. from a numeric pandas
        column), which becomes its decimal string.
    hla:
        A GL string or allele list (``"A*02:01+A*24:02^B*07:02"``), an
        :class:`~kirmatch.hla.HLAGenotype`, or a list/tuple of alleles, one
        position per element (``["A*02:01", "A*24:02", "B*07:02"]``; ``/``
        alternatives allowed), grouped by locus with at most two per locus.
        ``None``, a blank string, an empty list or NaN: not typed.
    kir:
        A KIR string (``"KIR2DL1+KIR3DL1*001"``), a
        :class:`~kirmatch.kir.KIRGenotype`, or a list/tuple of genes or alleles,
        one copy per element, joined with ``+``. ``None``, an empty list or NaN:
        not typed; a blank string: typed as untyped (every gene unknown).

    Raises
    ------
    HLAParseError, KIRParseError, UnknownAlleleError
        A typing cannot be read; the message names it (and ``hla[i]``/``kir[i]``
        for a list element).
    UsageError
        ``pid`` is blank.
    TypeError
        ``pid``, ``hla``, ``kir`` or ``tables`` (or a list element) has another type.

    >>> p = make_person(7, ["A*02:01", "A*24:02", "B*07:02"], ["KIR2DL1", "KIR3DL1*001"])
    >>> p.id, str(p.hla), p.kir.gene("KIR3DL1").genotypes
    ('7', 'A*02:01+A*24:02^B*07:02', ((('KIR3DL1*001',),),))
    >>> make_person("P", ["A*02:01", "A*24:02", "A*01:01"])
    Traceback (most recent call last):
    ...
    kirmatch.errors.HLAParseError: cannot parse 'A*01:01': hla[2] is a third allele of locus A ...
    >>> make_person("P", 42)
    Traceback (most recent call last):
    ...
    TypeError: hla must be str or HLAGenotype or a list/tuple of str or None, not int (42)
    """
    if isinstance(pid, Integral) and not isinstance(pid, bool):
        pid = str(pid)
    check_type("pid", pid, str, expected="str or int")
    if not pid.strip():
        raise UsageError("pid is empty: a person needs a non-blank id", raw=pid)
    t = check_type("tables", tables, ReferenceTables, none_ok=True) or load_reference_tables()
    if hla is None or is_nan(hla) or (isinstance(hla, str) and not hla.strip()):
        h = None
    elif isinstance(hla, str):
        h = parse_hla_genotype(hla)
    elif isinstance(hla, (list, tuple)):
        h = _hla_from_list(hla)
    else:
        h = check_type("hla", hla, HLAGenotype, none_ok=True,
                       expected="str or HLAGenotype or a list/tuple of str")
    if kir is None or is_nan(kir):
        k = None
    elif isinstance(kir, str):
        k = parse_kir_genotype(kir, t)
    elif isinstance(kir, (list, tuple)):
        k = _kir_from_list(kir, t)
    else:
        k = check_type("kir", kir, KIRGenotype, none_ok=True,
                       expected="str or KIRGenotype or a list/tuple of str")
    return Person(pid, h, k)


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
        """The encoded contract value of one column (as in ``to_dict``).

        Raises
        ------
        UsageError
            ``column`` is not a key of ``to_dict``.
        TypeError
            ``column`` is not a str.
        """
        d = self.to_dict()
        if check_type("column", column, str) not in d:
            raise UsageError(f"unknown column {column!r} (known: {', '.join(d)})", raw=column)
        return d[column]

    def to_dict(self) -> dict[str, Any]:
        """Contract keys in contract order (§A.16), then ``options`` and ``facts``.

        Booleans stay booleans, lists are sorted ``;``-joined strings, unknown is
        ``""``, ``ikir_score_weighted`` has two decimals. ``facts`` holds person
        facts behind the columns that are not columns themselves:
        ``donor_kir3dl1_class`` (H, L or N, rule 11; ``""`` when unknown).
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
        cls = self.facts.get("kir3dl1_class")
        out["facts"] = {"donor_kir3dl1_class": cls.value if cls is not None and cls.known
                        else ""}
        return out

    def to_row(self) -> dict[str, str]:
        """CSV cells: like ``to_dict`` with ``true``/``false`` and strings."""
        d = self.to_dict()
        d.pop("options")
        d.pop("facts")
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


_PERSON_KEYS = ("id", "hla", "kir")


def _as_person(p: Person | Mapping[str, Any], tables: ReferenceTables, default_id: str) -> Person:
    if isinstance(p, Person):
        return p
    check_type(default_id, p, (Person, Mapping), expected="Person or a mapping")
    check_mapping(default_id, p)
    unknown = sorted(set(p) - set(_PERSON_KEYS))
    if unknown:
        raise UsageError(f"{default_id} has unknown key(s) {', '.join(map(repr, unknown))} "
                         f"(expected {', '.join(_PERSON_KEYS)})", raw=unknown[0])
    pid = p.get("id", default_id)
    if not isinstance(pid, (str, Integral)) or isinstance(pid, bool):
        raise type_error(f"{default_id}['id']", pid, "str or int")
    return make_person(pid, p.get("hla"), p.get("kir"), tables=tables)


def assess_pair(
    recipient: Person | Mapping[str, Any],
    donor: Person | Mapping[str, Any],
    options: Options | None = None,
    *,
    tables: ReferenceTables | None = None,
    antibodies: Sequence[Antibody] | None = None,
    pyard: PyardBackend | None = None,
    flow_crossmatch: bool | None = None,
) -> PairAssessment:
    """Compute every model of the kirmatch rules for one pair.

    Parameters
    ----------
    recipient, donor:
        :class:`Person` objects (or mappings with ``id``, ``hla``, ``kir`` strings).
    options:
        Rule-set options (defaults: :class:`~kirmatch.options.Options`).
    antibodies:
        The recipient's antibody screen (rule 13); ``None`` = no antibody data,
        an empty sequence is not allowed (record a negative screen as ``NONE``).
    flow_crossmatch:
        The pair's flow crossmatch (``True`` = positive: DSA tier at least
        ``high``), ``None`` = not done.
    pyard:
        A py-ard backend for serology/MAC expansion; ``None`` = tables only.

    Raises
    ------
    KirmatchError
        Unparseable typing or an allele unknown to the pinned release;
        :class:`~kirmatch.errors.UsageError` for an empty ``antibodies``
        sequence or a person mapping with unknown keys.
    TypeError
        An argument (or an antibody, or a person mapping's value) has the
        wrong type; the message names it.

    >>> assess_pair(None, None)
    Traceback (most recent call last):
    ...
    TypeError: recipient must be Person or a mapping, not NoneType (None)
    """
    from kirmatch.facts import resolve_person

    opts = check_type("options", options, Options, none_ok=True) or Options()
    t = check_type("tables", tables, ReferenceTables, none_ok=True) or load_reference_tables()
    check_type("pyard", pyard, PyardBackend, none_ok=True)
    if check_sequence("antibodies", antibodies, Antibody, none_ok=True) == ():
        raise UsageError("antibodies is empty: pass None for no antibody data, or "
                         "[parse_antibody('NONE', 0)] for a negative screen")
    rp = _as_person(recipient, t, "recipient")
    dp = _as_person(donor, t, "donor")
    resolver = shared_resolver(t, opts, pyard)
    rf = resolve_person(rp.hla, rp.kir, resolver, t)
    df = resolve_person(dp.hla, dp.kir, resolver, t)
    values, unknown, model_warnings = compute_columns({"recipient": rf, "donor": df}, opts)
    warnings: list[str] = [*rf.role_warnings("recipient"), *df.role_warnings("donor"),
                           *model_warnings]
    check_type("flow_crossmatch", flow_crossmatch, bool, none_ok=True)
    dsa = shared_screen(t, opts, pyard).assess(antibodies, dp.hla, rp.hla,
                                               flow_crossmatch=flow_crossmatch)
    values.update(dsa.values())
    unknown.update(dsa.unknown())
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


def compute_columns(people: Any, opts: Options
                    ) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Every model column of the registry for resolved persons (``people`` maps a
    role to its :class:`~kirmatch.facts.PersonFacts`): (values, unknown reasons,
    the warnings the values raise)."""
    from kirmatch.facts import pair_fact

    values: dict[str, Any] = {}
    unknown: dict[str, str] = {}
    warnings: list[str] = []
    pairs: dict[str, Any] = {}
    for m in MODELS:
        cands = []
        for role, fact in m.inputs:
            if role == "pair":
                if fact not in pairs:
                    pairs[fact] = pair_fact(fact, people["recipient"], people["donor"])
                cands.append(pairs[fact])
            else:
                cands.append(people[role].get(fact))
        for col, (v, reason) in zip(m.columns, evaluate_model(m, tuple(cands), opts),
                                    strict=True):
            values[col] = v
            if v is None and reason != NOT_APPLICABLE:
                unknown[col] = reason or "ambiguous_typing"
            elif (w := m.value_warnings.get(col, {}).get(v)) is not None:
                warnings.append(w)
    return values, unknown, warnings
