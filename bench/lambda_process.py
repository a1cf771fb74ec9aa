"""One cold Lambda execution environment, run by `bench.coldstart` in a fresh interpreter of the runtime's version.

argv: `floor <job>` (import boto3 and create a DynamoDB client, then GetItem) or `<module.function> <job>` (import the
handler, then invoke it); <job> is JSON: the GetItem's arguments or the event, the function's timeout, how many warm
requests. Prints one line `BENCH {...}` with perf_counter stamps and durations, then leaves through os._exit: Lambda
freezes an environment after its first answer, it never pays the interpreter's teardown.

Only the standard library here, imported after the stamps it could distort: the process must be the runtime's plus
what is measured.
"""

import os
import sys
import time


class Context:
    """The Lambda context attributes that handlers and Powertools read."""

    def __init__(self, timeout_seconds: float, request_id: str) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.aws_request_id = request_id
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def main() -> None:
    target = sys.argv[1]
    if target == "floor":
        import boto3

        client = boto3.client("dynamodb")
        imported = time.perf_counter()
    else:
        module_name, _, function_name = target.rpartition(".")
        __import__(module_name)
        handler = getattr(sys.modules[module_name], function_name)
        imported = time.perf_counter()

    import json

    job = json.loads(sys.argv[2])
    if target == "floor":

        def invoke(n: int) -> bool:
            return "Item" in client.get_item(**job["get_item"])
    else:

        def invoke(n: int) -> bool:
            answer = handler(job["event"], Context(job["timeout_seconds"], f"bench-{n}"))
            if answer.get("statusCode") != job["expected_status"]:
                sys.stderr.write(f"unexpected answer: {answer}\n")
                return False
            return True

    started = time.perf_counter()
    ok = invoke(0)
    first = time.perf_counter() - started
    if not ok:
        sys.stderr.flush()
        os._exit(1)

    # Warm requests: the time spent in AWS calls (botocore, the stub's answer included) and in the PBX request
    # (httpx) is external; the rest is the function's own overhead.
    external = [0.0, 0]

    def timed(method):
        def wrapper(*args, **kwargs):
            call_started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                external[0] += time.perf_counter() - call_started
                external[1] += 1

        return wrapper

    from botocore.client import BaseClient

    BaseClient._make_api_call = timed(BaseClient._make_api_call)
    if "httpx" in sys.modules:
        sys.modules["httpx"].Client.send = timed(sys.modules["httpx"].Client.send)
    warm = []
    for n in range(1, job["warm_requests"] + 1):
        external[:] = [0.0, 0]
        started = time.perf_counter()
        if not invoke(n):
            sys.stderr.flush()
            os._exit(1)
        total = time.perf_counter() - started
        warm.append({"total": total, "external": external[0], "calls": external[1]})

    result = {"imported_at": imported, "first_invocation": first, "warm": warm}
    sys.stdout.write("BENCH " + json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)


main()
