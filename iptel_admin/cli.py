"""`iptel`: the admin command line. Local stack by default; a deployed stage with --stage/--profile/--region."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast, get_args

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from iptel_admin import admin
from iptelefon.domain.call_events import EVENT_TYPES
from iptelefon.domain.errors import DomainError, InvalidInput
from iptelefon.domain.models import MESSENGERS, NumberType, PbxCallNamesPreset, Role
from iptelefon.platform.observability import logger

GRAMMAR = "iptel <area> <verb> [<project>] [options]: the project is the first word after the verb"
OLD_PROJECT_OPTION = "the old spelling of <project> (kept until the next release)"


class _Parser(argparse.ArgumentParser):
    """argparse's parser, except that a command's own mistakes are reported with that command's usage (argparse
    hands an unknown option up to `iptel`'s usage, which does not show the command's options)."""

    hint: str | None = None  # one line more for an unknown option, e.g. how a client's variable is given

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and not self._subparsers:  # a command (a leaf): its mistake, not `iptel`'s
            self.error(f"unrecognized arguments: {' '.join(extras)}" + (f"; {self.hint}" if self.hint else ""))
        return parsed, extras


def _area(commands: Any, name: str, text: str) -> Any:
    """An area (`project`, `employee`, …): its verbs; the area alone prints their usage (see `main`)."""
    area = commands.add_parser(name, help=text, description=text)
    area.set_defaults(usage_of=area)
    return area.add_subparsers(dest="action", metavar="<verb>")


def _with_project(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument("project_id", nargs="?", metavar="<project>", help="the project id")
    command.add_argument("--project", dest="project_option", metavar="<project>", help=OLD_PROJECT_OPTION)
    return command


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="iptel", description="iptelefon-connector admin", epilog=GRAMMAR)
    parser.set_defaults(usage_of=parser)
    where = parser.add_argument_group("target (default: the local stack of `make run`)")
    where.add_argument("--stack-file", type=Path, default=admin.DEFAULT_STACK_FILE, help="local stack description")
    where.add_argument("--stage", help="a deployed stage (reads the CloudFormation stack's outputs)")
    where.add_argument("--profile", help="AWS profile")
    where.add_argument("--region", help="AWS region")
    where.add_argument("--stack-name", help="CloudFormation stack (default: iptelefon-connector-<stage>)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the service's log lines (on stderr)")
    commands = parser.add_subparsers(dest="area", metavar="<area>")

    project = _area(commands, "project", "projects (tenants)")
    project.add_parser("list", help="every project: id, name, region (never a secret)")
    create = project.add_parser("create", help="connect a PBX: stores the secret in SSM, prints a bot token once")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--server-url", required=True, help="full start.php URL, e.g. https://a00.abc.ru/b3/api/v2/start.php"
    )
    create.add_argument("--secret", required=True, help="the PBX API secret (also the webhook path secret)")
    create.add_argument("--messenger", action="append", default=[], choices=MESSENGERS, help="connected messenger")
    create.add_argument("--id", help="project id (default: random)")
    create.add_argument("--region-code", default="RU", help="default phone region (RU)")
    create.add_argument("--auth-mode", choices=["hash", "bearer"], default="hash")
    create.add_argument(
        "--allow-country",
        type=int,
        action="append",
        default=[],
        help="a country calling code bots may call besides the project's own region (375 adds Belarus)",
    )
    create.add_argument(
        "--allow-number-type",
        action="append",
        default=[],
        choices=get_args(NumberType),
        help="a kind of line bots may call besides fixed_line and mobile (e.g. toll_free)",
    )
    create.add_argument(
        "--webhook-token",
        choices=get_args(admin.WebhookPath),
        default="pbx-secret",
        help="what ends the webhook URL: the PBX secret (default) or a random token, so the secret stays out of URLs",
    )
    create.add_argument(
        "--pbx-methods",
        choices=get_args(PbxCallNamesPreset),
        default="zeon",
        help="the PBX's names of the call-starting methods: zeon (call-me with src/dst, default) or classic "
        "(call-employee with ext/phone, call-group with group/phone)",
    )
    rotate = project.add_parser(
        "rotate-secret", help="a new PBX secret; the old webhook URL keeps working for a grace period"
    )
    _with_project(rotate)
    rotate.add_argument("--secret", required=True, help="the new PBX API secret (also the new webhook path secret)")
    rotate.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="how long the old webhook URL still works (0-72; 0 ends every earlier URL of the project at once)",
    )
    rotate_token = project.add_parser(
        "rotate-webhook-token",
        help="a new random webhook URL (the PBX secret no longer in it); the old URL works for a grace period",
    )
    _with_project(rotate_token)
    rotate_token.add_argument(
        "--grace-hours", type=float, default=24.0, help="how long the old webhook URL works (0-72; 0: none)"
    )
    guard = project.add_parser(
        "guard",
        help="what bots may call besides the project's region and personal lines (the operator's: a tenant admin may "
        "only narrow it)",
    )
    _with_project(guard)
    guard.add_argument(
        "--allow-country", type=int, action="append", default=[], help="a country calling code (375 adds Belarus)"
    )
    guard.add_argument(
        "--allow-number-type",
        action="append",
        default=[],
        choices=get_args(NumberType),
        help="a kind of line besides fixed_line and mobile (e.g. toll_free)",
    )
    _with_project(project.add_parser("show", help="project settings, employees, tokens (never the secret)"))

    employee = _area(commands, "employee", "employees and their call method")
    set_ = _with_project(employee.add_parser("set", help="create or update an employee"))
    set_.add_argument("--id", required=True)
    set_.add_argument("--name", required=True)
    set_.add_argument("--method", choices=["disabled", "app", "api"], required=True)
    set_.add_argument("--short-number", help="PBX short number, required for --method api")
    _with_project(employee.add_parser("list", help="the project's employees"))
    delete = _with_project(employee.add_parser("delete", help="an employee, and their operator tokens revoked"))
    delete.add_argument("--id", required=True)

    token = _area(commands, "token", "bot, operator and admin tokens")
    token_create = _with_project(token.add_parser("create", help="a new token, shown once"))
    token_create.add_argument(
        "--role",
        choices=get_args(Role),
        default="bot",
        help="bot: calls and reads; operator: one employee in the console (--employee); admin: settings and employees",
    )
    token_create.add_argument("--employee", help="the employee an operator token acts as")
    _with_project(token.add_parser("list", help="the project's live tokens: id, role, employee (never a token)"))
    token_revoke = _with_project(token.add_parser("revoke", help="a token answers 401 from now on"))
    token_revoke.add_argument("--token-id", required=True)

    client = _area(commands, "client", "clients and the phone index")
    client_add = _with_project(client.add_parser("add", help="a client with variables (indexed for matching)"))
    cast(_Parser, client_add).hint = "a client's variables are given as --var NAME=VALUE, e.g. --var name=Ivan"
    client_add.add_argument("--channel", default="telephony", choices=["telephony", *MESSENGERS])
    client_add.add_argument("--phone", help="the client's own phone (required for telephony)")
    client_add.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a client variable")
    client_import = _with_project(
        client.add_parser(
            "import", help="clients from a CSV file (phone, name, channel, id, created_at, other columns variables)"
        )
    )
    client_import.add_argument("csv", type=Path)
    client_import.add_argument(
        "--update", action="store_true", help="a phone that is a client already updates that client's variables"
    )
    client_import.add_argument("--dry-run", action="store_true", help="say what would happen; write nothing")

    calls = _area(commands, "calls", "call records")
    calls_list = _with_project(calls.add_parser("list", help="newest first"))
    calls_list.add_argument("--client", help="only this client's calls")
    calls_list.add_argument("--limit", type=int, default=50)

    endpoint = _area(commands, "endpoint", "call events' endpoints: where signed call events are sent")
    endpoint_add = _with_project(endpoint.add_parser("add", help="a new endpoint; its secret is printed once"))
    endpoint_add.add_argument("--url", required=True, help="the receiver's https URL")
    endpoint_add.add_argument("--description", default="")
    endpoint_add.add_argument(
        "--event", action="append", choices=EVENT_TYPES, help="an event type it takes (repeat; default: all)"
    )
    _with_project(endpoint.add_parser("list", help="the project's endpoints (enabled or why disabled; no secret)"))
    endpoint_delete = _with_project(endpoint.add_parser("delete", help="an endpoint and its secret"))
    endpoint_delete.add_argument("--id", required=True)
    endpoint_rotate = _with_project(
        endpoint.add_parser("rotate-secret", help="a new secret, printed once; the old one signs beside it a while")
    )
    endpoint_rotate.add_argument("--id", required=True)
    endpoint_rotate.add_argument(
        "--grace-hours", type=float, default=24.0, help="how long the old secret still signs (0-72; 0: not at all)"
    )
    endpoint_log = _with_project(endpoint.add_parser("deliveries", help="the endpoint's latest delivery attempts"))
    endpoint_log.add_argument("--id", required=True)
    endpoint_replay = _with_project(
        endpoint.add_parser("replay", help="every delivery that failed since a time, again (the endpoint enabled)")
    )
    endpoint_replay.add_argument("--id", required=True)
    endpoint_replay.add_argument("--since", required=True, help="ISO time with its zone, e.g. 2026-12-01T00:00:00Z")
    event = _area(commands, "event", "call events")
    event_replay = _with_project(event.add_parser("replay", help="one event again, with its id, to its endpoints"))
    event_replay.add_argument("--id", required=True)

    pbx = _area(commands, "pbx", "talk to a project's PBX")
    for name, text in (
        ("ping", "check the PBX connection (URL, secret, auth mode)"),
        ("methods", "list the PBX's method names (get-method-list): find the real originate method names"),
        ("points", "list the PBX's extensions (get-points): the short numbers employees may have"),
    ):
        _with_project(pbx.add_parser(name, help=text))
    return parser


def run(args: argparse.Namespace) -> Any:
    target = (
        admin.aws_target(stage=args.stage, profile=args.profile, region=args.region, stack_name=args.stack_name)
        if args.stage
        else admin.local_target(args.stack_file)
    )
    match args.area, args.action:
        case "project", "create":
            created = admin.create_project(
                target,
                name=args.name,
                server_url=args.server_url,
                secret=args.secret,
                messengers=args.messenger,
                project_id=args.id,
                default_region=args.region_code,
                auth_mode=args.auth_mode,
                allowed_country_codes=args.allow_country,
                extra_number_types=args.allow_number_type,
                webhook_path=args.webhook_token,
                pbx_call_names=args.pbx_methods,
            )
            return {
                "project_id": created.project.id,
                "webhook_url": created.webhook_url,
                **new_token_answer(created.token_id, "bot", created.token),
                "note": "the bot token is shown once; configure webhook_url in the PBX",
            }
        case "project", "list":
            return admin.list_projects(target)
    project_id = _project_arg(args)
    match args.area, args.action:
        case "project", "rotate-secret":
            return admin.rotate_secret(target, project_id, args.secret, grace_hours=args.grace_hours)
        case "project", "rotate-webhook-token":
            return admin.rotate_webhook_token(target, project_id, grace_hours=args.grace_hours)
        case "project", "guard":
            return admin.set_guard(
                target, project_id, countries=args.allow_country, number_types=args.allow_number_type
            )
        case "project", "show":
            return admin.show_project(target, project_id)
        case "employee", "set":
            if args.method == "api" and not args.short_number:
                raise InvalidInput.for_field(
                    "short-number",
                    "--method api needs --short-number: the employee's short number on the PBX, e.g. 346",
                )
            return admin.set_employee(
                target,
                project_id=project_id,
                employee_id=args.id,
                name=args.name,
                method=args.method,
                short_number=args.short_number,
            ).model_dump()
        case "employee", "list":
            return [e.model_dump() for e in admin.list_employees(target, project_id)]
        case "employee", "delete":
            admin.delete_employee(target, project_id, args.id)
            return {"deleted": args.id, "note": "their operator tokens are revoked"}
        case "token", "create":
            token_id, token = admin.create_token(target, project_id, role=args.role, employee_id=args.employee)
            return {**new_token_answer(token_id, args.role, token), "note": "shown once"}
        case "token", "list":
            return admin.list_tokens(target, project_id)
        case "token", "revoke":
            admin.revoke_token(target, project_id, args.token_id)
            return {"revoked": args.token_id}
        case "client", "add":
            variables = dict(_name_value(v) for v in args.var)
            return admin.add_client(
                target, project_id=project_id, channel=args.channel, phone=args.phone, variables=variables
            ).model_dump(mode="json")
        case "client", "import":
            report = admin.import_clients(
                target,
                project_id,
                args.csv,
                update=args.update,
                dry_run=args.dry_run,
                progress=sys.stderr.isatty() and not args.dry_run,
            )
            return report.answer()
        case "calls", "list":
            return admin.list_calls(target, project_id, client_id=args.client, limit=args.limit)
        case "endpoint", "add":
            made = admin.add_endpoint(
                target, project_id, url=args.url, description=args.description, event_types=args.event
            )
            return {**made, "note": "the secret is shown once: give it to the receiver"}
        case "endpoint", "list":
            return admin.list_endpoints(target, project_id)
        case "endpoint", "delete":
            admin.delete_endpoint(target, project_id, args.id)
            return {"deleted": args.id}
        case "endpoint", "rotate-secret":
            return admin.rotate_endpoint_secret(target, project_id, args.id, grace_hours=args.grace_hours)
        case "endpoint", "deliveries":
            return admin.endpoint_deliveries(target, project_id, args.id)
        case "endpoint", "replay":
            return admin.replay_failed(target, project_id, args.id, args.since)
        case "event", "replay":
            return admin.replay_event(target, project_id, args.id)
        case "pbx", "ping":
            return admin.pbx_ping(target, project_id)
        case "pbx", "methods":
            return admin.pbx_methods(target, project_id)
        case "pbx", "points":
            return admin.pbx_points(target, project_id)
    raise SystemExit(f"unknown command {args.area} {args.action}")


def new_token_answer(token_id: str, role: str, token: str) -> dict[str, str]:
    """A new token as every command prints it: `token` with its `role` beside it. `<role>_token` is the old name of
    the same field, kept until the next release for scripts that read it."""
    return {"token_id": token_id, "role": role, "token": token, f"{role}_token": token}


def _name_value(text: str) -> tuple[str, str]:
    name, separator, value = text.partition("=")
    if not separator or not name.strip():
        raise InvalidInput.for_field("var", f"{text!r} is not NAME=VALUE")
    return name.strip(), value


def _project_arg(args: argparse.Namespace) -> str:
    """The project: `iptel <area> <verb> <project>`, or the old `--project <project>`."""
    positional, option = args.project_id, args.project_option
    if positional and option and positional != option:
        raise InvalidInput.for_field(
            "project", f"two projects named ({positional} and --project {option}): name one, after the verb"
        )
    if not (positional or option):
        raise InvalidInput.for_field(
            "project", f"name the project: iptel {args.area} {args.action} <project> (see iptel {args.area} --help)"
        )
    return str(positional or option)


@contextmanager
def _service_logs(verbose: bool) -> Iterator[None]:
    """The layer logs JSON lines to stdout (Lambda); here stdout is the command's JSON answer and the console is a
    person's: no log line unless --verbose, and then on stderr."""
    handler = logger.registered_handler
    level = logger.log_level
    stream = handler.setStream(sys.stderr) if isinstance(handler, logging.StreamHandler) else None
    if verbose:
        logger.setLevel(logging.INFO)
        logger.append_keys(service="iptel")
    else:
        logging.disable(logging.CRITICAL)  # botocore's and httpx's loggers too, not only the layer's
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)
        logger.setLevel(level)
        logger.append_keys(service=logger.service)  # the Logger is the process's: as it was
        if stream is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "action", None) is None:  # `iptel`, `iptel project`: the areas' (or the verbs') usage
        args.usage_of.print_help(sys.stderr)
        return 2
    with _service_logs(args.verbose):
        try:
            result = run(args)
        except Exception as error:
            message = user_error(error)
            if message is None:
                raise  # a defect of ours: its traceback is what a bug report needs
            print(f"iptel: {message}", file=sys.stderr)
            return 2
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def user_error(error: Exception) -> str | None:
    """What a person did wrong (or must do), in one line; None for a defect of ours."""
    if isinstance(error, DomainError):
        return error.message
    if isinstance(error, ValidationError):
        return "; ".join(_validation_message(e) for e in error.errors())
    if isinstance(error, OSError) and error.filename:  # a path the person named: missing, a folder, not readable
        return f"cannot read {error.filename}: {error.strerror}"
    if isinstance(error, ClientError | BotoCoreError):
        return f"AWS refused: {error} (check --stage, --profile and --region)"
    return None


def _validation_message(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    text = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {text}" if where else text


if __name__ == "__main__":
    sys.exit(main())
