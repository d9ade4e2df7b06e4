"""Descriptor rendering is pure and faithful: the ActivityDescription it writes reads back equal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from opus_min.votable import load_services, parse_service
from opus_min.votable.descriptor import ServiceLinks, render_catalogue, render_service_document

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"


def all_services():
    services = {}
    for folder in (ROOT / "services", ROOT / "tests" / "data" / "services"):
        loaded, problems = load_services(folder)
        assert problems == []
        services.update(loaded)
    return services


@pytest.mark.parametrize("name", sorted(all_services()))
def test_activity_description_round_trips(name, assert_valid):
    svc = all_services()[name]
    links = ServiceLinks(svc, f"https://host/rest/{name}", f"ivo://x.org/uws/{name}")
    body = render_service_document(links)
    assert_valid(body)
    again, problems = parse_service(body, path=f"{name}.xml", script=svc.script)
    assert problems == []
    keep = {"source": "", "script_source": ""}
    assert dataclasses.replace(again, **keep) == dataclasses.replace(svc, **keep)


def test_catalogue_validates(assert_valid):
    services = all_services()
    body = render_catalogue(
        ServiceLinks(s, f"https://host/rest/{n}", f"ivo://x.org/uws/{n}")
        for n, s in services.items()
    )
    doc = assert_valid(body)
    ns = "{http://www.ivoa.net/xml/VOTable/v1.3}"
    ids = [r.get("ID") for r in doc.findall(f"{ns}RESOURCE") if r.get("utype") == "adhoc:service"]
    assert ids == [f"{n}-sd" for n in services]
    assert len(doc.findall(f".//{ns}TR")) == len(services)
