"""A local API Gateway: routes from template.yaml, REST proxy events, Lambda-like invocation of each handler.

`sam local start-api` needs Docker; this does the same job in-process: one Python process, each function's code
directory and the layer on sys.path (as Lambda lays them out), one request at a time per function (as one Lambda
execution environment would), the template's environment variables, and the answer translated back to HTTP.

It also runs the template's SQS event sources the way Lambda's event source mapping does (`QueuePoller`): long-poll
the queue, invoke the function with a batch, delete the messages it did not report as failed.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3

from devstack.template import LOCAL_ACCOUNT, FunctionSpec, QueueSource, Route, Template

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.deadline - time.monotonic()) * 1000), 0)


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of concurrent callers (a PBX after an outage) got connection
    # resets. API Gateway accepts them all; the requests then wait for their function, as they would for Lambda.
    request_queue_size = 256


class LocalFunction:
    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.lock = threading.Lock()  # one concurrent request per execution environment
        self._handler: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        with self.lock:
            handler = self._load()
            context = LambdaContext(
                function_name=self.spec.logical_id,
                memory_limit_in_mb=256,
                invoked_function_arn=f"arn:aws:lambda:us-east-1:{LOCAL_ACCOUNT}:function:{self.spec.logical_id}",
                aws_request_id=request_id or event["requestContext"]["requestId"],
                deadline=time.monotonic() + self.spec.timeout_seconds,
            )
            return handler(event, context)

    def _load(self) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        if self._handler is None:
            module_name, _, attribute = self.spec.handler.rpartition(".")
            self._handler = getattr(importlib.import_module(module_name), attribute)
        return self._handler


class LocalGateway:
    def __init__(self, template: Template, *, host: str = "127.0.0.1", port: int = 3000) -> None:
        self.template = template
        self.routes: list[Route] = template.routes()
        self.binary_types = template.binary_media_types()
        self.functions = {name: LocalFunction(spec) for name, spec in template.functions().items()}
        stage = template.parameters.get("Stage", "dev")
        self.stage = stage
        self._prepare_process()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

            def do_GET(self) -> None:
                gateway.handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                sys.stderr.write(
                    f"gateway: {self.command} {self.path.split('?')[0]} -> {args[1] if len(args) > 1 else ''!s}\n"
                )

        self.host = host
        self.server = _Server((host, port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.pollers: list[QueuePoller] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_port}"

    def _prepare_process(self) -> None:
        # Lambda puts the function's code and the layer (/opt/python) on sys.path and the template's variables
        # in the environment. All functions share one process here; their variables are identical by design.
        for layer in self.template.layer_dirs():
            if str(layer) not in sys.path:
                sys.path.insert(0, str(layer))
        for function in self.functions.values():
            if str(function.spec.code_dir) not in sys.path:
                sys.path.insert(0, str(function.spec.code_dir))
            os.environ.update(function.spec.environment)  # the template's variables win, as in Lambda
        os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", "local-gateway")

    def start_pollers(self, sqs: Any) -> list[QueuePoller]:
        """Run the template's SQS event sources against `sqs` (a boto3 client)."""
        self.pollers = [
            QueuePoller(self.functions[source.function], source, self.template, sqs).start()
            for source in self.template.queue_sources()
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

    # -- one request ---------------------------------------------------------------------------------------------
    def handle(self, request: BaseHTTPRequestHandler) -> None:
        split = urlsplit(request.path)
        path = split.path
        if path.startswith(f"/{self.stage}/"):  # accept the deployed URL shape too: /<stage>/v1/...
            path = path[len(self.stage) + 1 :]
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._gateway_reply(request, "REQUEST_TOO_LARGE", "Request Too Long", 413)
            return
        body = request.rfile.read(length) if length else b""
        for route in self.routes:
            params = route.match(request.command, path)
            if params is not None:
                event = build_event(request, route, path, params, split.query, body, self.stage, self.binary_types)
                try:
                    answer = self.functions[route.function].invoke(event)
                except Exception as error:  # what API Gateway shows when a Lambda crashes
                    sys.stderr.write(f"gateway: {route.function} raised {type(error).__name__}: {error}\n")
                    self._gateway_reply(request, "DEFAULT_5XX", "Internal server error", 502)
                    return
                self._reply_lambda(request, answer)
                return
        # API Gateway answers a route it does not have with 403 "Missing Authentication Token", unless the template
        # says otherwise (it does: GatewayResponses).
        self._gateway_reply(request, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token", 403)

    def _gateway_reply(self, request: BaseHTTPRequestHandler, response_type: str, message: str, status: int) -> None:
        status, body = self.template.gateway_response(response_type, message, status)
        self._write(request, status, {"Content-Type": "application/json"}, body)

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
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)


class QueuePoller:
    """One SQS event source mapping of template.yaml, run as Lambda runs it: long-poll, invoke with up to `batch_size`
    messages, delete the ones that succeeded (all of them unless the function reports `batchItemFailures`). A message
    that failed stays in the queue and comes back after the queue's visibility timeout; SQS's redrive policy moves it
    to the dead-letter queue after maxReceiveCount receives."""

    def __init__(self, function: LocalFunction, source: QueueSource, template: Template, sqs: Any) -> None:
        self.function, self.source, self.sqs = function, source, sqs
        self.queue_arn = str(template.resolve({"Fn::GetAtt": [source.queue, "Arn"]}))
        self.queue_url = str(sqs.get_queue_url(QueueName=template.physical_name(source.queue))["QueueUrl"])
        self.region = template.region
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poller-{source.queue}", daemon=True)

    def start(self) -> QueuePoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

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
    multi_headers: dict[str, list[str]] = {}
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
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": request.client_address[0], "userAgent": request.headers.get("User-Agent")},
        },
        "body": text if body else None,
        "isBase64Encoded": is_base64,
    }


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
    args = parser.parse_args()
    gateway = LocalGateway(Template(parameters={"Stage": args.stage}), host=args.host, port=args.port)
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


if __name__ == "__main__":
    main()
