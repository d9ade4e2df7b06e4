"""The Slurm executor: sbatch on this submit host, signed job callbacks, reconcile at start.

``SlurmExecutor.from_config`` is what ``create_app`` uses when ``executor = "slurm"``.
"""

from __future__ import annotations

from .batch import BatchSettings, render_batch_script, sbatch_options
from .executor import CallbackReport, SlurmExecutor, SlurmUnavailable
from .signing import EVENTS, CallbackKey
from .states import SlurmState, map_state

__all__ = [
    "EVENTS",
    "BatchSettings",
    "CallbackKey",
    "CallbackReport",
    "SlurmExecutor",
    "SlurmState",
    "SlurmUnavailable",
    "map_state",
    "render_batch_script",
    "sbatch_options",
]
