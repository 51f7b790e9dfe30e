"""1C side of the deal push: header defaults of new orders, and rewriting an existing order.

Reference §6: rows of a posted order cannot be PATCHed (500), so a posted order is unposted, patched
(header and all `Запасы` rows) and posted again, each step through `OneCClient` (writes never retried
blindly; an unknown outcome is reconciled by reading the order back).
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from b24_1c_assets.domain.order_sync import deal_of_comment
from b24_1c_assets.onec import OneCClient
from b24_1c_assets.onec.odata import ORDERS

# 1C stamps a new order with its own clock in the infobase's zone: read a day back so skew never hides one.
CLOCK_MARGIN = timedelta(days=1)


ORDER_STATES = "Catalog_СостоянияЗаказовПокупателей"
CURRENCY_RATE = ("Курс", "Кратность")  # the document currency's rate: taken only from an order in that currency
STATE = "СостояниеЗаказа"


def header_defaults(
    client: OneCClient,
    settings_header: Mapping[str, str],
    orders: pd.DataFrame,
    from_orders: Sequence[str],
    *,
    organization: str | None = None,
    currency: str | None = None,
) -> dict[str, Any]:
    """Header values of new orders: the settings, and for the empty ones among `from_orders` (those the
    publication declares) the values of the latest posted order of the same organisation in 1C (one GET) —
    the customer's own structural units, business operation, VAT taxation, order kind. The state comes from
    the latest such order that is not completed (a new order is never born «Завершен»), the rate
    (Курс/Кратность) only from an order in the same currency. Composites travel with their `_Type`.
    `orders`: the 1C orders (Ref_Key, Date, Posted, Организация_Key, СостояниеЗаказа[_Type]), whole or as
    reads.header_orders narrows them."""
    header = {k: v for k, v in settings_header.items() if v not in (None, "")}
    declared = client.metadata.fields(ORDERS)
    missing = [f for f in from_orders if header.get(f) in (None, "") and f in declared]
    if not missing or orders.empty:
        return header
    # stable: orders of the same moment stay in table order, so a pre-reduced frame (reads.header_orders)
    # picks the same one as the whole table
    posted = orders[orders["Posted"].fillna(False).astype(bool)].sort_values("Date", kind="stable")
    if organization and "Организация_Key" in posted:
        posted = posted[posted["Организация_Key"].astype(str) == organization]
    if posted.empty:
        return header
    wanted = [f for f in missing if f != STATE]
    select = ["Ref_Key", *wanted, *(f"{f}_Type" for f in wanted if f"{f}_Type" in declared)]
    if "ВалютаДокумента_Key" in declared:
        select.append("ВалютаДокумента_Key")
    latest = client.get_object(ORDERS, str(posted["Ref_Key"].iloc[-1]), select) or {}
    same_currency = currency is None or str(latest.get("ВалютаДокумента_Key")) == currency
    for f in wanted:
        if latest.get(f) in (None, "") or (f in CURRENCY_RATE and not same_currency):
            continue
        header[f] = latest[f]
        if f"{f}_Type" in latest:
            header[f"{f}_Type"] = latest[f"{f}_Type"]
    if STATE in missing and STATE in posted:
        completed = completed_order_states(client)
        open_orders = posted[posted[STATE].notna() & ~posted[STATE].astype(str).isin(completed)]
        if not open_orders.empty:
            header[STATE] = str(open_orders[STATE].iloc[-1])
            if f"{STATE}_Type" in open_orders:
                header[f"{STATE}_Type"] = open_orders[f"{STATE}_Type"].iloc[-1]
    return header


def completed_order_states(client: OneCClient) -> set[str]:
    """Refs of the predefined «Завершен» order state (Catalog_СостоянияЗаказовПокупателей), if published."""
    if not client.metadata.has_set(ORDER_STATES) or "PredefinedDataName" not in client.metadata.fields(ORDER_STATES):
        return set()
    rows = client.read_catalog(ORDER_STATES, ["Ref_Key", "PredefinedDataName"])
    return {str(r["Ref_Key"]) for r in rows if r.get("PredefinedDataName") == "Завершен"}


def replace_order(
    client: OneCClient,
    ref: str,
    header: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    *,
    post: bool = False,
    fill_if_empty: Mapping[str, Any] | None = None,
) -> dict:
    """Rewrite an order's header and `Запасы`; a posted order is unposted first and posted again after.

    `post`: post it after even if it was not posted (an order whose Post failed after its create).
    `fill_if_empty`: header fields written only where the order has none (its shipment date is its own)."""
    fill_if_empty = dict(fill_if_empty or {})
    current = client.get_object(ORDERS, ref, ["Ref_Key", "Posted", *fill_if_empty]) or {}
    was_posted = bool(current.get("Posted"))
    header = {**header, **{k: v for k, v in fill_if_empty.items() if current.get(k) in (None, "")}}
    if "ДатаОтгрузки" in fill_if_empty:  # rows are rewritten whole: they carry the order's own shipment date
        rows = [{**r, "ДатаОтгрузки": current.get("ДатаОтгрузки") or fill_if_empty["ДатаОтгрузки"]} for r in rows]
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


def orders_made_since_extract(client: OneCClient, extracted: datetime | None) -> dict[int, str]:
    """deal ID -> Ref_Key of the orders carrying our marker that are dated since the last order extract.

    The plan knows every order of the extract; an order made after it (a run that died mid-push, another
    writer) is dated later, since 1C dates a new order when it is written. One windowed read of those
    orders replaces a `substringof` lookup per created order, a full scan of the orders each time. The
    extract's newest landing stamp is the reference: extracts merge, so the oldest stamp is the last full
    read, up to a week back, and reading from it would grow with history, not with the change.
    `extracted`: that newest stamp (reads.orders_extracted_at; UTC, naive as landed)."""
    # no extract to go by (an empty base, a wiped table): a month back is more than any run lasts
    started = (
        datetime.now(UTC) - timedelta(days=29)
        if extracted is None or pd.isna(extracted)
        else pd.Timestamp(extracted).to_pydatetime().replace(tzinfo=UTC)
    )
    since = started - CLOCK_MARGIN
    made: dict[int, str] = {}
    for order in client.documents(ORDERS, since=since, select=["Ref_Key", "Date", "Комментарий"]):
        deal = deal_of_comment(order.get("Комментарий"))
        if deal is not None:
            made.setdefault(deal, order["Ref_Key"])
    return made
