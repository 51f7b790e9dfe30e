"""b24-1c: Bitrix24 CRM <-> 1C:UNF data orchestration.

Layers, each in its own place:
- `bitrix24/`, `onec/`: protocol clients (HTTP, files), no Dagster;
- `domain/`: pure rules on DataFrames / DuckDB SQL, no I/O;
- `defs/`: thin Dagster wiring (assets, checks, resources, sensors, schedules);
- `sandbox/`: the local Bitrix24 portal and 1C base used by the demo and the tests.
"""
