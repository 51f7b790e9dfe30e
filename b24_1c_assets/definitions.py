"""The b24_1c_assets code location: every asset, check, job, schedule and sensor, with their resources."""

from __future__ import annotations

import dagster as dg

from b24_1c_assets.defs import jobs
from b24_1c_assets.defs.analytics import assets as analytics_assets
from b24_1c_assets.defs.analytics.publish import build_analytics_copy
from b24_1c_assets.defs.automation import schedules, sensors as automation_sensors
from b24_1c_assets.defs.bitrix24 import assets as bitrix24_assets
from b24_1c_assets.defs.catalog_sync import assets as catalog_sync_assets
from b24_1c_assets.defs.client_master import assets as client_master_assets
from b24_1c_assets.defs.invoice_sync import assets as invoice_sync_assets
from b24_1c_assets.defs.order_sync import assets as order_sync_assets
from b24_1c_assets.defs.company_sync import assets as company_sync_assets
from b24_1c_assets.defs.crm_push import assets as crm_push_assets
from b24_1c_assets.defs.crm_push import deal_holds
from b24_1c_assets.defs.onec import assets as onec_assets
from b24_1c_assets.defs.onec import exchange_assets as onec_exchange_assets
from b24_1c_assets.defs.onec import sensors as onec_sensors
from b24_1c_assets.defs.receivables import assets as receivables_assets
from b24_1c_assets.defs.receivables import digest as receivables_digest
from b24_1c_assets.defs.receivables import freshness as receivables_freshness
from b24_1c_assets.defs.receivables import sensors as receivables_sensors
from b24_1c_assets.lib.resources import build_resources


@dg.definitions
def defs() -> dg.Definitions:
    merged = dg.Definitions.merge(
        bitrix24_assets.defs,
        onec_assets.defs,
        onec_exchange_assets.defs,
        onec_sensors.defs,
        client_master_assets.defs,
        company_sync_assets.defs,
        receivables_assets.defs,
        catalog_sync_assets.defs,
        invoice_sync_assets.defs,
        order_sync_assets.defs,
        crm_push_assets.defs,
        deal_holds.defs,
        receivables_sensors.defs,
        receivables_digest.defs,
        receivables_freshness.defs,
        jobs.defs,
        schedules.defs,
        automation_sensors.defs,
        analytics_assets.defs,
        dg.Definitions(resources=build_resources()),
    )
    # The analysts' copy is published last in every job that selects it: it depends on every other asset.
    upstream = [key for assets_def in merged.assets or [] for key in getattr(assets_def, "keys", ())]
    return dg.Definitions.merge(merged, dg.Definitions(assets=[build_analytics_copy(upstream)]))
