"""A local API Gateway: routes from template.yaml, REST proxy events, Lambda-like invocation of each handler.

`sam local start-api` needs Docker; this does the same job with processes. Each function runs in execution
environments of its own (`devstack.lambda_worker` processes: the function's code directory and the layer on sys.path
as Lambda lays them out, the template's environment variables), each serving one request at a time; concurrent
requests to one function run side by side in up to `max_instances` of them, started on demand (a cold start) and
reused while warm, as Lambda does. A function that outlives its Timeout is killed (502, as API Gateway answers for a
timed-out Lambda); API Gateway's own limits apply: 10 MB payload, 10,240 bytes of request line and headers, 29 s
integration timeout. The answer is translated back to HTTP.

It also runs the template's SQS event sources the way Lambda's event source mapping does (`QueuePoller`): long-poll
the queue, invoke the function with a batch, delete the messages it did not report as failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, Self
from urllib.parse import parse_qs, urlsplit

import boto3

from devstack.lambda_worker import LOCAL_ACCOUNT, FunctionSpec
from devstack.template import ROOT, QueueSource, Route, ScheduleSource, Template

# API Gateway's quotas for a REST API
MAX_BODY_BYTES = 10 * 1024 * 1024  # payload
MAX_REQUEST_LINE_AND_HEADERS_BYTES = 10_240  # "total combined size of request line and header values"
INTEGRATION_TIMEOUT_SECONDS = 29.0
# How many execution environments one function may have at once here (Lambda's are many more; a laptop's are not).
DEFAULT_MAX_INSTANCES = int(os.environ.get("LOCAL_LAMBDA_MAX_INSTANCES") or 4)


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of concurrent callers (a PBX after an outage) got connection
    # resets. API Gateway accepts them all; the requests then wait for their function, as they would for Lambda.
    request_queue_size = 256


class Invocable(Protocol):
    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> dict[str, Any]: ...


class InvocationFailed(Exception):
    """An invocation that gave no answer, as API Gateway words it: the gateway response type, message and status."""

    def __init__(self, response_type: str, message: str, status: int) -> None:
        super().__init__(message)
        self.response_type, self.message, self.status = response_type, message, status


class InvocationTimedOut(InvocationFailed):
    pass


class Worker:
    """One `devstack.lambda_worker` process: an execution environment of one function."""

    INIT_SECONDS = 10.0  # Lambda's limit for an environment's init phase (imports), not counted in the Timeout

    def __init__(self, spec: FunctionSpec, template: Template) -> None:
        self.spec = spec
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devstack.lambda_worker"],
            cwd=ROOT,  # where `devstack` is importable
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._replies: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, name=f"worker-{spec.logical_id}", daemon=True).start()
        self._send({"function": spec.to_json(), "layers": [str(layer) for layer in template.layer_dirs()]})
        self._ready = False

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._replies.put(line)
        self._replies.put("")  # the process is gone

    def invoke(self, event: dict[str, Any], request_id: str | None, wait_seconds: float) -> dict[str, Any]:
        if not self._ready:  # a cold start: wait for the init phase first
            self._receive(self.INIT_SECONDS)
            self._ready = True
        self._send({"event": event, "request_id": request_id})
        return dict(self._receive(wait_seconds)["answer"] or {})

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except OSError:  # the process is gone: _receive reports it
            pass

    def _receive(self, wait_seconds: float) -> dict[str, Any]:
        try:
            line = self._replies.get(timeout=wait_seconds)
        except queue.Empty:  # still running: Lambda stops an environment at the function's Timeout
            self.kill()
            raise InvocationTimedOut("DEFAULT_5XX", "Internal server error", 502) from None
        if not line:  # the process died
            self.kill()
            raise InvocationFailed("DEFAULT_5XX", "Internal server error", 502)
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:  # the handler raised: Lambda reports an error, API Gateway answers 502
            sys.stderr.write(f"gateway: {self.spec.logical_id}: {reply['error']}\n")
            raise InvocationFailed("DEFAULT_5XX", "Internal server error", 502)
        return reply

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()


class FunctionInstances:
    """The execution environments of one function: a request takes a warm idle one, else starts a new one (a cold
    start) while there are fewer than `max_instances`, else waits for one to be free."""

    def __init__(self, spec: FunctionSpec, template: Template, max_instances: int = DEFAULT_MAX_INSTANCES) -> None:
        self.spec, self.template, self.max_instances = spec, template, max_instances
        self.started = 0  # cold starts so far
        self._idle: list[Worker] = []
        self._all: list[Worker] = []
        self._free = threading.Condition()

    def invoke(
        self, event: dict[str, Any], request_id: str | None = None, *, limit_seconds: float | None = None
    ) -> dict[str, Any]:
        """The function's answer. A function still running at its Timeout is killed (502); `limit_seconds` is the
        caller's own patience (API Gateway's 29 s: 504, and the function is stopped here as well)."""
        timeout = float(self.spec.timeout_seconds) + 1.0  # the worker's own start-up and reply
        worker = self._take()
        try:
            if limit_seconds is not None and limit_seconds < timeout:
                try:
                    return worker.invoke(event, request_id, limit_seconds)
                except InvocationTimedOut as failure:
                    raise InvocationFailed("INTEGRATION_TIMEOUT", "Endpoint request timed out", 504) from failure
            return worker.invoke(event, request_id, timeout)
        finally:
            self._give_back(worker)

    def stop(self) -> None:
        with self._free:
            workers, self._all, self._idle = self._all, [], []
        for worker in workers:
            worker.kill()

    def _take(self) -> Worker:
        with self._free:
            while not self._idle and len(self._all) >= self.max_instances:
                self._free.wait()
            if self._idle:
                return self._idle.pop()  # the most recently used: the warmest
            worker = Worker(self.spec, self.template)
            self._all.append(worker)
            self.started += 1
            return worker

    def _give_back(self, worker: Worker) -> None:
        with self._free:
            if worker.alive:
                self._idle.append(worker)
            elif worker in self._all:
                self._all.remove(worker)
            self._free.notify()


class LocalGateway:
    def __init__(
        self,
        template: Template,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        max_instances: int = DEFAULT_MAX_INSTANCES,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        self.template = template
        self.integration_timeout = integration_timeout
        self.routes: list[Route] = template.routes()
        self.binary_types = template.binary_media_types()
        self.stage = template.parameters.get("Stage", "dev")
        self.functions = {
            name: FunctionInstances(spec, template, max_instances) for name, spec in template.functions().items()
        }
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def do_GET(self) -> None:
                gateway.handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

            route = "(no route)"  # the template's route the request matched, set by `handle`

            def log_message(self, format: str, *args: Any) -> None:
                # The route's template, never the path: a webhook's path holds its secret.
                sys.stderr.write(f"gateway: {self.command} {self.route} -> {args[1] if len(args) > 1 else ''!s}\n")

        self.host = host
        self.server = _Server((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.pollers: list[QueuePoller | ScheduleTicker] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_port}"

    def start_pollers(self, sqs: Any) -> list[QueuePoller | ScheduleTicker]:
        """Run the template's SQS event sources against `sqs` (a boto3 client), and its schedules."""
        self.pollers = [
            QueuePoller(self.functions[source.function], source, self.template, sqs).start()
            for source in self.template.queue_sources()
        ]
        self.pollers += [
            ScheduleTicker(self.functions[source.function], source).start() for source in self.template.schedules()
        ]
        return self.pollers

    def start(self) -> LocalGateway:
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        self.server.shutdown()
        self.server.server_close()
        for function in self.functions.values():
            function.stop()

    # -- one request ---------------------------------------------------------------------------------------------
    def handle(self, request: BaseHTTPRequestHandler) -> None:
        split = urlsplit(as_sent(request.path))
        path = split.path
        if path.startswith(f"/{self.stage}/"):  # accept the deployed URL shape too: /<stage>/v1/...
            path = path[len(self.stage) + 1 :]
        length = int(request.headers.get("Content-Length") or 0)
        too_large = too_large_reason(request, length)
        if too_large:
            request.close_connection = True  # the body stays unread: this connection cannot carry another request
            self._gateway_reply(request, "REQUEST_TOO_LARGE", too_large, 413)
            return
        body = request.rfile.read(length) if length else b""
        for route in self.routes:
            params = route.match(request.command, path)
            if params is not None:
                request.route = route.path  # type: ignore[attr-defined]  # what its log line shows
                event = build_event(request, route, path, params, split.query, body, self.stage, self.binary_types)
                event["requestContext"]["path"] = split.path  # with the stage prefix only if the caller sent one
                try:
                    answer = self.functions[route.function].invoke(event, limit_seconds=self.integration_timeout)
                except InvocationFailed as failure:
                    self._gateway_reply(request, failure.response_type, failure.message, failure.status)
                    return
                self._reply_lambda(request, answer)
                return
        # API Gateway answers a route it does not have with 403 "Missing Authentication Token", unless the template
        # says otherwise (it does: GatewayResponses).
        self._gateway_reply(request, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", 403)

    def _gateway_reply(self, request: BaseHTTPRequestHandler, response_type: str, message: str, status: int) -> None:
        answer = self.template.gateway_response(response_type, message, status)
        self._write(request, answer.status, answer.headers, answer.body)

    def _reply_lambda(self, request: BaseHTTPRequestHandler, answer: dict[str, Any]) -> None:
        headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            headers[str(name)] = ", ".join(str(v) for v in values)
        raw = answer.get("body") or ""
        payload = base64.b64decode(raw) if answer.get("isBase64Encoded") else str(raw).encode()
        self._write(request, int(answer.get("statusCode", 200)), headers, payload)

    @staticmethod
    def _write(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        if request.close_connection:
            request.send_header("Connection", "close")
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)


class _EventSource:
    """An event source of its own thread (`_run`), started and stopped with the gateway."""

    def _thread_named(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        raise NotImplementedError


class QueuePoller(_EventSource):
    """One SQS event source mapping of template.yaml, run as Lambda runs it: long-poll, invoke with up to `batch_size`
    messages, delete the ones that succeeded (all of them unless the function reports `batchItemFailures`). A message
    that failed stays in the queue and comes back after the queue's visibility timeout; SQS's redrive policy moves it
    to the dead-letter queue after maxReceiveCount receives."""

    def __init__(self, function: Invocable, source: QueueSource, template: Template, sqs: Any) -> None:
        self.function, self.source, self.sqs = function, source, sqs
        self.queue_arn = str(template.resolve({"Fn::GetAtt": [source.queue, "Arn"]}))
        self.queue_url = str(sqs.get_queue_url(QueueName=template.physical_name(source.queue))["QueueUrl"])
        self.region = template.region
        self._thread_named(f"poller-{source.queue}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as error:  # the queue itself is unreachable: try again shortly, as Lambda would
                sys.stderr.write(f"poller: {self.source.queue}: {type(error).__name__}: {error}\n")
                self._stop.wait(1.0)

    def poll_once(self, wait_seconds: int = 1) -> int:
        """One receive and, if messages came, one invocation. Returns how many messages were deleted."""
        reply = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.source.batch_size,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = reply.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        try:
            answer = self.function.invoke(event, request_id=str(uuid.uuid4())) or {}
        except Exception as error:  # a failed invocation: the whole batch comes back
            sys.stderr.write(f"poller: {self.source.function} raised {type(error).__name__}: {error}\n")
            return 0
        failed = {str(f["itemIdentifier"]) for f in answer.get("batchItemFailures", [])}
        if not self.source.report_batch_item_failures:
            failed = set()
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done)]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        return len(done)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }


class ScheduleTicker(_EventSource):
    """A Schedule event of template.yaml, run as EventBridge runs it: the function is invoked every `seconds` with a
    scheduled event (the first time one period after the start)."""

    def __init__(self, function: Invocable, source: ScheduleSource) -> None:
        self.function, self.source = function, source
        self._thread_named(f"schedule-{source.function}")

    def _run(self) -> None:
        while not self._stop.wait(self.source.seconds):
            event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
            try:
                self.function.invoke(event, request_id=str(uuid.uuid4()))
            except Exception as error:  # EventBridge would retry; the next tick does the same work
                sys.stderr.write(f"schedule: {self.source.function} raised {type(error).__name__}: {error}\n")


def build_event(
    request: BaseHTTPRequestHandler,
    route: Route,
    path: str,
    path_params: dict[str, str],
    query: str,
    body: bytes,
    stage: str,
    binary_types: list[str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, as Lambda receives it."""
    multi_headers: dict[str, list[str]] = {"X-Forwarded-Proto": ["http"]}  # API Gateway adds it (there: https)
    for name, value in request.headers.items():
        multi_headers.setdefault(name, []).append(value)
    multi_query = parse_qs(query, keep_blank_values=True)
    if is_binary(request.headers.get("Content-Type"), binary_types or []):
        text, is_base64 = base64.b64encode(body).decode(), True
    else:  # API Gateway hands other bodies over as UTF-8 text: bytes that are not UTF-8 do not survive
        text, is_base64 = body.decode("utf-8", errors="replace"), False
    request_id = str(uuid.uuid4())
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": request.command,
        "headers": {k: v[-1] for k, v in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.path,
            "httpMethod": request.command,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": request_id,
            "accountId": LOCAL_ACCOUNT,
            "apiId": "local",
            "domainName": request.headers.get("Host"),
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": request.client_address[0], "userAgent": request.headers.get("User-Agent")},
        },
        "body": text if body else None,
        "isBase64Encoded": is_base64,
    }


def as_sent(target: str) -> str:
    """The request target as the client meant it. http.server reads the request line as latin-1; a client that sent
    UTF-8 unencoded (`curl '…/v1/clients?q=Ольга'`) meant UTF-8, and API Gateway reads it so. Percent-encoded
    targets are ASCII and come back unchanged."""
    try:
        return target.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not UTF-8 after all: left as read
        return target


def too_large_reason(request: BaseHTTPRequestHandler, body_bytes: int) -> str | None:
    """Why API Gateway would refuse this request for its size (413), or None."""
    head = len(request.requestline) + sum(len(name) + len(value) for name, value in request.headers.items())
    if head > MAX_REQUEST_LINE_AND_HEADERS_BYTES:
        return "Request line and headers too long"
    if body_bytes > MAX_BODY_BYTES:
        return "Request Too Long"
    return None


def is_binary(content_type: str | None, binary_types: list[str]) -> bool:
    """Whether API Gateway delivers a body of this Content-Type base64-encoded (`type/subtype`, `type/*`, `*/*`)."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if not media_type:
        return False
    kind = media_type.split("/")[0]
    return any(t.lower() in (media_type, f"{kind}/*", "*/*") for t in binary_types)


def main() -> None:
    parser = argparse.ArgumentParser(description="Local API gateway routed by template.yaml")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--stage", default="local")
    parser.add_argument(
        "--pbx-network",
        choices=["local", "public"],
        default="local",
        help="template parameter PbxNetwork: local lets the functions reach a PBX on this machine (the simulator)",
    )
    parser.add_argument(
        "--max-instances",
        type=int,
        default=DEFAULT_MAX_INSTANCES,
        help="execution environments per function (worker processes); LOCAL_LAMBDA_MAX_INSTANCES sets the default",
    )
    args = parser.parse_args()
    template = Template(parameters={"Stage": args.stage, "PbxNetwork": args.pbx_network})
    gateway = LocalGateway(template, host=args.host, port=args.port, max_instances=args.max_instances)
    pollers = gateway.start_pollers(boto3.client("sqs"))
    print(
        f"gateway: serving {gateway.url} ({len(gateway.routes)} routes, {len(pollers)} queue sources, template.yaml)",
        flush=True,
    )
    try:
        gateway.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for poller in pollers:
            poller.stop()
        gateway.server.server_close()
        for function in gateway.functions.values():
            function.stop()


if __name__ == "__main__":
    main()
