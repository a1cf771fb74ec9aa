"""Faults: the real handlers while DynamoDB (a moto server on loopback, `dynamodb_server`) or SSM fail on purpose."""

from __future__ import annotations

from fixtures.dynamodb_server import dynamodb_server
from fixtures.pbx import fake_pbx
from fixtures.projects import admin_target, lambda_context, project

__all__ = ["admin_target", "dynamodb_server", "fake_pbx", "lambda_context", "project"]
