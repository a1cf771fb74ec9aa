"""Adapters to the world outside AWS: the PBX (`pbx`, the one ZEON/Iptelefon HTTP client)."""
