"""The use cases: the webhook, the calls, the reads and the admin's settings. Each receives what it talks to (the
repositories and the PBX, see `ports`) from its caller; none imports `data` or `adapters`.
"""
