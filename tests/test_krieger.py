"""Rule 17 (DOMAIN.md §A.20): Krieger's KIR-L, imKIR and wKIR scores through the
registry, i.e. through :func:`kirmatch.assess_pair` and the batch engine.

The hand-worked pairs below each pin one clause of §A.20; the cross-check
re-computes DKMS CTUtools' ``score_krieger`` definition (``R/scores.R``:
presence of a KIR is a non-``NEG`` typing string, ``kir_2DS4`` and ``kir_2DS4N``
are separate columns of which only ``kir_2DS4`` counts, ligands from the
recipient's HLA-C group, HLA-B class and a ``11:``/``03:`` match on HLA-A)
from the 20 DKMS typings CTUtools stores, against random recipients.
"""

from __future__ import annotations

import json
import random

import pandas as pd
import pytest

from kirmatch import Options, assess_pair, make_person
from kirmatch.batch import assess_pairs
from kirmatch.registry import CONTENT_GENES, model_of

from .test_kir_dkms_rows import GENES as DKMS_GENES
from .test_kir_dkms_rows import ROWS as DKMS_ROWS

C1C2_BW4 = "A*02:01+A*01:01^B*07:02+B*44:02^C*07:02+C*05:01"      # C1, C2, Bw4 (B*44:02)
A11 = "A*11:01+A*02:01^B*07:02+B*08:01^C*07:02+C*05:01"          # A*11, C1, C2, no Bw4
A03 = "A*03:01+A*02:01^B*07:02+B*08:01^C*07:02+C*07:01"          # A*03, C1 only
A_BW4_ONLY = "A*24:02+A*02:01^B*07:02+B*08:01^C*07:02+C*07:01"   # Bw4 from HLA-A only
DONOR_HLA = "A*02:01+A*01:01^B*07:02+B*08:01^C*07:02+C*07:01"


def per_gene(**values: str) -> str:
    """A per-gene KIR typing: the rule-17 genes NEG unless given (``D2DS4N="006"``)."""
    genes = {g: "NEG" for g in ("2DL1", "2DL2", "2DL3", "3DL1", "3DL2", "2DS1", "2DS2",
                                "2DS4", "2DS5")}
    genes.update({k.lstrip("D"): v for k, v in values.items()})
    return ";".join(f"{g}={v}" for g, v in genes.items())


def scores(recipient_hla: str, donor_kir: str, tables, **opts) -> tuple:
    r = make_person("R", recipient_hla, tables=tables)
    d = make_person("D", DONOR_HLA, donor_kir, tables=tables)
    res = assess_pair(r, d, Options(**opts), tables=tables)
    v = res.to_dict()
    return (v["kir_l_score"], v["imkir_score"], v["wkir_score"]), res.warnings


@pytest.mark.parametrize(("recipient", "kir", "expected"), [
    # inhibitory pairs, each counted once: 2DL1-C2, 2DL3-C1, 3DL1-Bw4 (B*44:02)
    # present (iKIR 3); KIR3DL2 typed absent; no activating KIR: -3, 3, 2.40
    (C1C2_BW4, "KIR2DL1+KIR2DL3+KIR3DL1+KIR2DL4+KIR3DL3", (-3, 3, "2.40")),
    # the same donor with KIR3DL2: no A*03/A*11, so mKIR 1: -2, 4, 3.39
    (C1C2_BW4, "KIR2DL1+KIR2DL3+KIR3DL1+KIR3DL2", (-2, 4, "3.39")),
    # KIR3DL2 with A*03 and with A*11 is iKIR (A*03 recipient: 2DL1 has no C2)
    (A03, "KIR2DL1+KIR3DL2", (0, 2, "1.79")),
    (A11, "KIR3DL2", (-1, 1, "0.80")),
    # KIR3DL1-Bw4 is HLA-B only: Bw4 from A*24:02 leaves KIR3DL1 unlicensed (mKIR)
    (A_BW4_ONLY, "KIR3DL1", (1, 1, "0.99")),
    # activating pairs need the ligand in the recipient: 2DS1-C2, 2DS5-C2,
    # 2DS2-A*11, 2DS4 (full length *001)-A*11: aKIR 4, 0.14 x 4
    (A11, "KIR2DS1+KIR2DS2+KIR2DS4*001+KIR2DS5", (4, 0, "0.56")),
    # A*03 is not an activating ligand; C2 missing makes 2DS1/2DS5 count nothing
    (A03, "KIR2DS1+KIR2DS2+KIR2DS4*001+KIR2DS5", (0, 0, "0.00")),
    # KIR2DS4 only with a full-length allele: *003 (22-bp deletion) and the
    # 2DS4N column do not count
    (A11, "KIR2DS4*003", (0, 0, "0.00")),
    (A11, per_gene(D2DS4N="006"), (0, 0, "0.00")),
    (A11, per_gene(D2DS4="001/017", D2DS4N="006"), (1, 0, "0.14")),
    # a gene-level KIR2DS4 does not matter without an A*11 in the recipient
    (C1C2_BW4, "KIR2DS4", (0, 0, "0.00")),
])
def test_hand_worked(tables, recipient: str, kir: str, expected: tuple) -> None:
    got, _ = scores(recipient, kir, tables)
    assert got == expected


def test_gene_level_kir2ds4_with_a11_is_unknown(tables) -> None:
    got, warnings = scores(A11, "KIR2DL1+KIR2DS4", tables)
    # imKIR does not read KIR2DS4: 2DL1-C2 iKIR -> 1
    assert got == ("", 1, "")
    assert "unknown(kir_l_score: gene_level_kir)" in warnings
    assert "unknown(wkir_score: gene_level_kir)" in warnings
    assert "gene_level_kir(donor KIR2DS4)" in warnings
    assert not any(w.startswith("unknown(imkir_score") for w in warnings)


def test_kir3dl2_is_present_unless_typed_absent(tables) -> None:
    # per-gene typing: KIR3DL2 not typed (unknown) counts as present, NEG as absent
    unknown, w = scores(A03, per_gene(D2DL1="POS", D3DL2="NA"), tables)
    typed_absent, _ = scores(A03, per_gene(D2DL1="POS"), tables)
    assert unknown == (0, 2, "1.79")          # 2DL1 mKIR, 3DL2-A*03 iKIR
    assert typed_absent == (1, 1, "0.99")
    assert not any("kir_l_score" in x for x in w)


def test_unknown_ligand_propagates(tables) -> None:
    # HLA-C untyped: KIR2DL1's ligand may or may not be there -> unknown, but a
    # donor without C-ligand KIR keeps its value (only 3DL1-Bw4 matters)
    hla = "A*02:01+A*01:01^B*07:02+B*44:02"
    got, warnings = scores(hla, "KIR2DL1+KIR3DL1", tables)
    assert got == ("", 2, "")
    assert "unknown(kir_l_score: hla_untyped)" in warnings
    assert scores(hla, "KIR3DL1", tables)[0] == (-1, 1, "0.80")


def test_wkir_weights_option(tables) -> None:
    got, _ = scores(C1C2_BW4, "KIR2DL1+KIR2DL3+KIR3DL1+KIR3DL2", tables,
                    wkir_weights=(1.0, 0.0, 2.0))
    assert got == (-2, 4, "5.00")
    r = make_person("R", C1C2_BW4, tables=tables)
    d = make_person("D", DONOR_HLA, "KIR2DL1", tables=tables)
    res = assess_pair(r, d, Options(wkir_weights=[0.5, 0.5, 0.5]), tables=tables)
    assert res.options["wkir_weights"] == [0.5, 0.5, 0.5]
    assert model_of("wkir_score").options == ("wkir_weights",)


def _ctutools_score_krieger(kir: dict[str, str], c_group: str, b_class: str,
                            hla_a: str) -> tuple[int, int, float]:
    """CTUtools' score_krieger, re-derived from its documented rules (R/scores.R)."""
    def present(g: str) -> bool:
        return kir[g] != "NEG"

    a11 = "11:" in hla_a
    a3a11 = a11 or "03:" in hla_a
    inhib = [("2DL1", "C2" in c_group), ("2DL2", "C1" in c_group), ("2DL3", "C1" in c_group),
             ("3DL1", "Bw4" in b_class), ("3DL2", a3a11)]
    act = [("2DS1", "C2" in c_group), ("2DS2", a11), ("2DS4", a11), ("2DS5", "C2" in c_group)]
    i = sum(1 for g, lig in inhib if present(g) and lig)
    m = sum(1 for g, lig in inhib if present(g) and not lig)
    a = sum(1 for g, lig in act if present(g) and lig)
    return -i + m + a, i + m, round(0.80 * i + 0.14 * a + 0.99 * m, 2)


def test_ctutools_cross_check(tables, golden) -> None:
    """Every DKMS typing CTUtools stores, against 300 random recipients: the
    batch engine's scores equal CTUtools' definition on every pair."""
    from kirmatch.ligands import LigandResolver

    rng = random.Random(17)
    common = golden.COMMON
    donors = {f"D{i}": ";".join(f"{g}={v}" for g, v in zip(DKMS_GENES, row, strict=True))
              for i, row in enumerate(DKMS_ROWS, 1)}
    recipients = {}
    for j in range(300):
        alleles = {loc: (rng.choice(common[loc]), rng.choice(common[loc])) for loc in "ABC"}
        recipients[f"R{j}"] = alleles
    genotypes = pd.DataFrame(
        [(pid, "^".join("+".join(a) for a in al.values()), "") for pid, al in
         recipients.items()] + [(pid, DONOR_HLA, kir) for pid, kir in donors.items()],
        columns=["sample_id", "hla", "kir"])
    pairs = pd.DataFrame([(r, d) for r in recipients for d in donors],
                         columns=["recipient_id", "donor_id"])
    out = assess_pairs(genotypes, pairs, tables=tables)
    resolver = LigandResolver(tables)
    summary = {}
    for pid, al in recipients.items():
        gl = "^".join("+".join(a) for a in al.values())
        s = resolver.summarize(resolver.resolve_genotype(make_person(pid, gl).hla))
        summary[pid] = (s.c_group, s.b_class, "/".join(a.split("*")[1] for a in al["A"]))
    agree = 0
    for row in out.itertuples(index=False):
        kir = dict(zip(DKMS_GENES, DKMS_ROWS[int(row.donor_id[1:]) - 1], strict=True))
        exp = _ctutools_score_krieger(kir, *summary[row.recipient_id])
        got = (int(row.kir_l_score), int(row.imkir_score), float(row.wkir_score))
        agree += got == exp
    assert agree == len(pairs) == 6000


def test_donor_kir3dl1_class_in_pair_output(tables) -> None:
    r = make_person("R", C1C2_BW4, tables=tables)
    d = make_person("D", DONOR_HLA, "KIR3DL1*005+KIR3DL1*001+KIR3DS1*013", tables=tables)
    res = assess_pair(r, d, tables=tables)
    assert res.to_dict()["facts"] == {"donor_kir3dl1_class": "L"}   # L > H > N
    assert "facts" not in res.to_row()
    gene_level = assess_pair(r, make_person("D", DONOR_HLA, "KIR3DL1", tables=tables),
                             tables=tables)
    assert gene_level.to_dict()["facts"] == {"donor_kir3dl1_class": ""}
    assert "KIR3DL2" not in CONTENT_GENES  # rule 9 does not read the framework gene


def test_cli_wkir_weights() -> None:
    from kirmatch.cli.main import app
    from typer.testing import CliRunner

    args = ["pair", "--recipient-hla", C1C2_BW4, "--donor-hla", DONOR_HLA,
            "--donor-kir", "KIR2DL1+KIR2DL3+KIR3DL1+KIR3DL2", "--json"]
    res = CliRunner().invoke(app, [*args, "--wkir-weights", "1, 0, 2"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert (d["kir_l_score"], d["imkir_score"], d["wkir_score"]) == (-2, 4, "5.00")
    assert d["options"]["wkir_weights"] == [1.0, 0.0, 2.0]
    for bad, msg in (("1,2", "three numbers"), ("1,x,2", "'x' is not a number")):
        res = CliRunner().invoke(app, [*args, "--wkir-weights", bad])
        assert res.exit_code == 2 and msg in res.output
    text = CliRunner().invoke(app, args[:-1])
    assert "KIR-L -2, imKIR 4, wKIR 3.39" in text.output
    assert "donor KIR3DL1 class unknown" in text.output   # gene-level KIR3DL1
