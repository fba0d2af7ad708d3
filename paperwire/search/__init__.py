"""Search: query language, keyword index (tantivy), embeddings and vectors, hybrid ranking.

Everything that searches goes through :func:`search` (or a :class:`SearchEngine` for an explicit store).
"""

from paperwire.search.keyword import Filters, IndexBusy
from paperwire.search.query import QueryError
from paperwire.search.service import (
    Hit,
    SearchEngine,
    SearchResult,
    default_engine,
    reset_default_engine,
    search,
)

__all__ = [
    "Filters",
    "Hit",
    "IndexBusy",
    "QueryError",
    "SearchEngine",
    "SearchResult",
    "default_engine",
    "reset_default_engine",
    "search",
]
