"""Each worker's share of the open model's arrivals (pure): who the active workers are, what the master sends.

The arrival rate of an open-model suite is for the whole test. In a distributed run the master divides it
among its *active workers* (:data:`ACTIVE_WORKER_STATES`, the Locust states of a worker that gets Users),
ranked by sorting their client ids: worker ``index`` of ``workers`` runs its share of each schedule
(``arrival.arrival_times``, ``workload.trace.schedule``). The division is one message from the master,
:func:`share_message`, read on each worker with :func:`read_share`; a suite whose master decides the rate
during the run (the workload suite under the capacity search) sends the rate with it.

The Locust side (when the master sends, how a worker asks, when a schedule restarts) is
``llm_users.pacing.share_protocol``; the capacity shape counts the same active workers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ACTIVE_WORKER_STATES", "Share", "active_workers", "read_share", "share_message"]

ACTIVE_WORKER_STATES = ("ready", "spawning", "running")
"""Locust's states of a worker that gets Users (a ``missing`` or ``stopped`` worker has none)."""


@dataclass(frozen=True, slots=True)
class Share:
    """This process's part of the arrivals: worker ``index`` of ``workers`` (a single process is 0 of 1)."""

    index: int = 0
    workers: int = 1
    rate: float | None = None
    """The whole test's rate the master sent with the share; ``None``: the suite's own settings decide it."""


def active_workers(clients: Iterable[Any], joining: str | None = None) -> list[str]:
    """The ids of the active workers among ``clients`` (Locust's ``WorkerNode``s: ``.id``, ``.state``), plus
    ``joining`` (a worker that asked for its share before the master counts it), sorted: their ranks."""
    ids = {c.id for c in list(clients) if c.state in ACTIVE_WORKER_STATES}
    if joining:
        ids.add(joining)
    return sorted(ids)


def share_message(ids: Sequence[str], rate: float | None = None) -> dict[str, Any]:
    """The master's message dividing the arrivals among the workers ``ids`` (in rank order)."""
    data: dict[str, Any] = {"workers": len(ids), "ranks": {cid: i for i, cid in enumerate(ids)}}
    if rate is not None:
        data["rate"] = rate
    return data


def read_share(data: Mapping[str, Any] | None, client_id: str) -> Share:
    """Worker ``client_id``'s share in the master's message (a worker it does not name runs rank 0)."""
    data = data or {}
    workers = max(1, int(data.get("workers", 1)))
    index = int(data.get("ranks", {}).get(client_id, 0)) % workers
    rate = data.get("rate")
    return Share(index, workers, None if rate is None else float(rate))
