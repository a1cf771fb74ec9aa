"""The committed deploy configuration: samconfig.toml's dev and prod environments and the example pipeline
(.github/workflows/deploy.yml) that deploys dev, smoke-tests it, then prod. Both must agree with template.yaml."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from typing import Any

import pytest
import yaml

from devstack.template import ROOT, Template

SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
PIPELINE = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
TEMPLATE = Template()


def overrides(environment: str) -> dict[str, str]:
    pairs = shlex.split(SAMCONFIG[environment]["deploy"]["parameters"]["parameter_overrides"])
    return dict(pair.split("=", 1) for pair in pairs)


def test_samconfig_is_committed_not_ignored() -> None:
    patterns = (ROOT / ".gitignore").read_text().split()
    assert not [p for p in patterns if fnmatch.fnmatch("samconfig.toml", p.strip("/"))]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_each_environment_deploys_its_own_stack_and_stage(environment: str) -> None:
    deploy = SAMCONFIG[environment]["deploy"]["parameters"]
    assert deploy["stack_name"] == f"iptelefon-connector-{environment}"  # what `iptel --stage` looks up
    assert overrides(environment)["Stage"] == environment
    assert "CAPABILITY_IAM" in deploy["capabilities"]  # the functions' roles and CodeDeploy's


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_each_environments_parameters_are_the_templates_and_pass_its_rules(environment: str) -> None:
    # Given the environment's parameter overrides and the template's parameters
    parameters: dict[str, Any] = TEMPLATE.doc["Parameters"]

    # Then each names a parameter of the template, with a value its rules accept (what CloudFormation would check)
    for name, value in overrides(environment).items():
        assert name in parameters, name
        spec = parameters[name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], (name, value)
        if "AllowedPattern" in spec:
            assert re.fullmatch(str(spec["AllowedPattern"]), value), (name, value)
        if spec.get("Type") == "Number":
            assert float(value) >= float(spec.get("MinValue", float("-inf"))), (name, value)


def test_prod_has_the_stable_domain_and_the_alarm_email() -> None:
    prod = overrides("prod")
    assert prod["DomainName"] and prod["CertificateArn"].startswith("arn:aws:acm:")
    assert prod["AlarmEmail"]
    assert "DomainName" not in overrides("dev")  # dev may live on its execute-api URL


def run_lines(job: dict[str, Any]) -> list[str]:
    return [step.get("run", "") for step in job["steps"]]


def test_the_pipeline_deploys_dev_smoke_tests_it_then_prod() -> None:
    # Given the pipeline's jobs
    jobs = PIPELINE["jobs"]

    # Then prod waits for dev (whose last step is the smoke test) and for a person's approval
    assert jobs["dev"]["needs"] == "test"
    assert jobs["prod"]["needs"] == "dev"
    assert jobs["prod"]["environment"] == "production"
    for stage in ("dev", "prod"):
        lines = run_lines(jobs[stage])
        deploy = next(i for i, line in enumerate(lines) if "sam deploy" in line)
        smoke = next(i for i, line in enumerate(lines) if "devstack.smoke" in line)
        assert f"--config-env {stage}" in lines[deploy]
        assert "make build" in " ".join(lines[:deploy])  # the bytecode build, never a bare sam build
        assert deploy < smoke == len(lines) - 1
        assert f"iptelefon-connector-{stage}" in lines[smoke]
    assert (ROOT / "devstack" / "smoke.py").is_file()


CHECKOV_CONFIG = yaml.safe_load((ROOT / ".checkov.yaml").read_text())


def test_every_checkov_skip_is_triaged_in_the_readme_with_its_reason() -> None:
    # Given the checks .checkov.yaml skips for the whole template, and the ones skipped on one resource
    readme = (ROOT / "README.md").read_text()
    global_skips = CHECKOV_CONFIG["skip-check"]
    resource_skips = [
        skip["id"]
        for resource in TEMPLATE.doc["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]

    # Then each has a row in the README's triage table, and every one on a resource says why
    assert global_skips and resource_skips
    for check_id in [*global_skips, *resource_skips]:
        assert re.search(rf"^\| {check_id} \| .+ \| .+ \|$", readme, flags=re.MULTILINE), check_id
    assert all(
        skip.get("comment")
        for resource in TEMPLATE.doc["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    )
    # and it runs offline, on the template
    assert CHECKOV_CONFIG["skip-download"] is True
    assert CHECKOV_CONFIG["file"] == ["template.yaml"]
