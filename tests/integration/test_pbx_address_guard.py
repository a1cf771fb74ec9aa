"""The PBX client's address guard on real sockets (issue 20): the shared client sends only where the stage allows,
resolves a host once and connects to the address it checked. A listener on 127.0.0.1 stands for everything inward."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpcore
import pytest
from fixtures.inward_listener import InwardListener

from iptelefon.adapters import pbx
from iptelefon.domain.errors import PbxRefused
from iptelefon.domain.pbx_address import PbxNetwork
from iptelefon.domain.pbx_connection import PbxConnection

SECRET = "guard-test-secret-0123456789"


@pytest.fixture
def listener() -> Iterator[InwardListener]:
    inward = InwardListener()
    yield inward
    inward.close()


def _ping(url: str, network: PbxNetwork) -> str:
    return pbx.get_pbx_client(network).ping(PbxConnection(server_url=url, secret=SECRET, timeout_seconds=2))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/start.php",
        "https://127.0.0.1:{port}/start.php",
        "https://localhost:{port}/start.php",
        "https://2130706433:{port}/start.php",
        "https://[::ffff:127.0.0.1]:{port}/start.php",
        "https://user:pw@127.0.0.1:{port}/start.php",
    ],
)
def test_a_public_stage_never_connects_inward(listener: InwardListener, url: str) -> None:
    with pytest.raises(PbxRefused) as refused:
        _ping(url.format(port=listener.port), "public")
    assert refused.value.message.startswith("PBX request refused: ")
    assert listener.accepted == 0


def test_a_local_stage_reaches_this_machine_over_http(listener: InwardListener) -> None:
    assert _ping(f"http://127.0.0.1:{listener.port}/start.php", "local") == "pong"
    assert listener.accepted == 1


@pytest.mark.parametrize("url", ["https://10.0.0.1/start.php", "https://169.254.169.254/", "https://[fd00::1]/"])
def test_a_local_stage_still_refuses_private_and_link_local_addresses(url: str) -> None:
    with pytest.raises(PbxRefused, match="refused"):
        _ping(url, "local")


def test_the_host_is_resolved_once_and_the_checked_address_is_the_one_connected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a name whose first answer is public and every later one loopback (DNS rebinding)
    answers = [[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]]
    loopback = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443))]
    lookups: list[str] = []
    connected: list[str] = []

    def resolve(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        lookups.append(host)
        return answers.pop(0) if answers else loopback

    def connect(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        connected.append(host)
        raise httpcore.ConnectError("no network in tests")

    monkeypatch.setattr(pbx.socket, "getaddrinfo", resolve)
    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect)
    # When the client pings it (the connect fails, is retried once and resolved again)
    with pytest.raises(PbxRefused) as refused:
        _ping("https://rebinding.example/start.php", "public")
    # Then the first attempt connected to the address checked, the second was refused before connecting
    assert connected == ["93.184.216.34"]
    assert lookups == ["rebinding.example", "rebinding.example"]
    assert "refused" in refused.value.message


def test_a_name_with_one_inward_address_among_public_ones_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    mixed = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 443)),
    ]
    monkeypatch.setattr(pbx.socket, "getaddrinfo", lambda *args, **kwargs: mixed)
    with pytest.raises(PbxRefused, match="refused"):
        _ping("https://mixed.example/start.php", "public")


def test_a_resolver_that_does_not_answer_ends_in_the_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a DNS lookup that hangs until the test releases it (getaddrinfo itself takes no timeout)
    released = threading.Event()
    lookups: list[str] = []
    answered: list[str] = []

    def hanging(host: str, *args: Any, **kwargs: Any) -> list[Any]:
        lookups.append(host)
        released.wait(3)
        answered.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]

    monkeypatch.setattr(pbx.socket, "getaddrinfo", hanging)
    try:
        # When the client pings it with a short connect timeout
        with pytest.raises(PbxRefused) as refused:
            pbx.get_pbx_client("public").ping(
                PbxConnection(server_url="https://slow-dns.example/start.php", secret=SECRET, timeout_seconds=0.2)
            )
        # Then both attempts gave up while the lookups were still hanging: nothing was connected, the reason is short
        assert answered == []
        assert lookups == ["slow-dns.example", "slow-dns.example"]
        assert refused.value.message == "PBX unreachable (unreachable)"
    finally:
        released.set()
