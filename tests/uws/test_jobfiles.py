"""JobFiles.remove: a job still writing while it is cancelled cannot leave its folder behind."""

from __future__ import annotations

import subprocess
import time

from opus_min.uws.jobfiles import TRASH, JobFiles


def test_remove_beats_a_job_that_keeps_writing(tmp_path):
    files = JobFiles(tmp_path)
    folder = files.create("1writer0")
    # A real process working in the folder that keeps creating files after the delete.
    writer = subprocess.Popen(
        ["bash", "-c", "for i in $(seq 200); do echo x > f$i; sleep 0.005; done"], cwd=folder
    )
    try:
        time.sleep(0.1)
        files.remove("1writer0")
        assert not folder.exists()
    finally:
        writer.wait(10)
    # What it wrote after the move sits in the trash until the next delete sweeps it; then
    # the work root holds only job folders again.
    files.create("2other00")
    files.remove("2other00")
    assert not (tmp_path / TRASH).exists()
    assert list(tmp_path.iterdir()) == []


def test_remove_of_a_missing_folder_is_quiet(tmp_path):
    JobFiles(tmp_path).remove("1missing")
