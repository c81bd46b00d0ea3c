"""A local tokenizer, optional: ``--tokenizer PATH`` (env ``TOKENIZER``), a ``tokenizer.json`` file or a folder
holding one, read with the ``tokenizers`` package (``pip install -e '.[tokenizer]'``); never downloaded.

When given (chat and workload suites):

* a call whose answer carries no usage gets its tokens counted by it: the prompt (the text of every message,
  or the ``prompt``/``input`` string, concatenated) and, for a streamed answer of any API, the text it
  streamed (output and reasoning pieces, ``StreamState.texts``). Those counts feed ``llm_prompt_tokens``/
  ``llm_output_tokens`` (and TPOT, tokens/s) with source ``tokenizer`` (``llm_token_source``, the request
  records). A server's usage always wins; a non-streamed answer without usage has unknown output tokens;
* the workload suite sizes its prompts with it instead of probing the server (``--calibrate``): its fit is
  the tokenizer's count of the generator's text (no chat-template overhead).

The process-wide counter is set at start-up (``configure``) and read by the client (``active``). Counting
costs CPU per call (the whole answer is tokenized at its end), so it is off unless asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "TokenCounter",
    "TokenizerError",
    "active",
    "add_tokenizer_argument",
    "configure",
    "load_tokenizer",
    "prompt_text",
]

FLAG = "--tokenizer/TOKENIZER"


class TokenizerError(ValueError):
    """A tokenizer that cannot be used; the message names the flag and the file."""


class TokenCounter:
    """Counts the tokens of a text with a ``tokenizers.Tokenizer`` (no special tokens added)."""

    def __init__(self, tokenizer: Any, source: str) -> None:
        self._tok = tokenizer
        self.source = source

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._tok.encode(text, add_special_tokens=False).ids)


def load_tokenizer(path: str | Path, flag: str = FLAG) -> TokenCounter:
    """The tokenizer of ``path`` (a ``tokenizer.json`` or a folder with one); TokenizerError naming the flag."""
    p = Path(path)
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.is_file():
        raise TokenizerError(f"{flag}: {p}: no such file (expected a tokenizer.json or a folder holding one)")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise TokenizerError(
            f"{flag}: the 'tokenizers' package is not installed: pip install -e '.[tokenizer]'"
        ) from None
    try:
        tok = Tokenizer.from_file(str(p))
    except Exception as exc:  # the Rust side raises its own exception type
        raise TokenizerError(f"{flag}: {p}: not a tokenizer file the 'tokenizers' package can read: {exc}") from None
    return TokenCounter(tok, str(p))


_active: TokenCounter | None = None


def configure(counter: TokenCounter | None) -> None:
    global _active
    _active = counter


def active() -> TokenCounter | None:
    """The process's tokenizer, None when ``--tokenizer`` was not given."""
    return _active


def prompt_text(payload: dict[str, Any]) -> str:
    """The prompt of a request body: every message's text (string content or text parts), or prompt/input."""
    parts: list[str] = []
    for key in ("system",):
        if isinstance(payload.get(key), str):
            parts.append(payload[key])
    messages = payload.get("messages")
    if isinstance(messages, list):
        for msg in messages:
            content = msg.get("content") if isinstance(msg, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts += [c["text"] for c in content if isinstance(c, dict) and isinstance(c.get("text"), str)]
    for key in ("prompt", "input"):
        value = payload.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list):
            parts += [v for v in value if isinstance(v, str)]
    return "\n".join(parts)


def add_tokenizer_argument(parser: Any) -> None:
    parser.add_argument(
        "--tokenizer",
        env_var="TOKENIZER",
        default="",
        include_in_web_ui=False,
        help="tokenizer.json (or a folder with one) counting tokens where the server sends no usage, and sizing "
        "the workload suite's prompts; needs the 'tokenizers' package; never downloaded (env TOKENIZER)",
    )


def configure_from_options(opts: Any) -> None:
    """Load ``--tokenizer`` at start-up (SystemExit 2 with the message when it cannot be used)."""
    import logging
    import sys

    path = str(getattr(opts, "tokenizer", "") or "") if opts is not None else ""
    if not path:
        configure(None)
        return
    try:
        configure(load_tokenizer(path))
    except TokenizerError as exc:
        logging.getLogger(__name__).error("%s", exc)
        sys.exit(2)
