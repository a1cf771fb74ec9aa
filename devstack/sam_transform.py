"""Print template.yaml as SAM transforms it for CloudFormation (JSON), offline: what `sam deploy` would create.

Runs in the tools virtualenv, where aws-sam-cli brings the SAM translator:
`.venv-tools/bin/python -m devstack.sam_transform`.
Code locations become placeholder S3 URIs (the translator wants them; `sam package` fills in the real ones).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def transformed(stage: str = "dev") -> dict[str, Any]:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    doc = yaml_parse((ROOT / "template.yaml").read_text())
    for resource in doc["Resources"].values():
        for uri in ("CodeUri", "ContentUri"):
            if uri in resource.get("Properties", {}):
                resource["Properties"][uri] = "s3://placeholder-bucket/placeholder-key"

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    result: dict[str, Any] = transform(doc, {"Stage": stage}, NoManagedPolicies())
    return result


if __name__ == "__main__":
    json.dump(transformed(*sys.argv[1:2]), sys.stdout, indent=1, default=str)
