"""Service (job type) descriptions: OPUS-style VOTable ActivityDescriptions.

A service is ``services/<name>.xml`` (a VOTable RESOURCE ``utype="voprov:ActivityDescription"``
with GROUPs InputParams, Used and Generated) plus its bash script, given as a ``script`` PARAM or
as ``services/<name>.sh``. :func:`load_services` reads a folder, :func:`parse_service` checks one
document, and :func:`check_value` validates a submitted parameter value before a job gets it.
"""

from __future__ import annotations

from .loader import MAX_FILE_SIZE, format_problems, load_services
from .model import (
    DATATYPES,
    GeneratedEntity,
    InputParam,
    Problem,
    ServiceDescription,
    UsedEntity,
)
from .parse import parse_service
from .values import check_value, is_array

__all__ = [
    "DATATYPES",
    "MAX_FILE_SIZE",
    "GeneratedEntity",
    "InputParam",
    "Problem",
    "ServiceDescription",
    "UsedEntity",
    "check_value",
    "format_problems",
    "is_array",
    "load_services",
    "parse_service",
]
