"""Dead letters from the operator's shell: list the rows a push keeps failing on, and replay them.

    python -m b24_1c_assets.dead_letters list [--flow F]
    python -m b24_1c_assets.dead_letters replay --flow F [--key K ...] [--materialize]

`replay` clears the flow's baseline (sync.push_state) for the keys (all keys without --key), so the next run
plans those rows again; the flows look records up by ORIGIN_ID/XML_ID/marker before creating anything, so a
replay never duplicates. `--materialize` runs the flow's assets now, in this process.
"""

from __future__ import annotations

import argparse
import os
import sys

import dagster as dg

from b24_1c_assets import warehouse
from b24_1c_assets.domain.analytics_sql import FLOW_ASSET_TAGS, PARTITIONED_BY_KEY


def list_dead_letters(conn, flow: str | None = None):
    """Rows of analytics.dead_letters (the views are created first when missing)."""
    if not warehouse.table_exists(conn, "analytics", "dead_letters"):
        from b24_1c_assets.defs.analytics.assets import create_views

        create_views(conn)
    sql = "SELECT * FROM analytics.dead_letters"
    params = None
    if flow:
        sql, params = sql + " WHERE flow = ?", [flow]
    return warehouse.query(conn, sql + " ORDER BY flow, last_failure_at DESC", params)


def clear_baseline(conn, flow: str, keys: list[str] | None = None) -> int:
    """Delete the flow's last-pushed payloads (for `keys`, else all): the next run re-plans those rows."""
    if not warehouse.table_exists(conn, "sync", "push_state"):
        return 0
    where, params = "flow = ?", [flow]
    if keys:
        where += f" AND key IN ({', '.join('?' for _ in keys)})"
        params += list(keys)
    count = conn.execute(f"SELECT count(*) FROM sync.push_state WHERE {where}", params).fetchone()[0]
    conn.execute(f"DELETE FROM sync.push_state WHERE {where}", params)
    return int(count)


def materialize_flow(
    flow: str, keys: list[str] | None = None, instance: dg.DagsterInstance | None = None
) -> dg.ExecuteInProcessResult:
    """Run the assets tagged with the journal flow's asset tag, tagged flow=<flow>, trigger=replay."""
    from b24_1c_assets.definitions import defs
    from b24_1c_assets.defs.analytics.runs import run_tags
    from b24_1c_assets.lib.partitions import daily_partitions

    loaded = defs()
    tag = FLOW_ASSET_TAGS.get(flow, flow)
    selection = dg.AssetSelection.tag("flow", tag)
    graph = loaded.resolve_asset_graph()
    selected = selection.resolve(graph)
    if not selected:
        raise SystemExit(f"no asset carries tag flow={tag} (journal flow {flow})")
    partition = None
    if any(graph.get(key).partitions_def is not None for key in selected):
        partition = keys[0] if flow in PARTITIONED_BY_KEY and keys else daily_partitions.get_last_partition_key()
    if instance is None:
        instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    return dg.materialize(
        [*(loaded.assets or []), *(loaded.asset_checks or [])],
        selection=selection,
        resources=loaded.resources,
        partition_key=partition,
        instance=instance,
        tags=run_tags(tag, "replay", journal_flow=flow),
        raise_on_error=False,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m b24_1c_assets.dead_letters",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", default=None, help="DuckDB file (default: B24_1C_DUCKDB_PATH or data/b24_1c.duckdb)")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="rows failing repeatedly, with the commands to replay them")
    listing.add_argument("--flow")
    replay = commands.add_parser("replay", help="clear a flow's baseline so its rows are planned again")
    replay.add_argument("--flow", required=True)
    replay.add_argument("--key", action="append", help="only these keys (repeatable)")
    replay.add_argument("--materialize", action="store_true", help="run the flow's assets now")
    args = parser.parse_args(argv)
    path = args.db or warehouse.duckdb_path()

    if args.command == "list":
        with warehouse.connect(path) as conn:
            rows = list_dead_letters(conn, args.flow)
        if rows.empty:
            print("no dead letters")
            return 0
        shown = rows[["flow", "key", "error_class", "failures", "first_failure_at", "last_error", "replay_command"]]
        print(shown.to_string(index=False, max_colwidth=80))
        return 0

    with warehouse.connect(path) as conn:
        cleared = clear_baseline(conn, args.flow, args.key)
    scope = f"{len(args.key)} key(s)" if args.key else "all keys"
    print(f"{args.flow}: baseline cleared for {scope} ({cleared} row(s)); the next run plans them again")
    if args.materialize:
        os.environ["B24_1C_DUCKDB_PATH"] = path  # the run writes where the baseline was cleared
        result = materialize_flow(args.flow, args.key)
        print(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'}")
        return 0 if result.success else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
