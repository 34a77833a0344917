"""KIR genotypes: parsing gene lists, allele-level and DKMS-style typings, and the
per-person KIR features the models use (gene states, KIR3DL1 class, KIR2DL1
residue 245).

Every gene is ``present``, ``absent`` or ``unknown``; unknown is never read as
absent (DOMAIN.md §A.0). Allele names are validated against IPD-KIR 2.13.0.

Accepted strings (``parse_kir_genotype``):

* a gene or allele list joined by ``+`` (or ``^``, spaces, commas):
  ``KIR2DL1+KIR2DL3+KIR3DL1``, ``2DL1+2DL3``, ``KIR3DL1*001+KIR3DL1*004``,
  ``KIR2DL1*00302``, with ``/`` between alternative alleles of one copy and
  ``|`` between alternative genotypes. Genes not mentioned are **absent** (the
  lab gene-content convention) - except in a ``kir#2.13.0#...`` GL string, where
  no standard marks an absent gene, so genes not mentioned are **unknown**.
* explicit per-gene values joined by ``;`` or ``,``: ``2DL1=POS;2DS1=NEG;
  3DL1=001/095+004;2DS5=NA``, with DKMS-style values (``POS``, ``NEG``,
  ``001+002``, ``001/002+004``, ``004+003|006+010``, blank/``NA``/``UNK`` =
  unknown, ``1``/``0``). Genes not mentioned are **unknown**.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from itertools import product
from numbers import Real

from kirmatch.api import check_type, is_nan
from kirmatch.errors import KIRParseError, UnknownAlleleError
from kirmatch.propagation import Cand
from kirmatch.tables import ReferenceTables

__all__ = [
    "CANONICAL_GENES",
    "GeneState",
    "KIRFeatures",
    "KIRGeneTyping",
    "KIRGenotype",
    "kir_features",
    "kir_genotype_from_states",
    "parse_kir_genotype",
    "parse_kir_value",
]

#: Canonical KIR genes, in the order of DOMAIN.md §A.0.
CANONICAL_GENES = (
    "KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR2DL4", "KIR2DL5",
    "KIR2DS1", "KIR2DS2", "KIR2DS3", "KIR2DS4", "KIR2DS5",
    "KIR3DL1", "KIR3DL2", "KIR3DL3", "KIR3DS1", "KIR2DP1", "KIR3DP1",
)
KIR_RELEASE = "IPD-KIR 2.13.0"

_ALLELE_RE = re.compile(r"^(?P<gene>(?:KIR)?[23]D[LSP][0-9][AB]?)\*(?P<digits>[0-9]{3,7})"
                        r"(?P<suffix>[A-Z]?)$", re.IGNORECASE)
_DIGITS_RE = re.compile(r"^(?P<digits>[0-9]{3,7})(?P<suffix>[NQ]?)$", re.IGNORECASE)
_NS_RE = re.compile(r"^(?P<ns>[a-z]+)#(?P<version>[0-9.]+)#(?P<body>.*)$", re.IGNORECASE)
_POS = frozenset({"POS", "+", "1", "P", "PRESENT", "YES", "Y", "TRUE"})
_NEG = frozenset({"NEG", "-", "0", "ABSENT", "NO", "N", "FALSE"})
_UNK = frozenset({"", "NA", "N/A", "NAN", "UNK", "UNKNOWN", "?", "NT", "NOT TESTED",
                  "FAILED"})


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

    ``genotypes`` is ``None`` for gene-level typing, else the alternative
    genotypes, each a tuple of copies. ``reason`` says why a gene is unknown
    (``untyped``, ``failed``, ``low_quality`` …).
    """

    gene: str
    state: GeneState
    genotypes: tuple[tuple[Copy, ...], ...] | None = None
    reason: str = ""

    @property
    def allele_level(self) -> bool:
        return self.genotypes is not None and all(all(c for c in g) for g in self.genotypes)

    def value_string(self) -> str:
        """DKMS-style value: ``POS``, ``NEG``, ``NA`` or ``001/002+004|…``."""
        if self.state is GeneState.ABSENT:
            return "NEG"
        if self.state is GeneState.UNKNOWN:
            return "NA"
        if not self.genotypes:
            return "POS"
        alts = []
        for g in self.genotypes:
            copies = []
            for c in g:
                copies.append("/".join(a.split("*", 1)[1] for a in c) if c else "POS")
            alts.append("+".join(copies))
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
        return any(g.state is not GeneState.UNKNOWN for g in self.genes)

    def __str__(self) -> str:
        return self.to_string()

    def to_string(self) -> str:
        """Canonical kirmatch KIR string that reads back with the same meaning.

        With every gene known it is the compact list form (absent genes left
        out); with any gene unknown it is the explicit per-gene form listing
        all genes, so unknown stays unknown.
        """
        if all(g.state is not GeneState.UNKNOWN for g in self.genes) and all(
            g.genotypes is None or len(g.genotypes) == 1 for g in self.genes
        ):
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
        return ";".join(f"{g.gene}={g.value_string()}" for g in self.genes)


def untyped_kir(raw: str = "") -> KIRGenotype:
    """A genotype with every gene unknown (no KIR typing)."""
    return KIRGenotype(raw, tuple(KIRGeneTyping(g, GeneState.UNKNOWN, None, "untyped")
                                  for g in CANONICAL_GENES))


def _gene_name(text: str, tables: ReferenceTables, raw: str) -> tuple[str, str]:
    """Resolve a gene token to (canonical gene, IPD gene name for allele checks)."""
    t = text.strip().upper()
    info = tables.kir_gene(t)
    if info is None:
        raise KIRParseError(raw, f"unknown KIR gene {text!r}")
    ipd = t if t.startswith("KIR") else f"KIR{t}"
    return info.gene, ipd


def _allele(gene_token: str, digits: str, suffix: str, tables: ReferenceTables,
            raw: str) -> tuple[str, str]:
    gene, ipd = _gene_name(gene_token, tables, raw)
    suffix = suffix.upper()
    if suffix and suffix not in ("N", "Q"):
        raise KIRParseError(raw, f"unknown KIR allele suffix {suffix!r}")
    check_gene = gene if gene != "KIR2DL5" else ipd if ipd in ("KIR2DL5A", "KIR2DL5B") else gene
    if not tables.kir_allele_exists(check_gene, digits + suffix):
        raise UnknownAlleleError(f"{ipd}*{digits}{suffix}", KIR_RELEASE)
    return gene, f"{gene}*{digits[:3]}{suffix}"


def parse_kir_value(gene: str, value: object, tables: ReferenceTables, *,
                    raw: str | None = None) -> KIRGeneTyping:
    """Parse one DKMS-style per-gene value (``POS``, ``NEG``, ``001/002+004``, …).

    >>> from kirmatch.tables import load_reference_tables
    >>> t = load_reference_tables()
    >>> parse_kir_value("KIR3DL1", "001/095+004", t).genotypes
    ((('KIR3DL1*001', 'KIR3DL1*095'), ('KIR3DL1*004',)),)
    >>> parse_kir_value("KIR2DS1", "NEG", t).state.value
    'absent'
    >>> parse_kir_value("KIR2DS1", "", t).state.value
    'unknown'

    ``value`` is a string, a number (``1``/``0``), a bool or ``None``/NaN
    (unknown).

    Raises
    ------
    KIRParseError, UnknownAlleleError
        The gene or the value cannot be read; the message names it.
    TypeError
        ``gene`` or ``tables`` has the wrong type, ``value`` is not a str,
        number, bool or None, or ``raw`` is not a str or None.
    """
    if not (isinstance(value, str) and isinstance(gene, str)
            and isinstance(tables, ReferenceTables) and (raw is None or isinstance(raw, str))):
        check_type("gene", gene, str)
        check_type("value", value, (str, Real, bool), none_ok=True,
                   expected="str or a number or bool")
        check_type("tables", tables, ReferenceTables)
        check_type("raw", raw, str, none_ok=True)
    canon, _ = _gene_name(gene, tables, raw or str(gene))
    text = "" if value is None else str(value).strip()
    if text.lower() == "nan":
        text = ""
    up = text.upper()
    where = raw or f"{canon}={text}"
    if up in _UNK:
        reason = "failed" if up == "FAILED" else "untyped"
        return KIRGeneTyping(canon, GeneState.UNKNOWN, None, reason)
    if up in _POS:
        return KIRGeneTyping(canon, GeneState.PRESENT)
    if up in _NEG:
        return KIRGeneTyping(canon, GeneState.ABSENT)
    info = tables.kir_gene(up)
    if info is not None and info.gene == canon:  # e.g. "2DS4N" in the KIR2DS4 column
        return KIRGeneTyping(canon, GeneState.PRESENT)
    genotypes = []
    for alt in up.split("|"):
        copies = []
        for copy in alt.split("+"):
            opts = []
            for a in copy.split("/"):
                a = a.strip()
                if a in _POS:
                    opts = []
                    break
                m = _DIGITS_RE.match(a) or None
                if m is None:
                    m2 = _ALLELE_RE.match(a)
                    if m2 is None:
                        raise KIRParseError(where, f"{a!r} is not a KIR allele (3-7 digits)")
                    g2, name = _allele(m2.group("gene"), m2.group("digits"),
                                       m2.group("suffix"), tables, where)
                    if g2 != canon:
                        raise KIRParseError(where, f"allele {a!r} is not a {canon} allele")
                    opts.append(name)
                    continue
                _, name = _allele(canon, m.group("digits"), m.group("suffix"), tables, where)
                opts.append(name)
            copies.append(tuple(dict.fromkeys(opts)))
        genotypes.append(tuple(copies))
    return KIRGeneTyping(canon, GeneState.PRESENT, tuple(genotypes))


def kir_genotype_from_states(states: dict[str, KIRGeneTyping], raw: str = "",
                             *, default: GeneState = GeneState.UNKNOWN,
                             warnings: tuple[str, ...] = ()) -> KIRGenotype:
    """Assemble a genotype from per-gene typings; missing genes get ``default``."""
    genes = []
    for g in CANONICAL_GENES:
        if g in states:
            genes.append(states[g])
        elif default is GeneState.UNKNOWN:
            genes.append(KIRGeneTyping(g, GeneState.UNKNOWN, None, "untyped"))
        else:
            genes.append(KIRGeneTyping(g, default))
    return KIRGenotype(raw, tuple(genes), warnings)


def parse_kir_genotype(text: str | None, tables: ReferenceTables) -> KIRGenotype:
    """Parse a KIR typing string (see the module docstring); blank = untyped.

    >>> from kirmatch.tables import load_reference_tables
    >>> t = load_reference_tables()
    >>> g = parse_kir_genotype("2DL1+2DL3+KIR3DL1*001+KIR3DL1*004", t)
    >>> g.gene("KIR2DL2").state.value, g.gene("KIR3DL1").genotypes
    ('absent', ((('KIR3DL1*001',), ('KIR3DL1*004',)),))
    >>> parse_kir_genotype("kir#2.13.0#KIR2DL1*001", t).gene("KIR2DL2").state.value
    'unknown'

    ``None`` and a float NaN (pandas' missing value) are untyped too.

    Raises
    ------
    KIRParseError, UnknownAlleleError
        The typing cannot be read; the message names it.
    TypeError
        ``text`` is not a str or None, or ``tables`` is not ``ReferenceTables``.
    """
    if not isinstance(text, str) and not is_nan(text):
        check_type("text", text, str, none_ok=True)
    check_type("tables", tables, ReferenceTables)
    if text is None or not str(text).strip() or str(text).strip().upper() in ("NA", "NAN"):
        return untyped_kir(str(text or ""))
    raw = str(text).strip()
    s = raw
    default = GeneState.ABSENT
    warnings: list[str] = []
    nm = _NS_RE.match(s)
    if nm:
        if nm.group("ns").lower() != "kir":
            raise KIRParseError(raw, f"GL namespace {nm.group('ns')!r} is not 'kir'")
        if nm.group("version") != "2.13.0":
            warnings.append(f"gl_version(kir {nm.group('version')})")
        s = nm.group("body")
        default = GeneState.UNKNOWN
    if "=" in s:
        states: dict[str, KIRGeneTyping] = {}
        for item in re.split(r"[;,\s]+", s):
            if not item:
                continue
            if "=" not in item:
                raise KIRParseError(raw, f"{item!r} should be GENE=VALUE in the per-gene form",
                                    position=raw.find(item))
            gene, value = item.split("=", 1)
            typing = parse_kir_value(gene, value, tables, raw=raw)
            if typing.gene in states:
                raise KIRParseError(raw, f"gene {typing.gene} given twice")
            states[typing.gene] = typing
        return kir_genotype_from_states(states, raw, default=GeneState.UNKNOWN,
                                        warnings=tuple(warnings))
    # List form: ^ blocks, | genotype alternatives, + copies, / allele alternatives.
    per_alt: list[dict[str, list[Copy]]] = []
    gene_level: set[str] = set()
    blocks = [b for b in re.split(r"[\^\s,;]+", s) if b]
    gene_copies: dict[str, list[tuple[tuple[Copy, ...], ...]]] = {}
    for block in blocks:
        alts = block.split("|")
        alt_maps: list[dict[str, list[Copy]]] = []
        for alt in alts:
            m: dict[str, list[Copy]] = {}
            for copy in alt.split("+"):
                copy = copy.strip()
                if not copy:
                    raise KIRParseError(raw, "empty item between '+'", position=raw.find(block))
                opts: list[str] = []
                cgene = None
                for piece in re.split(r"[/?]", copy):
                    ma = _ALLELE_RE.match(piece)
                    if ma:
                        g, name = _allele(ma.group("gene"), ma.group("digits"),
                                          ma.group("suffix"), tables, raw)
                        opts.append(name)
                    elif cgene is not None and (md := _DIGITS_RE.match(piece)):
                        g, name = _allele(cgene, md.group("digits"), md.group("suffix"),
                                          tables, raw)
                        opts.append(name)
                    else:
                        g, _ = _gene_name(piece, tables, raw)
                        gene_level.add(g)
                    if cgene is not None and g != cgene:
                        raise KIRParseError(raw, f"{copy!r} mixes genes {cgene} and {g}")
                    cgene = g
                assert cgene is not None
                m.setdefault(cgene, []).append(tuple(dict.fromkeys(opts)))
            alt_maps.append(m)
        genes_in_block = set().union(*(set(m) for m in alt_maps))
        for g in genes_in_block:
            gene_copies.setdefault(g, []).append(
                tuple(tuple(m.get(g, ())) for m in alt_maps)
            )
        per_alt.extend(alt_maps)
    states = {}
    for g, blocks_alts in gene_copies.items():
        if len(blocks_alts) > 1:
            # The gene appears in several blocks: copies add up (no alternatives).
            if any(len(a) > 1 for a in blocks_alts):
                raise KIRParseError(raw, f"gene {g} appears in several blocks with '|'")
            copies = tuple(c for a in blocks_alts for c in a[0])
            alternatives = (copies,)
        else:
            alternatives = blocks_alts[0]
        present_in = [len(a) > 0 for a in alternatives]
        only_gene_level = all(all(not c for c in a) for a in alternatives if a)
        if all(present_in):
            gts = None if only_gene_level else tuple(a for a in alternatives)
            states[g] = KIRGeneTyping(g, GeneState.PRESENT, gts)
        else:
            states[g] = KIRGeneTyping(g, GeneState.UNKNOWN, None, "genotype_alternatives")
    return kir_genotype_from_states(states, raw, default=default, warnings=tuple(warnings))


# ----------------------------------------------------------------------------
# Features for the models (with propagation over unknowns)
# ----------------------------------------------------------------------------

_PRECEDENCE = {"L": 3, "H": 2, "N": 1}


@dataclass(frozen=True, slots=True)
class KIRFeatures:
    """Per-person KIR candidate sets used by the models."""

    typed: bool
    present: dict[str, Cand[bool]]
    kir3dl1_class: Cand[str | None]
    kir3dl1_functional: Cand[bool | None]
    kir2dl1_245: Cand[str | None]
    warnings: tuple[str, ...]

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


def _copy_classes(copy: Copy, tables: ReferenceTables, warnings: list[str]) -> set[str | None]:
    if not copy:
        return {"H", "L", "N"}
    out: set[str | None] = set()
    for a in copy:
        if a.startswith("KIR3DS1"):
            out.add("N")
            continue
        if a.endswith("N"):
            out.add("N")
            continue
        group = a[:-1] if a.endswith("Q") else a
        cls = tables.kir3dl1_class(group)
        if a.endswith("Q"):
            warnings.append(f"expression_variant({a})")
        if cls is None:
            warnings.append(f"kir3dl1_unclassified_allele({a})")
        out.add(cls)
    return out


def _combine_class(classes: tuple[str | None, ...]) -> str | None:
    """Precedence L > H > N; an unclassified allele is unknown unless an L settles it."""
    if "L" in classes:
        return "L"
    if None in classes:
        return None
    return max(classes, key=lambda c: _PRECEDENCE[c])  # type: ignore[index]


def kir_features(g: KIRGenotype | None, tables: ReferenceTables,
                 who: str = "donor") -> KIRFeatures:
    """Candidate sets for gene presence, KIR3DL1 class and KIR2DL1 residue 245."""
    if g is None:
        g = untyped_kir()
    warnings: list[str] = list(g.warnings)
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

    # KIR3DL1/KIR3DS1 class (rule 11): enumerate states and allele combinations.
    d3l1, d3s1 = g.gene("KIR3DL1"), g.gene("KIR3DS1")
    classes: set[str | None] = set()
    functional: set[bool | None] = set()
    cls_reason: str | None = None
    l1_options: list[tuple[Copy, ...] | None] = []  # None = absent
    if d3l1.state in (GeneState.ABSENT, GeneState.UNKNOWN):
        l1_options.append(None)
    if d3l1.state in (GeneState.PRESENT, GeneState.UNKNOWN):
        if d3l1.state is GeneState.UNKNOWN:
            cls_reason = "kir_gene_unknown"
        if d3l1.genotypes is None:
            l1_options.append(((),))
            if d3l1.state is GeneState.PRESENT:
                cls_reason = cls_reason or "gene_level_kir"
                warnings.append(f"gene_level_kir({who} KIR3DL1)")
        else:
            l1_options.extend(d3l1.genotypes)
    s1_options: list[bool] = []
    if d3s1.state in (GeneState.ABSENT, GeneState.UNKNOWN):
        s1_options.append(False)
    if d3s1.state in (GeneState.PRESENT, GeneState.UNKNOWN):
        s1_options.append(True)
        if d3s1.state is GeneState.UNKNOWN:
            cls_reason = cls_reason or "kir_gene_unknown"
    for l1 in l1_options:
        copy_sets: list[set[str | None]] = (
            [_copy_classes(c, tables, warnings) for c in l1] if l1 is not None else []
        )
        for combo in product(*(sorted(cs, key=str) for cs in copy_sets)):
            l1_classes = tuple(combo)
            # exclude_null_kir3dl1: KIR3DL1 counts only with an H or L allele.
            if any(c in ("H", "L") for c in l1_classes):
                functional.add(True)
            elif None in l1_classes:
                functional.add(None)
            else:
                functional.add(False)
            for s1 in s1_options:
                allc = l1_classes + (("N",) if s1 else ())
                if not allc:
                    classes.add("N")
                    continue
                classes.add(_combine_class(allc))
    if d3l1.state is GeneState.ABSENT and d3s1.state is GeneState.ABSENT:
        warnings.append(f"no_kir3dl1_or_kir3ds1({who})")
    if None in classes and cls_reason is None:
        cls_reason = "kir3dl1_unclassified_allele"
    if None in functional and cls_reason is None:
        cls_reason = "kir3dl1_unclassified_allele"
    kir3dl1_class = Cand.any_of(classes, cls_reason or "kir_gene_unknown")
    kir3dl1_functional = Cand.any_of(functional, cls_reason or "kir_gene_unknown")

    # KIR2DL1 residue 245 (rule 12).
    d1 = g.gene("KIR2DL1")
    calls: set[str | None] = set()
    r245: str | None = None
    if d1.state in (GeneState.ABSENT, GeneState.UNKNOWN):
        calls.add("absent")
    if d1.state is GeneState.UNKNOWN:
        r245 = "kir_gene_unknown"
    if d1.state in (GeneState.PRESENT, GeneState.UNKNOWN):
        if d1.genotypes is None or not d1.allele_level:
            calls.add(None)
            if d1.state is GeneState.PRESENT:
                r245 = "gene_level_kir"
                warnings.append(f"gene_level_kir({who} KIR2DL1)")
        else:
            for gtp in d1.genotypes:
                per_copy = []
                for c in gtp:
                    per_copy.append(sorted({_245(a, tables, warnings) for a in c}, key=str))
                for combo in product(*per_copy):
                    calls.add(_combine_245(combo))
            if None in calls:
                r245 = r245 or "kir2dl1_245_other"
    kir2dl1_245 = Cand.any_of(calls, r245 or "kir2dl1_245_other")
    return KIRFeatures(typed, present, kir3dl1_class, kir3dl1_functional, kir2dl1_245,
                       tuple(dict.fromkeys(warnings)))


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
