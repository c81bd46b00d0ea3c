"""``python -m mock_llm.demo``: start the mock on a free port, show it answering, stop it."""

from __future__ import annotations

import http.client
import json
import time

from mock_llm.launch import serve_in_thread


def main() -> int:
    """Models, one streamed completion printed as it arrives, a non-streamed one, health, /metrics head."""
    with serve_in_thread({"ttft_ms": 150, "itl_ms": 25}) as mock:
        print(f"mock_llm on {mock.base_url}")
        print("GET /v1/models ->", [m["id"] for m in mock.get_json("/v1/models")["data"]])
        body = {
            "model": "mock-llm",
            "stream": True,
            "max_tokens": 12,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Say something."}],
        }
        conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=10)
        t0 = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        resp = conn.getresponse()
        print(
            f"stream: {resp.status} {resp.getheader('content-type')} headers after "
            f"{(time.perf_counter() - t0) * 1000:.0f} ms: ",
            end="",
            flush=True,
        )
        usage = None
        while raw := resp.readline():
            if not raw.startswith(b"data: ") or raw.strip() == b"data: [DONE]":
                continue
            event = json.loads(raw[6:])
            if event.get("usage"):
                usage = event["usage"]
            for choice in event["choices"]:
                print(choice["delta"].get("content", ""), end="", flush=True)
        print(f"\n  done after {(time.perf_counter() - t0) * 1000:.0f} ms, usage {usage}")
        conn.close()
        body.update(stream=False, max_tokens=6)
        answer = mock.post_json("/v1/chat/completions", body)
        print("non-stream ->", repr(answer["choices"][0]["message"]["content"]), answer["usage"])
        print("GET /health ->", mock.get_json("/health"))
        _, _, metrics = mock.request("GET", "/metrics")
        print("GET /metrics (head):")
        for line in metrics.decode().splitlines()[:6]:
            print("  " + line)
    print("mock_llm stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
