"""The bundled astronomy chain through the live server: events → counts map → significance map."""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from lxml import etree

from tests.conftest import create, phase_of, wait_final

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
FITSVERIFY = shutil.which("fitsverify")
SOURCE = {"ra": "83.633", "dec": "22.0145"}


def run(http, live, service, data, files=None):
    url = create(http, live, service, {**data, "PHASE": "RUN"}, files=files)
    doc = wait_final(http, url, timeout=120)
    assert phase_of(doc) == "COMPLETED", etree.tostring(doc).decode()
    results = {r.get("id"): r for r in doc.iter(f"{UWS}result")}
    return url, results


def fetch(http, url, result_id):
    r = http.get(f"{url}/results/{result_id}")
    assert r.status_code == 200
    return r.content


def check_fits(data: bytes, tmp_path, name):
    with fits.open(io.BytesIO(data), checksum=True) as hdus:
        hdus.verify("exception")
        for hdu in hdus:
            assert hdu.verify_checksum() == 1 and hdu.verify_datasum() == 1
    if FITSVERIFY:
        path = tmp_path / name
        path.write_bytes(data)
        out = subprocess.run([FITSVERIFY, "-q", str(path)], capture_output=True, text=True)
        assert out.returncode == 0 and "verification OK" in out.stdout, out.stdout


@pytest.fixture
def events(live, http, tmp_path):
    url, results = run(
        http,
        live,
        "simulate_events",
        {**SOURCE, "n_source": "3000", "n_background": "4000", "seed": "7", "obs_id": "1234"},
    )
    assert results["events"].get("mime-type") == "application/fits"
    data = fetch(http, url, "events")
    check_fits(data, tmp_path, "events.fits")
    return data


def test_simulated_events_are_reproducible_and_well_formed(live, http, events):
    with fits.open(io.BytesIO(events)) as hdus:
        table = hdus["EVENTS"].data
        header = hdus["EVENTS"].header
        assert header["OBS_ID"] == 1234 and header["RADESYS"] == "ICRS"
        assert len(table) == 7000
        assert [c.unit for c in hdus["EVENTS"].columns] == ["s", "deg", "deg", "TeV"]
        assert np.all(np.diff(table["TIME"]) >= 0)
        assert table["ENERGY"].min() >= 0.1 and table["ENERGY"].max() <= 100
    again_url, _ = run(
        http,
        live,
        "simulate_events",
        {**SOURCE, "n_source": "3000", "n_background": "4000", "seed": "7", "obs_id": "1234"},
    )
    again = fetch(http, again_url, "events")
    with fits.open(io.BytesIO(events)) as a, fits.open(io.BytesIO(again)) as b:
        assert np.array_equal(a["EVENTS"].data["RA"], b["EVENTS"].data["RA"])


def test_counts_map_then_significance_map(live, http, events, tmp_path):
    params = {**SOURCE, "nxpix": "80", "nypix": "60", "binsz": "0.05", "emin": "0.5", "emax": "50"}
    url, results = run(
        http,
        live,
        "counts_map",
        params,
        files={"events": ("run1234.fits", events, "application/fits")},
    )
    assert results["counts_map_png"].get("mime-type") == "image/png"
    png = fetch(http, url, "counts_map_png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    data = fetch(http, url, "counts_map")
    check_fits(data, tmp_path, "counts_map.fits")
    with fits.open(io.BytesIO(data)) as hdus:
        counts = hdus[0].data
        wcs = WCS(hdus[0].header)
    assert counts.shape == (60, 80)
    assert wcs.wcs.ctype[0] == "RA---TAN" and wcs.wcs.radesys == "ICRS"
    # The simulated source's pixel holds the peak.
    x, y = wcs.world_to_pixel(SkyCoord(83.633, 22.0145, unit="deg"))
    peak_y, peak_x = np.unravel_index(np.argmax(counts), counts.shape)
    assert abs(peak_x - x) <= 1.5 and abs(peak_y - y) <= 1.5
    # Total counts = events inside the map and the energy range, computed independently.
    with fits.open(io.BytesIO(events)) as hdus:
        table = hdus["EVENTS"].data
    keep = (table["ENERGY"] >= 0.5) & (table["ENERGY"] < 50)
    px, py = wcs.world_to_pixel(SkyCoord(table["RA"][keep], table["DEC"][keep], unit="deg"))
    inside = (px > -0.5) & (px < 79.5) & (py > -0.5) & (py < 59.5)
    assert int(counts.sum()) == int(inside.sum()) > 0

    url, results = run(
        http,
        live,
        "significance_map",
        {"radius": "0.15"},
        files={"counts_map": ("counts.fits", data, "application/fits")},
    )
    sig_data = fetch(http, url, "significance_map")
    check_fits(sig_data, tmp_path, "significance_map.fits")
    with fits.open(io.BytesIO(sig_data)) as hdus:
        significance = hdus[0].data
        sig_wcs = WCS(hdus[0].header)
    peak_y, peak_x = np.unravel_index(np.nanargmax(significance), significance.shape)
    assert abs(peak_x - x) <= 2 and abs(peak_y - y) <= 2
    assert significance.max() > 10
    # Far from the source the map is consistent with noise.
    corner = significance[:10, :10]
    assert abs(float(np.mean(corner))) < 2
    assert sig_wcs.wcs.crval[0] == pytest.approx(83.633)
    assert fetch(http, url, "significance_map_png")[:4] == b"\x89PNG"


def test_bad_energy_range_is_a_clear_error(live, http, events):
    url = create(
        http,
        live,
        "counts_map",
        {"emin": "10", "emax": "1", "PHASE": "RUN"},
        files={"events": ("e.fits", events)},
    )
    doc = wait_final(http, url)
    assert phase_of(doc) == "ERROR"
    detail = http.get(f"{url}/error").text
    assert "emin (10.0 TeV) must be below emax (1.0 TeV)" in detail


def test_out_of_bounds_parameters_are_refused(live, http):
    r = http.post(live.jobs("simulate_events"), data={"dec": "91"}, allow_redirects=False)
    assert r.status_code == 400 and "dec" in r.text
    r = http.post(live.jobs("counts_map"), data={"binsz": "0"}, allow_redirects=False)
    assert r.status_code == 400 and "binsz" in r.text


@pytest.mark.skipif(not FITSVERIFY and not os.environ.get("CI"), reason="fitsverify not installed")
def test_fitsverify_is_installed_in_ci():
    assert FITSVERIFY is not None


def test_counts_map_bins_several_event_lists(live, http, events):
    url, _ = run(
        http,
        live,
        "simulate_events",
        {**SOURCE, "n_source": "500", "n_background": "800", "seed": "8", "obs_id": "1235"},
    )
    second = fetch(http, url, "events")
    params = {**SOURCE, "nxpix": "40", "nypix": "40", "binsz": "0.1"}
    url, _ = run(
        http,
        live,
        "counts_map",
        params,
        files=[("events", ("run1234.fits", events)), ("events", ("run1235.fits", second))],
    )
    with fits.open(io.BytesIO(fetch(http, url, "counts_map"))) as hdus:
        counts = hdus[0].data
        header = hdus[0].header
        wcs = WCS(header)
    assert header["OBS_IDS"] == "1234 1235"
    expected = 0
    for data in (events, second):
        with fits.open(io.BytesIO(data)) as hdus:
            table = hdus["EVENTS"].data
        keep = (table["ENERGY"] >= 0.1) & (table["ENERGY"] < 100)
        px, py = wcs.world_to_pixel(SkyCoord(table["RA"][keep], table["DEC"][keep], unit="deg"))
        expected += int(((px > -0.5) & (px < 39.5) & (py > -0.5) & (py < 39.5)).sum())
    assert int(counts.sum()) == expected
    # The UWS parameter lists both local files; the job document shows both uploaded names.
    listing = http.get(f"{url}/parameters/events").text
    assert listing == "events_1.fits\nevents_2.fits\n"
    # Both files are used entities of the job in the role "events".
    import hashlib
    import json

    prov = json.loads(
        http.get(f"{live.url}/provsap", params={"ID": url.rsplit("/", 1)[1], "DEPTH": "1"}).content
    )
    used = [u for u in prov["used"].values() if u.get("prov:role") == "events"]
    assert sorted(u["prov:entity"] for u in used) == sorted(
        f"data:sha256-{hashlib.sha256(d).hexdigest()}" for d in (events, second)
    )
    doc = etree.fromstring(http.get(url).content)
    assert {p.get("id"): p.get("byReference") for p in doc.iter(f"{UWS}parameter")}["events"] == (
        "true"
    )


def test_a_single_valued_input_refuses_a_second_file(live, http, events):
    r = http.post(
        live.jobs("significance_map"),
        files=[("counts_map", ("a.fits", events)), ("counts_map", ("b.fits", events))],
        allow_redirects=False,
    )
    assert r.status_code == 400 and "counts_map: given twice" in r.text
