"""Small long-running services beside the Dagster location (read-only over DuckDB)."""
