"""The OAI-PMH publishing registry: every verb, every error code, resumption, XSD validity."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import start_live

OAI = "{http://www.openarchives.org/OAI/2.0/}"
RI = "{http://www.ivoa.net/xml/RegistryInterface/v1.0}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
AUTH = "opus-min.invalid"


@pytest.fixture
def oai(live, http, assert_valid):
    def call(method="GET", **params):
        url = f"{live.url}/oai.xml"
        r = http.post(url, data=params) if method == "POST" else http.get(url, params=params)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/xml")
        return assert_valid(r.content)

    return call


def error_code(doc):
    error = doc.find(f"{OAI}error")
    return None if error is None else error.get("code")


def identifiers(doc):
    return [h.findtext(f"{OAI}identifier") for h in doc.iter(f"{OAI}header")]


def test_identify(oai, live):
    doc = oai(verb="Identify")
    identify = doc.find(f"{OAI}Identify")
    assert identify.findtext(f"{OAI}baseURL") == f"{live.url}/oai.xml"
    assert identify.findtext(f"{OAI}protocolVersion") == "2.0"
    assert identify.findtext(f"{OAI}granularity") == "YYYY-MM-DDThh:mm:ssZ"
    record = identify.find(f"{OAI}description/{RI}Resource")
    assert record.get(XSI_TYPE) == "vg:Registry"
    assert record.findtext("identifier") == f"ivo://{AUTH}/registry"
    assert record.findtext("managedAuthority") == AUTH
    assert doc.find(f"{OAI}request").get("verb") == "Identify"


def test_formats_and_sets(oai):
    doc = oai(verb="ListMetadataFormats")
    prefixes = [f.findtext(f"{OAI}metadataPrefix") for f in doc.iter(f"{OAI}metadataFormat")]
    assert prefixes == ["ivo_vor", "oai_dc"]
    doc = oai(verb="ListMetadataFormats", identifier=f"ivo://{AUTH}/uws/echo")
    assert error_code(doc) is None
    doc = oai(verb="ListSets")
    assert [s.text for s in doc.iter(f"{OAI}setSpec")] == ["ivo_managed"]


def test_records_in_both_formats(oai, live):
    services = sorted(live.app.jobs.services)
    expected = [f"ivo://{AUTH}/registry", f"ivo://{AUTH}"] + [
        f"ivo://{AUTH}/uws/{name}" for name in services
    ]
    doc = oai(verb="ListIdentifiers", metadataPrefix="ivo_vor")
    assert identifiers(doc) == expected
    doc = oai(verb="ListRecords", metadataPrefix="ivo_vor", set="ivo_managed")
    kinds = [r.get(XSI_TYPE) for r in doc.iter(f"{RI}Resource")]
    assert kinds == ["vg:Registry", "vg:Authority"] + ["vs:DataService"] * len(services)
    echo = next(r for r in doc.iter(f"{RI}Resource") if r.findtext("identifier").endswith("/echo"))
    caps = {c.get("standardID"): c for c in echo.iter("capability")}
    uws = caps["ivo://ivoa.net/std/UWS#rest-1.1"]
    assert uws.findtext("interface/accessURL") == live.jobs("echo")
    assert caps[None].find("interface").get(XSI_TYPE) == "vr:WebBrowser"
    assert echo.findtext("curation/contact/name") == "opus_min operators"
    doc = oai(verb="ListRecords", metadataPrefix="oai_dc")
    titles = [t.text for t in doc.iter("{http://purl.org/dc/elements/1.1/}title")]
    assert len(titles) == len(expected)
    doc = oai(
        "POST",
        verb="GetRecord",
        metadataPrefix="ivo_vor",
        identifier=f"IVO://{AUTH.upper()}/UWS/ECHO",
    )
    assert identifiers(doc) == [f"ivo://{AUTH}/uws/echo"]


def test_from_and_until(oai):
    everything = identifiers(oai(verb="ListIdentifiers", metadataPrefix="ivo_vor"))
    assert (
        identifiers(
            oai(
                verb="ListIdentifiers",
                metadataPrefix="ivo_vor",
                **{"from": "2000-01-01", "until": "2999-12-31"},
            )
        )
        == everything
    )
    assert (
        identifiers(
            oai(
                verb="ListIdentifiers", metadataPrefix="ivo_vor", **{"from": "2000-01-01T00:00:00Z"}
            )
        )
        == everything
    )
    future = oai(verb="ListIdentifiers", metadataPrefix="ivo_vor", **{"from": "2999-01-01"})
    assert error_code(future) == "noRecordsMatch"
    past = oai(verb="ListRecords", metadataPrefix="oai_dc", until="1999-01-01T00:00:00Z")
    assert error_code(past) == "noRecordsMatch"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "badVerb"),
        ({"verb": "Dance"}, "badVerb"),
        ({"verb": "Identify", "extra": "1"}, "badArgument"),
        ({"verb": "ListRecords"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "yesterday"}, "badArgument"),
        (
            {
                "verb": "ListRecords",
                "metadataPrefix": "ivo_vor",
                "from": "2020-01-01",
                "until": "2021-01-01T00:00:00Z",
            },
            "badArgument",
        ),
        (
            {
                "verb": "ListRecords",
                "metadataPrefix": "ivo_vor",
                "from": "2021-01-01",
                "until": "2020-01-01",
            },
            "badArgument",
        ),
        (
            {"verb": "ListRecords", "resumptionToken": "x", "metadataPrefix": "ivo_vor"},
            "badArgument",
        ),
        ({"verb": "GetRecord", "identifier": f"ivo://{AUTH}/uws/echo"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "marc21"}, "cannotDisseminateFormat"),
        (
            {"verb": "GetRecord", "identifier": "ivo://elsewhere/x", "metadataPrefix": "ivo_vor"},
            "idDoesNotExist",
        ),
        ({"verb": "ListMetadataFormats", "identifier": "ivo://elsewhere/x"}, "idDoesNotExist"),
        (
            {"verb": "ListIdentifiers", "metadataPrefix": "ivo_vor", "set": "other"},
            "noRecordsMatch",
        ),
        ({"verb": "ListRecords", "resumptionToken": "not-a-token"}, "badResumptionToken"),
        ({"verb": "ListSets", "resumptionToken": "abc"}, "badResumptionToken"),
    ],
)
def test_error_matrix(oai, params, code):
    doc = oai(**params)
    assert error_code(doc) == code
    request = doc.find(f"{OAI}request")
    if code in ("badVerb", "badArgument"):
        assert dict(request.attrib) == {}


def test_repeated_verb_is_bad(live, http, assert_valid):
    r = http.get(f"{live.url}/oai.xml?verb=Identify&verb=Identify")
    assert error_code(assert_valid(r.content)) == "badVerb"


def test_resumption_walks_every_record(config, http, assert_valid):
    live = start_live(replace(config, oai_page_size=2))
    try:
        seen: list[str] = []
        params = {"verb": "ListRecords", "metadataPrefix": "ivo_vor"}
        pages = 0
        while True:
            doc = assert_valid(http.get(f"{live.url}/oai.xml", params=params).content)
            seen += identifiers(doc)
            pages += 1
            token = doc.find(f"{OAI}ListRecords/{OAI}resumptionToken")
            assert token is not None and int(token.get("completeListSize")) == 2 + len(
                live.app.jobs.services
            )
            if not token.text:
                break
            params = {"verb": "ListRecords", "resumptionToken": token.text}
        assert len(seen) == len(set(seen)) == 2 + len(live.app.jobs.services)
        assert pages == -(-len(seen) // 2)
    finally:
        live.stop()


def test_registry_can_be_switched_off(config, http):
    live = start_live(replace(config, registry_plugin=""))
    try:
        assert http.get(f"{live.url}/oai.xml", params={"verb": "Identify"}).status_code == 404
        caps = http.get(f"{live.url}/capabilities").text
        assert "ivo://ivoa.net/std/Registry" not in caps
    finally:
        live.stop()
