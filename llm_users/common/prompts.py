"""Prompt sets: the named variants of ``conf/prompts.yaml`` and user datasets (JSON, JSONL, ShareGPT).

Pure: no Locust. Every error names the file and the entry and says what was expected.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_metrics.engine.config import load_yaml_file, parse_json, read_text

Message = dict[str, str]
_ROLES = {"system", "user", "assistant"}
_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}


class PromptError(ValueError):
    """A prompt file or entry that cannot be used; the message names the file and the entry."""


@dataclass
class PromptSet:
    """One variant: its conversations (each a list of messages), its default ``max_tokens`` and its tool
    definitions (sent as ``tools``, in chat completions' format; ``llm_users.client.apis`` converts them)."""

    name: str
    conversations: list[list[Message]]
    max_tokens: int | None = None
    tools: list[dict[str, Any]] | None = None
    _cycle: Iterator[list[Message]] | None = field(default=None, repr=False)

    def next(self) -> list[Message]:
        if self._cycle is None:
            self._cycle = itertools.cycle(self.conversations)
        return next(self._cycle)


def _messages(value: Any, where: str) -> list[Message]:
    if isinstance(value, str):
        if not value.strip():
            raise PromptError(f"{where}: expected a non-empty prompt, got an empty string")
        return [{"role": "user", "content": value}]
    if isinstance(value, dict):
        if "messages" in value:
            return _messages(value["messages"], f"{where}.messages")
        if "prompt" in value:
            return _messages(value["prompt"], f"{where}.prompt")
        if "conversations" in value:
            return _sharegpt(value["conversations"], f"{where}.conversations")
        raise PromptError(f"{where}: expected a string, or an object with 'prompt', 'messages' or 'conversations'")
    if isinstance(value, list):
        if not value:
            raise PromptError(f"{where}: expected at least one message, got an empty list")
        out: list[Message] = []
        for i, m in enumerate(value):
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                raise PromptError(f"{where}[{i}]: expected an object with a string 'content'")
            role = m.get("role", "user")
            if not isinstance(role, str) or role not in _ROLES:
                raise PromptError(f"{where}[{i}].role: expected one of {sorted(_ROLES)}, got {role!r}")
            out.append({"role": role, "content": m["content"]})
        return out
    raise PromptError(f"{where}: expected a string, a list of messages or an object, got {type(value).__name__}")


def _sharegpt(turns: Any, where: str) -> list[Message]:
    """A ShareGPT conversation: every turn up to and including the last human turn."""
    if not isinstance(turns, list) or not turns:
        raise PromptError(f"{where}: expected a non-empty list of turns")
    msgs: list[Message] = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            raise PromptError(f"{where}[{i}]: expected an object with 'from' and 'value'")
        role = _SHAREGPT_ROLES.get(str(t.get("from", t.get("role", ""))))
        text = t.get("value", t.get("content"))
        if role is None or not isinstance(text, str):
            raise PromptError(f"{where}[{i}]: expected 'from' in {sorted(_SHAREGPT_ROLES)} and a string 'value'")
        msgs.append({"role": role, "content": text})
    while msgs and msgs[-1]["role"] != "user":
        msgs.pop()
    if not msgs:
        raise PromptError(f"{where}: no human turn to send")
    return msgs


def load_prompt_sets(path: str | Path) -> dict[str, PromptSet]:
    """Read ``prompts:`` from a YAML file: ``name: {messages | prompt | prompts: [...], max_tokens}``."""
    p = Path(path)
    data = load_yaml_file(p, PromptError, missing="prompt file")
    if not isinstance(data, dict) or not isinstance(data.get("prompts"), dict) or not data["prompts"]:
        raise PromptError(f"{p}: prompts: expected a mapping of prompt names to prompts")
    unknown = set(data) - {"prompts"}
    if unknown:
        raise PromptError(f"{p}: {sorted(unknown, key=str)[0]}: unknown key (expected: prompts)")
    sets: dict[str, PromptSet] = {}
    for name, entry in data["prompts"].items():
        where = f"{p}: prompts.{name}"
        if not isinstance(entry, dict):
            raise PromptError(f"{where}: expected a mapping with 'messages', 'prompt' or 'prompts'")
        bad = set(entry) - {"messages", "prompt", "prompts", "max_tokens", "tools"}
        if bad:
            first = sorted(bad, key=str)[0]
            raise PromptError(f"{where}.{first}: unknown key (expected messages, prompt, prompts, max_tokens, tools)")
        tools = parse_tools(entry.get("tools"), f"{where}.tools")
        mt = entry.get("max_tokens")
        if mt is not None and (not isinstance(mt, int) or isinstance(mt, bool) or mt < 1):
            raise PromptError(f"{where}.max_tokens: expected a positive integer, got {mt!r}")
        if "prompts" in entry:
            items = entry["prompts"]
            if not isinstance(items, list) or not items:
                raise PromptError(f"{where}.prompts: expected a non-empty list")
            convs = [_messages(x, f"{where}.prompts[{i}]") for i, x in enumerate(items)]
        elif "messages" in entry:
            convs = [_messages(entry["messages"], f"{where}.messages")]
        elif "prompt" in entry:
            convs = [_messages(entry["prompt"], f"{where}.prompt")]
        else:
            raise PromptError(f"{where}: expected one of 'messages', 'prompt' or 'prompts'")
        sets[str(name)] = PromptSet(str(name), convs, mt, tools)
    return sets


def parse_tools(value: Any, where: str) -> list[dict[str, Any]] | None:
    """Tool definitions: a list of ``{type: function, function: {name, description?, parameters?}}``, or a
    shorter ``{name, description?, parameters?}`` per tool (made the long form); None when absent."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise PromptError(f"{where}: expected a non-empty list of tool definitions")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise PromptError(f"{where}[{i}]: expected a mapping with 'function' or 'name'")
        fn = tool.get("function", tool)
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise PromptError(f"{where}[{i}].name: expected the tool's name, a non-empty string")
        params = fn.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, dict):
            raise PromptError(f"{where}[{i}].parameters: expected a JSON schema mapping, got {params!r}")
        desc = fn.get("description", "")
        if not isinstance(desc, str):
            raise PromptError(f"{where}[{i}].description: expected a string, got {desc!r}")
        out.append({"type": "function", "function": {"name": fn["name"], "description": desc, "parameters": params}})
    return out


def load_dataset(path: str | Path, name: str = "dataset", max_tokens: int | None = None) -> PromptSet:
    """A JSON list or JSONL file of prompts: strings, ``{"prompt"}``, ``{"messages"}`` or ShareGPT records."""
    p = Path(path)
    text = read_text(p, PromptError, missing="dataset file")
    records: list[tuple[str, Any]] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        items = parse_json(text, str(p), PromptError)
        records = [(f"{p}: [{i}]", x) for i, x in enumerate(items)]
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{p}: line {lineno}"
            records.append((where, parse_json(line, where, PromptError, position=False)))
    if not records:
        raise PromptError(f"{p}: the dataset has no prompts")
    convs = [_messages(x, where) for where, x in records]
    return PromptSet(name, convs, max_tokens)
