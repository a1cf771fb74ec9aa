"""One local Lambda execution environment: what a function needs to run as on Lambda, and the process that runs it.

Lambda runs concurrent requests to a function in separate execution environments; the local gateway does the same
with one `python -m devstack.lambda_worker` process per environment (`devstack.gateway.FunctionInstances`). This module
imports only the standard library, so an environment's cold start is the function's own, as on Lambda.

Protocol, one JSON line each way: the first line in is the function (`{"function": FunctionSpec, "layers": [...]}`);
the process lays it out as Lambda does, imports the handler (Lambda's init phase) and answers `{"ready": true}`. Then
each line in is an invocation (`{"event": ..., "request_id": ...}`) and each line out its `{"answer": ...}` or
`{"error": "..."}`. What the handler prints (its log lines) goes to stderr, so it cannot break the protocol.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCAL_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str  # module.path.function
    environment: dict[str, str] = field(default_factory=dict)
    timeout_seconds: int = 3

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "code_dir": str(self.code_dir)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FunctionSpec:
        return cls(**{**data, "code_dir": Path(data["code_dir"])})


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


class LocalFunction:
    """One execution environment in this process (the worker's core; tests run a function this way in-process)."""

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.lock = threading.Lock()  # one concurrent request per execution environment
        self._handler: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
        with self.lock:
            handler = self.load()
            context = LambdaContext(
                function_name=self.spec.logical_id,
                memory_limit_in_mb=256,
                invoked_function_arn=f"arn:aws:lambda:us-east-1:{LOCAL_ACCOUNT}:function:{self.spec.logical_id}",
                aws_request_id=request_id or event["requestContext"]["requestId"],
                deadline=time.monotonic() + self.spec.timeout_seconds,
            )
            return handler(event, context)

    def load(self) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        """Import the handler's module (what Lambda does in an environment's init phase)."""
        if self._handler is None:
            module_name, _, attribute = self.spec.handler.rpartition(".")
            self._handler = getattr(importlib.import_module(module_name), attribute)
        return self._handler


def lay_out(layer_dirs: Iterable[Path], specs: Iterable[FunctionSpec]) -> None:
    """Lambda's layout in this process: the function's code and the layers (/opt/python) on sys.path, the template's
    variables in the environment (they win over what the process had, as in Lambda)."""
    for layer in layer_dirs:
        if str(layer) not in sys.path:
            sys.path.insert(0, str(layer))
    for spec in specs:
        if str(spec.code_dir) not in sys.path:
            sys.path.insert(0, str(spec.code_dir))
        os.environ.update(spec.environment)
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", "local-gateway")


def main() -> None:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the handler's prints and logs go to stderr

    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    setup = json.loads(sys.stdin.readline())
    spec = FunctionSpec.from_json(setup["function"])
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = spec.logical_id
    lay_out([Path(layer) for layer in setup["layers"]], [spec])
    function = LocalFunction(spec)
    try:
        function.load()
    except Exception as error:  # Lambda reports an init error; the environment is not used
        traceback.print_exc()
        reply({"error": f"init failed: {type(error).__name__}: {error}"})
        return
    reply({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply({"answer": function.invoke(request["event"], request.get("request_id"))})
        except Exception as error:  # what Lambda reports for a crashed invocation; the environment lives on
            traceback.print_exc()
            reply({"error": f"{type(error).__name__}: {error}"})


if __name__ == "__main__":
    main()
