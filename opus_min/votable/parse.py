"""Read one OPUS-style ActivityDescription (a VOTable) into a checked ServiceDescription.

:func:`parse_service` takes the file's bytes, never touches the network or the service folder,
and returns either a ServiceDescription or every Problem it found, each with the line of the
offending element, so an operator can fix a broken service file in one pass.

The document is parsed without DTDs or entity expansion and a DOCTYPE is refused outright, so
neither external entities nor entity bombs are ever expanded. VOTable 1.3 documents are then
validated against the XSD shipped with astropy.
"""

from __future__ import annotations

import importlib.util
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path, PurePosixPath

from lxml import etree

from .model import DATATYPES, GeneratedEntity, InputParam, Problem, ServiceDescription, UsedEntity
from .values import INT_RANGES, check_value

__all__ = [
    "RESERVED_PREFIXES",
    "SHELL_NAMES",
    "UWS_CONTROL_NAMES",
    "VOTABLE_NAMESPACES",
    "parse_service",
]

VOTABLE_NAMESPACES = {
    "http://www.ivoa.net/xml/VOTable/v1.2": "1.2",
    "http://www.ivoa.net/xml/VOTable/v1.3": "1.3",
    "http://www.ivoa.net/xml/VOTable/v1.4": "1.4",
}
"""Accepted root namespaces (VOTable 1.4 and 1.5 documents normally use the 1.3 one)."""

_VOTABLE_13 = "http://www.ivoa.net/xml/VOTable/v1.3"

UWS_CONTROL_NAMES = frozenset(
    {"phase", "runid", "action", "executionduration", "destruction", "wait", "last", "after"}
)
"""UWS control parameters (compared case-insensitively): a job parameter may not shadow them."""

SHELL_NAMES = frozenset(
    {
        "PATH", "HOME", "IFS", "PWD", "OLDPWD", "SHELL", "USER", "LANG", "LC_ALL", "TMPDIR",
        "ENV", "BASH_ENV", "CDPATH", "GLOBIGNORE", "SHELLOPTS", "BASHOPTS", "PS4", "LD_PRELOAD",
        "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME",
        # bash read-only or special variables: assigning them fails or changes nothing
        "UID", "EUID", "PPID", "_",
    }
)  # fmt: skip
"""Variables the job's shell depends on (compared case-sensitively, as the shell does)."""

RESERVED_PREFIXES = ("OPUS_", "BASH", "SLURM_")
"""Variable-name prefixes used by the controller, bash and SLURM."""

_SERVICE_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARRAYSIZE_RE = re.compile(r"(?:[1-9][0-9]*\*?|\*)")
_SECONDS_RE = re.compile(r"\+?[0-9]+")
_DATATYPE_ORDER = (
    "boolean", "unsignedByte", "short", "int", "long", "char", "unicodeChar", "float", "double",
)  # fmt: skip
_NUMERIC = frozenset(INT_RANGES) | {"float", "double"}
_GROUPS = {"inputparams": "InputParams", "used": "Used", "generated": "Generated"}
_ROOT_PARAMS = {
    "doculink": "doculink",
    "docurl": "doculink",  # ProvDM REC name
    "type": "type",
    "subtype": "subtype",
    "version": "version",
    "contact_name": "contact_name",
    "contact_email": "contact_email",
    "executionduration": "executionDuration",
    "quote": "quote",
    "script": "script",
}
_ENTITY_PARAMS = {
    "role": "role",
    "multiplicity": "multiplicity",
    "default": "default",
    "content_type": "content_type",
    "contenttype": "content_type",  # ProvDM REC name
    "url": "url",
}

_NO_DOCTYPE = "DOCTYPE declarations (DTDs, entities) are not allowed"

_schema_lock = threading.Lock()


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    """The VOTable 1.3 XSD shipped inside astropy, compiled once.

    The file is located without importing astropy (which is slow to import).
    """
    spec = importlib.util.find_spec("astropy")
    if spec is None or spec.origin is None:
        raise RuntimeError("astropy is not installed: the VOTable 1.3 XSD cannot be found")
    xsd = Path(spec.origin).parent / "io" / "votable" / "data" / "VOTable.v1.3.xsd"
    return etree.XMLSchema(etree.parse(str(xsd), _safe_parser()))


def _safe_parser() -> etree.XMLParser:
    # A new parser per call: lxml parsers must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
    )


def _validate(root: etree._Element) -> list[tuple[int | None, str]]:
    """XSD errors as (line, message), element names shown without their namespace."""
    schema = _schema()
    with _schema_lock:  # the error log lives on the shared schema object
        if schema.validate(root):
            return []
        errors = [(entry.line or None, entry.message) for entry in schema.error_log]
    return [(line, message.replace("{" + _VOTABLE_13 + "}", "")) for line, message in errors]


@dataclass
class _Report:
    """Collects Problems for one file."""

    path: str
    problems: list[Problem]

    def add(self, where: etree._Element | int | None, message: str) -> None:
        line = where if where is None or isinstance(where, int) else where.sourceline
        self.problems.append(Problem(self.path, line, message))


def parse_service(
    data: bytes, *, path: str, script: str | None, script_source: str = ""
) -> tuple[ServiceDescription | None, list[Problem]]:
    """Parse and check one service file.

    ``path`` names the file in Problems and fixes the expected service name (its stem, or the
    part before ``_vot`` for OPUS's ``<name>_vot.xml``). ``script`` is the content of
    ``<name>.sh`` (read by the caller from ``script_source``), used when the document has no
    ``script`` PARAM. Returns ``(service, [])`` or ``(None, problems)``.
    """
    report = _Report(path, [])
    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as exc:
        # libxml2 may itself stop on an entity bomb; name the real reason, the DOCTYPE.
        doctype_line = _doctype_line(data)
        if doctype_line is not None:
            report.add(doctype_line, _NO_DOCTYPE)
        else:
            report.add(exc.lineno or None, f"malformed XML: {exc.msg}")
        return None, report.problems

    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        # Refused before anything reads the tree; entities were never expanded anyway.
        report.add(_doctype_line(data) or 1, _NO_DOCTYPE)
        return None, report.problems

    qname = etree.QName(root)
    if qname.localname != "VOTABLE" or qname.namespace not in VOTABLE_NAMESPACES:
        report.add(
            root,
            f"not a VOTable: the root element must be VOTABLE in namespace {_VOTABLE_13}",
        )
        return None, report.problems
    if qname.namespace == _VOTABLE_13:
        for line, message in _validate(root):
            report.add(line, f"VOTable schema: {message}")

    service = _read_service(root, report, path=path, script=script, script_source=script_source)
    if report.problems:
        return None, report.problems
    return service, []


def _read_service(
    root: etree._Element,
    report: _Report,
    *,
    path: str,
    script: str | None,
    script_source: str,
) -> ServiceDescription | None:
    resource = _find_resource(root)
    if resource is None:
        report.add(
            root,
            'no RESOURCE with utype="voprov:ActivityDescription" or type="meta"',
        )
        return None

    name = _check_service_name(resource, report, path)
    description = ""
    root_params: dict[str, str] = {}
    root_elements: dict[str, etree._Element] = {}
    extra: dict[str, str] = {}
    link_href = ""
    groups: dict[str, etree._Element] = {}
    for child in _elements(resource):
        tag = _local(child)
        if tag == "DESCRIPTION" and not description:
            description = _text(child)
        elif tag == "LINK" and not link_href:
            link_href = child.get("href", "")
        elif tag == "PARAM":
            pname = child.get("name", "")
            key = _ROOT_PARAMS.get(pname.casefold())
            if key is None:
                extra.setdefault(pname, child.get("value", ""))
            elif key in root_params:
                report.add(child, f"duplicate root PARAM {pname!r}")
            else:
                root_params[key] = child.get("value", "")
                root_elements[key] = child
        elif tag == "GROUP":
            gname = child.get("name", "")
            canonical = _GROUPS.get(gname.casefold())
            if canonical is None:
                report.add(
                    child,
                    f"unknown GROUP {gname!r} (expected InputParams, Used or Generated)",
                )
            elif canonical in groups:
                report.add(child, f"duplicate GROUP {canonical!r}")
            else:
                groups[canonical] = child

    execution_duration = _seconds(root_elements.get("executionDuration"), report)
    quote = _seconds(root_elements.get("quote"), report)

    params = [_read_param(p, report) for p in _group_members(groups.get("InputParams"), report)]
    used = [
        _read_used(g, report, params) for g in _group_members(groups.get("Used"), report, "GROUP")
    ]
    generated = [
        _read_generated(g, report) for g in _group_members(groups.get("Generated"), report, "GROUP")
    ]
    _check_names(report, params, used, generated)

    job_script, source = _pick_script(root_params.get("script", ""), script, script_source, path)
    if job_script is None:
        report.add(
            resource,
            f"no job script: add a `script` PARAM or {name or _expected_names(path)[-1]}.sh",
        )

    if report.problems or name is None or job_script is None:
        return None
    return ServiceDescription(
        name=name,
        script=job_script,
        description=description,
        doculink=root_params.get("doculink") or link_href,
        type=root_params.get("type", ""),
        subtype=root_params.get("subtype", ""),
        version=root_params.get("version", ""),
        contact_name=root_params.get("contact_name", ""),
        contact_email=root_params.get("contact_email", ""),
        execution_duration=execution_duration or 0,
        quote=quote,
        parameters=tuple(p.param for p in params),
        used=tuple(u.entity for u in used),
        generated=tuple(g.entity for g in generated),
        source=path,
        script_source=source,
        extra=extra,
    )


# --- document structure -------------------------------------------------------------------


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _elements(parent: etree._Element) -> Iterator[etree._Element]:
    """Element children (comments and processing instructions have non-string tags)."""
    return (child for child in parent if isinstance(child.tag, str))


def _child(parent: etree._Element, tag: str) -> etree._Element | None:
    return next((c for c in _elements(parent) if _local(c) == tag), None)


def _text(element: etree._Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


def _find_resource(root: etree._Element) -> etree._Element | None:
    """The first ActivityDescription RESOURCE (any prefix, any case), else the first meta one."""
    resources = [e for e in root.iter() if isinstance(e.tag, str) and _local(e) == "RESOURCE"]
    for resource in resources:
        utype = resource.get("utype", "").casefold()
        if utype.rpartition(":")[2] == "activitydescription":
            return resource
    return next((r for r in resources if r.get("type") == "meta"), None)


def _doctype_line(data: bytes) -> int | None:
    """Line of ``<!DOCTYPE`` in the raw document (UTF-8 and UTF-16 spellings), else None."""
    for encoding in ("ascii", "utf-16-le", "utf-16-be"):
        index = data.find("<!DOCTYPE".encode(encoding))
        if index >= 0:
            return data.count("\n".encode(encoding), 0, index) + 1
    return None


def _expected_names(path: str) -> list[str]:
    """Service names the file name allows: its stem, and ``<name>`` for ``<name>_vot.xml``."""
    base = PurePosixPath(path.replace("\\", "/")).name
    stem = base[: -len(".xml")] if base.endswith(".xml") else PurePosixPath(base).stem
    names = [stem]
    if stem.endswith("_vot") and len(stem) > len("_vot"):
        names.append(stem[: -len("_vot")])
    return names


def _check_service_name(resource: etree._Element, report: _Report, path: str) -> str | None:
    name = resource.get("name") or resource.get("ID")
    if not name:
        report.add(resource, "the RESOURCE has no name (or ID): it is the service name")
        return None
    if not _SERVICE_NAME_RE.fullmatch(name):
        report.add(
            resource,
            f"service name {name!r} is not valid (a letter, then up to 63 letters, digits, _ or -)",
        )
    expected = _expected_names(path)
    # A path without a file name (e.g. a document checked before it is saved) fixes nothing.
    if expected[0] and name not in expected:
        report.add(
            resource,
            f"service name {name!r} does not match the file name: expected {expected[-1]!r}",
        )
    return name


def _group_members(
    group: etree._Element | None, report: _Report, tag: str = "PARAM"
) -> list[etree._Element]:
    """The PARAMs of InputParams, or the sub-GROUPs of Used/Generated; others are reported."""
    if group is None:
        return []
    members = []
    gname = group.get("name", "")
    for child in _elements(group):
        kind = _local(child)
        if kind == tag:
            members.append(child)
        elif kind in ("PARAM", "GROUP", "PARAMref", "FIELDref"):
            expected = "one PARAM per parameter" if tag == "PARAM" else "one GROUP per entity"
            report.add(child, f"GROUP {gname!r}: unexpected {kind} (expected {expected})")
    return members


def _seconds(param: etree._Element | None, report: _Report) -> int | None:
    """A root PARAM holding a whole number of seconds; None when absent or empty."""
    text = param.get("value", "").strip() if param is not None else ""
    if param is None or not text:
        return None
    if not _SECONDS_RE.fullmatch(text):
        name = param.get("name")
        report.add(param, f"{name} must be a whole number of seconds (>= 0), not {text!r}")
        return None
    return int(text)


def _pick_script(
    param_value: str, script: str | None, script_source: str, path: str
) -> tuple[str | None, str]:
    """The ``script`` PARAM if non-empty, else the ``.sh`` file; CRLF becomes LF for bash."""
    if param_value.strip():
        return param_value.replace("\r\n", "\n"), f"{path}#script"
    if script is not None and script.strip():
        return script.replace("\r\n", "\n"), script_source
    return None, ""


# --- InputParams ----------------------------------------------------------------------------


@dataclass
class _Param:
    param: InputParam
    element: etree._Element
    ident: str | None  # the PARAM's ID, which a Used GROUP's ref may name


def _read_param(element: etree._Element, report: _Report) -> _Param:
    name = element.get("name", "")
    if not name:
        report.add(element, "GROUP 'InputParams': PARAM without a name")
    what = f"parameter {name!r}"
    datatype = element.get("datatype", "")
    arraysize = element.get("arraysize") or None
    value = element.get("value")

    minimum = maximum = None
    min_inclusive = max_inclusive = True
    options: list[str] = []
    values = _child(element, "VALUES")
    min_el = max_el = None
    if values is not None:
        if values.get("ref"):
            report.add(values, f"{what}: VALUES ref is not supported (give MIN/MAX/OPTION here)")
        min_el, max_el = _child(values, "MIN"), _child(values, "MAX")
        if min_el is not None:
            minimum = min_el.get("value")
            min_inclusive = min_el.get("inclusive", "yes") != "no"
        if max_el is not None:
            maximum = max_el.get("value")
            max_inclusive = max_el.get("inclusive", "yes") != "no"
        # Nested OPTIONs (a hierarchy) are flattened; every value is selectable.
        for option in values.iter():
            if isinstance(option.tag, str) and _local(option) == "OPTION":
                option_value = option.get("value")
                if option_value is None:
                    report.add(option, f"{what}: OPTION without a value")
                elif option_value not in options:
                    options.append(option_value)

    param = InputParam(
        name=name,
        datatype=datatype,
        arraysize=arraysize,
        default=value if value else None,
        required=element.get("type") != "no_query",
        unit=element.get("unit"),
        ucd=element.get("ucd"),
        utype=element.get("utype"),
        xtype=element.get("xtype"),
        description=_text(_child(element, "DESCRIPTION")),
        minimum=minimum,
        minimum_inclusive=min_inclusive,
        maximum=maximum,
        maximum_inclusive=max_inclusive,
        options=tuple(options),
    )
    if _check_param_type(param, element, report, min_el, max_el):
        # Only a well-typed parameter can check its own OPTIONs and default.
        for option in param.options:
            _check(report, element, "invalid OPTION", replace(param, options=()), option)
        if param.default is not None:
            _check(report, element, "invalid default", param, param.default)
    return _Param(param, element, element.get("ID"))


def _check_param_type(
    param: InputParam,
    element: etree._Element,
    report: _Report,
    min_el: etree._Element | None,
    max_el: etree._Element | None,
) -> bool:
    """Check datatype, arraysize and MIN/MAX; True when all are usable."""
    what = f"parameter {param.name!r}"
    before = len(report.problems)
    if param.datatype not in DATATYPES:
        report.add(
            element,
            f"{what}: datatype {param.datatype!r} is not supported "
            f"(expected one of {', '.join(_DATATYPE_ORDER)})",
        )
    size = param.arraysize
    if size is not None and not _ARRAYSIZE_RE.fullmatch(size):
        if "x" in size:
            message = f"{what}: arraysize {size!r}: multi-dimensional arrays are not supported"
            report.add(element, message)
        else:
            report.add(element, f"{what}: arraysize {size!r} is not valid (expected *, n or n*)")
    if len(report.problems) > before:
        return False

    bounds: list[tuple[str, etree._Element, str]] = []
    for label, bound_el, text in (("MIN", min_el, param.minimum), ("MAX", max_el, param.maximum)):
        if bound_el is None:
            continue
        if text is None:
            report.add(bound_el, f"{what}: {label} without a value")
        elif param.datatype not in _NUMERIC:
            report.add(bound_el, f"{what}: {label} is only supported for numeric datatypes")
        else:
            bounds.append((label, bound_el, text))
    # A bound is one item (also for arrays), checked without the other bound or OPTIONs.
    scalar = replace(param, arraysize=None, minimum=None, maximum=None, options=())
    parsed: dict[str, float] = {}
    for label, bound_el, text in bounds:
        normal = _check(report, bound_el, f"invalid {label}", scalar, text)
        if normal is None:
            continue
        number = float(normal)
        if not math.isfinite(number):
            report.add(bound_el, f"invalid {label}: {param.name}: {text!r} is not a finite number")
        else:
            parsed[label] = number
    if "MIN" in parsed and "MAX" in parsed:
        low, high = parsed["MIN"], parsed["MAX"]
        exclusive = not (param.minimum_inclusive and param.maximum_inclusive)
        if low > high:
            report.add(element, f"{what}: MIN {param.minimum} is greater than MAX {param.maximum}")
        elif low == high and exclusive:
            report.add(element, f"{what}: no value lies between MIN and MAX (exclusive bounds)")
    return len(report.problems) == before


def _check(
    report: _Report,
    element: etree._Element,
    label: str,
    param: InputParam,
    text: str,
) -> str | None:
    """Check a value from the document; report the failure as a Problem and return None."""
    try:
        return check_value(param, text)
    except ValueError as exc:
        report.add(element, f"{label}: {exc}")
        return None


# --- Used and Generated ---------------------------------------------------------------------


@dataclass
class _Used:
    entity: UsedEntity
    element: etree._Element


@dataclass
class _Generated:
    entity: GeneratedEntity
    element: etree._Element


def _entity_fields(group: etree._Element) -> dict[str, str]:
    """role/multiplicity/default/content_type/url of an entity GROUP, by PARAM name."""
    fields: dict[str, str] = {}
    for child in _elements(group):
        tag = _local(child)
        if tag == "PARAM":
            key = _ENTITY_PARAMS.get(child.get("name", "").casefold())
            if key is not None:
                fields.setdefault(key, child.get("value", ""))
        elif tag == "LINK" and child.get("href") and not fields.get("url"):
            fields["url"] = child.get("href", "")
    fields["description"] = _text(_child(group, "DESCRIPTION"))
    return fields


def _read_used(group: etree._Element, report: _Report, params: list[_Param]) -> _Used:
    name = group.get("name", "")
    if not name:
        report.add(group, "GROUP 'Used': entity GROUP without a name")
    fields = _entity_fields(group)
    default = fields.get("default") or None
    if default is not None and ("/" in default or default in (".", "..") or "\x00" in default):
        report.add(
            group,
            f"Used entity {name!r}: default {default!r} must be a plain file name (no '/' or '..')",
        )
    ref = group.get("ref")
    ref_name = None
    if ref:
        # OPUS resolves ref by name; the VOTable way is the PARAM's ID: accept both.
        target = next((p for p in params if p.ident == ref), None) or next(
            (p for p in params if p.param.name == ref), None
        )
        if target is None:
            report.add(group, f"Used entity {name!r}: ref {ref!r} does not name an InputParam")
        else:
            ref_name = target.param.name
    entity = UsedEntity(
        name=name,
        role=fields.get("role", ""),
        multiplicity=fields.get("multiplicity", ""),
        default=default,
        content_type=fields.get("content_type", ""),
        url=fields.get("url", ""),
        description=fields["description"],
        ref=ref_name,
    )
    return _Used(entity, group)


def _read_generated(group: etree._Element, report: _Report) -> _Generated:
    name = group.get("name", "")
    if not name:
        report.add(group, "GROUP 'Generated': entity GROUP without a name")
    fields = _entity_fields(group)
    default = fields.get("default") or None
    if default is None:
        report.add(
            group,
            f"Generated entity {name!r}: a `default` PARAM (the output file name) is required",
        )
    elif default.startswith("/") or ".." in default.split("/") or "\x00" in default:
        report.add(
            group,
            f"Generated entity {name!r}: default {default!r} must be a relative path without '..'",
        )
    entity = GeneratedEntity(
        name=name,
        role=fields.get("role", ""),
        multiplicity=fields.get("multiplicity", ""),
        default=default,
        content_type=fields.get("content_type", ""),
        description=fields["description"],
    )
    return _Generated(entity, group)


# --- names ----------------------------------------------------------------------------------


def _check_names(
    report: _Report, params: list[_Param], used: list[_Used], generated: list[_Generated]
) -> None:
    """Each name becomes a shell variable of the job script: valid, not reserved, unique."""
    entries: list[tuple[str, str, etree._Element, str | None]] = [
        *(("parameter", p.param.name, p.element, None) for p in params),
        *(("Used entity", u.entity.name, u.element, u.entity.ref) for u in used),
        *(("Generated entity", g.entity.name, g.element, None) for g in generated),
    ]
    seen: dict[str, tuple[str, str, etree._Element]] = {}
    for kind, name, element, ref in entries:
        if not name:
            continue  # already reported
        what = f"{kind} {name!r}"
        if not _IDENTIFIER_RE.fullmatch(name):
            report.add(
                element,
                f"{what}: the name must be a shell identifier "
                "(letters, digits and _, not starting with a digit)",
            )
        elif name.casefold() in UWS_CONTROL_NAMES:
            report.add(element, f"{what}: the name is reserved (a UWS control parameter)")
        elif name in SHELL_NAMES:
            report.add(element, f"{what}: the name is reserved (a shell variable)")
        elif name.startswith(RESERVED_PREFIXES):
            report.add(
                element,
                f"{what}: names starting with {', '.join(RESERVED_PREFIXES)} are reserved",
            )
        folded = name.casefold()
        previous = seen.get(folded)
        if previous is None:
            seen[folded] = (kind, name, element)
            continue
        prev_kind, prev_name, prev_element = previous
        # A Used entity describing its own InputParam (GROUP ref) shares that parameter's name.
        if kind == "Used entity" and prev_kind == "parameter" and ref == prev_name:
            continue
        report.add(
            element,
            f"{what}: the name is already used by {prev_kind} {prev_name!r} "
            f"(line {prev_element.sourceline}); names are compared case-insensitively",
        )
