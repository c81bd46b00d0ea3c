"""``llm_users.chat.users.CallKind.request``: the chat User's request body of each conversation, built once and kept.

The kept payload and JSON text must be what building them for every call gives (``api.payload`` then
``json.dumps``, as ``llm_call`` makes the body when it is not given), for every API, conversation, stream flag,
``max_tokens`` and tools; past the bound the payload is built each time and the JSON left to ``llm_call``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from llm_users.chat import users
from llm_users.chat.users import CallKind
from llm_users.client.apis import API_NAMES, get_api
from llm_users.common.prompts import PromptSet

_TOOLS = [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}]


def _kind(stream: bool, max_tokens: int, tools: list[Any] | None, n: int = 3) -> CallKind:
    convs = [[{"role": "user", "content": f'q{i} é "quoted"\n'}] for i in range(n)]
    if n > 1:
        convs[1] = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    return CallKind(name="x", stream=stream, prompts=PromptSet("p", convs), max_tokens=max_tokens, tools=tools)


@pytest.mark.parametrize("api_name", API_NAMES)
@pytest.mark.parametrize(("stream", "max_tokens", "tools"), [(True, 64, None), (False, 0, _TOOLS), (True, 0, _TOOLS)])
def test_a_kept_body_is_what_building_it_for_every_call_gives(
    api_name: str, stream: bool, max_tokens: int, tools: list[Any] | None
) -> None:
    api = get_api(api_name)
    kind = _kind(stream, max_tokens, tools)
    first: dict[int, str] = {}
    for _ in range(3):  # three rounds over the three conversations
        messages = kind.prompts.next()
        payload, body = kind.request(api, "m", messages)
        fresh = api.payload("m", messages, stream=stream, max_tokens=max_tokens, tools=tools)
        assert payload == fresh and body == json.dumps(fresh)
        assert first.setdefault(id(messages), body) is body  # built once, then the kept one
    assert len(kind.bodies) == 3


def test_past_the_bound_the_payload_is_built_each_time_and_the_json_left_to_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(users, "_BODIES_MAX", 2)
    api = get_api("chat")
    kind = _kind(True, 8, None, n=3)
    got = [kind.request(api, "m", kind.prompts.next()) for _ in range(6)]
    assert [b is None for _, b in got] == [False, False, True, False, False, True]
    assert got[2][0] == api.payload("m", kind.prompts.conversations[2], stream=True, max_tokens=8)
    assert got[2][0] is not got[5][0]  # not kept: a new payload each time
    # a conversation that is another list with the same id (the kept one is held, so never) is not taken for it
    other = [{"role": "user", "content": "other"}]
    kind.bodies[id(other)] = ([{"role": "user", "content": "kept"}], {}, "stale")
    payload, body = kind.request(api, "m", other)
    assert body is None and payload["messages"] is other
