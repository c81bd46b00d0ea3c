"""The workload suite: prompt and answer lengths, conversations and trace replay."""
