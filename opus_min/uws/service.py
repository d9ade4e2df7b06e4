"""JobService: the UWS rules (creation, phases, WAIT, quotes, destruction) over store and executor.

No Werkzeug here: views translate HTTP into these calls and domain errors back into HTTP.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import os
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from ..config import Config
from ..executors import Executor, JobRun
from ..votable.model import ServiceDescription
from ..votable.values import check_value
from .controls import (
    CONTROL_NAMES,
    parse_destruction,
    parse_duration,
    parse_phase_request,
    parse_run_id,
)
from .errors import Forbidden, PhaseConflict, UnknownJob, UnknownService, UsageError
from .jobfiles import OPTIONAL_MULTIPLICITIES, JobFiles
from .model import (
    ACTIVE_PHASES,
    FINAL_PHASES,
    WAITABLE_PHASES,
    ErrorType,
    Job,
    JobError,
    JobEvent,
    Parameter,
    Phase,
    utcnow,
)
from .notify import PhaseNotifier
from .store import JobStore, ListFilter

__all__ = ["JobService", "Upload"]

log = logging.getLogger("opus_min")

MAX_PARAMETERS = 200
"""Parameters (known and unknown) one job may carry."""
MAX_NAME = 128
MAX_VALUE = 64 * 1024
"""Characters in one parameter value: values travel as environment strings (Linux caps one
at 128 KiB), so larger data belongs in an uploaded file."""
QUOTE_CACHE_SECONDS = 5.0
RUNNABLE = (Phase.PENDING, Phase.HELD)
STOPPABLE = tuple(ACTIVE_PHASES)


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart POST."""

    name: str
    filename: str
    stream: BinaryIO


def new_job_id() -> str:
    """URL-safe, unguessable (120 random bits), first a digit (uws-client strips h, t, p, s)."""
    body = base64.b32encode(secrets.token_bytes(15)).decode().lower()
    return str(secrets.randbelow(10)) + body


class JobService:
    """Every UWS operation on the jobs of the loaded services."""

    def __init__(
        self,
        *,
        config: Config,
        store: JobStore,
        services: Mapping[str, ServiceDescription],
        executor: Executor,
        files: JobFiles,
        notifier: PhaseNotifier,
    ) -> None:
        self.config = config
        self.store = store
        self.services = dict(services)
        self.executor = executor
        self.files = files
        self.notifier = notifier
        self.max_waiters = max(1, config.threads - 4)
        self._quote_cache: dict[str, tuple[float, float | None]] = {}
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None
        self.started_at = utcnow()

    # -- life cycle ------------------------------------------------------------------------

    def start(self, *, background: bool = True) -> None:
        """Listen for events, recover jobs a previous controller left, start the reaper."""
        self.notifier.start()
        self.executor.start(self.handle_event)
        self.recover()
        if background:
            self._reaper = threading.Thread(target=self._reap_loop, name="opus-reaper", daemon=True)
            self._reaper.start()

    def stop(self) -> None:
        self._stop.set()
        self.executor.stop()
        self.notifier.stop()

    def recover(self) -> None:
        """Requeue QUEUED jobs and fail EXECUTING ones whose controller is gone."""
        for job in self.store.in_phases([Phase.QUEUED, Phase.EXECUTING]):
            if not self.executor.orphaned(job):
                continue
            if job.phase is Phase.QUEUED and job.service in self.services:
                if self.store.update(job.id, [Phase.QUEUED], external_id=self.executor.handle()):
                    self._submit(self.store.get(job.id) or job)
                continue
            kill = getattr(self.executor, "kill_orphan", None)
            if kill is not None:
                kill(job)
            error = JobError(
                "the controller restarted while the job was running; run a new job",
                ErrorType.TRANSIENT,
            )
            self._finish(JobEvent(job.id, Phase.ERROR, error))

    # -- reading ---------------------------------------------------------------------------

    def service(self, name: str) -> ServiceDescription:
        try:
            return self.services[name]
        except KeyError:
            raise UnknownService(name) from None

    def get(self, service: str, job_id: str, owner: str) -> Job:
        """The job, with a fresh quote.

        Raises
        ------
        UnknownService, UnknownJob
            Raised for an unknown service or a job of another service.
        Forbidden
            Raised when the job belongs to someone else.
        """
        self.service(service)
        job = self.store.get(job_id, service=service)
        if job is None:
            raise UnknownJob(job_id)
        if job.owner != owner:
            raise Forbidden(f"job {job_id} is not yours")
        return self._with_quote(job)

    def wait(self, service: str, job_id: str, owner: str, seconds: int, phase: Phase | None) -> Job:
        """Block until the job leaves its phase, ``seconds`` pass (capped), or at once if the
        job is not QUEUED/EXECUTING or not in ``phase``."""
        if seconds < 0 or seconds > self.config.wait_max:
            seconds = self.config.wait_max
        deadline = time.monotonic() + seconds
        if self.notifier.waiting() >= self.max_waiters:
            # Under load UWS lets us answer early; this keeps threads free for other requests.
            return self.get(service, job_id, owner)
        with self.notifier.subscribe(job_id) as event:
            job = self.get(service, job_id, owner)
            start = job.phase
            while (
                job.phase in WAITABLE_PHASES
                and job.phase is start
                and (phase is None or job.phase is phase)
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                # A safety net, not a poll: a lost datagram costs at most 10 s.
                event.wait(min(remaining, 10.0))
                event.clear()
                current = self.store.phase(job_id)
                if current is None:
                    raise UnknownJob(job_id)
                if current is not start:
                    job = self.get(service, job_id, owner)
        return job

    def list(self, service: str, owner: str, flt: ListFilter) -> list[Job]:
        self.service(service)
        return self.store.list(service, owner, flt)

    def _median_run_time(self, service: str) -> float | None:
        now = time.monotonic()
        cached = self._quote_cache.get(service)
        if cached is not None and now - cached[0] < QUOTE_CACHE_SECONDS:
            return cached[1]
        times = self.store.recent_run_times(service)
        value: float | None = statistics.median(times) if times else None
        if value is None:
            description = self.services.get(service)
            value = (
                None
                if description is None or description.quote is None
                else float(description.quote)
            )
        self._quote_cache[service] = (now, value)
        return value

    def _with_quote(self, job: Job) -> Job:
        """Predicted completion: now (or the queue) plus the median recent run time."""
        if job.phase not in (Phase.PENDING, Phase.QUEUED, Phase.HELD):
            return job
        run_time = self._median_run_time(job.service)
        if run_time is None:
            return dataclasses.replace(job, quote=None)
        queued, executing = self.store.count_ahead(job.service, job.creation_time)
        slots = max(1, self.config.max_concurrent_jobs)
        # Jobs ahead finish in waves of `slots`; ours runs after them.
        waves = (queued + executing) // slots if queued + executing >= slots else 0
        quote = utcnow() + timedelta(seconds=run_time * (waves + 1))
        return dataclasses.replace(job, quote=quote)

    # -- creation --------------------------------------------------------------------------

    def create(
        self,
        service: str,
        owner: str,
        fields: Sequence[tuple[str, str]],
        uploads: Sequence[Upload] = (),
    ) -> Job:
        """Check the parameters against the description and store a PENDING job (then RUN it
        if ``PHASE=RUN`` was given). Nothing is stored when any value is rejected.

        Raises
        ------
        UsageError
            Raised for a malformed, out-of-range, missing or unknown-file value.
        """
        description = self.service(service)
        controls, values = _split_controls(fields)
        run = False
        if "phase" in controls:
            if parse_phase_request(controls["phase"]) is not Phase.QUEUED:
                raise UsageError("PHASE at creation must be RUN")
            run = True
        if "action" in controls:
            raise UsageError("ACTION is not allowed when creating a job")
        now = utcnow()
        duration = self._duration(
            parse_duration(controls["executionduration"])
            if "executionduration" in controls
            else description.execution_duration or self.config.execution_duration_default,
            requested="executionduration" in controls,
        )
        destruction = now + timedelta(seconds=self.config.destruction_interval)
        if "destruction" in controls:
            destruction = self._clamp_destruction(parse_destruction(controls["destruction"]), now)
        run_id = parse_run_id(controls["runid"]) if "runid" in controls else None
        upload_map = self._match_uploads(description, uploads)
        parameters = self._parameters(description, values, upload_map, existing=None)
        job = Job(
            id=new_job_id(),
            service=service,
            owner=owner,
            phase=Phase.PENDING,
            creation_time=now,
            execution_duration=duration,
            destruction=destruction,
            run_id=run_id,
            parameters=tuple(parameters),
        )
        self.files.create(job.id)
        try:
            for name, upload in upload_map.items():
                entity = description.used_entity(name)
                assert entity is not None
                self.files.save_upload(
                    job.id,
                    _local_name(entity.name, entity.default),
                    upload.stream,
                    self.config.upload_max_bytes,
                )
            self.store.insert(job)
        except BaseException:
            self.files.remove(job.id)
            raise
        if run:
            return self.run(service, job.id, owner)
        return self._with_quote(job)

    def _duration(self, value: int, *, requested: bool) -> int:
        """Clamp to the configured maximum; 0 (unlimited) only where configuration allows."""
        limit = self.config.execution_duration_max
        if value == 0:
            return 0 if (self.config.allow_unlimited_duration or not requested) else limit
        return min(value, limit)

    def _clamp_destruction(self, value: datetime, now: datetime) -> datetime:
        earliest = now + timedelta(seconds=60)
        latest = now + timedelta(seconds=self.config.destruction_max)
        return min(max(value, earliest), latest)

    @staticmethod
    def _match_uploads(
        description: ServiceDescription, uploads: Sequence[Upload]
    ) -> dict[str, Upload]:
        matched: dict[str, Upload] = {}
        for upload in uploads:
            entity = description.used_entity(upload.name)
            if entity is None:
                raise UsageError(
                    f"{upload.name[:MAX_NAME]}: not a file input of service {description.name}"
                )
            if entity.name in matched:
                raise UsageError(f"{entity.name}: given twice")
            matched[entity.name] = upload
        return matched

    def _parameters(
        self,
        description: ServiceDescription,
        values: Sequence[tuple[str, str]],
        uploads: Mapping[str, Upload],
        existing: Job | None,
    ) -> list[Parameter]:
        """Check values, fill defaults, keep unknown names (echoed, never given to the script)."""
        given: dict[str, str] = {}
        unknown: dict[str, str] = {}
        if existing is not None:
            for p in existing.parameters:
                if p.known and description.parameter(p.name) is not None:
                    given[p.name] = p.value
                elif not p.known:
                    unknown[p.name] = p.value
        for name, raw in values:
            if len(name) > MAX_NAME:
                raise UsageError(f"parameter name longer than {MAX_NAME} characters")
            if len(raw) > MAX_VALUE:
                raise UsageError(f"{name}: value longer than {MAX_VALUE} characters; upload a file")
            param = description.parameter(name)
            if param is not None:
                try:
                    given[param.name] = check_value(param, raw)
                except ValueError as exc:
                    raise UsageError(str(exc)) from None
            elif description.used_entity(name) is not None:
                entity = description.used_entity(name)
                assert entity is not None
                raise UsageError(
                    f"{entity.name}: send this input as a file (multipart/form-data); inputs"
                    " given by reference are not supported by this server yet"
                )
            else:
                if "\x00" in raw:
                    raise UsageError(f"{name}: value contains a NUL character")
                unknown[name] = raw
        params: list[Parameter] = []
        for param in description.parameters:
            if param.name in given:
                params.append(Parameter(param.name, given[param.name]))
            elif param.default is not None:
                params.append(Parameter(param.name, param.default))
            elif param.required:
                raise UsageError(f"{param.name}: required parameter missing")
        for entity in description.used:
            upload = uploads.get(entity.name)
            if upload is not None:
                shown = os.path.basename(upload.filename or entity.name)[:MAX_NAME] or entity.name
                params.append(
                    Parameter(
                        entity.name,
                        shown,
                        by_reference=True,
                        file=_local_name(entity.name, entity.default),
                    )
                )
            elif existing is not None and (p := existing.parameter(entity.name)) is not None:
                params.append(p)
            elif entity.multiplicity.strip() not in OPTIONAL_MULTIPLICITIES:
                raise UsageError(f"{entity.name}: required input file missing")
        params.extend(Parameter(name, value, known=False) for name, value in unknown.items())
        if len(params) > MAX_PARAMETERS:
            raise UsageError(f"more than {MAX_PARAMETERS} parameters")
        return params

    # -- changes ---------------------------------------------------------------------------

    def update_parameters(
        self, service: str, job_id: str, owner: str, fields: Sequence[tuple[str, str]]
    ) -> Job:
        """POST name=value to the job or /parameters: PENDING only (runId may change too)."""
        job = self.get(service, job_id, owner)
        controls, values = _split_controls(fields)
        for key in ("phase", "action", "executionduration", "destruction"):
            if key in controls:
                raise UsageError(f"{key.upper()} is not a parameter; POST it to its own resource")
        if job.phase is not Phase.PENDING:
            raise PhaseConflict(f"parameters can change only while PENDING (job is {job.phase})")
        description = self.service(service)
        params = self._parameters(description, values, {}, existing=job)
        set_run_id = "runid" in controls
        run_id = parse_run_id(controls["runid"]) if set_run_id else job.run_id
        if not self.store.replace_parameters(job.id, params, run_id, set_run_id):
            raise PhaseConflict("the job left PENDING meanwhile")
        self.notifier.publish(job.id)
        return self.get(service, job_id, owner)

    def post_to_job(
        self, service: str, job_id: str, owner: str, fields: Sequence[tuple[str, str]]
    ) -> str:
        """A POST to the job URI: ACTION=DELETE, PHASE=RUN|ABORT, or parameter updates."""
        controls, values = _split_controls(fields)
        if "action" in controls:
            from .controls import parse_action

            parse_action(controls["action"])
            self.delete(service, job_id, owner)
            return "deleted"
        rest = [(k, v) for k, v in fields if k.lower() != "phase"]
        if rest:
            self.update_parameters(service, job_id, owner, rest)
        if "phase" in controls:
            self.set_phase(service, job_id, owner, controls["phase"])
        elif not rest:
            raise UsageError("nothing to do: give PHASE, ACTION=DELETE or parameters")
        return "updated"

    def set_phase(self, service: str, job_id: str, owner: str, raw: str) -> Job:
        target = parse_phase_request(raw)
        if target is Phase.QUEUED:
            return self.run(service, job_id, owner)
        return self.abort(service, job_id, owner)

    def run(self, service: str, job_id: str, owner: str) -> Job:
        """PENDING/HELD → QUEUED; no-op while QUEUED or EXECUTING; 403 once finished."""
        job = self.get(service, job_id, owner)
        if job.phase in (Phase.QUEUED, Phase.EXECUTING, Phase.SUSPENDED):
            return job
        if job.phase not in RUNNABLE:
            raise PhaseConflict(f"job {job_id} is {job.phase} and cannot run again")
        if not self.store.transition(
            job.id, RUNNABLE, Phase.QUEUED, external_id=self.executor.handle()
        ):
            return self.get(service, job_id, owner)
        self.notifier.publish(job.id)
        queued = self.store.get(job.id)
        assert queued is not None
        self._submit(queued)
        return self.get(service, job_id, owner)

    def _submit(self, job: Job) -> None:
        description = self.services[job.service]
        job_dir = self.files.job_dir(job.id)
        meta = self.files.meta_dir(job.id)
        script = self.files.write_script(job.id, description.script)
        (meta / "tmp").mkdir(exist_ok=True)
        self.executor.submit(
            JobRun(
                job_id=job.id,
                service=job.service,
                job_dir=job_dir,
                meta_dir=meta,
                script=script,
                environment=self._environment(job, description, job_dir, meta),
                execution_duration=job.execution_duration,
            )
        )

    @staticmethod
    def _environment(
        job: Job, description: ServiceDescription, job_dir: os.PathLike[str], meta: os.PathLike[str]
    ) -> dict[str, str]:
        """The script's whole environment: a clean base plus one variable per declared name.

        Values are passed as data (environment strings), never as shell source; undeclared
        parameters are not passed at all.
        """
        bindir = os.path.dirname(sys.executable)
        env = {
            "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": os.fspath(job_dir),
            "TMPDIR": os.path.join(os.fspath(meta), "tmp"),
            "LANG": "C.UTF-8",
            "OPUS_JOB_ID": job.id,
        }
        for param in job.parameters:
            if param.known and description.parameter(param.name) is not None:
                env[param.name] = param.file if param.file else param.value
        for entity in description.used:
            local = job.parameter(entity.name)
            if local is not None and local.file:
                env[entity.name] = local.file
        for entity in description.generated:
            env[entity.name] = entity.default or entity.name
        return env

    def abort(self, service: str, job_id: str, owner: str) -> Job:
        """Active → ABORTED (results so far kept); a no-op on a finished job (documented)."""
        job = self.get(service, job_id, owner)
        if job.phase not in ACTIVE_PHASES:
            return job
        if self.store.transition(job.id, STOPPABLE, Phase.ABORTED, end_time=utcnow()):
            self.notifier.publish(job.id)
            if job.phase is not Phase.PENDING:
                self.executor.cancel(job)
        return self.get(service, job_id, owner)

    def set_execution_duration(self, service: str, job_id: str, owner: str, raw: str) -> Job:
        job = self.get(service, job_id, owner)
        value = self._duration(parse_duration(raw), requested=True)
        if job.phase is not Phase.PENDING or not self.store.update(
            job.id, [Phase.PENDING], execution_duration=value
        ):
            raise PhaseConflict("executionDuration can change only while PENDING")
        self.notifier.publish(job.id)
        return self.get(service, job_id, owner)

    def set_destruction(self, service: str, job_id: str, owner: str, raw: str) -> Job:
        job = self.get(service, job_id, owner)
        value = self._clamp_destruction(parse_destruction(raw), utcnow())
        phases = [p for p in Phase if p is not Phase.ARCHIVED]
        if job.phase is Phase.ARCHIVED or not self.store.update(job.id, phases, destruction=value):
            raise PhaseConflict("an archived job has no destruction time to change")
        self.notifier.publish(job.id)
        return self.get(service, job_id, owner)

    def delete(self, service: str, job_id: str, owner: str) -> None:
        """Stop the job if needed, then forget it and its files."""
        job = self.get(service, job_id, owner)
        self._destroy(job)

    def _destroy(self, job: Job) -> None:
        if job.phase in (Phase.QUEUED, Phase.EXECUTING, Phase.SUSPENDED, Phase.HELD):
            if self.store.transition(job.id, STOPPABLE, Phase.ABORTED, end_time=utcnow()):
                self.executor.cancel(job)
        self.store.delete(job.id)
        self.files.remove(job.id)
        self.notifier.publish(job.id)

    # -- events from executors ---------------------------------------------------------------

    def handle_event(self, event: JobEvent) -> None:
        """Apply a state report: the one path for local processes and (later) Slurm callbacks."""
        try:
            if event.phase is Phase.EXECUTING:
                job = self.store.get(event.job_id)
                run_time = self._median_run_time(job.service) if job else None
                now = utcnow()
                quote = None if run_time is None else now + timedelta(seconds=run_time)
                if self.store.transition(
                    event.job_id,
                    [Phase.QUEUED],
                    Phase.EXECUTING,
                    start_time=now,
                    quote=quote,
                    external_id=event.external_id,
                ):
                    self.notifier.publish(event.job_id)
                else:
                    log.info("job %s: EXECUTING report ignored", event.job_id)
            elif event.phase in FINAL_PHASES:
                self._finish(event)
        except Exception:  # an executor thread must survive a bad event
            log.exception("job %s: could not apply %s", event.job_id, event.phase)

    def _finish(self, event: JobEvent) -> None:
        job = self.store.get(event.job_id)
        if job is None:
            return
        description = self.services.get(job.service)
        generated = description.generated if description else ()
        results, missing = self.files.collect_results(job.id, generated)
        phase, error = event.phase, event.error
        if phase is Phase.COMPLETED and missing:
            phase = Phase.ERROR
            error = JobError("the script ended without writing " + ", ".join(missing))
        fields: dict[str, object] = {"end_time": utcnow()}
        if error is not None:
            fields.update(
                error_type=error.type, error_message=error.message, error_detail=error.detail
            )
        if self.store.transition(job.id, STOPPABLE, phase, results=results, **fields):
            if phase is Phase.COMPLETED:
                self._quote_cache.pop(job.service, None)  # a new run time to learn from
            self.notifier.publish(job.id)
        elif self.store.phase(job.id) is Phase.ABORTED:
            # Aborted by the user while running: keep what the job produced (UWS §2.1.4).
            self.store.transition(job.id, [Phase.ABORTED], Phase.ABORTED, results=results)
            self.notifier.publish(job.id)

    # -- destruction -------------------------------------------------------------------------

    def reap(self, now: datetime | None = None) -> int:
        """Delete (or archive) every job past its destruction time; returns how many."""
        count = 0
        for job in self.store.expired(now or utcnow()):
            with contextlib.suppress(Exception):
                if self.config.destruction_policy == "archive":
                    if job.phase in ACTIVE_PHASES and self.store.transition(
                        job.id, STOPPABLE, Phase.ABORTED, end_time=utcnow()
                    ):
                        self.executor.cancel(job)
                    if self.store.transition(
                        job.id,
                        [Phase.COMPLETED, Phase.ERROR, Phase.ABORTED],
                        Phase.ARCHIVED,
                        results=[],
                    ):
                        self.files.remove_results(job.id)
                        self.notifier.publish(job.id)
                else:
                    self._destroy(job)
                count += 1
        return count

    def _reap_loop(self) -> None:
        while not self._stop.wait(self.config.reaper_interval):
            try:
                self.reap()
            except Exception:
                log.exception("reaper failed")

    # -- health ------------------------------------------------------------------------------

    def health(self) -> tuple[bool, list[str]]:
        notes = []
        if not self.store.ping():
            notes.append("database unreachable")
        if not self.executor.reachable():
            notes.append(f"{self.executor.name} executor unreachable")
        if not self.services:
            notes.append("no service loaded")
        return not notes, notes


def _split_controls(
    fields: Sequence[tuple[str, str]],
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Separate UWS control names (case-insensitive) from job parameters."""
    controls: dict[str, str] = {}
    values: list[tuple[str, str]] = []
    for name, value in fields:
        key = name.lower()
        if key in CONTROL_NAMES:
            controls[key] = value
        else:
            values.append((name, value))
    return controls, values


def _local_name(name: str, default: str | None) -> str:
    """The file name an uploaded input gets in the job folder (what ``$name`` holds)."""
    if (
        default
        and "/" not in default
        and default not in (".", "..")
        and not default.startswith(".")
    ):
        return default
    return name
