"""What a team needs to run the stack, proven on the template SAM deploys (the transformed one, `fixtures.deployed`):
logs with retention, an access log without the secret path, alarms on every function, queue and table, one dashboard,
gradual deploys that roll back on those alarms, per-route throttles, reserved concurrency, the optional domain, tags.

Each check walks every function, queue or table of the template: a new one without its alarms, log group or
deployment preference fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fixtures.deployed import deployed, resources_of

from devstack.template import Template

ALIAS = "live"
CANARY = "Canary10Percent5Minutes"
LINEAR = "Linear10PercentEvery1Minute"


def resources() -> dict[str, Any]:
    return dict(deployed()["Resources"])


def functions() -> dict[str, Any]:
    return resources_of("AWS::Lambda::Function")


def alarms() -> dict[str, Any]:
    return resources_of("AWS::CloudWatch::Alarm")


def dimension(alarm: dict[str, Any], name: str) -> Any:
    found = [d["Value"] for d in alarm["Properties"].get("Dimensions", []) if d["Name"] == name]
    return found[0] if found else None


def alarms_on(namespace: Any, metric: str, dimension_name: str, value: Any) -> list[dict[str, Any]]:
    """The alarms on one metric (directly, or inside a metric-math alarm) for one dimension value."""
    found = []
    for alarm in alarms().values():
        props = alarm["Properties"]
        direct = (props.get("Namespace"), props.get("MetricName")) == (namespace, metric)
        if direct and dimension(alarm, dimension_name) == value:
            found.append(props)
        for query in props.get("Metrics", []):
            stat = query.get("MetricStat", {}).get("Metric", {})
            dims = {d["Name"]: d["Value"] for d in stat.get("Dimensions", [])}
            if (stat.get("Namespace"), stat.get("MetricName")) == (namespace, metric) and dims.get(
                dimension_name
            ) == value:
                found.append(props)
    return found


def the_only(found: list[dict[str, Any]], what: str) -> dict[str, Any]:
    assert len(found) == 1, f"{what}: {len(found)} alarms"
    return found[0]


def function_timeout(logical_id: str) -> int:
    return int(functions()[logical_id]["Properties"]["Timeout"])


def globals_env() -> dict[str, Any]:
    env: dict[str, Any] = functions()["WebhookFunction"]["Properties"]["Environment"]["Variables"]
    return env


def stage() -> dict[str, Any]:
    (found,) = resources_of("AWS::ApiGateway::Stage").values()
    return dict(found["Properties"])


# --- logs ------------------------------------------------------------------------------------------------------------


def test_the_log_retention_is_a_parameter_of_30_days_by_default() -> None:
    assert deployed()["Parameters"]["LogRetentionDays"]["Default"] == 30


@pytest.mark.parametrize("logical_id", sorted(Template().functions()))
def test_every_function_logs_json_to_its_own_log_group_with_retention(logical_id: str) -> None:
    # Given a function as deployed
    logging = functions()[logical_id]["Properties"].get("LoggingConfig", {})

    # When its logging configuration and the log group it names are read
    group_ref = logging.get("LogGroup", {}).get("Ref")
    group = resources().get(group_ref, {})

    # Then it writes JSON to a log group of the stack kept LogRetentionDays, used by no other function
    assert logging.get("LogFormat") == "JSON"
    assert group.get("Type") == "AWS::Logs::LogGroup", f"{logical_id}: no log group of its own"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    users = [
        f
        for f, r in functions().items()
        if r["Properties"].get("LoggingConfig", {}).get("LogGroup") == {"Ref": group_ref}
    ]
    assert users == [logical_id]


def test_the_access_log_records_the_route_never_the_path_with_the_secret() -> None:
    # Given the deployed stage's access log setting
    setting = stage()["AccessLogSetting"]
    log_format = setting["Format"]

    # When its format and destination are read
    destination = resources()[setting["DestinationArn"]["Fn::GetAtt"][0]]

    # Then it names the route's pattern and the status, never the request path (it holds the webhook secret)
    assert "$context.resourcePath" in log_format and "$context.status" in log_format
    variables = set(re.findall(r"\$context\.[A-Za-z.]+", log_format))
    assert "$context.path" not in variables
    assert not [v for v in variables if v.endswith(".path") or "requestOverride" in v]
    # in a log group with the same retention
    assert destination["Type"] == "AWS::Logs::LogGroup"
    assert destination["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # and no execution log or data trace (they would print the path and bodies)
    for method_setting in stage()["MethodSettings"]:
        assert method_setting.get("LoggingLevel", "OFF") == "OFF"
        assert not method_setting.get("DataTraceEnabled", False)


def test_the_api_gateway_account_role_is_created_only_when_asked() -> None:
    # Given the one-time account setting the access log needs
    account = resources()["ApiGatewayAccount"]
    role = resources()[account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]]
    # Then both are behind the parameter's condition (one stack per account and region owns them), off by default
    assert account["Condition"] == role["Condition"] == "CreatesApiGatewayAccount"
    assert deployed()["Conditions"]["CreatesApiGatewayAccount"] == {
        "Fn::Equals": [{"Ref": "CreateApiGatewayAccount"}, "true"]
    }
    assert deployed()["Parameters"]["CreateApiGatewayAccount"]["Default"] == "false"
    # and the API (its stage's access log) waits for the account setting when the stack makes it
    ready = resources()["ApiGatewayAccountReady"]
    assert ready["Metadata"]["WaitsFor"] == {"Fn::If": ["CreatesApiGatewayAccount", {"Ref": "ApiGatewayAccount"}, ""]}
    (api_id,) = resources_of("AWS::ApiGateway::RestApi")
    assert "ApiGatewayAccountReady" in resources()[api_id]["DependsOn"]


# --- alarms ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(Template().functions()))
def test_every_function_has_errors_throttles_and_duration_alarms(logical_id: str) -> None:
    # Given a function as deployed and its timeout
    ref = {"Ref": logical_id}
    timeout_ms = function_timeout(logical_id) * 1000

    # When the alarms on its Lambda metrics are looked up
    errors = the_only(alarms_on("AWS/Lambda", "Errors", "FunctionName", ref), f"{logical_id} Errors")
    throttles = the_only(alarms_on("AWS/Lambda", "Throttles", "FunctionName", ref), f"{logical_id} Throttles")
    duration = the_only(alarms_on("AWS/Lambda", "Duration", "FunctionName", ref), f"{logical_id} Duration")

    # Then any error or throttle in a minute fires, and the p99 duration fires near (not at) the timeout
    for alarm in (errors, throttles):
        assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
            "Sum",
            0,
            "GreaterThanThreshold",
        )
        assert alarm["Period"] == 60
    assert duration["ExtendedStatistic"] == "p99"
    assert 0.7 * timeout_ms <= duration["Threshold"] < timeout_ms


def dead_letter_queues() -> list[str]:
    targets = [
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in resources_of("AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    ]
    return sorted(set(targets))


def event_sources(kind: str) -> list[tuple[str, str]]:
    """(source, function) of every event source mapping from a resource of type `kind` (a queue, a table's stream)."""
    found = []
    for mapping in resources_of("AWS::Lambda::EventSourceMapping").values():
        props = mapping["Properties"]
        source = props["EventSourceArn"]["Fn::GetAtt"][0]
        function = re.sub(r"Alias\w+$", "", props["FunctionName"]["Ref"])  # SAM's alias: <Function>Alias<name>
        if resources()[source]["Type"] == kind:
            found.append((source, function))
    return sorted(found)


def consumed_queues() -> list[tuple[str, str]]:
    """The queues a function works through."""
    return event_sources("AWS::SQS::Queue")


def test_the_template_has_dead_letter_queues_and_consumed_queues() -> None:
    # (the two tests below walk them: make sure there is something to walk)
    assert "WebhookInboxDeadLetters" in dead_letter_queues()
    assert ("WebhookInbox", "InboxFunction") in consumed_queues()
    assert ("MainTable", "EventsFunction") in event_sources("AWS::DynamoDB::Table")


@pytest.mark.parametrize("queue", dead_letter_queues())
def test_every_dead_letter_queue_alarms_on_its_first_message(queue: str) -> None:
    name = {"Fn::GetAtt": [queue, "QueueName"]}
    alarm = the_only(alarms_on("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", name), queue)
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Maximum",
        0,
        "GreaterThanThreshold",
    )


@pytest.mark.parametrize(("queue", "function"), consumed_queues())
def test_every_consumed_queue_alarms_when_a_message_waits_over_5_minutes(queue: str, function: str) -> None:
    name = {"Fn::GetAtt": [queue, "QueueName"]}
    alarm = the_only(alarms_on("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", name), queue)
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Maximum",
        300,
        "GreaterThanThreshold",
    )


@pytest.mark.parametrize(("table", "function"), event_sources("AWS::DynamoDB::Table"))
def test_every_stream_reader_alarms_when_it_falls_5_minutes_behind(table: str, function: str) -> None:
    alarm = the_only(alarms_on("AWS/Lambda", "IteratorAge", "FunctionName", {"Ref": function}), function)
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Maximum",
        300_000,
        "GreaterThanThreshold",
    )


@pytest.mark.parametrize(("queue", "function"), consumed_queues())
def test_a_consumed_queue_hides_a_message_for_6_times_its_consumers_timeout(queue: str, function: str) -> None:
    # AWS's advice for an SQS event source: a batch being retried never comes back while it still runs
    visibility = resources()[queue]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * function_timeout(function)


@pytest.mark.parametrize("metric", ["WebhookQueued", "WebhookRejected"])
def test_the_webhooks_own_metrics_have_alarms_in_the_namespace_the_code_writes(metric: str) -> None:
    # Given the namespace and service the functions' Powertools Metrics write with (their environment)
    namespace = globals_env()["POWERTOOLS_METRICS_NAMESPACE"]
    service = globals_env()["POWERTOOLS_SERVICE_NAME"]

    # When the alarm on the metric is looked up there
    alarm = the_only(alarms_on(namespace, metric, "service", service), metric)

    # Then one such webhook in 5 minutes fires it; the namespace is the stage's (dev and prod do not mix)
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
    assert namespace == {"Fn::Sub": "IptelefonConnector/${Stage}"}


def test_the_api_alarms_on_a_5xx_rate() -> None:
    # Given the REST API as deployed (its name and stage are the metric's dimensions)
    (api,) = resources_of("AWS::ApiGateway::RestApi").values()
    # When the 5XXError alarm for that name is looked up
    alarm = the_only(alarms_on("AWS/ApiGateway", "5XXError", "ApiName", api["Properties"]["Name"]), "5XX")
    # Then it fires when over 5 % of the stage's answers are 5XX (the metric's average is the share)
    assert dimension({"Properties": alarm}, "Stage") == stage()["StageName"]
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Average", 0.05)


@pytest.mark.parametrize("table", sorted(resources_of("AWS::DynamoDB::Table")))
@pytest.mark.parametrize("metrics", [("ReadThrottleEvents", "WriteThrottleEvents"), ("SystemErrors",)])
def test_every_table_alarms_on_throttles_and_system_errors(table: str, metrics: tuple[str, ...]) -> None:
    found = {id(a): a for m in metrics for a in alarms_on("AWS/DynamoDB", m, "TableName", {"Ref": table})}
    (alarm,) = found.values()
    # one metric-math alarm sums them (per operation for SystemErrors): any in a minute fires
    (total,) = [q for q in alarm["Metrics"] if q.get("ReturnData", True)]
    assert total["Expression"] == "SUM(METRICS())"
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_every_alarm_notifies_the_topic_and_an_email_is_optional() -> None:
    # Given the alarm topic and its optional e-mail subscription
    (topic_id,) = resources_of("AWS::SNS::Topic")
    (subscription,) = resources_of("AWS::SNS::Subscription").values()
    # Then every alarm notifies the topic when it fires and when it clears
    for name, alarm in alarms().items():
        assert {"Ref": topic_id} in alarm["Properties"]["AlarmActions"], name
        assert {"Ref": topic_id} in alarm["Properties"]["OKActions"], name
    # and the e-mail subscription exists only when AlarmEmail is given
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": topic_id}
    assert deployed()["Parameters"]["AlarmEmail"]["Default"] == ""


def test_one_dashboard_shows_every_function_queue_and_table() -> None:
    (dashboard,) = resources_of("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    for function in functions():
        assert f"${{{function}}}" in body, function
    for queue in resources_of("AWS::SQS::Queue"):
        assert f"${{{queue}.QueueName}}" in body, queue
    for table in resources_of("AWS::DynamoDB::Table"):
        assert f"${{{table}}}" in body, table


# --- safe deploys ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(Template().functions()))
def test_every_function_deploys_gradually_behind_its_alias_and_rolls_back_on_its_alarms(logical_id: str) -> None:
    # Given the function's alias and CodeDeploy deployment group as deployed
    (alias,) = [
        a for a in resources_of("AWS::Lambda::Alias").values() if a["Properties"]["FunctionName"] == {"Ref": logical_id}
    ]
    group = resources()[f"{logical_id}DeploymentGroup"]  # SAM's name for it
    assert group["Type"] == "AWS::CodeDeploy::DeploymentGroup"
    props = group["Properties"]
    config = props["DeploymentConfigName"]["Fn::Sub"][1]["ConfigName"]

    # Then the alias is `live`, the shift is a canary for the webhook and linear for the rest
    assert alias["Properties"]["Name"] == ALIAS
    assert config == (CANARY if logical_id == "WebhookFunction" else LINEAR)
    # and the function's own Errors alarm stops and rolls the deploy back
    assert props["AlarmConfiguration"]["Enabled"] is True
    assert "DEPLOYMENT_STOP_ON_ALARM" in props["AutoRollbackConfiguration"]["Events"]
    triggers = [alarms()[a["Name"]["Ref"]]["Properties"] for a in props["AlarmConfiguration"]["Alarms"]]
    assert any(
        t.get("MetricName") == "Errors" and dimension({"Properties": t}, "FunctionName") == {"Ref": logical_id}
        for t in triggers
    )


def test_the_api_calls_the_aliases_never_latest() -> None:
    # Given the deployed API's integrations
    (api,) = resources_of("AWS::ApiGateway::RestApi").values()
    uris = [
        operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        for path in api["Properties"]["Body"]["paths"].values()
        for operation in path.values()
    ]
    # Then every one invokes a function's `live` alias (what CodeDeploy shifts)
    assert uris
    assert all(re.search(rf"\$\{{\w+FunctionAlias{ALIAS}\}}/invocations$", uri) for uri in uris), uris


# --- capacity and protection -----------------------------------------------------------------------------------------


def test_the_webhook_can_reserve_concurrency_by_parameter() -> None:
    reserved = functions()["WebhookFunction"]["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == {
        "Fn::If": ["ReservesWebhookConcurrency", {"Ref": "WebhookReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert deployed()["Conditions"]["ReservesWebhookConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "WebhookReservedConcurrency"}, "0"]}]
    }
    others = [f for f, r in functions().items() if "ReservedConcurrentExecutions" in r["Properties"]]
    assert others == ["WebhookFunction"]


def throttle(path: str, method: str) -> tuple[float, float]:
    """The (rate, burst) API Gateway applies to `method path`: its own MethodSettings entry, else the stage's "/*"."""
    encoded = "/" + path.replace("/", "~1")  # API Gateway's ResourcePath: `/` then the path with `/` as `~1`
    for setting in stage()["MethodSettings"]:
        if setting["ResourcePath"] == encoded and setting["HttpMethod"] in (method, "*"):
            return setting["ThrottlingRateLimit"], setting["ThrottlingBurstLimit"]
    (default,) = [s for s in stage()["MethodSettings"] if s["ResourcePath"] == "/*"]
    return default["ThrottlingRateLimit"], default["ThrottlingBurstLimit"]


BOT_ROUTES = [
    ("POST", "/v1/calls/employee"),
    ("POST", "/v1/calls/group"),
    ("POST", "/v1/clients/{client_id}/call"),
    ("GET", "/v1/calls"),
    ("GET", "/v1/calls/{call_id}"),
    ("GET", "/v1/clients"),
]


def test_the_webhook_bots_and_console_have_separate_throttles() -> None:
    # Given the throttle of every route of the template
    routes = {(r.method, r.path): throttle(r.path, r.method) for r in Template().routes()}
    webhook = {routes[("POST", "/iptelefon_webhook/{secret}")], routes[("GET", "/iptelefon_webhook/{secret}")]}
    bots = {routes[route] for route in BOT_ROUTES}
    console = {routes[r] for r in routes if r[1].startswith(("/console", "/v1/settings", "/v1/employees", "/v1/me"))}

    # Then the three groups are throttled apart, the webhook (the PBX, every tenant's calls) the highest
    (webhook_limit,) = webhook
    assert len(console) == 1
    (console_limit,) = console
    assert webhook_limit > max(bots) and min(bots) > console_limit
    # and every per-route entry names a real route of the template (a typo would silently fall back to "/*")
    paths = {"/" + r.path.replace("/", "~1") for r in Template().routes()}
    for setting in stage()["MethodSettings"]:
        assert setting["ResourcePath"] == "/*" or setting["ResourcePath"] in paths, setting["ResourcePath"]


def test_the_main_table_is_protected_from_deletion() -> None:
    main = resources()["MainTable"]
    assert main["Properties"]["DeletionProtectionEnabled"] is True
    assert main["DeletionPolicy"] == main["UpdateReplacePolicy"] == "Retain"


# Types CloudFormation can tag but SAM gives no way to: the event source mapping SAM makes of a function's SQS or
# stream event, and the rule it makes of a Schedule event (PropagateTags reaches neither in aws-sam-cli 1.170, and
# the Schedule event has no Tags property).
UNTAGGABLE_HERE = {"AWS::Lambda::EventSourceMapping", "AWS::Events::Rule"}


def test_every_taggable_resource_carries_the_stage_and_service_tags() -> None:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    # Given every resource SAM deploys whose CloudFormation type has Tags
    untagged = []
    for name, resource in resources().items():
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource["Type"]).schema
        if "Tags" not in schema.get("properties", {}) or resource["Type"] in UNTAGGABLE_HERE:
            continue
        # When its tags are read (a list of Key/Value, or SAM's map)
        tags = resource["Properties"].get("Tags", [])
        keys = {t["Key"]: t["Value"] for t in tags} if isinstance(tags, list) else dict(tags)
        # Then it has stage and service
        if keys.get("stage") != {"Ref": "Stage"} or keys.get("service") != "iptelefon-connector":
            untagged.append(f"{name} ({resource['Type']})")
    assert untagged == []


# --- the stable domain -----------------------------------------------------------------------------------------------


def test_the_domain_its_mapping_and_record_exist_only_when_asked() -> None:
    # Given the optional domain resources
    domain = resources()["ApiDomain"]
    mapping = resources()["ApiBasePathMapping"]
    record = resources()["ApiDomainRecord"]
    (api_id,) = resources_of("AWS::ApiGateway::RestApi")

    # Then a REGIONAL domain maps its root to the API's stage, and Route 53 points to it when a zone is given
    assert domain["Condition"] == mapping["Condition"] == "HasDomain"
    assert record["Condition"] == "HasHostedZone"
    assert domain["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert domain["Properties"]["RegionalCertificateArn"] == {"Ref": "CertificateArn"}
    assert mapping["Properties"]["RestApiId"] == {"Ref": api_id}
    assert "BasePath" not in mapping["Properties"]  # the root: https://<domain>/v1/...
    assert record["Properties"]["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["ApiDomain", "RegionalDomainName"]}
    (api,) = resources_of("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}


def test_the_urls_handed_out_use_the_domain_when_it_is_set() -> None:
    # Given the stack with and without a domain
    with_domain = Template(parameters={"Stage": "prod", "DomainName": "pbx.example.com"})
    without = Template(parameters={"Stage": "prod"})

    # When the outputs the CLI reads (ApiUrl) and the functions' PUBLIC_BASE_URL are resolved
    outputs = with_domain.doc["Outputs"]

    # Then with a domain they are the domain; without, the execute-api URL (the request's own host)
    assert with_domain.resolve(outputs["ApiUrl"]["Value"]) == "https://pbx.example.com"
    assert with_domain.resolve(outputs["WebhookUrlPattern"]["Value"]) == (
        "https://pbx.example.com/iptelefon_webhook/<secret>"
    )
    assert with_domain.functions()["AdminApiFunction"].environment["PUBLIC_BASE_URL"] == "https://pbx.example.com"
    assert without.functions()["AdminApiFunction"].environment["PUBLIC_BASE_URL"] == ""
    assert "execute-api" in without.resolve(without.doc["Outputs"]["ApiUrl"]["Value"])
