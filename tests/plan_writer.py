"""Helper for tests/test_output.py: a command that writes a big table through an
OutputPlan until a signal stops it.

    python tests/plan_writer.py OUTPUT READY

Runs under the CLI's own error handling (``kirmatch.cli.main.handle_errors``,
which turns SIGTERM and SIGHUP into an exception). It writes a first chunk,
creates READY so the test knows the temporary file exists and holds rows,
then keeps appending chunks. It exits 99 if no signal
came within two minutes, so a broken test cannot hang.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import typer

from kirmatch.cli.main import handle_errors
from kirmatch.output import OutputPlan

app = typer.Typer(add_completion=False)


@app.command()
@handle_errors
def write(output: Path, ready: Path) -> None:
    """Write OUTPUT slowly; announce the temporary file in READY."""
    n = 20_000
    chunk = pa.table({"recipient_id": [f"=R{i}" for i in range(n)],
                      "score": list(range(n))})
    with OutputPlan({"output": output}) as plan:
        writer = plan.table_writer("output", neutralise=["recipient_id"])
        writer.write(chunk)
        ready.write_text("writing\n")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            writer.write(chunk)
            time.sleep(0.005)
    raise typer.Exit(99)


if __name__ == "__main__":
    app()
