"""1C side of the deal push: header defaults of new orders, and rewriting an existing order.

Reference §6: rows of a posted order cannot be PATCHed (500), so a posted order is unposted, patched
(header and all `Запасы` rows) and posted again, each step through `OneCClient` (writes never retried
blindly; an unknown outcome is reconciled by reading the order back).
"""

from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

import pandas as pd

from b24_1c_assets.domain.order_sync import deal_of_comment
from b24_1c_assets.onec import OneCClient
from b24_1c_assets.onec.odata import ORDERS

# 1C stamps a new order with its own clock in the infobase's zone: read a day back so skew never hides one.
CLOCK_MARGIN = timedelta(days=1)


def header_defaults(client: OneCClient, settings_header: Mapping[str, str], orders: pd.DataFrame,
                    from_orders: Sequence[str]) -> dict[str, Any]:
    """Header values of new orders: the settings, and for the empty ones among `from_orders` the values of
    the latest posted order in 1C (one GET) — the customer's own structural units and business operation."""
    header = {k: v for k, v in settings_header.items() if v}
    missing = [f for f in from_orders if not header.get(f)]
    if missing and not orders.empty:
        posted = orders[orders["Posted"].fillna(False).astype(bool)].sort_values("Date")
        if not posted.empty:
            latest = client.get_object(ORDERS, str(posted["Ref_Key"].iloc[-1]), ["Ref_Key", *missing]) or {}
            header.update({f: latest[f] for f in missing if latest.get(f)})
    return header


def replace_order(client: OneCClient, ref: str, header: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                  *, post: bool = False) -> dict:
    """Rewrite an order's header and `Запасы`; a posted order is unposted first and posted again after.

    `post`: post it after even if it was not posted (an order whose Post failed after its create)."""
    current = client.get_object(ORDERS, ref, ["Ref_Key", "Posted"]) or {}
    was_posted = bool(current.get("Posted"))
    if was_posted:
        client.unpost_document(ORDERS, ref)
    try:
        order = client.update_customer_order(ref, header, rows)
    except Exception:
        if was_posted:  # never leave a customer's order unposted because our patch was refused
            client.post_document(ORDERS, ref)
        raise
    if was_posted or post:
        client.post_document(ORDERS, ref)
        order = {**order, "Posted": True}
    return order


def orders_made_since_extract(client: OneCClient, orders: pd.DataFrame) -> dict[int, str]:
    """deal ID -> Ref_Key of the orders carrying our marker that are dated since the order extract began.

    The plan knows every order of the extract; an order made after it (a run that died mid-push, another
    writer) is dated later, since 1C dates a new order when it is written. One windowed read of those
    orders replaces a `substringof` lookup per created order, a full scan of the orders each time."""
    extracted = pd.to_datetime(orders.get("_extracted_at", pd.Series(dtype="datetime64[ns]"))).min()
    # no extract to go by (an empty base, a wiped table): a month back is more than any run lasts
    started = datetime.now(timezone.utc) - timedelta(days=29) if pd.isna(extracted) \
        else extracted.to_pydatetime().replace(tzinfo=timezone.utc)
    since = started - CLOCK_MARGIN
    made: dict[int, str] = {}
    for order in client.documents(ORDERS, since=since, select=["Ref_Key", "Date", "Комментарий"]):
        deal = deal_of_comment(order.get("Комментарий"))
        if deal is not None:
            made.setdefault(deal, order["Ref_Key"])
    return made
