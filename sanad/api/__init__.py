"""REST API adapter (FastAPI): routers per resource, auth dependencies, problem+json errors."""
