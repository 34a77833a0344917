"""KIR genotypes: parsing gene lists, allele-level and DKMS-style typings, and the
per-person KIR features the models use (gene states, KIR3DL1 class, KIR2DL1
residue 245, KIR2DS4 full length).

Every gene is ``present``, ``absent`` or ``unknown``; unknown is never read as
absent (DOMAIN.md §A.0). Allele names are validated against IPD-KIR 2.13.0; a
name of an earlier release that 2.13.0 no longer reads is mapped through the
IPD-KIR allele history (:mod:`kirmatch.kir_history`).

Accepted strings (``parse_kir_genotype``):

* a gene or allele list joined by ``+`` (or ``^``, spaces, commas):
  ``KIR2DL1+KIR2DL3+KIR3DL1``, ``2DL1+2DL3``, ``KIR3DL1*001+KIR3DL1*004``,
  ``KIR2DL1*00302``, with ``/`` between alternative alleles of one copy and
  ``|`` between alternative genotypes. Genes not mentioned are **absent** (the
  lab gene-content convention) - except in a ``kir#2.13.0#...`` GL string, where
  no standard marks an absent gene, so genes not mentioned are **unknown**.
* explicit per-gene values joined by ``;`` or ``,``: ``2DL1=POS;2DS1=NEG;
  3DL1=001/095+004;2DS5=NA``, with DKMS-style values (:func:`parse_kir_value`).
  Genes not mentioned are **unknown**. A gene may be given under several
  names that count as it (``2DL5A`` and ``2DL5B``; ``2DS4`` and ``2DS4N``):
  they are merged by :func:`merge_gene_typings`. The same name twice is an
  error.

The DKMS value grammar (one gene; DOMAIN.md §C.13):

=====================  ===================================================
``NEG`` / ``POS``      absent / present, allele and copy number unknown
blank, ``NA``, ``UNK``  unknown (never absent)
``001+002``            two copies; ``001/095+004``: ``/`` = alternative
                       alleles of one copy
``004+003|006+010``    ``|`` = alternative genotypes
``003|NEG``            *003 **or absent**: the gene state is unknown, the
                       candidates are {present with *003, absent}
``001A/006B``          KIR2DL5 only: the letter names the paralog
                       (KIR2DL5A*001 or KIR2DL5B*006)
``001+NEW``            ``NEW`` = a new, unnamed allele: present, that
                       copy's allele unknown
=====================  ===================================================

A value in a ``2DS4N`` (or ``2DS4DEL``) column is a typing of the KIR2DS4
22-bp deletion variant; ``2DS4FL`` of the full-length variant (``variant`` of
:class:`KIRGeneTyping`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from itertools import product
from numbers import Real

from kirmatch.api import check_type, is_nan
from kirmatch.errors import KIRParseError, UnknownAlleleError
from kirmatch.kir_history import load_kir_history
from kirmatch.propagation import Cand
from kirmatch.tables import ReferenceTables

__all__ = [
    "CANONICAL_GENES",
    "KIR2DS4_VARIANTS",
    "GeneState",
    "KIRFeatures",
    "KIRGeneTyping",
    "KIRGenotype",
    "kir_features",
    "kir_genotype_from_states",
    "merge_gene_typings",
    "parse_kir_genotype",
    "parse_kir_value",
    "unstated_parts",
]

#: Canonical KIR genes, in the order of DOMAIN.md §A.0.
CANONICAL_GENES = (
    "KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR2DL4", "KIR2DL5",
    "KIR2DS1", "KIR2DS2", "KIR2DS3", "KIR2DS4", "KIR2DS5",
    "KIR3DL1", "KIR3DL2", "KIR3DL3", "KIR3DS1", "KIR2DP1", "KIR3DP1",
)
KIR_RELEASE = "IPD-KIR 2.13.0"

#: The IPD-KIR genes behind a canonical gene with paralogs (DOMAIN.md §A.0).
_PARALOGS = {"KIR2DL5": ("KIR2DL5A", "KIR2DL5B")}

#: KIR2DS4 allele groups whose variant is known: ``full_length`` or ``deletion``
#: (the 22-bp exon-5 deletion; not expressed at the cell surface). Curated, one
#: row per group, with its source:
#:
#: * *003, *004, *006 deletion: DOMAIN.md §A.20 (Krieger et al., Biol Blood
#:   Marrow Transplant 2020, PMID 31676338);
#: * *010 deletion, *001, *011, *017 full length: the DKMS registry typings
#:   stored by DKMS CTUtools (``tests/testthat/scores_check.csv``), which split
#:   KIR2DS4 into a ``kir2ds4`` and a ``kir2ds4N`` (deletion) column: *010 occurs
#:   only in ``kir2ds4N``, *001, *011 and *017 only in ``kir2ds4`` (*003,
#:   *004, *006 only in ``kir2ds4N``, agreeing with §A.20).
#:
#: IPD-KIR 2.13.0 ships no KIR2DS4 sequences here, so other groups are
#: *unknown* (never guessed). ``N``-suffixed alleles are not expressed and are
#: not full length for rule 17 whatever their group.
KIR2DS4_VARIANTS = {
    "KIR2DS4*001": "full_length",
    "KIR2DS4*003": "deletion",
    "KIR2DS4*004": "deletion",
    "KIR2DS4*006": "deletion",
    "KIR2DS4*010": "deletion",
    "KIR2DS4*011": "full_length",
    "KIR2DS4*017": "full_length",
}
#: The alias written for a typing of one variant (kir_genes.tsv: KIR2DS4N, KIR2DS4FL).
_VARIANT_SUFFIX = {"deletion": "N", "full_length": "FL"}

_ALLELE_RE = re.compile(r"^(?P<gene>(?:KIR)?[23]D[LSP][0-9][AB]?)\*(?P<digits>[0-9]{3,7})"
                        r"(?P<suffix>[A-Z]?)$", re.IGNORECASE)
# DKMS digits: protein-level (or longer) digits, an expression suffix, and for
# KIR2DL5 the paralog letter (``001A`` = KIR2DL5A*001, ``032NA`` = KIR2DL5A*032N).
_DIGITS_RE = re.compile(r"^(?P<digits>[0-9]{3,7})(?P<suffix>[A-Z]?)(?P<paralog>[AB]?)$",
                        re.IGNORECASE)
_NEW_RE = re.compile(r"^(?:(?P<gene>(?:KIR)?[23]D[LSP][0-9][AB]?)\*)?NEW$", re.IGNORECASE)
_NS_RE = re.compile(r"^(?P<ns>[a-z]+)#(?P<version>[0-9.]+)#(?P<body>.*)$", re.IGNORECASE)
_POS = frozenset({"POS", "+", "1", "P", "PRESENT", "YES", "Y", "TRUE"})
_NEG = frozenset({"NEG", "-", "0", "ABSENT", "NO", "N", "FALSE"})
_UNK = frozenset({"", "NA", "N/A", "NAN", "UNK", "UNKNOWN", "?", "NT", "NOT TESTED",
                  "FAILED"})
#: Most alternatives kept when the copies of several typings are joined.
MAX_ALTERNATIVES = 64


class GeneState(str, Enum):
    PRESENT = "present"
    ABSENT = "absent"
    UNKNOWN = "unknown"


#: One copy = its alternative alleles (protein-level names like ``KIR3DL1*001``);
#: an empty tuple is a copy whose allele is not known.
Copy = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KIRGeneTyping:
    """The typing of one KIR gene.

    ====================  ==============================================
    state, genotypes      meaning
    ====================  ==============================================
    PRESENT, ``None``     present; alleles and copy number unknown
    PRESENT, genotypes    one of these genotypes (tuples of copies)
    ABSENT, ``None``      absent
    UNKNOWN, ``None``     present or absent (``reason`` says why)
    UNKNOWN, genotypes    absent **or** one of these genotypes (``003|NEG``)
    ====================  ==============================================

    A copy ``()`` is a copy whose allele is not known (``POS``, ``NEW``, a
    withdrawn name, or an extra copy an unknown part may add). ``reason`` says
    why a gene is unknown (``untyped``, ``failed``, ``low_quality``,
    ``genotype_alternatives`` …).

    ``variant`` is what the typing's name said about every one of its copies:
    ``deletion`` (``2DS4N``, ``2DS4DEL``: the KIR2DS4 22-bp deletion variant),
    ``full_length`` (``2DS4FL``) or ``""`` (not said). A typing merged from
    parts of different variants keeps them in ``parts`` (one per variant), so
    the deletion status of every copy survives; ``state`` and ``genotypes``
    are then the merged view (:func:`merge_gene_typings`). ``warnings`` are
    parse warnings (``kir_allele_renamed(…)``, ``kir_allele_unknown(…)``).
    """

    gene: str
    state: GeneState
    genotypes: tuple[tuple[Copy, ...], ...] | None = None
    reason: str = ""
    variant: str = ""
    parts: tuple[KIRGeneTyping, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def allele_level(self) -> bool:
        return self.genotypes is not None and all(all(c for c in g) for g in self.genotypes)

    @property
    def alias(self) -> str:
        """The name this typing is written under: ``KIR2DS4N`` for the deletion variant."""
        return self.gene + _VARIANT_SUFFIX.get(self.variant, "")

    def value_string(self, *, paralog_letters: bool = False) -> str:
        """DKMS-style value: ``POS``, ``NEG``, ``NA``, ``001/002+004|…`` or ``003|NEG``.

        With ``paralog_letters`` a KIR2DL5A/B allele is written with its letter
        (``001A``), as DKMS does and as :meth:`KIRGenotype.to_string` needs to
        read back the same alleles; without it the protein digits only.

        >>> t = KIRGeneTyping("KIR2DL5", GeneState.UNKNOWN,
        ...                   ((("KIR2DL5A*001",), ("KIR2DL5B*002", "KIR2DL5B*006")),))
        >>> t.value_string(), t.value_string(paralog_letters=True)
        ('001+002/006|NEG', '001A+002B/006B|NEG')
        """
        if self.state is GeneState.ABSENT:
            return "NEG"
        if self.genotypes is None:
            return "NA" if self.state is GeneState.UNKNOWN else "POS"

        def allele(name: str) -> str:
            gene, digits = name.split("*", 1)
            letter = gene[-1] if paralog_letters and gene[-1] in "AB" else ""
            return digits + letter

        alts = ["+".join("/".join(allele(a) for a in c) if c else "POS" for c in g)
                for g in self.genotypes]
        if self.state is GeneState.UNKNOWN:
            alts.append("NEG")
        return "|".join(alts)


@dataclass(frozen=True, slots=True)
class KIRGenotype:
    """A person's KIR genotype: one :class:`KIRGeneTyping` per canonical gene."""

    raw: str
    genes: tuple[KIRGeneTyping, ...]
    warnings: tuple[str, ...] = ()

    def gene(self, name: str) -> KIRGeneTyping:
        """The typing of a canonical gene (``"KIR2DL1"``).

        Raises
        ------
        KIRParseError
            ``name`` is not a canonical KIR gene name.
        TypeError
            ``name`` is not a str.
        """
        for g in self.genes:
            if g.gene == name:
                return g
        check_type("name", name, str)
        raise KIRParseError(name, "not a canonical KIR gene name (e.g. KIR2DL1; "
                            f"known: {', '.join(g.gene for g in self.genes)})")

    @property
    def typed(self) -> bool:
        """False when nothing at all is known (no KIR typing given)."""
        return any(g.state is not GeneState.UNKNOWN or g.genotypes is not None
                   for g in self.genes)

    def __str__(self) -> str:
        return self.to_string()

    def to_string(self) -> str:
        """Canonical kirmatch KIR string that reads back with the same meaning.

        With every gene known, one genotype each and no variant typing it is
        the compact list form (absent genes left out); otherwise the explicit
        per-gene form listing all genes, so unknown stays unknown, ``|NEG``
        stays, and a KIR2DS4 typing made of ``2DS4`` and ``2DS4N`` parts is
        written as those parts.
        """
        if all(g.state is not GeneState.UNKNOWN and not g.variant and not g.parts
               and (g.genotypes is None or len(g.genotypes) == 1) for g in self.genes):
            parts = []
            for g in self.genes:
                if g.state is not GeneState.PRESENT:
                    continue
                if not g.genotypes:
                    parts.append(g.gene)
                    continue
                for c in g.genotypes[0]:
                    parts.append("/".join(c) if c else g.gene)
            return "+".join(parts)
        return ";".join(_key_value(p, whole=not g.parts)
                        for g in self.genes for p in (g.parts or (g,)))


def _key_value(t: KIRGeneTyping, *, whole: bool) -> str:
    """``GENE=VALUE`` of one typing or part. A whole typing of one variant
    (the list form's ``2DS4N``: present, every copy a deletion) is written
    under the gene's own name (``KIR2DS4=2DS4N``), which covers the gene: under
    the variant's name it would say nothing of full-length copies
    (:func:`unstated_parts`)."""
    if whole and t.variant and t.state is GeneState.PRESENT and not t.genotypes:
        return f"{t.gene}={t.gene.removeprefix('KIR')}{_VARIANT_SUFFIX[t.variant]}"
    return f"{t.alias}={t.value_string(paralog_letters=True)}"


def untyped_kir(raw: str = "") -> KIRGenotype:
    """A genotype with every gene unknown (no KIR typing)."""
    return KIRGenotype(raw, tuple(KIRGeneTyping(g, GeneState.UNKNOWN, None, "untyped")
                                  for g in CANONICAL_GENES))


# ----------------------------------------------------------------------------
# Names: genes, their variants and paralogs, alleles
# ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Name:
    """A gene name as written: canonical gene, its variant, its IPD paralog."""

    gene: str
    variant: str  # "", "deletion", "full_length"
    paralog: str  # "KIR2DL5A" / "KIR2DL5B" or ""

    @property
    def key(self) -> tuple[str, str, str]:
        """Two typings with the same key in one string are the gene given twice."""
        return (self.gene, self.variant, self.paralog)


def _gene_name(text: str, tables: ReferenceTables, raw: str,
               position: int | None = None) -> _Name:
    """Resolve a gene token (``2DL1``, ``KIR2DL5A``, ``2DS4N`` …)."""
    t = text.strip().upper()
    info = tables.kir_gene(t)
    if info is None:
        raise KIRParseError(raw, f"unknown KIR gene {text!r}", position=position)
    ipd = t if t.startswith("KIR") else f"KIR{t}"
    return _Name(info.gene,
                 info.variant if info.variant in _VARIANT_SUFFIX else "",
                 ipd if info.variant == "paralog" else "")


def _resolve_allele(name: _Name, digits: str, suffix: str, tables: ReferenceTables,
                    where: str, position: int | None) -> tuple[Copy, tuple[str, ...]]:
    """The protein-level name(s) of a typed allele, and warnings.

    2.13.0 first; then the IPD-KIR allele history: a renamed allele maps to
    its current name (warning ``kir_allele_renamed``), a withdrawn one to a
    copy of unknown allele ``()`` (warning ``kir_allele_unknown``). A name in
    neither is an :class:`UnknownAlleleError` (DOMAIN.md §A.3 item 6).
    """
    suffix = suffix.upper()
    if suffix and suffix not in ("N", "Q"):
        raise KIRParseError(where, f"unknown KIR allele suffix {suffix!r}", position=position)
    gene = name.paralog or name.gene
    typed = f"{gene}*{digits}{suffix}"
    if tables.kir_allele_exists(gene, digits + suffix):
        return (f"{gene}*{digits[:3]}{suffix}",), ()
    hits = load_kir_history(tables).lookup(_PARALOGS.get(gene, (gene,)), digits, suffix)
    if not hits:
        raise UnknownAlleleError(typed, KIR_RELEASE)
    if any(h.current is None for h in hits):
        return (), (f"kir_allele_unknown({typed})",)
    current = sorted({h.current for h in hits if h.current})
    names = []
    for c in current:
        cg, cd = c.split("*", 1)
        m = _DIGITS_RE.match(cd)
        assert m is not None  # checked when the history table is read
        names.append(f"{cg}*{m.group('digits')[:3]}{m.group('suffix')}")
    return tuple(dict.fromkeys(names)), (f"kir_allele_renamed({typed} -> {'/'.join(current)})",)


def _allele_token(token: str, name: _Name, tables: ReferenceTables, where: str,
                  position: int | None) -> tuple[Copy, tuple[str, ...]]:
    """One allele of a DKMS value (``001``, ``00302``, ``001A``, ``KIR2DL1*003``, ``NEW``).

    Returns its protein-level name(s), ``()`` when the allele is unknown, and
    warnings.
    """
    m_new = _NEW_RE.match(token)
    if m_new:
        if m_new.group("gene") and _gene_name(m_new.group("gene"), tables, where,
                                              position).gene != name.gene:
            raise KIRParseError(where, f"allele {token!r} is not a {name.gene} allele",
                                position=position)
        return (), (f"kir_allele_unknown({name.paralog or name.gene}*NEW)",)
    m = _ALLELE_RE.match(token)
    if m:
        own = _gene_name(m.group("gene"), tables, where, position)
        if own.gene != name.gene or (name.paralog and own.paralog
                                     and own.paralog != name.paralog):
            raise KIRParseError(where, f"allele {token!r} is not a "
                                f"{name.paralog or name.gene} allele", position=position)
        own = replace(own, paralog=own.paralog or name.paralog)
        return _resolve_allele(own, m.group("digits"), m.group("suffix"), tables, where,
                               position)
    m = _DIGITS_RE.match(token)
    if m is None:
        raise KIRParseError(where, f"{token!r} is not a KIR allele (3-7 digits, "
                            "e.g. 001 or 00302)", position=position)
    digits, suffix, letter = m.group("digits"), m.group("suffix").upper(), \
        m.group("paralog").upper()
    if suffix in ("A", "B") and not letter and name.gene in _PARALOGS:
        suffix, letter = "", suffix  # "001A": the paralog letter, not a suffix
    if letter:
        if name.gene not in _PARALOGS:
            raise KIRParseError(where, f"{token!r}: a paralog letter is only written for "
                                "KIR2DL5 (001A = KIR2DL5A*001)", position=position)
        paralog = f"{name.gene}{letter}"
        if name.paralog and name.paralog != paralog:
            raise KIRParseError(where, f"allele {token!r} is a {paralog} allele, not "
                                f"{name.paralog}", position=position)
        name = replace(name, paralog=paralog)
    return _resolve_allele(name, digits, suffix, tables, where, position)


def _pieces(text: str, sep: str, start: int) -> Iterator[tuple[str, int]]:
    """``text.split(sep)`` with each piece's offset (``start`` = offset of ``text``)."""
    pos = start
    for piece in text.split(sep):
        yield piece, pos
        pos += len(piece) + len(sep)


def _strip(piece: str, pos: int) -> tuple[str, int]:
    stripped = piece.lstrip()
    return stripped.rstrip(), pos + len(piece) - len(stripped)


def _typing(gene: str, alternatives: Sequence[tuple[Copy, ...]], absent: bool, *,
            reason: str = "genotype_alternatives", variant: str = "",
            warnings: Iterable[str] = ()) -> KIRGeneTyping:
    """A typing from its present genotype alternatives and whether absent is one.

    Alternatives are deduplicated (order kept); when no copy names an allele the
    typing is gene-level (``genotypes=None``).
    """
    alts = list(dict.fromkeys(alternatives))
    warns = tuple(dict.fromkeys(warnings))
    if not alts:
        return KIRGeneTyping(gene, GeneState.ABSENT, variant=variant, warnings=warns)
    gts = None if all(not c for g in alts for c in g) else tuple(alts)
    if absent:
        return KIRGeneTyping(gene, GeneState.UNKNOWN, gts, reason, variant, warnings=warns)
    return KIRGeneTyping(gene, GeneState.PRESENT, gts, variant=variant, warnings=warns)


def parse_kir_value(gene: str, value: object, tables: ReferenceTables, *,
                    raw: str | None = None, position: int | None = None) -> KIRGeneTyping:
    """Parse one DKMS-style per-gene value (the grammar is in the module docstring).

    Parameters
    ----------
    gene:
        The gene as written (``2DL1``, ``KIR2DL5A``, ``2DS4N`` …); a paralog or
        variant name sets the paralog of its alleles or the typing's
        ``variant``.
    value:
        The cell: ``POS``, ``NEG``, ``001/002+004``, ``003|NEG``, ``001A/006B``,
        ``001+NEW``; blank or ``NA`` is unknown.
    raw, position:
        The string to name in errors (default ``GENE=VALUE``) and the offset of
        the value in it, so that errors give the character position.

    Raises
    ------
    KIRParseError
        A malformed value (the message names it and the position).
    UnknownAlleleError
        A well-formed allele name in neither IPD-KIR 2.13.0 nor its history.
    TypeError
        ``gene`` or ``tables`` has the wrong type, ``value`` is not a str,
        number, bool or None (``None``/NaN are unknown), or ``raw`` is not a str
        or None.

    Examples
    --------
    >>> from kirmatch.tables import load_reference_tables
    >>> t = load_reference_tables()
    >>> parse_kir_value("KIR3DL1", "001/095+004", t).genotypes
    ((('KIR3DL1*001', 'KIR3DL1*095'), ('KIR3DL1*004',)),)
    >>> parse_kir_value("KIR2DS1", "NEG", t).state.value
    'absent'
    >>> parse_kir_value("KIR2DS1", "", t).state.value
    'unknown'
    >>> x = parse_kir_value("2DL1", "003|NEG", t)
    >>> x.state.value, x.genotypes, x.reason
    ('unknown', ((('KIR2DL1*003',),),), 'genotype_alternatives')
    >>> parse_kir_value("2DL5", "001A/006B", t).genotypes
    ((('KIR2DL5A*001', 'KIR2DL5B*006'),),)
    >>> x = parse_kir_value("3DL1", "001+NEW", t)
    >>> x.state.value, x.genotypes, x.warnings
    ('present', ((('KIR3DL1*001',), ()),), ('kir_allele_unknown(KIR3DL1*NEW)',))
    >>> parse_kir_value("2DS4N", "003", t).variant
    'deletion'
    >>> x = parse_kir_value("2DP1", "005", t)
    >>> x.genotypes, x.warnings
    (((('KIR2DP1*002',),),), ('kir_allele_renamed(KIR2DP1*005 -> KIR2DP1*0020110)',))
    """
    if not (isinstance(value, str) and isinstance(gene, str)
            and isinstance(tables, ReferenceTables) and (raw is None or isinstance(raw, str))):
        check_type("gene", gene, str)
        check_type("value", value, (str, Real, bool), none_ok=True,
                   expected="str or a number or bool")
        check_type("tables", tables, ReferenceTables)
        check_type("raw", raw, str, none_ok=True)
    name = _gene_name(gene, tables, raw or str(gene))
    text = "" if value is None else str(value).strip()
    if text.lower() == "nan":
        text = ""
    up = text.upper()
    where = raw or f"{name.paralog or name.gene + _VARIANT_SUFFIX.get(name.variant, '')}={text}"
    base = position if position is not None else (where.rfind(text) if text else -1)
    base = None if base is not None and base < 0 else base
    if up in _UNK:
        reason = "failed" if up == "FAILED" else "untyped"
        return KIRGeneTyping(name.gene, GeneState.UNKNOWN, None, reason, name.variant)
    if up in _POS:
        return KIRGeneTyping(name.gene, GeneState.PRESENT, variant=name.variant)
    if up in _NEG:
        return KIRGeneTyping(name.gene, GeneState.ABSENT, variant=name.variant)
    info = tables.kir_gene(up)
    if info is not None and info.gene == name.gene:  # e.g. "2DS4N" in the KIR2DS4 column
        return KIRGeneTyping(name.gene, GeneState.PRESENT,
                             variant=_gene_name(up, tables, where).variant)
    alternatives: list[tuple[Copy, ...]] = []
    absent = False
    warnings: list[str] = []
    for alt, apos in _pieces(up, "|", base or 0):
        alt, apos = _strip(alt, apos)
        if alt in _NEG:
            absent = True
            continue
        copies: list[Copy] = []
        for copy, cpos in _pieces(alt, "+", apos):
            opts: list[str] = []
            known = True
            for token, tpos in _pieces(copy, "/", cpos):
                token, tpos = _strip(token, tpos)
                at = tpos if base is not None else None
                if not token:
                    raise KIRParseError(where, f"empty allele in {alt!r}", position=at)
                if token in _POS:
                    known = False
                    continue
                if token in _NEG or token in _UNK:
                    raise KIRParseError(where, f"{token!r} must stand alone as one of the "
                                        "genotype alternatives (e.g. '003|NEG')", position=at)
                names, warns = _allele_token(token, name, tables, where, at)
                warnings.extend(warns)
                warnings.extend(f"kir2ds4_variant_conflict({n} typed as {name.gene}"
                                f"{_VARIANT_SUFFIX[name.variant]})"
                                for n in names if name.variant and KIR2DS4_VARIANTS.get(
                                    n.removesuffix("Q"), name.variant) != name.variant)
                known = known and bool(names)
                opts.extend(names)
            copies.append(tuple(dict.fromkeys(opts)) if known else ())
        alternatives.append(tuple(copies))
    return _typing(name.gene, alternatives, absent, variant=name.variant, warnings=warnings)


# ----------------------------------------------------------------------------
# One gene typed under several names: the one paralog/variant merge
# ----------------------------------------------------------------------------

def sort_copies(copies: Iterable[Copy]) -> tuple[Copy, ...]:
    """Copies in a stable order: named alleles first (sorted), then unresolved copies."""
    return tuple(sorted(copies, key=lambda c: (not c, c)))


def _candidates(t: KIRGeneTyping) -> list[tuple[Copy, ...]]:
    """The genotypes a typing could be; ``()`` = absent, ``((),)`` = present, alleles unknown."""
    if t.state is GeneState.ABSENT:
        return [()]
    present = list(t.genotypes) if t.genotypes is not None else [((),)]
    return present if t.state is GeneState.PRESENT else [(), *present]


def merge_gene_typings(gene: str, parts: Sequence[KIRGeneTyping]) -> KIRGeneTyping:
    """Join typings that all count as one gene (2DL5A + 2DL5B, 2DS4 + 2DS4N …).

    The parts are independent typings of disjoint copies (two columns, two
    T1K lines), so every combination of their candidates is a candidate of
    the gene:

    * **present** if any part is present; **absent** only if every part is
      absent; **unknown** otherwise (the first unknown part's reason);
    * the copies of the parts **add up**: ``2DL5A=001`` + ``2DL5B=002`` is one
      genotype with two copies, KIR2DL5A*001 and KIR2DL5B*002 (allele level);
    * an **unknown** part next to a present one may add copies: the result
      keeps both readings, without and with one extra copy of unknown allele
      (``001|001+POS``). For the allele-level models this is exact: one
      unknown copy already ranges over every KIR3DL1 class and every KIR2DL1
      residue-245 call, and rules 11 and 12 combine alleles by precedence
      ("any R245", "L > H > N"), which further unknown copies cannot change;
      a present part typed at gene level likewise adds one copy of unknown
      allele (``2DL5A=POS`` + ``2DL5B=002`` → ``002+POS``);
    * a part's deletion status is kept: parts of different ``variant``
      (``2DS4``, ``2DS4N``, ``2DS4FL``) are merged per variant and kept in
      ``parts``, so :func:`kir_features` can tell full-length from deletion
      copies and :meth:`KIRGenotype.to_string` writes them back.

    More than :data:`MAX_ALTERNATIVES` combinations fall back to the gene level
    (the same state, alleles unknown: less detail, never a different answer).

    >>> a = KIRGeneTyping("KIR2DL5", GeneState.PRESENT, ((("KIR2DL5A*001",),),))
    >>> b = KIRGeneTyping("KIR2DL5", GeneState.PRESENT, ((("KIR2DL5B*002",),),))
    >>> merge_gene_typings("KIR2DL5", [a, b]).genotypes
    ((('KIR2DL5A*001',), ('KIR2DL5B*002',)),)
    >>> u = KIRGeneTyping("KIR2DL5", GeneState.UNKNOWN, None, "untyped")
    >>> merge_gene_typings("KIR2DL5", [a, u]).value_string(paralog_letters=True)
    '001A|001A+POS'
    >>> n = KIRGeneTyping("KIR2DL5", GeneState.ABSENT)
    >>> merge_gene_typings("KIR2DL5", [n, u]).state.value
    'unknown'
    >>> d = KIRGeneTyping("KIR2DS4", GeneState.PRESENT, ((("KIR2DS4*006",),),), variant="deletion")
    >>> m = merge_gene_typings("KIR2DS4", [KIRGeneTyping("KIR2DS4", GeneState.ABSENT), d])
    >>> m.state.value, [p.alias for p in m.parts]
    ('present', ['KIR2DS4', 'KIR2DS4N'])
    """
    flat = [q for p in parts for q in (p.parts or (p,))]
    if not flat:
        return KIRGeneTyping(gene, GeneState.UNKNOWN, None, "untyped")
    if len(flat) == 1:
        return replace(flat[0], gene=gene)
    variants = [v for v in ("", "full_length", "deletion") if any(q.variant == v for q in flat)]
    if len(variants) > 1:
        per_variant = tuple(_merge_same_variant(gene, [q for q in flat if q.variant == v], v)
                            for v in variants)
        return replace(_merge_same_variant(gene, per_variant, ""), parts=per_variant)
    return _merge_same_variant(gene, flat, variants[0])


def _merge_same_variant(gene: str, parts: Sequence[KIRGeneTyping],
                        variant: str) -> KIRGeneTyping:
    if len(parts) == 1:
        return replace(parts[0], gene=gene, variant=variant)
    warnings = [w for p in parts for w in p.warnings]
    unknown = [p for p in parts if p.state is GeneState.UNKNOWN]
    reason = (unknown[0].reason or "untyped") if unknown else ""
    options = [_candidates(p) for p in parts]
    n = 1
    for o in options:
        n *= len(o)
    if n > MAX_ALTERNATIVES:
        states = {p.state for p in parts}
        state = (GeneState.PRESENT if GeneState.PRESENT in states else
                 GeneState.ABSENT if states == {GeneState.ABSENT} else GeneState.UNKNOWN)
        return KIRGeneTyping(gene, state, None, reason if state is GeneState.UNKNOWN else "",
                             variant, warnings=tuple(dict.fromkeys(warnings)))
    combos = [sort_copies(c for g in combo for c in g) for combo in product(*options)]
    # Sorted, so that the order of the parts does not matter.
    present = sorted({c for c in combos if c}, key=lambda g: [(not c, c) for c in g])
    return _typing(gene, present, () in combos, reason=reason, variant=variant,
                   warnings=warnings)


# ----------------------------------------------------------------------------
# Genotype strings
# ----------------------------------------------------------------------------

def kir_genotype_from_states(states: dict[str, KIRGeneTyping], raw: str = "",
                             *, default: GeneState = GeneState.UNKNOWN,
                             warnings: tuple[str, ...] = ()) -> KIRGenotype:
    """Assemble a genotype from per-gene typings; missing genes get ``default``.

    The typings' own parse warnings are added to ``warnings``.
    """
    genes = []
    for g in CANONICAL_GENES:
        if g in states:
            genes.append(states[g])
        elif default is GeneState.UNKNOWN:
            genes.append(KIRGeneTyping(g, GeneState.UNKNOWN, None, "untyped"))
        else:
            genes.append(KIRGeneTyping(g, default))
    own = tuple(dict.fromkeys((*warnings, *(w for t in genes for w in t.warnings))))
    return KIRGenotype(raw, tuple(genes), own)


def unstated_parts(gene: str, names: Iterable[str], tables: ReferenceTables
                   ) -> list[KIRGeneTyping]:
    """Unknown parts for the copies of ``gene`` that the typed ``names`` (the
    gene names of its parts: columns, ``GENE=`` keys, T1K lines) say nothing
    of: ``KIR2DL5A`` alone says nothing of KIR2DL5B; ``2DS4N`` (the deletion
    variant) alone nothing of full-length copies, ``2DS4FL`` nothing of
    deletion ones. A name of the whole gene (``KIR2DL5``, ``2DS4``) covers it.
    (§A.0: what was not typed is unknown, never absent.)

    >>> from kirmatch.tables import load_reference_tables
    >>> t = load_reference_tables()
    >>> [(p.gene, p.state.value, p.variant) for p in unstated_parts("KIR2DL5", ["2DL5A"], t)]
    [('KIR2DL5', 'unknown', '')]
    >>> [p.variant for p in unstated_parts("KIR2DS4", ["KIR2DS4N"], t)]
    ['full_length']
    >>> unstated_parts("KIR2DS4", ["2DS4", "2DS4N"], t), unstated_parts("KIR2DL1", ["2DL1"], t)
    ([], [])
    """
    resolved = [_gene_name(n, tables, n) for n in names]
    if not resolved or any(not r.paralog and not r.variant for r in resolved):
        return []
    typed_paralogs = {r.paralog for r in resolved if r.paralog}
    out = [parse_kir_value(p, "", tables) for p in _PARALOGS.get(gene, ())
           if typed_paralogs and p not in typed_paralogs]
    variants = {r.variant for r in resolved if r.variant}
    if variants == {"deletion"}:
        out.append(parse_kir_value(f"{gene}FL", "", tables))
    elif variants == {"full_length"}:
        out.append(parse_kir_value(f"{gene}N", "", tables))
    return out


def _parse_per_gene(raw: str, s: str, offset: int, tables: ReferenceTables,
                    warnings: list[str]) -> KIRGenotype:
    parts: dict[str, list[KIRGeneTyping]] = {}
    named: dict[str, list[str]] = {}
    seen: dict[tuple[str, str, str], str] = {}
    for word, wpos in _words(re.sub(r"[;,]", " ", s), offset):
        if "=" not in word:
            raise KIRParseError(raw, f"{word!r} should be GENE=VALUE in the per-gene form",
                                position=wpos)
        gene, value = word.split("=", 1)
        name = _gene_name(gene, tables, raw, wpos)
        if name.key in seen:
            first = seen[name.key]
            twice = name.gene if first == gene.upper() else f"{name.gene} ({first} and {gene})"
            raise KIRParseError(raw, f"gene {twice} given twice", position=wpos)
        seen[name.key] = gene.upper()
        typing = parse_kir_value(gene, value, tables, raw=raw, position=wpos + len(gene) + 1)
        parts.setdefault(typing.gene, []).append(typing)
        named.setdefault(typing.gene, []).append(gene)
    states = {g: merge_gene_typings(g, [*p, *unstated_parts(g, named[g], tables)])
              for g, p in parts.items()}
    return kir_genotype_from_states(states, raw, default=GeneState.UNKNOWN,
                                    warnings=tuple(warnings))


def _words(text: str, start: int) -> Iterator[tuple[str, int]]:
    for m in re.finditer(r"\S+", text):
        yield m.group(0), start + m.start()


def parse_kir_genotype(text: str | None, tables: ReferenceTables) -> KIRGenotype:
    """Parse a KIR typing string (see the module docstring); blank = untyped.

    Raises
    ------
    KIRParseError
        A malformed string; the message names the string and the position.
    UnknownAlleleError
        An allele name in neither IPD-KIR 2.13.0 nor its history.
    TypeError
        ``text`` is not a str or None (a float NaN, pandas' missing value, is
        untyped too), or ``tables`` is not ``ReferenceTables``.

    Examples
    --------
    >>> from kirmatch.tables import load_reference_tables
    >>> t = load_reference_tables()
    >>> g = parse_kir_genotype("2DL1+2DL3+KIR3DL1*001+KIR3DL1*004", t)
    >>> g.gene("KIR2DL2").state.value, g.gene("KIR3DL1").genotypes
    ('absent', ((('KIR3DL1*001',), ('KIR3DL1*004',)),))
    >>> parse_kir_genotype("kir#2.13.0#KIR2DL1*001", t).gene("KIR2DL2").state.value
    'unknown'
    >>> g = parse_kir_genotype("2DS4=001;2DS4N=006;2DL5A=001;2DL5B=NEG", t)
    >>> g.gene("KIR2DS4").genotypes, g.gene("KIR2DL5").value_string(paralog_letters=True)
    (((('KIR2DS4*001',), ('KIR2DS4*006',)),), '001A')
    """
    if not isinstance(text, str) and not is_nan(text):
        check_type("text", text, str, none_ok=True)
    check_type("tables", tables, ReferenceTables)
    if text is None or not str(text).strip() or str(text).strip().upper() in ("NA", "NAN"):
        return untyped_kir(str(text or ""))
    raw = str(text).strip()
    s = raw
    offset = 0
    default = GeneState.ABSENT
    warnings: list[str] = []
    nm = _NS_RE.match(s)
    if nm:
        if nm.group("ns").lower() != "kir":
            raise KIRParseError(raw, f"GL namespace {nm.group('ns')!r} is not 'kir'")
        if nm.group("version") != "2.13.0":
            warnings.append(f"gl_version(kir {nm.group('version')})")
        s = nm.group("body")
        offset = nm.start("body")
        default = GeneState.UNKNOWN
    if "=" in s:
        return _parse_per_gene(raw, s, offset, tables, warnings)
    return _parse_list(raw, s, offset, default, tables, warnings)


def _parse_list(raw: str, s: str, offset: int, default: GeneState, tables: ReferenceTables,
                warnings: list[str]) -> KIRGenotype:
    """The list form: ^ blocks, | genotype alternatives, + copies, / allele alternatives."""
    # gene -> per block: the block's alternatives, each a list of (copy, variant).
    gene_blocks: dict[str, list[tuple[list[tuple[Copy, str]], ...]]] = {}
    for block, bpos in _words(re.sub(r"[\^,;]", " ", s), offset):
        alt_maps: list[dict[str, list[tuple[Copy, str]]]] = []
        for alt, apos in _pieces(block, "|", bpos):
            m: dict[str, list[tuple[Copy, str]]] = {}
            for copy, cpos in _pieces(alt, "+", apos):
                if not copy.strip():
                    raise KIRParseError(raw, "empty item between '+'", position=cpos)
                cgene, variant, c = _list_copy(raw, copy, cpos, tables, warnings)
                m.setdefault(cgene, []).append((c, variant))
            alt_maps.append(m)
        for g in dict.fromkeys(g for m in alt_maps for g in m):
            gene_blocks.setdefault(g, []).append(tuple(m.get(g, []) for m in alt_maps))
    states: dict[str, KIRGeneTyping] = {}
    for g, blocks in gene_blocks.items():
        if len(blocks) > 1:
            # The gene appears in several blocks: copies add up (no alternatives).
            if any(len(b) > 1 for b in blocks):
                raise KIRParseError(raw, f"gene {g} appears in several blocks with '|'")
            alternatives = ([cv for b in blocks for cv in b[0]],)
        else:
            alternatives = blocks[0]
        if len(alternatives) == 1 and any(v for _, v in alternatives[0]):
            # One genotype naming variants (KIR2DS4*001+2DS4N): one part per variant.
            by_variant: dict[str, list[Copy]] = {}
            for c, v in alternatives[0]:
                by_variant.setdefault(v, []).append(c)
            states[g] = merge_gene_typings(g, [_typing(g, [tuple(cs)], False, variant=v)
                                               for v, cs in by_variant.items()])
            continue
        # Variants inside '|' alternatives are not kept (their copies' deletion
        # status is then read from the alleles only: less detail, never wrong).
        present = [tuple(c for c, _ in a) for a in alternatives if a]
        states[g] = _typing(g, present, len(present) < len(alternatives))
    return kir_genotype_from_states(states, raw, default=default, warnings=tuple(warnings))


def _list_copy(raw: str, copy: str, pos: int, tables: ReferenceTables,
               warnings: list[str]) -> tuple[str, str, Copy]:
    """One copy of the list form: its gene, variant and alleles (``()`` = unknown).

    ``KIR3DL1*001/002`` (digits after a full name take its gene),
    ``KIR2DL5A?KIR2DL5B`` (GL 1.1 paralog ambiguity: gene level), ``2DS4N``,
    ``KIR3DL1*NEW``.
    """
    opts: list[str] = []
    known = True
    current: _Name | None = None
    variant = ""
    stripped = copy.strip()
    for piece, ppos in _pieces_re(stripped, r"[/?]", pos + len(copy) - len(copy.lstrip())):
        full = _ALLELE_RE.match(piece) or _NEW_RE.match(piece)
        if full and full.group("gene"):
            name, is_allele = _gene_name(full.group("gene"), tables, raw, ppos), True
        elif current is not None and (_DIGITS_RE.match(piece) or _NEW_RE.match(piece)):
            name, is_allele = current, True
        else:
            name, is_allele = _gene_name(piece, tables, raw, ppos), False
        if current is not None and name.gene != current.gene:
            raise KIRParseError(raw, f"{stripped!r} mixes genes {current.gene} and {name.gene}",
                                position=ppos)
        current = name
        if not is_allele:
            variant = variant or name.variant
            known = False  # a gene name: its allele is not known
            continue
        names, warns = _allele_token(piece, name, tables, raw, ppos)
        warnings.extend(warns)
        known = known and bool(names)
        opts.extend(names)
    assert current is not None
    return current.gene, variant, tuple(dict.fromkeys(opts)) if known else ()


def _pieces_re(text: str, pattern: str, start: int) -> Iterator[tuple[str, int]]:
    pos = 0
    for m in re.finditer(pattern, text):
        yield text[pos:m.start()], start + pos
        pos = m.end()
    yield text[pos:], start + pos


# ----------------------------------------------------------------------------
# Features for the models (with propagation over unknowns)
# ----------------------------------------------------------------------------

_PRECEDENCE = {"L": 3, "H": 2, "N": 1}
_ALL_CLASSES = frozenset({"H", "L", "N"})
_ALL_245 = ("C245", "R245", "null", "other")


@dataclass(frozen=True, slots=True)
class KIRFeatures:
    """Per-person KIR candidate sets used by the models.

    ``kir2ds4_full_length`` (rule 17, Krieger 2020): ``True`` if the person
    carries an expressed full-length KIR2DS4 copy, ``False`` if every KIR2DS4
    copy is a 22-bp deletion (or null) allele or the gene is absent; a copy
    whose variant is not known makes both possible, reason ``gene_level_kir``
    (gene-level typing), ``kir2ds4_variant_unknown`` (an allele outside
    :data:`KIR2DS4_VARIANTS`) or ``kir_gene_unknown`` (the gene state is
    unknown).

    ``kir3dl1_classes`` (rule 18): the set of rule-11 classes of the person's
    KIR3DL1 and KIR3DS1 alleles (KIR3DS1 and ``N`` alleles are N), the set
    whose precedence L > H > N gives ``kir3dl1_class``; empty when neither gene
    is carried.
    """

    typed: bool
    present: dict[str, Cand[bool]]
    kir3dl1_class: Cand[str | None]
    kir3dl1_functional: Cand[bool | None]
    kir2dl1_245: Cand[str | None]
    kir2ds4_full_length: Cand[bool]
    warnings: tuple[str, ...]
    kir3dl1_classes: Cand[frozenset[str] | None]

    def genes(self, names: tuple[str, ...]) -> Cand[frozenset[str]]:
        """The subset of ``names`` present, as a candidate set over unknown genes."""
        cands = [self.present[g] for g in names]
        combos = set()
        reason = None
        for c in cands:
            if len(c.values) > 1 and reason is None:
                reason = c.reason
        for combo in product(*(sorted(c.values) for c in cands)):
            combos.add(frozenset(g for g, p in zip(names, combo, strict=True) if p))
        return Cand.any_of(combos, reason)


def _copy_classes(copy: Copy, tables: ReferenceTables, warnings: list[str],
                  sources: set[str]) -> frozenset[str]:
    """The classes one KIR3DL1/KIR3DS1 copy could have (DOMAIN.md §A.12, §C.7).

    An unknown allele, or one outside the class table, could be any of H, L and
    N; the ``sources`` of that doubt are collected for the reason code.
    """
    if not copy:
        sources.add("gene_level_kir")
        return _ALL_CLASSES
    out: set[str] = set()
    for a in copy:
        if a.startswith("KIR3DS1") or a.endswith("N"):
            out.add("N")
            continue
        if a.endswith("Q"):
            warnings.append(f"expression_variant({a})")
        cls = tables.kir3dl1_class(a)
        if cls is None:
            warnings.append(f"kir3dl1_unclassified_allele({a})")
            sources.add("kir3dl1_unclassified_allele")
            out |= _ALL_CLASSES
        else:
            out.add(cls)
    if len(out) > 1:
        sources.add("ambiguous_typing")
    return frozenset(out)


def _combine_class(classes: tuple[str, ...]) -> str:
    """Precedence L > H > N; no allele at all (neither gene) is N."""
    return max(classes, key=lambda c: _PRECEDENCE[c]) if classes else "N"


def _genotype_options(t: KIRGeneTyping) -> list[tuple[Copy, ...] | None]:
    """A typing's candidate genotypes: ``None`` = absent, ``((),)`` = present, alleles unknown."""
    out: list[tuple[Copy, ...] | None] = []
    if t.state is not GeneState.PRESENT:
        out.append(None)
    if t.state is not GeneState.ABSENT:
        out.extend(t.genotypes if t.genotypes is not None else [((),)])
    return out


def _kir3dl1(g: KIRGenotype, tables: ReferenceTables, who: str, warnings: list[str]
             ) -> tuple[Cand[str | None], Cand[bool | None], Cand[frozenset[str] | None]]:
    """KIR3DL1/KIR3DS1 class (rule 11), the ``exclude_null_kir3dl1`` test (rule 8)
    and the set of per-allele classes (rule 18).

    Every candidate genotype of KIR3DL1 (and KIR3DS1, whose alleles are all N)
    and every class of an unknown or unclassified allele is enumerated, so a
    value is reported wherever all of them agree (K1).
    """
    d3l1, d3s1 = g.gene("KIR3DL1"), g.gene("KIR3DS1")
    sources: set[str] = set()
    if d3l1.state is GeneState.UNKNOWN:
        sources.add("kir_gene_unknown")
    if d3l1.state is GeneState.PRESENT and d3l1.genotypes is None:
        warnings.append(f"gene_level_kir({who} KIR3DL1)")
    if d3l1.genotypes is not None and len(d3l1.genotypes) > 1:
        sources.add("ambiguous_typing")
    classes: set[str] = set()
    functional: set[bool] = set()
    class_sets: set[frozenset[str]] = set()
    # KIR3DS1 only ever adds N, the lowest class: it never changes the class.
    s1_options = {s1 is not None for s1 in _genotype_options(d3s1)}
    for l1 in _genotype_options(d3l1):
        per_copy = [sorted(_copy_classes(c, tables, warnings, sources)) for c in l1 or ()]
        for combo in product(*per_copy):
            # exclude_null_kir3dl1: KIR3DL1 counts only with an H or L allele.
            functional.add(any(c in ("H", "L") for c in combo))
            for s1 in s1_options:
                classes.add(_combine_class(combo + (("N",) if s1 else ())))
                class_sets.add(frozenset(combo) | ({"N"} if s1 else frozenset()))
    if d3l1.state is GeneState.ABSENT and d3s1.state is GeneState.ABSENT:
        warnings.append(f"no_kir3dl1_or_kir3ds1({who})")
    order = ("kir_gene_unknown", "gene_level_kir", "kir3dl1_unclassified_allele",
             "ambiguous_typing")
    reason = next((r for r in order if r in sources), "kir_gene_unknown")
    return (Cand.any_of(classes, reason), Cand.any_of(functional, reason),
            Cand.any_of(class_sets, reason))


def _kir2dl1_245(d1: KIRGeneTyping, tables: ReferenceTables, who: str,
                 warnings: list[str]) -> Cand[str | None]:
    """KIR2DL1 residue 245 (rule 12); a copy of unknown allele could carry any call."""
    calls: set[str | None] = set()
    reason: str | None = "kir_gene_unknown" if d1.state is GeneState.UNKNOWN else None
    if d1.state is GeneState.PRESENT and d1.genotypes is None:
        warnings.append(f"gene_level_kir({who} KIR2DL1)")
    for gtp in _genotype_options(d1):
        if gtp is None:
            calls.add("absent")
        elif gtp == ((),) and d1.genotypes is None:
            calls.add(None)  # gene level: the number of copies is not known either
            reason = reason or "gene_level_kir"
        else:
            per_copy = []
            for c in gtp:
                if not c:
                    reason = reason or "gene_level_kir"
                per_copy.append(sorted({_245(a, tables, warnings) for a in c} if c
                                       else _ALL_245, key=str))
            for combo in product(*per_copy):
                calls.add(_combine_245(combo))
    return Cand.any_of(calls, reason or "kir2dl1_245_other")


def _ds4_copy(copy: Copy, variant: str) -> frozenset[bool]:
    """Could this KIR2DS4 copy be full length (True) / not (False)?"""
    if not copy:
        return frozenset({variant == "full_length"}) if variant else frozenset({True, False})
    out: set[bool] = set()
    for a in copy:
        if a.endswith("N"):
            out.add(False)  # a null allele is not expressed
            continue
        known = KIR2DS4_VARIANTS.get(a.removesuffix("Q"))
        if known and variant and known != variant:
            out |= {True, False}  # the column and the allele disagree: not guessed
        elif known or variant:
            out.add((known or variant) == "full_length")
        else:
            out |= {True, False}
    return frozenset(out)


def _ds4_full_length(t: KIRGeneTyping) -> frozenset[bool]:
    """The values "carries a full-length KIR2DS4 copy" can take for one typing."""
    if t.parts:
        # Independent parts: the person has a full-length copy if any part does.
        out: set[bool] = set()
        for combo in product(*(_ds4_full_length(p) for p in t.parts)):
            out.add(any(combo))
        return frozenset(out)
    out = set()
    for gtp in _genotype_options(t):
        if gtp is None:
            out.add(False)
            continue
        per_copy = [_ds4_copy(c, t.variant) for c in gtp]
        if any(True in c for c in per_copy):
            out.add(True)
        if all(False in c for c in per_copy):
            out.add(False)
    return frozenset(out)


def kir_features(g: KIRGenotype | None, tables: ReferenceTables,
                 who: str = "donor") -> KIRFeatures:
    """Candidate sets for gene presence, KIR3DL1 class, KIR2DL1 residue 245 and
    KIR2DS4 full length (every candidate of the typing is enumerated, DOMAIN.md §A.0).

    >>> from kirmatch.tables import load_reference_tables
    >>> t = load_reference_tables()
    >>> f = kir_features(parse_kir_genotype("3DL1=095;3DS1=NEG", t), t)
    >>> sorted(f.kir3dl1_class.values), f.kir3dl1_class.reason
    (['H', 'L', 'N'], 'kir3dl1_unclassified_allele')
    >>> f = kir_features(parse_kir_genotype("2DS4=NEG;2DS4N=006", t), t)
    >>> f.present["KIR2DS4"].value, f.kir2ds4_full_length.value
    (True, False)
    """
    if g is None:
        g = untyped_kir()
    warnings: list[str] = [*g.warnings, *(w for t in g.genes for w in t.warnings)]
    present: dict[str, Cand[bool]] = {}
    typed = g.typed
    for gt in g.genes:
        if gt.state is GeneState.PRESENT:
            present[gt.gene] = Cand.of(True)
        elif gt.state is GeneState.ABSENT:
            present[gt.gene] = Cand.of(False)
        else:
            present[gt.gene] = Cand(frozenset({True, False}), "kir_gene_unknown")
            if typed:
                warnings.append(f"kir_gene_unknown({who} {gt.gene})")
    kir3dl1_class, kir3dl1_functional, kir3dl1_classes = _kir3dl1(g, tables, who, warnings)
    kir2dl1_245 = _kir2dl1_245(g.gene("KIR2DL1"), tables, who, warnings)
    ds4 = g.gene("KIR2DS4")
    full_length = Cand.any_of(_ds4_full_length(ds4), _ds4_reason(ds4))
    return KIRFeatures(typed, present, kir3dl1_class, kir3dl1_functional, kir2dl1_245,
                       full_length, tuple(dict.fromkeys(warnings)), kir3dl1_classes)


def _ds4_reason(t: KIRGeneTyping) -> str:
    """Why KIR2DS4 full length may be unknown: the gene state, gene-level typing
    (no allele and no variant named), or an allele whose variant is not known."""
    if t.state is GeneState.UNKNOWN:
        return "kir_gene_unknown"
    if not t.parts and not t.variant and not t.allele_level:
        return "gene_level_kir"
    return "kir2ds4_variant_unknown"


def _245(allele: str, tables: ReferenceTables, warnings: list[str]) -> str:
    call = tables.kir2dl1_245(allele)
    if call is None and allele.endswith("Q"):
        call = tables.kir2dl1_245(allele[:-1])
    if call is None:
        warnings.append(f"kir2dl1_245_other({allele})")
        return "other"
    if call == "other":
        warnings.append(f"kir2dl1_245_other({allele})")
    return call


def _combine_245(calls: tuple[str, ...]) -> str | None:
    """R245 if any allele is R245; C245 if every non-null allele is C245; else unknown."""
    if "R245" in calls:
        return "R245"
    if "other" in calls:
        return None
    expressed = [c for c in calls if c != "null"]
    if expressed and all(c == "C245" for c in expressed):
        return "C245"
    return None
