"""Provenance of jobs over the store: ProvSAP queries and each job's own document.

Visibility follows ownership: a caller sees the jobs they may manage (an admin every job) and
the files those jobs used or generated. Another user's job or file is treated exactly like an
unknown id (404), so a query reveals nothing about what others ran or hold.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import unquote, urlsplit

from ..identity import Caller, as_caller
from ..provsap import (
    ActivityRecord,
    Format,
    ProvGraph,
    ProvQuery,
    build_records,
    serialize,
    walk,
)
from ..votable.model import ServiceDescription
from .errors import UnknownResource
from .model import Job
from .store import JobStore

__all__ = ["Provenance"]

_HEX = re.compile(r"^[0-9a-f]{64}$")
_ENTITY = re.compile(r"^(?:data:)?sha256[-:]([0-9a-fA-F]{64})$")
_JOB_PATH = re.compile(r"^([^/]+)/([0-9][a-z0-9]{7,63})(?:/results/(.+))?$")
_JOB_ID = re.compile(r"^[0-9][a-z0-9]{7,63}$")


class Provenance:
    """Builds provenance documents from the store's provenance tables."""

    def __init__(
        self, store: JobStore, services: Mapping[str, ServiceDescription], voprov_uri: str
    ) -> None:
        self.store = store
        self.services = services
        self.voprov_uri = voprov_uri

    @staticmethod
    def visible(caller: Caller) -> Callable[[ActivityRecord], bool]:
        return lambda act: caller.may_manage(act.owner)

    def job_document(self, job: Job, base_url: str, fmt: Format, model: str = "IVOA") -> bytes:
        """One job's own document: the job, its inputs and its results (the caller's right to
        see the job was checked by ``JobService.get``)."""
        graph = walk(
            self.store,
            [job.id],
            [],
            depth=1,
            direction="BOTH",
            visible=lambda act: act.job_id == job.id,
        )
        return self._render(graph, base_url, fmt, model)

    def query(self, query: ProvQuery, owner: str | Caller, base_url: str) -> bytes:
        """Answer a checked ProvSAP query.

        Raises
        ------
        UnknownResource
            Raised (404) when none of the IDs names a job or file the caller may see.
        FormatUnavailable
            Raised (503) for SVG without Graphviz or beyond the drawable size.
        """
        caller = as_caller(owner)
        visible = self.visible(caller)
        jobs: list[str] = []
        files: list[str] = []
        for raw in query.ids:
            kind, key = self._resolve(raw, base_url)
            if kind == "job":
                jobs.append(key)
            elif kind == "file":
                files.append(key)
        acts = [a.job_id for a in self.store.prov_activities(jobs).values() if visible(a)]
        seen = self._visible_files(files, visible)
        if not acts and not seen:
            shown = ", ".join(repr(i[:80]) for i in query.ids[:5])
            raise UnknownResource(f"no job or file known as {shown}")
        graph = walk(
            self.store,
            acts,
            seen,
            depth=query.depth,
            direction=query.direction,
            visible=visible,
            agents=query.agent,
        )
        return self._render(graph, base_url, query.format, query.model)

    def _render(self, graph: ProvGraph, base_url: str, fmt: Format, model: str) -> bytes:
        records = build_records(
            graph, self.services, base_url, model=model, voprov_uri=self.voprov_uri
        )
        return serialize(records, fmt)

    def _visible_files(
        self, hashes: list[str], visible: Callable[[ActivityRecord], bool]
    ) -> list[str]:
        """The files some job the caller may see used or generated."""
        if not hashes:
            return []
        holders: dict[str, set[str]] = {}
        for rec in (*self.store.prov_used_by(hashes), *self.store.prov_generated_by(hashes)):
            holders.setdefault(rec.sha256, set()).add(rec.job_id)
        every = {j for ids in holders.values() for j in ids}
        shown = {a.job_id for a in self.store.prov_activities(every).values() if visible(a)}
        return [h for h in dict.fromkeys(hashes) if holders.get(h, set()) & shown]

    def _resolve(self, raw: str, base_url: str) -> tuple[str, str]:
        """``("job", id)``, ``("file", sha256)`` or ``("", "")`` for an id of no known form.

        Accepted: a job id, ``job:<svc>/<id>``, the job URL; ``data:sha256-<hex>``,
        ``sha256-<hex>``, ``sha256:<hex>``, ``<base>/data/sha256-<hex>``; and a result URL
        (``…/results/<id>``), which names the file that result holds.
        """
        text = raw.strip()
        base = base_url.rstrip("/")
        for prefix, expanded in (("job:", f"{base}/rest/"), ("data:", f"{base}/data/")):
            if text.startswith(expanded):
                text = prefix + text[len(expanded) :]
        if text.startswith(("http://", "https://")):  # another host's URL: try its path
            path = unquote(urlsplit(text).path)
            if "/rest/" in path:
                text = "job:" + path.split("/rest/", 1)[1]
            elif "/data/" in path:
                text = path.split("/data/", 1)[1]
        match = _ENTITY.match(text)
        if match:
            return "file", match.group(1).lower()
        if _HEX.match(text):
            return "file", text
        if _JOB_ID.match(text):
            return "job", text
        local = text[4:] if text.startswith("job:") else text
        match = _JOB_PATH.match(local)
        if match is None:
            return "", ""
        service, job_id, result = match.groups()
        if result is None:
            acts = self.store.prov_activities([job_id])
            ok = job_id in acts and acts[job_id].service == service
            return ("job", job_id) if ok else ("", "")
        for gen in self.store.prov_generated_of([job_id]):
            if gen.role == result:
                return "file", gen.sha256
        return "", ""
