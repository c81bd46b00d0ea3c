"""llm_users package."""
