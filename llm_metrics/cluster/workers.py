"""Who took part in a distributed run: workers that reported, went missing or quit, joined late (master only).

Locust's master knows its workers only as they are now (``runner.clients``: state ``ready``, ``spawning``,
``running`` or ``missing``; a worker that sends ``quit`` or ``client_stopped`` is deleted from it) and keeps no
history, so a worker lost halfway through a run leaves no trace in the end-of-test numbers. ``WorkerLedger``
keeps that history; ``install_worker_tracking(environment, metrics)`` (called by ``llm_metrics.hooks`` when
the runner is a ``MasterRunner``) feeds it and adds it to the summaries:

* ``worker_connect``: a worker is seen; one that connects after the test started is a *late joiner*;
* ``worker_report``: reports counted with the time of the first and the last, and the user count reported;
  a report received after the stop began is the worker's *final report*;
* every second, Locust's view: a worker in state ``missing`` (no heartbeat for about 3 s) is *lost: missing*;
  a worker that vanished from ``runner.clients`` while the test ran is *lost: quit* (its ``quit`` message,
  e.g. a SIGTERM'd worker, or ``client_stopped``); a missing worker that sends heartbeats again is marked
  *recovered*; a connected worker without a report for ``silent_after_s`` during the run is *silent*;
* at the end: the JSON summary gets a ``workers`` section and the console report one line per problem.

What "lost" costs. A worker sends its measurements every 3 s (and once more when it stops), so a worker
that dies takes with it whatever it measured after its last report: the requests it sent in that window
reached the target but are in no merged number. The report says when that last report was.

Final reports. When a headless run ends, Locust's master tells the workers to quit and stops listening
0.5 s later, but a worker sends its final report only once its calls in flight have ended (up to
``--stop-timeout``): a final report that comes later is dropped, with the calls it holds (measured with
2 workers and 100 ms calls: 5 of 56 calls missing from the merged numbers). So at ``quitting`` the tracker
reads on (``drain_final_reports``): the messages still queued on the master's socket are handled (reports
fired as ``worker_report``, merged as usual) until every worker still in the run has sent ``quit`` (which
it sends after its final report), for at most ``stop_timeout + 3`` s. A worker still connected whose
final report never came is listed as such.

``WorkerLedger`` is pure (no Locust, no gevent): tests feed it events with explicit times.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_metrics.state import state as suite_state

log = logging.getLogger(__name__)

ACTIVE_STATES = frozenset({"ready", "spawning", "running"})
MISSING = "missing"
SILENT_AFTER_S = 10.0
"""No report for this long while connected during the run: flagged silent (reports come every 3 s)."""
POLL_S = 1.0
DRAIN_MARGIN_S = 3.0


@dataclass(slots=True)
class WorkerRecord:
    """One worker's history in the current run. Times are wall-clock seconds (``time.time()``)."""

    id: str
    index: int | None = None
    connected_at: float | None = None
    late: bool = False
    state: str = "ready"
    """Locust's last seen state of the worker, or ``gone`` once deleted from ``runner.clients``."""
    reports: int = 0
    first_report_at: float | None = None
    last_report_at: float | None = None
    final_report: bool = False
    users: int | None = None
    max_users: int = 0
    lost: str | None = None
    """``missing`` (no heartbeat) or ``quit`` (left): how the worker was lost while the test ran."""
    lost_at: float | None = None
    recovered: int = 0
    silent_since: float | None = None
    silent_periods: int = 0


class WorkerLedger:
    """The workers of the run and what became of them. Feed it events; read ``to_json()`` and ``lines()``."""

    def __init__(self, *, expected: int = 0, silent_after_s: float = SILENT_AFTER_S) -> None:
        self.expected = expected
        self.silent_after_s = silent_after_s
        self.workers: dict[str, WorkerRecord] = {}
        self.phase = "idle"  # idle -> running -> stopping (test_start, test_stopping)
        self.started_at: float | None = None
        self.stopping_at: float | None = None
        self.at_start: list[str] = []
        self.refused: dict[str, dict[str, Any]] = {}
        """Workers refused for another suite version (``llm_metrics.cluster.health``), out of every other count."""

    # -- events --------------------------------------------------------------------------------------

    def _get(self, worker_id: str) -> WorkerRecord:
        rec = self.workers.get(worker_id)
        if rec is None:
            rec = self.workers[worker_id] = WorkerRecord(worker_id)
        return rec

    def test_started(self, t: float, connected: Mapping[str, str]) -> None:
        """A test starts with the workers of ``connected`` (id -> Locust state); forget earlier runs' history."""
        self.phase = "running"
        self.started_at = t
        self.stopping_at = None
        old = self.workers
        self.workers = {}
        # refusals during an earlier test belong to it; those since (while idle) are kept
        self.refused = {wid: r for wid, r in self.refused.items() if not r["during_run"]}
        connected = {wid: state for wid, state in connected.items() if wid not in self.refused}
        for wid, state in connected.items():
            prev = old.get(wid)
            rec = self._get(wid)
            rec.index = prev.index if prev is not None else None
            rec.connected_at = prev.connected_at if prev is not None else t
            rec.state = state
        self.at_start = sorted(wid for wid, state in connected.items() if state in ACTIVE_STATES)

    def test_stopping(self, t: float) -> None:
        if self.phase == "running":
            self.phase = "stopping"
            self.stopping_at = t

    def connected(self, worker_id: str, t: float, index: int | None = None) -> None:
        rec = self._get(worker_id)
        if index is not None:
            rec.index = index
        if rec.connected_at is None:
            rec.connected_at = t
            rec.late = self.phase == "running"
        if rec.lost is not None and self.phase == "running":
            rec.recovered += 1  # the same worker connected again (``client_ready`` after a reconnect)
            rec.lost = None
            rec.lost_at = None
        rec.state = "ready"

    def refuse(self, worker_id: str, version: str, master_version: str, t: float, during_run: bool) -> None:
        """The master refused this worker (another suite version); it quits and is left out of the run."""
        self.refused[worker_id] = {
            "id": worker_id,
            "version": version,
            "master_version": master_version,
            "at": t,
            "during_run": during_run,
        }
        self.workers.pop(worker_id, None)
        if worker_id in self.at_start:
            self.at_start.remove(worker_id)

    def reported(self, worker_id: str, t: float, users: int | None = None) -> None:
        if worker_id in self.refused:
            return
        rec = self._get(worker_id)
        if rec.connected_at is None:  # connected before tracking began
            rec.connected_at = t
        rec.reports += 1
        if rec.first_report_at is None:
            rec.first_report_at = t
        rec.last_report_at = t
        rec.silent_since = None
        if self.phase == "stopping":
            rec.final_report = True
        if users is not None:
            rec.users = users
            rec.max_users = max(rec.max_users, users)

    def observe(self, t: float, clients: Mapping[str, str]) -> list[str]:
        """Compare with Locust's view (id -> state) at time ``t``; returns log lines for what changed."""
        news: list[str] = []
        running = self.phase == "running"
        for wid, state in clients.items():
            if wid in self.refused:
                continue
            rec = self.workers.get(wid)
            if rec is None:
                rec = self._get(wid)
                rec.connected_at = t
                rec.late = running
            if state == MISSING and rec.state != MISSING and running and rec.lost is None:
                rec.lost = "missing"
                rec.lost_at = t
                news.append(f"worker {self.label(rec)} went missing (no heartbeat); {self._since_report(rec, t)}")
            elif state != MISSING and rec.state == MISSING and rec.lost == "missing":
                rec.lost = None
                rec.lost_at = None
                rec.recovered += 1
                news.append(f"worker {self.label(rec)} is back (heartbeat again)")
            rec.state = state
            if running and state in ACTIVE_STATES and rec.lost is None:
                last = rec.last_report_at if rec.last_report_at is not None else rec.connected_at
                if last is not None and t - last > self.silent_after_s and rec.silent_since is None:
                    rec.silent_since = last
                    rec.silent_periods += 1
                    news.append(f"worker {self.label(rec)} has sent no report for {t - last:.0f} s")
        for wid, rec in self.workers.items():
            if wid in clients or rec.state == "gone":
                continue
            rec.state = "gone"
            if running and rec.lost is None:
                rec.lost = "quit"
                rec.lost_at = t
                news.append(f"worker {self.label(rec)} left the run (quit); {self._since_report(rec, t)}")
        return news

    # -- reading -------------------------------------------------------------------------------------

    @staticmethod
    def label(rec: WorkerRecord) -> str:
        return f"{rec.index} ({rec.id})" if rec.index is not None else rec.id

    def _rel(self, t: float | None) -> float | None:
        if t is None or self.started_at is None:
            return None
        return round(t - self.started_at, 3)

    def _since_report(self, rec: WorkerRecord, t: float) -> str:
        if rec.last_report_at is None:
            return "it never reported: nothing it measured is in the merged numbers"
        return (
            f"its last report was {t - rec.last_report_at:.1f} s earlier: "
            "what it measured after that is not in the merged numbers"
        )

    def late_joiners(self) -> list[WorkerRecord]:
        return [r for r in self._ordered() if r.late]

    def lost(self) -> list[WorkerRecord]:
        return [r for r in self._ordered() if r.lost is not None]

    def without_final_report(self) -> list[WorkerRecord]:
        """Workers still there at the stop that sent no report after it began (their last seconds are missing)."""
        if self.stopping_at is None:
            return []
        return [r for r in self._ordered() if r.lost is None and r.state != "gone" and not r.final_report]

    def _ordered(self) -> list[WorkerRecord]:
        return sorted(self.workers.values(), key=lambda r: (r.index is None, r.index or 0, r.id))

    def to_json(self) -> dict[str, Any]:
        nodes = []
        for r in self._ordered():
            status = f"lost: {r.lost}" if r.lost else "left" if r.state == "gone" else "connected"
            nodes.append(
                {
                    "id": r.id,
                    "index": r.index,
                    "status": status,
                    "late": r.late,
                    "connected_at_s": self._rel(r.connected_at),
                    "reports": r.reports,
                    "first_report_s": self._rel(r.first_report_at),
                    "last_report_s": self._rel(r.last_report_at),
                    "final_report": r.final_report,
                    "lost": r.lost,
                    "lost_at_s": self._rel(r.lost_at),
                    "recovered": r.recovered,
                    "silent_periods": r.silent_periods,
                    "users": r.users,
                    "max_users": r.max_users,
                }
            )
        return {
            "test_started_at": self.started_at,
            "expected": self.expected,
            "at_start": len(self.at_start),
            "seen": len(self.workers),
            "reported": sum(1 for r in self.workers.values() if r.reports),
            "late_joiners": [r.id for r in self.late_joiners()],
            "lost": [r.id for r in self.lost()],
            "no_final_report": [r.id for r in self.without_final_report()],
            "nodes": nodes,
            "refused": [{**r, "at": self._rel(r["at"])} for r in self.refused.values()],
        }

    def lines(self) -> list[str]:
        """The console report: one summary line, then one line per late, lost or incomplete worker."""
        reported = sum(1 for r in self.workers.values() if r.reports)
        head = f"WORKERS: {len(self.at_start)} at start"
        if self.expected:
            head += f" (expected {self.expected})"
        late, lost, partial = self.late_joiners(), self.lost(), self.without_final_report()
        head += f", {len(late)} joined late, {len(lost)} lost; {reported} of {len(self.workers)} reported"
        if self.refused:
            head += f"; {len(self.refused)} refused (another suite version)"
        out = [head]
        for r in late:
            out.append(f"  joined late: worker {self.label(r)} at +{self._rel(r.connected_at) or 0:.1f} s")
        for r in lost:
            how = "went missing (no heartbeat)" if r.lost == "missing" else "quit"
            when = self._rel(r.lost_at)
            line = f"  lost: worker {self.label(r)} {how} at +{when or 0:.1f} s; "
            if r.last_report_at is None:
                line += "it never reported"
            else:
                line += (
                    f"last report at +{self._rel(r.last_report_at) or 0:.1f} s "
                    "(what it measured after that is not in these numbers)"
                )
            out.append(line)
        for r in partial:
            out.append(
                f"  no final report: worker {self.label(r)}, last report at +{self._rel(r.last_report_at) or 0:.1f} s "
                "(calls it finished after that are not in these numbers)"
            )
        for ref in self.refused.values():
            out.append(
                f"  refused: worker {ref['id']} runs suite version {ref['version']}, the master {ref['master_version']}"
                + (" (it had joined the test: its numbers are left out)" if ref["during_run"] else "")
            )
        return out

    def trust_reasons(self) -> list[str]:
        """Why the merged numbers may be incomplete: lost workers, missing final reports, workers refused while
        the test ran. Empty when every worker's measurements are in."""
        out = []
        for r in self.lost():
            how = "went missing" if r.lost == "missing" else "quit"
            out.append(f"worker {self.label(r)} {how} during the run: what it measured after its last report is lost")
        for r in self.without_final_report():
            out.append(f"no final report from worker {self.label(r)}: calls it finished last are not counted")
        for ref in self.refused.values():
            if ref["during_run"]:
                out.append(
                    f"worker {ref['id']} was refused during the run (suite version {ref['version']}, the master "
                    f"{ref['master_version']}): the Users it ran are not counted"
                )
        return out


class WorkerTracking:
    """The Locust glue: listeners and a 1 s poll of ``runner.clients`` feeding a ``WorkerLedger``."""

    def __init__(self, environment: Any, ledger: WorkerLedger, poll_s: float = POLL_S) -> None:
        self.environment = environment
        self.ledger = ledger
        self.poll_s = poll_s
        self._greenlet: Any = None

    def clients(self) -> dict[str, str]:
        runner = self.environment.runner
        return {c.id: c.state for c in list(runner.clients.values())}

    def index(self, worker_id: str) -> int | None:
        indexes = getattr(self.environment.runner, "worker_indexes", None) or {}
        index = indexes.get(worker_id)  # read only: get_worker_index() would hand out a new index
        return int(index) if index is not None else None

    def on_connect(self, client_id: str, **_kw: Any) -> None:
        self.ledger.connected(client_id, time.time(), self.index(client_id))

    def on_report(self, client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        users = data.get("user_count") if isinstance(data, dict) else None
        self.ledger.reported(client_id, time.time(), users if isinstance(users, int) else None)

    def on_test_start(self, **_kw: Any) -> None:
        clients = self.clients()
        self.ledger.test_started(time.time(), clients)
        for wid in clients:
            self.ledger.workers[wid].index = self.index(wid)
        self.poll()
        self.start_polling()

    def on_test_stopping(self, **_kw: Any) -> None:
        self.poll()
        self.ledger.test_stopping(time.time())

    def poll(self) -> None:
        for line in self.ledger.observe(time.time(), self.clients()):
            log.warning("%s", line)

    def start_polling(self) -> None:
        import gevent

        if self._greenlet is None or self._greenlet.dead:
            self._greenlet = gevent.spawn(self._loop)

    def stop_polling(self, **_kw: Any) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def on_quitting(self, **_kw: Any) -> None:
        self.stop_polling()
        try:
            self.drain_final_reports()
        except Exception:  # never let bookkeeping end the run
            log.exception("worker tracking: reading the final reports")

    def drain_final_reports(self, timeout: float | None = None) -> set[str]:
        """Master at quit: read the messages Locust no longer reads until every worker said goodbye.

        Returns the workers that did not (empty when all did). Does nothing while Locust's own listener
        runs (the master has not quit yet: then Locust is told to quit first, which sends the ``quit``s).
        """
        import gevent

        runner = self.environment.runner
        server = getattr(runner, "server", None)
        if runner is None or server is None:
            return set()
        if _alive(runner.greenlet):
            runner.quit()  # sends quit to every worker, stops Locust's listener 0.5 s later
        if _alive(runner.greenlet):
            return set()
        pending = {wid for wid, state in self.clients().items() if state != MISSING}
        if not pending:
            return set()
        wait = timeout if timeout is not None else float(self.environment.stop_timeout or 0) + DRAIN_MARGIN_S
        deadline = time.monotonic() + wait
        events = self.environment.events
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                with gevent.Timeout(left):
                    _, msg = server.recv_from_client()
            except gevent.Timeout:
                break
            except Exception as exc:  # the socket is gone: nothing more will come
                log.debug("worker tracking: stopped reading final reports: %s", exc)
                break
            if msg.type == "stats":
                events.worker_report.fire(client_id=msg.node_id, data=msg.data)
            elif msg.type in ("quit", "client_stopped"):
                pending.discard(msg.node_id)
            elif msg.type == "exception":
                runner.log_exception(msg.node_id, msg.data["msg"], msg.data["traceback"])
        if pending:
            log.warning(
                "no goodbye from worker(s) %s within %.0f s: calls they finished after their last report "
                "are not in the merged numbers",
                ", ".join(sorted(pending)),
                wait,
            )
        return pending

    def _loop(self) -> None:
        import gevent

        while True:
            gevent.sleep(self.poll_s)
            try:
                self.poll()
            except Exception:  # never let bookkeeping end the run
                log.exception("worker tracking")

    def json_section(self) -> dict[str, Any]:
        return self.ledger.to_json()

    def text_section(self) -> str:
        return "\n".join(self.ledger.lines()) + "\n"


def _alive(group: Iterable[Any]) -> bool:
    return any(not g.dead for g in list(group))


def install_worker_tracking(environment: Any, metrics: Any) -> WorkerTracking:
    """Track the master's workers; adds ``workers`` to the JSON summary and a WORKERS line to the report."""
    opts = environment.parsed_options
    expected = int(getattr(opts, "expect_workers", 0) or 0) if opts is not None else 0
    tracking = WorkerTracking(environment, WorkerLedger(expected=expected))
    events = environment.events
    events.worker_connect.add_listener(tracking.on_connect)
    events.worker_report.add_listener(tracking.on_report)
    events.test_start.add_listener(tracking.on_test_start)
    events.test_stopping.add_listener(tracking.on_test_stopping)
    # registered after the runner's own quitting listener, so it runs before it (quitting fires in reverse)
    events.quitting.add_listener(tracking.on_quitting)
    metrics.json_sections["workers"] = tracking.json_section
    metrics.text_sections.append(tracking.text_section)
    metrics.trust_checks.append(tracking.ledger.trust_reasons)
    suite_state(environment).workers = tracking
    return tracking
