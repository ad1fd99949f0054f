"""Use cases: plain functions over a SQLAlchemy session, shared by the CLI, the pages, the
webhooks and the jobs. They change rows and enqueue jobs; they never call a provider."""
