"""Operator pages in real Chromium: build a service in the editor, download it, load it, run
it after a restart; manage users and bulk-delete jobs."""

from __future__ import annotations

import io
import zipfile

import requests

from opus_min.votable import load_services
from tests.conftest import create, start_live, wait_final, with_config

SCRIPT = """#!/bin/bash
set -euo pipefail
for i in $(seq "$times"); do printf '%s\\n' "$message"; done > output.txt
"""


def test_editor_builds_a_service_that_runs_after_a_restart(
    live, page, page_errors, config, tmp_path, http
):
    page.goto(live.url + "/ui/admin/editor")
    page.fill("#name", "greet")
    page.fill("#description", "Repeats a message")
    page.click("#add-p")
    page.wait_for_selector("#p1_name")
    page.fill("#p1_name", "times")
    page.select_option("#p1_datatype", "int")
    page.fill("#p1_arraysize", "")
    page.fill("#p1_default", "x")  # wrong on purpose: the check marks the field
    page.fill("#p1_minimum", "1")
    page.fill("#p1_maximum", "5")
    page.fill("#script", SCRIPT)
    with page.expect_response(lambda r: r.url.endswith("/ui/admin/editor")) as answer:
        page.click("#check")
    assert answer.value.status == 400
    page.wait_for_selector("[id^='err-p1_']")
    assert "times" in page.inner_text("[id^='err-p1_']")
    page_errors.clear()  # the 400 answer is logged by the browser
    page.fill("#p1_default", "3")
    page.click("#check")
    page.wait_for_selector("#check-ok")
    with page.expect_download() as download:
        page.click("#download-zip")
    data = download.value.path().read_bytes()
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(archive.namelist()) == ["greet.sh", "greet.xml"]
    folder = tmp_path / "new-services"
    folder.mkdir()
    archive.extractall(folder)
    loaded, problems = load_services(folder)
    assert problems == []
    greet = loaded["greet"]
    assert [p.name for p in greet.parameters] == ["message", "times"]
    assert [g.name for g in greet.generated] == ["output"]
    assert not (config.services / "greet.xml").exists()
    # "restart" on a services folder holding the downloaded files
    for path in folder.iterdir():
        (config.services / path.name).write_bytes(path.read_bytes())
    live.stop()
    server = start_live(with_config(config))
    try:
        job = create(http, server, "greet", {"message": "hey", "PHASE": "RUN"})
        wait_final(http, job)
        assert http.get(job + "/results/output").text == "hey\nhey\nhey\n"
    finally:
        server.stop()
    live.stop = lambda: None  # already stopped


def test_admin_pages_users_and_bulk_abort(config, page, page_errors, http):
    token_config = with_config(config, auth="token")
    from tests.test_identity import add_user

    admin = add_user(token_config, "root", roles=["admin"])
    bob = add_user(token_config, "bob")
    server = start_live(token_config)
    try:
        auth = {"Authorization": f"Bearer {bob}"}
        r = requests.post(
            server.jobs("sleep"),
            data={"seconds": "30", "PHASE": "RUN"},
            headers=auth,
            allow_redirects=False,
        )
        job = r.headers["Location"]
        page.goto(server.url + "/ui/signin?next=/ui/admin/")
        page.fill("#f-token", admin)
        page.click("#signin button")
        page.wait_for_url(server.url + "/ui/admin/")
        assert "sleep" in page.inner_text("#loaded-services")
        assert page.is_visible("#load-problems-none")
        page.goto(server.url + "/ui/admin/users")
        page.fill("#new-user", "dana")
        page.fill("#new-roles", "echo")
        page.click("#create-user button")
        page.wait_for_selector("#new-token-value")
        token = page.inner_text("#new-token-value")
        assert requests.get(server.jobs("echo"), headers={"Authorization": f"Bearer {token}"}).ok
        page.click("tr[data-user='dana'] button[value='revoke_user']")
        page.wait_for_selector("#admin-message")
        assert "revoked" in page.inner_text("#admin-message")
        assert (
            requests.get(
                server.jobs("echo"), headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 401
        )
        page.goto(server.url + "/ui/admin/jobs?owner=bob")
        job_id = job.rsplit("/", 1)[1]
        page.check(f"input[value='sleep/{job_id}']")
        page.click("#bulk-abort")
        page.wait_for_selector("#admin-message")
        assert "abort: 1 job(s) done" in page.inner_text("#admin-message")
        phase = requests.get(job + "/phase", headers=auth).text
        assert phase == "ABORTED"
    finally:
        server.stop()
    assert page_errors == []
