"""The chat-completions suite (seed 003): its Users, options and installation."""
