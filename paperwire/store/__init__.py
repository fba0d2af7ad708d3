"""The catalogue's store (SQL, the source of truth). SQLite by default, PostgreSQL by URL."""

from paperwire.store.store import ApplyResult, CatalogueStats, Store, StoredPaper

__all__ = ["ApplyResult", "CatalogueStats", "Store", "StoredPaper", "open_store"]


def open_store(url: str | None = None) -> Store:
    """Open (and migrate) the store at ``url``, or the one the settings name."""
    if url is None:
        from paperwire.config import get_settings

        url = get_settings().database_url
    return Store.open(url)
