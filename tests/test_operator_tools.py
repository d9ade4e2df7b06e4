"""Operator tools over HTTP: CORS, access to the admin pages, the editor's checks and round
trip, masked configuration, ``opus-min new-service``."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import requests

from opus_min.admin import MASK, mask_config
from opus_min.cli import main
from opus_min.config import Config, ConfigError, load_config
from opus_min.editor import check_draft, draft_from_form, draft_from_service
from opus_min.votable import load_services
from tests.conftest import SERVICES, create, start_live, wait_final, with_config
from tests.test_identity import add_user

PORTAL = "https://portal.example.org"
OTHER = "https://evil.example.net"


def _csrf(http: requests.Session, url: str) -> str:
    page = http.get(url)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _as_form(draft) -> dict[str, str]:
    form = dict(draft.fields)
    for kind, rows in draft.rows.items():
        form[f"{kind}_count"] = str(len(rows))
        for index, row in enumerate(rows):
            for attr, value in row.items():
                form[f"{kind}{index}_{attr}"] = value
    return form


@pytest.fixture
def cors_live(config):
    server = start_live(with_config(config, cors_origins=PORTAL + ", http://other.test"))
    yield server
    server.stop()


def test_cors_preflight_allowed_and_refused(cors_live):
    url = cors_live.jobs("echo")
    ok = requests.options(
        url,
        headers={
            "Origin": PORTAL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == PORTAL
    assert "POST" in ok.headers["Access-Control-Allow-Methods"]
    assert ok.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    assert ok.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in ok.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in ok.headers
    for origin, method, extra in (
        (OTHER, "POST", ""),
        ("null", "GET", ""),
        (PORTAL, "PUT", ""),
        (PORTAL, "POST", "x-custom"),
    ):
        headers = {"Origin": origin, "Access-Control-Request-Method": method}
        if extra:
            headers["Access-Control-Request-Headers"] = extra
        refused = requests.options(url, headers=headers)
        assert refused.status_code == 403, (origin, method)
        assert "Access-Control-Allow-Origin" not in refused.headers
        assert refused.text.startswith("Forbidden: CORS:")
    # The pages never answer cross-origin.
    page = requests.options(
        cors_live.url + "/ui/jobs",
        headers={"Origin": PORTAL, "Access-Control-Request-Method": "GET"},
    )
    assert page.status_code == 403


def test_cors_actual_requests(cors_live, http):
    created = requests.post(
        cors_live.jobs("echo"),
        data={"text": "cors", "PHASE": "RUN"},
        headers={"Origin": PORTAL},
        allow_redirects=False,
    )
    assert created.status_code == 303
    assert created.headers["Access-Control-Allow-Origin"] == PORTAL
    assert "Location" in created.headers["Access-Control-Expose-Headers"]
    job = created.headers["Location"]
    wait_final(http, job)
    got = requests.get(job + "/results/output", headers={"Origin": PORTAL})
    assert got.headers["Access-Control-Allow-Origin"] == PORTAL and got.text.startswith("cors")
    # A refused origin: reads get no CORS header (the browser hides them); changes are refused.
    read = requests.get(cors_live.url + "/services", headers={"Origin": OTHER})
    assert read.status_code == 200 and "Access-Control-Allow-Origin" not in read.headers
    before = http.get(cors_live.jobs("echo")).text.count("<uws:jobref")
    for method in ("post", "delete"):
        target = cors_live.jobs("echo") if method == "post" else job
        refused = getattr(requests, method)(
            target, data={"text": "x"}, headers={"Origin": OTHER}, allow_redirects=False
        )
        assert refused.status_code == 403 and "CORS" in refused.text
        assert "Access-Control-Allow-Origin" not in refused.headers
    assert http.get(cors_live.jobs("echo")).text.count("<uws:jobref") == before
    assert http.get(job).status_code == 200  # not deleted


def test_cors_off_by_default(live):
    r = requests.options(
        live.jobs("echo"), headers={"Origin": PORTAL, "Access-Control-Request-Method": "GET"}
    )
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers
    got = requests.get(live.url + "/services", headers={"Origin": PORTAL})
    assert "Access-Control-Allow-Origin" not in got.headers
    # Same-origin and Origin-less clients are unaffected.
    same = requests.post(
        live.jobs("echo"), data={"text": "a"}, headers={"Origin": live.url}, allow_redirects=False
    )
    assert same.status_code == 303


def test_cors_config_checks(tmp_path):
    path = tmp_path / "opus.toml"
    path.write_text('cors_origins = "*"\ncors_credentials = true\n')
    with pytest.raises(ConfigError, match="cors_credentials"):
        load_config(path, environ={})
    path.write_text('cors_origins = ["https://a.example", "https://b.example"]\n')
    assert load_config(path, environ={}).cors_origins == "https://a.example, https://b.example"


def test_admin_pages_need_the_admin_role(config, http):
    token_config = with_config(config, auth="token")
    admin = add_user(token_config, "root", roles=["admin"])
    plain = add_user(token_config, "bob")
    server = start_live(token_config)
    try:
        for path in ("/ui/admin/", "/ui/admin/users", "/ui/admin/jobs", "/ui/admin/editor"):
            r = requests.get(server.url + path, headers={"Authorization": f"Bearer {plain}"})
            assert r.status_code == 403 and "not an administrator" in r.text, path
            r = requests.get(server.url + path, allow_redirects=False)
            assert r.status_code == 303 and "/ui/signin" in r.headers["Location"]
            r = requests.get(server.url + path, headers={"Authorization": f"Bearer {admin}"})
            assert r.status_code == 200, path
        # A POST without the form token is refused even for an admin.
        r = requests.post(
            server.url + "/ui/admin/users",
            data={"action": "create", "user": "eve"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert r.status_code == 403
    finally:
        server.stop()


def test_anonymous_mode_admin_only_from_loopback(live):
    assert requests.get(live.url + "/ui/admin/").status_code == 200
    from werkzeug.test import Client

    client = Client(live.app)
    far = client.get("/ui/admin/", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert far.status_code == 403 and "loopback" in far.get_data(as_text=True)


def test_overview_lists_problems_and_masks_secrets(config, tmp_path):
    (config.services / "broken.xml").write_text("<VOTABLE>")
    server = start_live(with_config(config, base_url=""))
    try:
        page = requests.get(server.url + "/ui/admin/").text
        assert "broken.xml" in page and "malformed XML" in page
        assert 'data-key="cors_origins"' in page
    finally:
        server.stop()
    fake = dataclasses.make_dataclass(
        "Fake", [("api_token", str), ("base_url", str), ("port", int), ("db_password", str)]
    )
    masked = dict(mask_config(fake("s3cr3t", "https://joe:pw@host/x", 80, "")))
    assert masked == {
        "api_token": MASK,
        "base_url": "https://••••@host/x",
        "port": "80",
        "db_password": "",
    }
    assert all("s3cr3t" not in v for v in masked.values())
    assert dict(mask_config(Config()))["callback_key_file"] == ""


def test_editor_round_trip_of_every_bundled_service():
    services, problems = load_services(SERVICES)
    assert problems == [] and services
    for svc in services.values():
        result = check_draft(draft_from_form(_as_form(draft_from_service(svc))))
        assert result.problems == {}, svc.name
        assert result.service == dataclasses.replace(
            svc, source=result.service.source, script_source=result.service.script_source
        )


def test_editor_places_problems_next_to_fields(live, http):
    url = live.url + "/ui/admin/editor"
    token = _csrf(http, url)
    form = {
        "csrf_token": token,
        "action": "xml",
        "name": "bad name",
        "execution_duration": "soon",
        "script": "",
        "p_count": "2",
        "p0_name": "n",
        "p0_datatype": "int",
        "p0_minimum": "5",
        "p0_maximum": "2",
        "p0_order": "1",
        "p1_name": "PHASE",
        "p1_datatype": "char",
        "p1_order": "2",
        "g_count": "1",
        "g0_name": "out<b>",
        "g0_default": "out.txt",
    }
    r = http.post(url, data=form, headers={"Origin": live.url})
    assert r.status_code == 400
    assert "text/html" in r.headers["Content-Type"]
    assert 'id="err-name"' in r.text and 'id="err-execution_duration"' in r.text
    assert 'id="err-p0_minimum"' in r.text and "greater than MAX" in r.text
    assert 'id="err-p1_name"' in r.text and "reserved" in r.text
    assert 'id="err-script"' in r.text
    assert "out<b>" not in r.text and "out&lt;b&gt;" in r.text
    bad = http.post(url, data={"csrf_token": token, "p_count": "999999"})
    assert bad.status_code == 400 and "p_count" in bad.text


def test_editor_download_reorder_and_upload(live, http, tmp_path):
    url = live.url + "/ui/admin/editor"
    token = _csrf(http, url)
    draft = draft_from_service(live.app.jobs.service("echo"))
    form = _as_form(draft) | {"csrf_token": token, "action": "xml", "name": "echo2"}
    form["p0_order"] = "9"  # text moves last
    form["p3_remove"] = "on"  # mode is dropped
    r = http.post(url, data=form)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Disposition"] == 'attachment; filename="echo2.xml"'
    sh = http.post(url, data=form | {"action": "sh"})
    assert sh.content == live.app.jobs.service("echo").script.encode()
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "echo2.xml").write_bytes(r.content)
    (folder / "echo2.sh").write_bytes(sh.content)
    loaded, problems = load_services(folder)
    assert problems == []
    assert [p.name for p in loaded["echo2"].parameters] == ["n", "scale", "text"]
    # The server wrote nothing into services/.
    assert not (live.app.config.services / "echo2.xml").exists()
    up = http.post(
        url,
        data={"csrf_token": token, "action": "upload"},
        files={"xml_file": ("echo2.xml", r.content), "sh_file": ("echo2.sh", sh.content)},
    )
    assert up.status_code == 200 and "loaded echo2.xml" in up.text
    assert 'value="scale"' in up.text
    junk = http.post(
        url,
        data={"csrf_token": token, "action": "upload"},
        files={"xml_file": ("x.xml", b"<VOTABLE")},
    )
    assert junk.status_code == 400 and "malformed XML" in junk.text


def test_admin_bulk_delete_and_users_over_http(live, http):
    jobs = [create(http, live, "echo", {"text": str(i)}) for i in range(3)]
    url = live.url + "/ui/admin/jobs"
    token = _csrf(http, url)
    page = http.get(url).text
    assert all(j.rsplit("/", 1)[1] in page for j in jobs)
    chosen = [f"echo/{j.rsplit('/', 1)[1]}" for j in jobs[:2]]
    r = http.post(url, data={"csrf_token": token, "action": "delete", "job": chosen})
    assert r.status_code == 200 and "delete: 2 job(s) done" in r.text
    assert http.get(jobs[0]).status_code == 404 and http.get(jobs[2]).status_code == 200
    r = http.post(url, data={"csrf_token": token, "action": "explode", "job": chosen})
    assert r.status_code == 400
    users = live.url + "/ui/admin/users"
    r = http.post(users, data={"csrf_token": token, "action": "create", "user": "carol"})
    assert r.status_code == 200
    issued = re.search(r'id="new-token-value">(om_[^<]+)<', r.text).group(1)
    assert live.app.auth.users.get("carol") is not None
    assert issued not in http.get(users).text  # shown once
    r = http.post(users, data={"csrf_token": token, "action": "create", "user": "bad name!"})
    assert r.status_code == 400 and "user name" in r.text


def test_new_service_cli_output_passes_check(tmp_path, capsys):
    folder = tmp_path / "svc"
    assert main(["new-service", "my_tool", "--dir", str(folder)]) == 0
    assert (folder / "my_tool.sh").stat().st_mode & 0o111
    assert main(["check", str(folder)]) == 0
    assert "ok      my_tool" in capsys.readouterr().out
    assert main(["new-service", "my_tool", "--dir", str(folder)]) == 1
    assert main(["new-service", "1bad", "--dir", str(folder)]) == 2
    assert "not valid" in capsys.readouterr().err
    services, _ = load_services(folder)
    assert [p.name for p in services["my_tool"].parameters] == ["message"]
    assert not Path("my_tool.xml").exists()
