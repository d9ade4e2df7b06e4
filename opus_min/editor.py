"""The service-definition editor's logic, free of HTTP: form fields ↔ ServiceDescription, the
check (the same ``parse_service`` as ``opus-min check``, with each Problem placed next to the
field it is about), the downloadable files, and the ``opus-min new-service`` scaffold.

A draft is the editor form as a flat ``{field: value}`` mapping: ``name``, ``description``, …,
then ``p<i>_<attr>`` for parameter *i*, ``u<i>_<attr>`` for Used entity *i* and ``g<i>_<attr>``
for Generated entity *i*. Rows are ordered by their ``_order`` field and dropped when their
``_remove`` box is ticked. Nothing here writes a file.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from .votable.descriptor import render_activity_description
from .votable.model import (
    GeneratedEntity,
    InputParam,
    Problem,
    ServiceDescription,
    UsedEntity,
)
from .votable.parse import parse_service

__all__ = [
    "PARAM_ATTRS",
    "CheckResult",
    "Draft",
    "check_draft",
    "draft_from_service",
    "render_files",
    "scaffold",
    "zip_files",
]

SERVICE_ATTRS = (
    "name",
    "description",
    "contact_name",
    "contact_email",
    "doculink",
    "version",
    "type",
    "subtype",
    "execution_duration",
    "quote",
    "script",
)
PARAM_ATTRS = (
    "name",
    "datatype",
    "arraysize",
    "default",
    "required",
    "unit",
    "ucd",
    "utype",
    "xtype",
    "description",
    "minimum",
    "minimum_exclusive",
    "maximum",
    "maximum_exclusive",
    "options",
)
USED_ATTRS = (
    "name",
    "role",
    "multiplicity",
    "default",
    "content_type",
    "url",
    "ref",
    "description",
)
GENERATED_ATTRS = ("name", "role", "multiplicity", "default", "content_type", "description")
KINDS = {"p": PARAM_ATTRS, "u": USED_ATTRS, "g": GENERATED_ATTRS}
"""Row prefix → the row's attributes."""

MAX_ROWS = 200
"""Most rows of one kind a draft may have (a description has a handful)."""

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_ROOT_FIELDS = {
    "executionDuration": "execution_duration",
    "quote": "quote",
    "doculink": "doculink",
    "version": "version",
    "type": "type",
    "subtype": "subtype",
    "contact_name": "contact_name",
    "contact_email": "contact_email",
}
"""Root PARAM name → the editor field it comes from."""

DEFAULT_SCRIPT = """#!/bin/bash
# Job script: each parameter arrives as a shell variable of its name; write results to the
# current folder under their default file names.
set -euo pipefail
"""


@dataclass
class Draft:
    """The editor form, normalised: service fields plus ordered rows of each kind."""

    fields: dict[str, str] = field(default_factory=dict)
    rows: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {"p": [], "u": [], "g": []}
    )

    def field_id(self, kind: str, index: int, attr: str) -> str:
        return f"{kind}{index}_{attr}"


@dataclass
class CheckResult:
    """What the check found: the service (None when there are problems) and the problems by
    field id (``""`` for those of the description as a whole)."""

    service: ServiceDescription | None
    problems: dict[str, list[str]]
    xml: bytes


def _order_key(row: dict[str, str], position: int) -> tuple[float, int]:
    try:
        return (float(row.get("order", "")), position)
    except ValueError:
        return (float(position), position)


def draft_from_form(form: Mapping[str, str], *, add: str = "") -> Draft:
    """Read the editor's fields; ``add`` (``p``, ``u`` or ``g``) appends an empty row.

    Raises
    ------
    ValueError
        Raised when the form claims more than ``MAX_ROWS`` rows of one kind.
    """
    draft = Draft({name: form.get(name, "").replace("\r\n", "\n") for name in SERVICE_ATTRS})
    for kind, attrs in KINDS.items():
        raw = form.get(f"{kind}_count", "0").strip() or "0"
        if not raw.isdigit() or int(raw) > MAX_ROWS:
            raise ValueError(f"{kind}_count must be a whole number up to {MAX_ROWS}")
        rows = []
        for index in range(int(raw)):
            prefix = f"{kind}{index}_"
            if form.get(prefix + "remove"):
                continue
            row = {attr: form.get(prefix + attr, "").replace("\r\n", "\n") for attr in attrs}
            row["order"] = form.get(prefix + "order", "")
            rows.append(row)
        ordered = [row for _, row in sorted(((_order_key(r, i), r) for i, r in enumerate(rows)))]
        if add == kind:
            ordered.append({attr: "" for attr in attrs} | _new_row_defaults(kind))
        for position, row in enumerate(ordered):
            row["order"] = str(position + 1)
        draft.rows[kind] = ordered
    return draft


def _new_row_defaults(kind: str) -> dict[str, str]:
    if kind == "p":
        return {"datatype": "char", "arraysize": "*", "required": "on"}
    if kind == "u":
        return {"multiplicity": "1", "url": "file://$ID"}
    return {"multiplicity": "1"}


def draft_from_service(svc: ServiceDescription) -> Draft:
    """The editor form showing an existing service (for a round trip)."""
    draft = Draft(
        {
            "name": svc.name,
            "description": svc.description,
            "contact_name": svc.contact_name,
            "contact_email": svc.contact_email,
            "doculink": svc.doculink,
            "version": svc.version,
            "type": svc.type,
            "subtype": svc.subtype,
            "execution_duration": str(svc.execution_duration),
            "quote": "" if svc.quote is None else str(svc.quote),
            "script": svc.script,
        }
    )
    draft.rows["p"] = [
        {
            "name": p.name,
            "datatype": p.datatype,
            "arraysize": p.arraysize or "",
            "default": p.default or "",
            "required": "on" if p.required else "",
            "unit": p.unit or "",
            "ucd": p.ucd or "",
            "utype": p.utype or "",
            "xtype": p.xtype or "",
            "description": p.description,
            "minimum": p.minimum or "",
            "minimum_exclusive": "" if p.minimum_inclusive else "on",
            "maximum": p.maximum or "",
            "maximum_exclusive": "" if p.maximum_inclusive else "on",
            "options": "\n".join(p.options),
        }
        for p in svc.parameters
    ]
    draft.rows["u"] = [
        {
            "name": e.name,
            "role": e.role,
            "multiplicity": e.multiplicity,
            "default": e.default or "",
            "content_type": e.content_type,
            "url": e.url,
            "ref": e.ref or "",
            "description": e.description,
        }
        for e in svc.used
    ]
    draft.rows["g"] = [
        {
            "name": e.name,
            "role": e.role,
            "multiplicity": e.multiplicity,
            "default": e.default or "",
            "content_type": e.content_type,
            "description": e.description,
        }
        for e in svc.generated
    ]
    for rows in draft.rows.values():
        for position, row in enumerate(rows):
            row["order"] = str(position + 1)
    return draft


def _opt(value: str) -> str | None:
    value = value.strip()
    return value or None


def _seconds(draft: Draft, name: str, problems: dict[str, list[str]]) -> int | None:
    text = draft.fields.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit():
        problems.setdefault(name, []).append(f"a whole number of seconds (>= 0), not {text!r}")
        return None
    return int(text)


def _model(draft: Draft, problems: dict[str, list[str]]) -> ServiceDescription:
    f = draft.fields
    params = tuple(
        InputParam(
            name=r["name"].strip(),
            datatype=r["datatype"].strip(),
            arraysize=_opt(r["arraysize"]),
            default=r["default"] if r["default"] != "" else None,
            required=bool(r["required"]),
            unit=_opt(r["unit"]),
            ucd=_opt(r["ucd"]),
            utype=_opt(r["utype"]),
            xtype=_opt(r["xtype"]),
            description=r["description"].strip(),
            minimum=_opt(r["minimum"]),
            minimum_inclusive=not r["minimum_exclusive"],
            maximum=_opt(r["maximum"]),
            maximum_inclusive=not r["maximum_exclusive"],
            options=tuple(o.strip() for o in r["options"].split("\n") if o.strip()),
        )
        for r in draft.rows["p"]
    )
    used = tuple(
        UsedEntity(
            name=r["name"].strip(),
            role=r["role"].strip(),
            multiplicity=r["multiplicity"].strip(),
            default=_opt(r["default"]),
            content_type=r["content_type"].strip(),
            url=r["url"].strip(),
            description=r["description"].strip(),
            ref=_opt(r["ref"]),
        )
        for r in draft.rows["u"]
    )
    generated = tuple(
        GeneratedEntity(
            name=r["name"].strip(),
            role=r["role"].strip(),
            multiplicity=r["multiplicity"].strip(),
            default=_opt(r["default"]),
            content_type=r["content_type"].strip(),
            description=r["description"].strip(),
        )
        for r in draft.rows["g"]
    )
    duration = _seconds(draft, "execution_duration", problems)
    return ServiceDescription(
        name=f.get("name", "").strip(),
        script=f.get("script", ""),
        description=f.get("description", "").strip(),
        doculink=f.get("doculink", "").strip(),
        type=f.get("type", "").strip(),
        subtype=f.get("subtype", "").strip(),
        version=f.get("version", "").strip(),
        contact_name=f.get("contact_name", "").strip(),
        contact_email=f.get("contact_email", "").strip(),
        execution_duration=duration or 0,
        quote=_seconds(draft, "quote", problems),
        parameters=params,
        used=used,
        generated=generated,
    )


def _line_fields(xml: bytes) -> dict[int, str]:
    """Line of the rendered document → the editor field id it came from."""
    root = etree.fromstring(xml)
    lines: dict[int, str] = {}
    resource = root[0]
    for child in resource:
        tag = etree.QName(child).localname
        if tag == "PARAM" and child.get("name") in _ROOT_FIELDS and child.sourceline:
            lines[child.sourceline] = _ROOT_FIELDS[child.get("name", "")]
        if tag == "DESCRIPTION" and child.sourceline:
            lines[child.sourceline] = "description"
        if tag != "GROUP":
            continue
        kind = {"InputParams": "p", "Used": "u", "Generated": "g"}.get(child.get("name", ""))
        if kind is None:
            continue
        for index, member in enumerate(m for m in child if isinstance(m.tag, str)):
            for element in member.iter():
                if element.sourceline:
                    lines[element.sourceline] = f"{kind}{index}_name"
                if kind != "p" and etree.QName(element).localname == "PARAM":
                    attr = element.get("name", "")
                    if attr in KINDS[kind] and element.sourceline:
                        lines[element.sourceline] = f"{kind}{index}_{attr}"
            if kind == "p":
                for bound, attr in (("MIN", "minimum"), ("MAX", "maximum"), ("OPTION", "options")):
                    for element in member.iter(f"{{{root.nsmap[None]}}}{bound}"):
                        if element.sourceline:
                            lines[element.sourceline] = f"p{index}_{attr}"
    return lines


def _param_field(message: str, draft: Draft) -> str | None:
    """A parameter problem's precise field, from words in the message (else the name field)."""
    lowered = message.lower()
    for word, attr in (
        ("arraysize", "arraysize"),
        ("datatype", "datatype"),
        ("default", "default"),
        ("min ", "minimum"),
        ("max ", "maximum"),
        ("option", "options"),
    ):
        if word in lowered:
            return attr
    return None


def check_draft(draft: Draft) -> CheckResult:
    """Render the draft and check it with ``parse_service``, as ``opus-min check`` would read
    ``<name>.xml`` with ``<name>.sh`` beside it."""
    problems: dict[str, list[str]] = {}
    svc = _model(draft, problems)
    if not _NAME_RE.fullmatch(svc.name):
        problems.setdefault("name", []).append(
            "the service name: a letter, then up to 63 letters, digits, _ or -"
        )
    if not svc.script.strip():
        problems.setdefault("script", []).append("the job script is empty")
    xml = render_activity_description(svc)
    path = f"{svc.name}.xml" if _NAME_RE.fullmatch(svc.name) else ".xml"
    parsed, found = parse_service(
        xml, path=path, script=svc.script or None, script_source=f"{svc.name}.sh"
    )
    lines = _line_fields(xml)
    for problem in found:
        target = _field_of(problem, lines, draft)
        if problem.message not in problems.get(target, []):
            problems.setdefault(target, []).append(problem.message)
    return CheckResult(parsed if not problems else None, problems, xml)


def _field_of(problem: Problem, lines: dict[int, str], draft: Draft) -> str:
    if "script" in problem.message and "no job script" in problem.message:
        return "script"
    if problem.message.startswith("service name") or "RESOURCE has no name" in problem.message:
        return "name"
    target = lines.get(problem.line or 0, "")
    if target.startswith("p") and target.endswith("_name"):
        attr = _param_field(problem.message.split(":", 1)[-1], draft)
        if attr is not None:
            target = target[: -len("name")] + attr
    return target


def render_files(svc: ServiceDescription) -> dict[str, bytes]:
    """The two files to drop into ``services/``: ``<name>.xml`` and ``<name>.sh``."""
    script = svc.script if svc.script.endswith("\n") else svc.script + "\n"
    return {
        f"{svc.name}.xml": render_activity_description(svc),
        f"{svc.name}.sh": script.encode("utf-8"),
    }


def zip_files(files: Mapping[str, bytes]) -> bytes:
    """A zip of the files (the script keeps its executable bit)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if name.endswith(".sh") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def scaffold(name: str) -> tuple[ServiceDescription, dict[str, bytes]]:
    """A small working service called ``name``: one text parameter, one result.

    Raises
    ------
    ValueError
        Raised when ``name`` is not a valid service name, or the scaffold fails its check.
    """
    if not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"service name {name!r} is not valid (a letter, then up to 63 letters, digits, _ or -)"
        )
    svc = ServiceDescription(
        name=name,
        description=f"{name}: describe what this service does",
        version="0.1",
        execution_duration=60,
        quote=5,
        script=DEFAULT_SCRIPT + 'printf "%s\\n" "$message" > output.txt\n',
        parameters=(
            InputParam(
                name="message",
                datatype="char",
                arraysize="*",
                default="hello",
                description="A text the script writes to its output",
            ),
        ),
        generated=(
            GeneratedEntity(
                name="output",
                multiplicity="1",
                default="output.txt",
                content_type="text/plain",
                description="The text written by the script",
            ),
        ),
    )
    result = check_draft(draft_from_service(svc))
    if result.service is None:  # pragma: no cover - the scaffold is fixed and tested
        raise ValueError(f"the scaffold does not pass its check: {result.problems}")
    return result.service, render_files(svc)
