"""Tests for opus_min.votable.loader: a service folder with good, broken and odd files."""

from __future__ import annotations

import shutil
from pathlib import Path

from opus_min.votable import MAX_FILE_SIZE, Problem, format_problems, load_services

from .test_parse import DATA, line_of, make_doc, param


def test_two_good_one_broken(tmp_path: Path) -> None:
    shutil.copy(DATA / "test_activity_1_vot.xml", tmp_path)
    (tmp_path / "echo.xml").write_text(make_doc(params=param("n"), name="echo"))
    (tmp_path / "echo.sh").write_text("echo $n\n")
    broken = make_doc(params=param("n", "int", "abc"), name="broken")
    (tmp_path / "broken.xml").write_text(broken)
    (tmp_path / "broken.sh").write_text("true\n")

    services, problems = load_services(tmp_path)

    assert sorted(services) == ["echo", "test_activity_1"]
    assert services["echo"].script == "echo $n\n"
    assert services["echo"].script_source == str(tmp_path / "echo.sh")
    assert services["test_activity_1"].script_source.endswith("test_activity_1_vot.xml#script")
    assert problems == [
        Problem(
            str(tmp_path / "broken.xml"),
            line_of(broken, 'name="n"'),
            "invalid default: n: 'abc' is not an int",
        )
    ]


def test_reference_data_folder_loads_every_service() -> None:
    services, problems = load_services(DATA)
    assert problems == []
    assert sorted(services) == ["failjob", "gammapy_maps", "test_activity_1", "test_activity_2"]
    # gammapy_maps has no script PARAM: its script is gammapy_maps.sh beside it.
    assert services["gammapy_maps"].script_source == str(DATA / "gammapy_maps.sh")
    assert services["gammapy_maps"].script.startswith("#!/bin/bash\n")


def test_script_for_opus_vot_naming(tmp_path: Path) -> None:
    (tmp_path / "svc_vot.xml").write_text(make_doc())
    (tmp_path / "svc.sh").write_text("echo from svc.sh\r\n")
    services, problems = load_services(tmp_path)
    assert problems == []
    assert services["svc"].script == "echo from svc.sh\n"
    assert services["svc"].script_source == str(tmp_path / "svc.sh")


def test_missing_script_reported(tmp_path: Path) -> None:
    (tmp_path / "svc.xml").write_text(make_doc())
    services, problems = load_services(tmp_path)
    assert services == {}
    assert problems == [
        Problem(str(tmp_path / "svc.xml"), 2, "no job script: add a `script` PARAM or svc.sh")
    ]


def test_size_cap(tmp_path: Path) -> None:
    big = make_doc(script="echo hi").replace("A test service", "x" * MAX_FILE_SIZE)
    (tmp_path / "big.xml").write_text(big)
    (tmp_path / "ok.xml").write_text(make_doc(name="ok", script="echo ok"))
    services, problems = load_services(tmp_path)
    assert list(services) == ["ok"]
    assert problems == [
        Problem(str(tmp_path / "big.xml"), None, "the file is larger than 1048576 bytes (1 MiB)")
    ]


def test_script_not_utf8_still_reports_xml_problems(tmp_path: Path) -> None:
    doc = make_doc(params=param("PATH"))
    (tmp_path / "svc.xml").write_text(doc)
    (tmp_path / "svc.sh").write_bytes(b"echo \xff\n")
    services, problems = load_services(tmp_path)
    assert services == {}
    assert problems == [
        Problem(str(tmp_path / "svc.sh"), None, "the script is not UTF-8: invalid start byte"),
        Problem(
            str(tmp_path / "svc.xml"),
            line_of(doc, 'ID="PATH"'),
            "parameter 'PATH': the name is reserved (a shell variable)",
        ),
        Problem(str(tmp_path / "svc.xml"), 2, "no job script: add a `script` PARAM or svc.sh"),
    ]


def test_duplicate_service_names(tmp_path: Path) -> None:
    (tmp_path / "svc.xml").write_text(make_doc(script="echo 1"))
    (tmp_path / "svc_vot.xml").write_text(make_doc(script="echo 2"))
    services, problems = load_services(tmp_path)
    assert services["svc"].script == "echo 1"
    assert problems == [
        Problem(
            str(tmp_path / "svc_vot.xml"),
            None,
            f"duplicate service name 'svc' (already defined in {tmp_path / 'svc.xml'})",
        )
    ]


def test_ignores_hidden_and_non_xml_files(tmp_path: Path) -> None:
    (tmp_path / ".#svc.xml").write_text("garbage")
    (tmp_path / "notes.txt").write_text("garbage")
    (tmp_path / "svc.xml").write_text(make_doc(script="echo"))
    services, problems = load_services(tmp_path)
    assert (list(services), problems) == (["svc"], [])


def test_directory_named_xml(tmp_path: Path) -> None:
    (tmp_path / "odd.xml").mkdir()
    services, problems = load_services(tmp_path)
    assert services == {}
    assert problems == [Problem(str(tmp_path / "odd.xml"), None, "not a regular file")]


def test_missing_folder(tmp_path: Path) -> None:
    services, problems = load_services(tmp_path / "nope")
    assert services == {}
    assert problems == [Problem(str(tmp_path / "nope"), None, "the service folder does not exist")]


def test_format_problems() -> None:
    problems = [Problem("a.xml", 3, "bad thing"), Problem("b.xml", None, "worse thing")]
    assert format_problems(problems) == "a.xml:3: bad thing\nb.xml: worse thing"
    assert format_problems([]) == ""
