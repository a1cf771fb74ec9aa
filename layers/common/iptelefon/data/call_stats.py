"""Call statistics' counter rows (issue 23; what they count: `domain.call_stats`; layout: `data.call_effects`).

A period is ONE Query of the project's `STATS#<pid>` partition over the sort keys `<first day>#` … `<last day>#~`
(a page per MB: a year of a 50-extension project is a few pages), whatever the number of calls.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from iptelefon.data.call_effects import stats_pk, stats_sk
from iptelefon.data.gateway import Storage


class StatsStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def rows(self, project_id: str, first: date, last: date) -> tuple[list[dict[str, Any]], int]:
        """The counter rows of [first, last] (each with `day` and `row`, from its sort key), and the reads it took."""
        items, reads = self.storage.query_between(
            stats_pk(project_id), stats_sk(first.isoformat(), ""), stats_sk(last.isoformat(), "~")
        )
        rows = []
        for item in items:
            day, _, row = str(item.pop("sk")).partition("#")
            del item["pk"]
            rows.append({**item, "day": day, "row": row})
        return rows, reads
