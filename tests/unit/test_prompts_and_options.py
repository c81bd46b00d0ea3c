"""Prompt sets, datasets and the chat knobs: what loads, and the exact error for what does not."""

from __future__ import annotations

import json
from argparse import Namespace
from pathlib import Path

import pytest

from llm_users.chat.options import OptionError, chat_settings
from llm_users.common.prompts import PromptError, load_dataset, load_prompt_sets

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_shipped_prompt_variants() -> None:
    sets = load_prompt_sets(CONF / "prompts.yaml")
    assert set(sets) >= {"short", "cot"}
    assert sets["cot"].next()[0]["role"] == "system"
    assert sets["short"].max_tokens == 64


def test_dataset_formats(tmp_path: Path) -> None:
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('"plain prompt"\n{"prompt": "obj prompt"}\n\n{"messages": [{"role": "user", "content": "m"}]}\n')
    ds = load_dataset(jsonl)
    assert [c[-1]["content"] for c in ds.conversations] == ["plain prompt", "obj prompt", "m"]
    share = tmp_path / "sharegpt.json"
    share.write_text(
        json.dumps(
            [
                {
                    "conversations": [
                        {"from": "human", "value": "q1"},
                        {"from": "gpt", "value": "a1"},
                        {"from": "human", "value": "q2"},
                        {"from": "gpt", "value": "a2"},
                    ]
                }
            ]
        )
    )
    conv = load_dataset(share).next()
    assert [m["role"] for m in conv] == ["user", "assistant", "user"]
    assert conv[-1]["content"] == "q2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the dataset has no prompts"),
        ("{bad\n", "line 1: not valid JSON"),
        ('[{"foo": 1}]', "[0]: expected a string, or an object with 'prompt', 'messages' or 'conversations'"),
        ('[""]', "[0]: expected a non-empty prompt, got an empty string"),
        ('[{"conversations": [{"from": "gpt", "value": "a"}]}]', "[0].conversations: no human turn to send"),
        (
            '[{"messages": [{"role": "robot", "content": "x"}]}]',
            "[0].messages[0].role: expected one of ['assistant', 'system', 'user'], got 'robot'",
        ),
    ],
)
def test_bad_datasets_name_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "d.json"
    f.write_text(text)
    with pytest.raises(PromptError) as err:
        load_dataset(f)
    assert str(err.value).startswith(f"{f}: ")
    assert message in str(err.value)


def test_missing_dataset(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="dataset file not found"):
        load_dataset(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("prompts: {}", "prompts: expected a mapping of prompt names to prompts"),
        ("prompts: {a: {prompt: hi, max_tokens: 0}}", "prompts.a.max_tokens: expected a positive integer, got 0"),
        ("prompts: {a: {text: hi}}", "prompts.a.text: unknown key"),
        ("prompts: {a: {prompt: hi}}\nextra: 1", "extra: unknown key"),
    ],
)
def test_bad_prompt_files(tmp_path: Path, yaml_text: str, message: str) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(yaml_text)
    with pytest.raises(PromptError) as err:
        load_prompt_sets(f)
    assert message in str(err.value)
    assert str(f) in str(err.value)


def opts(**kw: object) -> Namespace:
    base: dict[str, object] = dict(
        base="",
        host=None,
        model="m",
        nonstream_rps=2.0,
        stream_rps=1.0,
        duration_min=1.0,
        arrival="constant",
        prompts="short,cot",
        prompts_file=str(CONF / "prompts.yaml"),
        dataset="",
        max_tokens=0,
        smoke="true",
        api_key="sk-secret",
        loadtest_token="",
        idle_timeout=60.0,
        call_timeout=600.0,
        server_stamps="false",
    )
    base.update(kw)
    return Namespace(**base)


def test_defaults_and_headers() -> None:
    s = chat_settings(opts())
    assert s.base == "http://127.0.0.1:8000"
    assert s.variants == ("short", "cot")
    assert s.duration_s == 60.0
    assert s.target.auth_headers() == {"Authorization": "Bearer sk-secret"}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"nonstream_rps": "abc"},
            "--nonstream-rps/NONSTREAM_RPS: expected a number of requests per second, got 'abc'",
        ),
        ({"stream_rps": -1}, "--stream-rps/STREAM_RPS: expected a number >= 0, got -1"),
        ({"duration_min": 0}, "--duration-min/DURATION_MIN: expected a number > 0, got 0"),
        ({"arrival": "bursty"}, "--arrival/ARRIVAL: expected one of constant, poisson, got 'bursty'"),
        ({"prompts": "short,long"}, "--prompts/PROMPTS: unknown prompt variant 'long'"),
        ({"base": "localhost:80"}, "--base/BASE: expected an http:// or https:// URL, got 'localhost:80'"),
        ({"server_stamps": "maybe"}, "--server-stamps/SERVER_STAMPS: expected true or false, got 'maybe'"),
    ],
)
def test_bad_knobs_name_the_flag(kw: dict, message: str) -> None:
    with pytest.raises(OptionError) as err:
        chat_settings(opts(**kw))
    assert message in str(err.value)


def test_dataset_replaces_default_variants(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('"hello"\n')
    assert chat_settings(opts(dataset=str(f))).variants == ("dataset",)
    assert chat_settings(opts(dataset=str(f), prompts="short,dataset")).variants == ("short", "dataset")
