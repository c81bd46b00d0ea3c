"""mock_llm package."""
