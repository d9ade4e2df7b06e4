"""Direct matching of the UWS resources (``/rest/<service>[/<job_id>[/<name>]]``).

Werkzeug's matcher was a third of the Python time of a ``/phase`` GET (bench P1), and these
are the URLs clients poll. The table is derived from the ``Map`` at start-up, so the ``Map``
stays the one declaration of every route; anything the table does not cover exactly (another
method, an unusual path, the ``<path:…>`` rules) goes to the ``Map`` as before, which also keeps
its 405 and redirect answers. ``tests/test_restroutes.py`` checks the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from werkzeug.routing import Rule

__all__ = ["RestRoutes"]

_LIST = re.compile(r"^/rest/<service>$")
_SIBLING = re.compile(r"^/rest/<service>/([a-z]+)$")
_JOB = re.compile(r"^/rest/<service>/<job_id>(?:/([a-z]+))?$")


@dataclass(frozen=True)
class RestRoutes:
    """Endpoints by the shape of a ``/rest/`` path."""

    list_route: tuple[str, frozenset[str]] | None
    job_routes: dict[str, tuple[str, frozenset[str]]]
    """Sub-resource name ("" for the job itself) → (endpoint, methods)."""
    siblings: frozenset[str]
    """Static names beside job ids (``capabilities``): the ``Map`` ranks them first."""

    @classmethod
    def from_rules(cls, rules: Iterable[Rule]) -> RestRoutes:
        list_route = None
        job_routes: dict[str, tuple[str, frozenset[str]]] = {}
        siblings = set()
        for rule in rules:
            methods = frozenset(rule.methods or ())
            if _LIST.match(rule.rule):
                list_route = (str(rule.endpoint), methods)
            elif found := _SIBLING.match(rule.rule):
                siblings.add(found.group(1))
            elif found := _JOB.match(rule.rule):
                job_routes[found.group(1) or ""] = (str(rule.endpoint), methods)
        return cls(list_route, job_routes, frozenset(siblings))

    def match(self, method: str, path_info: str) -> tuple[str, dict[str, str]] | None:
        """(endpoint, values) for a WSGI ``PATH_INFO`` the table covers, else None (use the
        Map, which also merges repeated slashes and answers trailing ones)."""
        if not path_info.startswith("/rest/") or "//" in path_info or path_info.endswith("/"):
            return None
        # PEP 3333 gives the path's bytes as latin-1 characters; URLs are UTF-8 (as the Map
        # decodes them).
        try:
            parts = path_info.encode("latin-1").decode("utf-8", "replace").split("/")
        except UnicodeEncodeError:  # not what a WSGI server passes: let the Map judge it
            return None
        count = len(parts)
        if count == 3:
            route = self.list_route
            values = {"service": parts[2]}
        elif count in (4, 5) and parts[3] not in self.siblings:
            route = self.job_routes.get(parts[4] if count == 5 else "")
            values = {"service": parts[2], "job_id": parts[3]}
        else:
            return None
        if route is None or method not in route[1]:
            return None
        return route[0], values
