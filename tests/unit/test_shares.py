"""The worker shares of the open model (llm_users.pacing.shares): who is active, what the master sends."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llm_users.pacing.shares import ACTIVE_WORKER_STATES, Share, active_workers, read_share, share_message


def node(cid: str, state: str) -> SimpleNamespace:
    return SimpleNamespace(id=cid, state=state)


def test_active_workers_are_the_ones_that_get_users_sorted_by_id() -> None:
    clients = [node("w-b", "running"), node("w-a", "ready"), node("w-c", "missing"), node("w-d", "spawning")]
    clients += [node("w-e", "stopped")]
    assert active_workers(clients) == ["w-a", "w-b", "w-d"]
    assert active_workers(clients, joining="w-0") == ["w-0", "w-a", "w-b", "w-d"]
    assert active_workers(clients, joining="w-b") == ["w-a", "w-b", "w-d"]  # counted once
    assert set(ACTIVE_WORKER_STATES) == {"ready", "spawning", "running"}


@pytest.mark.parametrize(
    ("ids", "rate", "client", "share"),
    [
        (["a", "b", "c"], None, "c", Share(2, 3)),
        (["a", "b"], 12.5, "a", Share(0, 2, 12.5)),
        (["a", "b"], 0.0, "b", Share(1, 2, 0.0)),  # a rate of 0 is a rate, not "none sent"
        (["a", "b"], None, "zz", Share(0, 2)),  # a worker the message does not name runs rank 0
        ([], None, "a", Share(0, 1)),  # no worker: the whole rate
    ],
)
def test_each_worker_reads_its_share_of_the_masters_message(
    ids: list[str], rate: float | None, client: str, share: Share
) -> None:
    assert read_share(share_message(ids, rate), client) == share


def test_the_message_keeps_its_wire_format() -> None:
    assert share_message(["x", "y"]) == {"workers": 2, "ranks": {"x": 0, "y": 1}}
    assert share_message(["x"], 3.0) == {"workers": 1, "ranks": {"x": 0}, "rate": 3.0}


def test_a_malformed_or_empty_message_is_the_whole_rate() -> None:
    assert read_share(None, "a") == Share()
    assert read_share({"workers": 0, "ranks": {"a": 5}}, "a") == Share(0, 1)
    assert read_share({"workers": 2, "ranks": {"a": 3}}, "a") == Share(1, 2)  # a rank out of range wraps
