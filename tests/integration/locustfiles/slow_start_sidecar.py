"""The sidecar suite after a slow start-up: an ``init`` listener that blocks for 3 s (as loading a large dataset
or config would), before the suite's own listeners run. Locust then arms ``-t`` on a clock that is 3 s stale."""

import time
from typing import Any

from locust import events


@events.init.add_listener
def _slow_start(**_kw: Any) -> None:
    end = time.monotonic() + 3.0
    while time.monotonic() < end:  # blocking work that never yields to gevent's loop (time.sleep would run it)
        pass


from llm_metrics.hooks import install_metrics  # noqa: E402
from llm_users.sidecar.users import SidecarLoadBase, install_sidecar  # noqa: E402


class SidecarLoadUser(SidecarLoadBase):
    pass


install_sidecar(events)
install_metrics(events, suite="sidecar", default_thresholds="conf/thresholds/sidecar.yaml")
