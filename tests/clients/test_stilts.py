"""STILTS taplint, the off-the-shelf UWS conformance checker, against the live server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

STILTS = shutil.which("stilts")

# CI installs STILTS (.ci/run); elsewhere the test is skipped with a reason rather than faked.
pytestmark = pytest.mark.skipif(
    STILTS is None and not os.environ.get("CI"), reason="STILTS not installed (Debian: stilts)"
)


def test_taplint_uws_stage_is_clean(live):
    assert STILTS is not None, "CI must have STILTS installed"
    out = subprocess.run(
        [
            STILTS,
            "taplint",
            "stages=UWS",
            "interface=tap1.0",
            f"tapurl={live.url}/rest",
            f"asyncurl={live.jobs('echo')}",
            "report=EWISF",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    ).stdout
    totals = re.search(r"^Totals: Errors: (\d+); Warnings: (\d+)", out, re.M)
    assert totals, out
    assert totals.groups() == ("0", "0"), out
    # The stage really exercised the job life cycle, not an empty run.
    for code in ("I-UWS-CJOB-1", "I-UWS-POPA-1", "I-UWS-POPA-3", "I-UWS-VUWS-1"):
        assert code in out, out
    print(re.search(r"^Totals:.*$", out, re.M).group(0))
