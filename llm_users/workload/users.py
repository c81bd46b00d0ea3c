"""The workload suite: realistic LLM traffic of chosen prompt and answer lengths, conversations and traces.

``install_workload(events)`` (called by ``locustfiles/workload.py``; ``workload.install``) adds the knobs
(``workload.options``), validates them at start-up and runs one of three workloads; ``WorkloadUser`` (here) does
the calls:

* **closed** (default): every User holds a conversation of ``--turns`` turns: the first question is a synthetic
  prompt of ``--input-tokens`` (in the server's tokens), each next turn sends the history (earlier questions
  and answers) plus a ``--followup-tokens`` question, so the prompt grows and a prefix cache matters; then a new
  conversation. ``--think-time`` between turns. The load is the number of Users (``-u``, or a shape's).
* **open**: arrivals at ``--rate`` per second (whole test, divided across workers) handed to idle Users (k6's
  ``constant-arrival-rate``; none idle: ``dropped_iterations``); each arrival is the next turn of the taking
  User's conversation. The suite state's ``rate_control.set_rate(r)`` (``llm_metrics.state``) changes the rate
  during the run (the capacity search's rate mode); the master forwards it to the workers with their shares
  (``llm_users.pacing.share_protocol``; the state per environment: ``workload.runtime``).
* **trace**: ``--trace`` (JSONL, see ``workload.trace``) replayed at its offsets times ``--trace-time-scale``;
  each record's prompt and answer lengths, its conversation's history (a conversation's next request waits for
  the answer to the one before). ``llm_schedule_lag_ms`` shows how late each send was; the run lasts the trace
  (``-t`` not given, headless).

Prompt length: one process-wide calibration (``--calibrate``, ``workload.calibration``) sends two probes
(``max_tokens: 1``, outside Locust's statistics) and fits the server's ``usage.prompt_tokens`` against the
generator's local count (``synthetic.Calibration``). Every call whose whole prompt had a target length records
how far the server's count was from it: ``input_len_error_pct`` (trend, absolute %), ``input_tokens_requested`` and
``input_tokens_served`` (counters; their ratio is the bias). The summary's ``workload`` section and the console
report say how close it came, with each process's fit (``workload.report``).

Tags: scenario ``workload`` (closed, open) or ``trace``; prompt ``turn1``, ``turn2``, ... (``trace`` for trace
records), so TTFT and prompt tokens per turn show in the tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import gevent
from locust import FastHttpUser, task

from llm_users.client.call import Timeouts, llm_call
from llm_users.client.openai_stream import JsonAnswer, parse_chat_json
from llm_users.workload.calibration import PROBE_TOKENS
from llm_users.workload.conversation import Conversation
from llm_users.workload.install import install_workload
from llm_users.workload.report import INPUT_ERROR, INPUT_REQUESTED, INPUT_SERVED, record_accuracy, workload_registry
from llm_users.workload.runtime import SCENARIO, TRACE_SCENARIO, WorkloadRuntime, runtime
from llm_users.workload.synthetic import Calibration, local_tokens
from llm_users.workload.trace import MIN_QUESTION_TOKENS, TraceRecord

__all__ = [
    "INPUT_ERROR",
    "INPUT_REQUESTED",
    "INPUT_SERVED",
    "PROBE_TOKENS",
    "WorkloadRuntime",
    "WorkloadUser",
    "install_workload",
    "runtime",
    "workload_registry",
]

CHAT_PATH = "/v1/chat/completions"
MAX_TURN_TAG = 50


class _AnswerText:
    """A ``parse_json`` for ``llm_call`` that also keeps the answer's text (non-streamed chat calls; the other
    APIs' answers are replaced by a stand-in of their length in the history)."""

    __slots__ = ("parse", "text")

    def __init__(self, parse: Callable[[bytes], JsonAnswer] = parse_chat_json) -> None:
        self.text: str | None = None
        self.parse = parse

    def __call__(self, body: bytes) -> JsonAnswer:
        answer = self.parse(body)
        try:
            content = json.loads(body)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            content = None
        self.text = content if isinstance(content, str) else None
        return answer


class WorkloadUser(FastHttpUser):
    """Runs conversations (closed, open) or replays trace records (trace); see the module docstring."""

    abstract = True  # the locustfile declares the concrete class

    def wait_time(self) -> float:
        rt = runtime(self.environment)
        if rt.settings.mode != "closed":
            return 0.0
        return rt.settings.think_time.sample(self.rng)

    def on_start(self) -> None:
        rt = runtime(self.environment)
        self.rng = rt.user_rng()
        self.conversation: Conversation | None = None
        self._conversations = 0
        rt.ensure_calibrated()

    @task
    def work(self) -> None:
        rt = runtime(self.environment)
        mode = rt.settings.mode
        if mode == "closed":
            self.turn(None)
            return
        dispatcher = rt.dispatcher
        if dispatcher is None:
            gevent.sleep(0.05)
            return
        ticket = dispatcher.take(timeout=1.0)
        if ticket is None:
            return
        if isinstance(ticket.payload, TraceRecord):
            self.replay(ticket.payload, ticket.scheduled)
        else:
            self.turn(ticket.scheduled)

    # -- conversations (closed, open) ------------------------------------------------------------------

    def turn(self, scheduled: float | None) -> None:
        """The next turn of this User's conversation (a new conversation after ``--turns`` turns)."""
        rt = runtime(self.environment)
        s = rt.settings
        conv = self.conversation
        if conv is None or conv.turns >= s.turns:
            self._conversations += 1
            conv = self.conversation = Conversation(f"{id(self):x}-{self._conversations}")
        cal = rt.calibration or Calibration()
        target: int | None = None  # a later turn: the history's length is the server's, only the question is sized
        if not conv.history:
            target = s.input_tokens.sample_int(self.rng)
            local = cal.local_for(target)
        else:
            local = cal.local_for(s.followup_tokens.sample_int(self.rng), with_overhead=False)
        question = rt.text.text(local, self.rng)
        number = conv.turns + 1
        tag = f"turn{number}" if number < MAX_TURN_TAG else f"turn{MAX_TURN_TAG}+"
        self._call(conv, question, s.output_tokens.sample_int(self.rng), SCENARIO, tag, scheduled, target)

    # -- trace records ---------------------------------------------------------------------------------

    def replay(self, record: TraceRecord, scheduled: float) -> None:
        """One trace record: its prompt length (history included), its answer length, its conversation."""
        if record.conversation_id is None:
            self._replay(record, scheduled)
            return
        with runtime(self.environment).turns.turn(record.conversation_id):
            self._replay(record, scheduled)

    def _replay(self, record: TraceRecord, scheduled: float) -> None:
        rt = runtime(self.environment)
        cal = rt.calibration or Calibration()
        conv = rt.conversations.get(record.conversation_id) if record.conversation_id is not None else None
        if conv is not None and conv.history:
            history = conv.history_tokens
            if history is None:  # no usage came back: estimate the history with the calibration
                history = round(cal.predict(sum(local_tokens(m["content"]) for m in conv.history)))
            new = max(MIN_QUESTION_TOKENS, record.input_tokens - history)
            question = rt.text.text(cal.local_for(new, with_overhead=False), self.rng)
        else:
            question = rt.text.text(cal.local_for(record.input_tokens), self.rng)
        self._call(conv, question, record.output_tokens, TRACE_SCENARIO, TRACE_SCENARIO, scheduled, record.input_tokens)

    # -- one call --------------------------------------------------------------------------------------

    def _call(
        self,
        conv: Conversation | None,
        question: str,
        max_tokens: int,
        scenario: str,
        tag: str,
        scheduled: float | None,
        target: int | None,
    ) -> None:
        rt = runtime(self.environment)
        s = rt.settings
        messages = conv.messages(question) if conv is not None else [{"role": "user", "content": question}]
        sent_with = len(messages) - 1
        api = s.api
        stream = s.stream and api.streams
        payload = api.payload(s.model, messages, stream=stream, max_tokens=max_tokens, tools=s.tools)
        if s.ignore_eos and api.name in ("chat", "completions"):
            payload["ignore_eos"] = True
        answer = _AnswerText(api.parse_json)
        rec = llm_call(
            self.client,
            api.path,
            payload,
            stream=stream,
            scenario=scenario,
            prompt=tag,
            name=f"{api.path} ({scenario}, {tag})",
            headers=api.headers(s.target.headers_for(self.host or "")),
            decoder=api.decoder,
            scheduled=scheduled,
            timeouts=Timeouts(s.target.idle_timeout_s, s.target.call_timeout_s),
            server_stamps=s.target.server_stamps,
            parse_json=answer,
        )
        served = rec.usage_prompt_tokens
        if rec.ok and target and served:
            record_accuracy(rt.metrics(), scenario, target, served)
        if conv is None:
            return
        if not rec.ok:
            conv.failed()
            return
        text = answer.text
        if text is None:  # a streamed answer's text is not kept: a stand-in of its length
            cal = rt.calibration or Calibration()
            n = rec.output_tokens or max_tokens
            text = rt.text.text(cal.local_for(max(1, n), with_overhead=False), self.rng)
        conv.answered(question, text, served, rec.usage_completion_tokens, sent_with)
