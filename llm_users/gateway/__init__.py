"""The LLM-gateway suite (seed 000): its Users, config, options, and its metric knowledge (timing headers,
status classes, recovery time)."""
