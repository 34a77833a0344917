"""Deterministic donor ranking (rule 14 v2): criteria, policies, clinical inputs,
ABO class, and the reason each donor is not ranked higher.

A policy is an ordered tuple of criterion names from the §A.15 table. Each
criterion is one function (``_crit_<name>``) that turns a :class:`Candidate`
into a sort key and the value shown in ``rank_reason``. Lower keys rank first,
unknown sorts last within its criterion, and ``donor_id`` (code-point order) is
always the final tie-breaker, so the same input in any row order gives the same
ranking. No policy hides a donor: every candidate that is not an error row gets
a rank.

Built-in policies (rules v2):

>>> for name in BUILTIN_POLICIES:  # doctest: +NORMALIZE_WHITESPACE
...     p = builtin_policy(name)
...     print(name, p.criteria, dict(p.bands))
kir-first ('dsa_tier', 'donor_age_band', 'cf_ikir', 'donor_age', 'donor_sex', 'donor_parity',
           'relationship', 'cmv', 'abo', 'b_content_group', 'donor_id')
          {'donor_age_band': (58.0,)}
haplo-ptcy ('dsa_tier', 'donor_age_band', 'b_leader_match', 'drb1_mm_dqb1_match', 'dpb1_tce',
            'cmv', 'donor_sex', 'donor_parity', 'relationship', 'abo', 'cf_ikir', 'donor_age',
            'donor_id') {'donor_age_band': (35.0,)}
ebmt ('dsa_tier', 'donor_age', 'donor_sex', 'donor_parity', 'relationship', 'cmv', 'abo',
      'cf_ikir', 'b_content_group', 'donor_id') {}

Sources: ``kir-first`` puts the donor-age band (< 58, ≥ 58) right after DSA
because the source of CF-iKIR (Zou et al., Front Immunol 2022) found donors
≥ 58 the worst group whatever the KIR and CF-iKIR predictive only among younger
donors; ``haplo-ptcy`` follows Fuchs et al., Blood 2022;139:1452 and the EBMT
2020 consensus; ``ebmt`` the EBMT consensus on haploidentical donor selection
(Ciurea SO et al., Bone Marrow Transplant 2020;55:12-24,
doi:10.1038/s41409-019-0499-z).

>>> abo_class("O", "A"), abo_class("A", "O"), abo_class("A", "B"), abo_class("AB", "AB")
('minor', 'major', 'bidirectional', 'match')
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from kirmatch.api import check_mapping, check_path, check_sequence, check_type
from kirmatch.errors import InputSchemaError, UsageError
from kirmatch.options import Options
from kirmatch.progress import ProgressCallback, Stages
from kirmatch.tabular import is_blank

__all__ = [
    "BUILTIN_POLICIES",
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
    "ranked_table",
    "resolve_policy",
]

#: Criterion names in the order of the §A.15 table (``donor_id`` last).
CRITERIA = ("dsa_tier", "cf_ikir", "donor_age", "donor_sex", "relationship", "cmv", "abo",
            "b_content_group", "donor_age_band", "b_leader_match", "drb1_mm_dqb1_match",
            "dpb1_tce", "donor_parity", "hla_relation", "donor_id")
#: Criteria whose key is a number: ``[policy.direction]`` may reverse them and
#: ``[policy.bands]`` may group them (``donor_age_band`` needs bands).
_NUMERIC = ("cf_ikir", "donor_age", "donor_age_band")
_DIRECTIONS = ("asc", "desc")
_UNKNOWN = math.inf
RELATIONSHIPS = ("child", "sibling", "father", "mother", "other")
_REL_KEY = {"child": 0, "sibling": 0, "father": 1, "mother": 2, "other": 3}
#: Rule 13 tiers, lowest first (``dsa_tier`` and ``dsa_tier_worst`` use the same five).
DSA_TIERS = ("none", "low", "moderate", "high", "very high")
_DSA_KEY = {t: i for i, t in enumerate(DSA_TIERS)}
_ABO_KEY = {"match": 0, "minor": 1, "major": 2, "bidirectional": 3}
_BCONTENT_KEY = {"Best": 0, "Better": 1, "Neutral": 2}
_BOOL_KEY = {"true": 0, "false": 1}
# Fuchs 2022: a non-permissive TCE mismatch in the GvH direction did best;
# permissive mismatch and match are equal.
_DPB1_TCE_KEY = {"non-permissive GvH": 0, "permissive": 1, "match": 1, "non-permissive HvG": 2}
_HLA_RELATION_KEY = {"identical": 0, "haploidentical": 1, "not haploidentical": 2}
_CMV_SIGN = {"pos": "+", "neg": "-"}
_ABO_ANTIGENS = {"O": frozenset(), "A": frozenset("A"), "B": frozenset("B"),
                 "AB": frozenset("AB")}


def _finite_float(x: float) -> bool:
    """True when ``x`` is a finite number as a float too (an integer of 400
    digits is not: it overflows)."""
    try:
        return math.isfinite(float(x))
    except OverflowError:
        return False


def _check_policy(criteria: Sequence[str], direction: Mapping[str, Any],
                  bands: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, str],
                                                     dict[str, tuple[float, ...]]]:
    """Validated (criteria with ``donor_id`` last, direction, bands); errors name key and value."""
    seen: list[str] = []
    for c in criteria:
        if c not in CRITERIA:
            raise UsageError(f"[policy] criteria: unknown criterion {c!r} (known: "
                             f"{', '.join(CRITERIA)})", raw=str(c))
        if c in seen:
            raise UsageError(f"[policy] criteria: criterion {c!r} listed twice", raw=c)
        seen.append(c)
    if "donor_id" in seen[:-1]:
        later = ", ".join(seen[seen.index("donor_id") + 1:])
        raise UsageError("[policy] criteria: 'donor_id' is unique per recipient, so it must be "
                         f"the last criterion (it would hide {later})", raw="donor_id")
    for k, v in direction.items():
        if k not in _NUMERIC:
            raise UsageError(f"[policy.direction] {k} = {v!r}: direction only applies to "
                             f"{', '.join(_NUMERIC)}", raw=str(k))
        if v not in _DIRECTIONS:
            raise UsageError(f"[policy.direction] {k} = {v!r}: must be 'asc' or 'desc'",
                             raw=str(v))
    clean: dict[str, tuple[float, ...]] = {}
    for k, v in bands.items():
        if k not in _NUMERIC:
            raise UsageError(f"[policy.bands] {k} = {v!r}: bands only apply to "
                             f"{', '.join(_NUMERIC)}", raw=str(k))
        if not isinstance(v, (list, tuple)) or not v or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            raise UsageError(f"[policy.bands] {k} = {v!r}: must be a non-empty list of numbers",
                             raw=str(v))
        bad = next((x for x in v if not _finite_float(x)), None)
        if bad is not None:
            raise UsageError(f"[policy.bands] {k} = {list(v)!r}: must be finite numbers, not "
                             f"{bad!r}", raw=str(bad))
        if any(b <= a for a, b in itertools.pairwise(v)):
            raise UsageError(f"[policy.bands] {k} = {list(v)!r}: must be strictly increasing",
                             raw=str(v))
        clean[k] = tuple(float(x) for x in v)
    if "donor_age_band" in seen and not ({"donor_age_band", "donor_age"} & set(clean)):
        raise UsageError("[policy] criteria: 'donor_age_band' needs age bands: "
                         "[policy.bands] donor_age (or donor_age_band)", raw="donor_age_band")
    full = tuple(seen) + (() if "donor_id" in seen else ("donor_id",))
    return full, dict(direction), clean


@dataclass(frozen=True, slots=True)
class Policy:
    """An ordered list of criteria, with optional directions and bands.

    Parameters
    ----------
    name : str
        Recorded in the run record.
    criteria : tuple of str
        Names from :data:`CRITERIA`, each at most once. ``donor_id`` is appended
        when missing and must otherwise be last.
    direction : mapping, optional
        ``asc`` or ``desc`` for ``cf_ikir`` (default ``desc``), ``donor_age`` and
        ``donor_age_band`` (default ``asc``).
    bands : mapping, optional
        Finite, strictly increasing cut points. A value ``x`` falls in the band
        numbered by how many cuts are ``<= x``; values in one band rank equal.
        ``cf_ikir`` and ``donor_age`` band their own criterion; the
        ``donor_age_band`` criterion uses ``bands["donor_age_band"]`` if given,
        else ``bands["donor_age"]`` (one of them is required when it is listed).
    source, sha256 : str
        ``built-in`` or the TOML file, and that file's SHA-256.

    Raises
    ------
    UsageError
        A criterion, direction or band is not valid; the message names the key
        and the value.

    Examples
    --------
    >>> p = Policy("centre", ("dsa_tier", "donor_age_band"), bands={"donor_age": [40]})
    >>> p.criteria, p.age_bands
    (('dsa_tier', 'donor_age_band', 'donor_id'), (40.0,))
    >>> Policy("x", ("abo", "height"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    kirmatch.errors.UsageError: [policy] criteria: unknown criterion 'height' (known: ...)
    """

    name: str
    criteria: tuple[str, ...]
    direction: Mapping[str, str] = field(default_factory=dict)
    bands: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    source: str = "built-in"
    sha256: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise UsageError(f"[policy] name must be a non-empty string, not {self.name!r}")
        check_sequence("criteria", self.criteria, str)
        check_mapping("direction", self.direction)
        check_mapping("bands", self.bands)
        criteria, direction, bands = _check_policy(self.criteria, self.direction, self.bands)
        object.__setattr__(self, "criteria", criteria)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "bands", bands)

    @property
    def age_bands(self) -> tuple[float, ...]:
        """The cut points of ``donor_age_band`` (empty when neither key is given)."""
        return self.bands.get("donor_age_band") or self.bands.get("donor_age", ())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "criteria": list(self.criteria),
                "direction": dict(self.direction),
                "bands": {k: list(v) for k, v in self.bands.items()},
                "source": self.source, "sha256": self.sha256}


_BUILTIN = {
    "kir-first": Policy("kir-first", (
        "dsa_tier", "donor_age_band", "cf_ikir", "donor_age", "donor_sex", "donor_parity",
        "relationship", "cmv", "abo", "b_content_group", "donor_id"),
        bands={"donor_age_band": (58,)}),
    "haplo-ptcy": Policy("haplo-ptcy", (
        "dsa_tier", "donor_age_band", "b_leader_match", "drb1_mm_dqb1_match", "dpb1_tce",
        "cmv", "donor_sex", "donor_parity", "relationship", "abo", "cf_ikir", "donor_age",
        "donor_id"), bands={"donor_age_band": (35,)}),
    "ebmt": Policy("ebmt", (
        "dsa_tier", "donor_age", "donor_sex", "donor_parity", "relationship", "cmv", "abo",
        "cf_ikir", "b_content_group", "donor_id")),
}
#: Names of the built-in policies (``kir-first`` is the default).
BUILTIN_POLICIES = tuple(_BUILTIN)
_POLICY_HINT = "use " + ", ".join(BUILTIN_POLICIES) + " or a TOML file"


def builtin_policy(name: str) -> Policy:
    """The built-in policy ``kir-first``, ``haplo-ptcy`` or ``ebmt`` (DOMAIN.md §A.15).

    Raises
    ------
    UsageError
        ``name`` is not a built-in policy.

    Examples
    --------
    >>> builtin_policy("haplo-ptcy").age_bands
    (35.0,)
    """
    if name not in _BUILTIN:
        raise UsageError(f"unknown ranking policy {name!r}: {_POLICY_HINT}", raw=str(name))
    return _BUILTIN[name]


def load_policy(path: str | Path) -> Policy:
    """Read a user policy (TOML) and validate it; errors name the offending key and value.

    ``[policy]`` holds ``name`` and ``criteria`` (names from :data:`CRITERIA`, each
    at most once; ``donor_id`` is appended if missing and must otherwise be
    last), optionally ``[policy.direction]`` (``asc``/``desc`` for ``cf_ikir``,
    ``donor_age`` and ``donor_age_band``) and ``[policy.bands]`` (finite,
    strictly increasing cut points for ``cf_ikir``, ``donor_age`` and
    ``donor_age_band``; see :class:`Policy`).

    Raises
    ------
    UsageError
        The file is missing, not a file, not TOML, or not a valid policy.
    TypeError
        ``path`` is not a str or path-like object.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = Path(d, "centre.toml")
    ...     _ = f.write_text('[policy]\\nname = "centre"\\n'
    ...                      'criteria = ["dsa_tier", "donor_age_band", "cf_ikir"]\\n'
    ...                      '[policy.bands]\\ndonor_age = [40]\\n')
    ...     load_policy(f).criteria
    ('dsa_tier', 'donor_age_band', 'cf_ikir', 'donor_id')
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
        raise UsageError(f"policy file {p}: unknown top-level key(s) {sorted(extra)}",
                         raw=", ".join(sorted(extra)))
    pol = data["policy"]
    unknown_keys = set(pol) - {"name", "criteria", "direction", "bands"}
    if unknown_keys:
        raise UsageError(f"policy file {p}: unknown key(s) in [policy]: "
                         f"{', '.join(sorted(unknown_keys))}", raw=", ".join(sorted(unknown_keys)))
    crit = pol.get("criteria")
    if not isinstance(crit, list) or not crit or not all(isinstance(c, str) for c in crit):
        raise UsageError(f"policy file {p}: [policy] criteria must be a non-empty list of "
                         f"names, not {crit!r}", raw=str(crit))
    for key in ("direction", "bands"):
        if not isinstance(pol.get(key, {}), dict):
            raise UsageError(f"policy file {p}: [policy.{key}] must be a table, not "
                             f"{pol[key]!r}", raw=str(pol[key]))
    name: Any = pol.get("name")  # Policy checks it
    try:
        policy = Policy(name.strip() if isinstance(name, str) else name, tuple(crit),
                        pol.get("direction", {}), pol.get("bands", {}), source=str(p),
                        sha256=hashlib.sha256(raw).hexdigest())
    except UsageError as exc:
        raise UsageError(f"policy file {p}: {exc.reason}", raw=exc.raw) from None
    for key in ("direction", "bands"):   # a setting nothing reads is never dropped silently
        for k in pol.get(key, {}):
            if k not in crit and not (key == "bands" and k == "donor_age"
                                      and "donor_age_band" in crit):
                raise UsageError(f"policy file {p}: [policy.{key}] {k}: {k!r} is not one of "
                                 "the policy's criteria", raw=str(k))
    return policy


def resolve_policy(spec: str) -> Policy:
    """``kir-first``, ``haplo-ptcy``, ``ebmt`` or a path to a TOML policy file.

    Raises
    ------
    UsageError
        Neither a built-in policy nor a readable policy file.
    TypeError
        ``spec`` is not a str.

    Examples
    --------
    >>> resolve_policy("ebmt").name
    'ebmt'
    """
    if check_type("spec", spec, str) in _BUILTIN:
        return builtin_policy(spec)
    if not spec.strip():
        raise UsageError(f"ranking policy is empty: {_POLICY_HINT}")
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

    Examples
    --------
    >>> abo_class("AB", "O"), abo_class(None, "O")
    ('major', None)
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
    """Validated clinical inputs of one candidate (None = unknown).

    ``donor_parity`` is the donor's number of pregnancies (0 = nulliparous).

    Examples
    --------
    >>> Clinical(donor_abo="O", recipient_abo="A").abo
    'minor'
    """

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
    return v is None or v == "" or is_blank(v)


#: Relationship words labs write, and the canonical value each means.
RELATIONSHIP_SYNONYMS = {
    "brother": "sibling", "sister": "sibling", "half-sibling": "sibling",
    "half sibling": "sibling", "halfsibling": "sibling", "half-brother": "sibling",
    "half-sister": "sibling", "son": "child", "daughter": "child",
}


#: Words accepted (case-insensitively) in the sex, CMV and ABO columns of a
#: pairs file, and the value each is read as.
SEX_WORDS = {"m": "M", "male": "M", "f": "F", "female": "F"}
CMV_WORDS = {"pos": "pos", "positive": "pos", "+": "pos", "neg": "neg", "negative": "neg",
             "-": "neg"}
ABO_WORDS = {"o": "O", "a": "A", "b": "B", "ab": "AB"}


#: The clinical columns in the order :func:`parse_clinical` checks them (its
#: error names the first bad one; a male donor's pregnancies are checked right
#: after ``donor_sex``).
_CHECK_ORDER = ("donor_age", "donor_parity", "donor_sex", "recipient_sex", "relationship",
                "donor_cmv", "recipient_cmv", "donor_abo", "recipient_abo")
#: The words of each vocabulary column of the clinical inputs.
_CLINICAL_WORDS: dict[str, Mapping[str, str]] = {
    "donor_sex": SEX_WORDS, "recipient_sex": SEX_WORDS,
    "relationship": {**{r: r for r in RELATIONSHIPS}, **RELATIONSHIP_SYNONYMS},
    "donor_cmv": CMV_WORDS, "recipient_cmv": CMV_WORDS,
    "donor_abo": ABO_WORDS, "recipient_abo": ABO_WORDS,
}


def _dsa_detail(hits: str, tier: str, options: Options, flow: bool = False) -> str:
    """The definite DSA behind a donor's ``dsa_tier``, for ``rank_reason``
    (§A.15: ``dsa_tier: high (B51, MFI 8000) vs none``): the first of ``hits``
    (``dsa_hits``: descending MFI) whose own tier is ``tier``; else ``flow
    crossmatch pos`` when the pair's crossmatch is (rule 13: it raises the tier
    to high), else the first hit (an MFI printed rounded, at a threshold);
    ``""`` for tier ``none`` or unknown.

    >>> _dsa_detail("A2 4000;B7 3000 C1q+", "high", Options())
    'B7 3000 C1q+'
    >>> _dsa_detail("A2 4000", "high", Options(), flow=True), _dsa_detail("", "high", Options())
    ('flow crossmatch pos', '')
    >>> _dsa_detail("B7 5000", "moderate", Options())    # 4999.999... printed as 5000
    'B7 5000'
    """
    from kirmatch.dsa import TIERS, antibody_tier

    if tier not in TIERS or tier == "none":
        return ""
    listed = hits.split(";") if hits else []
    for hit in listed:
        parts = hit.split(" ")            # "<specificity> <MFI>[ C1q+]"
        c1q = parts[-1] == "C1q+"
        if antibody_tier(float(parts[-2] if c1q else parts[-1]), c1q, options) == tier:
            return hit
    if flow:
        return "flow crossmatch pos"
    return listed[0] if listed else ""


def _clinical_cell(column: str, v: object) -> float | int | str | None:
    """One clinical cell of a pairs row, validated (None: blank, unknown).

    Raises
    ------
    InputSchemaError
        The value is not understood; the message names the column.
    """
    if _blank(v):
        return None
    if column == "donor_age":
        try:
            age = float(str(v).strip())
        except ValueError:
            raise InputSchemaError(f"donor_age must be a number of years, not {v!r}",
                                   raw=str(v), column="donor_age") from None
        if not 0 <= age < 130:
            raise InputSchemaError(f"donor_age {str(v).strip()!r} is out of range (a finite "
                                   "number of years, 0 to 129)", raw=str(v),
                                   column="donor_age")
        return age
    if column == "donor_parity":
        try:
            number = float(str(v).strip())
        except ValueError:
            number = math.nan
        # a whole number >= 0 ("2" or "2.0"; 1.7, inf and nan are not parities)
        if not (math.isfinite(number) and number.is_integer()):
            raise InputSchemaError(f"donor_parity must be a whole number, not {v!r}",
                                   raw=str(v), column="donor_parity")
        if number < 0:
            raise InputSchemaError("donor_parity must not be negative", raw=str(v),
                                   column="donor_parity")
        return int(number)
    allowed = _CLINICAL_WORDS[column]
    key = str(v).strip().lower()
    if key not in allowed:
        words = ", ".join(sorted(set(allowed.values())))
        raise InputSchemaError(f"{column} must be one of {words}, not {str(v).strip()!r}",
                               raw=str(v), column=column)
    return allowed[key]


def _check_parity(donor_sex: object, parity: object, raw: object) -> None:
    """Pregnancies (``parity``, read from the cell ``raw``) for a male donor
    contradict ``donor_sex``: one of the two cells is wrong, so neither is guessed.

    Raises
    ------
    InputSchemaError
        ``donor_sex`` is M and ``parity`` is above 0 (names ``donor_parity``).
    """
    if donor_sex == "M" and parity:
        raise InputSchemaError(f"donor_parity {parity} (pregnancies) given for a male donor "
                               "(donor_sex M)", raw=str(raw), column="donor_parity")


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

    Examples
    --------
    >>> c = parse_clinical({"donor_sex": "female", "donor_parity": "2", "donor_cmv": "-"})
    >>> c.donor_sex, c.donor_parity, c.donor_cmv, c.recipient_cmv
    ('F', 2, 'neg', None)
    """
    check_mapping("row", row)
    got: dict[str, Any] = {}
    for col in _CHECK_ORDER:
        got[col] = _clinical_cell(col, row.get(col))
        if col == "donor_sex":
            _check_parity(got["donor_sex"], got["donor_parity"], row.get("donor_parity"))
    return Clinical(**got)


def _clinical_rows(columns: Mapping[str, Sequence[str]], n: int
                   ) -> tuple[list[Clinical | None], list[int], dict[str, list[str]]]:
    """:func:`parse_clinical` of ``n`` rows given as text columns, each distinct
    cell of a column read once: each row's :class:`Clinical`, the rows
    :func:`parse_clinical` rejects (None there; parse that row for its error),
    and each column's cells written as kirmatch understood them (``brother`` →
    ``sibling``, ``male`` → ``M``, ``34.0`` → ``34``; a blank or rejected cell as
    it is)."""
    rejected = object()
    fields: dict[str, Iterable[Any]] = {}
    understood: dict[str, list[str]] = {}
    bad: set[int] = set()
    for col in _CHECK_ORDER:
        cells = columns.get(col)
        if cells is None:
            fields[col] = itertools.repeat(None, n)
            continue
        read: dict[str, Any] = {}
        for v in set(cells):
            try:
                read[v] = _clinical_cell(col, v)
            except InputSchemaError:
                read[v] = rejected
        values = [read[v] for v in cells]
        if rejected in read.values():
            bad.update(j for j, x in enumerate(values) if x is rejected)
        fields[col] = values
        text = {v: v if x is None or x is rejected else f"{x:g}" if isinstance(x, float)
                else str(x) for v, x in read.items()}
        understood[col] = [text[v] for v in cells]
    if "donor_sex" in columns and "donor_parity" in columns:
        pairs = list(zip(fields["donor_sex"], fields["donor_parity"], strict=True))
        male_parous = set()
        for sex, parity in set(pairs):
            try:
                _check_parity(sex, parity, "")
            except InputSchemaError:
                male_parous.add((sex, parity))
        if male_parous:
            bad.update(j for j, p in enumerate(pairs) if p in male_parous)
    out: list[Clinical | None] = [
        Clinical(*vals) for vals in zip(*(fields[f.name] for f in dataclass_fields(Clinical)),
                                        strict=True)]
    for j in bad:
        out[j] = None
    return out, sorted(bad), understood


@dataclass(frozen=True, slots=True)
class Candidate:
    """One recipient-donor candidate for ranking.

    ``values`` holds the pair's output columns (encoded strings such as
    ``"true"`` and ``"4"``, or typed values such as ``True`` and ``4``; ``""``,
    None or a missing key is unknown). ``dsa_detail`` describes the highest
    definite DSA for ``rank_reason`` (e.g. ``B7 12500 C1q+``).
    """

    donor_id: str
    values: Mapping[str, Any]           # contract values (encoded, "" = unknown)
    clinical: Clinical
    dsa_detail: str = ""                # e.g. "B51 8000" for the reason text
    error: str = ""                     # non-empty for error rows (never ranked)


@dataclass(frozen=True, slots=True)
class RankedDonor:
    donor_id: str
    rank: int | None
    rank_reason: str
    keys: tuple[Any, ...]
    clinical_unknown: tuple[str, ...] = ()


# ---------------------------------------------------------------------------
# Criteria: one function per name of the §A.15 table
# ---------------------------------------------------------------------------


class _Value(NamedTuple):
    """One criterion of one candidate: sort key, shown value, clinical fields missing."""

    key: float | str
    shown: str
    missing: tuple[str, ...] = ()


#: :class:`_Value` made once per distinct (key, shown, missing): most criteria
#: give one of a few.
_value = functools.lru_cache(maxsize=4096, typed=True)(_Value)


def _unknown(cl: Clinical | None = None, fields: Sequence[str] = ()) -> _Value:
    """Unknown (sorts last), naming the clinical ``fields`` of ``cl`` that are blank."""
    missing = tuple(f for f in fields if cl is not None and getattr(cl, f) is None)
    return _value(_UNKNOWN, "unknown", missing)


def _column(cand: Candidate, column: str, order: Mapping[str, float]) -> str | None:
    """A vocabulary column of the pair as its canonical text; None when unknown."""
    raw = cand.values.get(column)
    if type(raw) is str and raw in order:  # the usual cell (no vocabulary word is blank)
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if _blank(raw):
        return None
    text = str(raw).strip()
    if text not in order:
        raise UsageError(f"{column} of donor {cand.donor_id!r} is {raw!r}, not one of "
                         f"{', '.join(order)}", raw=str(raw))
    return text


def _ranked_column(cand: Candidate, column: str, order: Mapping[str, float]) -> _Value:
    """Key ``order[value]`` and the value itself, or unknown."""
    text = _column(cand, column, order)
    return _unknown() if text is None else _value(order[text], text)


def _band_label(i: int, cuts: Sequence[float]) -> str:
    """``< 58``, ``35 to < 45`` or ``≥ 58`` for band ``i`` of ``cuts``."""
    if i == 0:
        return f"< {cuts[0]:g}"
    if i == len(cuts):
        return f"≥ {cuts[-1]:g}"
    return f"{cuts[i - 1]:g} to < {cuts[i]:g}"


def _numeric(criterion: str, x: float, policy: Policy, cuts: tuple[float, ...],
             default: str) -> _Value:
    """A number under the policy's direction; with ``cuts``, its band is the key and
    the shown value is ``72 (≥ 58)``."""
    # -0.0 equals 0.0 but is shown as -0: its sign is part of the cache key
    return _numeric_value(x, math.copysign(1.0, x), cuts,
                          policy.direction.get(criterion, default) == "desc")


@functools.lru_cache(maxsize=4096)
def _numeric_value(x: float, sign: float, cuts: tuple[float, ...], desc: bool) -> _Value:
    """:func:`_numeric` once per distinct number (and ``sign``), cuts and direction."""
    if cuts:
        band = sum(x >= c for c in cuts)
        key, shown = float(band), f"{x:g} ({_band_label(band, cuts)})"
    else:
        key, shown = float(x), f"{x:g}"
    return _Value(-key if desc else key, shown)


def _crit_dsa_tier(cand: Candidate, policy: Policy) -> _Value:
    """Rule 13 ``dsa_tier_worst`` first; a donor whose ``dsa_tier`` is unknown half a
    step after a known donor of the same worst tier.

    Without a ``dsa_tier_worst`` column a known ``dsa_tier`` stands for it (the
    two are equal by definition when the tier is known); a known tier that
    disagrees with its worst tier is an error, not a guess.
    """
    tier = _column(cand, "dsa_tier", _DSA_KEY)
    worst = _column(cand, "dsa_tier_worst", _DSA_KEY) or tier
    if worst is None:
        return _unknown()
    if tier is None:
        return _Value(_DSA_KEY[worst] + 0.5, f"unknown (worst {worst})")
    if worst != tier:
        raise UsageError(f"donor {cand.donor_id!r}: dsa_tier_worst {worst!r} differs from the "
                         f"known dsa_tier {tier!r}", raw=worst)
    shown = f"{tier} ({cand.dsa_detail})" if tier != "none" and cand.dsa_detail else tier
    return _Value(_DSA_KEY[tier], shown)


def _finite(raw: Any) -> float | None:
    """``raw`` as a finite float (``4``, ``"4"``, ``4.0``); None for anything else."""
    if isinstance(raw, bool):
        return None
    try:
        x = float(raw)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _crit_cf_ikir(cand: Candidate, policy: Policy) -> _Value:
    """Higher CF-iKIR first (rule 8), unless the policy says ``asc``."""
    raw = cand.values.get("cf_ikir")
    if type(raw) is int:   # the engine's cells (a number is never blank)
        return _numeric("cf_ikir", float(raw), policy, policy.bands.get("cf_ikir", ()), "desc")
    if _blank(raw):
        return _unknown()
    x = _finite(raw)
    if x is None:
        raise UsageError(f"cf_ikir of donor {cand.donor_id!r} is {raw!r}, not a number",
                         raw=str(raw))
    return _numeric("cf_ikir", x, policy, policy.bands.get("cf_ikir", ()), "desc")


def _crit_donor_age(cand: Candidate, policy: Policy) -> _Value:
    """Younger first, in years (or in ``bands.donor_age`` when given)."""
    x = cand.clinical.donor_age
    if x is None:
        return _unknown(cand.clinical, ("donor_age",))
    return _numeric("donor_age", x, policy, policy.bands.get("donor_age", ()), "asc")


def _crit_donor_age_band(cand: Candidate, policy: Policy) -> _Value:
    """Younger age band first (``kir-first`` < 58 / ≥ 58, ``haplo-ptcy`` < 35 / ≥ 35)."""
    x = cand.clinical.donor_age
    if x is None:
        return _unknown(cand.clinical, ("donor_age",))
    return _numeric("donor_age_band", x, policy, policy.age_bands, "asc")


def _crit_donor_sex(cand: Candidate, policy: Policy) -> _Value:
    """Male donor < female donor to a female recipient < female donor to a male one."""
    cl = cand.clinical
    if cl.donor_sex == "M":
        return _value(0, "male donor")
    if cl.donor_sex == "F" and cl.recipient_sex == "F":
        return _value(1, "female donor to female recipient")
    if cl.donor_sex == "F" and cl.recipient_sex == "M":
        return _value(2, "female donor to male recipient")
    return _unknown(cl, ("donor_sex", "recipient_sex"))


def _crit_donor_parity(cand: Candidate, policy: Policy) -> _Value:
    """To a male recipient: male or nulliparous donor < parous donor; to a female
    recipient every donor is equal, whether or not the parity is known.

    With the recipient's sex unknown, a male or nulliparous donor is still best
    (the key is the same for either recipient sex) but a parous donor is
    unknown.
    """
    cl = cand.clinical
    if cl.recipient_sex == "F":
        return _value(0, "female recipient")
    if cl.donor_parity == 0:
        return _value(0, "nulliparous donor")
    if cl.donor_parity is None:
        if cl.donor_sex == "M":
            return _value(0, "male donor")
        return _unknown(cl, ("donor_parity", "donor_sex", "recipient_sex"))
    if cl.recipient_sex == "M":  # pregnancies make the donor a parous woman
        n = cl.donor_parity
        return _Value(1, f"parous donor ({n} pregnanc{'y' if n == 1 else 'ies'})")
    return _unknown(cl, ("recipient_sex",))


def _crit_relationship(cand: Candidate, policy: Policy) -> _Value:
    """Child or sibling < father < mother < other."""
    rel = cand.clinical.relationship
    if rel is None:
        return _unknown(cand.clinical, ("relationship",))
    return _value(_REL_KEY[rel], rel)


def _crit_cmv(cand: Candidate, policy: Policy) -> _Value:
    """Same CMV serostatus as the recipient first (Fuchs 2022: D-/R- before D+/R-;
    D+/R+ before D-/R+); shown as ``D+/R-``."""
    cl = cand.clinical
    if cl.donor_cmv is None or cl.recipient_cmv is None:
        return _unknown(cl, ("donor_cmv", "recipient_cmv"))
    shown = f"D{_CMV_SIGN[cl.donor_cmv]}/R{_CMV_SIGN[cl.recipient_cmv]}"
    return _value(0 if cl.donor_cmv == cl.recipient_cmv else 1, shown)


def _crit_abo(cand: Candidate, policy: Policy) -> _Value:
    """ABO match < minor < major < bidirectional."""
    a = cand.clinical.abo
    if a is None:
        return _unknown(cand.clinical, ("donor_abo", "recipient_abo"))
    return _value(_ABO_KEY[a], a)


def _crit_b_content_group(cand: Candidate, policy: Policy) -> _Value:
    """Best < Better < Neutral (rule 9)."""
    return _ranked_column(cand, "b_content_group", _BCONTENT_KEY)


def _crit_b_leader_match(cand: Candidate, policy: Policy) -> _Value:
    """HLA-B leader matched (rule 16) first."""
    return _ranked_column(cand, "b_leader_match", _BOOL_KEY)


def _crit_drb1_mm_dqb1_match(cand: Candidate, policy: Policy) -> _Value:
    """DRB1 mismatch with DQB1 match (rule 16) first."""
    return _ranked_column(cand, "drb1_mm_dqb1_match", _BOOL_KEY)


def _crit_dpb1_tce(cand: Candidate, policy: Policy) -> _Value:
    """Non-permissive GvH < permissive = match < non-permissive HvG (rule 16)."""
    return _ranked_column(cand, "dpb1_tce", _DPB1_TCE_KEY)


def _crit_hla_relation(cand: Candidate, policy: Policy) -> _Value:
    """Identical < haploidentical < not haploidentical (rule 16)."""
    return _ranked_column(cand, "hla_relation", _HLA_RELATION_KEY)


def _crit_donor_id(cand: Candidate, policy: Policy) -> _Value:
    """Code-point order: the final tie-breaker."""
    return _Value(cand.donor_id, cand.donor_id)


#: One function per criterion, in the order of :data:`CRITERIA`.
_CRITERION_FUNCTIONS: dict[str, Callable[[Candidate, Policy], _Value]] = {
    "dsa_tier": _crit_dsa_tier, "cf_ikir": _crit_cf_ikir, "donor_age": _crit_donor_age,
    "donor_sex": _crit_donor_sex, "relationship": _crit_relationship, "cmv": _crit_cmv,
    "abo": _crit_abo, "b_content_group": _crit_b_content_group,
    "donor_age_band": _crit_donor_age_band, "b_leader_match": _crit_b_leader_match,
    "drb1_mm_dqb1_match": _crit_drb1_mm_dqb1_match, "dpb1_tce": _crit_dpb1_tce,
    "donor_parity": _crit_donor_parity, "hla_relation": _crit_hla_relation,
    "donor_id": _crit_donor_id,
}


def rank_donors(candidates: Sequence[Candidate], policy: Policy) -> list[RankedDonor]:
    """Rank one recipient's candidates. Error rows get no rank and follow the others.

    ``rank_reason`` names the first criterion, in policy order, on which a donor
    differs from the donor ranked directly above it, with both values
    (``this vs above``); the top donor gets ``top``. A banded criterion shows
    the value and its band: ``donor_age_band: 72 (≥ 58) vs 38 (< 58)``.

    The §A.15 illustration (ages 34, 29 and 25 are all in the band < 58, so
    CF-iKIR decides under ``kir-first``):

    >>> pol = builtin_policy("kir-first")
    >>> cs = [Candidate("Da", {"dsa_tier": "none", "cf_ikir": 4}, Clinical(donor_age=34)),
    ...       Candidate("Db", {"dsa_tier": "none", "cf_ikir": 2}, Clinical(donor_age=29)),
    ...       Candidate("Dc", {"dsa_tier": "low", "cf_ikir": 4}, Clinical(donor_age=25))]
    >>> [(r.donor_id, r.rank, r.rank_reason) for r in rank_donors(cs, pol)]
    [('Da', 1, 'top'), ('Db', 2, 'cf_ikir: 2 vs 4'), ('Dc', 3, 'dsa_tier: low vs none')]
    >>> [(r.donor_id, r.rank_reason) for r in rank_donors(cs, builtin_policy("ebmt"))]
    [('Db', 'top'), ('Da', 'donor_age: 34 vs 29'), ('Dc', 'dsa_tier: low vs none')]

    A 72-year-old father with one more inhibitory KIR than a 38-year-old brother:

    >>> fam = [Candidate("father", {"dsa_tier": "none", "cf_ikir": 4}, Clinical(donor_age=72)),
    ...        Candidate("brother", {"dsa_tier": "none", "cf_ikir": 3}, Clinical(donor_age=38))]
    >>> [(r.donor_id, r.rank_reason) for r in rank_donors(fam, pol)]
    [('brother', 'top'), ('father', 'donor_age_band: 72 (≥ 58) vs 38 (< 58)')]

    Raises
    ------
    TypeError
        ``candidates`` is not a sequence of :class:`Candidate`, or ``policy``
        is not a :class:`Policy`.
    UsageError
        A candidate's column value is outside its vocabulary (for example
        ``dpb1_tce`` ``"permisive"``); the message names the donor, column and value.
    """
    check_sequence("candidates", candidates, Candidate)
    check_type("policy", policy, Policy)
    ok = [c for c in candidates if not c.error]
    bad = sorted((c for c in candidates if c.error), key=lambda c: c.donor_id)
    functions = [_CRITERION_FUNCTIONS[name] for name in policy.criteria]
    scored = []
    for c in ok:
        parts = [f(c, policy) for f in functions]
        keys = tuple(p.key for p in parts)
        missing = [p.missing for p in parts if p.missing]
        unknown = tuple(sorted({f for m in missing for f in m})) if missing else ()
        scored.append((keys, parts, c, unknown))
    try:
        in_order = sorted(scored, key=itemgetter(0))
    except TypeError:   # a number and a string met: numbers first
        in_order = sorted(scored, key=lambda s: tuple((isinstance(k, str), k) for k in s[0]))
    out: list[RankedDonor] = []
    prev: list[_Value] | None = None
    for i, (keys, parts, c, unknown) in enumerate(in_order, start=1):
        if prev is None:
            reason = "top"
        else:
            reason = "tie"
            for name, mine, theirs in zip(policy.criteria, parts, prev, strict=True):
                if mine.key != theirs.key:
                    reason = f"{name}: {mine.shown} vs {theirs.shown}"
                    break
        out.append(RankedDonor(c.donor_id, i, reason, keys, unknown))
        prev = parts
    out.extend(RankedDonor(c.donor_id, None, "", (), ()) for c in bad)
    return out


# ---------------------------------------------------------------------------
# Ranking a whole pairs table
# ---------------------------------------------------------------------------

#: Pairs-file columns read for ranking (every other column passes through).
CLINICAL_COLUMNS = ("donor_age", "donor_sex", "recipient_sex", "relationship", "donor_cmv",
                    "recipient_cmv", "donor_abo", "recipient_abo", "donor_parity")


@dataclass(frozen=True, slots=True)
class RankedRow:
    """One pairs row after assessment and ranking (``index`` = its place in the file).

    ``pair_row`` holds the row's pairs cells, the clinical ones as kirmatch read
    them (``brother`` → ``sibling``, ``male`` → ``M``) unless the row is an error.
    """

    index: int
    pair_row: Mapping[str, Any]
    assessment: Any                      # kirmatch.pair.PairAssessment
    rank: int | None
    rank_reason: str
    clinical: Clinical | None
    row: int = 0                         # 1-based data row of the pairs file

    def to_row(self) -> dict[str, str]:
        a = self.assessment
        if a.status == "ok" and isinstance(a.values, _RowValues):
            # the engine's own cells (what to_row would encode again, one by one)
            out = {"recipient_id": a.recipient_id, "donor_id": a.donor_id, "status": "ok",
                   "error": "", "warnings": ";".join(a.warnings), **a.values.cells()}
        else:
            out = a.to_row()
        out["rank"] = "" if self.rank is None else str(self.rank)
        out["rank_reason"] = self.rank_reason
        return out


def ranked_table(ranked: Sequence[RankedRow], pair_columns: Sequence[str]) -> Any:
    """The table ``kirmatch rank --output`` writes: ``pair_columns`` (from each
    row's ``pair_row``), then the contract columns (§A.16) not among them, then
    ``rank`` and ``rank_reason``, one row per ranked row, every cell text; a
    column of both takes the contract's cell.

    Cell for cell what :meth:`RankedRow.to_row` gives over ``pair_row``, built
    column by column and dictionary-encoded (``large_string`` values): the model
    cells of the rows :func:`rank_cohort` assessed keep the engine's codes; the
    other columns hold each distinct cell once.
    """
    import numpy as np
    import pyarrow as pa

    from kirmatch.pair import CONTRACT_COLUMNS, RANK_COLUMNS
    from kirmatch.registry import COLUMNS

    own = (*CONTRACT_COLUMNS, *RANK_COLUMNS)
    columns = [*pair_columns, *(c for c in own if c not in pair_columns)]
    cells: _Cells | None = None
    engine_rows: list[int] = []      # rows whose model cells are cells' (row j of it)
    engine_js: list[int] = []
    rows: dict[int, dict[str, str]] = {}  # the other rows' to_row
    for i, r in enumerate(ranked):
        v = r.assessment.values
        if r.assessment.status == "ok" and type(v) is _RowValues and \
                (cells is None or v._cells is cells):
            cells = v._cells
            engine_rows.append(i)
            engine_js.append(v._j)
        else:
            rows[i] = r.to_row()

    def per_row(cell: Callable[[RankedRow], Any], text: Callable[[Any], str],
                column: str | None = None) -> pa.Array:
        """Each row's ``cell`` (with ``column``, the other rows' to_row cell),
        each distinct one written once with ``text`` (a text as it is)."""
        keys = [cell(r) for r in ranked]
        if column is not None:
            for i, row in rows.items():
                keys[i] = row[column]
        index: dict[Any, int] = {}
        codes = [index.setdefault(k, len(index)) for k in keys]
        return pa.DictionaryArray.from_arrays(
            pa.array(codes, pa.int32()),
            pa.array([k if type(k) is str else text(k) for k in index], pa.large_string()))

    # the engine's rows, all of them and in its order (no other row)
    every_row = cells is not None and not rows and \
        engine_js == list(range(len(cells.indices["status"])))

    def model(column: str) -> pa.Array:
        vocab = cells.vocab[column] if cells is not None else []
        if every_row:
            codes = cells.indices[column]  # type: ignore[union-attr]
        else:
            codes = np.empty(len(ranked), np.int64)
            if cells is not None:
                codes[engine_rows] = cells.indices[column][engine_js]
            extra: dict[str, int] = {}      # the other rows' cells (most are empty)
            codes[list(rows)] = [extra.setdefault(row[column], len(vocab) + len(extra))
                                 for row in rows.values()]
            vocab = [*vocab, *extra]
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()),
                                              pa.array(vocab, pa.large_string()))

    by_row: dict[str, tuple[Callable[[RankedRow], Any], Callable[[Any], str]]] = {
        "recipient_id": (lambda r: r.assessment.recipient_id, str),
        "donor_id": (lambda r: r.assessment.donor_id, str),
        "status": (lambda r: r.assessment.status, str),
        "error": (lambda r: r.assessment.error, str),
        "warnings": (lambda r: r.assessment.warnings, ";".join),
        "rank": (lambda r: r.rank, lambda k: "" if k is None else str(k)),
        "rank_reason": (lambda r: r.rank_reason, str),
    }
    data: dict[str, pa.Array] = {}
    for c in columns:
        if c in COLUMNS:
            data[c] = model(c)
        elif c in own:
            data[c] = per_row(*by_row[c], column=c)
        else:
            data[c] = per_row(lambda r, c=c: r.pair_row.get(c, ""), str)  # type: ignore[misc]
    return pa.table(data)


class _PerColumn(dict):  # type: ignore[type-arg]
    """A value per column, made by ``make(column)`` when first asked for."""

    def __init__(self, make: Callable[[str], Any]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, column: str) -> Any:
        value = self[column] = self._make(column)
        return value


class _Cells:
    """The engine's output cells of one chunk, column by column: each column's
    distinct cells and one code per row, decoded once per distinct cell (codes
    as a list and decoded cells made for the columns read row by row)."""

    def __init__(self, columns: Mapping[str, Any], names: Sequence[str]) -> None:
        import numpy as np
        import pyarrow as pa

        from kirmatch.registry import decode

        self.vocab: dict[str, list[str]] = {}
        self.indices: dict[str, np.ndarray] = {}    # the codes as an array
        self.codes: dict[str, list[int]] = _PerColumn(lambda c: self.indices[c].tolist())
        self.decoded: dict[str, list[Any]] = _PerColumn(
            lambda c: [decode(c, t) for t in self.vocab[c]])
        for c in names:
            arr = columns[c]
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if isinstance(arr, pa.DictionaryArray):
                self.vocab[c] = arr.dictionary.to_pylist()
                self.indices[c] = np.asarray(arr.indices.to_numpy(zero_copy_only=False))
            else:
                self.vocab[c] = arr.to_pylist()
                self.indices[c] = np.arange(len(arr))

    def text(self, column: str, j: int) -> str:
        return self.vocab[column][self.codes[column][j]]

    def texts(self, column: str) -> list[str]:
        """Every row's cell of ``column``."""
        vocab = self.vocab[column]
        return [vocab[k] for k in self.codes[column]]

    def value(self, column: str, j: int) -> Any:
        return self.decoded[column][self.codes[column][j]]


class _RowValues(Mapping[str, Any]):
    """One row's decoded contract values, read from :class:`_Cells` on access."""

    __slots__ = ("_cells", "_j")

    def __init__(self, cells: _Cells, j: int) -> None:
        self._cells, self._j = cells, j

    def __getitem__(self, column: str) -> Any:
        if column not in self._cells.vocab:
            raise KeyError(column)
        return self._cells.value(column, self._j)

    def get(self, column: str, default: Any = None) -> Any:
        cells = self._cells
        if column not in cells.vocab:
            return default
        return cells.decoded[column][cells.codes[column][self._j]]

    def __iter__(self) -> Any:
        from kirmatch.registry import COLUMNS

        return iter(COLUMNS)

    def __len__(self) -> int:
        from kirmatch.registry import COLUMNS

        return len(COLUMNS)

    def cells(self) -> dict[str, str]:
        """The row's contract cells as the engine wrote them."""
        from kirmatch.registry import COLUMNS

        c, j = self._cells, self._j
        return {col: c.vocab[col][c.codes[col][j]] for col in COLUMNS}


def rank_cohort(people: Any, pairs: Any, *, policy: Policy, options: Any, tables: Any,
                antibodies: Mapping[str, Any] | None = None, pyard: Any = None,
                details: bool = True, progress: ProgressCallback | None = None
                ) -> list[RankedRow]:
    """Assess (with the batch engine) and rank every candidate of a pairs table.

    ``people`` is a :class:`kirmatch.people.People`; ``pairs`` a
    :class:`kirmatch.tabular.Chunk` holding ``recipient_id``, ``donor_id`` and the
    optional clinical columns; ``antibodies`` maps recipient id to its antibody
    list or to the error its rows raised (then that recipient's rows are errors
    and the others are still ranked). One result per pairs row, in file order.
    ``details=False`` leaves out what only the HTML report shows (each pair's
    typings and full DSA result), which makes large cohorts faster.
    ``progress`` receives :class:`~kirmatch.progress.Progress` events of the
    stages ``people`` (resolving each distinct typing once), ``pairs`` (every
    model for every pair), ``rows`` (clinical columns and results, per pairs
    row) and ``ranking`` (per recipient).
    """
    import numpy as np

    from kirmatch.batch import assess_chunk, lookup_ids, prepare_engine
    from kirmatch.dsa import NO_ANTIBODY_DATA, PanelScreen, parse_flow_crossmatch, shared_screen
    from kirmatch.errors import KirmatchError
    from kirmatch.pair import PairAssessment, error_row, run_record
    from kirmatch.registry import COLUMNS

    stages = Stages(progress)
    engine = prepare_engine(stages, people, options, tables, pyard)
    panels = None if antibodies is None else PanelScreen(
        shared_screen(tables, options, pyard), people, antibodies)
    r_idx, r_text = lookup_ids(people, pairs.table.column("recipient_id"))
    d_idx, d_text = lookup_ids(people, pairs.table.column("donor_id"))
    r_ids, d_ids = r_text.to_pylist(), d_text.to_pylist()
    stages.start("pairs", total=pairs.num_rows, unit="pairs",
                 detail=f"assessing {pairs.num_rows:,} pairs")
    res = assess_chunk(engine, pairs, panels=panels)
    stages.finish(pairs.num_rows)
    stages.start("rows", total=pairs.num_rows, unit="pairs")
    opts_record = run_record(options, tables)
    names = pairs.columns
    texts = {name: pairs.texts(name) for name in names}
    n = pairs.num_rows
    clinicals, _, understood = _clinical_rows(
        {c: texts[c] for c in CLINICAL_COLUMNS if c in texts}, n)
    cells = _Cells(res.columns, ("status", "error", "warnings", *COLUMNS))
    seen: dict[tuple[str, str], list[int]] = {}
    for j in range(n):
        if j not in pairs.errors and r_ids[j] and d_ids[j]:
            seen.setdefault((r_ids[j], d_ids[j]), []).append(j)
    status, wcodes = cells.texts("status"), cells.codes["warnings"]
    # Rows the engine assessed and that are not errors here wait for the ranking:
    # their assessment is made then, with the warnings it adds.
    assessed: list[Any] = [None] * n          # each error row's PairAssessment
    clinical_of: list[Clinical | None] = [None] * n
    for j in range(n):
        stages.update(j)
        rid, did, line = r_ids[j], d_ids[j], pairs.first_row + j
        try:
            if status[j] == "error":
                raise _RowError(cells.text("error", j))
            dups = seen.get((rid, did), [])
            if len(dups) > 1:
                rows_txt = ", ".join(str(pairs.first_row + k) for k in dups)
                raise InputSchemaError(f"donor {did!r} is listed more than once for recipient "
                                       f"{rid!r} (pairs rows {rows_txt})", row=line,
                                       column="donor_id")
            clinical = clinicals[j]
            if clinical is None:  # a rejected row: parse_clinical says why
                clinical = _located(parse_clinical, {c: texts[c][j] for c in names}, line)
            clinical_of[j] = clinical
        except _RowError as exc:
            assessed[j] = PairAssessment(rid, did, {}, (), opts_record, status="error",
                                         error=str(exc))
        except KirmatchError as exc:
            assessed[j] = error_row(rid, did, exc, opts_record)
    by_recipient: dict[str, list[int]] = {}
    for j, rid in enumerate(r_ids):
        by_recipient.setdefault(rid, []).append(j)
    stages.finish(pairs.num_rows)
    stages.start("ranking", total=len(by_recipient), unit="recipients")
    # the definite DSA that sets the tier ("B7 12500 C1q+"), once per distinct
    # (dsa_hits, dsa_tier, crossmatch positive)
    tier_setters: dict[tuple[int, int, bool], str] = {}
    hit_codes, tier_codes = cells.codes["dsa_hits"], cells.codes["dsa_tier"]
    hit_texts, tier_texts = cells.decoded["dsa_hits"], cells.decoded["dsa_tier"]
    flows = texts.get("flow_crossmatch")

    def detail(j: int) -> str:
        flow = flows is not None and parse_flow_crossmatch(flows[j]) is True  # ok rows only
        key = (int(hit_codes[j]), int(tier_codes[j]), flow)
        got = tier_setters.get(key)
        if got is None:
            got = tier_setters[key] = _dsa_detail(hit_texts[key[0]] or "",
                                                  tier_texts[key[1]] or "", options, flow)
        return got

    values = [_RowValues(cells, j) for j in range(n)]
    ranks: list[tuple[int | None, str]] = [(None, "")] * n
    clinical_unknown: dict[int, tuple[str, ...]] = {}
    for done, idxs in enumerate(by_recipient.values()):
        stages.update(done)
        cands = []
        index_of: dict[str, int] = {}
        for i in idxs:
            if assessed[i] is not None:   # an error row: no rank
                continue
            index_of[d_ids[i]] = i  # unique: duplicates were made error rows
            cands.append(Candidate(d_ids[i], values[i], clinical_of[i],  # type: ignore[arg-type]
                                   detail(i)))
        for rd in rank_donors(cands, policy):
            i = index_of[rd.donor_id]
            ranks[i] = (rd.rank, rd.rank_reason)
            if rd.clinical_unknown:   # clinical fields the policy needed and did not get
                clinical_unknown[i] = rd.clinical_unknown
    # the engine's warnings and their unknown reasons, once per distinct warnings
    # cell; with the clinical fields missing, once per distinct cell and fields
    by_cell: dict[int, tuple[frozenset[str], tuple[str, ...], dict[str, str]]] = {}
    # the donor's facts behind the columns (read for the assessed rows only, whose
    # donor is a person of the genotypes)
    donors = np.maximum(d_idx, 0)
    ikir, kir3dl1 = engine.facts_of("ikir", donors), engine.facts_of("kir3dl1_class", donors)
    with_missing: dict[tuple[int, tuple[str, ...]], tuple[str, ...]] = {}
    # each row's pairs cells; an assessed row's clinical cells as kirmatch read them
    cells_of = zip(*(texts[c] for c in names), strict=True)
    read_of = zip(*(understood.get(c, texts[c]) for c in names), strict=True)
    out = []
    for i, (as_given, as_read) in enumerate(zip(cells_of, read_of, strict=True)):
        a = assessed[i]
        clinical = clinical_of[i]
        if a is None:
            wcode = wcodes[i]
            got = by_cell.get(wcode)
            if got is None:
                # sorted and unique: sorting the engine's cell (sorted already) is quick
                items = sorted(filter(None, cells.vocab["warnings"][wcode].split(";")))
                ws = frozenset(items)
                got = by_cell[wcode] = (ws, tuple(items) if len(ws) == len(items) else
                                        tuple(sorted(ws)), _Reasons(ws))
            ws, warnings, unknown = got
            missing = clinical_unknown.get(i)
            if missing:
                key = (wcode, missing)
                more = with_missing.get(key)
                if more is None:   # the engine's warnings with these, sorted and unique
                    added = {f"clinical_unknown({f})" for f in missing} - ws
                    more = with_missing[key] = tuple(sorted((*warnings, *added)))
                warnings = more
            facts: dict[str, Any] = {"donor_ikir": ikir[i], "kir3dl1_class": kir3dl1[i]}
            dsa = None
            if details:
                ri, di = int(r_idx[i]), int(d_idx[i])
                dsa = NO_ANTIBODY_DATA if res.dsa is None else res.dsa.result(i)
                facts.update({"recipient_hla": people.hla(ri), "donor_hla": people.hla(di),
                              "recipient_kir": people.kir(ri), "donor_kir": people.kir(di)})
            a = PairAssessment(r_ids[i], d_ids[i], values[i],  # type: ignore[arg-type]
                               warnings, opts_record, unknown=unknown, facts=facts, dsa=dsa)
        rank, reason = ranks[i]
        out.append(RankedRow(i, dict(zip(names, as_given if clinical is None else as_read,
                                         strict=True)),
                             a, rank, reason, clinical, pairs.first_row + i))
    stages.finish(len(by_recipient))
    return out


class _Reasons(Mapping[str, str]):
    """Column -> reason of a row's ``unknown(<column>: <reason>)`` warnings, read
    from them when first asked for (the output table does not need them)."""

    __slots__ = ("_read", "_warnings")

    def __init__(self, warnings: Iterable[str]) -> None:
        self._warnings = warnings
        self._read: dict[str, str] | None = None

    def _reasons(self) -> dict[str, str]:
        if self._read is None:
            self._read = _unknown_reasons(self._warnings)
        return self._read

    def __getitem__(self, column: str) -> str:
        return self._reasons()[column]

    def __iter__(self) -> Iterator[str]:
        return iter(self._reasons())

    def __len__(self) -> int:
        return len(self._reasons())

    def __repr__(self) -> str:
        return repr(self._reasons())


def _unknown_reasons(warnings: Iterable[str]) -> dict[str, str]:
    """Column -> reason from the row's ``unknown(<column>: <reason>)`` warnings."""
    out = {}
    for w in warnings:
        if w.startswith("unknown(") and w.endswith(")") and ": " in w:
            col, _, reason = w[8:-1].partition(": ")
            out[col] = reason
    return out


class _RowError(Exception):
    """A row the engine already made an error (its text is the error cell)."""


def _located(fn: Any, row: Mapping[str, Any], line: int) -> Any:
    from kirmatch.errors import KirmatchError

    try:
        return fn(row)
    except KirmatchError as exc:
        raise exc.located(row=line) from None
