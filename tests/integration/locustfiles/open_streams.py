"""N streams kept open all along: each User streams one chat answer after another (closed loop, no wait) with the
suite's client and metrics layer; the streams' length and pace are the mock's."""

from typing import Any

from locust import FastHttpUser, constant, events, task

from llm_metrics.hooks import install_metrics
from llm_users.client.call import llm_call

PAYLOAD: dict[str, Any] = {
    "model": "mock-llm",
    "messages": [{"role": "user", "content": "In one sentence, what is a load test?"}],
    "stream": True,
    "max_tokens": 20,
}

install_metrics(events, suite="open_streams", default_thresholds="")


class OpenStreamUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def call(self) -> None:
        llm_call(self.client, "/v1/chat/completions", PAYLOAD, stream=True, scenario="chat_stream")
