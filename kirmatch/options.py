"""Options of the kirmatch rules (DOMAIN.md §A.1) and the run record.

Every option is settable from the API and the CLI; every value, defaults
included, is recorded in the output (``Options.to_dict``).

>>> Options().ambiguity_policy
'strict'
>>> Options.from_dict({"include_a3a11": True}).include_a3a11
True
>>> Options.from_dict({"no_such_option": 1})
Traceback (most recent call last):
...
kirmatch.errors.UsageError: unknown option(s): no_such_option
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from kirmatch.api import check_mapping, check_number, check_type, type_error
from kirmatch.errors import UsageError

__all__ = ["DSA_THRESHOLDS", "OPTION_HELP", "RULES_ID", "RULES_VERSION", "AmbiguityPolicy",
           "Options", "SingleAllele", "option_flag"]

#: The rule-set id; any change of behaviour needs a new id (DOMAIN.md Part A).
RULES_ID = "kirmatch-rules-v2"
#: Human-readable rules version printed by ``kirmatch --version``.
RULES_VERSION = "kirmatch rules v2"

AmbiguityPolicy = Literal["strict", "cwd", "majority"]
SingleAllele = Literal["homozygous", "unknown"]

_POLICIES = ("strict", "cwd", "majority")
#: The DSA tier thresholds (rule 13), lowest first: lower bounds of tiers
#: ``low``, ``moderate``, ``high`` and ``very high``.
DSA_THRESHOLDS = ("dsa_low_mfi", "dsa_moderate_mfi", "dsa_high_mfi", "dsa_very_high_mfi")
_SINGLE = ("homozygous", "unknown")


#: One line on each option (the command-line help and the rules reference read
#: these; ``tests/test_docs.py`` checks that every field has one).
OPTION_HELP: dict[str, str] = {
    "ambiguity_policy": "How ambiguous HLA typings are resolved (rule 2): strict keeps every "
                        "candidate, cwd keeps common and well-documented alleles, majority "
                        "takes the call most candidates share.",
    "hla_a_bw4": "Count HLA-A*23/*24/*32 Bw4 in the ligand set (rule 3).",
    "a25_bw4": "Also count HLA-A*25 Bw4 (only with hla_a_bw4).",
    "include_a3a11": "Add A3/A11 to the ligand-ligand model and KIR3DL2 to receptor-ligand "
                     "(rules 4, 6).",
    "ipd_compatible": "Rule 4 from HLA-B and HLA-C only, like the IPD-KIR ligand calculator.",
    "exclude_null_kir3dl1": "Count KIR3DL1 in CF-iKIR only with a class H or L allele "
                            "(rule 8).",
    "dsa_low_mfi": "MFI from which a DSA is tier low (rule 13).",
    "dsa_moderate_mfi": "MFI from which a DSA is tier moderate.",
    "dsa_high_mfi": "MFI from which a DSA is tier high (C1q+ is high at any MFI).",
    "dsa_very_high_mfi": "MFI from which a DSA is tier very high.",
    "dsa_count_self": "Count antibodies against antigens the recipient carries (default: left "
                      "out, warned).",
    "wkir_weights": "Weights of iKIR, aKIR and mKIR in wkir_score (rule 17).",
    "ranking_policy": "Ranking policy: kir-first, haplo-ptcy, ebmt, or a policy TOML file.",
    "single_allele": "Read a single typing at a locus as homozygous, or as unknown.",
    "kirimp_min_posterior": "KIR*IMP: posterior needed for a presence or absence call.",
    "t1k_min_quality": "T1K: an allele counts if its quality is above this.",
    "hlaimp_min_posterior": "HLA*IMP: posterior needed for an imputed allele; a locus with a "
                            "haplotype below it is left untyped.",
}
#: The command-line flag of each option, where it is not ``--`` + the name with
#: dashes.
OPTION_FLAGS = {"ambiguity_policy": "--ambiguity", "ranking_policy": "--policy"}


def option_flag(name: str) -> str:
    """The command-line flag of option ``name``.

    >>> option_flag("include_a3a11"), option_flag("ambiguity_policy")
    ('--include-a3a11', '--ambiguity')
    """
    return OPTION_FLAGS.get(name, "--" + name.replace("_", "-"))


@dataclass(frozen=True, slots=True)
class Options:
    """All rule-set options (§A.1) and reader settings, with their defaults."""

    ambiguity_policy: AmbiguityPolicy = "strict"
    hla_a_bw4: bool = True
    a25_bw4: bool = False
    include_a3a11: bool = False
    ipd_compatible: bool = False
    exclude_null_kir3dl1: bool = False
    dsa_low_mfi: float = 1000.0
    dsa_moderate_mfi: float = 2000.0
    dsa_high_mfi: float = 5000.0
    dsa_very_high_mfi: float = 20000.0
    dsa_count_self: bool = False
    #: Rule 17: the wKIR weights of (iKIR, aKIR, mKIR), Krieger 2020 (§A.20).
    wkir_weights: tuple[float, float, float] = (0.80, 0.14, 0.99)
    ranking_policy: str = "kir-first"
    # Reader settings (outside the rule set, recorded the same way).
    single_allele: SingleAllele = "homozygous"
    kirimp_min_posterior: float = 0.5
    t1k_min_quality: float = 0.0
    hlaimp_min_posterior: float = 0.5

    def __post_init__(self) -> None:
        """Check every field: a wrong type is a :class:`TypeError` naming the
        field; a bad value (unknown choice, NaN, inf, negative or out-of-order
        thresholds) a :class:`~kirmatch.errors.UsageError`.

        >>> Options(dsa_very_high_mfi=float("inf"))
        Traceback (most recent call last):
        ...
        kirmatch.errors.UsageError: dsa_very_high_mfi must be a finite number, not inf
        >>> Options(hla_a_bw4="yes")
        Traceback (most recent call last):
        ...
        TypeError: hla_a_bw4 must be bool, not str ('yes')
        """
        for name, choices in (("ambiguity_policy", _POLICIES), ("single_allele", _SINGLE)):
            value = check_type(name, getattr(self, name), str)
            if value not in choices:
                raise UsageError(f"{name} must be one of {', '.join(choices)}, not {value!r}",
                                 raw=value)
        for name in ("hla_a_bw4", "a25_bw4", "include_a3a11", "ipd_compatible",
                     "exclude_null_kir3dl1", "dsa_count_self"):
            check_type(name, getattr(self, name), bool)
        lo, mod, hi, vhi = (check_number(name, getattr(self, name), minimum=0)
                            for name in DSA_THRESHOLDS)
        if not lo <= mod <= hi <= vhi:
            raise UsageError(
                "DSA thresholds must satisfy dsa_low_mfi <= dsa_moderate_mfi <= dsa_high_mfi "
                f"<= dsa_very_high_mfi (got {lo:g}, {mod:g}, {hi:g}, {vhi:g})"
            )
        weights = self.wkir_weights
        if not isinstance(weights, (list, tuple)):
            raise type_error("wkir_weights", weights, "a list or tuple of three numbers")
        if len(weights) != 3:
            raise UsageError("wkir_weights must be three numbers, the weights of iKIR, aKIR "
                             f"and mKIR (default 0.80, 0.14, 0.99), not {len(weights)}",
                             raw=str(list(weights)))
        # a list (from JSON or from_dict) is kept as a tuple: Options stays hashable
        object.__setattr__(self, "wkir_weights", tuple(
            check_number(f"wkir_weights[{i}]", w) for i, w in enumerate(weights)))
        if not check_type("ranking_policy", self.ranking_policy, str).strip():
            raise UsageError("ranking_policy is empty: use kir-first, ebmt or a TOML file")
        check_number("kirimp_min_posterior", self.kirimp_min_posterior, minimum=0, maximum=1)
        check_number("t1k_min_quality", self.t1k_min_quality)
        check_number("hlaimp_min_posterior", self.hlaimp_min_posterior, minimum=0, maximum=1)

    def to_dict(self) -> dict[str, Any]:
        """Every option's value, in declaration order, as JSON holds it (the
        ``wkir_weights`` tuple as a list).

        >>> Options().to_dict()["wkir_weights"]
        [0.8, 0.14, 0.99]
        """
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Options:
        """Build options from a mapping, rejecting unknown keys.

        Raises
        ------
        UsageError
            An unknown key, or a bad value.
        TypeError
            ``data`` is not a mapping with string keys, or a value has the wrong type.
        """
        check_mapping("data", data)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown option(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> Options:
        """Return a copy with some options changed (validated)."""
        return Options.from_dict({**self.to_dict(), **changes})
