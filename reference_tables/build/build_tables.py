#!/usr/bin/env python3
"""Build kirmatch's derived reference tables from the pinned IPD releases.

Offline, deterministic and stdlib-only. Reads the read-only copies of
IPD-IMGT/HLA 3.58.0 and IPD-KIR 2.13.0 in ``../shared`` (never the network)
and writes small TSV tables plus ``MANIFEST.toml`` into ``--out``::

    python reference_tables/build/build_tables.py --shared ../shared \\
        --out reference_tables [--date YYYY-MM-DD]

The date (default: the one already recorded in ``<out>/MANIFEST.toml``, else
today) is the only run-dependent value written, so a rebuild with the same date
is byte-identical. Rules: DOMAIN.md §A.2 (rule 1), §C.6, §C.7; provenance:
STYLE.md §5. See ``reference_tables/build/README.md``.

The script fails loudly (``BuildError``, exit status 1) whenever an input does
not look like the pinned release or a rule's stated invariant does not hold.
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import datetime as _dt
import gzip
import hashlib
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# --------------------------------------------------------------------------
# Pinned releases (DOMAIN.md §A.1, §C.15). A newer release means new constants
# here, new expected facts in tests/test_tables.py and a new MANIFEST.
# --------------------------------------------------------------------------
SCHEMA_VERSION = 1
RULES_ID = "kirmatch-rules-v2"
RULES_RELEASE = "kirmatch rules v2"
HLA_RELEASE = "3.58.0"
HLA_RELEASE_LABEL = f"IPD-IMGT/HLA {HLA_RELEASE}"
HLA_COMMIT = "c17540e5f55011c51fd338f0167a106c27ec06bf"
KIR_RELEASE = "2.13.0"
KIR_RELEASE_LABEL = f"IPD-KIR {KIR_RELEASE}"
KIR_COMMIT = "ed2e1b401a512481f887df39f87422ea633a60b2"
HLA_URL = f"https://github.com/ANHIG/IMGTHLA/tree/{HLA_COMMIT}"
KIR_URL = f"https://github.com/ANHIG/IPDKIR/tree/{KIR_COMMIT}"
KIR_ALLELELIST_URL = f"https://github.com/ANHIG/IPDKIR/blob/{KIR_COMMIT}/Allelelist.txt"

SCRIPT = "reference_tables/build/build_tables.py"
HLA_LICENSE = "derived from IPD-IMGT/HLA (CC BY-ND); see reference_tables/build/README.md"
KIR_LICENSE = "derived from IPD-KIR (CC BY-ND); see reference_tables/build/README.md"
CURATED_KIR_LICENSE = (
    "curated from the cited literature and IPD-KIR (CC BY-ND) nomenclature; "
    "see reference_tables/build/README.md"
)
POLICY_LICENSE = "kirmatch project file (no IPD data)"

# Source files, relative to shared/.
HLA_ALLELELIST = "imgt/Latest/allelelist/Allelelist.3580.txt"
HLA_FASTA = {locus: f"imgt/3580/fasta/{locus}_prot.fasta.gz" for locus in "ABC"}
KIR_ALLELELIST = "ipdkir/Allelelist.txt"
KIR2DL1_FASTA = "ipdkir/fasta/KIR2DL1_prot.fasta.gz"
HLA_LOCI = ("A", "B", "C")
# WMDA files of the same release (shared/imgt/3580/wmda, DOMAIN.md §C.13, §C.15).
WMDA_REL_DNA_SER = "imgt/3580/wmda/rel_dna_ser.txt"
WMDA_REL_SER_SER = "imgt/3580/wmda/rel_ser_ser.txt"
WMDA_NOM_G = "imgt/3580/wmda/hla_nom_g.txt"
WMDA_NOM_P = "imgt/3580/wmda/hla_nom_p.txt"
# The DPB1 TCE file comes from the 3.58.0 `Latest` tip, not the `3580` branch
# commit (shared/imgt/README.md, "Added for HLA-level matching").
DPB_TCE = "imgt/3580/tce/dpb_tce.csv"
HLA_TIP_COMMIT = "64a60b945a32c14dc776ea729d9307b0aa542915"
# Loci of the all-loci allele and antigen tables (DOMAIN.md §A.14, §A.19).
ALLELE_TABLE_LOCI = ("A", "B", "C", "DRB1", "DRB3", "DRB4", "DRB5", "DQA1", "DQB1", "DPA1",
                     "DPB1")

# --------------------------------------------------------------------------
# Rule 1 alignment constants (DOMAIN.md §A.2).
# --------------------------------------------------------------------------
# Full-length locus references; their first 24 residues are the class I leader.
HLA_REFERENCE = {"A": "A*01:01:01:01", "B": "B*07:02:01:01", "C": "C*01:02:01:01"}
LEADER_LENGTH = 24
MIN_OVERLAP = 60
MIN_IDENTITY = 0.80
# The reference used for the ungapped best-offset match is the mature alpha-1 +
# alpha-2 domains (residues 1-182, exons 2-3), i.e. "the start of each
# sequence" (shared/imgt/README.md): partial entries cover exactly these exons,
# and several expressed full-length Q/L alleles carry frameshifts or indels in
# exons 4-8 (e.g. C*17:42) that would otherwise drag whole-sequence identity
# below 0.80 without touching residues 76-83.
GLOBAL_WINDOW = (1, 182)
# Realignment window around the ligand residues, used when the global match
# fails, when an anchor sits at the wrong place (an indel upstream), or to
# confirm the global offset. 70 residues, so overlap >= 60 is reachable, and
# residues 76-83 lie >= 27 residues from either edge: a window that passes
# identity >= 0.80 cannot have its offset set by sequence on the far side of
# an indel that would displace residues 76-83.
LOCAL_WINDOW = (41, 110)
# (name, regex, mature residue where the match must start).
ANCHORS = (
    ("SHSM[RKT]YF", re.compile(r"SHSM[RKT]YF"), 2),
    ("P[EG][YF]WD", re.compile(r"P[EG][YF]WD"), 57),
)
KMER = 4
RESIDUES = tuple(range(76, 84))  # 76..83
NEEDED_LIGAND = {"A": (80, 82, 83), "B": (80, 82, 83), "C": (80,)}
NEEDED_BC1 = (76, 80)
HLA_SUFFIXES = "NLSCAQ"
HLA_NAME_RE = re.compile(r"^(?P<locus>[A-Z][A-Z0-9]*)\*(?P<fields>\d+(?::\d+)*)(?P<suffix>[A-Z]?)$")
LIGANDS = ("C1", "C2", "Bw4-80I", "Bw4-80T", "Bw6", "unclassified", "none")

# --------------------------------------------------------------------------
# KIR constants (DOMAIN.md §A.0, §C.6, §C.7, §C.13).
# --------------------------------------------------------------------------
KIR_CANONICAL = (
    "KIR2DL1", "KIR2DL2", "KIR2DL3", "KIR2DL4", "KIR2DL5",
    "KIR2DS1", "KIR2DS2", "KIR2DS3", "KIR2DS4", "KIR2DS5",
    "KIR3DL1", "KIR3DL2", "KIR3DL3", "KIR3DS1", "KIR2DP1", "KIR3DP1",
)  # fmt: skip
KIR_ALLELE_RE = re.compile(r"^(?P<gene>KIR[0-9][A-Z0-9]+)\*(?P<digits>\d+)(?P<suffix>[A-Z]?)$")
KIR2DL1_245_RE = re.compile(r"LLFFLLH(.)")
KIR2DL1_MATURE_START = re.compile(r"HEGVHRKP")  # mature residue 1 is this H
KIR2DL1_245 = 245


class BuildError(RuntimeError):
    """An input or invariant check failed; the build must not write tables."""


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def ipd_lines(path: Path, expected_version: str) -> list[tuple[int, str]]:
    """Data lines of an IPD text file: its ``# key: value`` header lines are
    stripped explicitly (never via a comment option, which would also cut data
    fields) and its ``# version:`` must be ``expected_version``. Blank lines are
    skipped; returns ``(line number, line)`` pairs."""
    version = None
    lines: list[tuple[int, str]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.rstrip("\r\n")
            if line.startswith("#"):
                key, _, value = line[1:].partition(":")
                if key.strip() == "version":
                    version = value.strip()
            elif line.strip():
                lines.append((lineno, line))
    if version != expected_version:
        raise BuildError(f"{path}: '# version:' is {version!r}, expected {expected_version!r}")
    return lines


def read_ipd_csv(path: Path, expected_version: str) -> list[tuple[str, str]]:
    """Read an IPD ``Allelelist`` file: the header block, then ``AlleleID,Allele`` CSV."""
    lines = ipd_lines(path, expected_version)
    if not lines or lines[0][1] != "AlleleID,Allele":
        raise BuildError(f"{path}: expected header 'AlleleID,Allele'")
    rows: list[tuple[str, str]] = []
    for lineno, line in lines[1:]:
        parts = line.split(",")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise BuildError(f"{path}:{lineno}: malformed row {line!r}")
        rows.append((parts[0].strip(), parts[1].strip()))
    return rows


def read_wmda(path: Path, fields: int, expected_version: str) -> list[tuple[int, list[str]]]:
    """A WMDA file: the header block, then ``;``-separated rows of exactly
    ``fields`` fields. Returns ``(line number, fields)`` pairs."""
    rows: list[tuple[int, list[str]]] = []
    for lineno, line in ipd_lines(path, expected_version):
        parts = line.split(";")
        if len(parts) != fields:
            raise BuildError(f"{path}:{lineno}: expected {fields} ';'-separated fields, "
                             f"got {len(parts)}: {line!r}")
        rows.append((lineno, parts))
    return rows


def read_fasta_gz(path: Path) -> dict[str, str]:
    """IPD protein FASTA: ``>HLA:HLA00401 C*01:02:01:01 366 bp``; name = 2nd token."""
    seqs: dict[str, list[str]] = {}
    name = None
    with gzip.open(path, "rt", encoding="ascii") as handle:
        for lineno, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line:
                continue
            if line.startswith(">"):
                tokens = line[1:].split()
                if len(tokens) < 2:
                    raise BuildError(f"{path}:{lineno}: malformed FASTA header {line!r}")
                name = tokens[1]
                if name in seqs:
                    raise BuildError(f"{path}:{lineno}: duplicate FASTA entry {name}")
                seqs[name] = []
            elif name is None:
                raise BuildError(f"{path}:{lineno}: sequence before the first header")
            else:
                seqs[name].append(line)
    return {key: "".join(value) for key, value in seqs.items()}


def hla_sort_key(name: str) -> tuple[str, tuple[int, ...], str]:
    """Natural order: C*07:02 < C*07:10 < C*07:100; a name before its extensions."""
    match = HLA_NAME_RE.match(name)
    if not match:
        raise BuildError(f"not an HLA allele name: {name!r}")
    fields = tuple(int(f) for f in match["fields"].split(":"))
    return (match["locus"], fields, match["suffix"])


def kir_sort_key(name: str) -> tuple[str, str, str]:
    match = KIR_ALLELE_RE.match(name)
    if not match:
        raise BuildError(f"not a KIR allele name: {name!r}")
    return (match["gene"], match["digits"], match["suffix"])


def canonical_kir_gene(ipd_gene: str) -> str:
    """KIR2DL5A and KIR2DL5B count as KIR2DL5 (DOMAIN.md §A.0)."""
    return "KIR2DL5" if ipd_gene in ("KIR2DL5A", "KIR2DL5B") else ipd_gene


def bool_cell(value: bool) -> str:
    return "true" if value else "false"


# --------------------------------------------------------------------------
# Rule 1: alignment of each HLA protein entry onto mature numbering
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Placement:
    """Where an entry sits on the reference: mature residue p is at ``p - 1 + shift``."""

    shift: int | None
    method: str  # "global", "local", "global+local" or a failure reason
    identity: float = 0.0
    overlap: int = 0


class LocusAligner:
    """Ungapped best-offset matching against one locus reference (leader removed)."""

    def __init__(self, reference_full: str) -> None:
        if not reference_full.startswith("M"):
            raise BuildError("the locus reference must be a full-length entry")
        self.mature = reference_full[LEADER_LENGTH:]
        for _name, regex, residue in ANCHORS:
            found = [m.start() + 1 for m in regex.finditer(self.mature)]
            if found != [residue]:
                raise BuildError(f"reference anchor {regex.pattern} at {found}, expected {residue}")
        self._index = {w: self._kmer_index(*w) for w in (GLOBAL_WINDOW, LOCAL_WINDOW)}

    def _kmer_index(self, lo: int, hi: int) -> dict[str, list[int]]:
        index: dict[str, list[int]] = collections.defaultdict(list)
        for j in range(lo - 1, hi - KMER + 1):
            index[self.mature[j : j + KMER]].append(j)
        return dict(index)

    def best_shift(self, seq: str, window: tuple[int, int]) -> Placement:
        """Highest-identity ungapped offset with overlap >= MIN_OVERLAP.

        Candidate offsets are those with at least one exact k-mer match. An
        acceptable offset (overlap >= 60, identity >= 0.80) has at most 12
        mismatches among >= 60 aligned residues, hence >= 57 - 4*12 = 9
        mismatch-free 4-mers, so no acceptable offset is ever missed; every
        candidate is then scored exactly.
        """
        lo, hi = window
        index = self._index[window]
        votes: collections.Counter[int] = collections.Counter()
        for i in range(len(seq) - KMER + 1):
            for j in index.get(seq[i : i + KMER], ()):
                votes[i - j] += 1
        best: tuple[float, int, int] | None = None  # (identity, overlap, -|shift-24|)
        best_shift = None
        for shift in sorted(votes):
            if votes[shift] < 9:
                continue
            start = max(lo - 1 + shift, 0)
            stop = min(hi + shift, len(seq))
            overlap = stop - start
            if overlap < MIN_OVERLAP:
                continue
            matches = sum(1 for i in range(start, stop) if seq[i] == self.mature[i - shift])
            key = (matches / overlap, overlap, -abs(shift - LEADER_LENGTH))
            if best is None or key > best:
                best, best_shift = key, shift
        if best is None or best[0] < MIN_IDENTITY:
            return Placement(None, "no_acceptable_offset", best[0] if best else 0.0,
                             best[1] if best else 0)
        return Placement(best_shift, "ok", best[0], best[1])

    @staticmethod
    def anchors_consistent(seq: str, shift: int, window: tuple[int, int]) -> bool:
        """An anchor that occurs must start at its residue (only anchors inside ``window``)."""
        for _name, regex, residue in ANCHORS:
            if not window[0] <= residue <= window[1]:
                continue
            for match in regex.finditer(seq):
                if match.start() - shift + 1 != residue:
                    return False
        return True

    def place(self, seq: str) -> Placement:
        """Global alpha1/alpha2 match, confirmed or corrected by the local window."""
        glob = self.best_shift(seq, GLOBAL_WINDOW)
        g_ok = glob.shift is not None and self.anchors_consistent(seq, glob.shift, GLOBAL_WINDOW)
        loc = self.best_shift(seq, LOCAL_WINDOW)
        l_ok = loc.shift is not None and self.anchors_consistent(seq, loc.shift, LOCAL_WINDOW)
        if g_ok and l_ok:
            if glob.shift == loc.shift:
                return Placement(glob.shift, "global+local", glob.identity, glob.overlap)
            # Residues 76-83 follow the local window (an indel sits between them
            # and most of the alpha1/alpha2 sequence).
            return Placement(loc.shift, "local(global disagrees)", loc.identity, loc.overlap)
        if g_ok:
            return Placement(glob.shift, "global", glob.identity, glob.overlap)
        if l_ok:
            return Placement(loc.shift, "local(realigned)", loc.identity, loc.overlap)
        return Placement(None, "not_aligned", max(glob.identity, loc.identity), 0)


def residues_at(seq: str, shift: int, positions: Iterable[int]) -> dict[int, str]:
    """Mature residues present in ``seq`` (a stop ``X`` ends the sequence)."""
    stop = seq.find("X")
    end = len(seq) if stop < 0 else stop
    out = {}
    for p in positions:
        i = p - 1 + shift
        if 0 <= i < end:
            out[p] = seq[i]
    return out


def call_ligand(locus: str, res: dict[int, str]) -> str | None:
    """Rule 1 residue rules; None when a needed residue is missing."""
    if any(p not in res for p in NEEDED_LIGAND[locus]):
        return None
    if locus == "C":
        return {"N": "C1", "K": "C2"}.get(res[80], "unclassified")
    if res[82] == "L" and res[83] == "R":
        return {"I": "Bw4-80I", "T": "Bw4-80T"}.get(res[80], "unclassified")
    if res[80] == "N" and res[82] == "R" and res[83] == "G":
        return "Bw6"
    return "unclassified"


def call_b_c1(locus: str, res: dict[int, str]) -> bool | None:
    if locus != "B":
        return False
    if any(p not in res for p in NEEDED_BC1):
        return None
    return res[76] == "V" and res[80] == "N"


# --------------------------------------------------------------------------
# Rule 1 fallback: gapped alignment (issue "100 % ligand coverage")
# --------------------------------------------------------------------------
# Scores of the banded affine-gap overlap alignment (Gotoh 1982). Identity
# scores +5/-4 and a gap of length L costing GAP_OPEN + (L - 1) * GAP_EXTEND
# follow the scale of EMBOSS needle's defaults (EDNAFULL +5/-4, open 10,
# extend 0.5; extend rounded up to keep integer scores). The template is a
# close relative of the entry (same first-field group, > 95 % identical in
# practice), so a substitution matrix would add little; what makes the result
# safe is the set of checks in GappedPlacer.place, not the scores.
GAP_MATCH = 5
GAP_MISMATCH = -4
GAP_OPEN = 10
GAP_EXTEND = 1
# Diagonal band (residues) around the k-mer-voted offset: net indels up to 20
# residues. The 17 entries this fallback exists for carry one 1-7 residue indel.
GAP_BAND = 20
# Candidate templates per entry: the GAP_TEMPLATES expressed entries of the
# same first-field group (distinct sequences) sharing the most GAP_KMER-mers
# with the entry around the ligand residues (template residues
# GAP_RANK_WINDOW), plus the locus reference. A distant template is unsafe: the
# Bw4 motif ENLRIALR and the Bw6 motif ANLGTLRG are one shifted "LR" apart, and
# A*24:294Q aligned with A*01:01 reads ENLIALR- one way and ENLRILR- the other.
GAP_TEMPLATES = 5
# Residues 76-83 must be read identically with this many best-scoring templates.
GAP_CONSENSUS = 2
GAP_KMER = 3
GAP_RANK_WINDOW = (50, 110)
_NEG = -(1 << 40)


def gotoh_pairs(query: str, template: str, diagonal: int, band: int = GAP_BAND
                ) -> tuple[int, dict[int, int]]:
    """Banded affine-gap overlap alignment of ``query`` against ``template``.

    End gaps are free on both sequences (an entry may carry a leader and
    exons 4-8 that the template window lacks, or start at residue 2). Only cells
    with ``|(i - j) - diagonal| <= band`` are filled. Ties prefer a diagonal
    step, then a gap in the template, then a gap in the query, so aligning the
    reversed sequences moves every ambiguous gap to its other extreme.

    Returns
    -------
    tuple
        The score and ``{template index: query index}`` for every aligned pair
        (0-based); ``(_NEG, {})`` when no end cell lies inside the band.
    """
    n, m = len(query), len(template)
    h = [[_NEG] * (m + 1) for _ in range(n + 1)]  # ends in an aligned pair (or start)
    e = [[_NEG] * (m + 1) for _ in range(n + 1)]  # ends with a query residue vs gap
    f = [[_NEG] * (m + 1) for _ in range(n + 1)]  # ends with a template residue vs gap
    ph = [bytearray(m + 1) for _ in range(n + 1)]  # 0 start, 1 from h, 2 from e, 3 from f
    pe = [bytearray(m + 1) for _ in range(n + 1)]  # 1 opened from h, 2 extended
    pf = [bytearray(m + 1) for _ in range(n + 1)]
    best, end = _NEG, None
    for i in range(n + 1):
        lo, hi = max(0, i - diagonal - band), min(m, i - diagonal + band)
        hi_row, e_row, f_row = h[i], e[i], f[i]
        for j in range(lo, hi + 1):
            if i == 0 or j == 0:
                hi_row[j] = 0  # free leading end gaps
                continue
            a, b, c = h[i - 1][j - 1], e[i - 1][j - 1], f[i - 1][j - 1]
            if a >= b and a >= c:
                prev, step = a, 1
            elif b >= c:
                prev, step = b, 2
            else:
                prev, step = c, 3
            hi_row[j] = prev + (GAP_MATCH if query[i - 1] == template[j - 1] else GAP_MISMATCH)
            ph[i][j] = step
            opened, extended = h[i - 1][j] - GAP_OPEN, e[i - 1][j] - GAP_EXTEND
            e_row[j], pe[i][j] = (opened, 1) if opened >= extended else (extended, 2)
            opened, extended = hi_row[j - 1] - GAP_OPEN, f_row[j - 1] - GAP_EXTEND
            f_row[j], pf[i][j] = (opened, 1) if opened >= extended else (extended, 2)
            if (i == n or j == m) and hi_row[j] > best:
                best, end = hi_row[j], (i, j)
    if end is None:
        return _NEG, {}
    pairs: dict[int, int] = {}
    i, j = end
    state = 1
    while i > 0 and j > 0:
        if state == 1:
            step = ph[i][j]
            pairs[j - 1] = i - 1
            i, j, state = i - 1, j - 1, step
        elif state == 2:
            state = 1 if pe[i][j] == 1 else 2
            i -= 1
        else:
            state = 1 if pf[i][j] == 1 else 3
            j -= 1
    return best, pairs


def gotoh_pairs_reversed(query: str, template: str, diagonal: int) -> tuple[int, dict[int, int]]:
    """:func:`gotoh_pairs` on both sequences reversed, mapped back to forward indices."""
    n, m = len(query), len(template)
    score, pairs = gotoh_pairs(query[::-1], template[::-1], (n - m) - diagonal)
    return score, {m - 1 - j: n - 1 - i for j, i in pairs.items()}


@dataclass(frozen=True)
class GappedPlacement:
    """Residues of one entry placed by the gapped fallback, or why it failed."""

    residues: dict[int, str]
    template: str = ""
    identity: float = 0.0
    overlap: int = 0
    failure: str = ""
    positions: tuple[int, ...] = ()  # entry indices of residues 76-83


class GappedPlacer:
    """Gapped placement of the entries the ungapped offset cannot place.

    ``templates`` are ``(name, window)`` pairs: the mature residues 1-182 of
    expressed entries of the locus placed by the ungapped *global* match
    (anchors at 2 and 57 checked), keyed by first-field group. ``reference``
    is the locus reference's window.
    """

    def __init__(self, reference_name: str, reference: str,
                 templates: dict[str, list[tuple[str, str]]]) -> None:
        if len(reference) != GLOBAL_WINDOW[1]:
            raise BuildError("the gapped fallback needs the reference residues 1-182")
        self.reference_name = reference_name
        self.reference = reference
        self.templates = templates
        lo, hi = GLOBAL_WINDOW
        self._ref_kmers = collections.defaultdict(list)
        for j in range(lo - 1, hi - KMER + 1):
            self._ref_kmers[reference[j : j + KMER]].append(j)

    def _diagonal(self, seq: str) -> int | None:
        """The offset (query index of residue 1) most voted by exact 4-mers."""
        votes: collections.Counter[int] = collections.Counter()
        for i in range(len(seq) - KMER + 1):
            for j in self._ref_kmers.get(seq[i : i + KMER], ()):
                votes[i - j] += 1
        if not votes:
            return None
        top = max(votes.values())
        return min(d for d, v in votes.items() if v == top)

    def _candidates(self, seq: str, diagonal: int, group: str) -> list[tuple[str, str]]:
        lo, hi = GAP_RANK_WINDOW
        segment = seq[max(0, diagonal + lo - 1 - GAP_BAND) : max(0, diagonal + hi + GAP_BAND)]
        want = {segment[k : k + GAP_KMER] for k in range(len(segment) - GAP_KMER + 1)}
        ranked = sorted(
            self.templates.get(group, ()),
            key=lambda t: (
                -len(want & {t[1][k : k + GAP_KMER] for k in range(lo - 1, hi - GAP_KMER + 1)}),
                hla_sort_key(t[0]),
            ),
        )
        out: list[tuple[str, str]] = []
        seen = {self.reference}
        for tname, window in ranked:  # distinct windows only (one per protein, in effect)
            if window not in seen and len(out) < GAP_TEMPLATES:
                seen.add(window)
                out.append((tname, window))
        return [*out, (self.reference_name, self.reference)]

    def place(self, name: str, seq: str) -> GappedPlacement:
        """Place ``seq`` (the entry of allele ``name``) and read residues 76-83.

        The candidates are aligned forward and the GAP_CONSENSUS best-scoring
        ones kept. Accepted only if, for each of them and for both tie orders
        (forward and reversed alignment), the rule-1 thresholds hold (>= 60
        aligned pairs, identity >= 0.80), every anchor occurrence maps to its
        residue (2 or 57) and residues 76-83 are aligned without a gap between
        them, and all of them read residues 76-83 from the same positions of the
        entry. Any disagreement leaves the entry unplaced (never a guess).
        """
        stop = seq.find("X")
        query = seq if stop < 0 else seq[:stop]
        diagonal = self._diagonal(query)
        if diagonal is None:
            return GappedPlacement({}, failure="no shared 4-mer with the reference")
        scored = []
        candidates = self._candidates(query, diagonal, name.split(":", 1)[0])
        for rank, (tname, window) in enumerate(candidates):
            score, pairs = gotoh_pairs(query, window, diagonal)
            scored.append((-score, rank, tname, window, pairs))
        scored.sort(key=lambda s: (s[0], s[1]))
        results = []
        for _neg, _rank, tname, window, forward in scored[:GAP_CONSENSUS]:
            _score, backward = gotoh_pairs_reversed(query, window, diagonal)
            result = self._check(query, tname, window, forward, backward)
            if result.failure:
                return result
            results.append(result)
        if len({r.positions for r in results}) != 1:
            return GappedPlacement({}, "+".join(r.template for r in results), 0.0, 0,
                                   "templates disagree at residues 76-83")
        first = results[0]
        return GappedPlacement(first.residues, "+".join(r.template for r in results),
                               first.identity, first.overlap)

    def _check(self, query: str, tname: str, window: str, forward: dict[int, int],
               backward: dict[int, int]) -> GappedPlacement:
        readouts = []
        for pairs in (forward, backward):
            overlap = len(pairs)
            identity = sum(query[i] == window[j] for j, i in pairs.items()) / max(overlap, 1)
            if overlap < MIN_OVERLAP or identity < MIN_IDENTITY:
                return GappedPlacement({}, tname, identity, overlap,
                                       f"identity {identity:.3f} over {overlap} residues")
            to_residue = {i: j + 1 for j, i in pairs.items()}
            for anchor, regex, residue in ANCHORS:
                for match in regex.finditer(query):
                    if to_residue.get(match.start()) != residue:
                        return GappedPlacement({}, tname, identity, overlap,
                                               f"anchor {anchor} not at residue {residue}")
            index = [pairs.get(p - 1) for p in RESIDUES]
            if None in index or index != list(range(index[0], index[0] + len(RESIDUES))):
                return GappedPlacement({}, tname, identity, overlap,
                                       "residues 76-83 not aligned without gaps")
            readouts.append((tuple(index), identity, overlap))
        if readouts[0][0] != readouts[1][0]:
            return GappedPlacement({}, tname, 0.0, 0,
                                   "gap placement ambiguous at residues 76-83")
        index, identity, overlap = readouts[0]
        residues = {p: query[i] for p, i in zip(RESIDUES, index, strict=True)}
        return GappedPlacement(residues, tname, identity, overlap, positions=index)


# --------------------------------------------------------------------------
# Table a) hla_kir_ligands.tsv
# --------------------------------------------------------------------------
HLA_COLUMNS = (
    "allele", "locus", "protein", "suffix", "expressed", "residues_76_83",
    "residue_note", "ligand", "b_c1", "a3a11", "note", "alignment",
)  # fmt: skip


@dataclass
class HLAEntry:
    allele: str
    locus: str
    fields: tuple[str, ...]
    suffix: str
    protein: str
    expressed: bool
    residues: dict[int, str]
    residue_note: str
    method: str
    shift: int | None = None  # ungapped placement: residue p at index p - 1 + shift
    alignment: str = ""  # "ungapped", "gapped" or "" (not placed / no sequence)


def gapped_templates(entries: list[HLAEntry], seqs: dict[str, str]
                     ) -> dict[str, list[tuple[str, str]]]:
    """Template windows for the gapped fallback, by first-field group.

    Expressed entries placed by the ungapped *global* match (its anchors at 2
    and 57 checked), whose residues 1-182 are all present. Such a match cannot
    hide an indel before residue ~158: the shifted rest would drag identity over
    the 182 residues below 0.80. So a template's residues 50-110 are numbered
    correctly.
    """
    lo, hi = GLOBAL_WINDOW
    out: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
    for entry in entries:
        if not entry.expressed or entry.shift is None or not entry.method.startswith("global"):
            continue
        seq = seqs[entry.allele]
        window = seq[entry.shift + lo - 1 : entry.shift + hi]
        if entry.shift + lo - 1 >= 0 and len(window) == hi - lo + 1 and "X" not in window:
            out[entry.allele.split(":", 1)[0]].append((entry.allele, window))
    return out


def build_hla(shared: Path, stats: dict) -> list[list[str]]:
    names = [name for _aid, name in read_ipd_csv(shared / HLA_ALLELELIST, HLA_RELEASE_LABEL)]
    if len(set(names)) != len(names):
        raise BuildError(f"{HLA_ALLELELIST}: duplicate allele names")
    entries: list[HLAEntry] = []
    methods: collections.Counter[tuple[str, str]] = collections.Counter()
    odd_leader: list[str] = []
    gapped: list[tuple[str, GappedPlacement]] = []
    stats["hla_seqs"] = {}
    for locus in HLA_LOCI:
        seqs = read_fasta_gz(shared / HLA_FASTA[locus])
        stats["hla_seqs"][locus] = seqs
        universe = sorted((n for n in names if n.startswith(f"{locus}*")), key=hla_sort_key)
        extra = sorted(set(seqs) - set(universe), key=hla_sort_key)
        if extra:
            raise BuildError(f"{HLA_FASTA[locus]}: entries not in the allele list: {extra[:5]}")
        aligner = LocusAligner(seqs[HLA_REFERENCE[locus]])
        locus_entries: list[HLAEntry] = []
        for name in universe:
            match = HLA_NAME_RE.match(name)
            if not match or match["locus"] != locus:
                raise BuildError(f"{HLA_ALLELELIST}: unexpected allele name {name!r}")
            suffix = match["suffix"]
            if suffix and suffix not in HLA_SUFFIXES:
                raise BuildError(f"{name}: unknown expression suffix {suffix!r}")
            fields = tuple(match["fields"].split(":"))
            if len(fields) < 2:
                raise BuildError(f"{name}: fewer than two fields")
            seq = seqs.get(name)
            residues: dict[int, str] = {}
            shift = None
            if seq is None:
                note, method = "no_sequence", "no_sequence"
            else:
                placement = aligner.place(seq)
                method, shift = placement.method, placement.shift
                if placement.shift is None:
                    note = "not_aligned"
                else:
                    residues = residues_at(seq, placement.shift, RESIDUES)
                    note = "" if len(residues) == len(RESIDUES) else "no_sequence_coverage"
                    if seq.startswith("M") and placement.shift != LEADER_LENGTH:
                        odd_leader.append(f"{name}(shift {placement.shift})")
            locus_entries.append(
                HLAEntry(
                    allele=name, locus=locus, fields=fields, suffix=suffix,
                    protein=f"{locus}*{fields[0]}:{fields[1]}", expressed=suffix != "N",
                    residues=residues, residue_note=note, method=method, shift=shift,
                    alignment="" if shift is None else "ungapped",
                )
            )  # fmt: skip

        # Gapped fallback: only for *expressed* entries the ungapped offset cannot
        # place (a null entry never needs residues: rule 1 calls it `none`, and
        # most are frameshifted, so their sequence is not protein evidence).
        reference = aligner.mature[GLOBAL_WINDOW[0] - 1 : GLOBAL_WINDOW[1]]
        placer = GappedPlacer(HLA_REFERENCE[locus], reference,
                              gapped_templates(locus_entries, seqs))
        for entry in locus_entries:
            if entry.expressed and entry.residue_note == "not_aligned":
                result = placer.place(entry.allele, seqs[entry.allele])
                gapped.append((entry.allele, result))
                if not result.failure:
                    entry.residues, entry.residue_note = result.residues, ""
                    entry.method, entry.alignment = "gapped", "gapped"
            methods[(locus, entry.method)] += 1
        entries.extend(locus_entries)
    stats["alignment_methods"] = methods
    stats["odd_leader"] = odd_leader
    stats["gapped"] = gapped

    # Rule 1.5: a 2-field protein takes the call of its covering expressed entries.
    by_protein: dict[str, list[HLAEntry]] = collections.defaultdict(list)
    for entry in entries:
        by_protein[entry.protein].append(entry)
    protein_ligand: dict[str, str | None] = {}
    protein_bc1: dict[str, bool | None] = {}
    for protein, members in by_protein.items():
        locus = members[0].locus
        ligands = {}
        bc1s = {}
        for entry in members:
            if not entry.expressed:
                continue
            lig = call_ligand(locus, entry.residues)
            if lig is not None:
                ligands[entry.allele] = lig
            bc1 = call_b_c1(locus, entry.residues)
            if bc1 is not None:
                bc1s[entry.allele] = bc1
        if len(set(ligands.values())) > 1:
            raise BuildError(
                f"rule 1.5 violated: expressed entries of {protein} disagree: {ligands}"
            )
        if len(set(bc1s.values())) > 1:
            raise BuildError(f"rule 1.5 violated: B-C1 of {protein} disagrees: {bc1s}")
        protein_ligand[protein] = next(iter(ligands.values())) if ligands else None
        if ligands and locus == "B" and not bc1s:
            raise BuildError(f"{protein}: ligand covered but residue 76 not covered (B-C1 unknown)")
        protein_bc1[protein] = next(iter(bc1s.values())) if bc1s else None

    rows: list[list[str]] = []
    for entry in entries:
        if not entry.expressed:
            ligand, b_c1, a3a11, note = "none", False, False, ""
        else:
            lig = protein_ligand[entry.protein]
            ligand = lig if lig is not None else ""
            note = "" if lig is not None else "no_sequence_coverage"
            b_c1 = bool(protein_bc1[entry.protein])
            a3a11 = entry.locus == "A" and entry.fields[0] in ("03", "11")
        residues = "".join(entry.residues[p] for p in RESIDUES) if not entry.residue_note else ""
        rows.append(
            [
                entry.allele, entry.locus, entry.protein, entry.suffix,
                bool_cell(entry.expressed), residues, entry.residue_note, ligand,
                bool_cell(b_c1), bool_cell(a3a11), note, entry.alignment,
            ]
        )  # fmt: skip
    stats["hla_entries"] = entries
    stats["hla_protein_ligand"] = protein_ligand
    stats["hla_protein_bc1"] = protein_bc1
    return rows


# --------------------------------------------------------------------------
# Table f) hla_alleles.tsv: every allele of the loci of rules 13 and 16
# --------------------------------------------------------------------------
HLA_ALLELE_COLUMNS = ("allele", "locus", "protein", "suffix", "expressed", "g_group", "p_group")


@dataclass(frozen=True)
class AlleleInfo:
    """One allele of ALLELE_TABLE_LOCI with its nomenclature facts."""

    allele: str
    locus: str
    fields: tuple[str, ...]
    suffix: str
    protein: str
    expressed: bool
    g_group: str
    p_group: str


def parse_allele_name(name: str, source: str) -> tuple[str, tuple[str, ...], str]:
    """``(locus, fields, suffix)`` of a full allele name; BuildError if malformed."""
    match = HLA_NAME_RE.match(name)
    if not match:
        raise BuildError(f"{source}: unexpected allele name {name!r}")
    fields = tuple(match["fields"].split(":"))
    if len(fields) < 2:
        raise BuildError(f"{source}: {name} has fewer than two fields")
    if match["suffix"] and match["suffix"] not in HLA_SUFFIXES:
        raise BuildError(f"{source}: {name} has an unknown expression suffix")
    return match["locus"], fields, match["suffix"]


def read_groups(shared: Path, rel: str, letter: str, universe: set[str]) -> dict[str, str]:
    """Allele -> G or P group name from hla_nom_g.txt / hla_nom_p.txt.

    Rows are ``LOCUS*;member/member/...;GROUP`` with members and group written
    without the locus (``A*;01:01:01:01/...;01:01:01G``); an empty group means
    the allele (or 2-field name) forms no group. Only ALLELE_TABLE_LOCI rows
    are read; every member must be an allele of the list, listed once.
    """
    out: dict[str, str] = {}
    for lineno, (locus, members, group) in read_wmda(shared / rel, 3, HLA_RELEASE_LABEL):
        if not locus.endswith("*"):
            raise BuildError(f"{rel}:{lineno}: locus {locus!r} does not end with '*'")
        if locus[:-1] not in ALLELE_TABLE_LOCI:
            continue
        if group and not re.fullmatch(rf"\d+(:\d+)+{letter}", group):
            raise BuildError(f"{rel}:{lineno}: malformed group name {group!r}")
        for member in members.split("/"):
            name = locus + member
            if name not in universe:
                raise BuildError(f"{rel}:{lineno}: {name} is not in {HLA_ALLELELIST}")
            if name in out:
                raise BuildError(f"{rel}:{lineno}: {name} is listed twice")
            out[name] = locus + group if group else ""
    return out


def build_hla_alleles(shared: Path, stats: dict) -> list[list[str]]:
    """All alleles of ALLELE_TABLE_LOCI with 2-field protein, G and P group.

    Checks (BuildError): every allele is in hla_nom_g.txt; every expressed
    allele is in hla_nom_p.txt and no null is; the expressed alleles of one
    2-field protein share one P group (a P group is defined on the protein of
    the antigen-recognition site, so one protein cannot span two), and so do
    the expressed members of one G group (identical ARS nucleotides).
    """
    names = [name for _aid, name in read_ipd_csv(shared / HLA_ALLELELIST, HLA_RELEASE_LABEL)]
    universe = {n for n in names if n.split("*", 1)[0] in ALLELE_TABLE_LOCI}
    g_groups = read_groups(shared, WMDA_NOM_G, "G", universe)
    p_groups = read_groups(shared, WMDA_NOM_P, "P", universe)
    missing = sorted(universe - set(g_groups), key=hla_sort_key)
    if missing:
        raise BuildError(f"{WMDA_NOM_G} does not list {len(missing)} alleles: {missing[:5]}")
    infos: list[AlleleInfo] = []
    for name in sorted(universe, key=hla_sort_key):
        locus, fields, suffix = parse_allele_name(name, HLA_ALLELELIST)
        expressed = suffix != "N"
        if expressed != (name in p_groups):
            raise BuildError(f"{name}: {'expressed but not' if expressed else 'null but'} "
                             f"listed in {WMDA_NOM_P}")
        infos.append(AlleleInfo(name, locus, fields, suffix, f"{locus}*{fields[0]}:{fields[1]}",
                                expressed, g_groups[name], p_groups.get(name, "")))
    for key, label in ((lambda a: a.protein, "2-field protein"), (lambda a: a.g_group, "G group")):
        seen: dict[str, set[str]] = collections.defaultdict(set)
        for info in infos:
            if info.expressed and key(info):
                seen[key(info)].add(info.p_group)
        split = {k: sorted(v) for k, v in seen.items() if len(v) > 1}
        if split:
            raise BuildError(f"expressed alleles of one {label} fall into several P groups: "
                             f"{dict(list(split.items())[:3])}")
    stats["hla_alleles"] = infos
    return [
        [a.allele, a.locus, a.protein, a.suffix, bool_cell(a.expressed), a.g_group, a.p_group]
        for a in infos
    ]


# --------------------------------------------------------------------------
# Tables g) hla_antigens.tsv and h) hla_serology.tsv (rule 13 v2, DOMAIN.md §A.14)
# --------------------------------------------------------------------------
HLA_ANTIGEN_COLUMNS = (
    "allele", "antigens", "implied", "public", "group_name", "possible", "assignment",
    "maybe_null", "note", "tentative",
)  # fmt: skip
HLA_SEROLOGY_COLUMNS = (
    "antigen", "kind", "loci", "broad", "splits", "parent", "associated", "n_alleles",
)  # fmt: skip
# rel_dna_ser.txt fields after locus and allele (wmda/README.md, "rel_dna_ser.txt").
SEROLOGY_FIELDS = ("unambiguous", "possible", "assumed", "expert")
# WHO serological name of an antigen number, per gene (WHO nomenclature: A2,
# B44, Cw4, DR4, DR52 on DRB3, DR53 on DRB4, DR51 on DRB5, DQ2 on DQB1).
# DQA1, DPA1 and DPB1 have no serological antigen in rel_dna_ser.txt (only 0 and ?).
SEROLOGY_PREFIX = {"A": "A", "B": "B", "C": "Cw", "DRB1": "DR", "DRB3": "DR", "DRB4": "DR",
                   "DRB5": "DR", "DQB1": "DQ"}
# rel_ser_ser.txt locus column -> name prefix. Dw (T-cell-defined specificities,
# no antibody target and no allele assigned one) is not read.
SER_SER_PREFIX = {"A": "A", "B": "B", "Cw": "Cw", "DR": "DR", "DQ": "DQ"}
SER_SER_SKIPPED = ("Dw",)
# Allele-group names (DOMAIN.md §A.14: "the allele-group names labs use where
# WHO has no serological equivalent (Cw12, Cw17): such a name stands for the
# alleles of that first field"). Class I and DRB1/DQB1 use the serological
# prefix with the first field as a number (C*12 -> Cw12, B*83 -> B83), as
# single-antigen bead panels do; the class II chains without any WHO antigen
# use the gene and first field (DQA1*05, DPA1*02, DPB1*04), which cannot be
# mistaken for a WHO name. A name is used only where it is *not* a WHO antigen
# (A*80 carries the WHO antigen A80, so it needs none). DRB3/4/5 first fields
# do not number antigens (DRB3*01 carries DR52), so they get no group name.
GROUP_NAME_STYLE = {"A": "A{n}", "B": "B{n}", "C": "Cw{n}", "DRB1": "DR{n}", "DQB1": "DQ{n}",
                    "DQA1": "DQA1*{ff}", "DPA1": "DPA1*{ff}", "DPB1": "DPB1*{ff}"}
# Public epitopes from the rule-1 call (DOMAIN.md §A.14): Bw4 on HLA-A and HLA-B
# Bw4 alleles (80I or 80T), Bw6 on HLA-B Bw6 alleles only.
PUBLIC_EPITOPE = {("A", "Bw4-80I"): "Bw4", ("A", "Bw4-80T"): "Bw4", ("B", "Bw4-80I"): "Bw4",
                  ("B", "Bw4-80T"): "Bw4", ("B", "Bw6"): "Bw6"}
ANTIGEN_TOKEN_RE = re.compile(r"^(\d+|\?)$")


def antigen_sort_key(name: str) -> tuple[str, int, str]:
    """Natural order of antigen names: A2 < A9 < A10 < A203; Cw12 < DPB1*04."""
    match = re.fullmatch(r"(.*?)(\d+)", name)
    return (match[1], int(match[2]), name) if match else (name, -1, name)


def joined(values: Iterable[str]) -> str:
    """``;``-joined, sorted by code point (DOMAIN.md §A.0)."""
    return ";".join(sorted(set(values)))


@dataclass
class SerologyRelations:
    """rel_ser_ser.txt as maps between WHO antigen names."""

    broad_of: dict[str, str]
    splits_of: dict[str, list[str]]
    parent_of: dict[str, str]
    associated_of: dict[str, list[str]]

    def upward(self, antigen: str) -> list[str]:
        """Broads and parents implied by an antigen, transitively (B5102 -> B51, B5)."""
        out, current = [], antigen
        while True:
            nxt = self.broad_of.get(current) or self.parent_of.get(current)
            if nxt is None:
                return out
            if nxt in out or nxt == antigen:
                raise BuildError(f"{WMDA_REL_SER_SER}: cycle through {antigen}")
            out.append(nxt)
            current = nxt

    def downward(self, antigen: str) -> list[str]:
        """Splits of a broad and the associated antigens below them (B5 -> B51, B52, B5102, ...)."""
        out: list[str] = []
        for child in [*self.splits_of.get(antigen, ()), *self.associated_of.get(antigen, ())]:
            out += [child, *self.downward(child)]
        return out


def read_ser_ser(shared: Path) -> SerologyRelations:
    """Parse rel_ser_ser.txt: ``LOCUS;ANTIGEN;SPLIT/SPLIT;ASSOCIATED/ASSOCIATED``."""
    rel = SerologyRelations({}, {}, {}, {})
    for lineno, (locus, antigen, splits, associated) in read_wmda(
        shared / WMDA_REL_SER_SER, 4, HLA_RELEASE_LABEL
    ):
        if locus in SER_SER_SKIPPED:
            continue
        prefix = SER_SER_PREFIX.get(locus)
        numbers = [antigen, *splits.split("/"), *associated.split("/")]
        if prefix is None or not all(re.fullmatch(r"\d*", n) for n in numbers) or not antigen:
            raise BuildError(f"{WMDA_REL_SER_SER}:{lineno}: unexpected row")
        name = prefix + antigen
        for child in filter(None, splits.split("/")):
            if prefix + child in rel.broad_of:
                raise BuildError(f"{WMDA_REL_SER_SER}:{lineno}: {prefix + child} has two broads")
            rel.broad_of[prefix + child] = name
            rel.splits_of.setdefault(name, []).append(prefix + child)
        for child in filter(None, associated.split("/")):
            if prefix + child in rel.parent_of:
                raise BuildError(f"{WMDA_REL_SER_SER}:{lineno}: {prefix + child} has two parents")
            rel.parent_of[prefix + child] = name
            rel.associated_of.setdefault(name, []).append(prefix + child)
    return rel


@dataclass
class AntigenAssignment:
    """What one allele carries (DOMAIN.md §A.14, "What an allele carries")."""

    antigens: set[str]
    assignment: str
    maybe_null: bool = False
    note: str = ""
    implied: set[str] = dataclasses.field(default_factory=set)
    public: set[str] = dataclasses.field(default_factory=set)
    group_name: str = ""
    possible: set[str] = dataclasses.field(default_factory=set)
    tentative: set[str] = dataclasses.field(default_factory=set)


def read_dna_ser(shared: Path, universe: set[str]) -> dict[str, list[list[str]]]:
    """rel_dna_ser.txt: allele -> its four serology fields as lists of tokens.

    Tokens are antigen numbers, ``0`` (null) or ``?`` (no serological
    equivalent); every allele of the list at ALLELE_TABLE_LOCI must be listed
    exactly once, and no other allele of those loci.
    """
    out: dict[str, list[list[str]]] = {}
    for lineno, parts in read_wmda(shared / WMDA_REL_DNA_SER, 6, HLA_RELEASE_LABEL):
        locus, allele = parts[0], parts[1]
        if not locus.endswith("*"):
            raise BuildError(f"{WMDA_REL_DNA_SER}:{lineno}: locus {locus!r} does not end with '*'")
        if locus[:-1] not in ALLELE_TABLE_LOCI:
            continue
        name = locus + allele
        if name not in universe or name in out:
            raise BuildError(f"{WMDA_REL_DNA_SER}:{lineno}: {name} is unknown or listed twice")
        tokens = [[t for t in field.split("/") if t] for field in parts[2:]]
        for field in tokens:
            if any(not ANTIGEN_TOKEN_RE.match(t) for t in field):
                raise BuildError(f"{WMDA_REL_DNA_SER}:{lineno}: unexpected value in {parts}")
        out[name] = tokens
    missing = sorted(universe - set(out), key=hla_sort_key)
    if missing:
        raise BuildError(f"{WMDA_REL_DNA_SER} does not list {len(missing)} alleles: {missing[:5]}")
    return out


def build_hla_antigens(shared: Path, stats: dict) -> list[list[str]]:
    """Per allele: the serological antigens it carries (rule 13 v2).

    * ``antigens``: the union of the four rel_dna_ser.txt fields (``0`` and
      ``?`` are not antigens). An expressed allele with none (``?``, ``0/?``)
      takes the union of the antigens of the *assigned* expressed alleles of its
      P group (identical antigen-recognition site), else of its 2-field protein
      when it has no P group, else its allele-group name.
    * ``implied``: broads and parents of those antigens (rel_ser_ser.txt).
    * ``public``: Bw4/Bw6 from the rule-1 call (hla_kir_ligands).
    * ``group_name``: the allele-group name of its first field where WHO has no
      antigen of that name (Cw12 for every expressed C*12 allele).
    * ``possible``: splits (and their associated antigens) of a broad the allele
      is assigned without any of its splits (B*44:15: B12 -> B44;B45).
    * ``assignment``: the fields used, joined by ``+`` in SEROLOGY_FIELDS order,
      or ``p_group``, ``protein``, ``allele_group``; ``null`` for nulls and for
      an expressed allele whose only serology is ``0`` (none in 3.58.0: the two
      S alleles with unambiguous ``0``, B*44:02:01:02S and B*56:01:01:05S, have
      an expert antigen, which they carry, with ``maybe_null`` set).
    * ``maybe_null``: a field also lists ``0`` (``0/2`` for Q and L alleles).
    * ``tentative``: antigens named only in the ``possible`` field (B*51:42:
      possible 44, expert 51 -> B44). The allele carries them for DSA, but a
      serological typing is not expanded to it through them: a donor typed
      ``B44`` is the alleles *assigned* B44 (DOMAIN.md §A.14), and B*51:42 would
      have typed as B51.

    Every antigen is named after the files (SEROLOGY_PREFIX); every allele is
    listed in rel_dna_ser.txt; a null allele must have unambiguous ``0``; every
    expressed HLA-A/-B allele must have a rule-1 call (BuildError otherwise).
    """
    infos: list[AlleleInfo] = stats["hla_alleles"]
    universe = {a.allele for a in infos}
    fields = read_dna_ser(shared, universe)
    rel = read_ser_ser(shared)
    protein_ligand: dict[str, str | None] = stats["hla_protein_ligand"]

    def name_of(locus: str, number: str) -> str:
        prefix = SEROLOGY_PREFIX.get(locus)
        if prefix is None:
            raise BuildError(f"{WMDA_REL_DNA_SER}: antigen {number} at locus {locus}, which has "
                             "no serological naming here")
        return prefix + number

    direct: dict[str, AntigenAssignment] = {}
    for info in infos:
        tokens = fields[info.allele]
        antigens = {name_of(info.locus, t) for f in tokens for t in f if t not in ("0", "?")}
        firm = {name_of(info.locus, t) for k, f in zip(SEROLOGY_FIELDS, tokens, strict=True)
                if k != "possible" for t in f if t not in ("0", "?")}
        kinds = [k for k, f in zip(SEROLOGY_FIELDS, tokens, strict=True)
                 if any(t not in ("0", "?") for t in f)]
        zero = any("0" in f for f in tokens)
        if not info.expressed:
            if tokens[0] != ["0"] or antigens:
                raise BuildError(f"{info.allele}: null allele whose serology is {tokens}")
            direct[info.allele] = AntigenAssignment(set(), "null")
        elif antigens:
            note = ""
            if tokens[0] == ["0"]:
                note = (f"unambiguous serology 0 (suffix {info.suffix or 'none'}); antigens from "
                        "the other fields")
            direct[info.allele] = AntigenAssignment(antigens, "+".join(kinds), zero, note,
                                                    tentative=antigens - firm)
        elif tokens[0] == ["0"]:
            direct[info.allele] = AntigenAssignment(
                set(), "null", note=f"expressed (suffix {info.suffix or 'none'}) but "
                "rel_dna_ser.txt gives 0: no surface antigen")
        else:
            direct[info.allele] = AntigenAssignment(set(), "", zero)

    who = {a for d in direct.values() for a in d.antigens}
    who |= set(rel.broad_of) | set(rel.splits_of) | set(rel.parent_of) | set(rel.associated_of)
    members: dict[str, list[AlleleInfo]] = collections.defaultdict(list)
    for info in infos:
        if info.expressed:
            members[info.p_group or info.protein].append(info)

    def group_name(info: AlleleInfo) -> str:
        style = GROUP_NAME_STYLE.get(info.locus)
        if style is None:
            return ""
        name = style.format(n=int(info.fields[0]), ff=info.fields[0])
        return "" if name in who else name

    # Only the file's own assignments are inherited, never an inherited or
    # allele-group antigen (snapshot before the loop below fills them in).
    assigned_in_file = {a: frozenset(d.antigens) for a, d in direct.items() if d.antigens}
    firm_in_file = {a: frozenset(d.antigens - d.tentative) for a, d in direct.items()
                    if d.antigens}
    for info in infos:
        d = direct[info.allele]
        if d.assignment == "":
            key = info.p_group or info.protein
            assigned = [m for m in members[key] if m.allele in assigned_in_file]
            if assigned:
                d.antigens = set().union(*(assigned_in_file[m.allele] for m in assigned))
                d.tentative = d.antigens - set().union(*(firm_in_file[m.allele]
                                                         for m in assigned))
                d.assignment = "p_group" if info.p_group else "protein"
                d.note = f"inherited from {len(assigned)} assigned allele(s) of {key}"
            else:
                name = group_name(info)
                if not name:
                    raise BuildError(f"{info.allele}: no serology, no assigned allele in {key} "
                                     "and no allele-group name for its locus")
                d.antigens, d.assignment = {name}, "allele_group"
        if d.assignment == "null":
            continue
        d.implied = {u for a in d.antigens for u in rel.upward(a)} - d.antigens
        ligand = protein_ligand.get(info.protein) if info.locus in ("A", "B") else ""
        if ligand is None:
            raise BuildError(f"{info.allele}: no rule-1 call, so Bw4/Bw6 is unknown")
        epitope = PUBLIC_EPITOPE.get((info.locus, ligand))
        d.public = {epitope} if epitope else set()
        d.group_name = group_name(info)
        carried = d.antigens | d.implied | d.public | ({d.group_name} - {""})
        broads_only = [a for a in d.antigens
                       if rel.splits_of.get(a) and not set(rel.splits_of[a]) & d.antigens]
        d.possible = {x for a in broads_only for x in rel.downward(a)} - carried

    rows = []
    for info in infos:
        d = direct[info.allele]
        rows.append([info.allele, joined(d.antigens), joined(d.implied), joined(d.public),
                     d.group_name, joined(d.possible), d.assignment, bool_cell(d.maybe_null),
                     d.note, joined(d.tentative)])
    stats["hla_antigens"] = direct
    stats["ser_ser"] = rel
    stats["who_antigens"] = who
    return rows


def build_hla_serology(stats: dict) -> list[list[str]]:
    """One row per antigen name an allele can carry: WHO antigens (named in
    rel_dna_ser.txt or rel_ser_ser.txt), the public epitopes Bw4/Bw6 and the
    allele-group names, with broad/splits/parent/associated from
    rel_ser_ser.txt, the loci whose alleles carry it and their number."""
    infos: list[AlleleInfo] = stats["hla_alleles"]
    direct: dict[str, AntigenAssignment] = stats["hla_antigens"]
    rel: SerologyRelations = stats["ser_ser"]
    carriers: dict[str, set[str]] = collections.defaultdict(set)
    loci: dict[str, set[str]] = collections.defaultdict(set)
    for info in infos:
        d = direct[info.allele]
        for antigen in d.antigens | d.implied | d.public | ({d.group_name} - {""}):
            carriers[antigen].add(info.allele)
            loci[antigen].add(info.locus)
    kinds = {a: "who" for a in stats["who_antigens"]}
    kinds.update({a: "public" for a in set(PUBLIC_EPITOPE.values())})
    for d in direct.values():
        if d.group_name:
            kinds[d.group_name] = "allele_group"
        if d.assignment == "allele_group":
            kinds.update({a: "allele_group" for a in d.antigens})
    stray = set(carriers) - set(kinds)
    if stray:
        raise BuildError(f"antigens carried but not named anywhere: {sorted(stray)}")
    rows = []
    for antigen in sorted(kinds, key=antigen_sort_key):
        rows.append([
            antigen, kinds[antigen], joined(loci[antigen]), rel.broad_of.get(antigen, ""),
            joined(rel.splits_of.get(antigen, ())), rel.parent_of.get(antigen, ""),
            joined(rel.associated_of.get(antigen, ())), str(len(carriers[antigen])),
        ])
    return rows


# --------------------------------------------------------------------------
# Table i) hla_b_leader.tsv: HLA-B leader residue -21 (rule 16, DOMAIN.md §A.19)
# --------------------------------------------------------------------------
B_LEADER_COLUMNS = ("allele", "protein", "expressed", "residue", "leader", "source", "note")
# Residue -21 is the 4th residue of a full-length entry (index 3 of the
# 24-residue leader, DOMAIN.md §A.19). It is read through an alignment of the
# entry's first LEADER_PROBE residues with the B reference's (leader + start of
# alpha-1), so entries whose leader is not 24 residues long (an alternative
# start at the Met of -21, an indel inside the leader) are read correctly.
LEADER_INDEX = 3
LEADER_PROBE = 60
LEADER_BAND = 12
LEADER_MIN_OVERLAP = 40
LEADER_SOURCES = ("sequence", "protein", "first_field_fallback", "unknown", "null")


def leader_residue(seq: str, reference: str) -> tuple[str | None, str]:
    """Residue -21 of an entry, or ``(None, reason)`` when its entry lacks exon 1.

    An entry has exon 1 only if it starts with Met and residue -21 of the
    reference aligns to a residue of the entry in both tie orders, at the same
    position, with identity >= MIN_IDENTITY over >= LEADER_MIN_OVERLAP pairs.
    """
    if not seq.startswith("M"):
        return None, "no exon 1"
    stop = seq.find("X")
    query = (seq if stop < 0 else seq[:stop])[:LEADER_PROBE]
    probe = reference[:LEADER_PROBE]
    found = set()
    for pairs in (gotoh_pairs(query, probe, 0, LEADER_BAND)[1],
                  gotoh_pairs_reversed(query, probe, 0)[1]):
        overlap = len(pairs)
        identity = sum(query[i] == probe[j] for j, i in pairs.items()) / max(overlap, 1)
        if LEADER_INDEX not in pairs or overlap < LEADER_MIN_OVERLAP or identity < MIN_IDENTITY:
            return None, "leader not aligned"
        found.add(pairs[LEADER_INDEX])
    if len(found) != 1:
        return None, "leader alignment ambiguous at residue -21"
    return query[found.pop()], ""


def build_b_leader(stats: dict) -> list[list[str]]:
    """Residue -21 per HLA-B allele, with its source (DOMAIN.md §A.19).

    ``sequence``: the allele's own full-length entry. ``protein``: another
    expressed entry of its 2-field protein (same protein by nomenclature; all
    such entries must agree, BuildError otherwise). ``first_field_fallback``:
    every expressed full-length entry of its first-field group has the same
    residue. ``unknown`` otherwise; ``null`` for null alleles. ``leader`` is the
    residue when it is M or T, else empty.
    """
    seqs = stats["hla_seqs"]["B"]
    reference = seqs[HLA_REFERENCE["B"]]
    entries = [e for e in stats["hla_entries"] if e.locus == "B"]
    own: dict[str, str] = {}
    notes: dict[str, str] = {}
    ambiguous: dict[str, str] = {}
    for entry in entries:
        seq = seqs.get(entry.allele)
        if not entry.expressed or seq is None:
            continue
        if not seq.startswith("M"):
            notes[entry.allele] = "no exon 1"
        elif entry.shift == LEADER_LENGTH:
            # The usual case: a 24-residue leader placed by the ungapped match,
            # so residue -21 is the 4th residue, as DOMAIN.md §A.19 defines it.
            own[entry.allele] = seq[LEADER_INDEX]
        else:
            # A leader of another length, or an entry only the gapped fallback
            # placed: the 4th residue counts only if the alignment with the
            # reference leader reads the same residue there.
            aligned, why = leader_residue(seq, reference)
            length = ("not placed by the ungapped match" if entry.shift is None
                      else f"{entry.shift} residues before residue 1")
            if aligned == seq[LEADER_INDEX]:
                own[entry.allele] = aligned
                notes[entry.allele] = f"{length}; 4th residue confirmed by alignment"
            else:
                ambiguous[entry.allele] = (
                    f"{length}; 4th residue {seq[LEADER_INDEX]} but the alignment with the "
                    f"reference leader gives {aligned or why}"
                )
    by_protein: dict[str, set[str]] = collections.defaultdict(set)
    by_group: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for entry in entries:
        if entry.allele in own:
            by_protein[entry.protein].add(own[entry.allele])
            by_group[entry.protein.split(":", 1)[0]][own[entry.allele]] += 1
    split = {p: sorted(v) for p, v in by_protein.items() if len(v) > 1}
    if split:
        raise BuildError(f"expressed entries of one HLA-B protein disagree at -21: {split}")
    rows = []
    counts: collections.Counter[str] = collections.Counter()
    for entry in entries:
        group = entry.protein.split(":", 1)[0]
        note = notes.get(entry.allele, "")
        if not entry.expressed:
            residue, source, note = "", "null", ""
        elif entry.allele in ambiguous:
            residue, source, note = "", "unknown", ambiguous[entry.allele]
        elif entry.allele in own:
            residue, source = own[entry.allele], "sequence"
        elif by_protein.get(entry.protein):
            residue, source = next(iter(by_protein[entry.protein])), "protein"
            note = f"{note or 'no sequence'}; from the entries of {entry.protein}"
        elif len(by_group[group]) == 1:
            residue, source = next(iter(by_group[group])), "first_field_fallback"
            note = f"{note or 'no sequence'}; all full-length {group} entries agree"
        else:
            residue, source = "", "unknown"
            note = f"{note or 'no sequence'}; full-length {group} entries disagree"
        if residue and residue not in "MT":
            note = f"residue -21 is {residue}, neither Met nor Thr" + (f"; {note}" if note else "")
        counts[source] += 1
        rows.append([entry.allele, entry.protein, bool_cell(entry.expressed), residue,
                     residue if residue in ("M", "T") else "", source, note])
    stats["b_leader_counts"] = {s: counts[s] for s in LEADER_SOURCES}
    stats["b_leader_rows"] = rows
    return rows


# --------------------------------------------------------------------------
# Table j) hla_dpb1_tce.tsv: DPB1 T-cell-epitope groups (rule 16, DOMAIN.md §A.19)
# --------------------------------------------------------------------------
DPB1_TCE_COLUMNS = (
    "allele", "protein", "expressed", "tce_v2", "v2_label", "v2_predicted", "tce_v1", "v1_label",
    "v1_predicted",
)  # fmt: skip
DPB_TCE_HEADER = ["Allele", "Protein", "V1_Assignment", "V2_Assignment", "Comments"]
# Labels of dpb_tce.csv: 1, 2, 3 (TCE groups, 1 most immunogenic; Crivello et
# al., Biol Blood Marrow Transplant 2015), "2a" (group 2 in V2 for alleles that
# were group 3 in V1: every 2a row carries the comment "Assignment changed
# between V1 and V2"), "0" (null allele), empty (not assigned); a trailing "$"
# marks a predicted assignment (comment: "based on sequence motifs" for V1,
# "based on functional distance scores" for V2).
TCE_LABEL_RE = re.compile(r"^(?P<label>0|1|2|2a|3)?(?P<predicted>\$)?$")
TCE_GROUP = {"1": "1", "2": "2", "2a": "2", "3": "3", "0": "", "": ""}


def build_dpb1_tce(shared: Path, stats: dict) -> list[list[str]]:
    """V2 (and V1) TCE group of every DPB1 allele (DOMAIN.md §A.19).

    Checks (BuildError): the file lists exactly the DPB1 alleles of the list;
    its protein column is the allele's 2-field protein (``NA`` for nulls);
    label ``0`` exactly for null alleles; the expressed alleles of one protein
    agree on both groups.
    """
    reader = csv.reader(line for _lineno, line in ipd_lines(shared / DPB_TCE, HLA_RELEASE_LABEL))
    if next(reader, None) != DPB_TCE_HEADER:
        raise BuildError(f"{DPB_TCE}: header is not {DPB_TCE_HEADER}")
    infos = {a.allele: a for a in stats["hla_alleles"] if a.locus == "DPB1"}
    parsed: dict[str, tuple[re.Match[str], re.Match[str]]] = {}
    for row in reader:
        if len(row) != len(DPB_TCE_HEADER):
            raise BuildError(f"{DPB_TCE}: malformed row {row}")
        allele, protein, v1, v2 = row[:4]
        info = infos.get(allele)
        if info is None or allele in parsed:
            raise BuildError(f"{DPB_TCE}: {allele} is unknown or listed twice")
        m1, m2 = TCE_LABEL_RE.match(v1), TCE_LABEL_RE.match(v2)
        if not m1 or not m2 or (m1["predicted"] and not m1["label"]) or (
            m2["predicted"] and not m2["label"]
        ):
            raise BuildError(f"{DPB_TCE}: unexpected assignment in {row}")
        null_label = m2["label"] == "0"
        if null_label == info.expressed or (m1["label"] == "0") != null_label:
            raise BuildError(f"{DPB_TCE}: label 0 must mark exactly the null alleles: {row}")
        if protein != ("NA" if not info.expressed else info.protein):
            raise BuildError(f"{DPB_TCE}: protein {protein!r} of {allele} is not {info.protein}")
        parsed[allele] = (m1, m2)
    missing = sorted(set(infos) - set(parsed), key=hla_sort_key)
    if missing:
        raise BuildError(f"{DPB_TCE} does not list {len(missing)} DPB1 alleles: {missing[:5]}")
    rows = []
    by_protein: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)
    for allele in sorted(parsed, key=hla_sort_key):
        info, (m1, m2) = infos[allele], parsed[allele]
        g1, g2 = TCE_GROUP[m1["label"] or ""], TCE_GROUP[m2["label"] or ""]
        if info.expressed:
            by_protein[info.protein].add((g1, g2))
        rows.append([allele, info.protein, bool_cell(info.expressed), g2, m2["label"] or "",
                     bool_cell(bool(m2["predicted"])), g1, m1["label"] or "",
                     bool_cell(bool(m1["predicted"]))])
    split = {p: sorted(v) for p, v in by_protein.items() if len(v) > 1}
    if split:
        raise BuildError(f"{DPB_TCE}: expressed alleles of one protein disagree: {split}")
    stats["dpb1_tce_rows"] = rows
    return rows


# --------------------------------------------------------------------------
# Table b) kir_genes.tsv (curated vocabulary)
# --------------------------------------------------------------------------
KIR_GENE_COLUMNS = ("alias", "gene", "kind", "variant", "note")

# gene -> (kind, note). The v1 iKIR set is 2DL1, 2DL2, 2DL3, 3DL1 (+3DL2 by option).
KIR_GENE_KINDS: dict[str, tuple[str, str]] = {
    "KIR2DL1": ("inhibitory", "receptor for C2 (DOMAIN.md §C.1)"),
    "KIR2DL2": ("inhibitory", "receptor for C1 (and B-C1)"),
    "KIR2DL3": ("inhibitory", "receptor for C1 (and B-C1)"),
    "KIR2DL4": ("framework", "framework gene; functionally both activating and inhibitory, so "
                "listed as kind framework"),
    "KIR2DL5": ("inhibitory", "B-haplotype gene; counts KIR2DL5A and KIR2DL5B"),
    "KIR2DS1": ("activating", "activating; C2 binding (rule 10)"),
    "KIR2DS2": ("activating", "activating; B-haplotype gene"),
    "KIR2DS3": ("activating", "activating; B-haplotype gene"),
    "KIR2DS4": ("activating", "activating; includes its deletion variants (DOMAIN.md §A.0)"),
    "KIR2DS5": ("activating", "activating; B-haplotype gene"),
    "KIR3DL1": ("inhibitory", "receptor for Bw4"),
    "KIR3DL2": ("framework", "framework gene; an inhibitory receptor (for A3/A11: rule 6 with "
                "include_a3a11), listed as kind framework"),
    "KIR3DL3": ("framework", "framework gene (inhibitory, no established HLA ligand)"),
    "KIR3DS1": ("activating", "activating; allelic to KIR3DL1 (one locus)"),
    "KIR2DP1": ("pseudogene", "pseudogene"),
    "KIR3DP1": ("pseudogene", "pseudogene; also a framework gene"),
}

KIR_EXTRA_ALIASES: tuple[tuple[str, str, str, str], ...] = (
    # (alias, gene, variant, note)
    ("KIR2DL5A", "KIR2DL5", "paralog", "KIR2DL5A counts as KIR2DL5 (DOMAIN.md §A.0)"),
    ("KIR2DL5B", "KIR2DL5", "paralog", "KIR2DL5B counts as KIR2DL5 (DOMAIN.md §A.0)"),
    ("2DL5A", "KIR2DL5", "paralog", "KIR2DL5A counts as KIR2DL5 (DOMAIN.md §A.0)"),
    ("2DL5B", "KIR2DL5", "paralog", "KIR2DL5B counts as KIR2DL5 (DOMAIN.md §A.0)"),
    ("KIR2DS4FL", "KIR2DS4", "full_length", "full-length KIR2DS4"),
    ("2DS4FL", "KIR2DS4", "full_length", "full-length KIR2DS4"),
    ("KIR2DS4DEL", "KIR2DS4", "deletion", "22-bp deletion variant; counts as KIR2DS4 present"),
    ("2DS4DEL", "KIR2DS4", "deletion", "22-bp deletion variant; counts as KIR2DS4 present"),
    ("KIR2DS4D", "KIR2DS4", "deletion", "22-bp deletion variant; counts as KIR2DS4 present"),
    ("2DS4D", "KIR2DS4", "deletion", "22-bp deletion variant; counts as KIR2DS4 present"),
    ("KIR2DS4N", "KIR2DS4", "deletion", "deletion variant as written by DKMS (DOMAIN.md §C.13); "
     "counts as KIR2DS4 present"),
    ("2DS4N", "KIR2DS4", "deletion", "deletion variant as written by DKMS (DOMAIN.md §C.13); "
     "counts as KIR2DS4 present"),
)  # fmt: skip


def build_kir_genes(kir_alleles: list[tuple[str, str]]) -> list[list[str]]:
    ipd_genes = {name.split("*", 1)[0] for _aid, name in kir_alleles}
    canonical_in_ipd = {canonical_kir_gene(g) for g in ipd_genes}
    if canonical_in_ipd != set(KIR_CANONICAL):
        raise BuildError(
            f"{KIR_ALLELELIST}: genes {sorted(canonical_in_ipd)} differ from the canonical "
            f"list {list(KIR_CANONICAL)}"
        )
    rows = []
    for gene in KIR_CANONICAL:
        kind, note = KIR_GENE_KINDS[gene]
        rows.append([gene, gene, kind, "", note])
        rows.append([gene[3:], gene, kind, "", note])
    for alias, gene, variant, note in KIR_EXTRA_ALIASES:
        if alias.startswith("KIR2DL5") and alias not in ipd_genes:
            raise BuildError(f"{alias} is not a gene of {KIR_ALLELELIST}")
        rows.append([alias, gene, KIR_GENE_KINDS[gene][0], variant, note])
    aliases = [r[0] for r in rows]
    if len(set(aliases)) != len(aliases) or any(a != a.upper() for a in aliases):
        raise BuildError("kir_genes: aliases must be unique and upper-case")
    return rows


# --------------------------------------------------------------------------
# Table c) kir_alleles.tsv
# --------------------------------------------------------------------------
KIR_ALLELE_COLUMNS = ("allele_id", "allele", "gene", "ipd_gene", "protein", "suffix")


def build_kir_alleles(kir_alleles: list[tuple[str, str]]) -> list[list[str]]:
    rows = []
    seen = set()
    for allele_id, name in kir_alleles:
        match = KIR_ALLELE_RE.match(name)
        if not match or len(match["digits"]) < 3:
            raise BuildError(f"{KIR_ALLELELIST}: unexpected allele name {name!r}")
        if name in seen:
            raise BuildError(f"{KIR_ALLELELIST}: duplicate allele {name}")
        seen.add(name)
        ipd_gene = match["gene"]
        rows.append(
            [allele_id, name, canonical_kir_gene(ipd_gene), ipd_gene,
             f"{ipd_gene}*{match['digits'][:3]}", match["suffix"]]
        )  # fmt: skip
    rows.sort(key=lambda r: (r[2], kir_sort_key(r[1])))
    return rows


# --------------------------------------------------------------------------
# Table d) kir2dl1_245.tsv (DOMAIN.md §C.6)
# --------------------------------------------------------------------------
KIR2DL1_COLUMNS = ("allele_group", "residue_245", "call", "n_alleles", "note")
THREE_LETTER = {"R": "Arg", "C": "Cys", "H": "His"}


def kir2dl1_group(name: str) -> str:
    match = KIR_ALLELE_RE.match(name)
    if not match:
        raise BuildError(f"not a KIR allele name: {name!r}")
    return f"{match['gene']}*{match['digits'][:3]}{match['suffix']}"


def build_kir2dl1_245(
    shared: Path, kir_alleles: list[tuple[str, str]], stats: dict
) -> list[list[str]]:
    seqs = read_fasta_gz(shared / KIR2DL1_FASTA)
    listed = {name for _aid, name in kir_alleles if name.startswith("KIR2DL1*")}
    if set(seqs) - listed:
        extra = sorted(set(seqs) - listed)
        raise BuildError(f"{KIR2DL1_FASTA}: entries not in {KIR_ALLELELIST}: {extra}")
    groups: dict[str, list[tuple[str, str | None, str]]] = collections.defaultdict(list)
    for name, seq in seqs.items():
        hits = list(KIR2DL1_245_RE.finditer(seq))
        if len(hits) > 1:
            raise BuildError(f"{name}: anchor LLFFLLH occurs {len(hits)} times")
        residue = None
        after = ""
        if hits:
            residue = hits[0].group(1)
            after = seq[hits[0].end() : hits[0].end() + 3]
            if residue == "X":
                residue, after = None, "X"
            else:
                start = KIR2DL1_MATURE_START.search(seq)
                if start is not None and hits[0].start(1) - start.start() + 1 != KIR2DL1_245:
                    raise BuildError(f"{name}: residue after LLFFLLH is not mature residue 245")
                if not (after == "WCS" or after.startswith("X")):
                    raise BuildError(
                        f"{name}: residue 245 not followed by WCS or a stop ({after!r})"
                    )
        groups[kir2dl1_group(name)].append((name, residue, after))
    rows = []

    def group_key(group: str) -> tuple[int, str]:
        digits = group.split("*", 1)[1]
        return (int(digits[:3]), digits[3:])

    for group in sorted(groups, key=group_key):
        members = groups[group]
        residues = {r for _n, r, _a in members}
        if len(residues) > 1:
            raise BuildError(f"{group}: alleles disagree on residue 245: {members}")
        residue = residues.pop()
        notes = []
        if group.endswith("N") or residue is None:
            call = "null"
            notes.append("null allele (N suffix)" if group.endswith("N") else "")
            if residue is None:
                notes.append("no residue 245 (truncated sequence)")
        elif residue == "R":
            call = "R245"
        elif residue == "C":
            call = "C245"
        else:
            call = "other"
            notes.append(f"{THREE_LETTER.get(residue, residue)}245: neither R245 nor C245")
        if residue is not None and any(a.startswith("X") for _n, _r, a in members):
            notes.append(f"{THREE_LETTER.get(residue, residue)}245 followed by a premature stop")
        if group.endswith("Q"):
            notes.append("Q suffix: questionable expression")
        note = "; ".join(n for n in notes if n)
        rows.append([group, residue or "", call, str(len(members)), note])
    stats["kir2dl1_groups"] = rows
    return rows


# --------------------------------------------------------------------------
# Table e) kir3dl1_class.tsv (curated, DOMAIN.md §C.7)
# --------------------------------------------------------------------------
KIR3DL1_COLUMNS = ("allele_group", "class", "source", "note")
BOUDREAU_2017 = "Boudreau et al., J Clin Oncol 2017;35(20):2268-2278"
THOMAS_2008 = "Thomas et al., J Immunol 2008, doi:10.4049/jimmunol.180.10.6743"
KIR3DL1_CURATED: tuple[tuple[str, str, str, str], ...] = tuple(
    [
        (g, "H", BOUDREAU_2017,
         "high surface expression measured by flow cytometry: " + THOMAS_2008)
        for g in ("001", "002", "008", "009", "015", "020")
    ]
    + [
        ("005", "L", BOUDREAU_2017,
         "a later study (Boudreau et al., J Immunol 2016, doi:10.4049/jimmunol.1502469) "
         "reports high surface levels of *005 despite retention in the ER, and one peer table "
         "calls it high; not confirmed in the primary paper; configurable"),
        ("007", "L", BOUDREAU_2017,
         "low class together with *005 (see the *005 note on conflicting expression data); "
         "configurable"),
    ]
    + [
        ("004", "N", BOUDREAU_2017,
         "retained inside the cell; one peer table calls *004 low, not null"),
        ("019", "N", BOUDREAU_2017, "class N in the primary paper"),
        ("053", "L", THOMAS_2008, "not confirmed in the primary paper; configurable"),
        ("054", "N", THOMAS_2008,
         "no surface expression detected; not confirmed in the primary paper; configurable"),
    ]
)  # fmt: skip


def build_kir3dl1_class(kir_alleles: list[tuple[str, str]]) -> list[list[str]]:
    rows = [[f"KIR3DL1*{g}", cls, src, note] for g, cls, src, note in KIR3DL1_CURATED]
    curated_groups = {g for g, *_ in KIR3DL1_CURATED}
    listed = [name for _aid, name in kir_alleles if name.startswith("KIR3DL1*")]
    listed_groups = {name.split("*", 1)[1][:3] for name in listed}
    missing = sorted(curated_groups - listed_groups)
    if missing:
        raise BuildError(f"curated KIR3DL1 groups absent from {KIR_ALLELELIST}: {missing}")
    nulls = sorted((n for n in listed if n.endswith("N")), key=kir_sort_key)
    for name in nulls:
        rows.append([name, "N", "IPD-KIR nomenclature", "N suffix: not expressed"])
    rows.sort(key=lambda r: kir_sort_key(r[0]))
    return rows


# --------------------------------------------------------------------------
# Writing tables and the manifest
# --------------------------------------------------------------------------
@dataclass
class TableSpec:
    name: str
    file: str
    version: str
    origin: Sequence[str]
    license: str
    columns: Sequence[str]
    rows: list[list[str]]
    source: str
    source_url: str
    retrieved: str
    schema_version: int = SCHEMA_VERSION
    counts: dict[str, int] | None = None  # written to MANIFEST as `counts` (build-log facts)


def render_table(spec: TableSpec, date: str, generated_by: str) -> bytes:
    lines = [
        f"# file: {spec.file}",
        f"# date: {date}",
        f"# version: {spec.version}",
        f"# origin: {', '.join(spec.origin)}",
        f"# generated-by: {generated_by}",
        f"# license: {spec.license}",
        "\t".join(spec.columns),
    ]
    for row in spec.rows:
        if len(row) != len(spec.columns):
            raise BuildError(
                f"{spec.file}: row {row} has {len(row)} cells, expected {len(spec.columns)}"
            )
        for cell in row:
            if any(ch in cell for ch in "\t\r\n") or cell.startswith("#"):
                raise BuildError(f"{spec.file}: cell {cell!r} cannot be written to TSV")
        lines.append("\t".join(row))
    return ("\n".join(lines) + "\n").encode("utf-8")


def toml_str(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{toml_str(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise BuildError(f"cannot write {value!r} to TOML")


def toml_table(header: str, items: dict[str, object]) -> str:
    lines = [f"[{header}]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in items.items()]
    return "\n".join(lines) + "\n"


def column_counts(rows: list[list[str]], columns: Sequence[str], column: str,
                  none: str = "") -> dict[str, int]:
    """Rows per value of one column, most frequent first (``none`` names the empty value)."""
    index = list(columns).index(column)
    counts = collections.Counter(row[index] or none for row in rows)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def read_existing_date(out: Path) -> str | None:
    manifest = out / "MANIFEST.toml"
    if not manifest.is_file():
        return None
    text = manifest.read_text(encoding="utf-8")
    try:
        import tomllib  # Python >= 3.11
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        match = re.search(r'^generated\s*=\s*"(\d{4}-\d{2}-\d{2})"', text, re.M)
        return match.group(1) if match else None
    try:
        return tomllib.loads(text).get("meta", {}).get("generated")
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{manifest}: not valid TOML ({exc}); pass --date") from exc


def read_checksums(shared: Path, subdir: str) -> dict[str, str]:
    """``sha256sum`` listing of shared/<subdir>/SHA256SUMS, keyed by path relative to shared/."""
    out = {}
    path = shared / subdir / "SHA256SUMS"
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        digest, _, rel = line.partition("  ")
        rel = rel.strip().removeprefix("./")
        out[f"{subdir}/{rel}"] = digest.strip()
    return out


def commit_date(shared: Path, subdir: str, commit: str) -> str:
    """The commit date written next to the pinned commit in shared/<subdir>/README.md."""
    text = (shared / subdir / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"`{commit}`\s*\((\d{{4}}-\d{{2}}-\d{{2}})\)", text)
    if not match:
        raise BuildError(f"{subdir}/README.md does not name commit {commit} with its date")
    return match.group(1)


def tip_file_date(shared: Path, commit: str) -> str:
    """The file date shared/imgt/README.md gives for the files copied from ``commit``."""
    text = (shared / "imgt" / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"`{commit}`,\s+whose\s+`release_version.txt`\s+reads\s+"
                      rf"{re.escape(HLA_RELEASE)},\s+file\s+date\s+(\d{{4}}-\d{{2}}-\d{{2}})", text)
    if not match:
        raise BuildError(f"imgt/README.md does not give the file date of commit {commit}")
    return match.group(1)


def source_hashes(shared: Path, files: Iterable[str], checksums: dict[str, str]) -> dict[str, str]:
    out = {}
    for rel in files:
        digest = sha256_file(shared / rel)
        expected = checksums.get(rel)
        if expected is None:
            raise BuildError(f"{rel} is not listed in its SHA256SUMS")
        if digest != expected:
            raise BuildError(f"{rel}: sha256 {digest} differs from SHA256SUMS ({expected})")
        out[rel] = digest
    return out


# --------------------------------------------------------------------------
# Coverage summary (stdout)
# --------------------------------------------------------------------------
def print_summary(hla_rows: list[list[str]], stats: dict, out=sys.stdout) -> None:
    col = {c: i for i, c in enumerate(HLA_COLUMNS)}
    print("== HLA ligand coverage (IPD-IMGT/HLA 3.58.0) ==", file=out)
    total_exp = total_called = 0
    for locus in HLA_LOCI:
        rows = [r for r in hla_rows if r[col["locus"]] == locus]
        exp = [r for r in rows if r[col["expressed"]] == "true"]
        called = [r for r in exp if r[col["ligand"]]]
        total_exp += len(exp)
        total_called += len(called)
        res_notes = collections.Counter(r[col["residue_note"]] or "covered" for r in rows)
        print(
            f"  {locus}: {len(rows)} alleles, {len(exp)} expressed, {len(called)} with a ligand "
            f"({len(called) / len(exp):.4%}); own residues 76-83: "
            f"{dict(sorted(res_notes.items()))}",
            file=out,
        )
    print(f"  all: {total_called}/{total_exp} expressed alleles with a ligand "
          f"({total_called / total_exp:.4%})", file=out)
    uncovered = [r for r in hla_rows if r[col["expressed"]] == "true" and not r[col["ligand"]]]
    by_reason: dict[str, list[str]] = collections.defaultdict(list)
    for r in uncovered:
        by_reason[f"{r[col['note']]} (own entry: {r[col['residue_note']] or 'covered'})"].append(
            r[col["allele"]]
        )
    for reason, alleles in sorted(by_reason.items()):
        print(f"  uncovered, {reason}: {len(alleles)}: {' '.join(alleles)}", file=out)
    methods = stats["alignment_methods"]
    print("  alignment: " + ", ".join(f"{k[0]} {k[1]}={v}" for k, v in sorted(methods.items())),
          file=out)
    print(f"  full-length entries whose leader is not 24 residues: {len(stats['odd_leader'])}",
          file=out)

    # First-field group summary, as DOMAIN.md §C.2 (distinct expressed covered proteins).
    print("== First-field groups: majority call n/N, others (DOMAIN.md §C.2) ==", file=out)
    plig = stats["hla_protein_ligand"]
    pbc1 = stats["hla_protein_bc1"]
    expressed_proteins = {e.protein for e in stats["hla_entries"] if e.expressed}
    groups: dict[str, list[str]] = collections.defaultdict(list)
    for protein in expressed_proteins:
        if plig[protein] is not None:
            groups[protein.split(":")[0]].append(protein)
    for group in sorted(groups, key=lambda g: (g[0], int(g[2:]))):
        calls = collections.Counter(plig[p] for p in groups[group])
        (major, n), *others = calls.most_common()
        other = ", ".join(f"{c} {k}" for c, k in sorted(others, key=lambda x: (-x[1], x[0])))
        extra = ""
        if group.startswith("B"):
            extra = f"; B-C1 {sum(1 for p in groups[group] if pbc1[p])}"
        print(f"  {group}: {major} {n}/{sum(calls.values())}"
              f"{'; ' + other if other else ''}{extra}", file=out)


def print_v2_summary(stats: dict, out=sys.stdout) -> None:
    """Build log of the rules-v2 tables: gapped placements, antigen assignment
    kinds, P-group inheritance, allele-group fallbacks, leader sources, TCE groups."""
    print("== Gapped fallback (rule 1, entries the ungapped offset cannot place) ==", file=out)
    for allele, result in stats["gapped"]:
        if result.failure:
            print(f"  {allele}: not placed ({result.failure})", file=out)
        else:
            motif = "".join(result.residues[p] for p in RESIDUES)
            print(f"  {allele}: residues 76-83 {motif}, templates {result.template}, identity "
                  f"{result.identity:.3f} over {result.overlap}", file=out)
    placed = sum(1 for _a, r in stats["gapped"] if not r.failure)
    print(f"  placed {placed} of {len(stats['gapped'])}", file=out)

    direct: dict[str, AntigenAssignment] = stats["hla_antigens"]
    infos: list[AlleleInfo] = stats["hla_alleles"]
    print("== Antigens (rule 13 v2): alleles per assignment kind ==", file=out)
    kinds = collections.Counter(d.assignment for d in direct.values())
    print("  " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()), file=out)
    inherited = collections.Counter(
        (a.locus, d.assignment) for a in infos
        if (d := direct[a.allele]).assignment in ("p_group", "protein", "allele_group")
    )
    for (locus, kind), n in sorted(inherited.items()):
        print(f"  '?' alleles at {locus}: {kind} {n}", file=out)
    broad_only = sum(1 for d in direct.values() if d.possible)
    print(f"  assigned a broad only (possible splits recorded): {broad_only}", file=out)
    print(f"  maybe null (a field also lists 0): "
          f"{sum(1 for d in direct.values() if d.maybe_null)}", file=out)

    print("== HLA-B leader residue -21 (rule 16): alleles per source ==", file=out)
    print("  " + ", ".join(f"{k} {n}" for k, n in stats["b_leader_counts"].items()), file=out)
    residues = collections.Counter((r[5], r[3] or "-") for r in stats["b_leader_rows"])
    print("  " + ", ".join(f"{s}:{r} {n}" for (s, r), n in sorted(residues.items())), file=out)
    print("== DPB1 TCE V2 groups (rule 16): alleles per group ==", file=out)
    groups = collections.Counter(
        (r[3] or ("null" if r[2] == "false" else "unassigned"), r[4])
        for r in stats["dpb1_tce_rows"]
    )
    print("  " + ", ".join(f"{g} (label {lab or '-'}) {n}" for (g, lab), n in sorted(groups.items())),
          file=out)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------
def build(shared: Path, out: Path, date: str, *, quiet: bool = False) -> dict[str, str]:
    started = time.perf_counter()
    generated_by = f"{SCRIPT} --shared <shared> --out <out> --date {date}"
    stats: dict = {}
    checksums = {**read_checksums(shared, "imgt"), **read_checksums(shared, "ipdkir")}
    hla_retrieved = commit_date(shared, "imgt", HLA_COMMIT)
    kir_retrieved = commit_date(shared, "ipdkir", KIR_COMMIT)
    kir_list = read_ipd_csv(shared / KIR_ALLELELIST, KIR_RELEASE_LABEL)

    hla_sources = [HLA_ALLELELIST, *(HLA_FASTA[locus] for locus in HLA_LOCI)]
    tce_retrieved = tip_file_date(shared, HLA_TIP_COMMIT)
    ligand_rows = build_hla(shared, stats)
    allele_rows = build_hla_alleles(shared, stats)
    antigen_rows = build_hla_antigens(shared, stats)
    # Bw4/Bw6 come from the HLA-A and HLA-B rule-1 calls, hence their FASTA files.
    antigen_sources = [HLA_ALLELELIST, WMDA_REL_DNA_SER, WMDA_REL_SER_SER, WMDA_NOM_G,
                       WMDA_NOM_P, HLA_FASTA["A"], HLA_FASTA["B"]]
    specs = [
        TableSpec(
            "hla_kir_ligands", "hla_kir_ligands.tsv", HLA_RELEASE_LABEL, hla_sources,
            HLA_LICENSE, HLA_COLUMNS, ligand_rows,
            "IPD-IMGT/HLA allele list and HLA-A/-B/-C protein sequences; KIR-ligand calls by "
            "kirmatch rules v2 §A.2 (rule 1), with a gapped-alignment fallback for entries the "
            "ungapped offset cannot place",
            f"{HLA_URL}/fasta", hla_retrieved, schema_version=2,
            counts=column_counts(ligand_rows, HLA_COLUMNS, "alignment", none="not_placed"),
        ),
        TableSpec(
            "hla_alleles", "hla_alleles.tsv", HLA_RELEASE_LABEL,
            [HLA_ALLELELIST, WMDA_NOM_G, WMDA_NOM_P], HLA_LICENSE, HLA_ALLELE_COLUMNS,
            allele_rows,
            "IPD-IMGT/HLA allele list with G groups (hla_nom_g.txt) and P groups "
            "(hla_nom_p.txt) for A, B, C, DRB1, DRB3, DRB4, DRB5, DQA1, DQB1, DPA1 and DPB1 "
            "(kirmatch rules v2 §A.3, §A.14, §A.19)",
            f"{HLA_URL}/wmda", hla_retrieved,
            counts=column_counts(allele_rows, HLA_ALLELE_COLUMNS, "locus"),
        ),
        TableSpec(
            "hla_antigens", "hla_antigens.tsv", HLA_RELEASE_LABEL, antigen_sources, HLA_LICENSE,
            HLA_ANTIGEN_COLUMNS, antigen_rows,
            "serological antigens per allele from rel_dna_ser.txt and rel_ser_ser.txt (P-group "
            "inheritance and allele-group names for alleles without serology), Bw4/Bw6 from "
            "the rule-1 calls (kirmatch rules v2 §A.14, rule 13)",
            f"{HLA_URL}/wmda", hla_retrieved,
            counts=column_counts(antigen_rows, HLA_ANTIGEN_COLUMNS, "assignment"),
        ),
        TableSpec(
            "hla_serology", "hla_serology.tsv", HLA_RELEASE_LABEL, antigen_sources, HLA_LICENSE,
            HLA_SEROLOGY_COLUMNS, build_hla_serology(stats),
            "serological antigen names with broad, splits, parent and associated antigens "
            "(rel_ser_ser.txt), the loci and number of alleles carrying each (hla_antigens) "
            "(kirmatch rules v2 §A.14, rule 13)",
            f"{HLA_URL}/wmda", hla_retrieved,
        ),
        TableSpec(
            "hla_b_leader", "hla_b_leader.tsv", HLA_RELEASE_LABEL,
            [HLA_ALLELELIST, HLA_FASTA["B"]], HLA_LICENSE, B_LEADER_COLUMNS,
            build_b_leader(stats),
            "HLA-B leader residue -21 (Met/Thr) per allele from the HLA-B protein sequences "
            "(kirmatch rules v2 §A.19, rule 16)",
            f"{HLA_URL}/fasta", hla_retrieved, counts=stats["b_leader_counts"],
        ),
        TableSpec(
            "hla_dpb1_tce", "hla_dpb1_tce.tsv", HLA_RELEASE_LABEL, [HLA_ALLELELIST, DPB_TCE],
            HLA_LICENSE, DPB1_TCE_COLUMNS, build_dpb1_tce(shared, stats),
            "HLA-DPB1 T-cell-epitope groups V2 (Crivello et al., Biol Blood Marrow Transplant "
            "2015) and V1 from tce/dpb_tce.csv (kirmatch rules v2 §A.19, rule 16)",
            f"https://github.com/ANHIG/IMGTHLA/blob/{HLA_TIP_COMMIT}/tce/dpb_tce.csv",
            tce_retrieved,
        ),
        TableSpec(
            "kir_genes", "kir_genes.tsv", KIR_RELEASE_LABEL, [KIR_ALLELELIST], KIR_LICENSE,
            KIR_GENE_COLUMNS, build_kir_genes(kir_list),
            "curated KIR gene vocabulary (kirmatch rules v2 §A.0, DOMAIN.md §C.13); gene names "
            "checked against the IPD-KIR allele list",
            KIR_ALLELELIST_URL, kir_retrieved,
        ),
        TableSpec(
            "kir_alleles", "kir_alleles.tsv", KIR_RELEASE_LABEL, [KIR_ALLELELIST], KIR_LICENSE,
            KIR_ALLELE_COLUMNS, build_kir_alleles(kir_list),
            "IPD-KIR allele list (names and IDs)", KIR_ALLELELIST_URL, kir_retrieved,
        ),
        TableSpec(
            "kir2dl1_245", "kir2dl1_245.tsv", KIR_RELEASE_LABEL, [KIR2DL1_FASTA], KIR_LICENSE,
            KIR2DL1_COLUMNS, build_kir2dl1_245(shared, kir_list, stats),
            "IPD-KIR KIR2DL1 protein sequences; residue 245 per allele group (kirmatch rules v2 "
            "§A.13, DOMAIN.md §C.6)",
            f"{KIR_URL}/fasta", kir_retrieved,
        ),
        TableSpec(
            "kir3dl1_class", "kir3dl1_class.tsv", RULES_RELEASE, [KIR_ALLELELIST],
            CURATED_KIR_LICENSE, KIR3DL1_COLUMNS, build_kir3dl1_class(kir_list),
            f"curated (DOMAIN.md §C.7): {BOUDREAU_2017}; {THOMAS_2008}; N-suffixed alleles "
            "from the IPD-KIR allele list",
            KIR_ALLELELIST_URL, kir_retrieved,
        ),
    ]

    # Render everything first: nothing is written unless every check passed.
    rendered = {spec.file: render_table(spec, date, generated_by) for spec in specs}
    out.mkdir(parents=True, exist_ok=True)
    for file, data in rendered.items():
        (out / file).write_bytes(data)

    parts = [
        "# kirmatch reference tables: provenance manifest (STYLE.md §5).\n"
        f"# Generated by {generated_by}; do not edit by hand.\n",
        toml_table(
            "meta",
            {
                "schema_version": SCHEMA_VERSION,
                "rules": RULES_ID,
                "ipd_imgt_hla": HLA_RELEASE,
                "ipd_imgt_hla_commit": HLA_COMMIT,
                "ipd_kir": KIR_RELEASE,
                "ipd_kir_commit": KIR_COMMIT,
                "generated": date,
                "generated_by": generated_by,
            },
        ),
    ]
    for spec in specs:
        parts.append(
            toml_table(
                f"tables.{spec.name}",
                {
                    "file": spec.file,
                    "kind": "table",
                    "sha256": hashlib.sha256(rendered[spec.file]).hexdigest(),
                    "rows": len(spec.rows),
                    "columns": list(spec.columns),
                    "schema_version": spec.schema_version,
                    "source": spec.source,
                    "source_release": spec.version,
                    "source_url": spec.source_url,
                    "source_sha256": source_hashes(shared, spec.origin, checksums),
                    "retrieved": spec.retrieved,
                    "generated_by": generated_by,
                    "license": spec.license,
                    **({"counts": spec.counts} if spec.counts else {}),
                },
            )
        )
    # The KIR allele-history table has its own generator (same formats); its
    # MANIFEST entry joins this one, so one run rebuilds every table.
    import importlib.util

    hist_path = Path(__file__).resolve().parent / "build_kir_history.py"
    spec_h = importlib.util.spec_from_file_location("kirmatch_build_kir_history", hist_path)
    assert spec_h is not None and spec_h.loader is not None
    history = importlib.util.module_from_spec(spec_h)
    spec_h.loader.exec_module(history)
    parts.append(history.build(shared, out, date))
    policies = out / "policies"
    if policies.is_dir():
        for path in sorted(policies.glob("*.toml")):
            name = "policies_" + re.sub(r"[^A-Za-z0-9_-]", "_", path.stem)
            parts.append(
                toml_table(
                    f"tables.{name}",
                    {
                        "file": f"policies/{path.name}",
                        "kind": "policy",
                        "sha256": sha256_file(path),
                        "schema_version": SCHEMA_VERSION,
                        "source": "kirmatch rules v2 §A.15",
                        "source_release": RULES_RELEASE,
                        "source_url": "",
                        "source_sha256": {},
                        "retrieved": "",
                        "generated_by": "hand-written ranking policy (hashed by "
                        f"{SCRIPT})",
                        "license": POLICY_LICENSE,
                    },
                )
            )
    (out / "MANIFEST.toml").write_bytes("\n".join(parts).encode("utf-8"))

    if not quiet:
        hla_rows = specs[0].rows
        print_summary(hla_rows, stats)
        print_v2_summary(stats)
        print("== Tables ==")
        for spec in specs:
            print(f"  {spec.file}: {len(spec.rows)} rows")
        calls = collections.Counter(r[2] for r in stats["kir2dl1_groups"])
        print(f"  KIR2DL1 residue-245 groups: {dict(sorted(calls.items()))}")
        c245 = [r[0].split("*")[1] for r in stats["kir2dl1_groups"] if r[2] == "C245"]
        print(f"  C245 groups: {' '.join(c245)}")
        print(f"== done in {time.perf_counter() - started:.1f} s ==")
    return {file: hashlib.sha256(data).hexdigest() for file, data in rendered.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", required=True, type=Path,
                        help="folder holding imgt/ and ipdkir/ (the read-only IPD copies)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (reference_tables)")
    parser.add_argument("--date", help="date for headers and MANIFEST (YYYY-MM-DD); default: the "
                        "date in <out>/MANIFEST.toml, else today")
    parser.add_argument("--quiet", action="store_true", help="do not print the coverage summary")
    args = parser.parse_args(argv)
    try:
        date = args.date or read_existing_date(args.out) or _dt.date.today().isoformat()
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            raise BuildError(f"--date must be YYYY-MM-DD, got {date!r}")
        _dt.date.fromisoformat(date)
        for sub in ("imgt", "ipdkir"):
            if not (args.shared / sub).is_dir():
                raise BuildError(f"{args.shared / sub} not found (pass --shared <path to shared>)")
        build(args.shared, args.out, date, quiet=args.quiet)
    except (BuildError, OSError, ValueError) as exc:
        print(f"build_tables.py: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
