"""Options of kirmatch rules v1 (DOMAIN.md §A.1) and the run record.

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

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from kirmatch.errors import UsageError

__all__ = ["RULES_ID", "RULES_VERSION", "AmbiguityPolicy", "Options", "SingleAllele"]

#: The rule-set id; any change of behaviour needs a new id (DOMAIN.md Part A).
RULES_ID = "kirmatch-rules-v1"
#: Human-readable rules version printed by ``kirmatch --version``.
RULES_VERSION = "kirmatch rules v1"

AmbiguityPolicy = Literal["strict", "cwd", "majority"]
SingleAllele = Literal["homozygous", "unknown"]

_POLICIES = ("strict", "cwd", "majority")
_SINGLE = ("homozygous", "unknown")


@dataclass(frozen=True, slots=True)
class Options:
    """All rule-set options (§A.1) and reader settings, with their v1 defaults."""

    ambiguity_policy: AmbiguityPolicy = "strict"
    hla_a_bw4: bool = True
    a25_bw4: bool = False
    include_a3a11: bool = False
    ipd_compatible: bool = False
    exclude_null_kir3dl1: bool = False
    dsa_low_mfi: float = 1000.0
    dsa_high_mfi: float = 5000.0
    dsa_very_high_mfi: float = 20000.0
    ranking_policy: str = "kir-first"
    # Reader settings (outside the rule set, recorded the same way).
    single_allele: SingleAllele = "homozygous"
    kirimp_min_posterior: float = 0.5
    t1k_min_quality: float = 0.0

    def __post_init__(self) -> None:
        if self.ambiguity_policy not in _POLICIES:
            raise UsageError(
                f"ambiguity_policy must be one of {', '.join(_POLICIES)}, "
                f"not {self.ambiguity_policy!r}",
                raw=str(self.ambiguity_policy),
            )
        if self.single_allele not in _SINGLE:
            raise UsageError(
                f"single_allele must be one of {', '.join(_SINGLE)}, not {self.single_allele!r}",
                raw=str(self.single_allele),
            )
        for name in ("hla_a_bw4", "a25_bw4", "include_a3a11", "ipd_compatible",
                     "exclude_null_kir3dl1"):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"{name} must be true or false, not {getattr(self, name)!r}")
        lo, hi, vhi = self.dsa_low_mfi, self.dsa_high_mfi, self.dsa_very_high_mfi
        for name, value in (("dsa_low_mfi", lo), ("dsa_high_mfi", hi),
                            ("dsa_very_high_mfi", vhi)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise UsageError(f"{name} must be a non-negative number, not {value!r}")
        if not lo <= hi <= vhi:
            raise UsageError(
                "DSA thresholds must satisfy dsa_low_mfi <= dsa_high_mfi <= dsa_very_high_mfi "
                f"(got {lo}, {hi}, {vhi})"
            )
        if not 0.0 <= self.kirimp_min_posterior <= 1.0:
            raise UsageError(
                f"kirimp_min_posterior must be within 0..1, not {self.kirimp_min_posterior!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Every option's value, in declaration order."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Options:
        """Build options from a mapping, rejecting unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown option(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> Options:
        """Return a copy with some options changed (validated)."""
        return Options.from_dict({**self.to_dict(), **changes})
