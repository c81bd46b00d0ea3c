"""The chat suite with a listener that burns the CPU in 40 ms slices: a load generator forced into saturation."""

import time
from typing import Any

import gevent
from locust import events

from llm_metrics.hooks import install_metrics
from llm_users.chat.users import ChatUser, install_chat


class ChatCompletionsUser(ChatUser):
    pass


install_chat(events)
install_metrics(events, suite="chat", default_thresholds="conf/thresholds/chat.yaml")


def _burn() -> None:
    while True:
        end = time.perf_counter() + 0.040
        while time.perf_counter() < end:  # CPU-bound, the hub blocked: nothing else runs meanwhile
            pass
        gevent.sleep(0.002)


@events.test_start.add_listener
def _start_burning(environment: Any, **_kw: Any) -> None:
    environment.burner = gevent.spawn(_burn)


@events.test_stop.add_listener
def _stop_burning(environment: Any, **_kw: Any) -> None:
    burner = getattr(environment, "burner", None)
    if burner is not None:
        burner.kill(block=False)
