"""Instructions per arrival of the chat suite's dispatcher, dropped or handed to a waiting User, under callgrind.

``bench/chat_instructions.py`` counts a whole call when every arrival finds an idle User; a saturated run also
drops arrivals (no User idle: about 0.6 per call at 3,000 arrivals/s asked in ``bench/k6_compare.py``), each
counted as ``dropped_iterations`` and in the run's ledger. This runs the chat suite's own ``ChatRuntime`` (its
settings from the default knobs, its dispatcher and callbacks, an ``LLMMetrics`` core) on one bounded schedule:

  drop  ``--arrivals`` arrivals and no User: every one is dropped. They come in bursts of ``--burst`` (default
        1) at the same time, a burst every 10 ms: the dispatcher sleeps until each burst and runs its arrivals
        back to back (at saturation the dispatcher wakes late and finds one or more arrivals due)
  hand  ``--arrivals`` arrivals at ``--rate``/s (default 200) to 8 greenlets taking tickets as ChatUser does
        (``take(timeout=1.0)``): every one is handed over (the dispatcher sleeps until each is due)
  task  the same, the 8 greenlets running ``ChatUser.arrival`` (the task: take, prompt, payload, headers,
        name, bounds) with ``llm_call`` replaced by a function that does nothing: task - hand = the task's own work

Per arrival = (Ir of ``--arrivals N`` - Ir of ``--arrivals M``) / (N - M), e.g.::

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out python bench/dispatch_instructions.py drop 2400
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out python bench/dispatch_instructions.py drop 400

Run it from a checkout to measure that checkout (its own tree first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent
from locust import events
from locust.argument_parser import get_parser
from locust.env import Environment

from llm_metrics.core import LLMMetrics
from llm_metrics.engine.calls import GoodputSLO
from llm_metrics.state import state
from llm_users.chat import users as chat_users
from llm_users.chat.options import add_chat_arguments, chat_settings
from llm_users.chat.users import ChatRuntime, ChatUser
from llm_users.pacing import dispatch
from llm_users.pacing.arrival import ArrivalSpec
from llm_users.pacing.dispatch import Scenario


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("drop", "hand", "task"))
    ap.add_argument("arrivals", type=int)
    ap.add_argument("--rate", type=float, default=200.0, help="arrivals/s in the hand mode (default 200)")
    ap.add_argument("--burst", type=int, default=1, help="arrivals due at once in the drop mode (default 1)")
    args = ap.parse_args()
    parser = get_parser()
    add_chat_arguments(parser)
    opts = parser.parse_args(["--stream-rps", "1", "--nonstream-rps", "0", "--prompts", "short"])
    env = Environment(events=events, parsed_options=opts)
    env.create_local_runner()
    state(env).metrics = LLMMetrics(env, "bench", [], GoodputSLO(ttft_ms=1000, tpot_ms=100), "", "")
    rt = ChatRuntime(env, chat_settings(opts))
    rate = args.rate
    spec = ArrivalSpec(rate, duration_s=args.arrivals / rate)
    if args.mode == "drop":  # the schedule in bursts (the dispatcher reads the module's arrival_times)

        def bursts(*_a: object) -> Iterator[float]:
            for i in range(args.arrivals):
                yield (i // args.burst) * 0.01

        dispatch.arrival_times = bursts  # type: ignore[assignment]
    rt.scenarios = lambda: [Scenario("chat_stream", spec, rt.settings.variants)]  # type: ignore[method-assign]
    taken = [0]
    state(env).set_runtime("chat", rt)

    class User(ChatUser):
        host = "http://127.0.0.1:9"  # never connected to: llm_call is replaced

    def no_call(*_a: object, **_kw: object) -> None:
        taken[0] += 1

    chat_users.llm_call = no_call  # type: ignore[assignment]

    def user() -> None:
        chat_user = User(env)
        while rt.dispatcher is not None and rt.dispatcher.running:
            if args.mode == "task":
                chat_user.arrival()
            elif rt.dispatcher.take(timeout=1.0) is not None:
                taken[0] += 1

    rt.start()
    users = [gevent.spawn(user) for _ in range(0 if args.mode == "drop" else 8)]
    d = rt.dispatcher
    assert d is not None
    gevent.sleep(0.2)
    while d.running:
        gevent.sleep(0.05)
    rt.stop()
    gevent.joinall(users, timeout=2.0)
    print(f"{args.mode}: issued {d.issued} dropped {d.dropped} taken {taken[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
