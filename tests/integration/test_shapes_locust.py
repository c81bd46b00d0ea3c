"""Locust runs the load profiles: headless and through the web UI, in subprocesses, with no network target.

Each test starts ``python -m locust`` on a tiny locustfile whose User only sleeps, so nothing but the
shape is exercised; a time scale of 0.02 makes the 6 min spike profile last a few seconds. Locust is
never imported in the pytest process (it monkey-patches the standard library with gevent).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]

LOCUSTFILE = '''\
"""A User that only sleeps, and the project's load shapes."""

from locust import User, between, events, task

from shapes.locust_shapes import install_shapes


class SleepyUser(User):
    wait_time = between(0.05, 0.1)

    @task
    def nap(self) -> None:
        pass


install_shapes(globals(), events)
'''

TARGET_RE = re.compile(r"Shape test updating to (\d+) users")
ACTUAL_RE = re.compile(r"All users spawned: .*\((\d+) total users\)")


def dedupe(values: list[int]) -> list[int]:
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def assert_spike_shape(log: str) -> None:
    """The runner reached every per-tick target, and the targets rose to one peak of 500, then fell to 10.

    At 1 s ticks and a time scale of 0.02, the ticks normally see 0, 10, 500, 10; a late tick may land in
    a 0.2 s ramp and see an intermediate count, so the check is on the shape, not on exact tick values.
    """
    targets = dedupe([int(n) for n in TARGET_RE.findall(log)])
    actual = dedupe([int(n) for n in ACTUAL_RE.findall(log)])
    assert actual == targets, log
    assert targets.count(500) == 1, targets
    peak = targets.index(500)
    assert targets[: peak + 1] == sorted(targets[: peak + 1]), targets
    assert targets[peak:] == sorted(targets[peak:], reverse=True), targets
    assert targets[0] <= 10 and targets[-1] == 10, targets


@pytest.fixture
def locustfile(tmp_path: Path) -> Path:
    path = tmp_path / "sleepy_locustfile.py"
    path.write_text(LOCUSTFILE, encoding="utf-8")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the shape and Locust variables of the caller, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PROFILE", "TIME_SCALE", "STAGES_FILE") and not k.startswith("LOCUST_")
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_locust(locustfile: Path, *args: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary", *args],
        cwd=locustfile.parent,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_headless_spike_follows_the_shape_and_stops_by_itself(locustfile: Path) -> None:
    prefix = locustfile.parent / "spike"
    started = time.monotonic()
    result = run_locust(
        locustfile, "--load-profile", "spike", "--time-scale", "0.02", "--csv", str(prefix), "--csv-full-history"
    )
    elapsed = time.monotonic() - started
    log = result.stderr

    assert result.returncode == 0, log
    assert "load profile 'spike' (chosen by --load-profile (env PROFILE)) at time scale 0.02" in log
    # 6 min at 0.02 is 7.2 s: at 1 s ticks, 0 (ramp), 10 (baseline), 500 (spike), 10 (recovery)
    assert_spike_shape(log)
    # stopped by the shape (no --run-time was given), at the end of the profile
    assert "Shape test stopping" in log
    assert 7.2 <= elapsed < 20

    with open(f"{prefix}_stats_history.csv", newline="", encoding="utf-8") as history:
        counts = [int(row["User Count"]) for row in csv.DictReader(history) if row["Name"] == "Aggregated"]
    assert len(counts) >= 5
    assert 10 in counts
    assert max(counts) <= 500


@pytest.mark.slow
def test_locusts_profile_label_chooses_the_profile(locustfile: Path) -> None:
    """``--profile load`` (Locust's own run label) runs the load profile when --load-profile is not given."""
    result = run_locust(locustfile, "--profile", "load", "--time-scale", "0.005")
    assert result.returncode == 0, result.stderr
    assert "load profile 'load' (chosen by Locust's --profile) at time scale 0.005" in result.stderr
    assert "Shape test stopping" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "code", "message"),
    [
        (
            ["--load-profile", "nope"],
            {},
            1,
            "ProfileShape: --load-profile (env PROFILE): unknown profile 'nope'; ",
        ),
        ([], {"PROFILE": "nope"}, 1, "--load-profile (env PROFILE): unknown profile 'nope'"),
        (["--time-scale", "0"], {}, 2, "argument --time-scale: expected a positive number, got '0'"),
        ([], {"TIME_SCALE": "-1"}, 2, "argument --time-scale: expected a positive number, got '-1'"),
        (
            ["--stages-file", "missing.yaml"],
            {},
            1,
            "--stages-file (env STAGES_FILE): missing.yaml: cannot read the file",
        ),
        (
            ["--stages-file", "bad.yaml"],
            {},
            1,
            "--stages-file (env STAGES_FILE): bad.yaml: profiles.spike.stages[0].target: "
            "expected a non-negative integer, got -5",
        ),
    ],
    ids=["unknown profile", "unknown PROFILE", "zero time scale", "negative TIME_SCALE", "missing file", "bad file"],
)
def test_a_bad_option_stops_the_run_at_start_up_naming_the_flag(
    locustfile: Path, args: list[str], env: dict[str, str], code: int, message: str
) -> None:
    (locustfile.parent / "bad.yaml").write_text(
        "profiles:\n  spike:\n    stages: [{duration: 1m, target: -5}]\n", encoding="utf-8"
    )
    result = run_locust(locustfile, *args, timeout=20, **env)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert "Shape test starting" not in result.stderr


def post(url: str, form: dict[str, str]) -> str:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as response:
        return str(response.read().decode())


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


@pytest.mark.slow
def test_web_ui_lists_the_shapes_and_runs_the_one_picked(locustfile: Path) -> None:
    port = free_port()
    log_path = locustfile.parent / "ui.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "locust", "-f", str(locustfile), "--class-picker"),
                *("--web-host", "127.0.0.1", "--web-port", str(port)),
            ],
            cwd=locustfile.parent,
            env=clean_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                page = get(base + "/")
                break
            except OSError:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
        shapes = ["Default", "LoadShape", "ProfileShape", "SmokeShape", "SpikeShape", "StressShape"]
        assert f'"available_shape_classes": {json.dumps(shapes)}' in page
        for option in ("load_profile", "time_scale", "stages_file"):
            assert f'"{option}": {{' in page  # shown in the form, editable

        answer = post(
            base + "/swarm",
            {
                "user_classes": "SleepyUser",
                "shape_class": "SpikeShape",
                "host": "http://127.0.0.1:9",
                "time_scale": "0.02",
            },
        )
        assert "Swarming started using shape class 'SpikeShape'" in answer

        deadline = time.monotonic() + 15
        while "Shape test stopping" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        log = log_path.read_text()
        assert "SpikeShape: load profile 'spike' (chosen by SpikeShape) at time scale 0.02" in log
        assert_spike_shape(log)
        assert process.poll() is None  # the web UI stays up after the shape ends
    finally:
        process.terminate()
        process.wait(timeout=10)
