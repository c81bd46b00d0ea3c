"""mock_llm: the built-in target server (OpenAI-compatible chat, LLM gateway, sidecar) with a latency model
and faults. Contract: docs/mock-protocol.md. Run: ``python -m mock_llm --help``.

Modules: ``config`` (settings, validation), ``cli`` (flags), ``server`` (start/stop), ``protocol`` (HTTP/1.1
on asyncio + httptools), ``app`` (routing, LLM-call pipeline), ``api_openai``, ``api_gateway``,
``api_sidecar``, ``api_control`` (endpoints), ``latency``, ``clock``, ``admission``, ``gateway``, ``faults``,
``stats``, ``chunks``, ``text``; ``launch`` (MockProcess, serve_in_thread: start the mock from Python) and
``demo`` for users; ``testing`` (a raw-socket client stamping each line's arrival) for the tests.

Importing the package does nothing and imports no other package of the project.
"""
