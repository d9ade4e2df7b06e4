"""Shared fixtures: a real SQLite file, the bundled services, a live server on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import requests
import waitress.server
from lxml import etree

from opus_min.config import Config
from opus_min.wsgi import OpusApp, create_app, server_options

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "services"
TEST_SERVICES = Path(__file__).parent / "data" / "services"
SCHEMAS = Path(__file__).parent / "schemas"


def pytest_report_header() -> str:
    return f"sqlite {sqlite3.sqlite_version}"


@pytest.fixture(scope="session")
def xml_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "all-vo.xsd"), parser))


@pytest.fixture(scope="session")
def assert_valid(xml_schema: etree.XMLSchema):
    """Validate an XML body against the IVOA schemas; fail with the schema's messages."""

    def check(body: bytes) -> etree._Element:
        assert body.startswith(b"<?xml"), body[:80]
        doc = etree.fromstring(body, etree.XMLParser(no_network=True))
        if not xml_schema.validate(doc):
            errors = [f"{e.line}: {e.message}" for e in xml_schema.error_log]
            pytest.fail("schema-invalid XML:\n" + "\n".join(errors) + "\n" + body.decode()[:2000])
        return doc

    return check


@pytest.fixture
def services_dir(tmp_path: Path) -> Path:
    """The bundled services plus the test-only ones, in a temp folder."""
    folder = tmp_path / "services"
    shutil.copytree(SERVICES, folder)
    for path in TEST_SERVICES.iterdir():
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture
def config(tmp_path: Path, services_dir: Path) -> Config:
    return Config(
        database=tmp_path / "db" / "jobs.sqlite",
        services=services_dir,
        work_root=tmp_path / "work",
        threads=16,
        wait_max=10,
        reaper_interval=3600,
        max_concurrent_jobs=4,
    )


@dataclass
class Live:
    """A running server and its URLs."""

    app: OpusApp
    url: str
    server: waitress.server.BaseWSGIServer
    thread: threading.Thread
    stopping: threading.Event

    def jobs(self, service: str) -> str:
        return f"{self.url}/rest/{service}"

    def stop(self) -> None:
        self.stopping.set()
        # Close client channels too (keep-alive), or the loop would keep serving them.
        for channel in list(self.server._map.values()):
            channel.close()
        self.server.task_dispatcher.shutdown()
        self.thread.join(5)
        self.app.jobs.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_live(config: Config, port: int = 0) -> Live:
    """The app under waitress in a thread, with the settings ``opus-min serve`` uses."""
    app = create_app(config)
    server = waitress.server.create_server(
        app, host="127.0.0.1", port=port, **server_options(config)
    )
    port = server.socket.getsockname()[1]  # type: ignore[union-attr]
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except (OSError, ValueError):
            # Closing the listening socket ends the loop with an error; only then is it expected.
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return Live(app, f"http://127.0.0.1:{port}", server, thread, stopping)


@contextmanager
def server_process(
    config: Config, port: int | None = None, **overrides: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`opus-min serve` in its own process, configured through the environment."""
    port = port or free_port()
    env = dict(
        os.environ,
        OPUS_MIN_DATABASE=str(config.database),
        OPUS_MIN_SERVICES=str(config.services),
        OPUS_MIN_WORK_ROOT=str(config.work_root),
        OPUS_MIN_PORT=str(port),
        OPUS_MIN_THREADS="8",
        **overrides,
    )
    env.pop("OPUS_MIN_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "opus_min", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url + "/", timeout=1)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("server did not start") from None
            time.sleep(0.1)
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


class Remote:
    """A server in another process, seen like ``Live`` by the helpers."""

    def __init__(self, url: str) -> None:
        self.url = url

    def jobs(self, service: str) -> str:
        return f"{self.url}/rest/{service}"


@pytest.fixture
def live(config: Config) -> Iterator[Live]:
    server = start_live(config)
    yield server
    server.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def create(http: requests.Session, live: Live, service: str, data=None, files=None) -> str:
    """POST a job, check the 303, return the job URL."""
    r = http.post(live.jobs(service), data=data or {}, files=files, allow_redirects=False)
    assert r.status_code == 303, r.text
    location = r.headers["Location"]
    assert location.startswith(live.jobs(service) + "/")
    return location


def wait_final(http: requests.Session, job_url: str, timeout: float = 20) -> etree._Element:
    """Block with WAIT until the job is final; return the parsed job document."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        r = http.get(job_url, params={"WAIT": "5"}, timeout=30)
        assert r.status_code == 200
        doc = etree.fromstring(r.content)
        phase = doc.findtext("{http://www.ivoa.net/xml/UWS/v1.0}phase")
        if phase in ("COMPLETED", "ERROR", "ABORTED", "ARCHIVED") or time.monotonic() > deadline:
            return doc


def phase_of(doc: etree._Element) -> str:
    return doc.findtext("{http://www.ivoa.net/xml/UWS/v1.0}phase")


def with_config(config: Config, **changes) -> Config:
    return replace(config, **changes)


def group_alive(pgid: int, wait: float = 0.0) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies awaiting reaping don't count).

    With ``wait``, keeps looking for up to that many seconds for the group to be gone.
    """
    import time

    deadline = time.monotonic() + wait
    while True:
        alive = False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[0] is the state, fields[2] the process group.
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                alive = True
                break
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)
