"""A target URL that is malformed stops a suite at start-up naming the knob (exit 2, no request sent, no summary);
a well-formed target where nothing listens gives named failures (``connection refused``), counted, and a verdict
that is never a pass. The chat, sidecar and workload suites (the gateway's: ``test_gateway_suite.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import free_port, run_locust

pytestmark = pytest.mark.slow

SUITES = {
    "chat": ("chat.py", "BASE", "--base/BASE", {"STREAM_RPS": "4", "NONSTREAM_RPS": "2"}),
    "sidecar": ("sidecar.py", "OSIRIS_URL", "--osiris-url/OSIRIS_URL", {"THINK_TIME": "0.2"}),
    "workload": ("workload.py", "BASE", "--base/BASE", {"CALIBRATE": "false"}),
}
MALFORMED = {
    "no-scheme": ("127.0.0.1:8000", "expected an http:// or https:// URL, got '127.0.0.1:8000'"),
    "no-host": ("http://", "expected a host name in the URL, got 'http://'"),
    "bad-port": ("http://127.0.0.1:99999", "not a valid URL (Port out of range 0-65535), got 'http://127.0.0.1:99999'"),
    "space": ("http://local host", "expected a host name in the URL, got 'http://local host'"),
}


@pytest.mark.parametrize("suite", list(SUITES))
@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_target_stops_the_run_at_start_up_naming_the_knob(tmp_path: Path, suite: str, case: str) -> None:
    locustfile, env_name, knob, env = SUITES[suite]
    value, message = MALFORMED[case]
    run = run_locust(locustfile, ["-u", "2", "-r", "2", "-t", "3s"], {env_name: value, **env}, tmp_path, timeout=30)
    assert run.returncode == 2, run.output[-3000:]
    assert f"{knob}: {message}" in run.output, run.output[-3000:]
    assert run.summary is None
    assert "Traceback" not in run.output


@pytest.mark.parametrize("suite", list(SUITES))
def test_an_unreachable_target_gives_named_failures_and_no_pass(tmp_path: Path, suite: str) -> None:
    locustfile, env_name, _knob, env = SUITES[suite]
    run = run_locust(
        locustfile,
        ["-u", "2", "-r", "2", "-t", "3s", "--only-summary"],
        {env_name: f"http://127.0.0.1:{free_port()}", **env},
        tmp_path,
        timeout=40,
    )
    assert run.summary is not None, run.output[-3000:]
    assert run.returncode in (98, 99), run.output[-3000:]  # failed thresholds or an untrustworthy verdict
    failed, total = run.rate("http_req_failed")
    assert total > 0 and failed == total, (failed, total)
    assert "connection refused" in run.output
    assert "Traceback" not in run.output
