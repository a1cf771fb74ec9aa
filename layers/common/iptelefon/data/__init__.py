"""Data access: the storage gateway (`gateway`, the only code that talks to DynamoDB) and the repositories built on it,
the PBX settings in SSM, the webhook inbox in SQS. Every AWS error becomes a domain outcome here.
"""
