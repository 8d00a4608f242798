"""VDX_NATS_URL as nats-py connect options: every server, and the credentials as options so the
servers a client learns from the cluster (announced without them) accept it too."""

from __future__ import annotations

from vdx.settings import Settings


def test_one_server_with_a_password_gives_its_credentials_as_options() -> None:
    s = Settings(nats_url="nats://vdx:s%40cret@nats-1.internal:4222")
    assert s.nats_connect_options == {
        "servers": ["nats://vdx:s%40cret@nats-1.internal:4222"],
        "user": "vdx",
        "password": "s@cret",
    }
    assert s.nats_where == "nats-1.internal:4222"  # never the password in a message


def test_a_cluster_is_every_server_and_the_first_credentials() -> None:
    s = Settings(nats_url="nats://vdx:pw@nats-1:4222, nats://nats-2:4222,nats://nats-3:4222")
    options = s.nats_connect_options
    assert options["servers"] == ["nats://vdx:pw@nats-1:4222", "nats://nats-2:4222", "nats://nats-3:4222"]
    assert (options["user"], options["password"]) == ("vdx", "pw")
    assert s.nats_where == "nats-1:4222, nats-2:4222, nats-3:4222"


def test_a_token_and_no_credentials() -> None:
    assert Settings(nats_url="nats://t0ken@nats:4222").nats_connect_options["token"] == "t0ken"
    assert Settings(nats_url="nats://127.0.0.1:4222").nats_connect_options == {
        "servers": ["nats://127.0.0.1:4222"]
    }
