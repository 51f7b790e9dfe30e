"""The one daily partitioning of the location (Moscow days; today's partition exists so the nightly run
can close it)."""

import dagster as dg

daily_partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01", timezone="Europe/Moscow", end_offset=1)
