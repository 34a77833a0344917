"""The 20 DKMS-style KIR typings stored by DKMS CTUtools all read without failing.

The typing strings below are transcribed, as test inputs, from the 20 data rows
of ``tests/testthat/scores_check.csv`` in DKMS CTUtools (GitHub
``bosefalk/CTUtools``, commit 1e364495fa00f976fd04e063abb25ca501099ab0), columns
``kir2dl1`` … ``kir3dp1`` in the order of :data:`GENES` below (facts, not code:
CTUtools' licence forbids copying its code or data files). Before the DKMS
conventions were supported, 11 of the 20 failed: 10 on KIR2DL5A/B letters
(``001A/006B/008B/012A``), one on the retired name KIR2DP1*005, and every row
once the ``2DS4N`` column sits next to ``2DS4`` in one string ("given twice").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kirmatch.kir import GeneState, KIRGeneTyping, kir_features, parse_kir_genotype
from kirmatch.readers import read_kir

GENES = ("2DL1", "2DL2", "2DL3", "2DL4", "2DL5", "2DS1", "2DS2", "2DS3", "2DS4", "2DS4N",
         "2DS5", "3DL1", "3DL2", "3DL3", "3DS1", "2DP1", "3DP1")
ROWS = [
    ('003/009/015/018/033/034+004|003/009/015/018/033/034+010|006+010', '001/002/005|008/010',
     '001/003/007/012/021/024', '001/022/026/033+008', '002B/005A/010B/021A', 'NEG',
     '001/002|006', '001/007', '001/017|011', '006', 'NEG', '002+004/091',
     '001/010/085/086/091/096/100/108+026|002/055/063/075/092/094/098/101/102/107+003/011',
     '010/060+020|011+028', 'NEG', '001+002', '001/003/004/009+003'),
    ('001/002+003/034', 'NEG', '001+005', '005+008', '001A/006B/008B/012A', '002', 'NEG', 'NEG',
     'NEG', '003', '002', '001/095', '001/100+007|006+010', '010+025', '013/107', '002+016',
     '001+014'),
    ('003', '003', '001', '006+008', 'NEG', 'NEG', '001', 'NEG', 'NEG', '003+004', 'NEG',
     '001+007', '008+009|021+036|038+050', '003+015|009+016', 'NEG', '003',
     '010/011+010/011+010/011|010/011+010/011'),
    ('003/034', '003', '001', '001+011|005+013', 'NEG', 'NEG', '001', 'NEG', '001/017', '010',
     'NEG', '005+015', '001/100+107|002/101/102+010', '001+003', 'NEG', '002',
     '001/003/004/009+001/003/004/009'),
    ('004', '003+001', 'NEG', 'POS', '002B/005A/010B+002B/005A/010B', '002|002',
     '001/002+001|001+001', '001/007+002', 'NEG', '006', 'NEG', '004', '005+007|011+043',
     '003+007', '013/107', '001', 'POS'),
    ('001/002+003/034', 'NEG', '001+002', 'POS', '001A/006B/008B/012A', '002', 'NEG', 'NEG',
     'NEG', '003', '002', '001', '001/100+007|006+010', '002+001|009+013', '013/107', 'POS',
     '001/003/004/009+005'),
    ('001/002+003/009/015/018/033/034', 'NEG', '001/003/007/012/021/024+002/003/007/012/021/024',
     'POS', 'NEG', 'NEG', 'NEG', 'NEG', 'NEG', '003+006', 'NEG', '001/016/026/067/095+004/091',
     '001/010/085/086/091/096/100/108+020', '001/065+002|009+013', 'NEG', '002+003',
     '002+006|010+001'),
    ('003/034+003/034', 'NEG', '001+001', '001+005|001+005', '001A/006B/008B/012A', '002', 'NEG',
     'NEG', '001/017', 'NEG', '002', '015/017', '002/101/102+007|006+107|010+015', '001+009',
     '013/107', '002+002', '001/003/004/009+001/003/004/009'),
    ('001/002+004', '001', '002', '008+011', '002B/005A/010B', 'NEG', '001', '001/007', 'NEG',
     '006+010', 'NEG', '004+005', '001/100+003', '001+003', 'NEG', '001+003', '003+006'),
    ('003/034+003/034', 'NEG', '001+001', '001+005', '001A/006B/008B/012A', '002', 'NEG', 'NEG',
     'NEG', '003', '002', '008', '007+009|010+019', '001+002|009+013', '013/107', '002+005',
     '001/003/004/009+001/003/004/009'),
    ('001/002', '003', '002', '006+011', 'NEG', 'NEG', '001', 'NEG', 'NEG', '004+010', 'NEG',
     '005+007/102', '001/100+008|038+108', '004+013|014+026', 'NEG', '003',
     '001/003/004/009+001/003/004/009+015'),
    ('003/034', '001', '001', '001+008', 'NEG', 'NEG', '001', 'NEG', 'NEG', '003+003', 'NEG',
     '001/095+008', '009+011|010+062', '003+015|009+016', 'NEG', '005',
     '001/003/004/009+001/003/004/009'),
    ('001+007', '001', '002', 'POS', 'POS', 'POS', '001/002|001', '001/007|002', 'NEG', 'NEG',
     '002+002|002+015', 'NEG', 'POS', '001+003', '013/107+013/107', '001+003', 'POS'),
    ('001/002+003/034', 'NEG', 'POS', '001+008', 'NEG', 'NEG', 'NEG', 'NEG', '001/017', '006',
     'NEG', '002+004', '002/101/102+009', '002+001|009+013', 'NEG', 'POS',
     '001/003/004/009+006|010/011+015'),
    ('001/002', '001', '002', '001+008', 'NEG', 'NEG', '001/002|001', 'NEG', '001/017|017', '003',
     'NEG', '001/095+020', '009+011|010+062', '001+020|003+017', 'NEG', '003',
     '001/003/004/009+006|010/011+015'),
    ('001/002+003/034', 'NEG', '001+002', '011+011', 'NEG', 'NEG', 'NEG', 'NEG', 'NEG', '010+010',
     'NEG', '005+005', '001/100+001/100', '002+017|011+013', 'NEG', '003+008',
     '001/003/004/009+006|010/011+015'),
    ('001/002', '003', '002', '001+005', 'POS', '002|002', '001/002|001', '002', 'NEG', '003',
     'NEG', '008', 'POS', '001+016|003+006', '013/107', '003', '001/003/004/009+005'),
    ('001/002', '001', '002/003/007/012/021/024', '005+011', '002B/005A/010B', '002|002',
     '001/002|001', '002', 'NEG', '010', 'NEG', '005', '001/100+007|006+010', '020+021', '013',
     '003', '001/003/004/009+015'),
    ('003/034+004|006+010', '001', '001', '001+011|005+013', '002B/005A/010B', 'NEG', '001|001',
     '001', '001|017', '010', 'NEG', '005+015/017', '001/100+107|002/101/102+010',
     '002+004|008+014', 'NEG', '001+002', '003+010/011'),
    ('004+007', '001/002/005+001/002/005|001/002/005+008/010', 'NEG',
     '005/012/024/025/031/037+008',
     '001A/006B/008B/011B/012A/020B+002B/005A/010B/021A+002B/005A/010B/021A', '002',
     '001/002+001/002', '001/007+001/007|001/007+002', 'NEG', '006', '002|015', '004/091',
     '003/011+006/007/088/090', '003+003', '013/082/107', '001+001', '003+003'),
]


def _meaning(t: KIRGeneTyping) -> tuple:
    return (t.state, t.genotypes, t.variant, tuple(_meaning(p) for p in t.parts))


def _string(row: tuple[str, ...]) -> str:
    return ";".join(f"{g}={v}" for g, v in zip(GENES, row, strict=True))


@pytest.mark.parametrize("row", ROWS, ids=[f"row{i}" for i in range(1, len(ROWS) + 1)])
def test_ctutools_row_reads(tables, row: tuple[str, ...]) -> None:
    g = parse_kir_genotype(_string(row), tables)
    values = dict(zip(GENES, row, strict=True))
    for gene, value in values.items():
        if gene in ("2DS4", "2DS4N"):
            continue
        state = g.gene(f"KIR{gene}").state
        assert state is (GeneState.ABSENT if value == "NEG" else GeneState.PRESENT), gene
    # 2DS4 and 2DS4N are one KIR2DS4 typing; DKMS keeps full-length alleles in
    # kir2ds4 and deletion alleles in kir2ds4N, so full length follows kir2ds4.
    ds4 = g.gene("KIR2DS4")
    assert ds4.state is (GeneState.ABSENT if values["2DS4"] == values["2DS4N"] == "NEG"
                         else GeneState.PRESENT)
    fl = kir_features(g, tables).kir2ds4_full_length
    assert fl.known and fl.value is (values["2DS4"] != "NEG")
    # KIR2DL5 alleles keep their paralog.
    if values["2DL5"] not in ("NEG", "POS"):
        names = {a.split("*")[0] for alt in g.gene("KIR2DL5").genotypes for c in alt for a in c}
        assert names <= {"KIR2DL5A", "KIR2DL5B"}
    # The only retired name among them: KIR2DP1*005, now KIR2DP1*0020110.
    renamed = "kir_allele_renamed(KIR2DP1*005 -> KIR2DP1*0020110)"
    assert (renamed in g.warnings) is ("005" in values["2DP1"].split("+"))
    # The canonical string reads back the same (warnings aside: the new name is written).
    again = parse_kir_genotype(g.to_string(), tables)
    assert [_meaning(t) for t in again.genes] == [_meaning(t) for t in g.genes]


def test_ctutools_rows_through_the_matrix_reader(tables, tmp_path: Path) -> None:
    path = tmp_path / "dkms.csv"
    lines = ["sample_id," + ",".join(f"kir_{g}" for g in GENES)]
    lines += [f"S{i}," + ",".join(row) for i, row in enumerate(ROWS, 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = read_kir(path, tables=tables)
    assert len(res.genotypes) == 20
    for i, row in enumerate(ROWS, 1):
        direct = parse_kir_genotype(_string(row), tables)
        got = res.genotypes[f"S{i}"]
        assert [(t.state, t.genotypes) for t in got.genes] == \
            [(t.state, t.genotypes) for t in direct.genes]
