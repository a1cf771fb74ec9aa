"""template.yaml as the single source of truth for the local stack and the tests.

Reads the SAM template with cfn-lint's YAML loader (it understands !Ref, !Sub, !GetAtt) and answers what the local
stack needs: the DynamoDB tables and SQS queues to create, the API routes and SQS event sources and their functions,
and each function's environment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cfnlint.decode import cfn_yaml

from devstack.lambda_worker import LOCAL_ACCOUNT, FunctionSpec

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
LOCAL_REGION = "us-east-1"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway resource path, e.g. /v1/clients/{client_id}
    function: str  # logical id

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters when `method path` hits this route, else None."""
        if method != self.method:
            return None
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        found = re.match(pattern, path)
        # API Gateway hands path parameters to the function URL-decoded.
        return {name: unquote(value) for name, value in found.groupdict().items()} if found else None


@dataclass(frozen=True)
class QueueSource:
    """An SQS event source mapping: `function` gets batches of up to `batch_size` messages of `queue` (logical id)."""

    function: str
    queue: str
    batch_size: int
    report_batch_item_failures: bool
    max_concurrency: int = 5  # ScalingConfig.MaximumConcurrency (Lambda starts with 5 pollers' worth)


@dataclass(frozen=True)
class StreamSource:
    """A DynamoDB Stream event source mapping: `function` gets the new records of `table` (logical id) that match one
    of `patterns` (its FilterCriteria), up to `batch_size` at a time."""

    function: str
    table: str
    batch_size: int
    patterns: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class ScheduleSource:
    """A Schedule event: `function` runs every `seconds` (`rate(...)`)."""

    function: str
    seconds: int


@dataclass(frozen=True)
class GatewayAnswer:
    """An answer API Gateway gives by itself (GatewayResponses)."""

    status: int
    headers: dict[str, str]
    body: bytes


class Template:
    def __init__(
        self,
        path: Path = TEMPLATE_PATH,
        *,
        parameters: dict[str, str] | None = None,
        region: str = LOCAL_REGION,
        name_prefix: str = "local",
    ) -> None:
        self.path = path
        self.doc: dict[str, Any] = cfn_yaml.load(str(path))
        self.region = region
        self.name_prefix = name_prefix
        self.parameters = {name: str(spec.get("Default", "")) for name, spec in self.doc.get("Parameters", {}).items()}
        self.parameters.update(parameters or {})

    # -- resources -----------------------------------------------------------------------------------------------
    def resources(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.doc["Resources"].items() if res["Type"] == type_name}

    def physical_name(self, logical_id: str) -> str:
        return f"{self.name_prefix}-{logical_id}"

    def table_definitions(self) -> list[dict[str, Any]]:
        """create_table(**kwargs) for every AWS::DynamoDB::Table, exactly as the template defines it."""
        tables = []
        for logical_id, resource in self.resources("AWS::DynamoDB::Table").items():
            props = resource["Properties"]
            definition: dict[str, Any] = {
                "TableName": self.physical_name(logical_id),
                "AttributeDefinitions": _plain(props["AttributeDefinitions"]),
                "KeySchema": _plain(props["KeySchema"]),
                "BillingMode": str(props.get("BillingMode", "PAY_PER_REQUEST")),
            }
            if "GlobalSecondaryIndexes" in props:
                definition["GlobalSecondaryIndexes"] = _plain(props["GlobalSecondaryIndexes"])
            if "StreamSpecification" in props:
                view = str(props["StreamSpecification"]["StreamViewType"])
                definition["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
            tables.append(definition)
        return tables

    def ttl_attributes(self) -> dict[str, str]:
        """Table name -> TTL attribute."""
        return {
            self.physical_name(logical_id): str(res["Properties"]["TimeToLiveSpecification"]["AttributeName"])
            for logical_id, res in self.resources("AWS::DynamoDB::Table").items()
            if "TimeToLiveSpecification" in res["Properties"]
        }

    # -- functions and routes --------------------------------------------------------------------------------------
    def functions(self) -> dict[str, FunctionSpec]:
        globals_ = self.doc.get("Globals", {}).get("Function", {})
        global_env = globals_.get("Environment", {}).get("Variables", {})
        specs = {}
        for logical_id, resource in self.resources("AWS::Serverless::Function").items():
            props = resource["Properties"]
            env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_dir=self.path.parent / str(props["CodeUri"]),
                handler=str(props["Handler"]),
                environment={k: str(self.resolve(v)) for k, v in env.items()},
                timeout_seconds=int(props.get("Timeout", globals_.get("Timeout", 3))),
            )
        return specs

    def routes(self) -> list[Route]:
        found = []
        for logical_id, resource in self.resources("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] == "Api":
                    props = event["Properties"]
                    found.append(
                        Route(method=str(props["Method"]).upper(), path=str(props["Path"]), function=logical_id)
                    )
        return found

    def queue_sources(self) -> list[QueueSource]:
        found = []
        for logical_id, resource in self.resources("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] == "SQS":
                    props = event["Properties"]
                    queue_logical_id = str(props["Queue"]["Fn::GetAtt"][0])
                    found.append(
                        QueueSource(
                            function=logical_id,
                            queue=queue_logical_id,
                            batch_size=int(props.get("BatchSize", 10)),
                            report_batch_item_failures="ReportBatchItemFailures"
                            in [str(t) for t in props.get("FunctionResponseTypes", [])],
                            max_concurrency=int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 5)),
                        )
                    )
        return found

    def stream_sources(self) -> list[StreamSource]:
        found = []
        for logical_id, resource in self.resources("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] == "DynamoDB":
                    props = event["Properties"]
                    filters = props.get("FilterCriteria", {}).get("Filters", [])
                    found.append(
                        StreamSource(
                            function=logical_id,
                            table=str(props["Stream"]["Fn::GetAtt"][0]),
                            batch_size=int(props.get("BatchSize", 100)),
                            patterns=tuple(json.loads(str(f["Pattern"])) for f in filters),
                        )
                    )
        return found

    def schedule_sources(self) -> list[ScheduleSource]:
        units = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
        found = []
        for logical_id, resource in self.resources("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] == "Schedule":
                    rate = re.fullmatch(r"rate\((\d+) (\w+)\)", str(event["Properties"]["Schedule"]))
                    if rate is None:
                        raise ValueError(f"template.yaml: {logical_id}: only rate(...) schedules run locally")
                    found.append(ScheduleSource(logical_id, int(rate.group(1)) * units[rate.group(2)]))
        return found

    def bucket_names(self) -> list[str]:
        return [self.bucket_name(logical_id) for logical_id in self.resources("AWS::S3::Bucket")]

    def bucket_name(self, logical_id: str) -> str:
        return self.physical_name(logical_id).lower()  # S3 takes lower case only

    def queue_definitions(self) -> list[dict[str, Any]]:
        """create_queue(**kwargs) for every AWS::SQS::Queue, dead-letter queues first (the others name them)."""
        queues = []
        for logical_id, resource in self.resources("AWS::SQS::Queue").items():
            props = resource.get("Properties", {})
            attributes = {
                name: str(props[name]) for name in ("VisibilityTimeout", "MessageRetentionPeriod") if name in props
            }
            if "RedrivePolicy" in props:
                policy = props["RedrivePolicy"]
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": self.resolve(policy["deadLetterTargetArn"]),
                        "maxReceiveCount": int(policy["maxReceiveCount"]),
                    }
                )
            queues.append({"QueueName": self.physical_name(logical_id), "Attributes": attributes})
        return sorted(queues, key=lambda q: "RedrivePolicy" in q["Attributes"])

    def queue_url(self, logical_id: str) -> str:
        return f"https://sqs.{self.region}.amazonaws.com/{LOCAL_ACCOUNT}/{self.physical_name(logical_id)}"

    def api_properties(self) -> dict[str, Any]:
        (api,) = self.resources("AWS::Serverless::Api").values()
        return dict(api["Properties"])

    def binary_media_types(self) -> list[str]:
        """The API's BinaryMediaTypes, SAM's `~1` read as `/`."""
        return [str(t).replace("~1", "/") for t in self.api_properties().get("BinaryMediaTypes", [])]

    def gateway_response(self, response_type: str, message: str, default_status: int) -> GatewayAnswer:
        """What API Gateway answers by itself (an unknown route, a body too large): the template's GatewayResponses
        entry for `response_type`, else its DEFAULT_4XX / DEFAULT_5XX, with `$context.error.messageString` filled in
        and its `ResponseParameters` headers (static values, quoted as API Gateway wants them: `"'no-store'"`)."""
        responses = self.api_properties().get("GatewayResponses", {})
        fallback = "DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX"
        spec = responses.get(response_type) or responses.get(fallback) or {}
        template = str(
            spec.get("ResponseTemplates", {}).get("application/json", '{"message": $context.error.messageString}')
        )
        body = template.replace("$context.error.messageString", json.dumps(message))
        headers = {"Content-Type": "application/json"}
        for name, value in spec.get("ResponseParameters", {}).get("Headers", {}).items():
            headers[str(name)] = str(value).strip("'")
        return GatewayAnswer(int(spec.get("StatusCode", default_status)), headers, body.encode())

    def layer_dirs(self) -> list[Path]:
        return [
            self.path.parent / str(res["Properties"]["ContentUri"])
            for res in self.resources("AWS::Serverless::LayerVersion").values()
        ]

    # -- intrinsic functions ---------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((name, arg),) = value.items()
            if name == "Ref":
                return self._ref(str(arg))
            if name == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub_var(m.group(1)), str(arg))
            if name == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self._get_att(str(logical_id), str(attribute))
            if name == "Fn::If":  # [condition, value if true, value if false], as the stack's parameters decide
                condition, when_true, when_false = arg
                return self.resolve(when_true if self.condition(str(condition)) else when_false)
        return value

    def condition(self, name: str) -> bool:
        """A condition of the template's Conditions, for this template's parameters (Equals, Not, And, Or)."""
        return self._holds(self.doc["Conditions"][name])

    def _holds(self, expression: Any) -> bool:
        ((name, arg),) = expression.items()
        if name == "Fn::Equals":
            left, right = (str(self.resolve(side)) for side in arg)
            return left == right
        if name == "Fn::Not":
            return not self._holds(arg[0])
        if name == "Fn::And":
            return all(self._holds(part) for part in arg)
        if name == "Fn::Or":
            return any(self._holds(part) for part in arg)
        if name == "Condition":
            return self.condition(str(arg))
        raise KeyError(f"template.yaml: condition function {name} is not known to the local stack")

    def _ref(self, name: str) -> str:
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": LOCAL_ACCOUNT, "AWS::Partition": "aws"}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.doc["Resources"]:
            if self.doc["Resources"][name]["Type"] == "AWS::SQS::Queue":
                return self.queue_url(name)  # a queue's Ref is its URL
            if self.doc["Resources"][name]["Type"] == "AWS::S3::Bucket":
                return self.bucket_name(name)
            return self.physical_name(name)
        raise KeyError(f"template.yaml: unknown Ref {name}")

    def _sub_var(self, name: str) -> str:
        return self._get_att(*name.split(".", 1)) if "." in name else self._ref(name)

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "Arn" and self.doc["Resources"][logical_id]["Type"] == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{self.region}:{LOCAL_ACCOUNT}:table/{self.physical_name(logical_id)}"
        if attribute == "Arn" and self.doc["Resources"][logical_id]["Type"] == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{self.region}:{LOCAL_ACCOUNT}:{self.physical_name(logical_id)}"
        if attribute == "Arn" and self.doc["Resources"][logical_id]["Type"] == "AWS::S3::Bucket":
            return f"arn:aws:s3:::{self.bucket_name(logical_id)}"
        raise KeyError(f"template.yaml: GetAtt {logical_id}.{attribute} is not known to the local stack")


def _plain(value: Any) -> Any:
    """cfn-lint nodes -> plain dict/list/str for boto3."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, str) else value


def create_tables(dynamodb_client: Any, template: Template) -> list[str]:
    """Create every table of the template (idempotent: existing tables are kept). Returns the table names."""
    existing = set(dynamodb_client.list_tables().get("TableNames", []))
    for definition in template.table_definitions():
        if definition["TableName"] not in existing:
            dynamodb_client.create_table(**definition)
    for table, attribute in template.ttl_attributes().items():
        dynamodb_client.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
        )
    return [d["TableName"] for d in template.table_definitions()]


def create_queues(sqs_client: Any, template: Template, *, visibility_timeout: int | None = None) -> list[str]:
    """Create every queue of the template (idempotent: create_queue with the same attributes). Returns the names.

    `visibility_timeout` overrides the template's (tests that must not wait a minute for a failed message)."""
    for definition in template.queue_definitions():
        if visibility_timeout is not None:
            definition["Attributes"]["VisibilityTimeout"] = str(visibility_timeout)
        sqs_client.create_queue(**definition)
    return [d["QueueName"] for d in template.queue_definitions()]


def create_buckets(s3_client: Any, template: Template) -> list[str]:
    """Create every bucket of the template (idempotent). Returns the names."""
    existing = {b["Name"] for b in s3_client.list_buckets().get("Buckets", [])}
    for name in template.bucket_names():
        if name not in existing:
            s3_client.create_bucket(Bucket=name)
    return template.bucket_names()
