"""The metrics engine (pure: no Locust import): histograms, the store, the call record, thresholds,
time series, schedule adherence, masking, config reading."""
