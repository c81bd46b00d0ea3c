"""The dispatchers of the open model (llm_users.pacing.dispatch): tickets to the User waiting longest, drops counted."""

from __future__ import annotations

import time

import gevent
import pytest

from llm_users.pacing.arrival import ArrivalSpec
from llm_users.pacing.dispatch import ArrivalDispatcher, Scenario, ScheduleDispatcher, Ticket, WorkTicket


def test_schedule_dispatcher_hands_items_in_order_and_drops_when_no_user_waits() -> None:
    dropped: list[object] = []
    issued: list[object] = []
    d = ScheduleDispatcher([(0.0, "a"), (0.02, "b"), (0.04, "c")], dropped.append, on_issue=issued.append)
    taken: list[WorkTicket | None] = []
    waiter = gevent.spawn(lambda: taken.append(d.take(timeout=1.0)))  # one User: takes "a" and leaves
    gevent.sleep(0)
    d.start()
    assert d.finished.wait(timeout=2.0)
    waiter.join(timeout=1.0)
    assert [t.payload for t in taken if t is not None] == ["a"]
    assert taken[0] is not None and taken[0].scheduled == d.t0
    assert issued == ["a", "b", "c"] and dropped == ["b", "c"]
    assert (d.issued, d.dropped) == (3, 2)


def test_users_waiting_longest_get_the_first_tickets() -> None:
    d = ScheduleDispatcher([(0.0, 1), (0.0, 2)])
    got: dict[str, object] = {}
    first = gevent.spawn(lambda: got.setdefault("first", d.take(timeout=1.0)))
    gevent.sleep(0)
    second = gevent.spawn(lambda: got.setdefault("second", d.take(timeout=1.0)))
    gevent.sleep(0)
    d.start()
    gevent.joinall([first, second], timeout=2.0)
    assert [getattr(got[k], "payload", None) for k in ("first", "second")] == [1, 2]


def test_stop_wakes_the_waiting_users_with_none_and_take_times_out() -> None:
    d = ScheduleDispatcher([(10.0, "late")])
    d.start()
    waiting = gevent.spawn(d.take, 5.0)
    gevent.sleep(0.01)
    d.stop()
    assert waiting.get(timeout=1.0) is None
    assert d.take(timeout=0.01) is None and not d.idle


def test_arrival_dispatcher_runs_its_share_of_each_scenario() -> None:
    spec = ArrivalSpec(rate=100.0, duration_s=0.1)  # 10 arrivals for the whole test, 5 for worker 1 of 2
    d = ArrivalDispatcher([Scenario("s", spec, ("p", "q")), Scenario("off", ArrivalSpec(0.0))], 1, 2)
    taken: list[Ticket] = []

    def user() -> None:
        while (t := d.take(timeout=0.3)) is not None:
            taken.append(t)

    users = [gevent.spawn(user) for _ in range(2)]
    gevent.sleep(0)
    d.start()
    gevent.joinall(users, timeout=3.0)
    assert d.issued == {"s": 5} and d.dropped == {} and not d.running
    assert [t.prompt for t in taken] == ["p", "q", "p", "q", "p"]
    assert d.started_at is not None
    offsets = [round(t.scheduled - d.started_at, 6) for t in taken]
    assert offsets == [0.01, 0.03, 0.05, 0.07, 0.09]


def test_a_ticket_handed_in_the_loop_turn_its_take_times_out_is_not_lost() -> None:
    """The hand-over and the take's timeout expire in the same loop turn, the hand-over first: the User gets the
    ticket (a timeout that came after the hand-over but before the User ran would lose an issued arrival)."""
    d = ScheduleDispatcher([])
    got: list[WorkTicket | None] = []
    taker = gevent.spawn(lambda: got.append(d.take(timeout=0.05)))
    gevent.sleep(0)  # the User waits; its timeout is armed
    assert len(d.idle) == 1
    ticket = WorkTicket("late", 0.0)
    hand = gevent.get_hub().loop.timer(0.02)  # due before the take's timeout, run by the hub itself
    hand.start(d._hand, ticket)
    time.sleep(0.1)  # the loop is held: both timers are due when it runs again
    taker.join(timeout=1.0)
    hand.close()
    assert got == [ticket] and not d.idle


def test_a_schedule_behind_counts_its_burst_of_arrivals_at_once() -> None:
    """50 arrivals all due when the dispatcher first runs (the loop was held): handed to the 2 waiting Users
    first, the other 48 dropped; issued and dropped reported in one call each, by prompt."""
    issues: list[tuple[str, int]] = []
    drops: list[tuple[str, str, int]] = []
    spec = ArrivalSpec(rate=1000.0, duration_s=0.05)
    d = ArrivalDispatcher(
        [Scenario("s", spec, ("p", "q"))],
        on_drop=lambda sc, prompt, n: drops.append((sc, prompt, n)),
        on_issue=lambda sc, n: issues.append((sc, n)),
    )
    taken: list[Ticket | None] = []
    users = [gevent.spawn(lambda: taken.append(d.take(timeout=1.0))) for _ in range(2)]
    gevent.sleep(0)
    d.start()
    time.sleep(0.1)  # the loop is held: the whole schedule is due when the dispatcher runs
    gevent.joinall(users, timeout=2.0)
    assert not d.running
    assert [(t.prompt, round(t.scheduled - (d.started_at or 0.0), 6)) for t in taken if t] == [("p", 0.0), ("q", 0.001)]
    assert issues == [("s", 50)] and sorted(drops) == [("s", "p", 24), ("s", "q", 24)]
    assert d.issued == {"s": 50} and d.dropped == {"s": 48}


@pytest.mark.timing  # arrivals 100 ms apart: a loop held longer than that (a loaded machine) makes a burst of 2
def test_a_schedule_on_time_reports_each_arrival_as_it_comes() -> None:
    issues: list[tuple[str, int]] = []
    drops: list[tuple[str, str, int]] = []
    d = ArrivalDispatcher(
        [Scenario("s", ArrivalSpec(rate=10.0, duration_s=0.5), ("p",))],
        on_drop=lambda sc, prompt, n: drops.append((sc, prompt, n)),
        on_issue=lambda sc, n: issues.append((sc, n)),
    )
    d.start()
    while d.running:
        gevent.sleep(0.01)
    assert issues == [("s", 1)] * 5 and drops == [("s", "p", 1)] * 5
