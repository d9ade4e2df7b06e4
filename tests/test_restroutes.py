"""The direct matcher of the UWS routes agrees with werkzeug's Map wherever it answers, and
answers for every plain job URL (so the fast path is actually taken)."""

from __future__ import annotations

import itertools

import pytest
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from opus_min.restroutes import RestRoutes
from opus_min.wsgi import REST_ROUTES, URL_MAP

METHODS = ["GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS"]
SUFFIXES = [
    "",
    "/phase",
    "/executionduration",
    "/destruction",
    "/quote",
    "/owner",
    "/error",
    "/parameters",
    "/results",
    "/parameters/a",
    "/results/out%20put",
    "/results/a/b",
    "/unknown",
    "/",
    "/phase/",
    "//phase",
]
SERVICES = ["echo", "capabilities", "caf\u00c3\u00a9", "a b"]  # latin-1 form of UTF-8 "café"
JOBS = ["1abc", "capabilities", "availability", "phase", "x.y"]


def _map(method: str, path_info: str):
    """What dispatch did before: the Map bound to the WSGI environ."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path_info,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "host",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    adapter = URL_MAP.bind_to_environ(environ)
    try:
        return adapter.match()
    except RequestRedirect:
        return "redirect"
    except HTTPException as exc:
        return exc.code


def _paths():
    yield "/rest/echo"
    yield "/rest/echo/"
    yield "//rest/echo/1abc"
    yield "/rest"
    yield "/restx/echo/1abc"
    for service, job, suffix in itertools.product(SERVICES, JOBS, SUFFIXES):
        yield f"/rest/{service}/{job}{suffix}"


@pytest.mark.parametrize("method", METHODS)
def test_the_direct_matcher_agrees_with_the_map(method):
    answered = 0
    for path in _paths():
        found = REST_ROUTES.match(method, path)
        if found is not None:
            answered += 1
            assert found == _map(method, path), (method, path)
    if method in ("GET", "HEAD", "POST"):
        assert answered > 50


def test_plain_job_urls_take_the_direct_path():
    assert REST_ROUTES.match("GET", "/rest/echo/1abc") == (
        "job",
        {"service": "echo", "job_id": "1abc"},
    )
    assert REST_ROUTES.match("GET", "/rest/echo/1abc/phase")[0] == "job_phase"
    assert REST_ROUTES.match("POST", "/rest/echo")[0] == "job_list"
    assert REST_ROUTES.match("GET", "/rest/caf\u00c3\u00a9/1abc")[1]["service"] == "café"
    # Left to the Map: its 405, its redirects, its <path:> rules, and static siblings.
    assert REST_ROUTES.match("PUT", "/rest/echo/1abc") is None
    assert REST_ROUTES.match("GET", "/rest/echo/1abc/") is None
    assert REST_ROUTES.match("GET", "/rest/echo/1abc/results/x") is None
    assert REST_ROUTES.match("GET", "/rest/echo/capabilities") is None
    assert REST_ROUTES.match("GET", "/rest/echo/\u20ac") is None


def test_the_table_is_derived_from_the_map():
    routes = RestRoutes.from_rules(URL_MAP.iter_rules())
    assert routes == REST_ROUTES
    assert routes.siblings == {"capabilities", "availability"}
    assert set(routes.job_routes) == {
        "",
        "phase",
        "executionduration",
        "destruction",
        "quote",
        "owner",
        "error",
        "parameters",
        "results",
    }
