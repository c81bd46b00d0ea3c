"""The open model: the arrival schedule (pure), the dispatcher of arrivals to idle Users, the start of the
schedule and each worker's share of the arrivals."""
