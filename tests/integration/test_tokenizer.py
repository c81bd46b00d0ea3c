"""``--tokenizer``: a tokenizer.json the test builds itself (no download) counts tokens where the server sends no
usage (source ``tokenizer``), and sizes the workload suite's prompts instead of probing the server.

The tokenizer is character-level (each non-space character one token) so that its counts differ from both the
mock's rule (words and punctuation) and the stream's token events: a count that came from anywhere else shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mock_llm.testing import MockProcess
from tests.support import missing_tool, run_locust

pytestmark = pytest.mark.slow

SHORT_PROMPT = "In one sentence, what is a load test?"  # conf/prompts.yaml, variant short


def char_tokenizer(folder: Path) -> Any:
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers
    except ImportError:
        missing_tool("the tokenizers package is missing: pip install -e '.[dev]'")
    tok = Tokenizer(models.BPE(vocab={"[UNK]": 0}, merges=[], unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return tok


# the mock leaves usage out (usage_chunk false) of these two APIs; its Responses and Anthropic streams always
# carry usage, which wins over the tokenizer (their text capture: tests/unit/test_api_decoders.py)
@pytest.mark.parametrize("api", ["chat", "completions"])
def test_counts_tokens_where_the_server_sends_no_usage(tmp_path: Path, api: str) -> None:
    tok = char_tokenizer(tmp_path / "tok")
    expected_prompt = len(tok.encode(SHORT_PROMPT, add_special_tokens=False).ids)
    assert expected_prompt == sum(1 for c in SHORT_PROMPT if not c.isspace())
    out = tmp_path / "r.jsonl"
    with MockProcess({"ttft_ms": 20, "itl_ms": 2, "usage_chunk": False}) as mock:
        run = run_locust(
            "chat.py",
            ["-u", "5", "-r", "50", "-t", "3s", "--only-summary"],
            {
                "BASE": mock.base_url,
                "STREAM_RPS": "10",
                "NONSTREAM_RPS": "0",
                "MAX_TOKENS": "10",
                "PROMPTS": "short",
                "SMOKE": "false",
                "TOKENIZER": str(tmp_path / "tok"),  # the folder: its tokenizer.json
                "REQUESTS_JSONL": str(out),
                "API": api,
            },
            tmp_path,
        )
    assert run.returncode == 0, run.output[-3000:]
    assert run.summary is not None
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    ok = [x for x in lines if x["ok"]]
    assert len(ok) >= 10
    assert run.summary["token_source"] == {"tokenizer": len(ok)}
    for x in ok:
        if api == "chat":  # other APIs frame the prompt their own way (e.g. a completions prompt string)
            assert (x["prompt_tokens"], x["prompt_tokens_source"]) == (expected_prompt, "tokenizer"), x
        assert x["output_tokens_source"] == "tokenizer", x
        # 10 streamed words of at least one character each; more tokens than events, since words are longer
        assert x["output_tokens"] >= 10, x
    assert any(x["output_tokens"] > 10 for x in ok)
    tokens = run.hist("llm_output_tokens")
    assert tokens.count == len(ok) and tokens.sum == pytest.approx(sum(x["output_tokens"] for x in ok), rel=0.01)
    if api == "chat":
        assert run.hist("llm_prompt_tokens").percentile(50) == pytest.approx(expected_prompt, rel=0.005)


def test_the_workload_suite_sizes_prompts_with_it(tmp_path: Path) -> None:
    char_tokenizer(tmp_path / "tok")
    with MockProcess({"ttft_ms": 5, "itl_ms": 1}) as mock:
        run = run_locust(
            "workload.py",
            ["-u", "3", "-r", "50", "-t", "3s", "--only-summary", "--input-tokens", "400", "--output-tokens", "2"],
            {"BASE": mock.base_url, "THRESHOLDS": "", "TOKENIZER": str(tmp_path / "tok" / "tokenizer.json")},
            tmp_path,
            timeout=40,
        )
        requests = mock.stats()["requests"]
    assert run.returncode == 0, run.output[-3000:]
    assert run.summary is not None
    assert "sized with the tokenizer" in json.dumps(run.summary["workload"]["calibration"])
    assert sum(n for k, n in requests.items() if k.startswith("POST")) == run.counter("http_reqs")  # no probes
    # 400 characters of text hold far fewer of the mock's tokens (words and punctuation): the prompts were
    # sized by the tokenizer, not by the server
    served = run.hist("llm_prompt_tokens")
    assert served.count >= 5 and (served.percentile(50) or 0) < 200, served.stats()


def test_a_missing_tokenizer_stops_the_run_naming_the_flag(tmp_path: Path) -> None:
    run = run_locust(
        "chat.py",
        ["-u", "1", "-t", "1s"],
        {"BASE": "http://127.0.0.1:9", "SMOKE": "false", "TOKENIZER": str(tmp_path / "nothing")},
        tmp_path,
    )
    assert run.returncode == 2
    assert "--tokenizer/TOKENIZER:" in run.output and "no such file" in run.output
