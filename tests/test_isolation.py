"""The unit folder's guard (fixtures/isolation.py) fails a test that opens a socket, starts a process, calls AWS or
uses moto, and lets pure logic pass: pytest runs on a folder with the unit conftest's guard and such tests."""

from __future__ import annotations

import pytest

CONFTEST = """
import pytest

from fixtures.isolation import guard


@pytest.fixture
def aws():  # stands in for moto's fixture: the guard goes by its name
    yield


@pytest.fixture(autouse=True)
def isolated(request, monkeypatch):
    guard(request, monkeypatch)
"""

OFFENDERS = {
    "connects a socket": "import socket\n\ndef test_it():\n    socket.create_connection(('127.0.0.1', 9))\n",
    "binds a socket": "import socket\n\ndef test_it():\n    socket.socket().bind(('127.0.0.1', 0))\n",
    "starts a process": "import subprocess, sys\n\ndef test_it():\n    subprocess.run([sys.executable, '-V'])\n",
    "calls AWS": "import boto3\n\ndef test_it():\n    boto3.client('ssm').describe_parameters()\n",
    "starts moto": "from moto import mock_aws\n\ndef test_it():\n    with mock_aws():\n        pass\n",
    "asks for the aws fixture": "def test_it(aws):\n    pass\n",
}
CAUGHT = ["connect a socket", "bind a socket", "start a process", "call an AWS API", "start moto", "use moto (aws)"]


@pytest.mark.parametrize(("offence", "caught"), list(zip(OFFENDERS, CAUGHT, strict=True)))
def test_the_unit_guard_fails_a_test_that_leaves_the_process(
    pytester: pytest.Pytester, offence: str, caught: str
) -> None:
    # Given a unit-like folder whose only test does what a unit test must not
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_offender=OFFENDERS[offence])
    # When pytest runs it
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    # Then it fails, saying what it reached for
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1, result.stdout.str()
    result.stdout.fnmatch_lines([f"*a unit test must not {caught}*"])


def test_the_unit_guard_lets_pure_logic_pass(pytester: pytest.Pytester) -> None:
    # Given a unit-like folder whose test only computes
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_pure="def test_it():\n    assert sorted('cba') == ['a', 'b', 'c']\n")
    # When pytest runs it, then it passes
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
