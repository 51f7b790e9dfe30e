"""Job membership said on the asset itself: `incremental_sync` (defs/jobs.py) selects every asset carrying
INCREMENTAL_SYNC, so a new flow joins the hourly run by tagging its assets, not by editing a list in jobs.py."""

# What a CRM change can make stale, or what a run driven by CRM changes needs fresh from 1C.
INCREMENTAL_SYNC_TAG = "b24_1c/incremental_sync"
INCREMENTAL_SYNC = {INCREMENTAL_SYNC_TAG: "true"}
