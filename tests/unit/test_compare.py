"""Comparing two runs' JSON summaries: direction-aware, tolerance per metric, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_metrics.outputs.compare import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_REGRESSION,
    Change,
    CompareOptions,
    compare,
    direction_of,
    main,
    parse_tolerances,
)
from tests.unit.report_summaries import make_summary


def find(changes: list[Change], metric: str, stat: str, tags: str = "(all)") -> Change:
    return next(c for c in changes if (c.metric, c.stat, c.tags) == (metric, stat, tags))


def flagged(changes: list[Change]) -> set[tuple[str, str]]:
    return {(c.metric, c.stat) for c in changes if c.tags == "(all)"}


@pytest.mark.parametrize(
    ("metric", "stat", "direction"),
    [
        ("llm_ttft_ms", "p95", "lower"),
        ("llm_queue_ms", "avg", "lower"),
        ("http_req_duration", "p50", "lower"),
        ("gateway_latency", "p99", "lower"),
        ("recovery_time", "avg", "lower"),
        ("http_req_failed", "rate", "lower"),
        ("requests_blocked", "per_s", "lower"),
        ("dropped_iterations", "per_s", "lower"),
        ("llm_tokens_per_sec", "p50", "higher"),
        ("goodput", "rate", "higher"),
        ("http_reqs", "per_s", "higher"),
        ("llm_output_tokens", "per_s", "higher"),
        ("llm_output_tokens", "p50", "none"),
        ("llm_prompt_tokens", "avg", "none"),
        ("llm_token_source", "per_s", "none"),
        ("my_suite_latency", "p95", "lower"),
        ("my_items_per_sec", "avg", "higher"),
    ],
)
def test_direction(metric: str, stat: str, direction: str) -> None:
    assert direction_of(metric, stat) == direction


def test_identical_runs_show_no_regression() -> None:
    doc = make_summary()
    result = compare(doc, json.loads(json.dumps(doc)))
    assert result.regressions == [] and result.improvements == []
    assert result.exit_code == EXIT_OK
    assert {c.verdict for c in result.changes} <= {"ok", "few samples"}
    assert "no regression beyond tolerance: exit 0" in result.format_text()


def test_slower_ttft_is_a_regression_of_ttft_and_total_but_not_tpot() -> None:
    result = compare(make_summary(50.0), make_summary(100.0))
    regressed = flagged(result.regressions)
    assert {("llm_ttft_ms", "p50"), ("llm_ttft_ms", "avg"), ("llm_total_ms", "p50")} <= regressed
    assert ("llm_tokens_per_sec", "p50") in regressed  # higher is better, and it went down
    assert not {m for m, _ in regressed} & {"llm_tpot_ms", "llm_chunk_gap_ms", "llm_output_tokens"}
    ttft = find(result.changes, "llm_ttft_ms", "p50")
    assert ttft.base == pytest.approx(52, rel=0.006) and ttft.new == pytest.approx(104, rel=0.006)
    assert ttft.relative == pytest.approx(1.0, rel=0.02) and ttft.direction == "lower"
    # the tag set of the series is compared too, not only the merge
    tagged = find(result.changes, "llm_ttft_ms", "p50", "{name:chat,prompt:short,scenario:chat_stream,status:200}")
    assert tagged.verdict == "regression"
    assert result.exit_code == EXIT_REGRESSION
    text = result.format_text()
    assert "REGRESSIONS (" in text and "llm_ttft_ms" in text and "lower is better, tolerance 10%" in text
    assert text.rstrip().endswith("exit 1")


def test_faster_is_better_not_a_regression() -> None:
    result = compare(make_summary(100.0), make_summary(50.0))
    assert result.regressions == []
    assert ("llm_ttft_ms", "p50") in flagged(result.improvements)
    assert ("llm_tokens_per_sec", "p50") in flagged(result.improvements)
    assert result.exit_code == EXIT_OK


def test_tail_percentiles_need_enough_samples_above_them() -> None:
    # 200 samples: 10 above p95 (judged), 2 above p99 (not: p99 of 200 samples is nearly the maximum)
    result = compare(make_summary(50.0), make_summary(100.0))
    assert find(result.changes, "llm_ttft_ms", "p95").verdict == "regression"
    assert find(result.changes, "llm_ttft_ms", "p99").verdict == "few samples"
    loose = compare(make_summary(50.0), make_summary(100.0), CompareOptions(min_tail_samples=1))
    assert find(loose.changes, "llm_ttft_ms", "p99").verdict == "regression"


def test_few_samples_are_never_flagged() -> None:
    result = compare(make_summary(50.0, n=10), make_summary(100.0, n=10))
    assert result.regressions == []
    assert find(result.changes, "llm_ttft_ms", "p50").verdict == "few samples"
    assert compare(make_summary(50.0, n=10), make_summary(100.0, n=10), CompareOptions(min_samples=5)).regressions


def test_error_rate_and_goodput() -> None:
    base, worse = make_summary(failures=0), make_summary(failures=20)
    result = compare(base, worse)
    assert find(result.changes, "http_req_failed", "rate").verdict == "regression"  # 0 -> 20 of 220
    assert find(result.changes, "goodput", "rate").verdict == "ok"  # 200/200 -> 200/220: -9 %, within 10 %
    assert find(compare(base, worse, CompareOptions(tolerance=0.05)).changes, "goodput", "rate").verdict == (
        "regression"
    )
    # one failure in 201 is a rate change below the 0.005 floor
    assert find(compare(base, make_summary(failures=1)).changes, "http_req_failed", "rate").verdict == "ok"


def test_a_trouble_counter_that_appears_is_a_regression() -> None:
    result = compare(make_summary(blocked=0), make_summary(blocked=30))
    blocked = find(result.changes, "requests_blocked", "per_s")
    assert (blocked.base, blocked.verdict) == (0.0, "regression")
    assert blocked.new == pytest.approx(1.0)  # 30 in 30 s


def test_sub_millisecond_jitter_is_not_a_regression() -> None:
    base, new = make_summary(0.2, itl_ms=0.1), make_summary(0.4, itl_ms=0.1)
    ttft = find(compare(base, new).changes, "llm_ttft_ms", "p50")
    assert ttft.relative == pytest.approx(1.0, rel=0.02) and ttft.verdict == "ok"
    assert find(compare(base, new, CompareOptions(min_change_ms=0.1)).changes, "llm_ttft_ms", "p50").verdict == (
        "regression"
    )


def test_neutral_metrics_are_shown_as_changed_never_flagged() -> None:
    base, new = make_summary(), make_summary()
    for doc, tokens in ((base, 10), (new, 40)):
        doc["metrics"] = [m for m in doc["metrics"] if m["name"] != "llm_prompt_tokens"]
        doc["metrics"].append({"name": "llm_prompt_tokens", "tags": {}, "hist": _hist([tokens] * 50)})
    change = find(compare(base, new).changes, "llm_prompt_tokens", "p50")
    assert (change.verdict, change.direction) == ("changed", "none")


def _hist(values: list[float]) -> list[Any]:
    from llm_metrics.engine.histogram import Histogram

    return Histogram.of(values).to_wire()


def test_tolerance_overrides_per_metric_and_statistic() -> None:
    base, new = make_summary(50.0), make_summary(100.0)
    opts = CompareOptions(overrides={"llm_ttft_ms": 1.5, "llm_total_ms.p50": 0.6})
    result = compare(base, new, opts)
    assert find(result.changes, "llm_ttft_ms", "p50").verdict == "ok"
    assert find(result.changes, "llm_ttft_ms", "p50").tolerance == 1.5
    assert find(result.changes, "llm_total_ms", "p50").verdict == "ok"  # 98 -> 150 ms: +53 % < 60 %
    assert find(result.changes, "llm_total_ms", "avg").verdict == "regression"  # default 10 %
    patterns = CompareOptions(overrides={"llm_*": 2.0, "llm_t*.avg": 0.01, "llm_ttft_ms.p50": 0.2})
    assert patterns.tolerance_for("llm_ttft_ms", "p50") == 0.2
    assert patterns.tolerance_for("llm_total_ms", "avg") == 0.01
    assert patterns.tolerance_for("llm_total_ms", "p95") == 2.0
    assert patterns.tolerance_for("http_req_duration", "p95") == 0.1


def test_metric_patterns_select_what_is_compared() -> None:
    result = compare(make_summary(50.0), make_summary(100.0), CompareOptions(metrics=("llm_tpot_*", "goodput")))
    assert {c.metric for c in result.changes} == {"llm_tpot_ms", "goodput"}
    assert result.exit_code == EXIT_OK


def test_series_in_one_run_only_are_listed() -> None:
    result = compare(make_summary(failures=0), make_summary(failures=5))
    only_new = [c for c in result.changes if c.verdict == "only in new"]
    assert any(c.metric == "llm_total_ms" and "status:500" in c.tags for c in only_new)
    assert result.to_json()["changes"][0].keys() >= {"metric", "tags", "stat", "base", "new", "verdict"}


@pytest.mark.parametrize(
    ("args", "default", "overrides"),
    [
        ([], 0.1, {}),
        (["0.2"], 0.2, {}),
        (["llm_ttft_ms=0.05", "0.3", "llm_ttft_ms.p99=0.5"], 0.3, {"llm_ttft_ms": 0.05, "llm_ttft_ms.p99": 0.5}),
    ],
)
def test_parse_tolerances(args: list[str], default: float, overrides: dict[str, float]) -> None:
    assert parse_tolerances(args) == (default, overrides)


@pytest.mark.parametrize("bad", ["ten", "-0.1", "llm_ttft_ms=x", "=0.1", "llm_ttft_ms.p42=0.1", "nan"])
def test_parse_tolerances_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="--tolerance"):
        parse_tolerances([bad])


def write(tmp_path: Path, name: str, doc: Any) -> str:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(p)


def test_command_line_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write(tmp_path, "base.json", make_summary(50.0))
    slow = write(tmp_path, "slow.json", make_summary(100.0))
    assert main([base, base]) == EXIT_OK
    assert "no regression beyond tolerance: exit 0" in capsys.readouterr().out
    assert main([base, slow, "--only-flagged"]) == EXIT_REGRESSION
    out = capsys.readouterr().out
    assert "✗  llm_ttft_ms" in out and "ALL COMPARED VALUES" not in out
    assert main([base, slow, "--tolerance", "llm_*=2", "--metric", "llm_ttft_ms"]) == EXIT_OK
    assert main([base, slow, "--json", str(tmp_path / "cmp.json")]) == EXIT_REGRESSION
    saved = json.loads((tmp_path / "cmp.json").read_text())
    assert saved["regressions"] > 0 and saved["base"] == base
    capsys.readouterr()
    assert main([base, slow, "--json", "-"]) == EXIT_REGRESSION
    assert json.loads(capsys.readouterr().out)["new"] == slow


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("[1, 2", "not JSON"),
        ({"stats": {}}, "not a JSON summary of llm_metrics"),
    ],
    ids=["missing", "not-json", "not-a-summary"],
)
def test_bad_input_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: Any, message: str
) -> None:
    good = write(tmp_path, "good.json", make_summary())
    bad = str(tmp_path / "bad.json") if content is None else write(tmp_path, "bad.json", content)
    assert main([good, bad]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"compare: {bad}: " in err and message in err


def test_no_matching_metric_and_bad_options_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.json", make_summary())
    assert main([good, good, "--metric", "llm_ttft"]) == EXIT_BAD_INPUT
    assert "no metric of either summary matches --metric llm_ttft" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([good, good, "--tolerance", "fast"])
    assert exc.value.code == EXIT_BAD_INPUT
