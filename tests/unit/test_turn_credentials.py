"""TURN REST API credentials (coturn's use-auth-secret) and the settings that make them."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from pydantic import ValidationError

from vdx.legs.turn_credentials import turn_credential
from vdx.legs.webrtc import IceOptions
from vdx.settings import Settings


def test_username_carries_expiry_and_holder_and_password_is_its_hmac() -> None:
    cred = turn_credential("s3cret", 3600, "abc123", now=1_700_000_000.7)
    assert cred.username == "1700003600:abc123" and cred.expires == 1_700_003_600
    digest = hmac.new(b"s3cret", b"1700003600:abc123", hashlib.sha1).digest()
    assert base64.b64decode(cred.password) == digest


def test_browsers_get_a_credential_each_the_node_relays_only_when_told() -> None:
    ice = IceOptions(stun=("stun:s:3478",), turn=("turn:t:3478",), turn_secret="x", turn_ttl_s=600)
    a, b = ice.servers_for("p1"), ice.servers_for("p2")
    assert a[0] == {"urls": "stun:s:3478"} and a[1]["urls"] == ["turn:t:3478"]
    assert a[1]["username"].endswith(":p1") and b[1]["username"].endswith(":p2")
    assert [s.urls for s in ice.configuration().iceServers] == ["stun:s:3478"]
    node = IceOptions(turn=("turn:t:3478",), turn_secret="x", node_uses_turn=True)
    [server] = node.configuration().iceServers
    assert server.username.endswith(":vdx-node") and server.credential
    assert IceOptions(stun=("stun:s:3478",)).servers_for("p") == [{"urls": "stun:s:3478"}]


def test_turn_settings_need_a_secret_and_a_ttl_under_a_day(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="VDX_TURN_SECRET"):
        Settings(data_dir=tmp_path, turn_servers="turn:t:3478")
    with pytest.raises(ValidationError):
        Settings(data_dir=tmp_path, turn_servers="turn:t:3478", turn_secret="x", turn_ttl=86400)
    assert Settings(data_dir=tmp_path, turn_servers="turn:t:3478", turn_secret="x").turn_ttl == 3600
