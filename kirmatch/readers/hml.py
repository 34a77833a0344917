"""NMDP HML (Histoimmunogenetics Markup Language) 1.0 typing reports.

The reader walks ``<hml>`` → ``<sample id=…>`` → ``<typing gene-family="HLA">``
→ ``<allele-assignment allele-db=… allele-version=…>`` and takes each
``<glstring>`` text (HML 1.0; namespace ``http://schemas.nmdp.org/spec/hml/1.0.1``)
or, in older reports, the ``<haploid locus="HLA-A" type="01:01"/>`` elements
(the haploids of one locus joined with ``+``). The typings of a sample are
combined with ``^`` and read with :func:`kirmatch.hla.parse_hla_genotype`.
Element names are matched without their namespace, so HML 0.9.x and 1.0
files both read.

Warnings:

* ``hml_allele_version(<sample> <db> <version>)`` when an assignment's
  ``allele-version`` is not 3.58.0 (the pinned IPD-IMGT/HLA release), and
  ``gl_version(<sample> hla <version>)`` for a namespaced GL string of another
  version;
* ``hml_not_hla(<sample> <gene-family>)`` for a typing of another gene family
  (KIR typings are not read from HML);
* ``hml_glstring_uri(<sample> <uri>)`` for a ``<glstring uri=…>`` without text:
  it would need the GL service, which kirmatch never calls;
* ``hla_untyped(<sample> <locus>)`` for a class I locus without typing.

Safety: the file is refused, with a clear error, if it contains a
``<!DOCTYPE`` or ``<!ENTITY`` declaration (no entity expansion, no external
resources: the defusedxml rules). Parse errors name the file, line and column.
A sample without any typing is kept with an empty genotype.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.parsers import expat

from kirmatch.errors import InputSchemaError, KirmatchError
from kirmatch.hla import CLASS_I_LOCI, HLAGenotype, genotype_from_loci, parse_hla_genotype
from kirmatch.kir import KIRGenotype
from kirmatch.readers import ReadResult, locate, read_text

__all__ = ["HML_NAMESPACE", "PINNED_ALLELE_VERSION", "read_hml"]

HML_NAMESPACE = "http://schemas.nmdp.org/spec/hml/1.0.1"
PINNED_ALLELE_VERSION = "3.58.0"
_NS_RE = re.compile(r"^(?P<ns>[a-z]+)#(?P<version>[0-9.]+)#(?P<body>.*)$", re.IGNORECASE | re.S)
_FORBIDDEN = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class _Tree:
    """An ElementTree plus the source line of each element (for error messages)."""

    def __init__(self, root: ET.Element, lines: dict[int, int]) -> None:
        self.root = root
        self._lines = lines

    def line(self, element: ET.Element) -> int | None:
        return self._lines.get(id(element))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_xml(text: str, source: str) -> _Tree:
    """Parse with expat into an ElementTree, recording line numbers; refuse DTDs."""
    m = _FORBIDDEN.search(text)
    if m:
        line = text[:m.start()].count("\n") + 1
        raise InputSchemaError(f"{source}: refusing XML with a <!{m.group(1).upper()} "
                               "declaration (entities and DTDs are not allowed)", row=line)
    builder = ET.TreeBuilder()
    lines: dict[int, int] = {}
    parser = expat.ParserCreate(encoding="UTF-8", namespace_separator="}")

    def start(name: str, attrs: dict[str, str]) -> None:
        tag = "{" + name if "}" in name else name
        element = builder.start(tag, attrs)
        lines[id(element)] = parser.CurrentLineNumber

    def end(name: str) -> None:
        builder.end("{" + name if "}" in name else name)

    def refuse(*_args: object) -> None:
        raise InputSchemaError(f"{source}: refusing XML with a DTD or entity declaration",
                               row=parser.CurrentLineNumber)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    try:
        parser.Parse(text, True)
    except expat.ExpatError as exc:
        raise InputSchemaError(f"{source}: not well-formed XML ({expat.ErrorString(exc.code)}, "
                               f"char {exc.offset + 1})", row=exc.lineno) from None
    root = builder.close()
    return _Tree(root, lines)


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if _local(c.tag) == name]


def _gl_body(text: str, sid: str, warnings: list[str]) -> str:
    """Strip a ``hla#version#`` namespace (warning for another version) and whitespace."""
    s = "".join(text.split())
    m = _NS_RE.match(s)
    if m:
        if m.group("version") != PINNED_ALLELE_VERSION:
            warnings.append(f"gl_version({sid} hla {m.group('version')})")
        return m.group("body")
    return s


def _haploid_locus(locus: str) -> str:
    up = locus.strip().upper()
    return up[4:] if up.startswith("HLA-") else up


def _genotype(blocks: list[tuple[str, int | None, str]], source: str,
              sample_line: int | None, sid: str) -> HLAGenotype:
    """Join a sample's locus blocks with ``^``; on error name the element at fault."""
    if not blocks:
        return HLAGenotype(raw="", loci=())
    loci = []
    for body, line, column in blocks:
        try:
            loci.extend(_parse_block(body).loci)
        except KirmatchError as exc:
            raise locate(exc, source, line, column) from None
    try:
        return genotype_from_loci(loci, raw="^".join(b for b, _, _ in blocks))
    except KirmatchError as exc:  # e.g. one locus in two typings with alternatives
        raise locate(exc, source, sample_line, f"sample {sid}") from None


@functools.lru_cache(maxsize=65536)
def _parse_block(body: str) -> HLAGenotype:
    """A typing block, parsed once however many samples share it."""
    return parse_hla_genotype(body)


def read_hml(path: Path) -> ReadResult:
    """Read an NMDP HML file (see the module docstring).

    Raises
    ------
    InputSchemaError
        Not XML, not HML, a DTD/entity declaration, a sample without an id or
        repeated, an allele assignment without typing.
    HLAParseError
        A GL string or haploid typing cannot be parsed (file, line, element).
    """
    source = path.name
    tree = _parse_xml(read_text(path), source)
    root = tree.root
    if _local(root.tag) != "hml":
        raise InputSchemaError(f"{source}: root element is <{_local(root.tag)}>, not <hml>",
                               row=tree.line(root))
    samples = [e for e in root.iter() if _local(e.tag) == "sample"]
    if not samples:
        raise InputSchemaError(f"{source}: no <sample> element", row=tree.line(root))
    genotypes: dict[str, KIRGenotype | HLAGenotype] = {}
    warnings: dict[str, tuple[str, ...]] = {}
    seen: dict[str, int | None] = {}
    for sample in samples:
        sline = tree.line(sample)
        sid = (sample.get("id") or "").strip()
        if not sid:
            raise InputSchemaError(f"{source}: <sample> without an id", row=sline,
                                   column="sample/@id")
        if sid in seen:
            raise InputSchemaError(f"{source}: sample {sid!r} appears twice (lines "
                                   f"{seen[sid]} and {sline})", raw=sid, row=sline,
                                   column="sample/@id")
        seen[sid] = sline
        own: list[str] = []
        blocks: list[tuple[str, int | None, str]] = []
        for typing in _children(sample, "typing"):
            family = (typing.get("gene-family") or "HLA").strip()
            if family.upper() != "HLA":
                own.append(f"hml_not_hla({sid} {family})")
                continue
            for assignment in _children(typing, "allele-assignment"):
                aline = tree.line(assignment)
                db = (assignment.get("allele-db") or "").strip() or "IMGT/HLA"
                version = (assignment.get("allele-version") or "").strip()
                if version != PINNED_ALLELE_VERSION:
                    own.append(f"hml_allele_version({sid} {db} {version or 'missing'})")
                found = False
                for gl in _children(assignment, "glstring"):
                    found = True
                    text = "".join(gl.itertext()).strip()
                    if not text:
                        uri = (gl.get("uri") or "").strip()
                        if uri:
                            own.append(f"hml_glstring_uri({sid} {uri})")
                            continue
                        raise InputSchemaError(f"{source}: empty <glstring> for sample "
                                               f"{sid!r}", row=tree.line(gl),
                                               column="glstring")
                    blocks.append((_gl_body(text, sid, own), tree.line(gl), "glstring"))
                haploids: dict[str, list[str]] = {}
                haploid_lines: dict[str, int | None] = {}
                for h in _children(assignment, "haploid"):
                    found = True
                    locus = _haploid_locus(h.get("locus") or "")
                    typ = (h.get("type") or "").strip()
                    if not locus or not typ:
                        raise InputSchemaError(f"{source}: <haploid> needs locus and type "
                                               f"attributes (sample {sid!r})",
                                               row=tree.line(h), column="haploid")
                    name = typ if "*" in typ else f"{locus}*{typ}"
                    haploids.setdefault(locus, []).append(name)
                    haploid_lines.setdefault(locus, tree.line(h))
                for locus, names in haploids.items():
                    blocks.append(("+".join(names), haploid_lines[locus], "haploid"))
                if not found:
                    raise InputSchemaError(f"{source}: <allele-assignment> of sample {sid!r} "
                                           "has no <glstring> or <haploid>", row=aline,
                                           column="allele-assignment")
        genotype = _genotype(blocks, source, sline, sid)
        own.extend(f"hla_untyped({sid} {loc})" for loc in CLASS_I_LOCI
                   if genotype.locus(loc) is None)
        genotypes[sid] = genotype
        warnings[sid] = tuple(dict.fromkeys(own))
    return ReadResult("hml", genotypes, warnings, (str(path),))
