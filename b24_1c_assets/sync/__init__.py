"""Applying planned writes through the protocol clients and journaling every row's outcome.

No Dagster here: the flows' assets call these with a client and a DuckDB connection.
"""
