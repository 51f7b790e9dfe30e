"""Data contracts for every extracted table, and the quarantine rule that applies them.

A contract is a pandera schema over the table as the source returned it. Rows that break it go to a
rejects table with the rule and the value that failed, and the good rows go on; only a broken *critical*
column (a key, an amount) fails the whole extract, because then nothing downstream can be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa

DIGITS = r"^\d+$"
GUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MONEY = r"^-?\d{1,15}(\.\d{1,2})?$"
ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"
NO_CONTROL_CHARS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"

REJECT_COLUMNS = ["table", "record_id", "column", "rule", "value", "critical"]


@dataclass(frozen=True)
class Contract:
    """A pandera schema plus what identifies a record and which columns are critical."""

    table: str
    schema: pa.DataFrameSchema
    id_column: str
    critical: frozenset[str]


@dataclass
class Verdict:
    good: pd.DataFrame
    rejects: pd.DataFrame  # REJECT_COLUMNS, one row per failed rule and record

    @property
    def critical_failures(self) -> pd.DataFrame:
        return self.rejects[self.rejects["critical"]]


def quarantine(frame: pd.DataFrame, contract: Contract) -> Verdict:
    """Split `frame` into rows that keep the contract and a rejects table naming record, rule and value."""
    try:
        contract.schema.validate(frame, lazy=True)
        return Verdict(frame, pd.DataFrame(columns=REJECT_COLUMNS))
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    rows = []
    bad_index: set = set()
    for case in cases.itertuples(index=False):
        index = case.index
        column = case.column if isinstance(case.column, str) else str(case.column)
        if index is None or (isinstance(index, float) and pd.isna(index)):
            # a table-level failure (missing column, wrong dtype): the whole extract is unusable
            rows.append({"table": contract.table, "record_id": None, "column": column, "rule": str(case.check),
                         "value": _text(case.failure_case), "critical": True})
            continue
        bad_index.add(index)
        record_id = frame.at[index, contract.id_column] if contract.id_column in frame.columns else None
        rows.append({"table": contract.table, "record_id": _text(record_id), "column": column,
                     "rule": str(case.check), "value": _text(case.failure_case),
                     "critical": column in contract.critical})
    rejects = pd.DataFrame(rows, columns=REJECT_COLUMNS)
    good = frame.drop(index=[i for i in bad_index if i in frame.index])
    return Verdict(good, rejects)


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
    "companies": Contract("bitrix24.companies", pa.DataFrameSchema({
        "ID": _id(),
        "TITLE": _text_col(255, nullable=False, min_len=1),
        "ASSIGNED_BY_ID": _optional(DIGITS),
        "DATE_MODIFY": _optional(ISO_DATETIME),
    }), "ID", frozenset({"ID"})),
    "requisites": Contract("bitrix24.requisites", pa.DataFrameSchema({
        "ID": _id(),
        "ENTITY_TYPE_ID": pa.Column(str, pa.Check.isin(["3", "4"]), nullable=False, coerce=True),
        "ENTITY_ID": pa.Column(str, pa.Check.str_matches(DIGITS), nullable=False, coerce=True),
        "RQ_INN": _text_col(32),
        "RQ_KPP": _text_col(32),
    }), "ID", frozenset({"ID", "ENTITY_TYPE_ID", "ENTITY_ID"})),
    "contacts": Contract("bitrix24.contacts", pa.DataFrameSchema({
        "ID": _id(),
        "COMPANY_ID": _optional(DIGITS),
    }), "ID", frozenset({"ID"})),
    "deals": Contract("bitrix24.deals", pa.DataFrameSchema({
        "ID": _id(),
        "STAGE_ID": pa.Column(str, nullable=False, coerce=True),
        "CATEGORY_ID": pa.Column(str, pa.Check.str_matches(DIGITS), nullable=False, coerce=True),
        "OPPORTUNITY": _optional(MONEY),
        "COMPANY_ID": _optional(DIGITS),
    }), "ID", frozenset({"ID", "OPPORTUNITY"})),
    "products": Contract("bitrix24.products", pa.DataFrameSchema({
        "ID": _id(),
        "NAME": _text_col(255, nullable=False, min_len=1),
        "PRICE": _optional(MONEY),
    }), "ID", frozenset({"ID", "PRICE"})),
    "smart_invoices": Contract("bitrix24.smart_invoices", pa.DataFrameSchema({
        "id": _id(),
    }), "id", frozenset({"id"})),
    "users": Contract("bitrix24.users", pa.DataFrameSchema({
        "ID": _id(),
    }), "ID", frozenset({"ID"})),
}
