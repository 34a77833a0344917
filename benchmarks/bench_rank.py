"""Cold-start time of `kirmatch rank` for 1 recipient x 6 donors (new process each
run), with and without an antigen-level antibody screen (which opens py-ard).
Run: python benchmarks/bench_rank.py [--runs 3]. Needs a built py-ard database
($KIRMATCH_PYARD_DIR or `kirmatch data build`). Prints one JSON object."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GENOTYPES = """sample_id,hla,kir
R,A*01:01+A*24:02^B*08:01+B*44:02^C*07:01+C*05:01,KIR2DL1+KIR2DL3+KIR3DL1+KIR2DS4
D1,A*01:01+A*02:01^B*08:01+B*57:01^C*07:01+C*06:02,KIR2DL1+KIR2DL2+KIR2DL3+KIR3DL1+KIR2DS4
D2,A*24:02+A*03:01^B*44:02+B*07:02^C*05:01+C*07:02,KIR2DL1+KIR2DL3+KIR3DL1+KIR2DS4
D3,A*01:01+A*11:01^B*08:01+B*35:01^C*07:01+C*04:01,KIR2DL1+KIR2DL2+KIR2DS2+KIR2DS4
D4,A*24:02+A*32:01^B*44:02+B*51:01^C*05:01+C*15:02,KIR2DL1+KIR2DL3+KIR3DL1*001+KIR2DS4
D5,A*01:01+A*68:01^B*08:01+B*40:01^C*07:01+C*03:04,KIR2DL3+KIR3DL1+KIR2DS4+KIR3DS1+KIR2DS1
D6,A*24:02+A*26:01^B*44:02+B*38:01^C*05:01+C*12:03,KIR2DL1+KIR2DL2+KIR2DL3+KIR3DL1+KIR2DS2
"""
PAIRS = "recipient_id,donor_id,donor_age,donor_sex,recipient_sex,relationship\n" + "".join(
    f"R,D{i},{20 + 5 * i},{'M' if i % 2 else 'F'},F,{r}\n"
    for i, r in zip(range(1, 7), ["sibling", "child", "father", "mother", "sibling", "other"],
                    strict=True))
ANTIBODIES = "recipient_id,specificity,mfi,c1q\nR,B57,9000,neg\nR,A*11:01,2500,\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    exe = shutil.which("kirmatch") or str(Path(sys.executable).with_name("kirmatch"))
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        dd = Path(d)
        (dd / "g.csv").write_text(GENOTYPES)
        (dd / "p.csv").write_text(PAIRS)
        (dd / "a.csv").write_text(ANTIBODIES)
        base = [exe, "rank", "--genotypes", str(dd / "g.csv"), "--pairs", str(dd / "p.csv")]
        for label, cmd in (("no_antibodies_s", base),
                           ("with_antibodies_s", [*base, "--antibodies", str(dd / "a.csv")])):
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                times.append(time.perf_counter() - t0)
            out[label + "_median"] = round(statistics.median(times), 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
