"""Data contracts for every extracted table, and the quarantine rule that applies them.

A contract is a pandera schema over the table as the source returned it. Rows that break it go to a
rejects table with the rule and the value that failed, and the good rows go on. Only a *broken critical
column* fails the whole extract, because then nothing downstream can be trusted: a key or amount column
that is missing or of the wrong type, or that fails in more than half of the rows (a changed export
format, not a few bad records).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
import pandera.pandas as pa

DIGITS = r"^\d+$"
GUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MONEY = r"^-?\d{1,15}(\.\d{1,2})?$"
ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"
NO_CONTROL_CHARS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"

REJECT_COLUMNS = ["table", "record_id", "column", "rule", "value", "critical"]
BROKEN_COLUMN_SHARE = 0.5


@dataclass(frozen=True)
class Contract:
    """A pandera schema plus what identifies a record and which columns are critical."""

    table: str
    schema: pa.DataFrameSchema
    id_column: str | tuple[str, ...]  # what names a record in errors (several columns are joined by ':')
    critical: frozenset[str]

    def record_id(self, frame: pd.DataFrame, index) -> str | None:
        columns = (self.id_column,) if isinstance(self.id_column, str) else self.id_column
        parts = [frame.at[index, c] for c in columns if c in frame.columns]
        return ":".join(str(p) for p in parts) if parts else None


@dataclass
class Verdict:
    good: pd.DataFrame
    rejects: pd.DataFrame  # REJECT_COLUMNS, one row per failed rule and record
    rows: int = 0

    @property
    def critical_failures(self) -> pd.DataFrame:
        """Failures that break a critical column as a whole (empty when only some records are bad)."""
        critical = self.rejects[self.rejects["critical"]]
        if critical.empty:
            return critical
        table_level = critical["record_id"].isna()
        per_column = critical[~table_level].groupby("column").size()  # failing rows per column
        broken = set(per_column[per_column > self.rows * BROKEN_COLUMN_SHARE].index)
        return critical[table_level | critical["column"].isin(broken)]


def quarantine(frame: pd.DataFrame, contract: Contract) -> Verdict:
    """Split `frame` into rows that keep the contract and a rejects table naming record, rule and value."""
    try:
        contract.schema.validate(frame, lazy=True)
        return Verdict(frame, pd.DataFrame(columns=REJECT_COLUMNS), len(frame))
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    rows = []
    bad_index: set = set()
    for case in cases.itertuples(index=False):
        index = case.index
        column = case.column if isinstance(case.column, str) else str(case.column)
        if index is None or (isinstance(index, float) and pd.isna(index)):
            # a table-level failure (missing column, wrong dtype): the whole extract is unusable
            rows.append(
                {
                    "table": contract.table,
                    "record_id": None,
                    "column": column,
                    "rule": str(case.check),
                    "value": _text(case.failure_case),
                    "critical": True,
                }
            )
            continue
        bad_index.add(index)
        record_id = contract.record_id(frame, index)
        rows.append(
            {
                "table": contract.table,
                "record_id": _text(record_id),
                "column": column,
                "rule": str(case.check),
                "value": _text(case.failure_case),
                "critical": column in contract.critical,
            }
        )
    rejects = pd.DataFrame(rows, columns=REJECT_COLUMNS)
    good = frame.drop(index=[i for i in bad_index if i in frame.index])
    return Verdict(good, rejects, len(frame))


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def _id(pattern: str = DIGITS) -> pa.Column:
    return pa.Column(str, pa.Check.str_matches(pattern), nullable=False, unique=True, coerce=True)


def _text_col(max_len: int = 255, *, nullable: bool = True, min_len: int = 0) -> pa.Column:
    checks = [pa.Check.str_length(min_len, max_len), pa.Check.str_matches(NO_CONTROL_CHARS)]
    return pa.Column(str, checks, nullable=nullable, required=False)


def _optional(pattern: str) -> pa.Column:
    return pa.Column(str, pa.Check.str_matches(pattern), nullable=True, required=False)


# -- Bitrix24 raw tables (values as the portal sends them: strings) ---------------------------------------
BITRIX24_CONTRACTS = {
    "companies": Contract(
        "bitrix24.companies",
        pa.DataFrameSchema(
            {
                "ID": _id(),
                "TITLE": _text_col(255, nullable=False, min_len=1),
                "ASSIGNED_BY_ID": _optional(DIGITS),
                "DATE_MODIFY": _optional(ISO_DATETIME),
            }
        ),
        "ID",
        frozenset({"ID"}),
    ),
    "requisites": Contract(
        "bitrix24.requisites",
        pa.DataFrameSchema(
            {
                "ID": _id(),
                "ENTITY_TYPE_ID": pa.Column(str, pa.Check.isin(["3", "4"]), nullable=False, coerce=True),
                "ENTITY_ID": pa.Column(str, pa.Check.str_matches(DIGITS), nullable=False, coerce=True),
                "RQ_INN": _text_col(32),
                "RQ_KPP": _text_col(32),
            }
        ),
        "ID",
        frozenset({"ID", "ENTITY_TYPE_ID", "ENTITY_ID"}),
    ),
    "contacts": Contract(
        "bitrix24.contacts",
        pa.DataFrameSchema(
            {
                "ID": _id(),
                "COMPANY_ID": _optional(DIGITS),
            }
        ),
        "ID",
        frozenset({"ID"}),
    ),
    "deals": Contract(
        "bitrix24.deals",
        pa.DataFrameSchema(
            {
                "ID": _id(),
                "STAGE_ID": pa.Column(str, nullable=False, coerce=True),
                "CATEGORY_ID": pa.Column(str, pa.Check.str_matches(DIGITS), nullable=False, coerce=True),
                "OPPORTUNITY": _optional(MONEY),
                "COMPANY_ID": _optional(DIGITS),
            }
        ),
        "ID",
        frozenset({"ID", "OPPORTUNITY"}),
    ),
    "products": Contract(
        "bitrix24.products",
        pa.DataFrameSchema(
            {
                "ID": _id(),
                "NAME": _text_col(255, nullable=False, min_len=1),
                "PRICE": _optional(MONEY),
            }
        ),
        "ID",
        frozenset({"ID", "PRICE"}),
    ),
    "smart_invoices": Contract(
        "bitrix24.smart_invoices",
        pa.DataFrameSchema(
            {
                "id": _id(),
            }
        ),
        "id",
        frozenset({"id"}),
    ),
    "users": Contract(
        "bitrix24.users",
        pa.DataFrameSchema(
            {
                "ID": _id(),
            }
        ),
        "ID",
        frozenset({"ID"}),
    ),
}


# -- 1C raw tables (values parsed by the OData client / exchange reader: Decimal money, GUID strings) -----
MAX_AMOUNT = Decimal("1e13")  # ten trillion roubles: beyond any real document, a unit or parsing error


def _is_amount(value) -> bool:
    return isinstance(value, Decimal) and value.is_finite() and abs(value) < MAX_AMOUNT


def _amount(*, nullable: bool = False, non_negative: bool = False) -> pa.Column:
    checks = [
        pa.Check(
            lambda v: v is None or _is_amount(v),
            element_wise=True,
            name="decimal_amount",
            error="an exact Decimal amount below 1e13",
        )
    ]
    if non_negative:
        checks.append(
            pa.Check(
                lambda v: v is None or not isinstance(v, Decimal) or v >= 0,
                element_wise=True,
                name="non_negative",
                error="amount must not be negative",
            )
        )
    return pa.Column(object, checks, nullable=nullable, required=True)


def _guid(*, unique: bool = False, nullable: bool = False) -> pa.Column:
    return pa.Column(str, pa.Check.str_matches(GUID), nullable=nullable, unique=unique)


def _document(table: str, *amount_columns: str) -> Contract:
    columns = {
        "Ref_Key": _guid(unique=True),
        "Number": _text_col(64, nullable=False, min_len=1),
        "Контрагент_Key": _guid(nullable=True),
    }
    columns.update({name: _amount(non_negative=True) for name in amount_columns})
    return Contract(f"onec.{table}", pa.DataFrameSchema(columns), "Ref_Key", frozenset({"Ref_Key", *amount_columns}))


def _movements(table: str, *amount_columns: str) -> Contract:
    columns = {"RecordType": pa.Column(str, pa.Check.isin(["Receipt", "Expense"]), nullable=False)}
    columns.update({name: _amount() for name in amount_columns})
    return Contract(
        f"onec.{table}",
        pa.DataFrameSchema(columns),
        ("Recorder_Key", "Recorder", "LineNumber"),
        frozenset({"RecordType", *amount_columns}),
    )


ONEC_CONTRACTS = {
    "counterparties": Contract(
        "onec.counterparties",
        pa.DataFrameSchema(
            {
                "Ref_Key": _guid(unique=True),
                "Description": _text_col(150, nullable=False, min_len=1),
                "ИНН": _text_col(20),
                "КПП": _text_col(20),
            }
        ),
        "Ref_Key",
        frozenset({"Ref_Key"}),
    ),
    "contracts": Contract(
        "onec.contracts",
        pa.DataFrameSchema(
            {
                "Ref_Key": _guid(unique=True),
                "Owner_Key": _guid(nullable=True),
                "СрокОплатыПокупателя": pa.Column(
                    None,
                    pa.Check(
                        lambda v: v is None or (int(v) >= 0 and int(v) < 3650),
                        element_wise=True,
                        name="payment_term_days",
                    ),
                    nullable=True,
                ),
            }
        ),
        "Ref_Key",
        frozenset({"Ref_Key"}),
    ),
    "items": Contract(
        "onec.items",
        pa.DataFrameSchema(
            {
                "Ref_Key": _guid(unique=True),
                "Description": _text_col(150, nullable=False, min_len=1),
            }
        ),
        "Ref_Key",
        frozenset({"Ref_Key"}),
    ),
    "price_types": Contract(
        "onec.price_types",
        pa.DataFrameSchema(
            {
                "Ref_Key": _guid(unique=True),
            }
        ),
        "Ref_Key",
        frozenset({"Ref_Key"}),
    ),
    "prices": Contract(
        "onec.prices",
        pa.DataFrameSchema(
            {
                "Номенклатура_Key": _guid(),
                "Цена": _amount(non_negative=True),
            }
        ),
        "Номенклатура_Key",
        frozenset({"Цена"}),
    ),
    "customer_orders": _document("customer_orders", "СуммаДокумента"),
    "invoices": _document("invoices", "СуммаДокумента"),
    "shipments": _document("shipments", "СуммаДокумента"),
    "bank_receipts": _document("bank_receipts", "СуммаДокумента"),
    "cash_receipts": _document("cash_receipts", "СуммаДокумента"),
    "settlement_movements": _movements("settlement_movements", "Сумма"),
    "invoice_payments": Contract(
        "onec.invoice_payments",  # a turnover register: no RecordType
        pa.DataFrameSchema({"Сумма": _amount()}),
        ("Recorder_Key", "Recorder", "LineNumber"),
        frozenset({"Сумма"}),
    ),
    "receivables_balance": Contract(
        "onec.receivables_balance",
        pa.DataFrameSchema(
            {
                "Контрагент_Key": _guid(nullable=True),
                "СуммаBalance": _amount(),
            }
        ),
        ("Контрагент_Key", "Договор_Key", "ТипРасчетов"),
        frozenset({"СуммаBalance"}),
    ),
}
