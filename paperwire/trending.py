"""The trending score: votes that fade with age, kept as a key whose order never changes with time.

A vote cast at time ``t`` weighs ``2^(-(now - t) / h)`` now (``h``: the half-life,
``PAPERWIRE_TRENDING_HALF_LIFE_HOURS``, 24 by default). A paper's score is the sum of its weights, plus
votes counted elsewhere (an imported Hugging Face list) and a small prior, both placed at the paper's
anchor time: when it was submitted to a daily list, else when it was published.

Every weight shrinks by the same factor as time passes, so the *order* of papers by score only changes
when votes change. The store therefore keeps a time-invariant key instead of the score::

    key = log2( Σ_i 2^((t_i - T0) / h) )        T0 = 1970-01-01 UTC, t_i in hours

and the score now is ``2^(key - (now - T0) / h)`` (:func:`current_score`). Sorting by the key is sorting
by the score at any moment, so a search index can sort on an indexed field without ever being rebuilt as
time passes. See docs/trending.md for the reasoning and worked examples.

A paper nobody voted for, listed or counted votes for keeps key 0: "no trending signal" (every real key
is far above 0, as it counts hours since 1970 in half-lives).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Half a vote at the anchor time: a freshly listed paper outranks one whose few votes are days old.
PRIOR_VOTES = 0.5
DEFAULT_HALF_LIFE_HOURS = 24.0
NO_SIGNAL = 0.0
# 2^1000 is still a float; a key that far above "now" can only come from a clock far in the future.
_MAX_EXPONENT = 1000.0


def half_life_hours() -> float:
    """The configured half-life (``PAPERWIRE_TRENDING_HALF_LIFE_HOURS``), read at each call so tests and
    long-running processes see the environment they run in."""
    from paperwire.config import get_settings

    return get_settings().trending_half_life_hours


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def half_lives(at: datetime, half_life: float) -> float:
    """``(at - T0) / h``: how many half-lives after the epoch ``at`` is."""
    return (_utc(at) - EPOCH).total_seconds() / 3600.0 / half_life


def trending_key(
    vote_times: Iterable[datetime],
    anchor: datetime | None,
    external_votes: int = 0,
    *,
    half_life: float | None = None,
    prior: float = PRIOR_VOTES,
) -> float:
    """The time-invariant key of a paper with votes at ``vote_times`` and ``external_votes`` counted
    elsewhere; external votes and the prior sit at ``anchor`` (daily submission, else publication).

    With no anchor the earliest vote stands in for it; with neither an anchor nor votes there is nothing
    to place and the result is :data:`NO_SIGNAL`. (Whether a paper has a signal at all, i.e. whether it
    gets a key rather than 0, is the store's decision: votes, external votes or a daily listing.)
    Computed as a log-sum-exp around the largest exponent, so exponents in the tens of thousands (hours
    since 1970) never overflow."""
    h = half_life if half_life is not None else half_life_hours()
    terms = [(1.0, half_lives(t, h)) for t in vote_times]
    if anchor is None and terms:
        anchor_exp = min(e for _, e in terms)
    elif anchor is not None:
        anchor_exp = half_lives(anchor, h)
    else:
        anchor_exp = None
    at_anchor = max(0, external_votes) + prior
    if anchor_exp is not None and at_anchor > 0:
        terms.append((at_anchor, anchor_exp))
    if not terms:
        return NO_SIGNAL
    top = max(e for _, e in terms)
    total = sum(w * 2.0 ** (e - top) for w, e in terms)
    return top + math.log2(total)


def current_score(key: float, now: datetime, *, half_life: float | None = None) -> float:
    """The decayed score at ``now`` (what a page shows as "trending score"): the sum of every vote's
    weight now, in votes. 0 for a paper without signal."""
    if key == NO_SIGNAL:
        return 0.0
    h = half_life if half_life is not None else half_life_hours()
    return 2.0 ** min(key - half_lives(now, h), _MAX_EXPONENT)
