"""The sidecar suite's settings file, knobs and JSON answers: what is accepted and the exact error otherwise."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest

from llm_users.client.openai_stream import JsonAnswer, StreamError
from llm_users.common.options import DEFAULT_TARGET, OptionError
from llm_users.sidecar.answers import parse_generate_json, parse_trade_json
from llm_users.sidecar.config import DEFAULT_GENERATE_PROMPT, SidecarConfigError, load_sidecar_config
from llm_users.sidecar.options import sidecar_settings
from llm_users.sidecar.prompts import PromptFileError

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_shipped_config() -> None:
    cfg = load_sidecar_config(CONF / "sidecar.yaml")
    assert cfg.generate.body()["prompt"]
    keys = {s.key for s in cfg.server_metrics.series}
    assert {"queue_length", "tokens_served", "requests"} <= keys
    assert cfg.server_metrics.interval_s > 0


def test_empty_config_is_the_defaults(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("")
    cfg = load_sidecar_config(f)
    assert cfg.generate.body() == {"prompt": DEFAULT_GENERATE_PROMPT}
    assert cfg.server_metrics.series == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1]", "expected a mapping with generate, server_metrics"),
        ("genrate: {}", "genrate: unknown key (expected generate, server_metrics)"),
        ("generate: hello", "generate: expected a mapping with prompt and max_tokens"),
        ("generate: {prompt: ''}", "generate.prompt: expected a non-empty string, got ''"),
        ("generate: {max_tokens: 0}", "generate.max_tokens: expected a positive integer, got 0"),
        ("generate: {tokens: 5}", "generate.tokens: unknown key (expected prompt, max_tokens)"),
        ("server_metrics: {interval_s: x}", "server_metrics.interval_s: expected a number of seconds, got 'x'"),
        ("a: [", "line 1: not valid YAML"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(text)
    with pytest.raises(SidecarConfigError) as err:
        load_sidecar_config(f)
    assert str(err.value).startswith(f"{f}: {message}")


def test_missing_config(tmp_path: Path) -> None:
    with pytest.raises(SidecarConfigError, match="sidecar settings file not found"):
        load_sidecar_config(tmp_path / "none.yaml")


def opts(**kw: Any) -> Namespace:
    base: dict[str, Any] = {
        "osiris_url": "",
        "host": None,
        "think_time": 1.0,
        "sidecar_conf": str(CONF / "sidecar.yaml"),
        "trade_prompts": str(CONF / "prompts.json"),
        "api_key": "",
        "loadtest_token": "",
        "idle_timeout": 60.0,
        "call_timeout": 600.0,
        "server_stamps": "false",
    }
    return Namespace(**(base | kw))


@pytest.mark.parametrize(
    ("kw", "host", "base"),
    [
        ({}, None, DEFAULT_TARGET),
        ({"host": "http://h:1"}, None, "http://h:1"),
        ({}, "http://env-host:2/", "http://env-host:2"),
        ({"osiris_url": "http://osiris:8000/", "host": "http://h:1"}, "http://h:1", "http://osiris:8000"),
    ],
    ids=["mock-default", "host-flag", "environment-host", "osiris-url-wins"],
)
def test_target_is_osiris_url_then_host_then_the_mock(kw: dict[str, Any], host: str | None, base: str) -> None:
    assert sidecar_settings(opts(**kw), host).base == base


@pytest.mark.parametrize(
    ("kw", "error", "message"),
    [
        ({"think_time": -1}, OptionError, "--think-time/THINK_TIME: expected a number of seconds >= 0, got -1"),
        ({"think_time": "soon"}, OptionError, "--think-time/THINK_TIME: expected a number of seconds, got 'soon'"),
        ({"osiris_url": "osiris:8000"}, OptionError, "--osiris-url/OSIRIS_URL: expected an http:// or https:// URL"),
        ({"trade_prompts": "/nonexistent/p.json"}, PromptFileError, "/nonexistent/p.json: prompts file not found"),
        ({"sidecar_conf": "/nonexistent/s.yaml"}, SidecarConfigError, "/nonexistent/s.yaml: sidecar settings file"),
    ],
)
def test_bad_knobs(kw: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as err:
        sidecar_settings(opts(**kw))
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        (b'{"text": "a b c", "tokens": 3, "model": "m"}', JsonAnswer(5, None, 3, None)),
        (b'{"text": "", "usage": {"completion_tokens": 2, "prompt_tokens": 7}}', JsonAnswer(0, 7, 2, None)),
        (b'{"text": "abc"}', JsonAnswer(3, None, None, None)),
    ],
)
def test_generate_answers(body: bytes, answer: JsonAnswer) -> None:
    assert parse_generate_json(body) == answer


def test_trade_answers() -> None:
    ans = parse_trade_json(b'{"adjustments": [{"symbol": "AAPL", "action": "buy", "quantity": 5}], "rationale": "ok"}')
    assert ans.completion_tokens is None and ans.content_chars > 2
    assert parse_trade_json(b'{"adjustments": [], "rationale": "", "tokens": 4}').completion_tokens == 4


@pytest.mark.parametrize(
    ("parse", "body", "reason"),
    [
        (parse_generate_json, b"{not json", "invalid JSON body"),
        (parse_generate_json, b"[1]", "unexpected JSON body"),
        (parse_generate_json, b'{"error": {"type": "overloaded"}}', "error object in body"),
        (parse_generate_json, b'{"tokens": 3}', "no text in body"),
        (parse_trade_json, b'{"rationale": "x"}', "no adjustments in body"),
        (parse_trade_json, b'{"adjustments": ["AAPL"]}', "unexpected adjustments"),
    ],
)
def test_bad_answers_have_a_reason(parse: Any, body: bytes, reason: str) -> None:
    with pytest.raises(StreamError) as err:
        parse(body)
    assert err.value.reason == reason
