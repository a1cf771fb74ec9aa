"""`make run`'s busy-port hint (issue 21): the port it suggests is one it found free, never the busy one's neighbour
by arithmetic alone."""

from __future__ import annotations

import argparse
import re
import socket
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from devstack.run import CannotStart, check_ports_free, free_port, port_is_free


def _listening(stack: ExitStack, port: int) -> None:
    server = stack.enter_context(socket.socket())
    server.bind(("127.0.0.1", port))
    server.listen()


@pytest.fixture
def busy() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_the_suggested_port_is_free_even_when_the_obvious_one_is_busy(busy: ExitStack) -> None:
    # Given the API port busy, and busy too the port 100 above it and the next one (what a naive hint would offer)
    api = free_port()
    taken = [api] + [p for p in (api + 100, api + 101) if port_is_free(p)]
    for port in taken:
        _listening(busy, port)
    args = argparse.Namespace(
        api_port=api, moto_port=free_port(), pbx_port=free_port(), faults_port=free_port(), receiver_port=free_port()
    )
    # When `make run` checks its ports
    with pytest.raises(CannotStart) as refused:
        check_ports_free(args)
    # Then it names the busy port and suggests one that nothing listens on and the stack does not use itself
    message = str(refused.value)
    assert f"port {api} (API_PORT) is in use" in message
    [suggested] = [int(p) for p in re.findall(r"`make run API_PORT=(\d+)`", message)]
    assert suggested > api + 101 and suggested not in {args.moto_port, args.pbx_port, args.faults_port}
    assert port_is_free(suggested)


def test_the_suggestion_skips_the_stacks_own_other_ports(busy: ExitStack) -> None:
    # Given the PBX port busy and the MOTO port set to the port 100 above it
    pbx = free_port()
    _listening(busy, pbx)
    moto = pbx + 100
    args = argparse.Namespace(
        api_port=free_port(), moto_port=moto, pbx_port=pbx, faults_port=free_port(), receiver_port=free_port()
    )
    assert port_is_free(moto), "the test needs the port 100 above a free one free"
    with pytest.raises(CannotStart) as refused:
        check_ports_free(args)
    [suggested] = [int(p) for p in re.findall(r"`make run PBX_PORT=(\d+)`", str(refused.value))]
    assert suggested != moto and port_is_free(suggested)
