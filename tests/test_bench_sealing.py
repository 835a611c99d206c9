"""bench/sealing.py runs (Python figures, briefly) and prints one JSON object
whose figures are positive and whose sizes are the suites'."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_sealing_prints_per_suite_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sealing.py"), "-n", "20"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {"python"}
    py = out["python"]
    assert set(py) == {"x25519", "x-wing"}
    for suite in py.values():
        for op in ("seal", "open", "keygen"):
            assert suite[op]["median_us"] > 0, op
            assert suite[op]["mean_us"] > 0, op
    assert (py["x25519"]["enc_bytes"], py["x-wing"]["enc_bytes"]) == (32, 1120)
    assert (py["x25519"]["hpke_suite"], py["x-wing"]["hpke_suite"]) == (
        "002000010001",
        "647a00010002",
    )
    # The X-Wing key goes in the hello, not the QR code: +46 characters (&x=<43>).
    assert py["x-wing"]["qr_payload_chars"] - py["x25519"]["qr_payload_chars"] == 46
    assert py["x-wing"]["hello_frame_bytes"] < 4096  # the gateway's frame limit
