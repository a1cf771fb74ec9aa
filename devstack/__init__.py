"""Local stack: the PBX simulator and the helpers behind `make run` (never deployed)."""
