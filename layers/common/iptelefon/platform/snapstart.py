"""SnapStart priming (template parameter SnapStart=PublishedVersions; off by default).

With SnapStart, Lambda runs a function's init once per published version and snapshots it; each cold start then
resumes that snapshot. What a first request would still do lazily (import the use case's modules, build the storage
and AWS clients from the settings) is done here, before the snapshot, so it is in the snapshot too. Nothing opens a
connection or reads a secret: a snapshot may be resumed hours later, and the SSM cache and the HTTP pools must start
empty. Without SnapStart (an on-demand init) this does nothing: the work would only lengthen that cold start.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import import_module

# What Lambda sets during the init that a snapshot is taken of.
SNAPSTART_INIT = "snap-start"


def prime_before_snapshot(*warmers: Callable[[], object]) -> bool:
    """Register `warmers` to run before Lambda takes the snapshot; True when this init is SnapStart's."""
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != SNAPSTART_INIT:
        return False
    # snapshot_restore_py ships in Lambda's managed Python runtimes (and is only needed there).
    register = import_module("snapshot_restore_py").register_before_snapshot
    for warm in warmers:
        register(warm)
    return True
