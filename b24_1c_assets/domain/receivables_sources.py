"""1C's raw settlement tables shaped as the receivables rules' relations, as DuckDB SQL (text, no I/O).

Each function takes the stored columns of its raw table ({name: SQL type}, empty when the table does not
exist) and returns a SELECT giving the relation `domain/receivables.py` reads, whatever the edition published.
"""

from __future__ import annotations

TIMEZONE = "Europe/Moscow"  # the infobase's local time: a movement's day is its day there


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_of(present: dict[str, str], *names: str, default: str = "NULL") -> str:
    return next((_q(n) for n in names if n in present), default)


def kopecks_sql(column: str, sql_type: str) -> str:
    """An amount column as exact BIGINT kopecks (NULL: 0). A DECIMAL with at most 2 places converts as it is;
    anything else goes through its text (as Decimal(str(v)) would) and fails the query on a fraction of a
    kopeck instead of rounding it away."""
    if sql_type.startswith("DECIMAL") and sql_type.replace(" ", "").endswith((",0)", ",1)", ",2)")):
        return f"CAST(coalesce({_q(column)}, 0) * 100 AS BIGINT)"
    exact = f"(CAST(CAST({_q(column)} AS VARCHAR) AS DECIMAL(38,10)) * 100)"
    return (
        f"CASE WHEN {_q(column)} IS NULL THEN 0 WHEN {exact} <> trunc({exact}) "
        f"THEN error('amount ' || CAST({_q(column)} AS VARCHAR) || ' has fractions of a kopeck') "
        f"ELSE CAST({exact} AS BIGINT) END"
    )


def settlement_movements_sql(table: str, present: dict[str, str]) -> str:
    """`onec.settlement_movements` -> `receivables.MOVEMENT_COLUMNS`: the active movements only (1C's Balance
    ignores deactivated ones; every movement counts when `Active` is not published), the period as naive
    local time, the order as `Заказ` (3.0 composite `Заказ`, 1.6 `Заказ_Key`, NULL when the dimension is not
    there at all), the amount in kopecks, `seq` the register's row order. No table yet: no movements."""
    if not present:
        return (
            "SELECT NULL::TIMESTAMP AS period, NULL::VARCHAR AS record_type, NULL::VARCHAR AS counterparty_ref, "
            "NULL::VARCHAR AS contract_ref, NULL::VARCHAR AS order_ref, NULL::VARCHAR AS settlement_type, "
            "0::BIGINT AS kopecks, 0::BIGINT AS seq WHERE FALSE"
        )
    period = (
        f"timezone('{TIMEZONE}', \"Period\")"
        if present.get("Period", "").startswith("TIMESTAMP WITH TIME ZONE")
        else 'CAST("Period" AS TIMESTAMP)'
    )
    active = 'coalesce(CAST("Active" AS BOOLEAN), TRUE)' if "Active" in present else "TRUE"
    return (
        f'SELECT {period} AS period, "RecordType" AS record_type, "Контрагент_Key" AS counterparty_ref, '
        f'"Договор_Key" AS contract_ref, CAST({_first_of(present, "Заказ", "Заказ_Key")} AS VARCHAR) AS order_ref, '
        f'"ТипРасчетов" AS settlement_type, {kopecks_sql("Сумма", present["Сумма"])} AS kopecks, rowid AS seq '
        f"FROM {table} WHERE {active}"
    )


def contract_terms_sql(table: str, present: dict[str, str]) -> str:
    """contract_ref, counterparty_ref, payment_term_days (0 = not set) from `onec.contracts`."""
    if "Ref_Key" not in present:
        return (
            "SELECT NULL::VARCHAR AS contract_ref, NULL::VARCHAR AS counterparty_ref, 0 AS payment_term_days "
            "WHERE FALSE"
        )
    term = (
        'coalesce(CAST(trunc(TRY_CAST(CAST("СрокОплатыПокупателя" AS VARCHAR) AS DOUBLE)) AS BIGINT), 0)'
        if "СрокОплатыПокупателя" in present
        else "0"
    )
    return (
        f'SELECT "Ref_Key" AS contract_ref, {_first_of(present, "Owner_Key")} AS counterparty_ref, '
        f"{term} AS payment_term_days FROM {table}"
    )


def payment_calendar_sql(table: str, present: dict[str, str]) -> str | None:
    """order_ref, due_date: every dated line of each order's ПлатежныйКалендарь (JSON text in the raw table);
    None when orders or their calendar are not there. 1C's empty date 0001-01-01 is no date."""
    if not {"Ref_Key", "ПлатежныйКалендарь"} <= present.keys():
        return None
    lines = (
        'SELECT "Ref_Key" AS order_ref, unnest(json_extract_string("ПлатежныйКалендарь", \'$[*]."ДатаОплаты"\')) '
        f"AS paid_by FROM {table} WHERE trim(coalesce(\"ПлатежныйКалендарь\", '')) <> ''"
    )
    return (
        f"SELECT order_ref, CAST(left(paid_by, 10) AS DATE) AS due_date FROM ({lines}) "
        "WHERE coalesce(paid_by, '') <> '' AND NOT starts_with(paid_by, '0001-01-01')"
    )
