"""A short run of ``bench/load.py`` against the live server (token mode): the same checks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from opus_min.users import UserStore
from opus_min.uws.store import JobStore
from tests.conftest import start_live, with_config

BENCH = Path(__file__).resolve().parents[1] / "bench" / "load.py"


def load_module():
    spec = importlib.util.spec_from_file_location("opus_min_bench_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_short_load_has_no_errors_and_loses_no_job(config):
    config = with_config(config, auth="token", threads=16)
    users = UserStore(JobStore(config.database))
    tokens = {}
    for name in ("u1", "u2", "u3"):
        users.add(name, [], None)
        tokens[name] = users.issue_token(name)[1]
    users.add("boss", ["admin"], None)
    admin = users.issue_token("boss")[1]
    load = load_module()
    live = start_live(config)
    try:
        report = load.run_load(live.url, tokens, admin, clients=24, seconds=3)
    finally:
        live.stop()
    assert report.problems == []
    assert report.server_errors == 0 and report.locked == 0
    assert not report.failures
    assert report.requests > 50
    assert sum(len(v) for v in report.created.values()) > 5
    assert set(report.latencies) == {"create", "status", "wait", "list"}
