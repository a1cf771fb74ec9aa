"""Shared fixtures: one moto session for the whole run (tables built from template.yaml), wiped after each test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.template import Template

TEST_TEMPLATE = Template(parameters={"Stage": "test"})
TEST_ENV = {
    **TEST_TEMPLATE.functions()["WebhookFunction"].environment,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "iptelefon-connector",
}


def pytest_configure(config: pytest.Config) -> None:
    # Settings are read once, on first use: the environment must be right before any test imports a handler.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(TEST_ENV)


@pytest.fixture(scope="session")
def _aws_session() -> Iterator[None]:
    from devstack.template import create_queues, create_tables

    # Requests to a real moto server on loopback (the race and local-stack tests) pass through the in-process mock.
    with mock_aws(config={"core": {"passthrough": {"urls": [r"^https?://127\.0\.0\.1(:\d+)?/.*"]}}}):
        create_tables(boto3.client("dynamodb"), TEST_TEMPLATE)
        create_queues(boto3.client("sqs"), TEST_TEMPLATE)
        yield


@pytest.fixture
def aws(_aws_session: None) -> Iterator[None]:
    """In-process AWS (moto), empty at the start of every test."""
    yield
    _wipe()


def _wipe() -> None:
    from iptelefon.data.pbx_settings import ssm_provider

    dynamodb = boto3.client("dynamodb")
    for definition in TEST_TEMPLATE.table_definitions():
        names = [k["AttributeName"] for k in definition["KeySchema"]]
        for page in dynamodb.get_paginator("scan").paginate(TableName=definition["TableName"]):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=definition["TableName"], Key={n: item[n] for n in names})
    from devstack.template import create_queues

    sqs = boto3.client("sqs")  # moto refuses a second PurgeQueue within 60 s, as SQS does: start over instead
    for queue in TEST_TEMPLATE.queue_definitions():
        sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue["QueueName"])["QueueUrl"])
    create_queues(sqs, TEST_TEMPLATE)
    ssm = boto3.client("ssm")
    names = [p["Name"] for p in ssm.describe_parameters().get("Parameters", [])]
    for start in range(0, len(names), 10):
        ssm.delete_parameters(Names=names[start : start + 10])
    ssm_provider().clear_cache()
    from iptelefon.data.projects import project_store

    project_store.cache_clear()  # the warm-Lambda project cache must not outlive a test


@dataclass
class LambdaContext:
    function_name: str = "test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = "req-test"

    def get_remaining_time_in_millis(self) -> int:
        return 20_000  # a fresh invocation of the webhook (its Timeout in template.yaml)


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def admin_target(aws: None) -> Any:
    from iptel_admin.admin import Target
    from iptelefon.data.gateway import get_storage
    from iptelefon.platform.settings import get_settings

    return Target(
        storage=get_storage(),
        ssm=boto3.client("ssm"),
        ssm_prefix=get_settings().ssm_prefix,
        api_url="https://api.test/test",
    )


PBX_SECRET = "pbx-secret-" + "a1b2c3d4e5f6"


@pytest.fixture
def project(admin_target: Any) -> Any:
    """A project with an `api` employee 346, an `app` employee and a disabled one; returns admin.CreatedProject."""
    from iptel_admin import admin

    created = admin.create_project(
        admin_target,
        name="Test project",
        server_url="https://pbx.test/b3/api/v2/start.php",
        secret=PBX_SECRET,
        messengers=[],
        project_id="proj-a",
    )
    admin.set_employee(
        admin_target, project_id="proj-a", employee_id="346", name="Operator", method="api", short_number="346"
    )
    admin.set_employee(
        admin_target, project_id="proj-a", employee_id="soft", name="Softphone", method="app", short_number=None
    )
    admin.set_employee(
        admin_target, project_id="proj-a", employee_id="off", name="Off", method="disabled", short_number=None
    )
    return created


@pytest.fixture
def other_project(admin_target: Any) -> Any:
    from iptel_admin import admin

    return admin.create_project(
        admin_target,
        name="Other project",
        server_url="https://pbx-b.test/api/v2/start.php",
        secret="pbx-secret-of-project-b",
        messengers=["whatsapp"],
        project_id="proj-b",
    )


# -- PBX doubles for the call routes (issue 5) -----------------------------------------------------------------------
class FakePbx:
    """An in-memory ZEON PBX behind `httpx.MockTransport`: records every request body, answers `reply`.

    `reply` is an httpx.Response, an exception to raise (e.g. httpx.ReadTimeout) or a function of the request that
    returns the response; `delay` holds each answer back
    (a slow PBX, for concurrent repeats).
    """

    def __init__(self) -> None:
        import threading

        import httpx

        self.requests: list[Any] = []
        self.reply: Any = httpx.Response(200, json={"result": 1, "data": {"call_id": "pbx-1"}})
        self.delay = 0.0
        self._lock = threading.Lock()
        self.http = httpx.Client(transport=httpx.MockTransport(self._handle))

    def _handle(self, request: Any) -> Any:
        import time

        request.read()
        with self._lock:
            self.requests.append(request)
        if self.delay:
            time.sleep(self.delay)
        if isinstance(self.reply, BaseException):
            raise self.reply
        if callable(self.reply):  # a function of the request, for a PBX that looks around when it is asked
            return self.reply(request)
        return self.reply

    @property
    def forms(self) -> list[dict[str, str]]:
        """The decoded form of every request (the hash included)."""
        from urllib.parse import parse_qsl

        return [dict(parse_qsl(r.content.decode())) for r in self.requests]


@pytest.fixture
def fake_pbx(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePbx]:
    """Every PBX request of the call use cases goes to a FakePbx (never the network)."""
    from iptelefon.adapters.pbx import PbxClient
    from iptelefon.entry import dependencies

    pbx = FakePbx()
    monkeypatch.setattr(dependencies, "pbx_client", lambda: PbxClient(pbx.http))
    yield pbx
    pbx.http.close()


@pytest.fixture
def simulated_pbx(project: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real PBX simulator on 127.0.0.1:<free port> as proj-a's PBX; the PBX timeout is cut to 0.3 s."""
    import httpx

    from devstack.pbx_simulator import PbxSimulator
    from iptelefon.adapters.pbx import PbxClient
    from iptelefon.data.pbx_settings import PbxCredentials, put_pbx_credentials, ssm_provider
    from iptelefon.entry import dependencies
    from iptelefon.platform.settings import get_settings

    monkeypatch.setenv("PBX_TIMEOUT_SECONDS", "0.3")
    get_settings.cache_clear()
    with PbxSimulator(PBX_SECRET, webhook_delay_seconds=60) as simulator, httpx.Client(trust_env=False) as http:
        put_pbx_credentials(
            boto3.client("ssm"), get_settings().ssm_prefix, "proj-a", PbxCredentials(simulator.url, PBX_SECRET)
        )
        ssm_provider().clear_cache()
        monkeypatch.setattr(dependencies, "pbx_client", lambda: PbxClient(http))
        yield simulator
    get_settings.cache_clear()


@pytest.fixture
def atomic_dynamodb() -> Iterator[None]:
    """Make moto's DynamoDB writes atomic, as DynamoDB's are (the local stack's moto server does the same): moto checks
    a condition and writes without a lock, so concurrent threads could both pass `attribute_not_exists`."""
    from devstack.moto_server import make_dynamodb_atomic

    undo = make_dynamodb_atomic()
    yield
    undo()


# -- fault injection (issue 6): DynamoDB behind a real moto server that a test can stop mid-request ------------------
def _quick_stop_moto_server_class() -> Any:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class QuickStopMotoServer(ThreadedMotoServer):
        """ThreadedMotoServer serving the same app, but its loop polls every 10 ms (not 0.5 s): stop() is prompt. And
        stop() closes the listening socket too (the base class leaves it bound, so a client would hang, not fail)."""

        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(
                self._ip_address, self._port, app, threaded=True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.01)

        def stop(self) -> None:
            super().stop()
            if self._server is not None:
                self._server.server_close()

    return QuickStopMotoServer


class DynamoDBServer:
    """moto's server on 127.0.0.1:<free port>, the DynamoDB endpoint of the service's clients while a test runs.

    The server thread serves moto's in-process backends, the very ones the session's `mock_aws` uses: the data outlives
    a stop, a test can read it in-process while the server is down, and the `aws` fixture wipes it afterwards.
    `on(event, handler)` registers a botocore event handler on every DynamoDB client the service built (storage and
    Powertools Idempotency); `stop_at(operation, nth)` takes the server down just before that call leaves.
    """

    def __init__(self) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.clients: list[Any] = []
        self._server: Any = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        self._server = _quick_stop_moto_server_class()(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket: every new connection is refused at once."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def attach(self, client: Any) -> Any:
        self.clients.append(client)
        return client

    def on(self, event: str, handler: Any) -> None:
        for client in self.clients:
            client.meta.events.register(event, handler)

    def stop_at(self, operation: str, nth: int = 1, where: Any = None) -> None:
        """Stop the server just before the nth call of `operation` (whose API params satisfy `where`, if given)."""
        seen = 0

        def stop_before_the_nth(params: dict[str, Any], model: Any, **_: Any) -> None:
            nonlocal seen
            if model.name == operation and (where is None or where(params)):
                seen += 1
                if seen == nth:
                    self.stop()

        self.on("before-parameter-build.dynamodb", stop_before_the_nth)


@pytest.fixture
def dynamodb_server(aws: None) -> Iterator[DynamoDBServer]:
    """The service's DynamoDB (storage and Idempotency clients, built by the real `dynamodb_client()` factory with its
    retry and timeout config) goes to a moto server on loopback; SSM stays in-process (a stopped server takes DynamoDB
    down, the PBX secret stays readable). Everything is restored before the `aws` fixture wipes the data."""
    from iptelefon.data import gateway as storage
    from iptelefon.entry import dependencies

    server = DynamoDBServer()
    server.start()
    factory = storage.dynamodb_client

    def attached_client() -> Any:
        return server.attach(factory())

    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = server.url
    storage.dynamodb_client = attached_client
    storage.get_storage.cache_clear()
    dependencies.idempotency_store.cache_clear()
    try:
        storage.get_storage()
        dependencies.idempotency_store().prepare()
        yield server
    finally:
        server.stop()
        del os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
        storage.dynamodb_client = factory
        storage.get_storage.cache_clear()
        dependencies.idempotency_store.cache_clear()


# -- the real local stack for the fuzz tests (issue 6) ---------------------------------------------------------------
@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`python -m devstack.run` (moto server, local gateway, PBX simulator) on free 127.0.0.1 ports: its stack.json.

    The simulator's completion webhooks wait an hour, so every call record in the stack comes from a request a test
    sent. The stack's output goes to `<state>/stack.log` (a pipe nobody reads would block the gateway).
    """
    import json
    import signal
    import socket
    import subprocess
    import sys
    import time

    from devstack.template import ROOT

    def free_port() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])

    state = tmp_path_factory.mktemp("local-stack")
    ports = [str(free_port()) for _ in range(4)]
    # The stack gets its own AWS settings: no endpoint override a test may have set in this process.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE"))}
    log = (state / "stack.log").open("wb")
    command = [sys.executable, "-m", "devstack.run", "--api-port", ports[0], "--moto-port", ports[1]]
    command += ["--pbx-port", ports[2], "--faults-port", ports[3], "--state-dir", str(state), "--webhook-delay", "3600"]
    command += ["--queue-visibility-timeout", "2"]  # a message that failed during an outage returns in 2 s
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    stack_file = state / "stack.json"
    deadline = time.monotonic() + 90
    while not stack_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            log.close()
            pytest.fail(f"the local stack did not start:\n{(state / 'stack.log').read_text()[-5000:]}")
        time.sleep(0.2)
    info: dict[str, Any] = json.loads(stack_file.read_text())
    info["_log"] = str(state / "stack.log")
    yield info
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


class FuzzTally:
    """How many generated requests the fuzz tests sent, by test and status; printed at the end of the session."""

    def __init__(self) -> None:
        from collections import Counter, defaultdict

        self.by_test: defaultdict[str, Counter[int]] = defaultdict(Counter)

    def count(self, test: str, status: int) -> None:
        self.by_test[test][status] += 1

    @property
    def total(self) -> int:
        return sum(sum(statuses.values()) for statuses in self.by_test.values())

    def report(self) -> str:
        from collections import Counter

        def shown(statuses: Counter[int]) -> str:
            return ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))

        statuses = sum(self.by_test.values(), Counter())
        lines = [f"fuzz: {self.total} generated requests through the local stack ({shown(statuses)})"]
        lines += [f"  {sum(s.values()):6d}  {test}  ({shown(s)})" for test, s in sorted(self.by_test.items())]
        return "\n".join(lines)


@pytest.fixture(scope="session")
def fuzz_tally() -> Iterator[FuzzTally]:
    """The fuzz tests' request count; with FUZZ_MIN_CASES set (`make fuzz`), a session that sent fewer fails."""
    tally = FuzzTally()
    yield tally
    if tally.total:
        print("\n" + tally.report())
    minimum = int(os.environ.get("FUZZ_MIN_CASES") or 0)
    assert tally.total >= minimum, f"fuzz: {tally.total} generated requests, fewer than FUZZ_MIN_CASES={minimum}"


@pytest.fixture(scope="session", autouse=True)
def _hypothesis_prints_failing_examples() -> None:
    """schemathesis' pytest plugin (loaded for every run once it is installed) swaps Hypothesis' printer for one that
    prints nothing, a speed-up for its own CLI: a failing example of ANY property test would show up blank. Hypothesis'
    printer runs only for a failing or verbose example, so its own one is put back for the whole session."""
    from hypothesis import core
    from hypothesis.vendor import pretty

    core.RepresentationPrinter = pretty.RepresentationPrinter  # type: ignore[misc]


# -- the webhook's durable inbox (issue 9) ---------------------------------------------------------------------------
class Inbox:
    """The WebhookInbox queue (moto in-process) and InboxFunction, run by the local stack's own event-source poller."""

    def __init__(self) -> None:
        from devstack.gateway import QueuePoller
        from devstack.lambda_worker import LocalFunction

        sqs = boto3.client("sqs")
        (source,) = TEST_TEMPLATE.queue_sources()
        self.poller = QueuePoller(LocalFunction(TEST_TEMPLATE.functions()[source.function]), source, TEST_TEMPLATE, sqs)
        self.sqs, self.url = sqs, self.poller.queue_url

    def messages(self) -> list[dict[str, Any]]:
        """What waits in the queue, without taking it (received with a zero visibility timeout)."""
        reply = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return list(reply.get("Messages", []))

    def drain(self) -> int:
        """Deliver what waits to InboxFunction, as Lambda's event source mapping would; returns how many it applied."""
        applied = 0
        while self.messages():
            done = self.poller.poll_once(wait_seconds=0)
            if done == 0:
                break
            applied += done
        return applied


@pytest.fixture
def inbox(aws: None) -> Inbox:
    return Inbox()
