"""Pure parts of the Slurm executor (batch script, state mapping, signing), and no callbacks
on the local executor."""

from __future__ import annotations

import os
import stat
from pathlib import PurePath

import pytest

from opus_min.slurm.batch import (
    BatchSettings,
    job_overrides,
    render_batch_script,
    sbatch_options,
    time_limit,
)
from opus_min.slurm.signing import CallbackKey
from opus_min.slurm.states import SlurmState, map_state, parse_exit_code
from opus_min.uws.model import ErrorType, Phase

JOB = "4k3abcdefghijklmnopqrstuv"
DIR = PurePath("/shared/jobs") / JOB
META = DIR / ".opus"


def options(**changes):
    values = dict(job_id=JOB, job_dir=DIR, meta_dir=META, duration=600, settings=BatchSettings())
    values.update(changes)
    return sbatch_options(**values)


def test_options_name_folders_limits_and_defaults():
    opts = options(settings=BatchSettings(partition="debug", nodes=2, ntasks=4, mem="2G"))
    assert opts == [
        f"--job-name=opus-{JOB}",
        f"--chdir={DIR}",
        f"--output={META}/stdout.log",
        f"--error={META}/stderr.log",
        "--no-requeue",
        "--export=NONE",
        "--nodes=2",
        "--ntasks=4",
        "--time=11",
        "--partition=debug",
        "--mem=2G",
    ]


@pytest.mark.parametrize(
    ("seconds", "watchdog", "minutes"),
    [(0, True, None), (0, False, None), (1, False, 1), (60, False, 1), (61, False, 2),
     (3, True, 2), (600, True, 11), (86400, False, 1440)],
)  # fmt: skip
def test_time_limit_in_whole_minutes(seconds, watchdog, minutes):
    assert time_limit(seconds, watchdog=watchdog) == minutes


def test_unlimited_duration_leaves_the_partition_default():
    assert not any(o.startswith("--time") for o in options(duration=0))


def test_per_job_overrides_replace_the_defaults():
    env = {"slurm_partition": "long", "slurm_cpus_per_task": "8", "text": "x", "slurm_mem": ""}
    overrides = job_overrides(env)
    assert overrides == {"partition": "long", "cpus_per_task": "8"}
    opts = options(settings=BatchSettings(partition="debug"), overrides=overrides)
    assert "--partition=long" in opts and "--partition=debug" not in opts
    assert "--cpus-per-task=8" in opts


@pytest.mark.parametrize("value", ["a b", "x\n#SBATCH --uid=0", "$(id)", "a;b", "%j", "'q'"])
def test_override_values_outside_the_safe_set_are_refused(value):
    with pytest.raises(ValueError, match="slurm_partition"):
        job_overrides({"slurm_partition": value})


def test_paths_that_cannot_be_written_safely_are_refused():
    with pytest.raises(ValueError, match="--chdir"):
        options(job_dir=PurePath("/with space/job"))
    with pytest.raises(ValueError, match="--output"):
        options(meta_dir=PurePath("/a%j/.opus"))
    with pytest.raises(ValueError, match="not an option"):
        options(overrides={"uid": "0"})


def test_the_script_has_the_directives_then_execs_the_runner():
    opts = options()
    script = render_batch_script(job_id=JOB, options=opts, runner=META / "runner.sh", meta_dir=META)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert lines[1 : 1 + len(opts)] == [f"#SBATCH {o}" for o in opts]
    code = [line for line in lines if line and not line.startswith("#")]
    assert code == [f"exec /bin/bash {META}/runner.sh {META}"]


def test_rendering_refuses_an_unsafe_option():
    with pytest.raises(ValueError):
        render_batch_script(
            job_id=JOB, options=["--x=1\necho hi"], runner=META / "r.sh", meta_dir=META
        )


@pytest.mark.parametrize(
    ("state", "exit_code", "phase", "words", "kind"),
    [
        ("COMPLETED", "0:0", Phase.COMPLETED, None, None),
        ("CANCELLED", "0:15", Phase.ABORTED, "cancelled in Slurm", ErrorType.FATAL),
        ("CANCELLED by 0", "0:15", Phase.ABORTED, "cancelled in Slurm", ErrorType.FATAL),
        ("TIMEOUT", "0:15", Phase.ABORTED, "time limit (TIMEOUT)", ErrorType.FATAL),
        ("OUT_OF_MEMORY", "0:125", Phase.ERROR, "out of memory", ErrorType.FATAL),
        ("NODE_FAIL", "0:0", Phase.ERROR, "failed (NODE_FAIL)", ErrorType.TRANSIENT),
        ("PREEMPTED", "0:15", Phase.ERROR, "preempted", ErrorType.TRANSIENT),
        ("BOOT_FAIL", "0:0", Phase.ERROR, "BOOT_FAIL", ErrorType.TRANSIENT),
        ("DEADLINE", "0:0", Phase.ABORTED, "deadline", ErrorType.FATAL),
        ("FAILED", "0:9", Phase.ERROR, "killed by signal SIGKILL (9)", ErrorType.FATAL),
        ("FAILED", "2:0", Phase.ERROR, "exit status 2", ErrorType.FATAL),
        ("WHATEVER", "", Phase.ERROR, "unknown Slurm state", ErrorType.TRANSIENT),
    ],
)
def test_final_states_map_to_phases_with_a_clear_summary(state, exit_code, phase, words, kind):
    status, sig = parse_exit_code(exit_code)
    mapped, error = map_state(SlurmState(state, status, sig), "42")
    assert mapped is phase
    if words is None:
        assert error is None
    else:
        assert words in error.message and "42" in error.message
        assert error.type is kind


@pytest.mark.parametrize("state", ["PENDING", "CONFIGURING", "REQUEUED"])
def test_waiting_states_are_queued(state):
    assert map_state(SlurmState(state)) == (Phase.QUEUED, None)


@pytest.mark.parametrize("state", ["RUNNING", "COMPLETING", "SUSPENDED"])
def test_started_states_are_executing(state):
    assert map_state(SlurmState(state)) == (Phase.EXECUTING, None)


def test_launch_failure_is_named():
    _, error = map_state(SlurmState("FAILED", 0, 53, "JobLaunchFailure"))
    assert "could not launch" in error.message


def test_exit_codes_parse_leniently():
    assert parse_exit_code("143:0") == (143, 0)
    assert parse_exit_code("1") == (1, None)
    assert parse_exit_code("junk") == (None, None)


def test_the_key_file_is_created_private_and_reused(tmp_path):
    path = tmp_path / "db" / "callback.key"
    key = CallbackKey.load(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    token = key.sign(JOB, "completed")
    again = CallbackKey.load(path)
    assert again.verify(JOB, "completed", token)
    assert again.verify(JOB, "completed", token.upper())


def test_tokens_fit_one_job_and_one_event(tmp_path):
    key = CallbackKey.load(tmp_path / "k")
    token = key.sign(JOB, "completed")
    assert not key.verify(JOB, "error", token)
    assert not key.verify("9" + JOB[1:], "completed", token)
    assert not key.verify(JOB, "completed", token[:-1] + "0" if token[-1] != "0" else token[:-1])
    assert not key.verify(JOB, "finished", key.sign(JOB, "finished"))
    assert not key.verify(JOB, "completed", "é" * 64)
    other = CallbackKey.load(tmp_path / "other")
    assert not other.verify(JOB, "completed", token)


def test_the_local_executor_takes_no_callbacks(live, http):
    r = http.post(f"{live.url}/callback/4k3abcdefghijklmnopqrstuv", data={"event": "completed"})
    assert r.status_code == 404
    assert r.text.startswith("NotFound: the local executor takes no job callbacks")
