"""One LLM call: send, read the answer as bytes arrive, time it, fire one request event; SSE and the
decoders of each API (chat completions, completions, responses, anthropic, embeddings)."""
