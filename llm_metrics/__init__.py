"""llm_metrics package."""
