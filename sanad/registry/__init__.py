"""The registry: ORM models, schemas, use-case services and migrations (the source of truth)."""
