"""Pure helpers that turn the URLs operators write into ones SQLAlchemy+asyncpg use."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

# asyncpg accepts libpq's sslmode names as its `ssl` argument.
_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})


def to_async_url(url: str) -> URL:
    """Accept `postgres://`, `postgresql://` or any `postgresql+driver://` URL.

    libpq's `sslmode` is renamed to asyncpg's `ssl`; everything else (including
    `host=/socket/dir` for Unix sockets) passes through.
    """
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(
            f"DATABASE_URL must be a PostgreSQL URL, got {parsed.get_backend_name()!r}"
        )
    query = dict(parsed.query)
    sslmode = query.pop("sslmode", None)
    if sslmode is not None:
        if sslmode not in _SSLMODES:
            raise ValueError(f"unknown sslmode {sslmode!r}")
        query["ssl"] = sslmode
    return parsed.set(drivername="postgresql+asyncpg", query=query)


def with_database(url: str, database: str) -> str:
    """The same server, another database."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)
