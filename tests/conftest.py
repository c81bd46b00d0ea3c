"""Test-session set-up shared by every test.

Locust monkey-patches the whole process with gevent when it is imported, and the product modules imported by
the unit tests import it. pytest-xdist's workers talk to the controller over execnet, which uses real threads:
patched, they block forever (``LoopExit``). The test process therefore imports Locust once without the patch
(``LOCUST_SKIP_MONKEY_PATCH``, read by Locust at import only) and removes the variable again, so that the Locust
processes the tests start (``python -m locust``) are patched as users' are.
"""

from __future__ import annotations

import os

os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
try:
    import locust  # noqa: F401
finally:
    del os.environ["LOCUST_SKIP_MONKEY_PATCH"]
