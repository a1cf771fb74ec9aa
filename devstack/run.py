"""`make run`: the whole service on 127.0.0.1 — moto server, the local API gateway, the PBX simulator, a demo project.

DynamoDB requests of the functions pass through a fault proxy (`dynamodb_faults`) that can cancel a share of
transactions as DynamoDB does under contention (`--conflict-rate`, `make run DDB_CONFLICT_RATE=0.3`) and take DynamoDB
away and back while the stack runs (`POST {control_url}/faults`). The admin CLI and the seed talk to moto directly.

The PBX simulator speaks `--pbx-dialect` (`make run PBX_DIALECT=classic`; default zeon, the public integration's);
for classic the demo project is seeded with the classic method names, so its bot calls work in either dialect.

Keeps the local data across restarts (`saved_data`: saved on stop, loaded on start; `make run FRESH=1` starts clean);
the demo project is seeded once and its tokens stay the same.

Writes <state-dir>/stack.json ({"api_url", "pbx_url", "pbx_dialect", "project_id", "bot_token", "webhook_url", ...})
and stops everything it started on Ctrl-C, SIGTERM or SIGHUP, when a child dies or the start fails, removing
stack.json each time; killed (SIGKILL), it takes its services with it all the same (Linux). A port in use or a
state dir held by another `make run` is refused before anything starts.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import boto3

from devstack import saved_data
from devstack.pbx_simulator import DEFAULT_DIALECT, DIALECTS
from devstack.template import LOCAL_REGION, Template, create_buckets, create_queues, create_tables

DEMO_PROJECT_ID = "demo"
DEMO_SECRET = "demo-pbx-secret-0123456789"  # the demo PBX's API secret; also the webhook path secret
DEMO_PBX_PATH = "/b3/api/v2/start.php"
LOCAL_STAGE = "local"
# Each port's option and the variable `make run` reads it from (named when the port is in use).
PORTS = {
    "api_port": "API_PORT",
    "moto_port": "MOTO_PORT",
    "pbx_port": "PBX_PORT",
    "faults_port": "FAULTS_PORT",
    "receiver_port": "RECEIVER_PORT",
}
# The demo project's endpoint for call events: the sample receiver (`devstack.event_receiver`), remade at each start.
RECEIVER_DESCRIPTION = "make run: the sample receiver (devstack/event_receiver.py)"


class CannotStart(Exception):
    """Something outside this stack is in the way; the message says what and what to do."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run iptelefon-connector locally")
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", 3000)))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    parser.add_argument("--pbx-port", type=int, default=int(os.environ.get("PBX_PORT", 8081)))
    parser.add_argument("--faults-port", type=int, default=int(os.environ.get("FAULTS_PORT", 5001)))
    parser.add_argument("--receiver-port", type=int, default=int(os.environ.get("RECEIVER_PORT", 8790)))
    parser.add_argument(
        "--conflict-rate",
        type=float,
        default=float(os.environ.get("DDB_CONFLICT_RATE") or 0),
        help="share of DynamoDB transactions cancelled with TransactionConflict, as under contention on AWS",
    )
    parser.add_argument(
        "--queue-visibility-timeout",
        type=int,
        default=None,
        help="override the queues' VisibilityTimeout from template.yaml (tests: a failed message returns sooner)",
    )
    parser.add_argument(
        "--pbx-network",
        choices=["local", "public"],
        default="local",  # not read from PBX_NETWORK: that is the functions' own variable, which tests set
        help="where the functions may send PBX requests: local (also http and 127.0.0.1: the simulator) or public "
        "(as a deployed stage: https to public addresses only)",
    )
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("STATE_DIR", ".local")))
    parser.add_argument(
        "--fresh",
        action="store_true",
        default=os.environ.get("FRESH", "") not in ("", "0"),
        help="start without the data saved when the stack last stopped (`make run FRESH=1`); it is replaced on stop",
    )
    parser.add_argument("--webhook-delay", type=float, default=2.0, help="seconds from a call start to its end")
    parser.add_argument(
        "--demo-history",
        action="store_true",
        default=os.environ.get("DEMO_HISTORY", "") not in ("", "0"),
        help="a fresh demo project gets a month of calls, missed calls and callbacks (`make run` does; DEMO_HISTORY=0 "
        "does not)",
    )
    parser.add_argument(
        "--pbx-dialect",
        choices=DIALECTS,
        default=os.environ.get("PBX_DIALECT") or DEFAULT_DIALECT,
        help="how the PBX simulator answers and posts webhooks (`make run PBX_DIALECT=classic`)",
    )
    args = parser.parse_args(argv)
    if args.pbx_dialect not in DIALECTS:  # argparse checks the choices of given options, not of defaults
        parser.error(f"PBX_DIALECT must be one of {', '.join(DIALECTS)}, not {args.pbx_dialect!r}")
    return args


def local_aws_env(moto_url: str) -> dict[str, str]:
    """What every local process needs to talk to moto instead of AWS (boto3 honours AWS_ENDPOINT_URL)."""
    return {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
    }


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.children: list[subprocess.Popen[bytes]] = []
        self.template = Template(parameters={"Stage": LOCAL_STAGE})
        self.moto_url = f"http://127.0.0.1:{args.moto_port}"
        self.api_url = f"http://127.0.0.1:{args.api_port}"
        self.pbx_base = f"http://127.0.0.1:{args.pbx_port}"
        self.faults_url = f"http://127.0.0.1:{args.faults_port}"
        self.receiver_url = f"http://127.0.0.1:{args.receiver_port}/"
        self.env = {**os.environ, **local_aws_env(self.moto_url), "PYTHONUNBUFFERED": "1"}
        self.tables: list[str] = []
        self.buckets: list[str] = []
        self.saved: dict[str, Any] | None = None  # what was loaded from the last run: its demo tokens and item count
        self.ready = False  # started and seeded: only such a stack's data is worth saving over the last one's

    def spawn(self, name: str, command: list[str], log: Path | None = None, env: dict[str, str] | None = None) -> None:
        output = open(log, "ab") if log else None  # noqa: SIM115 - lives as long as the child
        child = subprocess.Popen(
            command,
            env={**self.env, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT if log else None,
            start_new_session=True,  # Ctrl-C reaches us only: we stop the children in order
            preexec_fn=die_with(os.getpid()) if sys.platform == "linux" else None,
        )
        self.children.append(child)
        print(f"started {name} (pid {child.pid})", flush=True)

    def start(self) -> dict[str, Any]:
        state = self.args.state_dir
        (state / "stack.json").unlink(missing_ok=True)  # a stack killed with SIGKILL left it: its ports are dead
        python = sys.executable
        self.spawn(
            "moto server (DynamoDB writes atomic, as on AWS)",
            [python, "-m", "devstack.moto_server", "-H", "127.0.0.1", "-p", str(self.args.moto_port)],
            log=state / "moto.log",
        )
        wait_for_port(self.args.moto_port, self.children[-1])
        self.tables = create_tables(self.client("dynamodb"), self.template)
        queues = create_queues(self.client("sqs"), self.template, visibility_timeout=self.args.queue_visibility_timeout)
        self.buckets = create_buckets(self.client("s3"), self.template)
        print(
            f"created from template.yaml: tables {', '.join(self.tables)}; queues {', '.join(queues)}; "
            f"buckets {', '.join(self.buckets)}",
            flush=True,
        )
        if not self.args.fresh:
            self.saved = saved_data.load(self.saved_file, dynamodb=self.client("dynamodb"), ssm=self.client("ssm"))
            saved_data.load_objects(self.args.state_dir / saved_data.SAVED_OBJECTS, s3=self.client("s3"))
        self.spawn(
            f"DynamoDB fault proxy (conflict rate {self.args.conflict_rate:g})",
            [
                python,
                "-m",
                "devstack.dynamodb_faults",
                "--port",
                str(self.args.faults_port),
                "--upstream",
                self.moto_url,
                "--conflict-rate",
                str(self.args.conflict_rate),
            ],
        )
        wait_for_port(self.args.faults_port, self.children[-1])
        webhook_url = f"{self.api_url}/iptelefon_webhook/{DEMO_SECRET}"
        self.spawn(
            "PBX simulator",
            [
                python,
                "-m",
                "devstack.pbx_simulator",
                "--port",
                str(self.args.pbx_port),
                "--secret",
                DEMO_SECRET,
                "--webhook-url",
                webhook_url,
                "--webhook-delay",
                str(self.args.webhook_delay),
                "--dialect",
                self.args.pbx_dialect,
                # with the demo's history, clients keep calling (and missing) while the stack runs
                *(["--traffic-seconds", "45"] if self.args.demo_history else []),
            ],
        )
        self.spawn(
            "API gateway and queue pollers",
            [
                python,
                "-m",
                "devstack.gateway",
                "--port",
                str(self.args.api_port),
                "--stage",
                LOCAL_STAGE,
                "--pbx-network",
                self.args.pbx_network,
            ],
            env={"AWS_ENDPOINT_URL_DYNAMODB": self.faults_url},  # the functions' DynamoDB goes through the proxy
        )
        self.spawn(
            "call events' sample receiver",
            [
                python,
                "-m",
                "devstack.event_receiver",
                "--port",
                str(self.args.receiver_port),
                "--secret-file",
                str(self.receiver_secret_file),
            ],
        )
        wait_for_port(self.args.pbx_port, self.children[-3])
        wait_for_port(self.args.api_port, self.children[-2])
        wait_for_port(self.args.receiver_port, self.children[-1])
        stack = self.seed()
        (state / "stack.json").write_text(json.dumps(stack, indent=2))
        self.ready = True
        return stack

    @property
    def receiver_secret_file(self) -> Path:
        return self.args.state_dir / "receiver-secret"

    def register_receiver(self, target: Any) -> str:
        """The sample receiver as the demo project's endpoint (every event type), its new secret in the receiver's
        file: the one an earlier run registered (maybe on another port) goes first. Returns its endpoint id."""
        from iptel_admin import admin

        for endpoint in admin.list_endpoints(target, DEMO_PROJECT_ID)["endpoints"]:
            if endpoint["description"] == RECEIVER_DESCRIPTION:
                admin.delete_endpoint(target, DEMO_PROJECT_ID, endpoint["endpoint_id"])
        made = admin.add_endpoint(
            target, DEMO_PROJECT_ID, url=self.receiver_url, description=RECEIVER_DESCRIPTION, event_types=None
        )
        self.receiver_secret_file.write_text(made["secret"])
        self.receiver_secret_file.chmod(0o600)
        return str(made["endpoint_id"])

    @property
    def saved_file(self) -> Path:
        return self.args.state_dir / saved_data.SAVED_DATA

    def save(self, demo: dict[str, Any]) -> None:
        """This run's data, for the next `make run`; a failure is said and leaves the last saved data as it was."""
        if not self.ready:
            return
        try:
            count = saved_data.save(
                self.saved_file,
                dynamodb=self.client("dynamodb"),
                ssm=self.client("ssm"),
                tables=self.tables,
                ssm_prefix=self.ssm_prefix,
                demo=demo,
            )
            saved_data.save_objects(
                self.args.state_dir / saved_data.SAVED_OBJECTS, s3=self.client("s3"), buckets=self.buckets
            )
        except Exception as error:  # moto died with the stack, say: the data of the last clean stop stays
            print(f"could not save the local data ({error}); {self.saved_file} is as it was", flush=True)
            return
        print(f"saved the local data ({count} items) to {self.saved_file}; `make run FRESH=1` starts clean", flush=True)

    @property
    def ssm_prefix(self) -> str:
        return str(self.template.functions()["WebhookFunction"].environment["SSM_PREFIX"])

    def client(self, service: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.moto_url,
            region_name=LOCAL_REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def seed(self) -> dict[str, Any]:
        from iptel_admin import admin  # the same code path as `iptel project create`
        from iptelefon.data.gateway import Storage

        ssm_prefix = self.ssm_prefix
        table_name = self.template.physical_name("MainTable")
        target = admin.Target(
            storage=Storage(self.client("dynamodb"), table_name),
            ssm=self.client("ssm"),
            ssm_prefix=ssm_prefix,
            api_url=self.api_url,
            pbx_network="local",  # the demo project's PBX (the simulator) and its events' receiver are on this machine
            event_queue_url=self.template.queue_url("EventDeliveries"),
            sqs=self.client("sqs"),
        )
        server_url = self.pbx_base + DEMO_PBX_PATH
        if self.saved and target.deps.projects.get_project(DEMO_PROJECT_ID):
            tokens = self.reconnect_demo(target, server_url)
        else:
            tokens = self.create_demo(target, server_url)
            if self.args.demo_history:
                from devstack.demo_history import post_history

                posted = post_history(f"{self.api_url}/iptelefon_webhook/{DEMO_SECRET}", datetime.now(UTC))
                print(f"the demo project got a month of calls ({posted} webhooks)", flush=True)
        endpoint_id = self.register_receiver(target)
        return {
            "api_url": self.api_url,
            "console_url": self.api_url + "/console",
            "admin_token": tokens["admin_token"],
            "operator_token": tokens["operator_token"],
            "pbx_url": self.pbx_base + DEMO_PBX_PATH,
            "pbx_control_url": self.pbx_base + "/_sim",
            "pbx_dialect": self.args.pbx_dialect,
            "project_id": DEMO_PROJECT_ID,
            "bot_token": tokens["bot_token"],
            "webhook_url": admin.webhook_url(target, DEMO_SECRET),
            "saved_data": f"loaded {self.saved['items']} items from {self.saved_file}"
            if self.saved
            else "a fresh start",
            "aws_endpoint_url": self.moto_url,
            "control_url": self.faults_url + "/_control",
            "inbox_queue_url": self.template.queue_url("WebhookInbox"),
            "event_queue_url": self.template.queue_url("EventDeliveries"),
            "receiver_url": self.receiver_url,
            "receiver_endpoint_id": endpoint_id,
            "dead_letter_queue_url": self.template.queue_url("WebhookInboxDeadLetters"),
            "region": LOCAL_REGION,
            "table_name": table_name,
            "ssm_prefix": ssm_prefix,
            "demo_employee": "346",
            "demo_group": "3",
        }

    def create_demo(self, target: Any, server_url: str) -> dict[str, str]:
        """The demo project, its employees and its tokens, as `iptel` would make them."""
        from iptel_admin import admin

        created = admin.create_project(
            target,
            project_id=DEMO_PROJECT_ID,
            name="Демо-проект",
            server_url=server_url,
            secret=DEMO_SECRET,
            messengers=[],
            # The demo project talks to the simulator in the dialect it speaks (the names of `PBX_CALL_NAMES`).
            pbx_call_names=self.args.pbx_dialect,
        )
        admin.set_employee(
            target,
            project_id=DEMO_PROJECT_ID,
            employee_id="346",
            name="Ольга Петрова",
            method="api",
            short_number="346",
        )
        admin.set_employee(
            target,
            project_id=DEMO_PROJECT_ID,
            employee_id="zoiper",
            name="Иван Соколов",
            method="app",
            short_number=None,
        )
        admin.set_employee(
            target,
            project_id=DEMO_PROJECT_ID,
            employee_id="intern",
            name="Пётр Орлов",
            method="disabled",
            short_number=None,
        )
        # The console's demo users: the project's admin, and employee 346 (calls by the Iptelefon API) as operator.
        _, admin_token = admin.create_token(target, DEMO_PROJECT_ID, role="admin")
        _, operator_token = admin.create_token(target, DEMO_PROJECT_ID, role="operator", employee_id="346")
        return {"bot_token": created.token, "admin_token": admin_token, "operator_token": operator_token}

    def reconnect_demo(self, target: Any, server_url: str) -> dict[str, str]:
        """The saved demo project pointed at this run's simulator (its port and dialect may have changed); its
        employees and whatever else was changed stay. Returns the tokens saved with it (stored only as hashes)."""
        from iptelefon.domain.models import PBX_CALL_NAMES, PbxCredentials, Project

        assert self.saved is not None
        deps = target.deps
        names = PBX_CALL_NAMES[self.args.pbx_dialect]
        project = deps.projects.get_project(DEMO_PROJECT_ID)
        updated = {
            "employee_method": names.employee_method,
            "group_method": names.group_method,
            "param_names": dict(names.param_names),
        }
        deps.projects.update_project(Project.model_validate({**project.model_dump(), **updated}))
        deps.pbx_settings.write(DEMO_PROJECT_ID, PbxCredentials(server_url=server_url, secret=DEMO_SECRET))
        return {name: self.saved[name] for name in ("bot_token", "admin_token", "operator_token")}

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
        for child in reversed(self.children):
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def watch(self) -> int:
        """Block until a signal or until a child dies (then stop the rest and fail)."""
        while True:
            for child in self.children:
                if child.poll() is not None:
                    print(f"a local service exited (pid {child.pid}, code {child.returncode}); stopping", flush=True)
                    return 1
            time.sleep(0.3)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with(parent: int) -> Any:
    """Run in a child before it starts (Linux): the kernel sends it SIGTERM when the stack's process dies, even by
    SIGKILL. Its own session keeps Ctrl-C from it, so without this a killed stack left its services running."""

    def in_child() -> None:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the stack died before the request was made
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


def check_ports_free(args: argparse.Namespace) -> None:
    """Refuse, before anything starts, a port another program listens on (a second `make run` would otherwise
    create tables in the first one's moto) or one port given twice."""
    seen: dict[int, str] = {}
    for option, variable in PORTS.items():
        port = getattr(args, option)
        if port in seen:
            raise CannotStart(f"port {port} is given as both {seen[port]} and {variable}: give each its own port")
        seen[port] = variable
    for option, variable in PORTS.items():
        port = getattr(args, option)
        if not port_is_free(port):
            other = free_port_near(port + 100, avoid=set(seen))
            raise CannotStart(
                f"port {port} ({variable}) is in use: stop what listens there (another `make run`?), "
                f"or choose another port, e.g. `make run {variable}={other}` (free a moment ago)"
            )


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no owner
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(names: Iterable[str]) -> dict[str, int]:
    """A free port for each name, all different: every probe stays bound until all are picked (one after the other,
    the OS may hand the same port out twice). For a stack started on any free ports (tests, benchmarks)."""
    with ExitStack() as stack:
        probes = {name: stack.enter_context(socket.socket()) for name in names}
        for probe in probes.values():
            probe.bind(("127.0.0.1", 0))
        return {name: int(probe.getsockname()[1]) for name, probe in probes.items()}


def free_port() -> int:
    return free_ports(["port"])["port"]


def free_port_near(start: int, *, avoid: set[int]) -> int:
    """The first port from `start` up that nothing listens on and the stack does not use already: a suggestion a
    person can paste (the next `make run` checks it again)."""
    for port in range(start, min(start + 1000, 65536)):
        if port not in avoid and port_is_free(port):
            return port
    raise CannotStart(f"no free port between {start} and {start + 999}: stop some local servers")


def hold_state_dir(state_dir: Path) -> IO[str]:
    """An exclusive lock on <state-dir>/run.lock for as long as this stack runs (the kernel drops it with the process,
    even after SIGKILL): a second stack on other ports must not take over this one's stack.json."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = open(state_dir / "run.lock", "a+")  # noqa: SIM115 - held until the process ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        owner = lock.read().strip() or "?"
        lock.close()
        raise CannotStart(
            f"another local stack (pid {owner}) runs with the state dir {state_dir}: stop it first (Ctrl-C), "
            "or give this one its own STATE_DIR and ports"
        ) from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def wait_for_port(port: int, child: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"process {child.args!r} exited with {child.returncode} before listening on {port}")
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def print_welcome(stack: dict[str, Any], state_dir: Path) -> None:
    token, api = stack["bot_token"], stack["api_url"]
    print(
        f"""
iptelefon-connector is running locally ({state_dir / "stack.json"})
  API (routes from template.yaml): {api}
  PBX simulator (start.php):       {stack["pbx_url"]}   requests: {stack["pbx_control_url"]}/requests
  PBX dialect: {stack["pbx_dialect"]} (make run PBX_DIALECT=zeon|classic)
  demo project: {stack["project_id"]}   bot token: {token}
  local data: {stack["saved_data"]} (kept across restarts; make run FRESH=1 starts clean)
  webhook URL (configured in the simulator): {stack["webhook_url"]}
  call events: the sample receiver {stack["receiver_url"]} is the demo project's endpoint (it prints each event)

Try:
  # 1. the bot asks the PBX to ring employee 346, then the client
  curl -s -X POST {api}/v1/calls/employee -H 'Authorization: Bearer {token}' \\
       -H 'Content-Type: application/json' -d '{{"client_phone": "+7 900 444-33-22", "short_employee_phone": "346"}}'
  # 2. a call completion, as the PBX posts it (form-encoded)
  curl -s -X POST '{stack["webhook_url"]}' \\
       -d 'id=1700000001.1&calltype=IN&src=79004443322&dst=74951234567&exten=346&talktime=00:02:35&link=https://pbx.example/rec/1.mp3'
  #    or a client calling employee 346 (the simulator posts that call's webhooks in its dialect)
  curl -s -X POST {stack["pbx_control_url"]}/incoming -d '{{"phone": "79004443322", "exten": "346"}}'
  # 3. the client it matched or created, with the notification in its dialog
  curl -s '{api}/v1/clients?phone=79004443322' -H 'Authorization: Bearer {token}'
  # 4. take DynamoDB away: webhooks answer {{"result": 1, "queued": true}} and wait in the inbox; bring it back and
  #    they land (within the queue's 60 s visibility timeout)
  curl -s -X POST {stack["control_url"]}/faults -d '{{"dynamodb": "down"}}'
  curl -s -X POST {stack["control_url"]}/faults -d '{{"dynamodb": "up"}}'

The console: {stack["console_url"]}
  sign in as the admin:              {stack["admin_token"]}
  or as operator 346 (API calls):    {stack["operator_token"]}

Admin CLI: .venv/bin/iptel project show {stack["project_id"]}      Stop: Ctrl-C
""",
        flush=True,
    )


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_ports_free(args)
        lock = hold_state_dir(args.state_dir)
    except CannotStart as refused:
        print(f"make run: {refused}", file=sys.stderr, flush=True)
        return 2
    stack = Stack(args)

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    # SIGINT too: also when started from a script that ignores Ctrl-C
    previous = {stop_signal: signal.signal(stop_signal, on_signal) for stop_signal in STOP_SIGNALS}
    demo_tokens: dict[str, Any] = {}
    try:
        started = stack.start()
        demo_tokens = {name: started[name] for name in ("bot_token", "admin_token", "operator_token")}
        print_welcome(started, args.state_dir)
        code = stack.watch()
    except KeyboardInterrupt:
        code = 0
    except Exception as error:
        print(f"make run failed: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        for stop_signal in STOP_SIGNALS:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(stop_signal, signal.SIG_IGN)
        (args.state_dir / "stack.json").unlink(missing_ok=True)  # first: the CLI stops pointing at a dying stack
        stack.save(demo_tokens)
        stack.stop()
        lock.close()
        print("stopped the local stack", flush=True)
        for stop_signal, handler in previous.items():
            signal.signal(stop_signal, handler)
    return code


if __name__ == "__main__":
    sys.exit(main())
