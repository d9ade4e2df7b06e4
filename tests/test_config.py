"""Configuration: one TOML file plus OPUS_MIN_* environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from opus_min.config import Config, ConfigError, load_config


def test_defaults_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(None, environ={})
    assert config.executor == "local" and config.port == 8000 and config.host == "127.0.0.1"
    assert config.database == tmp_path / "var" / "opus_min.sqlite"


def test_file_then_environment(tmp_path):
    path = tmp_path / "opus.toml"
    path.write_text('port = 9000\nwait_max = 30\nservices = "defs"\nexecutor = "local"\n')
    config = load_config(path, environ={"OPUS_MIN_PORT": "9100", "OPUS_MIN_DATABASE": "/x/db"})
    assert config.port == 9100 and config.wait_max == 30
    assert config.services == tmp_path / "defs"  # relative to the file
    assert config.database == Path("/x/db")
    by_env = load_config(None, environ={"OPUS_MIN_CONFIG": str(path)})
    assert by_env.port == 9000


def test_table_form(tmp_path):
    path = tmp_path / "opus.toml"
    path.write_text("[opus_min]\nthreads = 8\nallow_unlimited_duration = true\n")
    config = load_config(path, environ={})
    assert config.threads == 8 and config.allow_unlimited_duration is True


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("colour = 1\n", {}, "unknown configuration key 'colour'"),
        ("", {"OPUS_MIN_PORT": "eighty"}, "port: 'eighty' is not a valid int"),
        ("", {"OPUS_MIN_EXECUTOR": "pbs"}, "executor"),
        ("wait_max = 600\n", {}, "wait_max"),
        ("port = [\n", {}, "opus.toml"),
    ],
)
def test_errors(tmp_path, text, env, message):
    path = tmp_path / "opus.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(path, environ=env)


def test_dataclass_defaults_are_documented_in_readme():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in Config.__dataclass_fields__:
        assert f"`{name}`" in readme, f"configuration key {name} is not documented"
