from typing import Any


def describe(pid: int, name: str, remaining_ms: int) -> dict[str, Any]:
    return {"pid": pid, "name": name, "remaining_ms": remaining_ms}
