"""Secrets never leave the process: a distributed gateway run with known secrets, every output searched.

The secrets: ``API_KEY``, ``LOADTEST_TOKEN``, ``ADMIN_PASSWORD`` and the access and refresh tokens the mock
issues at each login and refresh (read off the wire by a relay in front of the mock, and matched by their
shape ``at-``/``rt-`` + 32 characters). The outputs: stdout and stderr of the master and the worker, every file
the run writes (JSON summary and the worker's own record, ``--html-report``, Locust's ``--html`` and ``--csv``),
the exporter's ``/metrics`` text, and the web UI: its page source, Locust's JSON and CSV endpoints and the
suite's ``llm/`` routes, during and after the run.

The web UI is driven as a browser does: the page's form is sent back to ``/swarm`` with the secret fields as the
page left them (empty, since their values are not in it), and the calls must still carry the secrets.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from llm_metrics.engine.masking import secret_forms
from mock_llm.testing import MockProcess
from tests.support import ROOT, free_port, locust_cmd, locust_env, run_locust, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(40)]

# secrets whose JSON-escaped and URL-encoded forms differ from the raw text: a quote, a backslash, a non-ASCII
# letter (JSON: \u00e4), and the credentials of a URL (user information of the Pushgateway URL)
API_KEY = 'sk-Secret-Api"Key\\4f9Q2x'
LOADTEST_TOKEN = "lt-Secret-Token-8Hk3Zp"
ADMIN_PASSWORD = 'pw-Secret-Ädmin-"7Yc\\1Rv'
PUSH_USER, PUSH_PASSWORD = "pg-Secret-User-3Mn", "pg-Secret-Pass-6Qw"
ISSUED = re.compile(rb"\b[ar]t-[A-Za-z0-9_-]{32}")


class Relay:
    """A TCP relay on 127.0.0.1 in front of ``port`` keeping every byte in both directions."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.sent = bytearray()  # client -> server
        self.received = bytearray()  # server -> client
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.port))
            threading.Thread(target=self._pipe, args=(client, upstream, self.sent), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, self.received), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, keep: bytearray) -> None:
        try:
            while data := src.recv(65536):
                with self.lock:
                    keep += data
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def page(url: str) -> str:
    """The body of a GET that must succeed: a page that fails to load fails the test (it is not a clean page)."""
    status, body = get(url)
    assert status == 200, f"GET {url}: status {status} (0: no answer)"
    return body


def get(url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except OSError:
        return 0, ""


UI_PATHS = [
    "/",
    "/stats/requests",
    "/stats/report",
    "/stats/requests/csv",
    "/stats/requests_full_history/csv",
    "/stats/failures/csv",
    "/exceptions",
    "/exceptions/csv",
    "/logs",
    "/tasks",
    "/worker-count",
    "/llm/report",
    "/llm/summary.json",
    "/llm/metrics.csv",
]


def test_no_secret_in_any_output(tmp_path: Path) -> None:
    web, metrics_port, master_port = free_port(), free_port(), free_port()
    out = tmp_path / "out"
    conf = tmp_path / "gateway.yaml"
    conf.write_text(yaml.safe_dump({"wait_time": 0.1, "tasks": {"llm": 2, "llm_stream": 1, "health": 1, "admin": 2}}))
    stages = tmp_path / "stages.yaml"
    stages.write_text(
        yaml.safe_dump({"profiles": {"flat": {"start_users": 2, "stages": [{"duration": 6, "target": 2}]}}})
    )
    mock_conf = {
        "ttft_ms": 10,
        "itl_ms": 1,
        "faults": [{"path": "/v1/chat/completions", "kind": "error", "rate": 0.1}],  # failures to report
        "gateway": {
            "require_api_key": True,
            "api_keys": {API_KEY: {}},
            "users": {"admin": ADMIN_PASSWORD},
            "access_token_ttl_s": 3,  # refreshed during the run: refresh tokens used and issued too
        },
    }
    pages: dict[str, str] = {}
    with MockProcess(mock_conf) as mock:
        relay = Relay(mock.port)
        env = locust_env(
            {
                "BASE_URL": relay.base_url,
                "API_KEY": API_KEY,
                "LOADTEST_TOKEN": LOADTEST_TOKEN,
                "ADMIN_PASSWORD": ADMIN_PASSWORD,
                "GATEWAY_CONF": str(conf),
                "SUMMARY_JSON": str(out / "summary.json"),
                "HTML_REPORT": str(out / "report.html"),
                # nothing listens there: the push fails, and its log lines must not show the credentials
                "PUSHGATEWAY_URL": f"http://{PUSH_USER}:{PUSH_PASSWORD}@127.0.0.1:{free_port()}/",
            }
        )
        gateway = locust_cmd("gateway.py")
        master_cmd = [*gateway, "--master", "--web-host", "127.0.0.1",
                      "--web-port", str(web), "--master-bind-host", "127.0.0.1", "--master-bind-port", str(master_port),
                      "--prometheus-port", str(metrics_port), "--html", str(out / "locust.html"),
                      "--csv", str(out / "run"), "--csv-full-history",
                      "--load-profile", "flat", "--stages-file", str(stages)]  # fmt: skip
        worker_cmd = [*gateway, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)]
        logs = {name: (tmp_path / f"{name}.out", tmp_path / f"{name}.err") for name in ("master", "worker")}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name, cmd in (("master", master_cmd), ("worker", worker_cmd)):
                with open(logs[name][0], "w") as o, open(logs[name][1], "w") as e:
                    procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
            ui = f"http://127.0.0.1:{web}"
            wait_for(lambda: '"worker_count": 1' in get(ui + "/worker-count")[1], 20, "the worker")
            index = page(ui + "/")
            assert "api_key" in index  # the form has the secret fields...
            pages["/ (before)"] = index
            # ...sent back as the page left them: empty
            form = {"user_count": "2", "spawn_rate": "2", "host": relay.base_url}
            form |= {"api_key": "", "loadtest_token": "", "admin_password": ""}
            assert get(ui + "/swarm", form)[0] == 200
            time.sleep(3.0)
            pages["/metrics (during)"] = page(f"http://127.0.0.1:{metrics_port}/metrics")
            for path in ("/stats/requests", "/llm/summary.json"):
                pages[f"{path} (during)"] = page(ui + path)
            wait_for(lambda: '"state": "stopped"' in get(ui + "/stats/requests")[1], 20, "the end of the run")
            for path in UI_PATHS:
                pages[path] = page(ui + path)
            pages["/metrics"] = page(f"http://127.0.0.1:{metrics_port}/metrics")
            procs["master"].send_signal(signal.SIGTERM)
            procs["master"].wait(15)
            procs["worker"].wait(15)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                    p.wait()
            relay.close()
        stats = mock.stats()

    # the secrets were used all along: the blank form fields did not erase them
    assert stats["per_key"].get(API_KEY, {}).get("requests", 0) > 0 and stats["unauthorized"] == 0, stats
    sent = bytes(relay.sent)
    assert re.search(rb"(?i)x-loadtest-token: " + LOADTEST_TOKEN.encode(), sent)
    assert json.dumps(ADMIN_PASSWORD).encode() in sent  # the login body: the password JSON-escaped on the wire
    assert stats["statuses"].get("POST /auth/login") == {"200": 2}, stats  # two Users, the admin password
    issued = {m.decode() for m in ISSUED.findall(bytes(relay.received))}
    assert any(t.startswith("rt-") for t in issued) and stats["statuses"].get("POST /auth/refresh"), stats
    secrets = [API_KEY, LOADTEST_TOKEN, ADMIN_PASSWORD, PUSH_USER, PUSH_PASSWORD, *issued]

    outputs: dict[str, str] = {f"web UI {k}": v for k, v in pages.items()}
    for name, (stdout, stderr) in logs.items():
        outputs[f"{name} stdout"] = stdout.read_text()
        outputs[f"{name} stderr"] = stderr.read_text()
    for f in sorted(out.iterdir()):
        outputs[f.name] = f.read_text(errors="replace")
    # Locust's own --html is not written by a web UI master ended by SIGTERM: its content is /stats/report
    assert {"summary.json", "summary.worker0.json", "report.html", "run_stats.csv", "run_failures.csv"} <= set(outputs)
    assert "llm_locust_http_reqs_total" in outputs["web UI /metrics"]
    assert "push failed" in outputs["master stderr"]  # the Pushgateway URL was logged, masked
    leaks = [(where, s[:12]) for where, text in outputs.items() for s in secrets for f in secret_forms(s) if f in text]
    leaks += [(where, "issued token") for where, text in outputs.items() if ISSUED.search(text.encode())]
    assert not leaks, leaks


def test_credentials_in_the_target_url_are_in_no_output(tmp_path: Path) -> None:
    """``BASE=https://user:password@host`` (and the Pushgateway URL's): masked in the console, the JSON
    summary, the suite's HTML report and Locust's own HTML report (``--html``, written before the suite's)."""
    with MockProcess({"ttft_ms": 5, "itl_ms": 1}) as mock:
        env = {
            "BASE": f"http://{PUSH_USER}:{PUSH_PASSWORD}@127.0.0.1:{mock.port}",
            "STREAM_RPS": "4",
            "NONSTREAM_RPS": "0",
            "HTML_REPORT": str(tmp_path / "report.html"),
        }
        run = run_locust("chat.py", ["-u", "2", "-t", "2s", "--html", str(tmp_path / "locust.html")], env, tmp_path)
    assert run.summary is not None, run.output[-3000:]
    outputs = {"console": run.output, "summary": json.dumps(run.summary)}
    for name in ("report.html", "locust.html"):
        outputs[name] = (tmp_path / name).read_text()
    assert "http://***@127.0.0.1" in outputs["summary"] and "http://***@127.0.0.1" in outputs["locust.html"]
    leaks = [(w, s) for w, t in outputs.items() for s in (PUSH_USER, PUSH_PASSWORD) for f in secret_forms(s) if f in t]
    assert not leaks, leaks


SUITE_RUNS = {
    "chat": ("chat.py", "BASE", {"STREAM_RPS": "4", "NONSTREAM_RPS": "2", "MAX_TOKENS": "8"}),
    "sidecar": ("sidecar.py", "OSIRIS_URL", {"THINK_TIME": "0.2"}),
    "workload": ("workload.py", "BASE", {"INPUT_TOKENS": "20", "OUTPUT_TOKENS": "8"}),
}


@pytest.mark.parametrize("suite", list(SUITE_RUNS))
def test_the_secrets_of_each_suite_are_in_no_output(tmp_path: Path, suite: str) -> None:
    """The chat, sidecar and workload suites (the gateway's: above) with an API key and a load-test token whose
    JSON and URL forms differ from their text: the calls carry them, and no console line, JSON summary, HTML
    report, Locust ``--html`` or ``--csv`` file holds them in any form."""
    locustfile, target_env, env = SUITE_RUNS[suite]
    with MockProcess(
        {"ttft_ms": 5, "itl_ms": 1, "gateway": {"require_api_key": True, "api_keys": {API_KEY: {}}}}
    ) as mock:
        run = run_locust(
            locustfile,
            ["-u", "3", "-r", "3", "-t", "3s", "--html", str(tmp_path / "locust.html"), "--csv", str(tmp_path / "run")],
            {
                target_env: mock.base_url,
                "API_KEY": API_KEY,
                "LOADTEST_TOKEN": LOADTEST_TOKEN,
                "HTML_REPORT": str(tmp_path / "report.html"),
                **env,
            },
            tmp_path,
        )
        stats = mock.stats()
    assert run.summary is not None, run.output[-3000:]
    # the secrets were used: the mock requires the key on every LLM call and refused none
    assert stats["per_key"].get(API_KEY, {}).get("requests", 0) > 0 and stats["unauthorized"] == 0, stats
    outputs = {"console": run.output}
    for f in sorted(tmp_path.iterdir()):
        if f.is_file():
            outputs[f.name] = f.read_text(errors="replace")
    assert {"report.html", "locust.html", "run_stats.csv"} <= set(outputs), sorted(outputs)
    leaks = [
        (w, s[:12]) for w, t in outputs.items() for s in (API_KEY, LOADTEST_TOKEN) for f in secret_forms(s) if f in t
    ]
    assert not leaks, leaks
