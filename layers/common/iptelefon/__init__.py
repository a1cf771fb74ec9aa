"""Shared domain of iptelefon-connector: phones, matching, storage, secrets, PBX client, models.

Shipped to every function as one Lambda layer (layers/common/ in template.yaml).
"""
