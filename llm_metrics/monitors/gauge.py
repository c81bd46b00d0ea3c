"""How much LLM work this process holds right now: a gauge the client moves and the self-monitor reads.

``LOAD[0]`` is the number of LLM calls open in this process (``llm_users.client.call.llm_call`` adds 1 when a
call starts and takes it back when it returns, failed or not); ``LOAD[1]`` is the token events read by the calls
that ended (a call adds its ``content_events`` once, when it ends: a long stream's tokens count in the second it
ended, not as they arrive, so that reading a token costs nothing more). A plain list of two ints: two integer
operations per call on the hot path. Each process has its own (a forked worker starts from its parent's zeros:
nothing is open at fork time). ``selfmon.SelfMonitor`` samples it with the event-loop lag probe.
"""

from __future__ import annotations

__all__ = ["LOAD"]

LOAD: list[int] = [0, 0]
"""[LLM calls open now, token events read by the calls ended so far] in this process."""
