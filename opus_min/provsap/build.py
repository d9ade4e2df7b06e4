"""Build W3C PROV documents carrying IVOA ProvDM from a ProvGraph.

Pure: records and service descriptions in, the records of a PROV document out (``document``
writes them as a ``prov.model.ProvDocument`` or as PROV-JSON).

Identifiers (the same on job pages, in UWS documents and in every provenance document):

========================  ===================================  ==============================
record                    identifier                           expands to
========================  ===================================  ==============================
job (Activity)            ``job:<service>/<job id>``           the job URL ``<base>/rest/…``
file (Entity)             ``data:sha256-<hex>``                ``<base>/data/sha256-<hex>``
service (Description)     ``jdl:<service>``                    the descriptor ``<base>/jdl/…``
Used/Generated/Parameter  ``jdl:<service>/used/<name>`` …      (descriptions, MODEL=IVOA)
parameter value           ``job:<service>/<job id>/parameters/<name>``  the UWS parameter URL
owner (Agent)             ``user:<name>`` (``user:anonymous``)
service contact (Agent)   ``jdl:<service>/contact``
========================  ===================================  ==============================

Two models: ``IVOA`` writes ProvDM description and configuration records (ActivityDescription,
UsageDescription, GenerationDescription, ParameterDescription, Parameter) as entities typed
``voprov:<Class>``, linked by ``wasInfluencedBy`` typed ``voprov:isDescribedBy`` /
``voprov:wasConfiguredBy``; ``W3C`` leaves the description records out (the service is only the
``prov:Plan`` of the association). Both are plain W3C PROV that ``prov.read`` reads back: the
native voprov keywords (``activityDescription(…)``) are not valid PROV and no generic reader
accepts them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from urllib.parse import quote

from prov.model import (
    PROV,
    PROV_LABEL,
    PROV_LOCATION,
    PROV_ROLE,
    PROV_TYPE,
    PROV_VALUE,
)

from ..votable.model import ServiceDescription
from .document import RecordedDocument
from .records import ActivityRecord, EntityRecord, ProvGraph

__all__ = [
    "DEFAULT_VOPROV",
    "MODELS",
    "build_records",
    "entity_id",
    "job_qname",
]

DEFAULT_VOPROV = "http://www.ivoa.net/documents/ProvenanceDM/index.html#"
"""The ``voprov`` namespace voprov and OPUS use (ProvDM 1.0 defines none)."""
UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0#"
MODELS = ("IVOA", "W3C")
LOG_RESULTS = frozenset({"stdout", "stderr"})


def entity_id(sha256: str) -> str:
    """Local part of a file entity's identifier (``data:`` prefix)."""
    return f"sha256-{sha256}"


def job_qname(service: str, job_id: str) -> str:
    """Local part of a job's identifier (``job:`` prefix)."""
    return f"{service}/{job_id}"


def _safe(text: str) -> str:
    """A name usable as the local part of a qualified name in every PROV serialisation."""
    return quote(text, safe="-_.~") or "_"


class _Builder:
    def __init__(self, base_url: str, voprov_uri: str, model: str) -> None:
        base = base_url.rstrip("/")
        self.base = base
        self.model = model
        self.doc = RecordedDocument()
        self.doc.set_default_namespace(f"{base}/provsap/")
        self.voprov = self.doc.add_namespace("voprov", voprov_uri)
        self.uws = self.doc.add_namespace("uws", UWS_NS)
        self.job = self.doc.add_namespace("job", f"{base}/rest/")
        self.data = self.doc.add_namespace("data", f"{base}/data/")
        self.jdl = self.doc.add_namespace("jdl", f"{base}/jdl/")
        self.user = self.doc.add_namespace("user", f"{base}/users/")
        self._done: set[str] = set()

    @property
    def ivoa(self) -> bool:
        return self.model == "IVOA"

    def _once(self, key: str) -> bool:
        if key in self._done:
            return False
        self._done.add(key)
        return True

    # -- agents and descriptions --------------------------------------------------------

    def owner(self, name: str) -> object:
        agent = self.user[_safe(name) if name else "anonymous"]
        if self._once(f"user {name}"):
            self.doc.agent(
                agent,
                {
                    PROV_TYPE: PROV["Person"],
                    PROV_LABEL: name or "anonymous",
                    self.voprov["name"]: name or "anonymous",
                },
            )
        return agent

    def contact(self, service: str, svc: ServiceDescription | None) -> object | None:
        if svc is None or not (svc.contact_name or svc.contact_email):
            return None
        agent = self.jdl[f"{_safe(service)}/contact"]
        if self._once(f"contact {service}"):
            attrs: dict[object, object] = {
                PROV_TYPE: PROV["Organization"],
                PROV_LABEL: svc.contact_name or svc.contact_email,
                self.voprov["name"]: svc.contact_name or svc.contact_email,
            }
            if svc.contact_email:
                attrs[self.voprov["email"]] = svc.contact_email
            self.doc.agent(agent, attrs)
        return agent

    def description(self, service: str, svc: ServiceDescription | None) -> object:
        plan = self.jdl[_safe(service)]
        if not self._once(f"jdl {service}"):
            return plan
        attrs: dict[object, object] = {
            PROV_TYPE: self.voprov["ActivityDescription"] if self.ivoa else PROV["Plan"],
            PROV_LABEL: service,
            self.voprov["name"]: service,
        }
        if svc is not None:
            for key, value in (
                ("version", svc.version),
                ("description", svc.description),
                ("docurl", svc.doculink),
                ("type", svc.type),
                ("subtype", svc.subtype),
            ):
                if value:
                    attrs[self.voprov[key]] = value
        self.doc.entity(plan, attrs)
        if self.ivoa and svc is not None:
            for used in svc.used:
                self._describe(
                    f"{_safe(service)}/used/{_safe(used.name)}",
                    "UsageDescription",
                    used.name,
                    {
                        "role": used.role or used.name,
                        "multiplicity": used.multiplicity,
                        "contentType": used.content_type,
                        "description": used.description,
                        "url": used.url,
                    },
                    plan,
                )
            for gen in svc.generated:
                self._describe(
                    f"{_safe(service)}/generated/{_safe(gen.name)}",
                    "GenerationDescription",
                    gen.name,
                    {
                        "role": gen.role or gen.name,
                        "multiplicity": gen.multiplicity,
                        "contentType": gen.content_type,
                        "description": gen.description,
                    },
                    plan,
                )
            for param in svc.parameters:
                valuetype = param.datatype + (f"[{param.arraysize}]" if param.arraysize else "")
                self._describe(
                    f"{_safe(service)}/parameters/{_safe(param.name)}",
                    "ParameterDescription",
                    param.name,
                    {
                        "valueType": valuetype,
                        "description": param.description,
                        "unit": param.unit or "",
                        "ucd": param.ucd or "",
                        "utype": param.utype or "",
                        "min": param.minimum or "",
                        "max": param.maximum or "",
                        "options": "|".join(param.options),
                        "default": param.default or "",
                    },
                    plan,
                )
        return plan

    def _describe(
        self, local: str, kind: str, name: str, fields: Mapping[str, str], plan: object
    ) -> None:
        node = self.jdl[local]
        attrs: dict[object, object] = {
            PROV_TYPE: self.voprov[kind],
            PROV_LABEL: name,
            self.voprov["name"]: name,
        }
        attrs.update({self.voprov[k]: v for k, v in fields.items() if v})
        self.doc.entity(node, attrs)
        self.doc.wasInfluencedBy(
            node,
            plan,
            self.jdl[f"{local}/prov/related"],
            other_attributes={PROV_TYPE: self.voprov["RelatedToRelation"]},
        )

    # -- jobs and files -----------------------------------------------------------------

    def activity(self, act: ActivityRecord, svc: ServiceDescription | None) -> None:
        local_job = job_qname(_safe(act.service), act.job_id)
        node = self.job[local_job]

        def rid(suffix: str) -> object:
            # Relations have ids too: shorter PROV-JSON and no anonymous-id bookkeeping.
            return self.job[f"{local_job}/prov/{suffix}"]

        attrs: dict[object, object] = {
            PROV_LABEL: act.run_id or f"{act.service} {act.job_id}",
            self.voprov["name"]: act.service,
            self.uws["jobId"]: act.job_id,
            self.uws["phase"]: act.phase,
        }
        if act.run_id:
            attrs[self.uws["runId"]] = act.run_id
        if act.error:
            attrs[self.voprov["comment"]] = act.error
        if act.deleted is not None:
            attrs[self.voprov["deleted"]] = act.deleted.isoformat()
        self.doc.activity(node, act.start_time, act.end_time, attrs)
        plan = self.description(act.service, svc)
        owner = self.owner(act.owner)
        self.doc.wasAssociatedWith(
            node, owner, plan, rid("owner"), other_attributes={PROV_ROLE: "Operator"}
        )
        contact = self.contact(act.service, svc)
        if contact is not None:
            self.doc.wasAssociatedWith(
                node, contact, plan, rid("contact"), other_attributes={PROV_ROLE: "Provider"}
            )
        if self.ivoa:
            self.doc.wasInfluencedBy(
                node,
                plan,
                rid("description"),
                other_attributes={PROV_TYPE: self.voprov["isDescribedBy"]},
            )
        when = act.start_time or act.creation_time
        for name, value in act.parameters:
            param = self.job[f"{local_job}/parameters/{_safe(name)}"]
            attrs = {
                PROV_TYPE: self.voprov["Parameter"],
                PROV_LABEL: f"{name}={value}",
                self.voprov["name"]: name,
                PROV_VALUE: value,
            }
            extra: dict[object, object] = {PROV_ROLE: name}
            if self.ivoa:
                extra[PROV_TYPE] = self.voprov["wasConfiguredBy"]
                extra[self.voprov["artefactType"]] = "Parameter"
                if svc is not None and svc.parameter(name) is not None:
                    # Its ParameterDescription, as a reference (a relation record per value
                    # would add a third of the records of a long chain).
                    attrs[self.voprov["parameterDescription"]] = self.jdl[
                        f"{_safe(act.service)}/parameters/{_safe(name)}"
                    ]
            self.doc.entity(param, attrs)
            self.doc.used(node, param, when, rid(f"p-{_safe(name)}"), other_attributes=extra)

    def entity(self, ent: EntityRecord, location: str | None) -> None:
        node = self.data[entity_id(ent.sha256)]
        attrs: dict[object, object] = {
            PROV_LABEL: ent.name,
            self.voprov["name"]: ent.name,
            self.voprov["contentType"]: ent.content_type,
            self.voprov["size"]: ent.size,
            self.voprov["hash"]: f"sha256:{ent.sha256}",
        }
        if location:
            attrs[PROV_LOCATION] = location
        self.doc.entity(node, attrs)
        if ent.invalidated is not None:
            invalidation = self.data[f"{entity_id(ent.sha256)}/prov/invalidated"]
            self.doc.wasInvalidatedBy(node, None, ent.invalidated, invalidation)


def build_records(
    graph: ProvGraph,
    services: Mapping[str, ServiceDescription],
    base_url: str,
    *,
    model: str = "IVOA",
    voprov_uri: str = DEFAULT_VOPROV,
) -> RecordedDocument:
    """The records of the PROV document of ``graph``; every URL below ``base_url``."""
    b = _Builder(base_url, voprov_uri, model)
    for act in sorted(graph.activities.values(), key=lambda a: (a.creation_time, a.job_id)):
        b.activity(act, services.get(act.service))
    # An entity's location: the first result that still holds its bytes, else where it came from.
    locations: dict[str, str] = {}
    for gen in sorted(graph.generated, key=lambda g: g.time):
        act = graph.activities.get(gen.job_id)
        if act is not None and gen.invalidated is None and gen.sha256 not in locations:
            url = f"{b.base}/rest/{act.service}/{act.job_id}/results/{quote(gen.role, safe='')}"
            locations[gen.sha256] = url
    for use in graph.used:
        if use.location and use.sha256 not in locations:
            locations[use.sha256] = use.location
    for sha, ent in sorted(graph.entities.items()):
        b.entity(ent, locations.get(sha))
    makers: dict[str, set[str]] = {}
    for gen in sorted(graph.generated, key=lambda g: (g.time, g.job_id, g.role)):
        act = graph.activities.get(gen.job_id)
        if act is None or gen.sha256 not in graph.entities:
            continue
        makers.setdefault(gen.sha256, set()).add(gen.job_id)
        svc = services.get(act.service)
        extra: dict[object, object] = {PROV_ROLE: gen.role}
        if b.ivoa and svc is not None:
            described = next(
                (
                    g.name
                    for g in svc.generated
                    if gen.role == g.name or gen.role.startswith(g.name + "_")
                ),
                None,
            )
            if described is not None:
                extra[b.voprov["generationDescription"]] = b.jdl[
                    f"{_safe(act.service)}/generated/{_safe(described)}"
                ]
        if gen.role in LOG_RESULTS:
            extra[b.voprov["type"]] = "Log"
        entity = b.data[entity_id(gen.sha256)]
        activity = b.job[job_qname(_safe(act.service), act.job_id)]
        rel = b.job[f"{job_qname(_safe(act.service), act.job_id)}/prov/g-{_safe(gen.role)}"]
        b.doc.wasGeneratedBy(entity, activity, gen.time, rel, other_attributes=extra)
    informed: set[tuple[str, str]] = set()
    per_role = Counter((u.job_id, u.role) for u in graph.used)
    for use in sorted(graph.used, key=lambda u: (u.time, u.job_id, u.role, u.sha256)):
        act = graph.activities.get(use.job_id)
        if act is None or use.sha256 not in graph.entities:
            continue
        extra = {PROV_ROLE: use.role}
        if use.location:
            extra[b.voprov["location"]] = use.location
        if b.ivoa and services.get(act.service) is not None:
            extra[b.voprov["usageDescription"]] = b.jdl[
                f"{_safe(act.service)}/used/{_safe(use.role)}"
            ]
        local_job = job_qname(_safe(act.service), act.job_id)
        activity = b.job[local_job]
        rel_name = f"u-{_safe(use.role)}"
        if per_role[(use.job_id, use.role)] > 1:  # several files in one role
            rel_name += f"-{use.sha256[:16]}"
        rel = b.job[f"{local_job}/prov/{rel_name}"]
        b.doc.used(activity, b.data[entity_id(use.sha256)], use.time, rel, other_attributes=extra)
        for maker in sorted(makers.get(use.sha256, ())):
            if maker != use.job_id and (use.job_id, maker) not in informed:
                informed.add((use.job_id, maker))
                source = graph.activities[maker]
                b.doc.wasInformedBy(
                    activity,
                    b.job[job_qname(_safe(source.service), source.job_id)],
                    b.job[f"{local_job}/prov/i-{maker}"],
                )
    return b.doc
