"""The web pages over plain HTTP: negotiation, generated forms, validation, CSRF, sign-in,
ownership, job lists (the browser tests in test_browser.py drive the same pages in Chromium)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
import requests

from opus_min.pages import PAGE_CSP
from tests.conftest import create, phase_of, start_live, wait_final, with_config
from tests.test_identity import add_user

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
JAVA_ACCEPT = "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2"
"""What Java's HttpURLConnection sends by default (STILTS taplint, many VO tools)."""


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str, **attrs: str) -> dict[str, str | None]:
        found = self.all(tag, **attrs)
        assert len(found) == 1, (tag, attrs, found)
        return found[0]

    def all(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


def csrf_of(http: requests.Session, live, path: str = "/ui/") -> str:
    r = http.get(live.url + path)
    assert r.status_code == 200
    token = http.cookies.get("opus_min_csrf")
    assert token and len(token) == 43
    if 'name="csrf_token"' in r.text:
        assert f'name="csrf_token" value="{token}"' in r.text
    return token


# -- negotiation: /rest stays UWS, pages are under /ui/ ----------------------------------------


def test_uws_urls_answer_xml_whatever_the_accept_header(live, http, assert_valid):
    url = create(http, live, "echo", {"text": "hi", "PHASE": "RUN"})
    wait_final(http, url)
    for accept in (
        None,
        "*/*",
        "application/xml",
        "text/html",
        JAVA_ACCEPT,
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ):
        headers = {"Accept": accept} if accept else {}
        for target in (url, live.jobs("echo"), f"{url}/results", f"{url}/parameters"):
            r = http.get(target, headers=headers)
            assert r.status_code == 200, (accept, target)
            assert r.headers["Content-Type"].startswith("application/xml"), (accept, target)
            assert_valid(r.content)


def test_pages_are_html_with_their_own_csp_and_the_root_negotiates(live, http):
    for path in ("/ui/", "/ui/services/echo", "/ui/jobs", "/ui/services/echo/jobs"):
        r = http.get(live.url + path, headers={"Accept": "application/xml"})
        assert r.status_code == 200, path
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert r.headers["Content-Security-Policy"] == PAGE_CSP
        assert "'unsafe-inline'" not in PAGE_CSP and "sandbox" not in PAGE_CSP
        assert r.headers["X-Frame-Options"] == "DENY"
        assert "<script>" not in r.text and " style=" not in r.text  # nothing inline
    browser = http.get(live.url + "/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert browser.headers["Content-Type"].startswith("text/html")
    assert f'href="{live.url}/ui/services/echo"' in browser.text
    assert "Accept" in browser.headers["Vary"]
    for accept in (None, "*/*", "application/x-votable+xml"):
        r = http.get(live.url + "/", headers={"Accept": accept} if accept else {})
        assert r.headers["Content-Type"].startswith("application/x-votable+xml"), accept


def test_static_files_are_served_by_name_only(live, http):
    js = http.get(live.url + "/ui/static/opus.js")
    assert js.status_code == 200 and "WAIT" in js.text
    assert js.headers["Content-Type"].startswith("text/javascript")
    css = http.get(live.url + "/ui/static/opus.css")
    assert css.status_code == 200 and "@media" in css.text
    for name in ("nope.js", "..%2fpages.py", "%2e%2e%2f__init__.py", "opus.js%00"):
        r = http.get(live.url + "/ui/static/" + name)
        assert r.status_code == 404, name
        assert "import" not in r.text


# -- the services page and the generated form ----------------------------------------------


def test_services_page_shows_descriptions_contacts_and_links(live, http):
    page = http.get(live.url + "/ui/").text
    for name, svc in live.app.jobs.services.items():
        assert f'id="service-{name}"' in page
        assert svc.description.replace("&", "&amp;")[:40] in page
    doc = Elements(page)
    assert doc.all("a", href="mailto:opus-min@example.org")
    assert doc.all("a", href=f"{live.url}/jdl/echo")
    assert doc.all("a", href=f"{live.url}/ui/services/echo/jobs")


def test_documentation_links_are_shown_only_when_http(config, services_dir, http):
    echo = (services_dir / "echo.xml").read_text()
    doc_param = '<PARAM name="doculink" value=""'
    assert doc_param in echo
    (services_dir / "echo.xml").write_text(
        echo.replace(
            doc_param, '<PARAM name="doculink" value="https://example.org/echo?a=1&amp;b=2"'
        )
    )
    sleep = (services_dir / "sleep.xml").read_text()
    (services_dir / "sleep.xml").write_text(
        sleep.replace(doc_param, '<PARAM name="doculink" value="javascript:alert(1)"')
    )
    server = start_live(config)
    try:
        page = http.get(server.url + "/ui/").text
    finally:
        server.stop()
    assert Elements(page).all("a", href="https://example.org/echo?a=1&b=2")
    assert "javascript:" not in page


def test_form_is_generated_from_the_activity_description(live, http):
    doc = Elements(http.get(live.url + "/ui/services/echo").text)
    form = doc.find("form", id="job-form")
    assert form["method"] == "post" and form["enctype"] == "multipart/form-data"
    n = doc.find("input", name="n")
    assert (n["type"], n["min"], n["max"], n["step"], n["value"]) == (
        "number",
        "1",
        "1000",
        "1",
        "3",
    )
    assert "required" in n
    scale = doc.find("input", name="scale")
    assert (scale["type"], scale["min"], scale["max"], scale["step"]) == (
        "number",
        "0",
        "10",
        "any",
    )
    text = doc.find("input", name="text")
    assert text["type"] == "text" and text["value"] == "Hello World"
    mode = doc.find("select", name="mode")
    assert "required" not in mode  # type="no_query": optional
    options = [a["value"] for a in doc.all("option") if a["value"] in ("as-is", "upper", "lower")]
    assert options == ["as-is", "upper", "lower"]
    assert "selected" in doc.find("option", value="as-is")
    upload = doc.find("input", name="input", type="file")
    reference = doc.find("input", name="input", type="text")  # or a URL / ID instead
    assert reference["id"] == "f-input-ref" and doc.find("label", **{"for": "f-input-ref"})
    assert "open" not in doc.find("details", id="controls")
    assert doc.find("input", name="RUNID")["maxlength"] == "256"
    text_of = " ".join(doc.text)
    for words in ("How many times to write it", "unit:", "deg", "default:", "as-is"):
        assert words in text_of
    assert upload["id"] == "f-input"
    assert "*" not in label_text(http.get(live.url + "/ui/services/echo").text, "f-input")
    # counts_map: its Used FITS file is required (marked; a file or a reference will do).
    cm = http.get(live.url + "/ui/services/counts_map").text
    assert "*" in label_text(cm, "f-events")
    assert Elements(cm).find("input", name="events", type="file")


def label_text(html: str, field_id: str) -> str:
    match = re.search(rf'<label for="{field_id}">(.*?)</label>', html, re.S)
    assert match, field_id
    return match.group(1)


def test_an_input_can_be_given_by_reference_in_the_form(live, http):
    token = csrf_of(http, live, "/ui/services/echo")
    first = create(http, live, "echo", {"text": "from job one", "n": "1", "PHASE": "RUN"})
    wait_final(http, first)
    r = http.post(
        live.url + "/ui/services/echo",
        data={"csrf_token": token, "n": "1", "input": f"{first}/results/output", "PHASE": "RUN"},
        files={"input": ("", b"", "application/octet-stream")},
        allow_redirects=False,
    )
    assert r.status_code == 303, r.text
    second = r.headers["Location"].replace("/ui/jobs/", "/rest/")
    assert phase_of(wait_final(http, second)) == "COMPLETED"
    assert "from job one" in http.get(f"{second}/results/output").text
    # A reference the server will not fetch: the message sits next to the input's fields.
    r = http.post(
        live.url + "/ui/services/echo",
        data={"csrf_token": token, "input": "ftp://example.org/x.txt"},
        allow_redirects=False,
    )
    assert r.status_code == 400
    page = Elements(r.text)
    assert page.find("p", id="f-input-error")
    assert page.find("input", name="input", type="text")["value"] == "ftp://example.org/x.txt"


def test_server_refusal_is_shown_next_to_the_field_with_the_values_kept(live, http):
    token = csrf_of(http, live, "/ui/services/echo")
    before = live.app.jobs.store.list_page(["echo"], None, (), 0, 100)
    r = http.post(
        live.url + "/ui/services/echo",
        data={"csrf_token": token, "text": "keep <me>", "n": "5000", "scale": "2", "RUNID": "r1"},
        allow_redirects=False,
    )
    assert r.status_code == 400
    doc = Elements(r.text)
    assert doc.find("p", id="f-n-error") is not None
    assert "n: 5000 is above the maximum 1000" in r.text
    assert doc.find("input", name="n")["value"] == "5000"
    assert doc.find("input", name="text")["value"] == "keep <me>"
    assert doc.find("input", name="RUNID")["value"] == "r1"
    # A control's error opens the tucked-away options.
    r = http.post(
        live.url + "/ui/services/echo",
        data={"csrf_token": token, "EXECUTIONDURATION": "-5"},
        allow_redirects=False,
    )
    assert r.status_code == 400 and "EXECUTIONDURATION must be" in r.text
    assert "open" in Elements(r.text).find("details", id="controls")
    assert live.app.jobs.store.list_page(["echo"], None, (), 0, 100) == before


def test_form_submission_creates_the_job_and_lands_on_its_page(live, http):
    token = csrf_of(http, live, "/ui/services/echo")
    r = http.post(
        live.url + "/ui/services/echo",
        data={
            "csrf_token": token,
            "text": "<script>alert(1)</script>",
            "n": "2",
            "mode": "",
            "PHASE": "RUN",
            "RUNID": "",
            "EXECUTIONDURATION": "",
        },
        files={"input": ("", b"", "application/octet-stream")},  # a file input left empty
        allow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page_url = r.headers["Location"]
    job_id = page_url.rsplit("/", 1)[1]
    assert page_url == f"{live.url}/ui/jobs/echo/{job_id}"
    doc = wait_final(http, f"{live.jobs('echo')}/{job_id}")
    assert phase_of(doc) == "COMPLETED"
    params = {p.get("id"): p.text for p in doc.iter(f"{UWS}parameter")}
    assert params["text"] == "<script>alert(1)</script>" and params["mode"] == "as-is"
    assert "input" not in params  # the empty file part is not an upload
    page = http.get(page_url).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for result in ("output", "summary", "stdout", "stderr"):
        assert f'href="{live.jobs("echo")}/{job_id}/results/{result}"' in page


# -- CSRF -----------------------------------------------------------------------------------


def test_page_posts_from_elsewhere_are_refused_and_change_nothing(live, http):
    token = csrf_of(http, live, "/ui/services/echo")
    url = create(http, live, "echo", {"text": "victim"})
    job_id = url.rsplit("/", 1)[1]
    page = f"{live.url}/ui/jobs/echo/{job_id}"
    attempts = [
        ({}, {"action": "delete"}),
        ({}, {"action": "delete", "csrf_token": "x" * 43}),
        ({"Origin": "https://evil.example"}, {"action": "delete", "csrf_token": token}),
        ({"Sec-Fetch-Site": "cross-site"}, {"action": "delete", "csrf_token": token}),
        ({"Sec-Fetch-Site": "same-site"}, {"action": "delete", "csrf_token": token}),
    ]
    for headers, data in attempts:
        r = http.post(page, headers=headers, data=data, allow_redirects=False)
        assert r.status_code == 403, (headers, data)
        assert r.headers["Content-Type"].startswith("text/html")
        assert http.get(url).status_code == 200
    stranger = requests.Session()  # no CSRF cookie at all
    r = stranger.post(page, data={"action": "delete", "csrf_token": token}, allow_redirects=False)
    assert r.status_code == 403
    r = http.post(
        live.url + "/ui/services/echo", data={"text": "x", "PHASE": "RUN"}, allow_redirects=False
    )
    assert r.status_code == 403
    # The same POST from the page itself (Origin "null" under no-referrer, or our own) works.
    r = http.post(
        page,
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        data={"action": "run", "csrf_token": token},
        allow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["Location"] == page
    r = http.post(
        page,
        headers={"Origin": live.url},
        data={"action": "delete", "csrf_token": token},
        allow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["Location"] == f"{live.url}/ui/services/echo/jobs"
    assert http.get(url).status_code == 404


def test_bad_page_arguments_are_400_pages(live, http):
    token = csrf_of(http, live, "/ui/services/echo")
    url = create(http, live, "echo")
    page = url.replace("/rest/", "/ui/jobs/")
    cases = [
        http.get(live.url + "/ui/jobs?page=0"),
        http.get(live.url + "/ui/jobs?page=abc"),
        http.get(live.url + "/ui/jobs?per_page=100000"),
        http.get(live.url + "/ui/jobs?phase=RUNNING"),
        http.post(page, data={"action": "explode", "csrf_token": token}, allow_redirects=False),
    ]
    for r in cases:
        assert r.status_code == 400, r.url
        assert r.headers["Content-Type"].startswith("text/html")
        assert "Traceback" not in r.text and 'id="error-message"' in r.text
    assert http.get(live.url + "/ui/jobs?service=nope").status_code == 404
    assert http.get(live.url + "/ui/jobs/echo/1nosuchjob").status_code == 404
    assert http.get(live.url + "/ui/services/nope").status_code == 404
    finished = create(http, live, "echo", {"PHASE": "RUN"})
    wait_final(http, finished)
    r = http.post(
        finished.replace("/rest/", "/ui/jobs/"),
        data={"action": "run", "csrf_token": token},
        allow_redirects=False,
    )
    assert r.status_code == 403 and "cannot run again" in r.text


# -- job lists -----------------------------------------------------------------------------


def job_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="job" data-job="([0-9a-z]+)">', html)


def test_job_lists_filter_by_phase_newest_first_paginated(live, http):
    echo = [create(http, live, "echo").rsplit("/", 1)[1] for _ in range(7)]
    done = create(http, live, "sleep", {"seconds": "0", "PHASE": "RUN"})
    wait_final(http, done)
    done_id = done.rsplit("/", 1)[1]
    newest_first = [done_id, *reversed(echo)]
    first = http.get(live.url + "/ui/jobs", params={"per_page": "3"}).text
    assert job_ids(first) == newest_first[:3]
    assert 'id="newer"' not in first and 'id="older"' in first
    older = re.search(r'id="older" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    second = http.get(older).text
    assert job_ids(second) == newest_first[3:6]
    assert 'id="newer"' in second and "Page 2" in second
    last = http.get(live.url + "/ui/jobs", params={"per_page": "3", "page": "3"}).text
    assert job_ids(last) == newest_first[6:] and 'id="older"' not in last
    # Filters: by phase, by service, both lists.
    assert job_ids(http.get(live.url + "/ui/jobs?phase=COMPLETED").text) == [done_id]
    assert job_ids(http.get(live.url + "/ui/jobs?phase=PENDING").text) == list(reversed(echo))
    assert job_ids(http.get(live.url + "/ui/services/sleep/jobs").text) == [done_id]
    assert job_ids(http.get(live.url + "/ui/jobs?service=echo&per_page=2").text) == echo[::-1][:2]
    none = http.get(live.url + "/ui/services/sleep/jobs?phase=ERROR").text
    assert job_ids(none) == [] and 'id="no-jobs"' in none


# -- sign-in, the token cookie and ownership ------------------------------------------------


@pytest.fixture
def token_live(config):
    cfg = with_config(config, auth="token")
    tokens = {
        "ann": add_user(cfg, "ann"),
        "bob": add_user(cfg, "bob"),
        "root": add_user(cfg, "root", roles=["admin"]),
    }
    server = start_live(cfg)
    yield server, tokens
    server.stop()


def sign_in(live, token: str) -> requests.Session:
    browser = requests.Session()
    r = browser.get(live.url + "/ui/jobs", allow_redirects=False)
    assert r.status_code == 303
    assert r.headers["Location"] == f"{live.url}/ui/signin?next=%2Fui%2Fjobs"
    csrf = csrf_of(browser, live, "/ui/signin?next=%2Fui%2Fjobs")
    r = browser.post(
        live.url + "/ui/signin",
        data={"token": token, "next": "/ui/jobs", "csrf_token": csrf},
        allow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["Location"] == f"{live.url}/ui/jobs"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("opus_min_token=") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Path=/" in cookie
    return browser


def test_sign_in_stores_the_token_in_a_strict_httponly_cookie(token_live):
    live, tokens = token_live
    browser = sign_in(live, tokens["ann"])
    page = browser.get(live.url + "/ui/jobs")
    assert page.status_code == 200 and "Signed in as <strong>ann</strong>" in page.text
    # A wrong token re-shows the form with the reason; no cookie is set.
    other = requests.Session()
    csrf = csrf_of(other, live, "/ui/signin")
    for bad in ("om_wrong", "not a token; x", tokens["bob"] + "x"):
        r = other.post(
            live.url + "/ui/signin", data={"token": bad, "csrf_token": csrf}, allow_redirects=False
        )
        assert r.status_code == 403 and 'id="signin-error"' in r.text
        assert "opus_min_token" not in r.headers.get("Set-Cookie", "")
    # next= never leads off the site.
    r = other.post(
        live.url + "/ui/signin",
        data={"token": tokens["bob"], "csrf_token": csrf, "next": "//evil.example/x"},
        allow_redirects=False,
    )
    assert r.headers["Location"] == f"{live.url}/ui/"
    # Signing out forgets the cookie.
    csrf = browser.cookies.get("opus_min_csrf")
    r = browser.post(live.url + "/ui/signout", data={"csrf_token": csrf}, allow_redirects=False)
    assert r.status_code == 303 and "opus_min_token=; " in r.headers["Set-Cookie"]
    assert "Max-Age=0" in r.headers["Set-Cookie"]
    assert browser.get(live.url + "/ui/jobs", allow_redirects=False).status_code == 303


def test_the_cookie_reads_the_api_but_never_changes_it(token_live):
    live, tokens = token_live
    browser = sign_in(live, tokens["ann"])
    ann = requests.Session()
    ann.headers["Authorization"] = f"Bearer {tokens['ann']}"
    url = create(ann, live, "echo", {"text": "mine", "PHASE": "RUN"})
    wait_final(ann, url)
    # GET with the cookie: the job, WAIT, results (download links and the live phase work).
    assert browser.get(url, params={"WAIT": "1"}).status_code == 200
    assert browser.get(f"{url}/results/output").text.startswith("mine")
    # POST, DELETE to the API with only the cookie: 401, nothing changed.
    assert browser.post(live.jobs("echo"), data={"text": "x"}).status_code == 401
    assert browser.delete(url, allow_redirects=False).status_code == 401
    assert browser.post(f"{url}/phase", data={"PHASE": "ABORT"}).status_code == 401
    assert ann.get(url).status_code == 200


def test_pages_follow_the_ownership_rules(token_live):
    live, tokens = token_live
    ann = requests.Session()
    ann.headers["Authorization"] = f"Bearer {tokens['ann']}"
    url = create(ann, live, "echo", {"text": "ann's secret"})
    job_id = url.rsplit("/", 1)[1]
    bob = sign_in(live, tokens["bob"])
    page = bob.get(f"{live.url}/ui/jobs/echo/{job_id}")
    assert page.status_code == 403 and "belongs to another user" in page.text
    assert "ann's secret" not in page.text and "ann&#39;s secret" not in page.text
    assert job_ids(bob.get(live.url + "/ui/jobs").text) == []
    csrf = bob.cookies.get("opus_min_csrf")
    r = bob.post(
        f"{live.url}/ui/jobs/echo/{job_id}",
        data={"action": "delete", "csrf_token": csrf},
        allow_redirects=False,
    )
    assert r.status_code == 403 and ann.get(url).status_code == 200
    root = sign_in(live, tokens["root"])
    listing = root.get(live.url + "/ui/jobs").text
    assert job_ids(listing) == [job_id] and "every user" in listing
    own = ann.get(f"{live.url}/ui/jobs/echo/{job_id}")  # the Authorization header works too
    assert own.status_code == 200 and "ann&#39;s secret" in own.text
    assert root.get(f"{live.url}/ui/jobs/echo/{job_id}").status_code == 200


def test_sign_in_page_exists_only_in_token_mode(live, http):
    r = http.get(live.url + "/ui/signin")
    assert r.status_code == 404 and "anonymous mode" in r.text
    assert "Sign in" not in http.get(live.url + "/ui/").text


def test_job_page_shows_error_summary_and_stderr(live, http):
    url = create(http, live, "fail", {"PHASE": "RUN"})
    doc = wait_final(http, url)
    assert phase_of(doc) == "ERROR"
    page = Elements(http.get(url.replace("/rest/", "/ui/jobs/")).text)
    assert page.find("div", id="error-summary")
    assert "Error in fail running command" in " ".join(page.text)
    assert "open" in page.find("details", id="log-stderr")
    assert not page.all("button", id="abort") and not page.all("button", id="run")
    assert page.find("button", id="delete")


def test_provenance_section_links_the_graph_and_prov_formats(live, http):
    if "provsap" not in {rule.endpoint for rule in live.app.url_map.iter_rules()}:
        pytest.skip("no /provsap endpoint in this build")
    url = create(http, live, "echo", {"PHASE": "RUN"})
    wait_final(http, url)
    job_id = url.rsplit("/", 1)[1]
    page = Elements(http.get(f"{live.url}/ui/jobs/echo/{job_id}").text)
    img = page.find("img", alt=f"provenance graph of job {job_id}")
    assert img["src"] == f"{live.url}/provsap?ID={job_id}&RESPONSEFORMAT=SVG"
    for fmt in ("PROV-JSON", "PROV-XML", "PROV-N"):
        link = f"{live.url}/provsap?ID={job_id}&RESPONSEFORMAT={fmt}"
        assert page.all("a", href=link), fmt
        assert http.get(link).status_code == 200, fmt
    pending = create(http, live, "echo")
    assert 'id="provenance"' not in http.get(pending.replace("/rest/", "/ui/jobs/")).text
