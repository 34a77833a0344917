"""The input formats in words: typing syntax, input columns and their vocabularies.

One description, read by the command-line help (``kirmatch COMMAND --help``),
the user guide (``docs/guide.md``) and the generated rules reference, so that
what a user is told is what the readers accept. Every example here is parsed by
the tests (``tests/test_help.py``); the clinical vocabularies are the readers'
own tables (:mod:`kirmatch.ranking`).

>>> [f.name for f in HLA_TYPING][:2]
['GL string', 'allele list']
>>> next(c for c in PAIRS_COLUMNS if c.name == "donor_cmv").values
'pos, neg (also +, -, negative, positive)'
"""

from __future__ import annotations

from dataclasses import dataclass

from kirmatch.ranking import ABO_WORDS, CMV_WORDS, RELATIONSHIP_SYNONYMS, RELATIONSHIPS, SEX_WORDS

__all__ = [
    "ANTIBODIES_COLUMNS",
    "ANTIBODY_FORMS",
    "GENOTYPES_COLUMNS",
    "HLA_TYPING",
    "INPUT_TABLES",
    "KIR_TYPING",
    "PAIRS_COLUMNS",
    "Column",
    "Form",
]


@dataclass(frozen=True, slots=True)
class Form:
    """One way of writing a typing: its name, an example and what it means."""

    name: str
    example: str
    meaning: str


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an input table: name, meaning, accepted values, whether needed."""

    name: str
    meaning: str
    values: str = ""
    required: bool = False


#: How an HLA typing is written (a cell of the ``hla`` column, ``--recipient-hla``,
#: ``kirmatch ligands``).
HLA_TYPING: tuple[Form, ...] = (
    Form("GL string", "A*02:01+A*24:02^B*07:02+B*44:02^C*07:02+C*05:01",
         "'+' joins the two copies of a locus, '^' joins loci; an optional "
         "'hla#3.58.0#' prefix names the release"),
    Form("allele list", "A*02:01 A*24:02 B*07:02 B*44:02",
         "alleles separated by spaces or commas, grouped by locus"),
    Form("alternatives", "A*02:01/A*02:02+A*24:02",
         "'/' lists alternative alleles of one copy, '|' alternative genotypes"),
    Form("allele names", "HLA-A*02:01, A*02:01:01:02L, A*0201",
         "1 to 4 fields, HLA- prefix optional, expression suffixes N L S C A Q, "
         "v2 names without colons"),
    Form("lower resolution", "A*02:XX, A*02:AB, A*02:01:01G, A*24:02P",
         "first field (XX), NMDP MAC codes (need the py-ard database), G and P groups"),
    Form("serology", "A2+A24^B44^Cw4", "WHO antigens, associated ones too (B5102, A2403); "
         "read through rel_dna_ser.txt"),
)

#: How a KIR typing is written (a cell of the ``kir`` column, ``--donor-kir``).
KIR_TYPING: tuple[Form, ...] = (
    Form("gene list", "KIR2DL1+KIR2DL3+KIR3DL1",
         "genes present ('KIR' optional: 2DL1+2DL3+3DL1); genes not listed are absent"),
    Form("allele list", "KIR3DL1*001+KIR3DL1*004+KIR2DL1*00302",
         "allele-level typing (IPD-KIR names; older names are mapped by the allele "
         "history); genes not listed are absent"),
    Form("per gene (DKMS)", "2DL1=POS;2DS1=NEG;3DL1=001/002+004;2DS5=NA",
         "POS present, NEG absent, NA/blank unknown, alleles as 001+004 with '/' "
         "and '|' alternatives, 003|NEG present-or-absent, 001A/006B for KIR2DL5A/B; "
         "genes not listed are unknown, and so is the rest of a gene typed in part "
         "(2DL5A alone: KIR2DL5B; 2DS4N alone: full-length KIR2DS4)"),
    Form("GL string", "kir#2.13.0#KIR2DL1*001+KIR2DL1*002^KIR3DL1*001",
         "a KIR GL string with its namespace; genes not listed are unknown"),
)

#: The genotypes table (``--genotypes``; what ``kirmatch convert`` writes).
GENOTYPES_COLUMNS: tuple[Column, ...] = (
    Column("sample_id", "the person's id (also id, sample)", required=True),
    Column("hla", "HLA typing (see HLA typing); or one column per allele: A_1, A_2, "
           "HLA-B_1, Cw_1, DRB1_2 …; or one per locus: hla_a = 02:01+24:02"),
    Column("kir", "KIR typing (see KIR typing); or one column per gene: KIR2DL1, 2DS4N, "
           "… holding POS/NEG, 1/0 or alleles"),
)


def _words(canonical: tuple[str, ...], synonyms: dict[str, str]) -> str:
    lower = {c.lower() for c in canonical}
    extra = sorted(w for w in synonyms if w.lower() not in lower)
    return ", ".join(canonical) + (f" (also {', '.join(extra)})" if extra else "")


def _values(words: dict[str, str]) -> str:
    canonical = tuple(dict.fromkeys(words.values()))
    return _words(canonical, {k: v for k, v in words.items() if k not in canonical})


#: The pairs table (``--pairs``): one candidate recipient-donor pair a row.
PAIRS_COLUMNS: tuple[Column, ...] = (
    Column("recipient_id", "recipient's sample_id in the genotypes table", required=True),
    Column("donor_id", "candidate donor's sample_id", required=True),
    Column("donor_age", "donor age in years", "a number, 0 to < 130"),
    Column("donor_sex", "donor sex", _values(SEX_WORDS)),
    Column("recipient_sex", "recipient sex", _values(SEX_WORDS)),
    Column("relationship", "donor's relation to the recipient",
           _words(RELATIONSHIPS, RELATIONSHIP_SYNONYMS)),
    Column("donor_cmv", "donor CMV serostatus", _values(CMV_WORDS)),
    Column("recipient_cmv", "recipient CMV serostatus", _values(CMV_WORDS)),
    Column("donor_abo", "donor ABO group", _values(ABO_WORDS)),
    Column("recipient_abo", "recipient ABO group", _values(ABO_WORDS)),
    Column("donor_parity", "donor's number of pregnancies",
           "a whole number ≥ 0 (above 0 for a male donor is an error)"),
    Column("flow_crossmatch", "flow crossmatch of the pair (positive makes the DSA tier "
           "at least high)", "pos, neg"),
    Column("(any other)", "passed through to the output unchanged"),
)


#: The antibodies table (``--antibodies``): one single-antigen-bead result a row.
ANTIBODIES_COLUMNS: tuple[Column, ...] = (
    Column("recipient_id", "whose serum (optional in kirmatch pair)", required=True),
    Column("specificity", "bead specificity (see antibody specificities)", required=True),
    Column("mfi", "mean fluorescence intensity", "a number ≥ 0; blank only for NONE",
           required=True),
    Column("c1q", "C1q-binding result (positive makes the tier at least high)",
           "pos, neg or blank"),
)

#: How an antibody specificity is written (the ``specificity`` column).
ANTIBODY_FORMS: tuple[Form, ...] = (
    Form("allele bead", "B*51:01, HLA-DQB1*02:01", "a donor allele with that protein"),
    Form("WHO antigen", "B51, B5, Cw4, DR15, DQ7", "a donor allele assigned that antigen, "
         "or one of its splits"),
    Form("allele group", "Cw12, DPB1*04", "a donor allele of that first field"),
    Form("public epitope", "Bw4, Bw6", "HLA-A/-B Bw4 or HLA-B Bw6 alleles"),
    Form("heterodimer", "DQA1*05:01/DQB1*02:01", "both chains carried by the donor"),
    Form("negative screen", "NONE", "no antibody (MFI may be blank)"),
)


#: The input tables by name.
INPUT_TABLES: dict[str, tuple[Column, ...]] = {
    "genotypes": GENOTYPES_COLUMNS, "pairs": PAIRS_COLUMNS, "antibodies": ANTIBODIES_COLUMNS}
