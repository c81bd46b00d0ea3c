"""The Users of each suite (``chat``, ``gateway``, ``sidecar``, ``workload``) over shared layers: ``client`` (one LLM
call), ``pacing`` (the open model's arrivals and worker shares) and ``common`` (target, secrets, prompts)."""
