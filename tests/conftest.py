"""Test-session set-up shared by every test.

Locust monkey-patches the whole process with gevent when it is imported, and the product modules imported by
the unit tests import it. pytest-xdist's workers talk to the controller over execnet, which uses real threads:
patched, they block forever (``LoopExit``). The test process therefore imports Locust once without the patch
(``LOCUST_SKIP_MONKEY_PATCH``, read by Locust at import only) and removes the variable again, so that the Locust
processes the tests start (``python -m locust``) are patched as users' are.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator

import pytest

os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
try:
    import locust  # noqa: F401
finally:
    del os.environ["LOCUST_SKIP_MONKEY_PATCH"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests (real Locust runs) first: run in parallel (pytest-xdist hands tests out in this order), the
    quick unit tests then fill the gaps instead of the longest runs starting last and finishing alone."""

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.partition("::")[0]
        return LONGEST.index(module) if module in LONGEST else len(LONGEST)

    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, rank(item)))


# modules whose tests take 15-25 s each (pytest --durations): handed out first of all, in this order. The first
# four (and test_apis, test_distributed_workers) hold the longest timing tests (10-33 s: capacity searches, a late
# joiner, the spike, master + 2 workers), which phase 2 runs three at a time: started first, they do not end it alone
LONGEST = tuple(
    f"tests/{m}.py"
    for m in (
        "integration/test_capacity_knee",
        "integration/test_capacity_distributed",
        "integration/test_gateway_spike",
        "integration/test_open_model_start",
        "integration/test_soak",
        "integration/test_distributed_workers",
        "integration/test_apis",
        "e2e/test_live_charts_browser",
        "integration/test_secrets_on_workers",
        "e2e/test_prometheus_server",
        "integration/test_exporter_scrape",
        "integration/test_distributed_faults",
    )
)


# ``TEST_CPU_LOG=path``: append one line per test, "<cpu s>\t<node id>", the CPU time the test cost: its own
# process's plus that of every process it started and waited for (the Locust and mock subprocesses), read from
# getrusage around the test. Each pytest-xdist worker runs one test at a time, so the difference is that test's.
# Wall time says little on a shared machine; CPU time is what a 2-core CI runner runs out of.
def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    log = os.environ.get("TEST_CPU_LOG")
    before = _cpu_s() if log else 0.0
    try:
        return (yield)
    finally:
        if log:
            with open(log, "a", encoding="utf-8") as out:
                out.write(f"{_cpu_s() - before:.2f}\t{item.nodeid}\n")
