"""Reading the client master as later flows need it: with the CRM companies made since it was matched."""

import pandas as pd

from b24_1c_assets.domain.company_sync import FLOW_TO_CRM, link_created_companies
from b24_1c_assets.lib import tables
from b24_1c_assets.sync import journal

# Assets reading `current_clients` depend on this push, so in one run they see the companies it made.
COMPANIES_FROM_1C = tables.PUSH_COMPANIES_FROM_1C.key


def current_clients(conn) -> pd.DataFrame:
    """`client_master.clients`, 1C-only clients linked to the CRM companies the company push created for them."""
    return link_created_companies(tables.CLIENTS.read(conn), journal.last_pushed(conn, FLOW_TO_CRM))
