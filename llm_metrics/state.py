"""The suite's state kept on Locust's ``Environment``: one typed record behind one accessor.

Every part of the suite that keeps something per environment (the metrics, the exporter, the requests log,
the worker ledger, the version check, the secrets to mask, a suite's runtime, the rate control the capacity
search drives) keeps it in the environment's :class:`SuiteState`, reached through :func:`state`::

    from llm_metrics.state import state

    state(environment).metrics            # LLMMetrics | None
    state(environment).rate_control       # RateControl | None
    state(environment).runtime("workload", WorkloadRuntime)   # WorkloadRuntime | None

The record is one attribute of the environment (``llm_state``), created on first use. Imports go one way:
``llm_users`` and ``shapes`` import this module, never the reverse; so a suite's own runtime (chat, gateway,
sidecar, workload, security) is kept by name as an ``object`` and read back typed by the suite that owns it
(:meth:`SuiteState.runtime` checks the class). What one package needs of another's state is a ``Protocol``
here (:class:`RateControl`).

No Locust import: the environment is any object that takes an attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from llm_metrics.cluster.health import VersionCheck
    from llm_metrics.cluster.workers import WorkerTracking
    from llm_metrics.hooks import LLMMetrics
    from llm_metrics.outputs.exporter import Exporter
    from llm_metrics.outputs.requests_log import RequestsLog

ATTRIBUTE = "llm_state"
"""The one attribute :func:`state` sets on Locust's ``Environment``."""

RuntimeName = Literal["chat", "gateway", "sidecar", "workload", "security"]
"""The suites' own runtimes kept by name (each read back typed by the module that set it)."""

T = TypeVar("T")


class RateControl(Protocol):
    """What the capacity search's rate mode drives: an open-model suite's whole-test arrival rate.

    Set on the master (or the local runner) by a suite whose load is an arrival rate (the workload suite);
    ``shapes.capacity_shape`` calls :meth:`set_rate` at each step of a ``--capacity-mode rate`` search.
    """

    def set_rate(self, rate: float) -> None:
        """Change the whole test's arrival rate (arrivals/s, >= 0) now; the workers get their shares.

        Raises ``ValueError`` for a rate that is negative or not finite, ``RuntimeError`` when the suite's
        current mode has no arrival rate to change.
        """
        ...


@dataclass
class SuiteState:
    """Everything the suite keeps on one Locust ``Environment``; every field is ``None`` until set."""

    metrics: LLMMetrics | None = None
    """The metrics core (``llm_metrics.hooks.install_metrics``): samples, thresholds, summaries."""

    exporter: Exporter | None = None
    """The Prometheus exporter, when ``--prometheus-port`` is set (``llm_metrics.outputs.exporter``)."""

    requests_log: RequestsLog | None = None
    """The per-request log, when ``--requests-log`` is set (``llm_metrics.outputs.requests_log``)."""

    workers: WorkerTracking | None = None
    """Master: the worker ledger and the worker deltas (``llm_metrics.cluster.workers``)."""

    version_check: VersionCheck | None = None
    """Master: the check that every worker runs the same suite version (``llm_metrics.cluster.health``)."""

    extra_secrets: list[str] = field(default_factory=list)
    """Secrets a suite knows beyond the secret options (tokens it read from files, say): the outputs mask
    them too (``llm_users.common.security.add_extra_secret`` appends)."""

    rate_control: RateControl | None = None
    """Master or local runner: the open-model suite's arrival rate, for the capacity search's rate mode."""

    runtimes: dict[str, object] = field(default_factory=dict)
    """A suite's own runtime by name (see :data:`RuntimeName`); use :meth:`runtime` and :meth:`set_runtime`."""

    @overload
    def runtime(self, name: RuntimeName) -> object | None: ...

    @overload
    def runtime(self, name: RuntimeName, kind: type[T]) -> T | None: ...

    def runtime(self, name: RuntimeName, kind: type[Any] = object) -> Any:
        """The runtime kept under ``name`` (``None`` when that suite is not installed); with ``kind``, typed
        as that class (a runtime of another class under that name is a programming error: ``TypeError``)."""
        found = self.runtimes.get(name)
        if found is not None and not isinstance(found, kind):
            raise TypeError(f"suite state {name!r} holds a {type(found).__name__}, not a {kind.__name__}")
        return found

    def set_runtime(self, name: RuntimeName, value: object | None) -> None:
        """Keep ``value`` under ``name`` (``None`` forgets it)."""
        if value is None:
            self.runtimes.pop(name, None)
        else:
            self.runtimes[name] = value


def state(environment: Any) -> SuiteState:
    """The environment's suite state, created (empty) on first use."""
    found = getattr(environment, ATTRIBUTE, None)
    if found is None:
        found = SuiteState()
        setattr(environment, ATTRIBUTE, found)
    return found


def find_state(environment: Any) -> SuiteState | None:
    """The environment's suite state if there is one; never creates it (``environment`` may be ``None``)."""
    found = getattr(environment, ATTRIBUTE, None)
    return found if isinstance(found, SuiteState) else None
