"""The bundled sample's daily list (paperwire/sample/daily_papers.json), as `paperwire import sample`
loads it: which paper was submitted on which day, with how many upvotes."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

LIST = Path(__file__).resolve().parent.parent / "paperwire" / "sample" / "daily_papers.json"


def _submitted() -> dict[str, tuple[date, int]]:
    out = {}
    for item in json.loads(LIST.read_text()):
        paper = item["paper"]
        when = paper.get("submittedOnDailyAt") or item.get("publishedAt")
        out[paper["id"]] = (
            datetime.fromisoformat(when.replace("Z", "+00:00")).date(),
            item.get("upvotes") or paper.get("upvotes") or 0,
        )
    return out


SUBMITTED = _submitted()
LATEST_DAY = max(day for day, _ in SUBMITTED.values())
LATEST_IDS = {pid for pid, (day, _) in SUBMITTED.items() if day == LATEST_DAY}
