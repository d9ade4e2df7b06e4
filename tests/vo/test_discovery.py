"""VO discovery through the live server: pyvo from the base URL only, VOSI, descriptors."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import warnings
from dataclasses import replace

import astropy.units as u
import pytest
from lxml import etree
from pyvo.dal.adhoc import DatalinkQuery, DatalinkResults, DatalinkService
from pyvo.dal.tap import AsyncTAPJob
from pyvo.io.vosi import parse_availability, parse_capabilities

from tests.conftest import start_live

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
STILTS = shutil.which("stilts")


def strict(parse, body: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return parse(io.BytesIO(body))


def test_pyvo_finds_describes_and_runs_a_service_from_the_base_url(live, http):
    catalogue = DatalinkResults.from_result_url(live.url)
    names = sorted(r.get("service_def") for r in catalogue)
    assert "echo-sd" in names and "fail-sd" in names and "sleep-sd" in names
    svc = catalogue.get_adhocservice_by_id("echo-sd")
    params = {p.name: p for p in svc.groups[0].entries}
    assert params["scale"].unit == u.deg and params["n"].values.min == 1
    assert [o[1] for o in params["mode"].values.options] == ["as-is", "upper", "lower"]
    query = DatalinkQuery.from_resource([], svc, text="from pyvo", n=2, scale=120 * u.arcmin)
    response = query.submit(post=True)
    job = AsyncTAPJob(response.url)
    assert response.url.startswith(live.jobs("echo") + "/")
    params = {p.id_: p.content for p in job.job.parameters}
    assert params["scale"] == "2" and params["n"] == "2" and params["text"] == "from pyvo"
    job.run().wait(timeout=30)
    assert job.phase == "COMPLETED"
    output = next(r.href for r in job.results if r.id_ == "output")
    assert http.get(output).text == "from pyvo\nfrom pyvo\n"
    job.delete()
    uws = catalogue.get_adhocservice_by_ivoid("ivo://ivoa.net/std/UWS")
    assert uws is not None


def test_per_service_document_has_both_spellings(live, http, assert_valid):
    r = http.get(f"{live.url}/jdl/echo")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-votable+xml;content=datalink"
    doc = assert_valid(r.content)
    resources = doc.findall(f"{VOT}RESOURCE")
    assert [(x.get("type"), x.get("utype")) for x in resources] == [
        ("meta", "voprov:ActivityDescription"),
        ("results", None),
        ("meta", "adhoc:service"),
    ]
    groups = [g.get("name") for g in resources[0].findall(f"{VOT}GROUP")]
    assert groups == ["InputParams", "Used", "Generated"]
    access = resources[2].find(f"{VOT}PARAM[@name='accessURL']").get("value")
    assert access == live.jobs("echo")
    one = DatalinkResults.from_result_url(f"{live.url}/jdl/echo")
    assert one.get_adhocservice_by_id("echo-sd") is not None
    assert http.get(f"{live.url}/jdl/nope").status_code == 404


def test_vosi_documents_validate_and_parse(live, http, assert_valid):
    for path in ("/capabilities", "/rest/echo/capabilities"):
        body = http.get(live.url + path).content
        assert_valid(body)
        caps = strict(parse_capabilities, body)
        assert all(c.standardid for c in caps)
        ids = [c.standardid for c in caps]
        assert "ivo://ivoa.net/std/UWS#rest-1.1" in ids
        assert "ivo://ivoa.net/std/VOSI#availability" in ids
    root_ids = [
        c.standardid
        for c in strict(parse_capabilities, http.get(live.url + "/capabilities").content)
    ]
    assert root_ids.count("ivo://ivoa.net/std/UWS#rest-1.1") == len(live.app.jobs.services)
    assert "ivo://ivoa.net/std/Registry" in root_ids
    for path in ("/availability", "/rest/echo/availability"):
        body = http.get(live.url + path).content
        assert_valid(body)
        availability = strict(parse_availability, body)
        assert availability.available is True
        assert availability.upsince is not None
    # pyvo's own probing from a service URL finds the per-service VOSI documents.
    caps = DatalinkService(live.jobs("echo")).capabilities
    assert any(c.standardid == "ivo://ivoa.net/std/UWS#rest-1.1" for c in caps)
    assert http.get(f"{live.url}/rest/nope/capabilities").status_code == 404


def test_every_advertised_url_works(live, http):
    urls = set()
    for path in ("/capabilities", "/rest/sleep/capabilities"):
        doc = etree.fromstring(http.get(live.url + path).content)
        urls.update(a.text for a in doc.iter("accessURL"))
    doc = etree.fromstring(
        http.get(
            f"{live.url}/oai.xml", params={"verb": "ListRecords", "metadataPrefix": "ivo_vor"}
        ).content
    )
    urls.update(a.text for a in doc.iter("accessURL"))
    urls.update(r.text for r in doc.iter("referenceURL"))
    catalogue = etree.fromstring(http.get(live.url + "/services").content)
    urls.update(
        p.get("value") for p in catalogue.iter(f"{VOT}PARAM") if p.get("name") == "accessURL"
    )
    assert all(url.startswith(live.url) for url in urls), urls
    for url in urls:
        if url.endswith("/provsap"):  # a query service: without ID a 400 that names ID
            r = http.get(url)
            assert r.status_code == 400 and "ID is required" in r.text, url
            continue
        params = {"verb": "Identify"} if url.endswith("/oai.xml") else None
        assert http.get(url, params=params).status_code == 200, url
    assert len(urls) > 10


def test_availability_reports_real_health(config, tmp_path, http):
    live = start_live(config)
    try:
        live.app.jobs.executor.stop()
        doc = strict(parse_availability, http.get(live.url + "/availability").content)
        assert doc.available is False and "local executor unreachable" in doc.notes
    finally:
        live.stop()
    empty = tmp_path / "no-services"
    empty.mkdir()
    live = start_live(replace(config, services=empty))
    try:
        doc = strict(parse_availability, http.get(live.url + "/availability").content)
        assert doc.available is False and "no service loaded" in doc.notes
        conn = live.app.jobs.store._connection()
        conn.executescript("DROP TABLE results; DROP TABLE parameters; DROP TABLE jobs;")
        doc = strict(parse_availability, http.get(live.url + "/availability").content)
        assert "database unreachable" in doc.notes
    finally:
        live.stop()


def test_browsers_get_a_page_and_clients_the_catalogue(live, http):
    page = http.get(live.url + "/", headers={"Accept": "text/html,application/xml;q=0.9"})
    assert page.headers["Content-Type"].startswith("text/html")
    assert f'href="{live.url}/jdl/echo"' in page.text
    assert http.get(live.url + "/").headers["Content-Type"].startswith("application/x-votable")


@pytest.mark.skipif(STILTS is None and not os.environ.get("CI"), reason="STILTS not installed")
def test_votlint_and_datalinklint_are_clean(live, http, tmp_path):
    assert STILTS is not None
    paths = ["/services"] + [f"/jdl/{name}" for name in sorted(live.app.jobs.services)]
    for path in paths:
        file = tmp_path / (path.strip("/").replace("/", "_") + ".vot")
        file.write_bytes(http.get(live.url + path).content)
        votlint = subprocess.run(
            [STILTS, "votlint", f"votable={file}"], capture_output=True, text=True, timeout=120
        )
        assert "ERROR" not in votlint.stdout + votlint.stderr, (path, votlint.stdout)
        lint = subprocess.run(
            [STILTS, "datalinklint", f"votable={file}"], capture_output=True, text=True, timeout=120
        ).stdout
        assert "Totals: Errors: 0; Warnings: 0" in lint, (path, lint)
