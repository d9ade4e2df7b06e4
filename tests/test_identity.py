"""Identity modes, ownership of jobs, roles and limits, over the live server; the users CLI."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading

import pytest
import requests
from lxml import etree

from opus_min.config import ConfigError, load_config
from opus_min.identity import hash_token
from opus_min.users import UserStore
from opus_min.uws.store import JobStore
from opus_min.wsgi import URL_MAP
from tests.conftest import create, phase_of, start_live, wait_final, with_config

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"


def add_user(config, name, roles=(), max_active=None, token=True) -> str | None:
    users = UserStore(JobStore(config.database))
    users.add(name, list(roles), max_active)
    return users.issue_token(name)[1] if token else None


def session(token: str | None = None, **headers) -> requests.Session:
    s = requests.Session()
    if token:
        s.headers["Authorization"] = f"Bearer {token}"
    s.headers.update(headers)
    return s


@pytest.fixture
def token_config(config):
    return with_config(config, auth="token")


@pytest.fixture
def tokens(token_config):
    return {
        "ann": add_user(token_config, "ann"),
        "bob": add_user(token_config, "bob"),
        "root": add_user(token_config, "root", roles=["admin"]),
    }


@pytest.fixture
def tlive(token_config, tokens):
    server = start_live(token_config)
    yield server
    server.stop()


def ids(http, url, **params) -> list[str]:
    r = http.get(url, params=params)
    assert r.status_code == 200, r.text
    return [ref.get("id") for ref in etree.fromstring(r.content)]


# -- token mode --------------------------------------------------------------------------------


def test_token_mode_requires_a_valid_token(tlive, tokens):
    plain = session()
    jobs = tlive.jobs("echo")
    for r in (plain.get(jobs), plain.post(jobs, data={}), plain.get(f"{jobs}/1abcdefgh")):
        assert r.status_code == 401 and r.text.startswith("Unauthenticated: ")
        challenges = r.raw.headers.getlist("WWW-Authenticate")
        assert 'Bearer realm="opus_min"' in challenges
        assert 'Basic realm="opus_min", charset="UTF-8"' in challenges
    bad = {
        "Bearer om_wrong": "invalid_token",
        "Bearer ": "invalid_token",
        "Basic !!!": "invalid_request",
        "Basic " + __import__("base64").b64encode(b"no-colon").decode(): "invalid_request",
        "Digest x": "invalid_request",
        "Bearer " + tokens["ann"] + "x": "invalid_token",
        "Bearer " + tokens["ann"].upper(): "invalid_token",
    }
    for header, error in bad.items():
        r = session(Authorization=header).get(jobs)
        assert r.status_code == 401, header
        assert f'error="{error}"' in r.headers["WWW-Authenticate"], header
    # Basic NAME:TOKEN must name the token's own user.
    assert session().get(jobs, auth=("ann", tokens["ann"])).status_code == 200
    assert session().get(jobs, auth=("bob", tokens["ann"])).status_code == 401
    assert session(tokens["ann"]).get(jobs).status_code == 200
    # Nothing was created by the refused requests.
    assert ids(session(tokens["root"]), jobs) == []


def test_owner_is_the_authenticated_user(tlive, tokens, assert_valid):
    ann = session(tokens["ann"])
    url = create(ann, tlive, "echo")
    doc = assert_valid(ann.get(url).content)
    assert doc.findtext(f"{UWS}ownerId") == "ann"
    assert ann.get(f"{url}/owner").text == "ann"
    listing = etree.fromstring(ann.get(tlive.jobs("echo")).content)
    assert listing[0].findtext(f"{UWS}ownerId") == "ann"


def job_resources():
    """Every (method, path suffix) the URL map serves under a job, with sample values."""
    samples = {"name": "text", "result_id": "stdout"}
    for rule in URL_MAP.iter_rules():
        if not rule.rule.startswith("/rest/<service>/<job_id>"):
            continue
        if "callback" in rule.endpoint or "event" in rule.endpoint:
            continue  # job-state callbacks authenticate with the per-job secret instead
        suffix = rule.rule.removeprefix("/rest/<service>/<job_id>")
        suffix = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: samples.get(m.group(1), "x"), suffix)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, suffix


CHANGES = {
    "": {"n": "7", "PHASE": "RUN", "ACTION": "DELETE"},
    "/phase": {"PHASE": "ABORT"},
    "/executionduration": {"EXECUTIONDURATION": "5"},
    "/destruction": {"DESTRUCTION": "2030-01-01T00:00:00Z"},
    "/parameters": {"n": "9"},
}


def test_another_users_job_is_403_for_every_method_and_resource(tlive, tokens):
    ann, bob = session(tokens["ann"]), session(tokens["bob"])
    url = create(ann, tlive, "echo", {"text": "mine", "PHASE": "RUN"})
    assert phase_of(wait_final(ann, url)) == "COMPLETED"
    pending = create(ann, tlive, "echo", {"text": "mine too"})
    tried = []
    for target in (url, pending):
        for method, suffix in job_resources():
            extra = ["/results/nonexistent", "/parameters/nonexistent"] if method == "GET" else []
            for path in [suffix, *extra]:
                data = CHANGES.get(path) if method == "POST" else None
                r = bob.request(method, target + path, data=data, allow_redirects=False)
                assert r.status_code == 403, (method, path, r.status_code, r.text)
                assert (
                    r.text == f"Forbidden: job {target.rsplit('/', 1)[1]} belongs to another user\n"
                )
                assert "mine" not in r.text
                tried.append((method, path))
        r = bob.get(target, params={"WAIT": "2"})
        assert r.status_code == 403
    assert {("DELETE", ""), ("POST", "/parameters"), ("GET", "/results/stdout")} <= set(tried)
    # Nothing changed: both jobs are still ann's, as they were.
    assert phase_of(etree.fromstring(ann.get(url).content)) == "COMPLETED"
    doc = etree.fromstring(ann.get(pending).content)
    assert phase_of(doc) == "PENDING"
    params = {p.get("id"): p.text for p in doc.iter(f"{UWS}parameter")}
    assert params["n"] == "3" and params["text"] == "mine too"
    assert ann.get(f"{pending}/executionduration").text == "60"


def test_lists_are_per_user_and_the_admin_sees_and_manages_all(tlive, tokens):
    ann, bob, root = (session(tokens[n]) for n in ("ann", "bob", "root"))
    a = [create(ann, tlive, "echo").rsplit("/", 1)[1] for _ in range(2)]
    b = create(bob, tlive, "echo").rsplit("/", 1)[1]
    jobs = tlive.jobs("echo")
    assert ids(ann, jobs) == list(reversed(a))
    assert ids(bob, jobs) == [b]
    assert ids(bob, jobs, PHASE="PENDING", LAST="5") == [b]
    assert set(ids(root, jobs)) == {*a, b}
    # The admin reads, changes and deletes anybody's job; ownership stays with the owner.
    assert root.get(f"{jobs}/{a[0]}/owner").text == "ann"
    r = root.post(f"{jobs}/{a[0]}/phase", data={"PHASE": "ABORT"}, allow_redirects=False)
    assert r.status_code == 303
    assert ann.get(f"{jobs}/{a[0]}/phase").text == "ABORTED"
    assert root.delete(f"{jobs}/{b}", allow_redirects=False).status_code == 303
    assert bob.get(f"{jobs}/{b}").status_code == 404
    assert ids(bob, jobs) == []


def test_revoked_tokens_and_disabled_users_are_refused(tlive, token_config, tokens):
    users = UserStore(JobStore(token_config.database))
    token_id, second = users.issue_token("ann")
    jobs = tlive.jobs("echo")
    assert session(second).get(jobs).status_code == 200
    users.revoke_token(token_id)
    assert session(second).get(jobs).status_code == 401
    assert session(tokens["ann"]).get(jobs).status_code == 200
    users.revoke_user("ann")
    assert session(tokens["ann"]).get(jobs).status_code == 401


# -- roles and limits --------------------------------------------------------------------------


def test_restricted_services_need_their_role(token_config):
    config = with_config(token_config, restricted_services="sleep, fail")
    plain = add_user(config, "plain")
    sleeper = add_user(config, "sleeper", roles=["sleep"])
    admin = add_user(config, "boss", roles=["admin"])
    live = start_live(config)
    try:
        r = session(plain).post(live.jobs("sleep"), data={"seconds": "1"}, allow_redirects=False)
        assert r.status_code == 403
        assert r.text == "Forbidden: creating sleep jobs needs the role 'sleep' or admin\n"
        assert session(plain).post(live.jobs("fail"), allow_redirects=False).status_code == 403
        assert list(config.work_root.iterdir()) == []
        create(session(plain), live, "echo")  # unrestricted
        create(session(sleeper), live, "sleep", {"seconds": "1"})
        assert session(sleeper).post(live.jobs("fail"), allow_redirects=False).status_code == 403
        create(session(admin), live, "fail")
    finally:
        live.stop()


def test_active_job_limit_is_403_with_a_message_and_atomic(token_config):
    config = with_config(token_config, max_active_jobs=3)
    ann = add_user(config, "ann")
    free = add_user(config, "free", max_active=0)
    live = start_live(config)
    try:
        s = session(ann)
        statuses: list[int] = []
        lock = threading.Lock()

        def post() -> None:
            with requests.Session() as own:
                own.headers["Authorization"] = f"Bearer {ann}"
                code = own.post(live.jobs("echo"), allow_redirects=False).status_code
            with lock:
                statuses.append(code)

        threads = [threading.Thread(target=post) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [303] * 3 + [403] * 7
        r = s.post(live.jobs("echo"), allow_redirects=False)
        assert r.status_code == 403
        assert r.text == (
            "Forbidden: user ann already has 3 active jobs, the limit: wait for one to finish,"
            " or abort or delete one\n"
        )
        assert len(list(config.work_root.iterdir())) == 3
        # A finished job no longer counts.
        first = ids(s, live.jobs("echo"))[0]
        s.post(f"{live.jobs('echo')}/{first}/phase", data={"PHASE": "ABORT"})
        create(s, live, "echo")
        # A user's own limit (0 = none) replaces the configured one.
        for _ in range(4):
            create(session(free), live, "echo")
    finally:
        live.stop()


# -- proxy mode ----------------------------------------------------------------------------------


def test_proxy_user_is_believed_only_from_the_trusted_peer(config):
    trusted = with_config(config, auth="proxy", proxy_trusted="10.9.9.9, 127.0.0.1")
    add_user(trusted, "chief", roles=["admin"], token=False)
    add_user(trusted, "gone", token=False)
    UserStore(JobStore(trusted.database)).revoke_user("gone")
    live = start_live(trusted)
    try:
        ann = session(**{"X-Remote-User": "ann"})
        url = create(ann, live, "echo")
        assert ann.get(f"{url}/owner").text == "ann"
        assert session(**{"X-Remote-User": "bob"}).get(url).status_code == 403
        assert session(**{"X-Remote-User": "chief"}).get(url).status_code == 200
        assert session(**{"X-Remote-User": "gone"}).get(url).status_code == 403
        r = session().get(url)
        assert r.status_code == 401 and "did not name a user" in r.text
        # waitress drops header names with "_": no smuggling past a proxy that sets the "-" one.
        assert session(**{"X_Remote_User": "ann"}).get(url).status_code == 401
        assert session(**{"X-Remote-User": "a b"}).get(url).status_code == 401
    finally:
        live.stop()
    elsewhere = with_config(config, auth="proxy", proxy_trusted="10.9.9.9/32")
    folders = set(elsewhere.work_root.iterdir())
    live = start_live(elsewhere)
    try:
        spoof = session(**{"X-Remote-User": "ann", "X-Forwarded-For": "10.9.9.9"})
        r = spoof.get(live.jobs("echo"))
        assert r.status_code == 403
        assert (
            r.text == "Forbidden: requests must come through the authenticating front-end proxy\n"
        )
        spoof.headers["Forwarded"] = "for=10.9.9.9"
        assert spoof.post(live.jobs("echo"), allow_redirects=False).status_code == 403
        assert set(elsewhere.work_root.iterdir()) == folders
    finally:
        live.stop()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('auth = "ldap"\n', "auth: 'ldap' is not one of anonymous, token, proxy"),
        ('auth = "proxy"\n', "needs proxy_trusted"),
        ('auth = "proxy"\nproxy_trusted = "10.0.0.300"\n', "'10.0.0.300' is not an IP"),
        ('proxy_user_header = "X_Remote_User"\n', "proxy_user_header"),
        ("max_active_jobs = -1\n", "max_active_jobs"),
    ],
)
def test_identity_configuration_errors(tmp_path, text, message):
    path = tmp_path / "opus.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path, environ={})


def test_identity_configuration_accepts_toml_arrays(tmp_path):
    path = tmp_path / "opus.toml"
    path.write_text(
        'auth = "proxy"\nproxy_trusted = ["127.0.0.1", "::1", "10.0.0.0/8"]\n'
        'restricted_services = ["sleep"]\nproxy_user_header = "REMOTE_USER"\n'
    )
    config = load_config(path, environ={"OPUS_MIN_MAX_ACTIVE_JOBS": "5"})
    assert config.proxy_trusted == "127.0.0.1, ::1, 10.0.0.0/8"
    assert config.restricted_services == "sleep" and config.max_active_jobs == 5


# -- the users CLI -------------------------------------------------------------------------------


def cli(tmp_path, *args):
    return subprocess.run(
        [sys.executable, "-m", "opus_min", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"OPUS_MIN_DATABASE": str(tmp_path / "db.sqlite"), "PATH": "/usr/bin:/bin"},
    )


def test_users_cli_add_list_token_revoke(tmp_path):
    out = cli(tmp_path, "users", "add", "ann", "--role", "admin", "--max-active", "4")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert re.fullmatch(r"om_[A-Za-z0-9_-]{43}", token)
    assert "shown once" in out.stderr
    second = cli(tmp_path, "users", "token", "ann").stdout.strip()
    assert second != token
    assert cli(tmp_path, "users", "add", "ann").returncode == 1
    assert cli(tmp_path, "users", "add", "no spaces").returncode == 2
    listing = cli(tmp_path, "users", "list").stdout
    assert re.search(r"^ann\s+enabled\s+4\s+admin\s+t[0-9a-f]{10} t[0-9a-f]{10}$", listing, re.M)
    assert token not in listing and second not in listing
    # Only digests are stored.
    raw = (tmp_path / "db.sqlite").read_bytes()
    assert token.encode() not in raw and second.encode() not in raw
    digests = sqlite3.connect(tmp_path / "db.sqlite").execute("SELECT digest FROM tokens")
    assert {d for (d,) in digests} == {hash_token(token), hash_token(second)}
    changed = cli(tmp_path, "users", "set", "ann", "--no-roles", "--max-active", "default")
    assert changed.returncode == 0 and "roles -, max-active default" in changed.stderr
    token_id = listing.split()[-1]
    assert cli(tmp_path, "users", "revoke", "--token", token_id).returncode == 0
    assert cli(tmp_path, "users", "revoke", "--token", token_id).returncode == 1
    out = cli(tmp_path, "users", "revoke", "ann")
    assert out.returncode == 0 and "disabled, 1 token(s) revoked" in out.stderr
    assert "disabled" in cli(tmp_path, "users", "list").stdout
    assert cli(tmp_path, "users", "token", "ann").returncode == 1
