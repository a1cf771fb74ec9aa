"""Call statistics' counter rows (issue 23; what they count: `domain.call_stats`; layout: `data.call_effects`).

A period is ONE Query over the sort keys `STATS#<first day>` … `STATS#<last day>#~` (a page per MB: a year of a
50-extension project is a few pages).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from iptelefon.data.call_effects import stats_sk
from iptelefon.data.gateway import Storage, project_pk


class StatsStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def rows(self, project_id: str, first: date, last: date) -> tuple[list[dict[str, Any]], int]:
        """The counter rows of [first, last] (each with `day` and `row`), and the reads it took."""
        items, reads = self.storage.query_between(
            project_pk(project_id), stats_sk(first.isoformat(), ""), stats_sk(last.isoformat(), "~")
        )
        return [{k: v for k, v in item.items() if k not in ("pk", "sk")} for item in items], reads
