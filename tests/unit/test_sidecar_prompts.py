"""The trade prompts file (seed 002's editable prompts.json): what loads, and the exact error for what does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_users.sidecar.prompts import PromptFileError, load_trade_prompts

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_shipped_prompts_load() -> None:
    prompts = load_trade_prompts(CONF / "prompts.json")
    assert len(prompts) >= 3
    assert all(isinstance(b["prompt"], str) and b["prompt"] for b in prompts.bodies)


@pytest.mark.parametrize(
    ("data", "bodies"),
    [
        (["a", "b"], [{"prompt": "a"}, {"prompt": "b"}]),
        ([{"prompt": "a", "risk": "low", "max_tokens": 5}], [{"prompt": "a", "risk": "low", "max_tokens": 5}]),
        ({"prompts": ["a", {"prompt": "b"}]}, [{"prompt": "a"}, {"prompt": "b"}]),
    ],
    ids=["strings", "objects-passed-through", "wrapped"],
)
def test_accepted_shapes(tmp_path: Path, data: object, bodies: list[dict[str, object]]) -> None:
    f = tmp_path / "prompts.json"
    f.write_text(json.dumps(data))
    assert load_trade_prompts(f).bodies == bodies


def test_prompts_are_sent_in_file_order_round_and_round(tmp_path: Path) -> None:
    f = tmp_path / "prompts.json"
    f.write_text('["a", "b"]')
    prompts = load_trade_prompts(f)
    got = [prompts.next()["prompt"] for _ in range(5)]
    assert got == ["a", "b", "a", "b", "a"]
    prompts.next()["extra"] = 1  # a copy: the caller may change it
    assert prompts.bodies == [{"prompt": "a"}, {"prompt": "b"}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not valid JSON: line 1 column 1: Expecting value"),
        ('["a",\n  "b"\n', "not valid JSON: line 3 column 1: Expecting ',' delimiter"),
        ("[]", "expected at least one prompt, got an empty list"),
        ('{"prompts": []}', "prompts: expected at least one prompt, got an empty list"),
        (
            "42",
            'expected a list of prompts (strings or objects with a "prompt" string), or an object with "prompts", '
            "got int",
        ),
        ('{"prompt": "x"}', "prompt: unknown key (expected: prompts)"),
        (
            "{}",
            'prompts: missing key (expected a list of prompts (strings or objects with a "prompt" string), '
            'or an object with "prompts")',
        ),
        ('{"prompts": "x"}', "prompts: expected a list of prompts, got a string"),
        ('["a", 3]', '[1]: expected a string or an object with a "prompt" string, got int'),
        ('["a", ""]', "[1]: expected a non-empty prompt, got an empty string"),
        ('[{"text": "x"}]', '[0]: expected a "prompt" key (keys found: text)'),
        ('[{"prompt": 5}]', "[0].prompt: expected a string, got int"),
        ('[{"prompt": "  "}]', "[0].prompt: expected a non-empty prompt, got an empty string"),
        ('[{"prompt": "x", "max_tokens": 0}]', "[0].max_tokens: expected a positive integer, got 0"),
        ('{"prompts": ["a", null]}', 'prompts[1]: expected a string or an object with a "prompt" string, got null'),
    ],
    ids=[
        "empty-file",
        "malformed-json",
        "empty-list",
        "empty-wrapped-list",
        "not-a-list",
        "unknown-top-key",
        "object-without-prompts",
        "prompts-not-a-list",
        "entry-not-a-string",
        "entry-empty-string",
        "entry-without-prompt",
        "prompt-not-a-string",
        "prompt-blank",
        "bad-max-tokens",
        "wrapped-entry-null",
    ],
)
def test_bad_file_names_file_and_entry(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "prompts.json"
    f.write_text(text)
    with pytest.raises(PromptFileError) as err:
        load_trade_prompts(f)
    assert str(err.value) == f"{f}: {message}"


def test_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "nope.json"
    with pytest.raises(PromptFileError) as err:
        load_trade_prompts(f)
    assert str(err.value) == f"{f}: prompts file not found"


def test_a_directory_is_not_a_prompts_file(tmp_path: Path) -> None:
    with pytest.raises(PromptFileError) as err:
        load_trade_prompts(tmp_path)
    assert str(err.value) == f"{tmp_path}: expected a JSON file, found a directory"
