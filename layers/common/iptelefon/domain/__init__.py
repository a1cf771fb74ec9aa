"""The domain: what a call, a client, a phone and a project are, and the rules about them. No I/O: nothing here
imports boto3, botocore or httpx (an import-linter contract in pyproject.toml checks it).
"""
