"""The HTTP API (FastAPI): routers, schemas, auth and, later, the web UI."""
