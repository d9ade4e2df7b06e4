"""The ProvSAP walk: breadth first over Used and WasGeneratedBy, level by level. Pure.

DEPTH counts relations: each Used (job → input file) and each WasGeneratedBy (result file →
job) followed costs 1, so one job-to-job hop costs 2. A job always comes with its agents, its
description and its parameters (no cost). Each node is visited once (loops are cut). Jobs the
caller may not see are never entered: the walk stops at their files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from .records import ActivityRecord, EntityRecord, GeneratedRecord, ProvGraph, UsedRecord

__all__ = ["ProvSource", "walk"]


class ProvSource(Protocol):
    """Batched look-ups the walk needs (the store answers them from indexed tables)."""

    def prov_activities(self, job_ids: Iterable[str]) -> dict[str, ActivityRecord]: ...

    def prov_entities(self, hashes: Iterable[str]) -> dict[str, EntityRecord]: ...

    def prov_used_of(self, job_ids: Iterable[str]) -> list[UsedRecord]: ...

    def prov_used_by(self, hashes: Iterable[str]) -> list[UsedRecord]: ...

    def prov_generated_of(self, job_ids: Iterable[str]) -> list[GeneratedRecord]: ...

    def prov_generated_by(self, hashes: Iterable[str]) -> list[GeneratedRecord]: ...

    def prov_jobs_of_owners(self, owners: Iterable[str]) -> list[str]: ...


def walk(
    source: ProvSource,
    activities: Iterable[str],
    entities: Iterable[str],
    *,
    depth: int | None,
    direction: str,
    visible: Callable[[ActivityRecord], bool],
    agents: bool = False,
) -> ProvGraph:
    """The subgraph reached from the start nodes.

    ``direction`` is ``BACK`` (towards progenitors: a job's inputs, a file's generating jobs),
    ``FORTH`` (towards descendants: a job's results, the jobs that used a file) or ``BOTH``
    (one job's own document). ``depth`` None walks to the end. Start activities must be
    visible already; ``agents`` adds every visible job of the owners found, with its files.
    """
    graph = ProvGraph()
    have: set[tuple[str, str, str, str]] = set()
    acts = source.prov_activities(activities)
    graph.activities.update(acts)
    seen_ents: set[str] = set(entities)
    frontier_acts = set(acts)
    frontier_ents = set(seen_ents)
    back = direction in ("BACK", "BOTH")
    forth = direction in ("FORTH", "BOTH")
    level = 0
    while (frontier_acts or frontier_ents) and (depth is None or level < depth):
        level += 1
        next_acts: set[str] = set()
        next_ents: set[str] = set()
        uses: list[UsedRecord] = []
        gens: list[GeneratedRecord] = []
        if back:
            uses += source.prov_used_of(frontier_acts)
            gens += source.prov_generated_by(frontier_ents)
        if forth:
            gens += source.prov_generated_of(frontier_acts)
            uses += source.prov_used_by(frontier_ents)
        # Files reached from a job in this level.
        for rec in uses:
            if rec.job_id in frontier_acts and rec.sha256 not in seen_ents:
                next_ents.add(rec.sha256)
        for rec in gens:
            if rec.job_id in frontier_acts and rec.sha256 not in seen_ents:
                next_ents.add(rec.sha256)
        # Jobs reached from a file in this level (only those the caller may see).
        wanted = {
            r.job_id
            for r in (*uses, *gens)
            if r.sha256 in frontier_ents and r.job_id not in graph.activities
        }
        found = {k: v for k, v in source.prov_activities(wanted).items() if visible(v)}
        graph.activities.update(found)
        next_acts.update(found)
        seen_ents |= next_ents
        _keep(graph, uses, gens, seen_ents, have)
        frontier_acts, frontier_ents = next_acts, next_ents
    if agents:
        owners = {a.owner for a in graph.activities.values()}
        more = source.prov_activities(
            j for j in source.prov_jobs_of_owners(owners) if j not in graph.activities
        )
        extra = {k: v for k, v in more.items() if visible(v)}
        graph.activities.update(extra)
        gens = source.prov_generated_of(extra)
        seen_ents |= {g.sha256 for g in gens}
        _keep(graph, [], gens, seen_ents, have)
    graph.entities.update(source.prov_entities(seen_ents))
    return graph


def _keep(
    graph: ProvGraph,
    uses: list[UsedRecord],
    gens: list[GeneratedRecord],
    ents: set[str],
    have: set[tuple[str, str, str, str]],
) -> None:
    """Record the relations whose both ends are in the graph (each once)."""
    for u in uses:
        key = ("u", u.job_id, u.role, u.sha256)  # a role may hold several files
        if u.job_id in graph.activities and u.sha256 in ents and key not in have:
            have.add(key)
            graph.used.append(u)
    for g in gens:
        key = ("g", g.job_id, g.role, g.sha256)
        if g.job_id in graph.activities and g.sha256 in ents and key not in have:
            have.add(key)
            graph.generated.append(g)
