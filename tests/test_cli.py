"""The `opus-min` command line, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import SERVICES


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "opus_min", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_check_bundled_services_is_clean():
    out = run("check", str(SERVICES))
    assert out.returncode == 0, out.stdout + out.stderr
    names = sorted(p.stem for p in SERVICES.glob("*.xml"))
    assert f"{len(names)} service(s) loaded, 0 problem(s)" in out.stdout
    assert {"echo", "fail", "sleep", "simulate_events", "counts_map"} <= set(names)
    for name in names:
        assert f"ok      {name}" in out.stdout


def test_check_reports_every_problem_and_fails(tmp_path):
    (tmp_path / "good.xml").write_bytes(
        (SERVICES / "echo.xml").read_bytes().replace(b'"echo"', b'"good"')
    )
    (tmp_path / "good.sh").write_text("true\n")
    (tmp_path / "broken.xml").write_text(
        '<?xml version="1.0"?>\n<VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3"'
        ' version="1.3">\n<RESOURCE name="broken" type="meta"'
        ' utype="voprov:ActivityDescription">\n<GROUP name="InputParams">\n'
        '<PARAM name="n" datatype="integer" value="1"/>\n</GROUP></RESOURCE></VOTABLE>\n'
    )
    out = run("check", str(tmp_path))
    assert out.returncode == 1
    assert "ok      good" in out.stdout
    assert f"{tmp_path / 'broken.xml'}:5:" in out.stdout
    assert "1 service(s) loaded" in out.stdout


def test_bad_configuration_is_a_clear_error(tmp_path):
    (tmp_path / "c.toml").write_text("nonsense = 1\n")
    out = run("--config", str(tmp_path / "c.toml"), "check")
    assert out.returncode == 2 and "unknown configuration key 'nonsense'" in out.stderr
