"""The job type read from a service's ActivityDescription: frozen dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DATATYPES",
    "GeneratedEntity",
    "InputParam",
    "Problem",
    "ServiceDescription",
    "UsedEntity",
]

DATATYPES = frozenset(
    {"boolean", "unsignedByte", "short", "int", "long", "char", "unicodeChar", "float", "double"}
)
"""VOTable datatypes a job parameter may have (the ones a shell script can receive as text)."""


@dataclass(frozen=True)
class Problem:
    """One defect found in a service file, located for the operator."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class InputParam:
    """A PARAM of GROUP InputParams: one typed job parameter."""

    name: str
    datatype: str
    arraysize: str | None = None
    default: str | None = None
    """The PARAM's ``value``; None when absent or empty."""
    required: bool = True
    """False when the PARAM has ``type="no_query"``."""
    unit: str | None = None
    ucd: str | None = None
    utype: str | None = None
    xtype: str | None = None
    description: str = ""
    minimum: str | None = None
    minimum_inclusive: bool = True
    maximum: str | None = None
    maximum_inclusive: bool = True
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class UsedEntity:
    """A sub-GROUP of GROUP Used: an input entity (a file, or a value resolved through ``url``)."""

    name: str
    role: str = ""
    multiplicity: str = ""
    default: str | None = None
    """Local file name the script sees (``$name``), e.g. ``input.txt``."""
    content_type: str = ""
    url: str = ""
    """``file://$ID`` (the value is the file itself) or a template in which ``$ID`` is replaced."""
    description: str = ""
    ref: str | None = None
    """Name of the InputParam this entity describes, when the GROUP has ``ref``."""


@dataclass(frozen=True)
class GeneratedEntity:
    """A sub-GROUP of GROUP Generated: a result file the script writes."""

    name: str
    role: str = ""
    multiplicity: str = ""
    default: str | None = None
    """The output file name (a glob is allowed)."""
    content_type: str = ""
    description: str = ""


@dataclass(frozen=True)
class ServiceDescription:
    """One job type: the checked ActivityDescription plus its script."""

    name: str
    script: str
    description: str = ""
    doculink: str = ""
    type: str = ""
    subtype: str = ""
    version: str = ""
    contact_name: str = ""
    contact_email: str = ""
    execution_duration: int = 0
    """Default executionDuration in seconds (0 = unlimited)."""
    quote: int | None = None
    """Expected run time in seconds (the description's ``quote``), not a UWS instant."""
    parameters: tuple[InputParam, ...] = ()
    used: tuple[UsedEntity, ...] = ()
    generated: tuple[GeneratedEntity, ...] = ()
    source: str = ""
    """Path of the file it was read from."""
    script_source: str = ""
    """Path of the script file, or ``<path>#script`` for the ``script`` PARAM."""
    extra: dict[str, str] = field(default_factory=dict, compare=False)
    """Other root PARAMs, kept verbatim."""

    def parameter(self, name: str) -> InputParam | None:
        """The InputParam called ``name``, matched case-insensitively."""
        folded = name.casefold()
        for param in self.parameters:
            if param.name.casefold() == folded:
                return param
        return None

    def used_entity(self, name: str) -> UsedEntity | None:
        """The Used entity called ``name``, matched case-insensitively."""
        folded = name.casefold()
        for entity in self.used:
            if entity.name.casefold() == folded:
                return entity
        return None
