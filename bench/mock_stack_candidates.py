"""Two minimal HTTP stacks for the mock, to choose one by measurement (see bench/mock_capacity.py).

Both serve the same two endpoints on uvloop:
  GET /health          -> {"status":"ok"}
  GET /stream?n=N      -> chunked SSE, N chat-completion chunks written one write per token, then [DONE]

Usage: python bench/mock_stack_candidates.py raw|aiohttp --port P [--port-file F]
``raw`` is an asyncio Protocol with httptools parsing; ``aiohttp`` is aiohttp.web (pip install aiohttp;
it is not a project dependency).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from pathlib import Path
from typing import Any

import uvloop

HEALTH = b'{"status":"ok"}'
PREFIX = (
    b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"'
)
SUFFIX = b'"},"finish_reason":null}]}\n\n'
WORDS = [w.encode() + b" " for w in ["the", "model", "streams", "one", "token", "after", "another", "until", "done"]]
DONE = b"data: [DONE]\n\n"
YIELD_EVERY = 16


def token(i: int) -> bytes:
    return PREFIX + WORDS[i % len(WORDS)] + SUFFIX


def tokens_of(query: str) -> int:
    for part in query.split("&"):
        if part.startswith("n="):
            return int(part[2:])
    return 64


# --- (a) raw asyncio Protocol + httptools -------------------------------------------------------------


class RawProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.transport: Any = None
        self.busy = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        path, _, query = self.url.partition(b"?")
        if path == b"/health":
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
                % (len(HEALTH), HEALTH)
            )
        else:
            asyncio.get_running_loop().create_task(self.stream(tokens_of(query.decode())))

    async def stream(self, n: int) -> None:
        write = self.transport.write
        write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for i in range(n):
            data = token(i)
            write(b"%x\r\n%b\r\n" % (len(data), data))
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
                if self.transport.is_closing():
                    return
        write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(DONE), DONE))


async def serve_raw(port: int) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(RawProtocol, "127.0.0.1", port, backlog=4096)


# --- (b) aiohttp --------------------------------------------------------------------------------------


async def serve_aiohttp(port: int) -> Any:
    from aiohttp import web

    async def health(request: web.Request) -> web.Response:
        return web.Response(body=HEALTH, content_type="application/json")

    async def stream(request: web.Request) -> web.StreamResponse:
        n = int(request.query.get("n", "64"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(n):
            await resp.write(token(i))
        await resp.write(DONE)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/stream", stream)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    return runner


async def main(kind: str, port: int, port_file: str | None) -> None:
    server = await (serve_raw(port) if kind == "raw" else serve_aiohttp(port))
    if port_file:
        Path(port_file).write_text(str(port))
    print(f"{kind} candidate on http://127.0.0.1:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        del server


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("raw", "aiohttp"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--port-file")
    args = parser.parse_args()
    uvloop.run(main(args.kind, args.port, args.port_file))
