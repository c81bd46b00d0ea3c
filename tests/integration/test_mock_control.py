"""The mock's control endpoints with ``MOCK_CONTROL_TOKEN``: refused without the token, even from loopback."""

from __future__ import annotations

import json
import os

import pytest

from mock_llm.testing import MockProcess

pytestmark = pytest.mark.timeout(30)

TOKEN = "ctl-Token-5Rf8Kp"


def test_with_a_control_token_every_control_request_needs_it() -> None:
    env = {**os.environ, "MOCK_CONTROL_TOKEN": TOKEN}
    with MockProcess({"gateway": {"users": {"alice": "pw-of-alice-1"}}}, env=env) as mock:
        for method, path in (("GET", "/mock/config"), ("POST", "/mock/reset"), ("POST", "/mock/revoke")):
            status, _, body = mock.request(method, path, {} if method == "POST" else None, {"X-Mock-Control-Token": ""})
            assert status == 403 and b"pw-of-alice-1" not in body, (path, status, body)
            assert json.loads(body)["error"]["code"] == "control_forbidden"
        status, _, _ = mock.request("GET", "/mock/config", headers={"X-Mock-Control-Token": TOKEN + "x"})
        assert status == 403
        assert mock.get_json("/mock/config")["gateway"]["users"]["alice"] == "pw-of-alice-1"  # with the token
        assert mock.request("GET", "/v1/models")[0] == 200  # the API itself needs no token
