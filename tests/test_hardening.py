"""Hostile input through the live server: it is data, it stays in its folder, it never crashes.

Every case here goes over real HTTP to waitress started with the production settings
(``wsgi.server_options``), and checks the answer (a 4xx with a ``text/plain`` message) and that
nothing happened on the side: no marker file, no job created, no file outside the job folder.
"""

from __future__ import annotations

import http.client
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from lxml import etree

from tests.conftest import Live, create, phase_of, start_live, wait_final, with_config

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
HARDENING = Path(__file__).parent / "data" / "hardening"


@pytest.fixture
def hard(config, services_dir):
    for path in HARDENING.iterdir():
        shutil.copy(path, services_dir / path.name)
    server = start_live(with_config(config, upload_max_bytes=64 * 1024, form_max_bytes=256 * 1024))
    yield server
    server.stop()


def job_count(http, live, service) -> int:
    return http.get(live.jobs(service)).content.count(b"<uws:jobref")


def job_folders(live) -> set[str]:
    return {p.name for p in live.app.config.work_root.iterdir()}


def assert_usage_error(r: requests.Response, *fragments: str) -> None:
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text.startswith("UsageError: "), r.text[:300]
    assert "Traceback" not in r.text
    for fragment in fragments:
        assert fragment in r.text, (fragment, r.text[:300])


def env_of(http, url) -> dict[str, str]:
    raw = http.get(f"{url}/results/env").content.decode()
    return dict(item.split("=", 1) for item in raw.split("\0") if item)


def raw_get(live: Live, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET an exact path (no client-side normalisation of ``..`` or ``%2e``)."""
    parts = urlsplit(live.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


# -- shell metacharacters, newlines, NUL, long strings in every parameter --------------------

SHELL_PAYLOADS = [
    "$(touch {m})",
    "`touch {m}`",
    "1; touch {m}",
    "1 && touch {m}",
    "1 | touch {m}",
    "1\ntouch {m}",
    "1\r\ntouch {m}",
    "${{IFS}}touch${{IFS}}{m}",
    "1 > {m}",
    "1\x00touch {m}",
    "'1'\"2\"",
    "9" * 70000,
]
TYPED = ["b", "ub", "s", "i", "l", "f", "d", "ia", "da", "o"]
"""Every non-free-text parameter of the ``alltypes`` service (one per datatype, arrays, OPTIONs)."""


def test_typed_parameters_refuse_shell_payloads_at_every_entry_point(hard, http, tmp_path):
    marker = tmp_path / "pwned"
    pending = create(http, hard, "alltypes")
    before = job_count(http, hard, "alltypes")
    tried = 0
    for name in TYPED:
        for template in SHELL_PAYLOADS:
            value = template.format(m=marker)
            for target, data in (
                (hard.jobs("alltypes"), {name: value, "PHASE": "RUN"}),
                (f"{pending}/parameters", {name: value}),
                (pending, {name: value}),
            ):
                r = http.post(target, data=data, allow_redirects=False)
                assert_usage_error(r, name)
                tried += 1
    assert tried == len(TYPED) * len(SHELL_PAYLOADS) * 3
    assert job_count(http, hard, "alltypes") == before
    # The pending job kept its defaults; nothing ran, nothing was touched.
    doc = etree.fromstring(http.get(pending).content)
    assert phase_of(doc) == "PENDING"
    params = {p.get("id"): p.text for p in doc.iter(f"{UWS}parameter")}
    assert params["i"] == "1" and params["ia"] == "1 2" and params["o"] == "a"
    assert not marker.exists()


def test_free_text_reaches_the_script_byte_for_byte_from_every_entry_point(hard, http, tmp_path):
    marker = tmp_path / "pwned"
    nasty = (
        f"$(touch {marker}) `touch {marker}` ; touch {marker} && echo '\"\n\r\t{{a,b}} * ~ "
        f"$HOME ${{PATH}} \\ |& > {marker} %s %n \x1b[31m ✓ é 𝄞"
    )
    longest = "€" * (64 * 1024 // 3)  # at the byte limit in UTF-8
    typed = {"b": "TRUE", "ub": "255", "s": "-32768", "i": " 7 ", "l": "9223372036854775807"}
    # creation, POST /parameters, POST to the job URI: each value must arrive untouched.
    url = create(http, hard, "alltypes", {"c": nasty, **typed})
    r = http.post(f"{url}/parameters", data={"U": longest}, allow_redirects=False)
    assert r.status_code == 303, r.text
    r = http.post(url, data={"o": "b c", "ia": " 3\t4 ", "PHASE": "RUN"}, allow_redirects=False)
    assert r.status_code == 303, r.text
    assert phase_of(wait_final(http, url)) == "COMPLETED"
    env = env_of(http, url)
    assert env["c"] == nasty
    assert env["u"] == longest
    assert env["o"] == "b c" and env["ia"] == "3 4"
    assert (env["b"], env["ub"], env["s"], env["i"]) == ("true", "255", "-32768", "7")
    assert env["l"] == "9223372036854775807"
    assert not marker.exists()
    # The value XML cannot carry (ESC) is given by reference and served back unchanged.
    doc = etree.fromstring(http.get(url).content)
    param = {p.get("id"): p for p in doc.iter(f"{UWS}parameter")}["c"]
    assert param.get("byReference") == "true"
    assert http.get(f"{url}/parameters/c").text == nasty


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"c": "a\x00b"}, "NUL"),
        ({"u": "x" * (64 * 1024 + 1)}, "longer than 65536 bytes"),
        ({"u": "é" * (32 * 1024 + 1)}, "longer than 65536 bytes"),  # chars fit, bytes do not
        ({"a\x01b": "1"}, "control characters"),
        ({"": "1"}, "empty"),
        ({"x" * 129: "1"}, "longer than 128"),
        ({f"p{i}": "1" for i in range(201)}, "more than 200 parameters"),
    ],
)
def test_values_and_names_the_script_or_xml_cannot_carry_are_400(hard, http, data, message):
    before = job_folders(hard)
    r = http.post(hard.jobs("alltypes"), data=data, allow_redirects=False)
    assert_usage_error(r, message)
    url = create(http, hard, "alltypes")
    assert_usage_error(http.post(f"{url}/parameters", data=data, allow_redirects=False), message)
    assert job_folders(hard) == before | {url.rsplit("/", 1)[1]}


def test_unknown_names_are_recorded_as_data_and_never_reach_the_script(
    hard, http, tmp_path, assert_valid
):
    marker = tmp_path / "pwned"
    hostile = {
        f"$(touch {marker})": "1",
        "a b;c": f"`touch {marker}`",
        "../../etc/passwd": "x",
        "LD_PRELOAD": "/tmp/evil.so",
        "BASH_ENV": f"{marker}",
        "x\ny": "2",
        "é": "3",
    }
    url = create(http, hard, "alltypes", {**hostile, "PHASE": "RUN"})
    assert phase_of(wait_final(http, url)) == "COMPLETED"
    env = env_of(http, url)
    for name in hostile:
        assert name not in env
    assert not marker.exists()
    doc = assert_valid(http.get(url).content)
    params = {p.get("id"): p.text for p in doc.iter(f"{UWS}parameter")}
    assert params["../../etc/passwd"] == "x" and params["x\ny"] == "2"


# -- uploads, result ids and downloads stay inside the job folder -------------------------------


def multipart(fields: list[tuple[str, bytes, bytes | None]]) -> tuple[bytes, str]:
    """A multipart body with exact bytes in names and filenames (clients would escape them)."""
    boundary = "xyzzy0boundary"
    out = b""
    for name, content, filename in fields:
        out += f"--{boundary}\r\n".encode()
        disposition = b'Content-Disposition: form-data; name="' + name.encode() + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        out += disposition + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "filename",
    [
        b"../../../../tmp/evil.txt",
        b"/etc/passwd",
        b"..\\..\\windows\\evil.txt",
        b"a\r\nContent-Type: text/html\r\n\r\n<script>",
        b"\xff\xfe not UTF-8.txt",
        b"odd \x01 \x7f bytes.txt",
        b"\xc3\xa9t\xc3\xa9 \xe2\x80\xaetxt.exe",
        b".hidden",
        b"x" * 400,
        b'semi;colon" quote.txt',
    ],
)
def test_upload_names_never_leave_the_job_folder(hard, http, tmp_path, filename, assert_valid):
    root = hard.app.config.work_root
    outside = set(root.parent.iterdir())
    body, ctype = multipart(
        [("target", b"t", None), ("data", b"12345", filename), ("PHASE", b"RUN", None)]
    )
    before = job_folders(hard)
    r = http.post(
        hard.jobs("required"), data=body, headers={"Content-Type": ctype}, allow_redirects=False
    )
    if b"\r\n" in filename or b"\xff" in filename:
        # A raw line break ends the part's headers, and Werkzeug drops a form whose part
        # headers are not UTF-8: either way a 400, and no job.
        assert_usage_error(r)
        assert job_folders(hard) == before
        return
    assert r.status_code == 303, r.text
    url = r.headers["Location"]
    assert phase_of(wait_final(http, url)) == "COMPLETED"
    job_dir = root / url.rsplit("/", 1)[1]
    # The upload is saved under the Used entity's own name, whatever the client called it.
    assert sorted(p.name for p in job_dir.iterdir()) == [".opus", "data.bin", "size.txt"]
    assert set(root.parent.iterdir()) == outside
    assert not Path("/tmp/evil.txt").exists()
    download = http.get(f"{url}/parameters/data")
    assert download.content == b"12345"
    disposition = download.headers["Content-Disposition"]
    assert disposition == 'inline; filename="data.bin"'
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert_valid(http.get(url).content)


def test_result_and_parameter_paths_cannot_reach_other_files(hard, http):
    url = create(http, hard, "echo", {"text": "x", "PHASE": "RUN"})
    assert phase_of(wait_final(http, url)) == "COMPLETED"
    path = urlsplit(url).path
    secret_markers = (b"root:", b"#!/", b"set -e", b"opus")
    cases = [
        "/results/..%2f..%2f..%2f..%2fetc%2fpasswd",
        "/results/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/results/../../../../etc/passwd",
        "/results/.opus/script.sh",
        "/results/.opus%2fscript.sh",
        "/results/%2fetc%2fpasswd",
        "/results//etc/passwd",
        "/results/%00",
        "/results/stdout%00.txt",
        "/results/%ff%fe",
        "/parameters/..%2f.opus%2fscript.sh",
        "/parameters/%2fetc%2fpasswd",
        "/parameters/%00",
    ]
    for case in cases:
        status, headers, body = raw_get(hard, path + case)
        if status == 308:  # "//" merged: a redirect that stays inside the job
            assert headers["location"].startswith(url + "/"), (case, headers)
            continue
        assert status in (400, 404), (case, status, body[:200])
        assert headers["content-type"].startswith("text/plain"), case
        assert not any(m in body for m in secret_markers if m != b"opus"), (case, body[:200])
    for case in ("/rest/%00", "/rest/echo/%ff%fe", "/rest/echo/..%2f..%2fetc", "/rest/..%2fetc"):
        status, _, body = raw_get(hard, case)
        assert status == 404 and b"root:" not in body, (case, status)


def test_symlinked_results_pointing_outside_are_not_served(hard, http, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    url = create(http, hard, "linker", {"target": str(secret), "PHASE": "RUN"})
    doc = wait_final(http, url)
    assert phase_of(doc) == "COMPLETED"
    results = {r.get("id") for r in doc.iter(f"{UWS}result")}
    assert results == {"ok", "stdout", "stderr"}  # leak.txt and sub/deep.txt are not results
    for result in ("leak", "deep", "deep_1"):
        r = http.get(f"{url}/results/{result}")
        assert r.status_code == 404 and "TOP-SECRET" not in r.text
    # An HTML result is served, but sandboxed: its scripts cannot run in this origin.
    html = http.get(f"{url}/results/ok")
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    assert "sandbox" in html.headers["Content-Security-Policy"]
    assert html.headers["Content-Disposition"] == 'inline; filename="ok.txt"'


# -- request size limits -------------------------------------------------------------------------


def test_upload_beyond_the_limit_is_413_and_leaves_nothing(hard, http):
    limit = hard.app.config.upload_max_bytes
    before = job_folders(hard)
    r = http.post(
        hard.jobs("required"),
        data={"target": "t"},
        files={"data": ("big.bin", b"x" * (limit + 1))},
        allow_redirects=False,
    )
    assert r.status_code == 413 and r.text.startswith("TooLarge: "), r.text[:200]
    assert job_folders(hard) == before
    # Well beyond: refused from the Content-Length before the body is read.
    r = http.post(
        hard.jobs("required"),
        data={"target": "t"},
        files={"data": ("big.bin", b"x" * (limit * 8))},
        allow_redirects=False,
    )
    assert r.status_code == 413
    assert job_folders(hard) == before
    assert job_count(http, hard, "required") == 0


def test_chunked_body_without_length_is_cut_off(hard, http):
    config = hard.app.config
    total = config.upload_max_bytes + config.form_max_bytes + 200_000

    def chunks():
        sent = 0
        while sent < total:
            sent += 8192
            yield b"y" * 8192

    before = job_folders(hard)
    r = http.post(
        hard.jobs("echo"),
        data=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    )
    assert r.status_code == 413
    assert job_folders(hard) == before


def test_form_without_files_is_held_to_the_form_limit(hard, http):
    r = http.post(
        hard.jobs("echo"),
        data={"text": "z" * (hard.app.config.form_max_bytes + 1)},
        allow_redirects=False,
    )
    assert r.status_code == 413 and r.text.startswith("RequestEntityTooLarge")


# -- malformed control values ----------------------------------------------------------------------

BAD_CONTROLS = {
    "WAIT": ["", "abc", "1.5", "1e3", "0x10", "9999999999999", "½", "5 5"],
    "LAST": ["", "0", "-1", "1.5", "abc", "99999999999999", "1e2"],
    "AFTER": [
        "",
        "yesterday",
        "2024-13-01",
        "2024-02-30T00:00:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-05:00",
        "x" * 100,
    ],
    "PHASE": ["", "DONE", "RUN;", "run\x00", "EXECUTING,COMPLETED"],
    "DESTRUCTION": [
        "",
        "tomorrow",
        "2024-02-30T00:00:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-05:00",
        "2024-01-01T25:00:00Z",
    ],
    "EXECUTIONDURATION": ["", "1.5", "-1", "ten", "1e3", "9999999999999", "0x10"],
    "RUNID": ["a\x00b", "r" * 257],
    "ACTION": ["", "REMOVE", "delete;rm"],
}


def test_malformed_control_values_are_400_everywhere(hard, http):
    url = create(http, hard, "sleep", {"seconds": "30", "PHASE": "RUN"})
    pending = create(http, hard, "echo")
    jobs = hard.jobs("echo")
    tried = 0

    def check(r: requests.Response, control: str) -> None:
        nonlocal tried
        tried += 1
        assert_usage_error(r)
        assert control in r.text.upper() or control == "PHASE", r.text

    for raw in BAD_CONTROLS["WAIT"]:
        check(http.get(url, params={"WAIT": raw}), "WAIT")
    check(http.get(url, params={"WAIT": "1", "PHASE": ["QUEUED", "EXECUTING"]}), "PHASE")
    for control in ("LAST", "AFTER", "PHASE"):
        for raw in BAD_CONTROLS[control]:
            check(http.get(jobs, params={control: raw}), control)
    for raw in BAD_CONTROLS["PHASE"]:
        check(http.post(jobs, data={"PHASE": raw}, allow_redirects=False), "PHASE")
        check(http.post(f"{pending}/phase", data={"PHASE": raw}, allow_redirects=False), "PHASE")
        check(http.post(pending, data={"PHASE": raw}, allow_redirects=False), "PHASE")
    for control, resource in (
        ("DESTRUCTION", "destruction"),
        ("EXECUTIONDURATION", "executionduration"),
    ):
        for raw in BAD_CONTROLS[control]:
            check(http.post(jobs, data={control: raw}, allow_redirects=False), control)
            check(
                http.post(f"{pending}/{resource}", data={control: raw}, allow_redirects=False),
                control,
            )
        check(http.post(f"{pending}/{resource}", data={}, allow_redirects=False), control)
    for raw in BAD_CONTROLS["RUNID"]:
        check(http.post(jobs, data={"RUNID": raw}, allow_redirects=False), "RUNID")
        check(http.post(pending, data={"runId": raw}, allow_redirects=False), "RUNID")
        check(
            http.post(f"{pending}/parameters", data={"RUNID": raw}, allow_redirects=False), "RUNID"
        )
    for raw in BAD_CONTROLS["ACTION"]:
        check(http.post(pending, data={"ACTION": raw}, allow_redirects=False), "ACTION")
    assert tried == 80
    # None of it changed the jobs or created one.
    assert http.get(f"{pending}/phase").text == "PENDING"
    assert job_count(http, hard, "echo") == 1
    http.delete(url)


# -- XML with DTDs, external entities and entity bombs ------------------------------------------


@pytest.fixture
def listener():
    """A local TCP socket that records whether anybody connected to it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    sock.setblocking(False)
    yield sock
    sock.close()


def nobody_connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


def hostile_votable(secret: Path, port: int) -> str:
    bomb = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    return (
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE VOTABLE SYSTEM "http://127.0.0.1:{port}/votable.dtd" [\n'
        f'<!ENTITY file SYSTEM "file://{secret}">\n'
        f'<!ENTITY net SYSTEM "http://127.0.0.1:{port}/x">\n'
        f'<!ENTITY % remote SYSTEM "http://127.0.0.1:{port}/p.dtd"> %remote;\n'
        f"{bomb}\n]>\n"
        '<VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3" version="1.3">\n'
        '<RESOURCE name="xxe" type="meta" utype="voprov:ActivityDescription">\n'
        "<DESCRIPTION>&file;&net;&lol9;</DESCRIPTION>\n"
        '<PARAM name="script" datatype="char" arraysize="*" value="true"/>\n'
        "</RESOURCE></VOTABLE>\n"
    )


def test_hostile_service_file_is_refused_without_reading_files_or_network(
    config, services_dir, tmp_path, listener, http
):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    (services_dir / "xxe.xml").write_text(hostile_votable(secret, listener.getsockname()[1]))
    server = start_live(config)
    try:
        problems = [str(p) for p in server.app.problems]
        assert len(problems) == 1 and "xxe.xml" in problems[0]
        assert "DOCTYPE declarations (DTDs, entities) are not allowed" in problems[0]
        assert "TOP-SECRET" not in repr(problems)
        r = http.get(server.jobs("xxe"))
        assert r.status_code == 404
        assert http.get(server.jobs("echo")).status_code == 200  # the others still load
    finally:
        server.stop()
    assert nobody_connected(listener)


def test_uploaded_votable_is_opaque_data_never_parsed(hard, http, tmp_path, listener):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    payload = hostile_votable(secret, listener.getsockname()[1]).encode()
    url = create(
        http,
        hard,
        "required",
        {"target": "t", "PHASE": "RUN"},
        files={"data": ("table.xml", payload, "application/x-votable+xml")},
    )
    assert phase_of(wait_final(http, url)) == "COMPLETED"
    # The script saw exactly the bytes sent (no entity expanded), and the server fetched nothing.
    assert http.get(f"{url}/results/size").text == f"{len(payload)}\nt\n"
    assert http.get(f"{url}/parameters/data").content == payload
    assert nobody_connected(listener)


# -- headers ---------------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers(hard, http):
    url = create(http, hard, "echo", {"PHASE": "RUN"})
    wait_final(http, url)
    responses = {
        "list": http.get(hard.jobs("echo")),
        "job": http.get(url),
        "text": http.get(f"{url}/phase"),
        "result": http.get(f"{url}/results/output"),
        "redirect": http.post(hard.jobs("echo"), data={}, allow_redirects=False),
        "404": http.get(f"{url}/results/none"),
        "400": http.get(hard.jobs("echo"), params={"LAST": "x"}),
        "405": http.put(url),
        "413": http.post(hard.jobs("echo"), data={"text": "x" * 300_000}, allow_redirects=False),
    }
    for label, r in responses.items():
        h = r.headers
        assert h["X-Content-Type-Options"] == "nosniff", label
        assert h["X-Frame-Options"] == "DENY", label
        assert h["Referrer-Policy"] == "no-referrer", label
        assert "default-src 'none'" in h["Content-Security-Policy"], label
        assert "sandbox" in h["Content-Security-Policy"], label
        expected = "private, no-cache" if label == "result" else "no-store"
        assert h["Cache-Control"] == expected, label
        if r.status_code >= 400:
            assert h["Content-Type"].startswith("text/plain"), label
            assert "Traceback" not in r.text and "<html" not in r.text.lower(), label
