"""LLM metrics: the ``engine`` (pure), the ``cluster`` (distributed health), the ``outputs``, the ``monitors``, and
``hooks``, which wires Locust's events to them."""
