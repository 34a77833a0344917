"""What the columns of a genotypes table mean: the one input grammar of every
command (``pair``, ``rank``, ``batch``, ``persons``, ``convert``) and of the
table readers (``--hla-format gl|columns``, ``--kir-format matrix``).

Column forms (names compared case-insensitively; ``-``, ``_``, ``.`` and spaces
between the parts are all accepted):

========================  =====================================  ===========================
form                      column names                           cell
========================  =====================================  ===========================
sample id                 ``sample_id``, ``id``, ``sample`` …    the person's id
HLA GL string             ``hla``, ``gl``, ``glstring`` …        ``A*02:01+A*24:02^B*07:02…``
HLA allele per column     ``A_1``, ``HLA-A_2``, ``A1``, ``Cw_1``,  ``02:01``, ``A*02:01``,
                          ``DRB1_2``, ``a_typ1`` …                 ``02:01/02:02``, ``A2``
HLA locus per column      ``hla_a``, ``HLA-B``, ``HLA_DRB1`` …   ``02:01+24:02`` (DKMS)
KIR string                ``kir``, ``kir_genotype``, ``kir_gl``  ``KIR2DL1+KIR2DL3+…``,
                                                                 ``2DL1=POS;3DL1=001+004``
KIR gene per column       ``KIR2DL1``, ``2DL1``, ``kir_2DL1``,   ``POS``/``NEG``, ``1``/``0``,
                          ``KIR2DL5A``, ``2DS4N`` …              ``001+002``, ``001/095+004``
========================  =====================================  ===========================

* Several columns of one KIR gene (``2DL5A`` + ``2DL5B``, ``2DS4`` + ``2DS4N``)
  are merged once, by :func:`kirmatch.kir.merge_gene_typings` semantics.
* One definition of blank: :func:`kirmatch.tabular.is_blank` (``""``, ``NA``,
  ``N/A``, ``NaN``, ``NULL``) means *untyped* in every typing column.
* A column that looks like a typing column but is not understood (``HLA-H_1``,
  ``KIR2DL6``, ``hla_typing_2``, or values that look like allele names under an
  unknown header) is an error naming it; it is never silently dropped. Other
  columns are *ignored* and listed (``Layout.ignored``) in the run record.
* Two forms of the same thing (a GL column *and* per-allele columns for HLA-A)
  are an error naming both.

>>> from kirmatch.tables import load_reference_tables
>>> t = load_reference_tables()
>>> lay = detect_layout(["ID", "HLA-A_1", "hla_a_2", "Cw_1", "hla_b", "kir_2DL1", "2DS4N",
...                      "sex"], t)
>>> lay.id_column, lay.hla_slots, lay.hla_loci
('ID', {'A': ('HLA-A_1', 'hla_a_2'), 'C': ('Cw_1',)}, {'B': 'hla_b'})
>>> lay.kir_genes, lay.ignored
((('kir_2DL1', 'KIR2DL1', 'KIR2DL1'), ('2DS4N', 'KIR2DS4', 'KIR2DS4N')), ('sex',))
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kirmatch.errors import HLAParseError, InputSchemaError, KirmatchError
from kirmatch.hla import (
    ABSENT_LOCI,
    KNOWN_LOCI,
    HLAGenotype,
    HLALocusTyping,
    HLASlot,
    genotype_from_loci,
    parse_hla_genotype,
    parse_hla_typing,
)
from kirmatch.kir import (
    CANONICAL_GENES,
    GeneState,
    KIRGeneTyping,
    KIRGenotype,
    kir_genotype_from_states,
    merge_gene_typings,
    parse_kir_genotype,
    parse_kir_value,
    unstated_parts,
)
from kirmatch.tables import ReferenceTables
from kirmatch.tabular import is_blank

__all__ = [
    "GL_NAMES",
    "ID_NAMES",
    "KIR_STRING_NAMES",
    "Layout",
    "detect_layout",
    "hla_from_cells",
    "kir_from_cells",
    "parse_locus_cell",
]

#: Sample id column names (normalised: lower case, separators as ``_``).
ID_NAMES = ("sample_id", "sampleid", "sample", "id", "subject_id", "subject", "individual",
            "iid", "person_id", "person", "patient_id", "donor_id", "sample_name")
#: HLA GL-string column names.
GL_NAMES = frozenset({"hla", "gl", "glstring", "gl_string", "hla_gl", "hla_glstring",
                      "hla_gl_string", "hla_typing", "typing", "hla_genotype"})
#: KIR whole-genotype string column names.
KIR_STRING_NAMES = frozenset({"kir", "kir_genotype", "kir_gl", "kir_glstring", "kir_typing",
                              "kir_string"})
#: WMDA placeholders that leave an HLA cell untyped; NNNN at DRB3/4/5 is the
#: absent gene, a typing (hla.ABSENT_LOCI).
_HLA_PLACEHOLDERS = frozenset({"NNNN", "XXXX", "UUUU", "NEW"})
#: Values under which a KIR gene column means "not tested" (allelefrequencies.net
#: writes ``n``), unless the file also uses ``Y``/``YES`` (then ``N`` is "no").
_KIR_YES = frozenset({"Y", "YES"})

_SEP = r"[\s_.\-]?"
_LOCUS_ALT = "|".join(sorted((*KNOWN_LOCI, "CW"), key=len, reverse=True))
_SLOT_RE = re.compile(rf"^(?:HLA{_SEP})?(?P<locus>{_LOCUS_ALT}){_SEP}"
                      rf"(?:(?:TYP(?:ING)?|ALLELE){_SEP})?(?P<n>0?[12])$", re.IGNORECASE)
_LOCUS_RE = re.compile(rf"^(?:HLA{_SEP})?(?P<locus>{_LOCUS_ALT})$", re.IGNORECASE)
#: A per-allele column with another number than 1 or 2 (A_0, A_3, or A0/A3 beside
#: A1): refused, never ignored (reading only A_1 would make every person
#: homozygous). Without a separator it is refused only beside the locus' own
#: allele columns (a lone B7 or C3 column is not a typing: ignored).
_OTHER_SLOT_RE = re.compile(rf"^(?:HLA{_SEP})?(?P<locus>{_LOCUS_ALT})"
                            rf"(?P<sep>[\s_.\-]?(?:(?:TYP(?:ING)?|ALLELE)[\s_.\-]?)?)"
                            rf"(?P<n>[0-9])$", re.IGNORECASE)
_KIR_RE = re.compile(rf"^(?:KIR{_SEP})?(?P<gene>[23]D[LSP][0-9][A-Z0-9]*)$", re.IGNORECASE)
#: HLA loci kirmatch does not read; a column for one of them is refused, not ignored.
#: Pseudogenes, the DM/DO antigen-processing genes and MICA/MICB. DOB also stays here
#: because a bare ``DOB`` column (date of birth) must never be read as an HLA-DOB typing.
OTHER_HLA_LOCI = ("H", "DRB2", "DRB6", "DRB7", "DRB8", "DRB9", "DQA2", "DQB2", "DPA2",
                  "DPB2", "DMA", "DMB", "DOA", "DOB", "MICA", "MICB")
_OTHER_ALT = "|".join(sorted(OTHER_HLA_LOCI, key=len, reverse=True))
#: Looks like a typing column even though it is not understood.
_TYPING_LIKE = re.compile(rf"(^|[^A-Z])(HLA|KIR)([^A-Z]|$)|^(?:{_OTHER_ALT}){_SEP}"
                          rf"(?:(?:TYP(?:ING)?|ALLELE){_SEP})?[12]?$|^(?:KIR{_SEP})?[23]D[LSP]",
                          re.IGNORECASE)
_ALLELE_VALUE = re.compile(r"^(HLA-)?[A-Z]{1,4}[0-9]?\*[0-9]{2}|^KIR[23]D", re.IGNORECASE)


def _norm(name: str) -> str:
    return re.sub(r"[\s.\-]+", "_", name.strip().lower())


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a genotypes table keeps its ids and typings (see the module docstring).

    ``hla_slots`` maps a locus to its per-allele columns in slot order;
    ``hla_loci`` maps a locus to its whole-locus column (``hla_a``);
    ``kir_genes`` holds (column, canonical gene, alias as written) triples;
    ``ignored`` the columns that carry no typing (listed in the run record).
    """

    id_column: str
    hla_gl: str | None = None
    hla_slots: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    hla_loci: Mapping[str, str] = field(default_factory=dict)
    kir_string: str | None = None
    kir_genes: tuple[tuple[str, str, str], ...] = ()
    ignored: tuple[str, ...] = ()

    @property
    def has_hla(self) -> bool:
        return bool(self.hla_gl or self.hla_slots or self.hla_loci)

    @property
    def has_kir(self) -> bool:
        return bool(self.kir_string or self.kir_genes)

    @property
    def hla_columns(self) -> tuple[str, ...]:
        cols = [self.hla_gl] if self.hla_gl else []
        for slots in self.hla_slots.values():
            cols.extend(slots)
        cols.extend(self.hla_loci.values())
        return tuple(cols)

    @property
    def kir_columns(self) -> tuple[str, ...]:
        cols = [self.kir_string] if self.kir_string else []
        cols.extend(c for c, _, _ in self.kir_genes)
        return tuple(cols)

    @property
    def typing_columns(self) -> tuple[str, ...]:
        """Every column that holds a typing, HLA first."""
        return (*self.hla_columns, *self.kir_columns)

    def describe(self) -> dict[str, object]:
        """For the run record."""
        return {
            "id": self.id_column, "hla_gl": self.hla_gl,
            "hla_allele_columns": {k: list(v) for k, v in self.hla_slots.items()},
            "hla_locus_columns": dict(self.hla_loci), "kir_string": self.kir_string,
            "kir_gene_columns": {c: g for c, g, _ in self.kir_genes},
            "ignored_columns": list(self.ignored),
        }


def _slot(name: str) -> tuple[str, int] | None:
    m = _SLOT_RE.match(name.strip())
    if m is None:
        return None
    locus = m.group("locus").upper()
    return ("C" if locus == "CW" else locus), int(m.group("n"))


def _other_slot(locus: str, number: str) -> str:
    return (f"looks like an HLA-{locus} allele column numbered {number}; kirmatch reads two "
            "allele columns per locus, numbered 1 and 2 (A_1, A_2); rename it")


def _locus(name: str) -> str | None:
    m = _LOCUS_RE.match(name.strip())
    if m is None:
        return None
    locus = m.group("locus").upper()
    return "C" if locus == "CW" else locus


def detect_layout(columns: Sequence[str], tables: ReferenceTables, *, what: str = "genotypes",
                  source: str = "", sample: Mapping[str, Sequence[str]] | None = None,
                  need: Iterable[str] = ("hla", "kir"), id_required: bool = True) -> Layout:
    """Find the id and typing columns of a genotypes table.

    Parameters
    ----------
    columns:
        The header, in file order.
    what, source:
        How the table is named in messages (``genotypes``, and the file name).
    sample:
        Some cells per column (optional): an unknown column whose values look
        like allele names is an error rather than ignored.
    need:
        The typing kinds to read (``("hla",)`` for an HLA-only reader): columns
        of the other kind are then ignored (and listed as such).
    id_required:
        When false and no id column is named, the first column is the id (R
        row names, two-column ``id, GL`` tables).

    Raises
    ------
    InputSchemaError
        No id column, no typing column, a typing-like column that is not
        understood, or two forms of the same typing (the message names them).
    """
    need = tuple(need)
    where = f"{what} file {source}" if source else f"{what} file"
    names = [str(c) for c in columns]
    by_norm: dict[str, str] = {}
    for n in names:
        by_norm.setdefault(_norm(n), n)
    id_col = next((by_norm[k] for k in ID_NAMES if k in by_norm), None)
    if id_col is None:
        if (names and not names[0].strip()) or (not id_required and names):
            id_col = names[0]
        else:
            raise InputSchemaError(
                f"{where} has no sample id column (columns: {', '.join(map(repr, names))}); "
                "name it sample_id (or map yours with --column-map)", column="sample_id")
    hla_gl: str | None = None
    kir_string: str | None = None
    slots: dict[str, list[tuple[int, str]]] = {}
    loci: dict[str, str] = {}
    genes: list[tuple[str, str, str]] = []
    ignored: list[str] = []
    unnumbered: list[tuple[str, str, str]] = []     # A0, B7: an allele column only beside B1

    def refuse(col: str, why: str) -> InputSchemaError:
        return InputSchemaError(f"{where}: column {col!r} {why}", raw=col, column=col)

    for n in names:
        if n == id_col:
            continue
        key = _norm(n)
        if key in GL_NAMES:
            if hla_gl is not None:
                raise refuse(n, f"is a second HLA GL-string column (first: {hla_gl!r})")
            hla_gl = n
            continue
        if key in KIR_STRING_NAMES:
            if kir_string is not None:
                raise refuse(n, f"is a second KIR genotype column (first: {kir_string!r})")
            kir_string = n
            continue
        s = _slot(n)
        if s is not None:
            slots.setdefault(s[0], []).append((s[1], n))
            continue
        loc = _locus(n)
        if loc is not None:
            if loc in loci:
                raise refuse(n, f"is a second column for HLA-{loc} (first: {loci[loc]!r})")
            loci[loc] = n
            continue
        other = _OTHER_SLOT_RE.match(n.strip())
        if other is not None:
            locus = other.group("locus").upper()
            locus = "C" if locus == "CW" else locus
            if other.group("sep"):
                raise refuse(n, _other_slot(locus, other.group("n")))
            unnumbered.append((n, locus, other.group("n")))
            continue
        k = _KIR_RE.match(n.strip())
        if k is not None:
            info = tables.kir_gene(k.group("gene"))
            if info is None:
                raise refuse(n, f"is not a KIR gene known to IPD-KIR {tables.kir_release} "
                             "(expected names like KIR2DL1, 2DL1, kir_2DL1, KIR2DL5A, 2DS4N)")
            alias = k.group("gene").upper()
            genes.append((n, info.gene, alias if alias.startswith("KIR") else f"KIR{alias}"))
            continue
        if _TYPING_LIKE.search(n.strip()):
            raise refuse(n, "looks like a typing column but is not one kirmatch reads "
                         "(HLA: hla, A_1/A_2 … for loci " + ", ".join(KNOWN_LOCI) +
                         ", hla_a …; KIR: kir, KIR2DL1 …); rename or remove it")
        values = [v for v in (sample or {}).get(n, ()) if not is_blank(v)]
        if values and sum(bool(_ALLELE_VALUE.match(v.strip())) for v in values) * 2 >= \
                len(values):
            raise refuse(n, f"holds allele names ({values[0]!r} …) but its name is not a "
                         "typing column kirmatch reads; rename it (e.g. A_1, hla, KIR2DL1)")
        ignored.append(n)
    for col, loc, number in unnumbered:
        if loc in slots:
            raise refuse(col, _other_slot(loc, number))
        ignored.append(col)
    for loc, cols in slots.items():
        numbers = [i for i, _ in cols]
        if len(set(numbers)) != len(numbers):
            dup = next(c for i, c in cols if numbers.count(i) > 1)
            raise refuse(dup, f"is a second column for HLA-{loc} allele "
                         f"{next(i for i in numbers if numbers.count(i) > 1)}")
        if loc in loci:
            raise refuse(loci[loc], f"and the per-allele columns {', '.join(c for _, c in cols)}"
                         f" both type HLA-{loc}; keep one form")
    if hla_gl and (slots or loci):
        other = next(iter([*(c for cs in slots.values() for _, c in cs), *loci.values()]))
        raise refuse(other, f"types HLA per locus next to the GL-string column {hla_gl!r}; "
                     "keep one form")
    if kir_string and genes:
        raise refuse(genes[0][0], f"is a KIR gene column next to the KIR genotype column "
                     f"{kir_string!r}; keep one form")
    if "hla" not in need:  # an HLA column in a KIR-only input is deliberately not read
        ignored.extend([*([hla_gl] if hla_gl else []), *(c for cs in slots.values()
                                                           for _, c in cs), *loci.values()])
        hla_gl, slots, loci = None, {}, {}
    if "kir" not in need:
        ignored.extend([*([kir_string] if kir_string else []), *(c for c, _, _ in genes)])
        kir_string, genes = None, []
    ignored = [n for n in names if n in set(ignored)]
    has_hla = bool(hla_gl or slots or loci)
    has_kir = bool(kir_string or genes)
    if not (has_hla or has_kir):
        raise InputSchemaError(
            f"{where} has no typing columns (columns: {', '.join(map(repr, names))}): "
            "expected hla and/or kir, per-allele HLA columns (A_1, A_2, B_1, …, hla_a) or "
            "per-gene KIR columns (KIR2DL1, …)", column=names[1] if len(names) > 1 else None)
    order = {loc: i for i, loc in enumerate(KNOWN_LOCI)}
    return Layout(
        id_column=id_col, hla_gl=hla_gl,
        hla_slots={loc: tuple(c for _, c in sorted(slots[loc]))
                   for loc in sorted(slots, key=order.__getitem__)},
        hla_loci={loc: loci[loc] for loc in sorted(loci, key=order.__getitem__)},
        kir_string=kir_string, kir_genes=tuple(genes), ignored=tuple(ignored))


# ---------------------------------------------------------------------------
# Cells to typings
# ---------------------------------------------------------------------------

def parse_locus_cell(locus: str, text: str, *, whole_locus: bool) -> HLALocusTyping | None:
    """One HLA cell of a locus column: ``02:01``, ``A*02:01``, ``02:01/02:02``, serology,
    or for a whole-locus column (``hla_a``) ``02:01+24:02`` with ``|`` alternatives.

    Returns ``None`` for a blank cell or a WMDA placeholder (untyped).

    >>> str(parse_locus_cell("A", "02:01+A*24:02", whole_locus=True))
    'A*02:01+A*24:02'
    >>> str(parse_locus_cell("C", "Cw7/07:02", whole_locus=False))
    'Cw7/C*07:02'
    >>> parse_locus_cell("B", "07:02+08:01", whole_locus=False)
    Traceback (most recent call last):
    ...
    kirmatch.errors.HLAParseError: cannot parse '07:02+08:01': one allele per column (use '/' between alternatives; '+' belongs in a whole-locus column such as hla_b)
    """
    raw = text
    s = text.strip()
    absent_ok = locus in ABSENT_LOCI      # DRB3/4/5: NNNN is an absent gene, a typing
    if is_blank(s) or (s.upper() in _HLA_PLACEHOLDERS and not (absent_ok and
                                                               s.upper() == "NNNN")):
        return None
    if not whole_locus and any(op in s for op in "+|^~"):
        raise HLAParseError(raw, "one allele per column (use '/' between alternatives; '+' "
                            "belongs in a whole-locus column such as hla_" + locus.lower() + ")")
    if "^" in s:
        raise HLAParseError(raw, f"'^' separates loci; this column holds HLA-{locus} only")
    alternatives: list[tuple[HLASlot, ...]] = []
    for geno in s.split("|"):
        slots: list[HLASlot] = []
        for part in geno.split("+"):
            p = part.strip()
            if not p:
                raise HLAParseError(raw, "empty allele between separators")
            if p.upper() in _HLA_PLACEHOLDERS and not (absent_ok and p.upper() == "NNNN"):
                continue
            alts = []
            for tok in p.split("/"):
                t = tok.strip()
                if not t:
                    raise HLAParseError(raw, "empty allele between '/'")
                try:
                    alts.append(parse_hla_typing(t, locus=locus))
                except HLAParseError as exc:
                    if t == s:
                        raise
                    raise HLAParseError(raw, f"{t!r}: {exc.detail}") from exc
            slots.append(HLASlot(tuple(alts)))
        if len(slots) > 2:
            raise HLAParseError(raw, f"HLA-{locus} has {len(slots)} alleles; at most 2")
        if slots:
            alternatives.append(tuple(slots))
    if not alternatives:
        return None
    return HLALocusTyping(locus, tuple(alternatives))


def hla_from_cells(layout: Layout, values: Mapping[str, str]) -> HLAGenotype | None:
    """A person's HLA typing from the layout's HLA cells; ``None`` when untyped.

    Errors are :class:`~kirmatch.errors.KirmatchError` located at the column.
    """
    if layout.hla_gl is not None:
        text = values.get(layout.hla_gl, "")
        if is_blank(text):
            return None
        try:
            return parse_hla_genotype(text)
        except KirmatchError as exc:
            raise exc.located(column=layout.hla_gl) from None
    loci: list[HLALocusTyping] = []
    for locus, cols in layout.hla_slots.items():
        slots: list[HLASlot] = []
        for c in cols:
            try:
                lt = parse_locus_cell(locus, values.get(c, ""), whole_locus=False)
            except KirmatchError as exc:
                raise exc.located(column=c) from None
            if lt is not None:
                slots.extend(lt.alternatives[0])
        if slots:
            loci.append(HLALocusTyping(locus, (tuple(slots),)))
    for locus, c in layout.hla_loci.items():
        try:
            lt = parse_locus_cell(locus, values.get(c, ""), whole_locus=True)
        except KirmatchError as exc:
            raise exc.located(column=c) from None
        if lt is not None:
            loci.append(lt)
    if not loci:
        return None
    raw = ";".join(f"{c}={values.get(c, '')}" for c in layout.hla_columns)
    return genotype_from_loci(loci, raw=raw)


def kir_yes_no(layout: Layout, cells: Iterable[str]) -> bool:
    """True when the KIR gene cells use ``Y``/``YES`` (then ``N`` means absent;
    otherwise a lone ``N``/``n`` is allelefrequencies.net's "not tested")."""
    return any(str(c).strip().upper() in _KIR_YES for c in cells)


def kir_from_cells(layout: Layout, values: Mapping[str, str], tables: ReferenceTables, *,
                   yes_no: bool = False) -> KIRGenotype | None:
    """A person's KIR typing from the layout's KIR cells; ``None`` when untyped.

    Gene columns of one gene are merged (:func:`kirmatch.kir.merge_gene_typings`);
    genes without a column are unknown.
    """
    if layout.kir_string is not None:
        text = values.get(layout.kir_string, "")
        if is_blank(text):
            return None
        try:
            return parse_kir_genotype(text, tables)
        except KirmatchError as exc:
            raise exc.located(column=layout.kir_string) from None
    if not layout.kir_genes:
        return None
    parts: dict[str, list[KIRGeneTyping]] = {}
    named: dict[str, list[str]] = {}      # gene -> its columns' gene names
    for col, gene, alias in layout.kir_genes:
        cell = values.get(col, "")
        try:
            # a blank or not-tested cell is unknown, read through the column's
            # gene name as a typed cell is: a 2DS4N column's copies are
            # deletion variants whatever the cell holds
            if is_blank(cell):  # the one definition of blank (NULL included): untyped
                typing = parse_kir_value(alias, "", tables, raw=f"{col}=")
            elif str(cell).strip().upper() == "N" and not yes_no:
                typing = dataclasses.replace(parse_kir_value(alias, "", tables, raw=str(cell)),
                                             reason="not_tested")
            else:
                typing = parse_kir_value(alias, cell, tables, raw=str(cell))
        except KirmatchError as exc:
            raise exc.located(column=col) from None
        parts.setdefault(gene, []).append(typing)
        named.setdefault(gene, []).append(alias)
    states = {g: merge_gene_typings(g, [*ps, *unstated_parts(g, named[g], tables)])
              for g, ps in parts.items()}
    genotype = kir_genotype_from_states(
        states, ";".join(f"{c}={values.get(c, '')}" for c, _, _ in layout.kir_genes))
    if all(g.state is GeneState.UNKNOWN and g.reason == "untyped" for g in genotype.genes):
        return None  # every cell blank: not typed (a failed call is kept, with its reason)
    return genotype


def untyped_genes(genotype: KIRGenotype | None) -> tuple[str, ...]:
    """The canonical genes whose state is unknown."""
    if genotype is None:
        return CANONICAL_GENES
    return tuple(g.gene for g in genotype.genes if g.state is GeneState.UNKNOWN)
