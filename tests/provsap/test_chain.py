"""Provenance through the live server: a chain of three real jobs and ProvSAP over it.

simulate_events (A) → its ``events`` result given to counts_map (B) **by URL** → B's
``counts_map`` result **re-uploaded** to significance_map (C). Both links must join the graph
because file identity is the content hash.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil

import prov
import pytest
import requests
from lxml import etree

from opus_min.config import Config
from opus_min.provsap import FORMATS
from opus_min.users import UserStore
from opus_min.uws.store import JobStore
from tests.conftest import SERVICES, phase_of, start_live, wait_final

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
PROV_FORMATS = {"PROV-JSON": "json", "PROV-XML": "xml", "PROV-N": "provn"}
NEEDS_DOT = pytest.mark.skipif(
    shutil.which("dot") is None and not os.environ.get("CI"),
    reason="Graphviz dot is not installed (CI installs it)",
)


def _session(token: str) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A live server (token mode: ann, bob) and ann's three-job chain."""
    root = tmp_path_factory.mktemp("provchain")
    shutil.copytree(SERVICES, root / "services")
    config = Config(
        database=root / "db" / "jobs.sqlite",
        services=root / "services",
        work_root=root / "work",
        threads=16,
        wait_max=10,
        reaper_interval=3600,
        auth="token",
        fetch_timeout=5,
    )
    users = UserStore(JobStore(config.database))
    tokens = {}
    for name in ("ann", "bob"):
        users.add(name, [], None)
        tokens[name] = users.issue_token(name)[1]
    live = start_live(config)
    ann = _session(tokens["ann"])
    try:
        a = _run(ann, live, "simulate_events", {"seed": "3", "n_source": "1500"})
        events_url = f"{a}/results/events"
        b = _run(ann, live, "counts_map", {"events": events_url, "binsz": "0.05"})
        counts = ann.get(f"{b}/results/counts_map").content
        c = _run(
            ann,
            live,
            "significance_map",
            {"radius": "0.15"},
            files={"counts_map": ("my_copy.fits", counts)},
        )
        yield {
            "live": live,
            "ann": ann,
            "bob": _session(tokens["bob"]),
            "tokens": tokens,
            "jobs": {"A": a, "B": b, "C": c},
        }
    finally:
        ann.close()
        live.stop()


def _run(http, live, service, data, files=None) -> str:
    r = http.post(
        live.jobs(service), data={**data, "PHASE": "RUN"}, files=files, allow_redirects=False
    )
    assert r.status_code == 303, r.text
    doc = wait_final(http, r.headers["Location"], timeout=120)
    assert phase_of(doc) == "COMPLETED", etree.tostring(doc).decode()
    return r.headers["Location"]


def _provsap(http, live, **params) -> requests.Response:
    return http.get(f"{live.url}/provsap", params=params)


def _doc(r: requests.Response, fmt: str = "json") -> prov.model.ProvDocument:
    assert r.status_code == 200, r.text
    return prov.read(io.StringIO(r.text), format=fmt)


def _ids(doc, kind) -> set[str]:
    return {str(rec.identifier) for rec in doc.get_records(kind)}


def _job(url: str) -> str:
    service, job_id = url.rsplit("/", 2)[-2:]
    return f"job:{service}/{job_id}"


def _activities(doc) -> set[str]:
    return _ids(doc, prov.model.ProvActivity)


def _files(doc) -> set[str]:
    return {i for i in _ids(doc, prov.model.ProvEntity) if i.startswith("data:")}


def test_back_from_c_with_depth_all_returns_the_whole_chain(chain):
    live, ann, jobs = chain["live"], chain["ann"], chain["jobs"]
    doc = _doc(_provsap(ann, live, ID=jobs["C"].rsplit("/", 1)[1], DEPTH="ALL"))
    assert _activities(doc) == {_job(jobs[k]) for k in "ABC"}
    # A's events (fetched by URL) and B's map (re-uploaded) are each one entity, used and
    # generated: the two links of the chain.
    relations = {
        (type(r).__name__, str(r.formal_attributes[0][1]), str(r.formal_attributes[1][1]))
        for r in doc.get_records(prov.model.ProvRelation)
        if isinstance(r, prov.model.ProvUsage | prov.model.ProvGeneration)
    }
    events = _sha(ann.get(f"{jobs['A']}/results/events").content)
    counts = _sha(ann.get(f"{jobs['B']}/results/counts_map").content)
    assert ("ProvGeneration", f"data:sha256-{events}", _job(jobs["A"])) in relations
    assert ("ProvUsage", _job(jobs["B"]), f"data:sha256-{events}") in relations
    assert ("ProvGeneration", f"data:sha256-{counts}", _job(jobs["B"])) in relations
    assert ("ProvUsage", _job(jobs["C"]), f"data:sha256-{counts}") in relations
    informed = {
        (str(r.formal_attributes[0][1]), str(r.formal_attributes[1][1]))
        for r in doc.get_records(prov.model.ProvCommunication)
    }
    assert informed == {(_job(jobs["B"]), _job(jobs["A"])), (_job(jobs["C"]), _job(jobs["B"]))}
    # BACK never shows descendants: C's own results are not progenitors.
    sig = _sha(ann.get(f"{jobs['C']}/results/significance_map").content)
    assert f"data:sha256-{sig}" not in _files(doc)


def test_forth_from_a_returns_the_whole_chain(chain):
    live, ann, jobs = chain["live"], chain["ann"], chain["jobs"]
    doc = _doc(_provsap(ann, live, ID=jobs["A"], DIRECTION="FORTH", DEPTH="ALL"))
    assert _activities(doc) == {_job(jobs[k]) for k in "ABC"}
    sig = _sha(ann.get(f"{jobs['C']}/results/significance_map").content)
    assert f"data:sha256-{sig}" in _files(doc)


def test_depth_counts_used_and_generated_relations(chain):
    live, ann, jobs = chain["live"], chain["ann"], chain["jobs"]
    c = jobs["C"]
    counts = _sha(ann.get(f"{jobs['B']}/results/counts_map").content)
    events = _sha(ann.get(f"{jobs['A']}/results/events").content)
    d0 = _doc(_provsap(ann, live, ID=c, DEPTH="0"))
    assert _activities(d0) == {_job(c)} and _files(d0) == set()
    d1 = _doc(_provsap(ann, live, ID=c, DEPTH="1"))
    assert _activities(d1) == {_job(c)} and _files(d1) == {f"data:sha256-{counts}"}
    d2 = _doc(_provsap(ann, live, ID=c, DEPTH="2"))
    assert _activities(d2) == {_job(c), _job(jobs["B"])}
    assert _files(d2) == {f"data:sha256-{counts}"}
    d3 = _doc(_provsap(ann, live, ID=c, DEPTH="3"))
    assert f"data:sha256-{events}" in _files(d3) and _job(jobs["A"]) not in _activities(d3)
    d4 = _doc(_provsap(ann, live, ID=c, DEPTH="4"))
    assert _activities(d4) == {_job(jobs[k]) for k in "ABC"}
    # An entity as ID: BACK from B's map at depth 1 is its generating job.
    e1 = _doc(_provsap(ann, live, ID=f"data:sha256-{counts}", DEPTH="1"))
    assert _activities(e1) == {_job(jobs["B"])}
    # The same file named by its result URL.
    e1b = _doc(_provsap(ann, live, ID=f"{jobs['B']}/results/counts_map", DEPTH="1"))
    assert e1b == e1


def test_job_records_carry_agents_description_parameters_and_hashes(chain, tmp_path):
    live, ann, jobs = chain["live"], chain["ann"], chain["jobs"]
    doc = _doc(ann.get(f"{jobs['B']}/results/provjson"))  # B, its inputs and its results
    text = doc.serialize(format="provn")
    for prefix in ("voprov", "uws", "job", "data", "jdl", "user"):
        assert f"prefix {prefix} <" in text
    agents = _ids(doc, prov.model.ProvAgent)
    assert agents == {"user:ann", "jdl:counts_map/contact"}
    entities = {str(e.identifier): e for e in doc.get_records(prov.model.ProvEntity)}
    plan = entities["jdl:counts_map"]
    assert str(next(iter(plan.get_attribute("prov:type")))) == "voprov:ActivityDescription"
    assert "1.0" in {str(v) for v in plan.get_attribute("voprov:version")}
    binsz = entities[f"{_job(jobs['B'])}/parameters/binsz"]
    assert {str(v) for v in binsz.get_attribute("prov:value")} == {"0.05"}
    assert "jdl:counts_map/parameters/binsz" in entities  # ParameterDescription (IVOA)
    # Every file entity: the sha256 of the bytes served, size and content type.
    r = ann.get(f"{jobs['B']}/results")
    for res in etree.fromstring(r.content).iter(f"{UWS}result"):
        data = ann.get(res.get("{http://www.w3.org/1999/xlink}href")).content
        node = entities.get(f"data:sha256-{_sha(data)}")
        assert node is not None, res.get("id")
        assert {str(v) for v in node.get_attribute("voprov:hash")} == {f"sha256:{_sha(data)}"}
        assert set(node.get_attribute("voprov:size")) == {len(data)}
        assert {str(v) for v in node.get_attribute("voprov:contentType")} == {res.get("mime-type")}
    # The input B fetched by URL keeps where it came from.
    usage = [u for u in doc.get_records(prov.model.ProvUsage) if "events" in str(u.attributes)]
    assert any(f"{jobs['A']}/results/events" in str(u.attributes) for u in usage)
    # W3C model: no description records, the service is a prov:Plan.
    w3c = _doc(_provsap(ann, live, ID=jobs["B"], DEPTH="1", MODEL="W3C"))
    w3c_entities = _ids(w3c, prov.model.ProvEntity)
    assert "jdl:counts_map" in w3c_entities
    assert "jdl:counts_map/parameters/binsz" not in w3c_entities
    assert "voprov:ActivityDescription" not in w3c.serialize(format="provn")


@pytest.mark.parametrize("fmt", list(PROV_FORMATS))
@pytest.mark.parametrize("model", ["IVOA", "W3C"])
def test_every_format_reads_back_equal(chain, fmt, model):
    live, ann, jobs = chain["live"], chain["ann"], chain["jobs"]
    r = _provsap(ann, live, ID=jobs["C"], MODEL=model, RESPONSEFORMAT=fmt)
    assert r.headers["Content-Type"].split(";")[0] == FORMATS[fmt].media_type
    back = _doc(r, PROV_FORMATS[fmt])
    reference = _doc(_provsap(ann, live, ID=jobs["C"], MODEL=model), "json")
    assert back == reference
    assert len(_activities(back)) == 3


@pytest.mark.parametrize("result_id", ["provjson", "provxml", "provn"])
def test_each_job_serves_its_own_provenance_as_results(chain, result_id):
    ann, jobs = chain["ann"], chain["jobs"]
    fmt = {"provjson": "json", "provxml": "xml", "provn": "provn"}[result_id]
    doc = _doc(ann.get(f"{jobs['B']}/results/{result_id}"), fmt)
    assert _activities(doc) == {_job(jobs["B"])}
    # Its inputs and all its results (the same ids ProvSAP and the job page use).
    for res in etree.fromstring(ann.get(f"{jobs['B']}/results").content).iter(f"{UWS}result"):
        data = ann.get(res.get("{http://www.w3.org/1999/xlink}href")).content
        assert f"data:sha256-{_sha(data)}" in _files(doc)
    events = _sha(ann.get(f"{jobs['A']}/results/events").content)
    assert f"data:sha256-{events}" in _files(doc)
    # The job page's id is the activity's: job:<service>/<jobId> expands to the job URL.
    job_doc = etree.fromstring(ann.get(jobs["B"]).content)
    assert jobs["B"].endswith("/" + job_doc.findtext(f"{UWS}jobId"))
    assert [a.identifier.uri for a in doc.get_records(prov.model.ProvActivity)] == [jobs["B"]]
    # Not listed among the UWS results (derived on request), which stay schema-valid.
    assert result_id not in ann.get(f"{jobs['B']}/results").text


@NEEDS_DOT
def test_svg(chain):
    live, ann, jobs = chain["live"], chain["ann"], chain["jobs"]
    r = _provsap(ann, live, ID=jobs["C"], RESPONSEFORMAT="SVG")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0] == "image/svg+xml"
    svg = etree.fromstring(r.content)
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert jobs["A"].rsplit("/", 1)[1] in r.text  # nodes link to the job URLs
    own = ann.get(f"{jobs['C']}/results/provsvg")
    assert own.status_code == 200 and etree.fromstring(own.content).tag == svg.tag


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({}, 400, "ID is required"),
        ({"ID": "0nosuchjob0000000000000000"}, 404, "no job or file known"),
        ({"ID": "data:sha256-" + "0" * 64}, 404, "no job or file known"),
        ({"ID": "C", "DEPTH": "-1"}, 400, "DEPTH must be ALL or an integer"),
        ({"ID": "C", "DEPTH": "two"}, 400, "DEPTH must be ALL or an integer"),
        ({"ID": "C", "DIRECTION": "FORWARD"}, 400, "DIRECTION must be BACK or FORTH"),
        ({"ID": "C", "MODEL": "OPUS"}, 400, "MODEL must be IVOA or W3C"),
        ({"ID": "C", "AGENT": "maybe"}, 400, "AGENT must be TRUE or FALSE"),
        ({"ID": "C", "FORMAT": "json"}, 400, "is not supported"),
        ({"ID": "C", "DEPTH": ["1", "2"]}, 400, "DEPTH given more than once"),
        ({"ID": "C", "RESPONSEFORMAT": "PROV-PNG"}, 415, "RESPONSEFORMAT"),
        ({"ID": "C", "RESPONSEFORMAT": "text/turtle"}, 415, "RESPONSEFORMAT"),
    ],
)
def test_bad_requests_answer_plain_text(chain, params, status, message):
    live, ann, jobs = chain["live"], chain["ann"], chain["jobs"]
    if params.get("ID") == "C":
        params = {**params, "ID": jobs["C"]}
    r = _provsap(ann, live, **params)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert message in r.text


def test_other_users_see_nothing(chain):
    live, bob, jobs = chain["live"], chain["bob"], chain["jobs"]
    counts = _sha(chain["ann"].get(f"{jobs['B']}/results/counts_map").content)
    for ident in (jobs["C"], jobs["A"].rsplit("/", 1)[1], f"data:sha256-{counts}"):
        r = _provsap(bob, live, ID=ident)
        assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/plain")
    assert bob.get(f"{jobs['B']}/results/provjson").status_code == 403
    assert requests.get(f"{live.url}/provsap", params={"ID": jobs["C"]}).status_code == 401
    # Bob may not feed ann's result to his own job by URL either.
    r = bob.post(
        live.jobs("counts_map"),
        data={"events": f"{jobs['A']}/results/events"},
        allow_redirects=False,
    )
    assert r.status_code == 403 and "belongs to another user" in r.text


def test_deleting_a_job_keeps_the_chain(chain):
    """Last in the module: deletes A."""
    live, ann, jobs = chain["live"], chain["ann"], chain["jobs"]
    events = _sha(ann.get(f"{jobs['A']}/results/events").content)
    assert ann.delete(jobs["A"], allow_redirects=False).status_code == 303
    assert ann.get(jobs["A"]).status_code == 404
    doc = _doc(_provsap(ann, live, ID=jobs["C"]))
    assert _activities(doc) == {_job(jobs[k]) for k in "ABC"}
    invalidated = {
        str(r.formal_attributes[0][1]) for r in doc.get_records(prov.model.ProvInvalidation)
    }
    assert f"data:sha256-{events}" in invalidated
    a_node = next(
        a for a in doc.get_records(prov.model.ProvActivity) if "simulate" in str(a.identifier)
    )
    assert a_node.get_attribute("voprov:deleted")
    # The deleted job is still a valid ID for its owner, and FORTH from it reaches C.
    forth = _doc(_provsap(ann, live, ID=_job(jobs["A"]), DIRECTION="FORTH"))
    assert _activities(forth) == {_job(jobs[k]) for k in "ABC"}
    # B's own document still reads back equal.
    r = ann.get(f"{jobs['B']}/results/provxml")
    assert _doc(r, "xml") == prov.read(io.StringIO(r.text), format="xml")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
