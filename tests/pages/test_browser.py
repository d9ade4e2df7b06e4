"""The pages in a real Chromium: forms, browser and server validation, the live job page,
results and images, abort and delete, lists, escaping, sign-in, phone width, screenshots."""

from __future__ import annotations

import re
import struct

import pytest
import requests

from tests.conftest import create, phase_of, start_live, wait_final, with_config
from tests.test_identity import add_user

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def phase_is(page, phase: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "p => document.getElementById('phase').textContent.trim() === p",
        arg=phase,
        timeout=timeout,
    )


def rows(page) -> list[str]:
    return page.eval_on_selector_all("tr.job", "trs => trs.map(tr => tr.dataset.job)")


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def events_file(live, http, tmp_path):
    """A small simulated event list (FITS), made by the server's own simulate_events."""
    url = create(
        http,
        live,
        "simulate_events",
        {"n_source": "400", "n_background": "400", "seed": "7", "PHASE": "RUN"},
    )
    assert phase_of(wait_final(http, url, timeout=60)) == "COMPLETED"
    path = tmp_path / "events.fits"
    path.write_bytes(http.get(f"{url}/results/events").content)
    return path


def test_services_form_and_validation_in_the_browser_and_on_the_server(
    live, page, page_errors, screenshot_dir
):
    page.goto(live.url + "/")
    assert "Writes a text n times" in page.inner_text("#service-echo")
    assert "opus-min@example.org" in page.inner_text("#service-echo .contact")
    page.click("#service-echo h2 a")
    page.wait_for_url(f"{live.url}/ui/services/echo")
    # Fields, units, defaults, the select and the required marks come from the description.
    assert page.input_value("#f-n") == "3" and page.input_value("#f-text") == "Hello World"
    assert "[deg]" in page.inner_text("label[for=f-scale]")
    assert "*" in page.inner_text("label[for=f-n]") and "*" not in page.inner_text(
        "label[for=f-mode]"
    )
    options = page.eval_on_selector_all("#f-mode option", "os => os.map(o => o.value)")
    assert options == ["", "as-is", "upper", "lower"]
    assert page.input_value("#f-mode") == "as-is"
    assert "How many times to write it" in page.inner_text("#field-n")
    assert not page.is_visible("#f-runid")  # tucked away in <details>
    page.click("#controls summary")
    assert page.is_visible("#f-runid")
    # The browser refuses an out-of-range value: no request leaves the page.
    page.fill("#f-n", "5000")
    page.click("button.primary")
    assert page.url == f"{live.url}/ui/services/echo"
    assert page.eval_on_selector("#f-n", "e => e.validity.rangeOverflow") is True
    assert page.eval_on_selector("#f-n", "e => e.validationMessage") != ""
    assert live.app.jobs.store.list_page(["echo"], None, (), 0, 10) == []
    # Without the browser's check the server refuses it and says so next to the field.
    page.eval_on_selector("#job-form", "f => { f.noValidate = true; }")
    page.fill("#f-text", "kept & <shown>")
    page.click("button.primary")
    page.wait_for_selector("#f-n-error")
    page_errors.clear()  # the 400 answer is logged by Chromium as a failed load
    assert page.inner_text("#field-n #f-n-error") == "n: 5000 is above the maximum 1000"
    assert page.input_value("#f-n") == "5000" and page.input_value("#f-text") == "kept & <shown>"
    page.screenshot(path=str(screenshot_dir / "form-refused-laptop.png"), full_page=True)
    assert live.app.jobs.store.list_page(["echo"], None, (), 0, 10) == []


def test_job_page_follows_the_phase_with_wait_and_offers_results(live, page, tmp_path):
    waits: list[str] = []
    page.on("request", lambda r: waits.append(r.url) if "WAIT=" in r.url else None)
    page.goto(live.url + "/ui/services/sleep")
    page.fill("#f-seconds", "2")
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/ui/jobs/sleep/[0-9a-z]{25}$"))
    job_url = page.get_attribute("#job", "data-uws")
    assert page.inner_text("#phase") in ("QUEUED", "EXECUTING")
    page.evaluate("window.__marker = 'not reloaded'")
    phase_is(page, "COMPLETED")
    assert page.evaluate("window.__marker") == "not reloaded"
    # The loop blocked in WAIT (one request per phase change), it did not poll.
    assert waits and all("WAIT=30&PHASE=" in url for url in waits)
    assert len(waits) <= 4, waits
    assert page.inner_text("#ended") != "—" and page.inner_text("#started") != "—"
    assert not page.is_visible("#abort") and not page.is_visible("#run")
    listed = page.eval_on_selector_all(
        "#results tr[data-result]", "t => t.map(r => r.dataset.result)"
    )
    assert listed == ["waited", "stdout", "stderr"]
    with page.expect_download() as download:
        page.click("tr[data-result=waited] a.download")
    saved = tmp_path / "waited.txt"
    download.value.save_as(saved)
    assert saved.read_bytes() == requests.get(f"{job_url}/results/waited").content
    assert download.value.suggested_filename == "waited.txt"
    assert page.inner_text("tr[data-result=waited] .size").endswith("bytes")


def test_png_results_show_inline_and_the_provenance_graph_draws(
    live, page, events_file, screenshot_dir
):
    page.goto(live.url + "/ui/services/counts_map")
    page.set_input_files("#f-events", str(events_file))
    page.fill("#f-nxpix", "60")
    page.fill("#f-nypix", "60")
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/ui/jobs/counts_map/"))
    phase_is(page, "COMPLETED", timeout=90_000)
    img = "#preview-counts_map_png img"
    page.wait_for_function(
        "s => { const i = document.querySelector(s);"
        " return i && i.complete && i.naturalWidth > 0 }",
        arg=img,
    )
    assert page.get_attribute(img, "src").endswith("/results/counts_map_png")
    assert page.locator("figure.preview").count() == 1  # the FITS image is a download only
    assert "events.fits" in page.inner_text("tr[data-parameter=events]")
    if page.locator("#provenance").count():
        page.wait_for_function(
            "() => { const i = document.querySelector('#provenance img');"
            " return i.complete && i.naturalWidth > 0 }"
        )
        links = page.eval_on_selector_all(".prov-links a", "as => as.map(a => a.textContent)")
        assert links == ["PROV-JSON", "PROV-XML", "PROV-N", "SVG"]
    shot = screenshot_dir / "job-counts_map.png"
    page.screenshot(path=str(shot), full_page=True)
    assert png_size(shot)[0] == 1280


def test_abort_and_delete_buttons_follow_the_phase(live, page):
    dialogs: list[str] = []
    answer = {"accept": False}

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.accept() if answer["accept"] else dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(live.url + "/ui/services/sleep")
    page.fill("#f-seconds", "120")
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/ui/jobs/sleep/"))
    page_url = page.url
    phase_is(page, "EXECUTING")
    assert page.is_visible("#abort") and not page.is_visible("#run")
    page.click("#abort")  # dismissed: nothing happens
    assert dialogs == ["Abort this job?"] and page.inner_text("#phase") == "EXECUTING"
    answer["accept"] = True
    page.click("#abort")
    phase_is(page, "ABORTED")
    assert page.url == page_url and not page.is_visible("#abort")
    job_url = page.get_attribute("#job", "data-uws")
    assert phase_of_url(job_url) == "ABORTED"
    page.click("#delete")
    page.wait_for_url(f"{live.url}/ui/services/sleep/jobs")
    assert dialogs[-1] == "Delete this job and its files?"
    assert rows(page) == []
    assert requests.get(job_url).status_code == 404


def phase_of_url(url: str) -> str:
    return requests.get(f"{url}/phase").text


def test_a_pending_job_runs_from_its_page(live, page, http):
    url = create(http, live, "echo", {"text": "later"})
    page.goto(url.replace("/rest/", "/ui/jobs/"))
    assert page.inner_text("#phase") == "PENDING" and page.is_visible("#run")
    page.click("#run")
    phase_is(page, "COMPLETED")
    assert "wrote 3 lines" in page.inner_text("#log-stdout")
    output = page.get_attribute("tr[data-result=output] a.download", "href")
    assert requests.get(output).text.startswith("later\nlater\nlater")


def test_job_list_filters_and_pages_in_the_browser(live, page, http):
    pending = [create(http, live, "echo").rsplit("/", 1)[1] for _ in range(4)]
    done = create(http, live, "echo", {"PHASE": "RUN"})
    wait_final(http, done)
    done_id = done.rsplit("/", 1)[1]
    page.goto(live.url + "/ui/jobs?per_page=2")
    assert rows(page) == [done_id, pending[3]]
    page.click("#older")
    assert rows(page) == [pending[2], pending[1]] and "Page 2" in page.inner_text("#page-number")
    page.click("#older")
    assert rows(page) == [pending[0]] and page.locator("#older").count() == 0
    page.click("#newer")
    assert rows(page) == [pending[2], pending[1]]
    page.select_option("#filter-phase", "COMPLETED")
    page.click("#filter button[type=submit]")
    assert rows(page) == [done_id]
    page.select_option("#filter-phase", "PENDING")
    page.select_option("#filter-service", "sleep")
    page.click("#filter button[type=submit]")
    assert rows(page) == [] and page.is_visible("#no-jobs")
    page.goto(live.url + "/ui/services/echo/jobs?phase=PENDING")
    assert rows(page) == list(reversed(pending))
    page.click(f"tr[data-job='{pending[0]}'] a.job-link")
    page.wait_for_url(f"{live.url}/ui/jobs/echo/{pending[0]}")


def test_values_are_shown_as_text_never_run(live, page):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(live.url + "/ui/services/echo")
    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    page.fill("#f-text", payload)
    page.fill("#f-n", "1")
    page.click("#controls summary")
    page.fill("#f-runid", "<b>run</b>")
    page.click("button.primary")
    page.wait_for_url(re.compile(r"/ui/jobs/echo/"))
    phase_is(page, "COMPLETED")
    assert page.inner_text("tr[data-parameter=text] code") == payload
    assert page.inner_text("#run-id") == "<b>run</b>"
    assert page.locator("#job script, #job img[src=x], #job b").count() == 0
    page.click("tr[data-result=output] a:not(.download)")  # the raw result, sandboxed
    page.wait_for_url(re.compile(r"/results/output$"))
    assert page.inner_text("body").startswith(payload)
    page.goto(live.url + "/ui/jobs")
    assert "<b>run</b>" in page.inner_text("#job-table")
    assert dialogs == []


def test_sign_in_then_run_a_job_with_the_cookie(config, page, page_errors):
    token_config = with_config(config, auth="token")
    token = add_user(token_config, "ann")
    server = start_live(token_config)
    try:
        page.goto(server.url + "/ui/jobs")
        page.wait_for_url(re.compile(r"/ui/signin\?next="))
        page.fill("#f-token", "om_not-a-real-token")
        page.click("#signin button")
        page.wait_for_selector("#signin-error")
        assert page_errors == [
            "Failed to load resource: the server responded with a status of 403 (FORBIDDEN)"
        ]
        page_errors.clear()
        page.fill("#f-token", token)
        page.click("#signin button")
        page.wait_for_url(f"{server.url}/ui/jobs")
        assert "ann" in page.inner_text("header .who")
        cookie = next(c for c in page.context.cookies() if c["name"] == "opus_min_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == ""  # neither cookie is visible to scripts
        page.goto(server.url + "/ui/services/sleep")
        page.fill("#f-seconds", "1")
        page.click("button.primary")
        page.wait_for_url(re.compile(r"/ui/jobs/sleep/"))
        phase_is(page, "COMPLETED")  # the WAIT loop is authenticated by the cookie
        job_url = page.get_attribute("#job", "data-uws")
        ann = requests.get(f"{job_url}/owner", headers={"Authorization": f"Bearer {token}"})
        assert ann.text == "ann"
        page.click("header form button")  # sign out
        page.wait_for_url(f"{server.url}/ui/")
        page.goto(server.url + "/ui/jobs")
        page.wait_for_url(re.compile(r"/ui/signin"))
    finally:
        server.stop()


def test_pages_fit_a_phone_and_screenshots_are_written(
    live, browser, http, page_errors, screenshot_dir
):
    url = create(http, live, "echo", {"text": "phone", "PHASE": "RUN"})
    wait_final(http, url)
    job_page = url.replace("/rest/", "/ui/jobs/")
    sizes = {
        "laptop": {"viewport": {"width": 1280, "height": 900}},
        "phone": {
            "viewport": {"width": 390, "height": 844},
            "device_scale_factor": 2,
            "is_mobile": True,
            "has_touch": True,
        },
    }
    pages = {
        "services": live.url + "/",
        "form-echo": live.url + "/ui/services/echo",
        "jobs": live.url + "/ui/jobs",
        "job-echo": job_page,
    }
    for size, options in sizes.items():
        context = browser.new_context(**options)
        try:
            tab = context.new_page()
            tab.on("pageerror", lambda exc: page_errors.append(str(exc)))
            for name, target in pages.items():
                tab.goto(target)
                assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
                    size,
                    name,
                )
                shot = screenshot_dir / f"{name}-{size}.png"
                tab.screenshot(path=str(shot), full_page=True)
                width, height = png_size(shot)
                expected = 1280 if size == "laptop" else 780
                assert width == expected and height > 300, (name, size, width, height)
        finally:
            context.close()
    assert page_errors == []
