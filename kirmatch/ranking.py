"""Deterministic donor ranking (rule 14): policies, clinical inputs, ABO class,
and the reason each donor is not ranked higher.

Basis for the built-in orders: the EBMT consensus on haploidentical donor
selection (Ciurea SO et al., Bone Marrow Transplant 2020;55:12-24,
doi:10.1038/s41409-019-0499-z) for ``ebmt``; ``kir-first`` puts CF-iKIR right
after DSA (Zou 2022; Ciurea 2024). Lower sort keys rank first and unknown sorts
last within its criterion; ``donor_id`` (code-point order) is always the final
tie-breaker, so the same input in any row order gives the same ranking.

>>> p = builtin_policy("kir-first")
>>> p.criteria[:3]
('dsa_tier', 'cf_ikir', 'donor_age')
>>> abo_class("O", "A"), abo_class("A", "O"), abo_class("A", "B"), abo_class("AB", "AB")
('minor', 'major', 'bidirectional', 'match')
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kirmatch.api import check_mapping, check_path, check_sequence, check_type
from kirmatch.errors import InputSchemaError, UsageError

__all__ = [
    "CRITERIA",
    "Candidate",
    "Clinical",
    "Policy",
    "RankedDonor",
    "abo_class",
    "builtin_policy",
    "load_policy",
    "parse_clinical",
    "rank_cohort",
    "rank_donors",
    "resolve_policy",
]

CRITERIA = ("dsa_tier", "cf_ikir", "donor_age", "donor_sex", "relationship", "cmv", "abo",
            "b_content_group", "donor_id")
_BUILTIN = {
    "kir-first": ("dsa_tier", "cf_ikir", "donor_age", "donor_sex", "relationship", "cmv", "abo",
                  "b_content_group", "donor_id"),
    "ebmt": ("dsa_tier", "donor_age", "donor_sex", "relationship", "cmv", "abo", "cf_ikir",
             "b_content_group", "donor_id"),
}
_NUMERIC = ("cf_ikir", "donor_age")
_UNKNOWN = math.inf
RELATIONSHIPS = ("child", "sibling", "father", "mother", "other")
_REL_KEY = {"child": 0, "sibling": 0, "father": 1, "mother": 2, "other": 3}
_DSA_KEY = {"none": 0, "low": 1, "high": 2, "very high": 3}
_ABO_KEY = {"match": 0, "minor": 1, "major": 2, "bidirectional": 3}
_BCONTENT_KEY = {"Best": 0, "Better": 1, "Neutral": 2}
_ABO_ANTIGENS = {"O": frozenset(), "A": frozenset("A"), "B": frozenset("B"),
                 "AB": frozenset("AB")}


@dataclass(frozen=True, slots=True)
class Policy:
    """An ordered list of criteria, with optional direction and bands."""

    name: str
    criteria: tuple[str, ...]
    direction: Mapping[str, str] = field(default_factory=dict)
    bands: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    source: str = "built-in"
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "criteria": list(self.criteria),
                "direction": dict(self.direction),
                "bands": {k: list(v) for k, v in self.bands.items()},
                "source": self.source, "sha256": self.sha256}


def builtin_policy(name: str) -> Policy:
    if name not in _BUILTIN:
        raise UsageError(f"unknown ranking policy {name!r}: use kir-first, ebmt or a TOML file")
    return Policy(name, _BUILTIN[name])


def load_policy(path: str | Path) -> Policy:
    """Read a user policy (TOML) and validate it; errors name the offending key/value.

    ``[policy]`` holds ``name`` and ``criteria`` (names from the criterion table,
    each at most once; ``donor_id`` is appended if missing), optionally
    ``[policy.direction]`` (``asc``/``desc`` for ``cf_ikir`` and ``donor_age``)
    and ``[policy.bands]`` (increasing thresholds for ``cf_ikir``/``donor_age``:
    values in one band are equal for the ranking, e.g. age bands).

    Raises
    ------
    UsageError
        The file is missing, not a file, not TOML, or not a valid policy.
    TypeError
        ``path`` is not a str or path-like object.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    p = check_path("path", path)
    assert p is not None
    if not os.path.isfile(p):  # False for folders and unusable names too
        raise UsageError(f"policy file {p} not found (or not a file)", raw=str(p))
    try:
        raw = p.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"policy file {p} not found", raw=str(p)) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"policy file {p} is not valid TOML: {exc}", raw=str(p)) from None
    extra = set(data) - {"policy"}
    if "policy" not in data or not isinstance(data["policy"], dict):
        raise UsageError(f"policy file {p}: missing [policy] table", raw=str(p))
    if extra:
        raise UsageError(f"policy file {p}: unknown top-level key(s) {sorted(extra)}")
    pol = data["policy"]
    unknown_keys = set(pol) - {"name", "criteria", "direction", "bands"}
    if unknown_keys:
        raise UsageError(f"policy file {p}: unknown key(s) in [policy]: "
                         f"{', '.join(sorted(unknown_keys))}")
    name = pol.get("name")
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"policy file {p}: [policy] name must be a non-empty string")
    crit = pol.get("criteria")
    if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
        raise UsageError(f"policy file {p}: [policy] criteria must be a non-empty list of names")
    seen: set[str] = set()
    for c in crit:
        if c not in CRITERIA:
            raise UsageError(f"policy file {p}: unknown criterion {c!r} (known: "
                             f"{', '.join(CRITERIA)})", raw=c)
        if c in seen:
            raise UsageError(f"policy file {p}: criterion {c!r} listed twice", raw=c)
        seen.add(c)
    criteria = tuple(crit) + (() if "donor_id" in seen else ("donor_id",))
    direction = pol.get("direction", {})
    if not isinstance(direction, dict):
        raise UsageError(f"policy file {p}: [policy.direction] must be a table")
    for k, v in direction.items():
        if k not in _NUMERIC:
            raise UsageError(f"policy file {p}: direction only applies to cf_ikir and "
                             f"donor_age, not {k!r}", raw=k)
        if v not in ("asc", "desc"):
            raise UsageError(f"policy file {p}: direction of {k} must be 'asc' or 'desc', "
                             f"not {v!r}", raw=str(v))
    bands = pol.get("bands", {})
    if not isinstance(bands, dict):
        raise UsageError(f"policy file {p}: [policy.bands] must be a table")
    clean: dict[str, tuple[float, ...]] = {}
    for k, v in bands.items():
        if k not in _NUMERIC:
            raise UsageError(f"policy file {p}: bands only apply to cf_ikir and donor_age, "
                             f"not {k!r}", raw=k)
        if not isinstance(v, list) or not v or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            raise UsageError(f"policy file {p}: bands of {k} must be a list of numbers")
        bad = next((x for x in v if not math.isfinite(x)), None)
        if bad is not None:
            raise UsageError(f"policy file {p}: bands of {k} must be finite numbers, not "
                             f"{bad!r}", raw=str(bad))
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise UsageError(f"policy file {p}: bands of {k} must be strictly increasing")
        clean[k] = tuple(float(x) for x in v)
    return Policy(name.strip(), criteria, dict(direction), clean, source=str(p),
                  sha256=hashlib.sha256(raw).hexdigest())


def resolve_policy(spec: str) -> Policy:
    """``kir-first``, ``ebmt`` or a path to a TOML policy file.

    Raises
    ------
    UsageError
        Neither a built-in policy nor a readable policy file.
    TypeError
        ``spec`` is not a str.
    """
    if check_type("spec", spec, str) in _BUILTIN:
        return builtin_policy(spec)
    if not spec.strip():
        raise UsageError("ranking policy is empty: use kir-first, ebmt or a TOML file")
    if spec.endswith(".toml") or os.path.exists(spec):
        return load_policy(spec)
    return builtin_policy(spec)


def abo_class(donor: str | None, recipient: str | None) -> str | None:
    """ABO mismatch class from A/B antigens (Rh ignored); None when either is unknown.

    Raises
    ------
    UsageError
        A group is not ``O``, ``A``, ``B`` or ``AB``.
    TypeError
        A group is not a str or None.
    """
    for name, group in (("donor", donor), ("recipient", recipient)):
        if group is not None and (not isinstance(group, str) or group not in _ABO_ANTIGENS):
            check_type(name, group, str, none_ok=True)
            raise UsageError(f"{name} ABO group must be O, A, B or AB, not {group!r}",
                             raw=group)
    if donor is None or recipient is None:
        return None
    d, r = _ABO_ANTIGENS[donor], _ABO_ANTIGENS[recipient]
    major, minor = bool(d - r), bool(r - d)
    if major and minor:
        return "bidirectional"
    if major:
        return "major"
    if minor:
        return "minor"
    return "match"


@dataclass(frozen=True, slots=True)
class Clinical:
    """Validated clinical inputs of one candidate (None = unknown)."""

    donor_age: float | None = None
    donor_sex: str | None = None
    recipient_sex: str | None = None
    relationship: str | None = None
    donor_cmv: str | None = None
    recipient_cmv: str | None = None
    donor_abo: str | None = None
    recipient_abo: str | None = None
    donor_parity: int | None = None

    @property
    def abo(self) -> str | None:
        return abo_class(self.donor_abo, self.recipient_abo)


def _blank(v: object) -> bool:
    from kirmatch.tabular import is_blank

    return is_blank(v)


#: Relationship words labs write, and the canonical value each means.
RELATIONSHIP_SYNONYMS = {
    "brother": "sibling", "sister": "sibling", "half-sibling": "sibling",
    "half sibling": "sibling", "halfsibling": "sibling", "half-brother": "sibling",
    "half-sister": "sibling", "son": "child", "daughter": "child",
}


def parse_clinical(row: Mapping[str, object]) -> Clinical:
    """Validate the optional clinical columns of a pairs row (errors name the column).

    A blank cell is unknown. ``donor_parity`` (pregnancies) above 0 for a male
    donor contradicts ``donor_sex`` and is rejected rather than guessed.

    Raises
    ------
    InputSchemaError
        A clinical value is not understood; the message names the column.
    TypeError
        ``row`` is not a mapping with string keys.
    """
    check_mapping("row", row)

    def pick(col: str, allowed: dict[str, str]) -> str | None:
        v = row.get(col)
        if _blank(v):
            return None
        key = str(v).strip().lower()
        if key not in allowed:
            raise InputSchemaError(f"{col} must be one of {', '.join(sorted(set(allowed.values())))}"
                                   f", not {str(v).strip()!r}", raw=str(v), column=col)
        return allowed[key]

    sex = {"m": "M", "male": "M", "f": "F", "female": "F"}
    cmv = {"pos": "pos", "positive": "pos", "+": "pos", "neg": "neg", "negative": "neg",
           "-": "neg"}
    abo = {"o": "O", "a": "A", "b": "B", "ab": "AB"}
    rel = {**{r: r for r in RELATIONSHIPS}, **RELATIONSHIP_SYNONYMS}
    age = row.get("donor_age")
    age_v: float | None = None
    if not _blank(age):
        try:
            age_v = float(str(age).strip())
        except ValueError:
            raise InputSchemaError(f"donor_age must be a number of years, not {age!r}",
                                   raw=str(age), column="donor_age") from None
        if not 0 <= age_v < 130:
            raise InputSchemaError(f"donor_age {age_v:g} is out of range", raw=str(age),
                                   column="donor_age")
    parity = row.get("donor_parity")
    parity_v: int | None = None
    if not _blank(parity):
        try:
            parity_v = int(float(str(parity).strip()))
        except ValueError:
            raise InputSchemaError(f"donor_parity must be a whole number, not {parity!r}",
                                   raw=str(parity), column="donor_parity") from None
        if parity_v < 0:
            raise InputSchemaError("donor_parity must not be negative", raw=str(parity),
                                   column="donor_parity")
    donor_sex = pick("donor_sex", sex)
    if donor_sex == "M" and parity_v:
        raise InputSchemaError(f"donor_parity {parity_v} (pregnancies) given for a male donor "
                               "(donor_sex M)", raw=str(parity), column="donor_parity")
    return Clinical(age_v, donor_sex, pick("recipient_sex", sex),
                    pick("relationship", rel), pick("donor_cmv", cmv), pick("recipient_cmv", cmv),
                    pick("donor_abo", abo), pick("recipient_abo", abo), parity_v)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One recipient-donor candidate for ranking."""

    donor_id: str
    values: Mapping[str, Any]           # contract values (encoded, "" = unknown)
    clinical: Clinical
    dsa_detail: str = ""                # e.g. "B51, MFI 8000" for the reason text
    error: str = ""                     # non-empty for error rows (never ranked)


@dataclass(frozen=True, slots=True)
class RankedDonor:
    donor_id: str
    rank: int | None
    rank_reason: str
    keys: tuple[Any, ...]
    clinical_unknown: tuple[str, ...] = ()


def _band(value: float, cuts: tuple[float, ...]) -> int:
    return sum(value >= c for c in cuts)


def _criterion(c: str, cand: Candidate, policy: Policy) -> tuple[Any, str, str | None]:
    """(sort key, display value, clinical field that was unknown or None)."""
    v, cl = cand.values, cand.clinical
    if c == "dsa_tier":
        t = v.get("dsa_tier", "")
        disp = t or "unknown"
        if t and t != "none" and cand.dsa_detail:
            disp = f"{t} ({cand.dsa_detail})"
        return (_DSA_KEY.get(t, _UNKNOWN), disp, None)
    if c in ("cf_ikir", "donor_age"):
        raw = v.get("cf_ikir", "") if c == "cf_ikir" else cl.donor_age
        if raw in ("", None):
            return (_UNKNOWN, "unknown", "donor_age" if c == "donor_age" else None)
        x = float(raw)
        desc = policy.direction.get(c, "desc" if c == "cf_ikir" else "asc") == "desc"
        key: float = _band(x, policy.bands[c]) if c in policy.bands else x
        disp = f"{x:g}"
        return (-key if desc else key, disp, None)
    if c == "donor_sex":
        if cl.donor_sex == "M":
            return (0, "male donor", None)
        if cl.donor_sex == "F" and cl.recipient_sex == "F":
            return (1, "female donor to female recipient", None)
        if cl.donor_sex == "F" and cl.recipient_sex == "M":
            return (2, "female donor to male recipient", None)
        missing = "donor_sex" if cl.donor_sex is None else "recipient_sex"
        return (_UNKNOWN, "unknown", missing)
    if c == "relationship":
        if cl.relationship is None:
            return (_UNKNOWN, "unknown", "relationship")
        return (_REL_KEY[cl.relationship], cl.relationship, None)
    if c == "cmv":
        if cl.recipient_cmv is None:
            return (_UNKNOWN, "unknown", "recipient_cmv")
        if cl.recipient_cmv == "neg":
            return (0, "recipient CMV-negative", None)
        if cl.donor_cmv is None:
            return (_UNKNOWN, "unknown", "donor_cmv")
        return ((0, "CMV pos/pos", None) if cl.donor_cmv == "pos"
                else (1, "CMV-negative donor to positive recipient", None))
    if c == "abo":
        a = cl.abo
        if a is None:
            return (_UNKNOWN, "unknown", "donor_abo" if cl.donor_abo is None else "recipient_abo")
        return (_ABO_KEY[a], a, None)
    if c == "b_content_group":
        g = v.get("b_content_group", "")
        return (_BCONTENT_KEY.get(g, _UNKNOWN), g or "unknown", None)
    if c == "donor_id":
        return (cand.donor_id, cand.donor_id, None)
    raise UsageError(f"unknown criterion {c!r}")  # pragma: no cover


def rank_donors(candidates: Sequence[Candidate], policy: Policy) -> list[RankedDonor]:
    """Rank one recipient's candidates. Error rows get no rank and follow the others.

    >>> pol = builtin_policy("kir-first")
    >>> cs = [Candidate("Da", {"dsa_tier": "none", "cf_ikir": 4}, Clinical(donor_age=34)),
    ...       Candidate("Db", {"dsa_tier": "none", "cf_ikir": 2}, Clinical(donor_age=29)),
    ...       Candidate("Dc", {"dsa_tier": "low", "cf_ikir": 4}, Clinical(donor_age=25))]
    >>> [(r.donor_id, r.rank, r.rank_reason) for r in rank_donors(cs, pol)]
    [('Da', 1, 'top'), ('Db', 2, 'cf_ikir: 2 vs 4'), ('Dc', 3, 'dsa_tier: low vs none')]
    >>> [(r.donor_id, r.rank_reason) for r in rank_donors(cs, builtin_policy("ebmt"))]
    [('Db', 'top'), ('Da', 'donor_age: 34 vs 29'), ('Dc', 'dsa_tier: low vs none')]

    Raises
    ------
    TypeError
        ``candidates`` is not a sequence of :class:`Candidate`, or ``policy``
        is not a :class:`Policy`.
    """
    check_sequence("candidates", candidates, Candidate)
    check_type("policy", policy, Policy)
    ok = [c for c in candidates if not c.error]
    bad = sorted((c for c in candidates if c.error), key=lambda c: c.donor_id)
    scored = []
    for c in ok:
        parts = [_criterion(name, c, policy) for name in policy.criteria]
        keys = tuple(p[0] for p in parts)
        unknown = tuple(sorted({p[2] for p in parts if p[2]}))
        scored.append((keys, parts, c, unknown))
    scored.sort(key=lambda s: tuple(_sortable(k) for k in s[0]))
    out: list[RankedDonor] = []
    prev = None
    for i, (keys, parts, c, unknown) in enumerate(scored, start=1):
        if prev is None:
            reason = "top"
        else:
            reason = "tie"
            for name, mine, theirs in zip(policy.criteria, parts, prev, strict=True):
                if mine[0] != theirs[0]:
                    reason = f"{name}: {mine[1]} vs {theirs[1]}"
                    break
        out.append(RankedDonor(c.donor_id, i, reason, keys, unknown))
        prev = parts
    out.extend(RankedDonor(c.donor_id, None, "", (), ()) for c in bad)
    return out


def _sortable(k: Any) -> tuple[int, Any]:
    # numbers and strings never compare with each other: tag them
    if isinstance(k, str):
        return (1, k)
    return (0, k)


# ---------------------------------------------------------------------------
# Ranking a whole pairs table
# ---------------------------------------------------------------------------

#: Pairs-file columns read for ranking (every other column passes through).
CLINICAL_COLUMNS = ("donor_age", "donor_sex", "recipient_sex", "relationship", "donor_cmv",
                    "recipient_cmv", "donor_abo", "recipient_abo", "donor_parity")


@dataclass(frozen=True, slots=True)
class RankedRow:
    """One pairs row after assessment and ranking (``index`` = its place in the file)."""

    index: int
    pair_row: Mapping[str, Any]
    assessment: Any                      # kirmatch.pair.PairAssessment
    rank: int | None
    rank_reason: str
    clinical: Clinical | None
    row: int = 0                         # 1-based data row of the pairs file

    def to_row(self) -> dict[str, str]:
        out = self.assessment.to_row()
        out["rank"] = "" if self.rank is None else str(self.rank)
        out["rank_reason"] = self.rank_reason
        return out


def canonical_clinical(row: Mapping[str, Any], clinical: Clinical | None) -> dict[str, str]:
    """The clinical columns of ``row`` written as kirmatch understood them
    (``brother`` → ``sibling``, ``male`` → ``M``); other columns unchanged."""
    out = dict(row)
    if clinical is None:
        return out
    for col in CLINICAL_COLUMNS:
        if col not in row:
            continue
        v = getattr(clinical, col)
        if v is None:
            continue
        out[col] = f"{v:g}" if isinstance(v, float) else str(v)
    return out


def rank_cohort(people: Any, pairs: Any, *, policy: Policy, options: Any, tables: Any,
                antibodies: Mapping[str, Any] | None = None, pyard: Any = None
                ) -> list[RankedRow]:
    """Assess (with the batch engine) and rank every candidate of a pairs table.

    ``people`` is a :class:`kirmatch.people.People`; ``pairs`` a
    :class:`kirmatch.tabular.Chunk` holding ``recipient_id``, ``donor_id`` and the
    optional clinical columns; ``antibodies`` maps recipient id to its antibody
    list or to the error its rows raised (then that recipient's rows are errors
    and the others are still ranked). One result per pairs row, in file order.
    """
    from kirmatch.batch import lookup_ids
    from kirmatch.dsa import assess_dsa
    from kirmatch.engine import Engine, dsa_unknown_warnings
    from kirmatch.errors import KirmatchError
    from kirmatch.pair import PairAssessment, error_row, run_record
    from kirmatch.registry import COLUMNS, decode, unknown_warnings

    engine = Engine(people, options, tables, pyard)
    r_idx, r_ids = lookup_ids(people, pairs.table.column("recipient_id"))
    d_idx, d_ids = lookup_ids(people, pairs.table.column("donor_id"))
    row_errors = {j: f"input_parse_error: pairs {m}" for j, m in pairs.errors.items()}
    res = engine.assess(r_idx, d_idx, ids={"recipient": r_ids, "donor": d_ids},
                        row_errors=row_errors)
    opts_record = run_record(options, tables)
    records = pairs.records()
    cols = {c: res.columns[c].to_pylist() for c in ("status", "error", "warnings", *COLUMNS)}
    seen: dict[tuple[str, str], list[int]] = {}
    for j in range(pairs.num_rows):
        if j not in pairs.errors and r_ids[j] and d_ids[j]:
            seen.setdefault((r_ids[j], d_ids[j]), []).append(j)
    assessed: list[tuple[Any, Clinical | None]] = []
    for j in range(pairs.num_rows):
        rid, did, line = r_ids[j], d_ids[j], pairs.first_row + j
        try:
            if cols["status"][j] == "error":
                raise _RowError(cols["error"][j])
            dups = seen.get((rid, did), [])
            if len(dups) > 1:
                rows_txt = ", ".join(str(pairs.first_row + k) for k in dups)
                raise InputSchemaError(f"donor {did!r} is listed more than once for recipient "
                                       f"{rid!r} (pairs rows {rows_txt})", row=line,
                                       column="donor_id")
            clinical = _located(parse_clinical, records[j], line)
            abs_ = None
            if antibodies is not None:
                abs_ = antibodies.get(rid)
                if isinstance(abs_, KirmatchError):
                    raise abs_
            values = {c: decode(c, cols[c][j]) for c in COLUMNS}
            warnings = set(filter(None, cols["warnings"][j].split(";")))
            unknown: dict[str, str] = {}
            dsa = None
            if abs_ is None:
                warnings.update(dsa_unknown_warnings())
                unknown.update({c: "no_antibody_data" for c in ("dsa_max_mfi", "dsa_tier")})
            else:
                donor = people.person(int(d_idx[j]))
                dsa = assess_dsa(abs_, donor.hla, options, tables=tables, pyard=pyard)
                if dsa.tier is None:
                    reason = dsa.reason or "antibody_unparsed"
                    for c in ("dsa_max_mfi", "dsa_tier"):
                        unknown[c] = reason
                        warnings.update(unknown_warnings(c, reason))
                else:
                    values["dsa_max_mfi"] = dsa.max_mfi
                    values["dsa_tier"] = dsa.tier
                warnings.update(w.replace(";", ",") for w in dsa.warnings)
            warnings.update(f"clinical_unknown({f})" for f in _clinical_unknown(clinical,
                                                                                policy))
            facts = {"donor_ikir": engine.fact_of("ikir", int(d_idx[j])),
                     "kir3dl1_class": engine.fact_of("kir3dl1_class", int(d_idx[j]))}
            res_j = PairAssessment(rid, did, values, tuple(sorted(warnings)), opts_record,
                                   unknown=unknown, facts=facts, dsa=dsa)
            assessed.append((res_j, clinical))
        except _RowError as exc:
            assessed.append((PairAssessment(rid, did, {}, (), opts_record, status="error",
                                            error=str(exc)), None))
        except KirmatchError as exc:
            assessed.append((error_row(rid, did, exc, opts_record), None))
    by_recipient: dict[str, list[int]] = {}
    for i, (a, _) in enumerate(assessed):
        by_recipient.setdefault(a.recipient_id, []).append(i)
    ranks: dict[int, tuple[int | None, str]] = {}
    for idxs in by_recipient.values():
        cands = []
        index_of: dict[str, int] = {}
        for i in idxs:
            a, clinical = assessed[i]
            if a.status == "error":
                ranks[i] = (None, "")
                continue
            detail = ""
            if a.dsa is not None and a.dsa.hits:
                h = a.dsa.hits[0]
                detail = f"{h.specificity}, MFI {h.mfi:,.0f}" + (", C1q+" if h.c1q else "")
            index_of[a.donor_id] = i  # unique: duplicates were made error rows
            cands.append(Candidate(a.donor_id, a.to_dict(), clinical or Clinical(), detail))
        for rd in rank_donors(cands, policy):
            ranks[index_of[rd.donor_id]] = (rd.rank, rd.rank_reason)
    out = []
    for i, (a, clinical) in enumerate(assessed):
        rank, reason = ranks[i]
        out.append(RankedRow(i, canonical_clinical(records[i], clinical), a, rank, reason,
                             clinical, pairs.first_row + i))
    return out


class _RowError(Exception):
    """A row the engine already made an error (its text is the error cell)."""


def _located(fn: Any, row: Mapping[str, Any], line: int) -> Any:
    from kirmatch.errors import KirmatchError

    try:
        return fn(row)
    except KirmatchError as exc:
        raise exc.located(row=line) from None


def _clinical_unknown(clinical: Clinical, policy: Policy) -> tuple[str, ...]:
    out = []
    for c in policy.criteria:
        if c in ("dsa_tier", "cf_ikir", "b_content_group", "donor_id"):
            continue
        _, _, missing = _criterion(c, Candidate("x", {}, clinical), policy)
        if missing:
            out.append(missing)
    return tuple(dict.fromkeys(out))
