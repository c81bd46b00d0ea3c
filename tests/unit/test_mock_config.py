"""The mock's settings: validation messages, YAML files, flags, run-time changes, the documented defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from mock_llm import __main__ as mock_main
from mock_llm import cli
from mock_llm.config import Config, ConfigError, apply, load, load_yaml, to_dict

BAD = [
    ({"faults": [{"kind": "error", "rate": 0.1}, {"kind": "error", "rate": 1.5}]},
     "faults[1].rate: expected a number in [0, 1], got 1.5"),
    ({"itl_ms": -1}, "itl_ms: expected a number >= 0, got -1"),
    ({"ttft_ms": "fast"}, "ttft_ms: expected a number >= 0, got 'fast'"),
    ({"port": 70000}, "port: expected an integer in [0, 65535], got 70000"),
    ({"port": 8000.5}, "port: expected an integer in [0, 65535], got 8000.5"),
    ({"max_concurrency": True}, "max_concurrency: expected an integer >= 0, got true"),
    ({"timestamps": "yes"}, "timestamps: expected true or false, got 'yes'"),
    ({"itl": 5}, "itl: unknown key (known keys: host, port, models,"),
    ({"gateway": {"rate": 1}}, "gateway.rate: unknown key (known keys: require_api_key,"),
    ({"gateway": {"api_keys": {"k1": {"rate_limit_rps": -2}}}},
     "gateway.api_keys.k1.rate_limit_rps: expected a number >= 0, got -2"),
    ({"gateway": {"api_keys": {"k1": {"budget": 5}}}}, "gateway.api_keys.k1.budget: unknown key"),
    ({"gateway": {"api_keys": ["k1"]}}, "gateway.api_keys: expected a mapping, got a list"),
    ({"gateway": {"users": {"bob": 12}}}, "gateway.users.bob: expected a string, got 12"),
    ({"gateway": {"policy_jitter_ms": -0.5}}, "gateway.policy_jitter_ms: expected a number >= 0, got -0.5"),
    ({"output_tokens": {"dist": "zipf"}}, "output_tokens.dist: expected one of fixed, uniform, normal, got 'zipf'"),
    ({"output_tokens": {"dist": "uniform", "min": 9, "max": 3}},
     "output_tokens.max: expected an integer >= min (9), got 3"),
    ({"output_tokens": 0}, "output_tokens.value: expected an integer >= 1, got 0"),
    ({"models": []}, "models: expected at least one model name, got an empty list"),
    ({"models": "gpt"}, "models: expected a list, got 'gpt'"),
    ({"faults": [{"kind": "explode", "rate": 0.1}]}, "faults[0].kind: expected one of error, disconnect,"),
    ({"faults": [{"kind": "error", "rate": 0.1, "arg": 700}]},
     "faults[0].arg: expected an HTTP status in [100, 599] for 'error', got 700"),
    ({"faults": [{"kind": "disconnect", "rate": 0.1, "arg": 2.5}]},
     "faults[0].arg: expected an integer >= 0 (tokens) for 'disconnect', got 2.5"),
    ({"faults": [{"kind": "invalid_json", "rate": 0.1, "arg": 1}]},
     "faults[0].arg: fault kind 'invalid_json' takes no argument, got 1"),
    ({"faults": [{"kind": "stall", "rate": 0.1, "path": "/health"}]},
     "faults[0].path: fault kind 'stall' applies only to /v1/chat/completions, /v1/completions, /v1/responses, "
     "/v1/messages, /v1/embeddings, /generate, /propose_trade_adjustments/ or '*', got '/health'"),
    ({"faults": [{"kind": "error", "rate": 0.1, "path": "health"}]},
     "faults[0].path: expected '*' or a path starting with '/', got 'health'"),
    ({"faults": {"kind": "error"}}, "faults: expected a list, got a mapping"),
    ({"sidecar": {"metric_prefix": "my-app"}}, "sidecar.metric_prefix: expected a Prometheus metric name"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_bad_settings_are_refused_with_the_source_and_key_path(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        apply(Config(), overrides, "conf.yaml")
    assert str(err.value).startswith("conf.yaml: " + message)


def test_a_yaml_file_error_names_the_file(tmp_path: Path) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text("faults:\n  - {kind: error, rate: 0.1}\n  - {kind: error, rate: 1.5}\n")
    with pytest.raises(ConfigError, match=r"conf\.yaml: faults\[1\]\.rate: expected a number in \[0, 1\], got 1\.5"):
        load([conf])
    broken = tmp_path / "broken.yaml"
    broken.write_text("itl_ms: [1,\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML \(line"):
        load_yaml(broken)
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: top level: expected a mapping, got a list"):
        load([tmp_path / "list.yaml"])


def test_python_m_mock_llm_exits_2_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "conf.yaml"
    conf.write_text("faults:\n  - {kind: error, rate: 0.1}\n  - {kind: error, rate: 1.5}\n")
    assert mock_main.main(["--config", str(conf)]) == 2
    assert capsys.readouterr().err.strip() == f"{conf}: faults[1].rate: expected a number in [0, 1], got 1.5"
    assert mock_main.main(["--itl-ms", "-3"]) == 2
    assert capsys.readouterr().err.strip() == "command line: itl_ms: expected a number >= 0, got -3"


def test_files_merge_in_order_then_flags_win(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("itl_ms: 5\ngateway: {policy_ms: 3, api_keys: {k1: {rate_limit_rps: 2}}}\n")
    b.write_text("ttft_ms: 7\ngateway: {api_keys: {k2: {token_budget: 9}}}\n")
    ns, overrides = cli.parse(["--config", str(a), "--config", str(b), "--itl-ms", "6", "--policy-ms", "4"])
    cfg = load(ns.config, overrides)
    assert (cfg.itl_ms, cfg.ttft_ms, cfg.gateway.policy_ms) == (6.0, 7.0, 4.0)
    assert set(cfg.gateway.api_keys) == {"k1", "k2"}  # mappings merge key by key
    assert cfg.gateway.api_keys["k1"].rate_limit_rps == 2.0


def test_every_setting_has_a_flag() -> None:
    _, overrides = cli.parse([
        "--host", "127.0.0.2", "--port", "0", "--model", "a", "--model", "b", "--reject-unknown-models",
        "--version-string", "v9", "--seed", "3", "--ttft-ms", "1", "--prefill-ms-per-token", "0.5",
        "--itl-ms", "2", "--jitter-ms", "0.1", "--output-tokens", "normal:50:10:5:90", "--reasoning-tokens", "2",
        "--reasoning-field", "reasoning", "--tool-call-rate", "0.25", "--embedding-dim", "4",
        "--max-concurrency", "4", "--capacity", "8", "--overload-exponent", "2", "--timestamps",
        "--no-usage-chunk", "--shutdown-grace-s", "1", "--require-api-key", "--api-key", "k1:5:10:1000",
        "--api-key", "k2", "--user", "bob:pw", "--access-token-ttl-s", "60", "--refresh-token-ttl-s", "600",
        "--gateway-overhead-ms", "3", "--gateway-overhead-jitter-ms", "1", "--policy-ms", "2",
        "--policy-jitter-ms", "0.5", "--no-timing-headers", "--metric-prefix", "osiris", "--fault", "*:error:0.01:503",
        "--fault", "/generate:stall:0.5", "--prefix-cache-enabled", "--prefix-cache-discount", "0.75",
        "--prefix-cache-max-entries", "50",
    ])  # fmt: skip
    cfg = load([], overrides)
    expected = {
        "host": "127.0.0.2", "port": 0, "models": ["a", "b"], "reject_unknown_models": True, "version": "v9",
        "seed": 3, "ttft_ms": 1.0, "prefill_ms_per_token": 0.5, "itl_ms": 2.0, "jitter_ms": 0.1,
        "output_tokens": {"dist": "normal", "value": 64, "min": 5, "max": 90, "mean": 50.0, "sd": 10.0},
        "reasoning_tokens": 2, "reasoning_field": "reasoning", "tool_call_rate": 0.25, "embedding_dim": 4,
        "max_concurrency": 4, "capacity": 8, "overload_exponent": 2.0,
        "timestamps": True, "usage_chunk": False, "shutdown_grace_s": 1.0,
        "prefix_cache": {"enabled": True, "discount": 0.75, "max_entries": 50},
        "gateway": {
            "require_api_key": True,
            "api_keys": {"k1": {"rate_limit_rps": 5.0, "burst": 10.0, "token_budget": 1000},
                         "k2": {"rate_limit_rps": 0.0, "burst": 0.0, "token_budget": 0}},
            "users": {"admin": "mock-admin-password", "bob": "pw"},
            "access_token_ttl_s": 60.0, "refresh_token_ttl_s": 600.0,
            "gateway_overhead_ms": 3.0, "gateway_overhead_jitter_ms": 1.0, "policy_ms": 2.0, "policy_jitter_ms": 0.5,
            "timing_headers": False,
        },
        "sidecar": {"metric_prefix": "osiris"},
        "faults": [{"kind": "error", "rate": 0.01, "path": "*", "arg": 503.0},
                   {"kind": "stall", "rate": 0.5, "path": "/generate", "arg": None}],
    }  # fmt: skip
    assert to_dict(cfg) == expected
    assert set(expected) == {f.name for f in dataclasses.fields(Config)}  # nothing left without a flag


def test_help_lists_every_flag_with_its_meaning() -> None:
    text = cli.build_parser().format_help()
    for flag in ("--ttft-ms", "--output-tokens", "--api-key", "--fault", "--metric-prefix", "--policy-ms"):
        assert flag in text
    assert "time to first token" in text and "token budget" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--output-tokens", "poisson:3"], "command line: --output-tokens: expected N | uniform:MIN:MAX"),
        (["--fault", "error:0.1"], "command line: --fault: expected PATH:KIND:RATE[:ARG], got 'error:0.1'"),
        (["--user", "bob"], "command line: --user: expected NAME:PASSWORD, got 'bob'"),
        (["--api-key", "k:1:x"], "command line: gateway.api_keys.k.burst: expected a number >= 0, got 'x'"),
    ],
)
def test_bad_flag_specs(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _, overrides = cli.parse(argv)
        load([], overrides)
    assert str(err.value).startswith(message)


def test_default_yaml_documents_every_key_with_the_default_value() -> None:
    path = Path(cli.__file__).with_name("default.yaml")
    data = yaml.safe_load(path.read_text())
    assert load([path]) == Config()
    assert data == to_dict(Config())  # every key present, every value the default
    text = path.read_text()
    for line in text.splitlines():  # every key line carries a comment
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and ":" in stripped and not stripped.endswith(":"):
            assert "#" in line or stripped.startswith(("admin:", "metric_prefix")), line


def test_run_time_changes_refuse_host_and_port_and_a_null_restores_a_default() -> None:
    cfg = apply(Config(), {"itl_ms": 3, "gateway": {"users": {"bob": "pw"}}}, "a")
    with pytest.raises(ConfigError, match="POST /mock/config: port: cannot be changed at run time"):
        apply(cfg, {"port": 1234}, "POST /mock/config", runtime=True)
    back = apply(cfg, {"itl_ms": None, "gateway": {"users": {"admin": None}}}, "POST /mock/config", runtime=True)
    assert back.itl_ms == Config().itl_ms
    assert back.gateway.users == {"bob": "pw"}
