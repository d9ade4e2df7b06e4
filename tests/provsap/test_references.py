"""Inputs given by reference: fetched from a tiny HTTP server on 127.0.0.1, hashed, recorded."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import prov
import pytest

from opus_min.uws.service import _resolve_reference
from tests.conftest import create, phase_of, start_live, wait_final, with_config

TEXT = b"appendix from an archive\n"


class _Archive(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.startswith("/files/notes.txt"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(TEXT)))
            self.end_headers()
            self.wfile.write(TEXT)
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
        elif self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(10_000))
            self.end_headers()
            self.wfile.write(b"y" * 10_000)
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def archive():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Archive)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def rlive(config):
    server = start_live(with_config(config, fetch_timeout=2, upload_max_bytes=5000))
    yield server
    server.stop()


def test_a_url_input_is_fetched_hashed_and_recorded(rlive, http, archive):
    url = create(
        http, rlive, "echo", {"text": "hi", "n": "1", "input": f"{archive}/files/notes.txt"}
    )
    assert http.get(f"{url}/parameters/input").content == TEXT
    http.post(f"{url}/phase", data={"PHASE": "RUN"})
    assert phase_of(wait_final(http, url)) == "COMPLETED"
    assert http.get(f"{url}/results/output").content.endswith(TEXT)
    doc = prov.read(io.StringIO(http.get(f"{url}/results/provjson").text), format="json")
    entity = f"data:sha256-{hashlib.sha256(TEXT).hexdigest()}"
    entities = {str(e.identifier): e for e in doc.get_records(prov.model.ProvEntity)}
    assert {str(v) for v in entities[entity].get_attribute("prov:location")} == {
        f"{archive}/files/notes.txt"
    }


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing.txt", "answered HTTP 404"),
        ("/slow", "took too long"),
        ("/big", "larger than 5000 bytes"),
    ],
)
def test_a_failing_fetch_is_a_quick_400_and_no_job(rlive, http, archive, path, message):
    started = time.monotonic()
    r = http.post(rlive.jobs("echo"), data={"input": archive + path}, allow_redirects=False)
    assert r.status_code == 400 and message in r.text, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert time.monotonic() - started < 8
    assert b"<uws:jobref" not in http.get(rlive.jobs("echo")).content


def test_unreachable_and_foreign_schemes_are_400(rlive, http):
    for value in ("file:///etc/passwd", "http://127.0.0.1:1/x", "not a url"):
        r = http.post(rlive.jobs("echo"), data={"input": value}, allow_redirects=False)
        assert r.status_code == 400, (value, r.text)
        assert "input:" in r.text


def test_an_own_result_url_resolves_locally_and_links_the_jobs(rlive, http):
    a = create(http, rlive, "echo", {"text": "first", "n": "2", "PHASE": "RUN"})
    assert phase_of(wait_final(http, a)) == "COMPLETED"
    b = create(http, rlive, "echo", {"input": f"{a}/results/output", "PHASE": "RUN"})
    assert phase_of(wait_final(http, b)) == "COMPLETED"
    output = http.get(f"{a}/results/output").content
    assert http.get(f"{b}/parameters/input").content == output
    r = http.get(f"{rlive.url}/provsap", params={"ID": b, "RESPONSEFORMAT": "PROV-N"})
    doc = prov.read(io.StringIO(r.text), format="provn")
    informed = list(doc.get_records(prov.model.ProvCommunication))
    assert len(informed) == 1 and str(informed[0].formal_attributes[1][1]).endswith(
        a.rsplit("/", 1)[1]
    )
    # Unknown job or result: a 400 naming the input.
    bad = http.post(rlive.jobs("echo"), data={"input": f"{a}/results/nothing"})
    assert bad.status_code == 400 and "has no result" in bad.text


def test_id_templates():
    assert _resolve_reference("file://$ID", "http://h/x") == "http://h/x"
    assert _resolve_reference("", "http://h/x") == "http://h/x"
    assert (
        _resolve_reference("https://archive.example/obs?id=$ID", "a b&c")
        == "https://archive.example/obs?id=a%20b%26c"
    )
