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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO
from urllib.parse import quote, unquote, urlsplit

from ..config import Config
from ..executors import Executor, JobRun
from ..identity import Caller, as_caller
from ..provsap.records import GeneratedRecord, UsedRecord
from ..votable.model import ServiceDescription, UsedEntity
from ..votable.values import check_value
from .controls import (
    CONTROL_NAMES,
    parse_destruction,
    parse_duration,
    parse_phase_request,
    parse_run_id,
)
from .errors import (
    Forbidden,
    PhaseConflict,
    TooLarge,
    UnknownJob,
    UnknownResource,
    UnknownService,
    UsageError,
)
from .fetch import DeadlineReader, open_url
from .jobfiles import OPTIONAL_MULTIPLICITIES, JobFiles, allows_many
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
    Result,
    utcnow,
)
from .notify import PhaseNotifier
from .provenance import Provenance
from .store import JobStore, ListFilter
from .xml import xml_safe

__all__ = ["JobService", "Upload"]

log = logging.getLogger("opus_min")

MAX_PARAMETERS = 200
"""Parameters (known and unknown) one job may carry."""
MAX_NAME = 128
MAX_FILES = 100
"""Files one multi-valued Used entity may take in one job."""
MAX_VALUE = 64 * 1024
"""Bytes (UTF-8) in one parameter value: values travel as environment strings (Linux caps one
at 128 KiB), so larger data belongs in an uploaded file."""
MAX_ENVIRONMENT = 1024 * 1024
"""Bytes of all the values a script receives together (Linux caps arguments plus environment
at a quarter of the stack limit, typically 2 MiB)."""
QUOTE_CACHE_SECONDS = 5.0
WAVES_CACHE_SECONDS = 1.0
"""How long a job's place in the queue is reused: clients poll a job many times a second."""
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
        self.restricted_services = tuple(
            name.strip() for name in config.restricted_services.split(",") if name.strip()
        )
        self._quote_cache: dict[str, tuple[float, float | None]] = {}
        self._waves_cache: dict[str, tuple[float, Phase, int]] = {}
        self.provenance = Provenance(store, self.services, config.voprov_namespace)
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
        """Requeue QUEUED jobs and fail EXECUTING ones whose controller is gone; with an
        executor whose jobs outlive the controller (Slurm), reconcile them instead."""
        if hasattr(self.executor, "reconcile"):
            self.reconcile()
            return
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

    def reconcile(self) -> int:
        """Check every job believed QUEUED or EXECUTING once against the executor (Slurm), so
        a job that ended while no controller listened reaches its true phase; returns how many
        jobs were checked. A job that never reached Slurm is submitted again (if QUEUED)."""
        reconcile = getattr(self.executor, "reconcile", None)
        if reconcile is None:
            return 0
        jobs = self.store.in_phases([Phase.QUEUED, Phase.EXECUTING])
        for job in jobs:
            try:
                event = reconcile(job)
            except Exception as exc:  # Slurm unreachable: leave the job, say why
                log.warning("job %s: not reconciled: %s", job.id, exc)
                continue
            if event is None:
                if job.phase is Phase.QUEUED and job.service in self.services:
                    self._submit(job)
                    continue
                message = "the job was lost before it reached the executor; run a new job"
                event = JobEvent(job.id, Phase.ERROR, JobError(message, ErrorType.TRANSIENT))
            if event.phase is not job.phase:
                self.handle_event(event)
        return len(jobs)

    def accept_callback(self, event: JobEvent, *, settle: Callable[[], None] | None = None) -> bool:
        """Apply a verified job callback if it still fits the job's phase.

        EXECUTING fits a QUEUED job; a final report fits an active job, or an ABORTED one whose
        results are not collected yet (aborted by its user while running). Anything else is a
        replay or a stale report: False, and nothing changes. ``settle`` replaces the event when
        the executor must first ask how the job really ended.

        Raises
        ------
        UnknownJob
            Raised when the job does not exist (any more).
        """
        job = self.store.get(event.job_id)
        if job is None:
            raise UnknownJob(event.job_id)
        if event.phase is Phase.EXECUTING:
            fits = job.phase is Phase.QUEUED
        elif event.phase in FINAL_PHASES:
            fits = job.phase in (Phase.QUEUED, Phase.EXECUTING, Phase.SUSPENDED) or (
                job.phase is Phase.ABORTED and not job.results
            )
        else:
            fits = False
        if not fits:
            return False
        if settle is not None:
            settle()
        else:
            self.handle_event(event)
        return True

    # -- reading ---------------------------------------------------------------------------

    def service(self, name: str) -> ServiceDescription:
        try:
            return self.services[name]
        except KeyError:
            raise UnknownService(name) from None

    def get(self, service: str, job_id: str, owner: str | Caller, *, detail: bool = True) -> Job:
        """The job, with a fresh quote. Every operation on a job starts here, so this is the
        one ownership check: another user's job is a 403 for every method and sub-resource.

        Without ``detail`` the job comes without parameters, results and quote: the cheap
        form for the text resources (``/phase`` is what clients poll).

        Raises
        ------
        UnknownService, UnknownJob
            Raised for an unknown service or a job of another service.
        Forbidden
            Raised when the job belongs to someone else (and the caller is not an admin).
        """
        self.service(service)
        job = self.store.get(job_id, service=service, full=detail)
        if job is None:
            raise UnknownJob(job_id)
        if not as_caller(owner).may_manage(job.owner):
            raise Forbidden(f"job {job_id} belongs to another user")
        return self._with_quote(job) if detail else job

    def wait(
        self, service: str, job_id: str, owner: str | Caller, seconds: int, phase: Phase | None
    ) -> Job:
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

    def list(self, service: str, owner: str | Caller, flt: ListFilter) -> list[Job]:
        """The caller's jobs of the service (an admin's list has everybody's)."""
        self.service(service)
        caller = as_caller(owner)
        return self.store.list(service, None if caller.admin else caller.name, flt)

    def list_page(
        self,
        services: Sequence[str],
        owner: str | Caller,
        phases: Sequence[Phase],
        offset: int,
        limit: int,
    ) -> list[Job]:
        """One page of the caller's jobs across ``services``, newest first (an admin's page has
        everybody's): the web pages' job lists.

        Raises
        ------
        UnknownService
            Raised when one of the services does not exist.
        """
        for name in services:
            self.service(name)
        caller = as_caller(owner)
        owner_name = None if caller.admin else caller.name
        return self.store.list_page(services, owner_name, phases, offset, limit)

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
            return job.with_quote(None)
        now = time.monotonic()
        cached = self._waves_cache.get(job.id)
        if cached is not None and cached[1] is job.phase and now - cached[0] < WAVES_CACHE_SECONDS:
            waves = cached[2]
        else:
            queued, executing = self.store.count_ahead(job.service, job.creation_time)
            slots = max(1, self.config.max_concurrent_jobs)
            # Jobs ahead finish in waves of `slots`; ours runs after them.
            waves = (queued + executing) // slots if queued + executing >= slots else 0
            if len(self._waves_cache) > 10_000:
                self._waves_cache.clear()
            self._waves_cache[job.id] = (now, job.phase, waves)
        return job.with_quote(utcnow() + timedelta(seconds=run_time * (waves + 1)))

    # -- creation --------------------------------------------------------------------------

    def create(
        self,
        service: str,
        owner: str | Caller,
        fields: Sequence[tuple[str, str]],
        uploads: Sequence[Upload] = (),
        *,
        base_url: str = "",
    ) -> Job:
        """Check the parameters against the description and store a PENDING job (then RUN it
        if ``PHASE=RUN`` was given). Nothing is stored when any value is rejected.

        A Used entity given as a value (an ID or URL) is fetched now, through the entity's
        ``url`` template; a URL of one of our own results (below ``base_url`` or the
        configured one) is copied locally, if the caller may see that job.

        Raises
        ------
        UsageError
            Raised for a malformed, out-of-range, missing or unknown-file value.
        Forbidden
            Raised when the service is restricted to a role the caller lacks, or the caller
            has reached the active-job limit.
        """
        description = self.service(service)
        caller = as_caller(owner)
        if not caller.may_create(service, self.restricted_services):
            raise Forbidden(f"creating {service} jobs needs the role {service!r} or admin")
        limit = self._active_limit(caller)
        if limit and self.store.count_active(caller.name) >= limit:
            raise Forbidden(self._limit_message(caller, limit))
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
            owner=caller.name,
            phase=Phase.PENDING,
            creation_time=now,
            execution_duration=duration,
            destruction=destruction,
            run_id=run_id,
            parameters=tuple(parameters),
        )
        self.files.create(job.id)
        try:
            inputs: list[UsedRecord] = []
            for name, files in upload_map.items():
                entity = description.used_entity(name)
                assert entity is not None
                names = _local_names(entity.name, entity.default, len(files))
                for upload, local in zip(files, names, strict=True):
                    size, sha = self.files.save_input(
                        job.id, local, upload.stream, self.config.upload_max_bytes
                    )
                    shown = os.path.basename(upload.filename or local)[:MAX_NAME] or local
                    ctype = entity.content_type or "application/octet-stream"
                    inputs.append(
                        UsedRecord(job.id, entity.name, sha, size, ctype, shown, None, now)
                    )
            inputs += self._fetch_references(job, description, upload_map, caller, base_url)
            if not self.store.insert(job, max_active=limit):
                raise Forbidden(self._limit_message(caller, limit))
        except BaseException:
            self.files.remove(job.id)
            raise
        self.store.record_inputs(job.id, inputs)
        if run:
            return self.run(service, job.id, owner)
        return self._with_quote(job)

    def _active_limit(self, caller: Caller) -> int:
        """Active jobs the caller may have at once; 0 = no limit."""
        if caller.max_active_jobs is not None:
            return max(0, caller.max_active_jobs)
        return max(0, self.config.max_active_jobs)

    @staticmethod
    def _limit_message(caller: Caller, limit: int) -> str:
        return (
            f"{caller.describe()} already has {limit} active jobs, the limit: wait for one to"
            " finish, or abort or delete one"
        )

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
    ) -> dict[str, list[Upload]]:
        """Uploads by Used entity; several files only where the multiplicity allows them."""
        matched: dict[str, list[Upload]] = {}
        for upload in uploads:
            entity = description.used_entity(upload.name)
            if entity is None:
                raise UsageError(
                    f"{upload.name[:MAX_NAME]}: not a file input of service {description.name}"
                )
            files = matched.setdefault(entity.name, [])
            if files and not allows_many(entity.multiplicity):
                many = entity.multiplicity or "1"
                raise UsageError(f"{entity.name}: given twice (multiplicity {many!r})")
            if len(files) >= MAX_FILES:
                raise UsageError(f"{entity.name}: more than {MAX_FILES} files")
            files.append(upload)
        return matched

    def _parameters(
        self,
        description: ServiceDescription,
        values: Sequence[tuple[str, str]],
        uploads: Mapping[str, list[Upload]],
        existing: Job | None,
    ) -> list[Parameter]:
        """Check values, fill defaults, keep unknown names (echoed, never given to the script)."""
        given: dict[str, str] = {}
        unknown: dict[str, str] = {}
        references: dict[str, str] = {}
        if existing is not None:
            for p in existing.parameters:
                if p.known and description.parameter(p.name) is not None:
                    given[p.name] = p.value
                elif not p.known:
                    unknown[p.name] = p.value
        for name, raw in values:
            if len(name) > MAX_NAME:
                raise UsageError(f"parameter name longer than {MAX_NAME} characters")
            if not name or not xml_safe(name):
                raise UsageError(f"parameter name {name!r} is empty or has control characters")
            if len(raw) > MAX_VALUE or len(raw.encode("utf-8", "surrogatepass")) > MAX_VALUE:
                raise UsageError(f"{name}: value longer than {MAX_VALUE} bytes; upload a file")
            param = description.parameter(name)
            if param is not None:
                try:
                    given[param.name] = check_value(param, raw)
                except ValueError as exc:
                    raise UsageError(str(exc)) from None
            elif (entity := description.used_entity(name)) is not None:
                if entity.name in uploads:
                    raise UsageError(f"{entity.name}: given both as a file and as a reference")
                reference = raw.strip()
                if not reference or not xml_safe(reference) or len(reference) > 2048:
                    raise UsageError(
                        f"{entity.name}: give an ID or http(s) URL (at most 2048 characters),"
                        " or upload the file (multipart/form-data)"
                    )
                references[entity.name] = reference
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
            files = uploads.get(entity.name)
            if files:
                shown = " ".join(
                    os.path.basename(u.filename or entity.name)[:MAX_NAME] or entity.name
                    for u in files
                )
                # Several files: the script sees their names space-separated (`for f in $x`).
                local = " ".join(_local_names(entity.name, entity.default, len(files)))
                params.append(Parameter(entity.name, shown, by_reference=True, file=local))
            elif entity.name in references:
                params.append(
                    Parameter(
                        entity.name,
                        references[entity.name],
                        by_reference=True,
                        file=_local_name(entity.name, entity.default),
                    )
                )
            elif existing is not None and (p := existing.parameter(entity.name)) is not None:
                params.append(p)
            elif entity.multiplicity.strip() not in OPTIONAL_MULTIPLICITIES:
                raise UsageError(f"{entity.name}: required input file missing")
        passed = sum(
            len(p.name) + len(p.value.encode("utf-8", "surrogatepass")) + 2 for p in params
        )
        if passed > MAX_ENVIRONMENT:
            raise UsageError(
                f"the parameter values add up to more than {MAX_ENVIRONMENT} bytes; upload a file"
            )
        params.extend(Parameter(name, value, known=False) for name, value in unknown.items())
        if len(params) > MAX_PARAMETERS:
            raise UsageError(f"more than {MAX_PARAMETERS} parameters")
        return params

    def _fetch_references(
        self,
        job: Job,
        description: ServiceDescription,
        uploads: Mapping[str, list[Upload]],
        caller: Caller,
        base_url: str,
        previous: Job | None = None,
    ) -> list[UsedRecord]:
        """Fetch every input given by reference (new or changed since ``previous``) into the
        job folder; returns their provenance records.

        Raises
        ------
        UsageError
            Raised when a reference cannot be resolved, fetched in time, or is too large.
        Forbidden
            Raised when it names a result of another user's job.
        """
        records: list[UsedRecord] = []
        for param in job.parameters:
            entity = description.used_entity(param.name) if param.known else None
            if entity is None or not param.by_reference or not param.file:
                continue
            if param.name in uploads:
                continue
            if previous is not None and previous.parameter(param.name) == param:
                continue
            url = _resolve_reference(entity.url, param.value)
            records.append(self._fetch_one(job, entity, param, url, caller, base_url))
        return records

    def _fetch_one(
        self,
        job: Job,
        entity: UsedEntity,
        param: Parameter,
        url: str,
        caller: Caller,
        base_url: str,
    ) -> UsedRecord:
        assert param.file
        what = entity.name
        limit = self.config.upload_max_bytes
        ctype = entity.content_type or "application/octet-stream"
        local = self._local_result(url, base_url)
        if local is not None:
            service, job_id, result_id = local
            try:
                source = self.get(service, job_id, caller)
            except (UnknownService, UnknownJob):
                raise UsageError(f"{what}: {url[:200]} names no job of this server") from None
            result = source.result(result_id)
            if result is None:
                raise UsageError(f"{what}: job {job_id} has no result {result_id[:80]!r}")
            try:
                path = self.files.read_path(job_id, result.path)
            except UnknownResource:
                raise UsageError(f"{what}: the file of {url[:200]} is gone") from None
            with open(path, "rb") as stream:
                size, sha = self.files.save_input(job.id, param.file, stream, limit)
            name = os.path.basename(result.path)
            return UsedRecord(job.id, entity.name, sha, size, result.mime_type, name, url, utcnow())
        timeout = self.config.fetch_timeout
        stream, remote_type, announced = open_url(url, timeout=timeout, what=what)
        try:
            if announced is not None and announced > limit:
                raise UsageError(f"{what}: {url[:200]} is larger than {limit} bytes")
            reader = DeadlineReader(stream, time.monotonic() + timeout, what)
            try:
                size, sha = self.files.save_input(job.id, param.file, reader, limit)  # type: ignore[arg-type]
            except TooLarge:
                raise UsageError(f"{what}: {url[:200]} is larger than {limit} bytes") from None
        finally:
            stream.close()
        name = os.path.basename(urlsplit(url).path)[:MAX_NAME] or param.file
        ctype = entity.content_type or remote_type or ctype
        return UsedRecord(job.id, entity.name, sha, size, ctype, name, url, utcnow())

    def _local_result(self, url: str, base_url: str) -> tuple[str, str, str] | None:
        """(service, job id, result id) when ``url`` is one of our own result URLs."""
        for base in {base_url.rstrip("/"), self.config.base_url.rstrip("/")} - {""}:
            prefix = base + "/rest/"
            if url.startswith(prefix):
                parts = url[len(prefix) :].split("?", 1)[0].split("/", 3)
                if len(parts) == 4 and parts[2] == "results" and parts[3]:
                    return parts[0], parts[1], unquote(parts[3])
        return None

    # -- changes ---------------------------------------------------------------------------

    def update_parameters(
        self,
        service: str,
        job_id: str,
        owner: str | Caller,
        fields: Sequence[tuple[str, str]],
        *,
        base_url: str = "",
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
        updated = dataclasses.replace(job, parameters=tuple(params))
        fetched = self._fetch_references(
            updated, description, {}, as_caller(owner), base_url, previous=job
        )
        if not self.store.replace_parameters(job.id, params, run_id, set_run_id):
            raise PhaseConflict("the job left PENDING meanwhile")
        if fetched:
            kept = [
                u
                for u in self.store.prov_used_of([job.id])
                if u.role not in {f.role for f in fetched}
            ]
            self.store.record_inputs(job.id, kept + fetched)
        self.notifier.publish(job.id)
        return self.get(service, job_id, owner)

    def post_to_job(
        self,
        service: str,
        job_id: str,
        owner: str | Caller,
        fields: Sequence[tuple[str, str]],
        *,
        base_url: str = "",
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
            self.update_parameters(service, job_id, owner, rest, base_url=base_url)
        if "phase" in controls:
            self.set_phase(service, job_id, owner, controls["phase"])
        elif not rest:
            raise UsageError("nothing to do: give PHASE, ACTION=DELETE or parameters")
        return "updated"

    def set_phase(self, service: str, job_id: str, owner: str | Caller, raw: str) -> Job:
        target = parse_phase_request(raw)
        if target is Phase.QUEUED:
            return self.run(service, job_id, owner)
        return self.abort(service, job_id, owner)

    def run(self, service: str, job_id: str, owner: str | Caller) -> Job:
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

    def abort(self, service: str, job_id: str, owner: str | Caller) -> Job:
        """Active → ABORTED (results so far kept); a no-op on a finished job (documented)."""
        job = self.get(service, job_id, owner)
        if job.phase not in ACTIVE_PHASES:
            return job
        if self.store.transition(job.id, STOPPABLE, Phase.ABORTED, end_time=utcnow()):
            self.notifier.publish(job.id)
            if job.phase is not Phase.PENDING:
                self.executor.cancel(job)
        return self.get(service, job_id, owner)

    def set_execution_duration(
        self, service: str, job_id: str, owner: str | Caller, raw: str
    ) -> Job:
        job = self.get(service, job_id, owner)
        value = self._duration(parse_duration(raw), requested=True)
        if job.phase is not Phase.PENDING or not self.store.update(
            job.id, [Phase.PENDING], execution_duration=value
        ):
            raise PhaseConflict("executionDuration can change only while PENDING")
        self.notifier.publish(job.id)
        return self.get(service, job_id, owner)

    def set_destruction(self, service: str, job_id: str, owner: str | Caller, raw: str) -> Job:
        job = self.get(service, job_id, owner)
        value = self._clamp_destruction(parse_destruction(raw), utcnow())
        phases = [p for p in Phase if p is not Phase.ARCHIVED]
        if job.phase is Phase.ARCHIVED or not self.store.update(job.id, phases, destruction=value):
            raise PhaseConflict("an archived job has no destruction time to change")
        self.notifier.publish(job.id)
        return self.get(service, job_id, owner)

    def delete(self, service: str, job_id: str, owner: str | Caller) -> None:
        """Stop the job if needed, then forget it and its files."""
        job = self.get(service, job_id, owner)
        self._destroy(job)

    def _destroy(self, job: Job) -> None:
        if job.phase in (Phase.QUEUED, Phase.EXECUTING, Phase.SUSPENDED, Phase.HELD):
            if self.store.transition(job.id, STOPPABLE, Phase.ABORTED, end_time=utcnow()):
                self.executor.cancel(job)
        # Provenance outlives the job: its activity stays (if it produced files) and its
        # results are marked invalidated, so chains of jobs that used them stay whole.
        self.store.retire(job.id, utcnow())
        self.store.delete(job.id)
        self.files.remove(job.id)
        self.notifier.publish(job.id)

    # -- events from executors ---------------------------------------------------------------

    def handle_event(self, event: JobEvent) -> None:
        """Apply a state report: the one path for local processes and Slurm callbacks."""
        try:
            if event.phase is Phase.EXECUTING:
                job = self.store.get(event.job_id)
                run_time = self._median_run_time(job.service) if job else None
                now = utcnow()
                quote = None if run_time is None else now + timedelta(seconds=run_time)
                handle = {} if event.external_id is None else {"external_id": event.external_id}
                if self.store.transition(
                    event.job_id,
                    [Phase.QUEUED],
                    Phase.EXECUTING,
                    start_time=now,
                    quote=quote,
                    **handle,
                ):
                    self.notifier.publish(event.job_id)
                else:
                    log.info("job %s: EXECUTING report ignored", event.job_id)
            elif event.phase is Phase.QUEUED and event.external_id:
                # The executor's id for a queued job (a Slurm job id once sbatch answered).
                self.store.update(event.job_id, [Phase.QUEUED], external_id=event.external_id)
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
            self._record_results(job.id, results)
            self.notifier.publish(job.id)
        elif self.store.phase(job.id) is Phase.ABORTED:
            # Aborted by the user while running: keep what the job produced (UWS §2.1.4).
            if self.store.transition(job.id, [Phase.ABORTED], Phase.ABORTED, results=results):
                self._record_results(job.id, results)
            self.notifier.publish(job.id)

    def _record_results(self, job_id: str, results: Sequence[Result]) -> None:
        """Register the results as generated entities (by content hash) of the job."""
        current = self.store.get(job_id)
        when = (current.end_time if current else None) or utcnow()
        records = [
            GeneratedRecord(
                job_id, r.id, r.sha256, r.size, r.mime_type, os.path.basename(r.path), when
            )
            for r in results
        ]
        try:
            self.store.record_results(job_id, records)
        except Exception:  # provenance must never keep a job from finishing
            log.exception("job %s: results not recorded in provenance", job_id)

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
                        self.store.invalidate_results(job.id, utcnow())
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


def _resolve_reference(template: str, value: str) -> str:
    """The URL of an input given as ``value``: the entity's ``url`` template with ``$ID``
    replaced (URL-encoded); ``file://$ID`` or no template means the value is the URL."""
    template = template.strip()
    if not template or template == "file://$ID" or "$ID" not in template:
        return value
    return template.replace("$ID", quote(value, safe="-._~:/@"))


def _local_names(name: str, default: str | None, count: int) -> list[str]:
    """Local file names of ``count`` uploads: ``events.fits``, or ``events_1.fits`` … ``_n``."""
    single = _local_name(name, default)
    if count == 1:
        return [single]
    stem, dot, suffix = single.partition(".")
    return [f"{stem}_{i}{dot}{suffix}" for i in range(1, count + 1)]


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
