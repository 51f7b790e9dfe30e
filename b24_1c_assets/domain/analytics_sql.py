"""The analyst views of schema `analytics` (and the ops table `ops.run_failures`) as SQL text — no I/O.

Views read the raw extracts and the journal by their own column names. A source table or column that is
missing in a given DuckDB file (a fresh portal has no UF_CRM_DEBT_SUM yet; no push has run yet) is replaced
by a typed NULL / an empty relation, so the views can always be created; the asset that creates them runs
after every sync and so picks up tables and columns as they appear.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA = "analytics"
TIMEZONE = "Europe/Moscow"  # the infobase's and the portal's local time: months are counted in it
DEAD_LETTER_MIN_FAILURES = 3
DEAD_LETTER_MIN_AGE = "INTERVAL 1 DAY"
FAILURE_STATUSES = ("failed", "rejected")  # journal statuses that mean "this row did not get through"
RECEIVABLES_FLOW = "company_receivables"

# Journal flow name -> the asset tag `flow` of the assets that (re)write it, when they differ.
FLOW_ASSET_TAGS = {
    "company_sync.to_crm": "company_sync",
    "company_sync.to_1c": "company_sync",
    "hold_notifications": "deal_holds",
}
# Flows whose assets are daily-partitioned with the journal key being the day.
PARTITIONED_BY_KEY = ("finance_digest",)

# Columns each view reads, with the type used when the column (or the whole table) is missing.
SOURCES: dict[str, dict[str, str]] = {
    "client_master.clients": {
        "client_id": "VARCHAR",
        "onec_ref": "VARCHAR",
        "company_id": "BIGINT",
        "name": "VARCHAR",
        "match_rule": "VARCHAR",
    },
    "onec.counterparties": {
        "Ref_Key": "VARCHAR",
        "Description": "VARCHAR",
        "ИНН": "VARCHAR",
        "КПП": "VARCHAR",
        "email": "VARCHAR",
        "phone": "VARCHAR",
    },
    "bitrix24.companies": {
        "ID": "VARCHAR",
        "TITLE": "VARCHAR",
        "EMAIL": "VARCHAR",
        "PHONE": "VARCHAR",
        "UF_CRM_DEBT_SUM": "VARCHAR",
        "_extracted_at": "TIMESTAMP",
    },
    "bitrix24.requisites": {
        "ID": "VARCHAR",
        "ENTITY_TYPE_ID": "VARCHAR",
        "ENTITY_ID": "VARCHAR",
        "ACTIVE": "VARCHAR",
        "RQ_INN": "VARCHAR",
        "RQ_KPP": "VARCHAR",
    },
    "bitrix24.deals": {
        "ID": "VARCHAR",
        "COMPANY_ID": "VARCHAR",
        "STAGE_ID": "VARCHAR",
        "STAGE_SEMANTIC_ID": "VARCHAR",
        "OPPORTUNITY": "VARCHAR",
        "CLOSEDATE": "VARCHAR",
    },
    "onec.customer_orders": {
        "Ref_Key": "VARCHAR",
        "Date": "TIMESTAMPTZ",
        "Posted": "BOOLEAN",
        "DeletionMark": "BOOLEAN",
        "Контрагент_Key": "VARCHAR",
        "СуммаДокумента": "DECIMAL(38,2)",
    },
    "onec.invoices": {
        "Ref_Key": "VARCHAR",
        "Date": "TIMESTAMPTZ",
        "Posted": "BOOLEAN",
        "DeletionMark": "BOOLEAN",
        "Контрагент_Key": "VARCHAR",
        "СуммаДокумента": "DECIMAL(38,2)",
    },
    "onec.bank_receipts": {
        "Ref_Key": "VARCHAR",
        "Date": "TIMESTAMPTZ",
        "Posted": "BOOLEAN",
        "DeletionMark": "BOOLEAN",
        "ВидОперации": "VARCHAR",
        "Контрагент_Key": "VARCHAR",
        "СуммаДокумента": "DECIMAL(38,2)",
    },
    "onec.cash_receipts": {
        "Ref_Key": "VARCHAR",
        "Date": "TIMESTAMPTZ",
        "Posted": "BOOLEAN",
        "DeletionMark": "BOOLEAN",
        "ВидОперации": "VARCHAR",
        "Контрагент_Key": "VARCHAR",
        "СуммаДокумента": "DECIMAL(38,2)",
    },
    "onec.receivables_balance": {"Контрагент_Key": "VARCHAR", "СуммаBalance": "DECIMAL(38,2)"},
    "receivables.client_credit_status": {
        "snapshot_date": "TIMESTAMP",
        "client_id": "VARCHAR",
        "onec_ref": "VARCHAR",
        "company_id": "BIGINT",
        "name": "VARCHAR",
        "balance": "DECIMAL(38,2)",
        "debt": "DECIMAL(38,2)",
        "advances": "DECIMAL(38,2)",
        "overdue_amount": "DECIMAL(38,2)",
        "days_overdue": "BIGINT",
        "aging_current": "DECIMAL(38,2)",
        "aging_1_30": "DECIMAL(38,2)",
        "aging_31_60": "DECIMAL(38,2)",
        "aging_61_90": "DECIMAL(38,2)",
        "aging_90_plus": "DECIMAL(38,2)",
        "credit_limit": "DECIMAL(38,2)",
        "status": "VARCHAR",
    },
    "sync.results": {
        "run_id": "VARCHAR",
        "flow": "VARCHAR",
        "key": "VARCHAR",
        "target_id": "VARCHAR",
        "operation": "VARCHAR",
        "status": "VARCHAR",
        "error": "VARCHAR",
        "error_class": "VARCHAR",
        "attempts": "INTEGER",
        "dry_run": "BOOLEAN",
        "recorded_at": "TIMESTAMP",
    },
    "sync.push_state": {"flow": "VARCHAR", "key": "VARCHAR", "payload": "VARCHAR", "pushed_at": "TIMESTAMP"},
}

RUN_FAILURES_DDL = """CREATE TABLE IF NOT EXISTS ops.run_failures (
    run_id VARCHAR, job_name VARCHAR, flow VARCHAR, "trigger" VARCHAR, failed_steps VARCHAR, error VARCHAR,
    failed_at TIMESTAMP, notified_user_ids VARCHAR, notified BOOLEAN)"""


@dataclass(frozen=True)
class View:
    """One analyst view: its name in schema `analytics`, what one row is, its columns' meanings, its SELECT."""

    name: str
    comment: str
    columns: tuple[tuple[str, str], ...]
    select: str

    @property
    def qualified(self) -> str:
        return f"{SCHEMA}.{self.name}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source(table: str, present: dict[str, set[str]]) -> str:
    """A subquery standing for `table` with exactly the columns the views use (typed NULL when missing)."""
    wanted = SOURCES[table]
    schema, name = table.split(".")
    columns = present.get(table)
    parts = [
        f'"{col}"' if columns and col in columns else f'CAST(NULL AS {sql_type}) AS "{col}"'
        for col, sql_type in wanted.items()
    ]
    if not columns:
        return f"(SELECT {', '.join(parts)} WHERE false)"
    return f'(SELECT {", ".join(parts)} FROM "{schema}"."{name}")'


# Normalisation as DuckDB macros, so analysts can use them too. They follow domain/normalize.py closely
# enough for comparison (legal forms stripped, digits of phones and IDs); they do not validate checksums.
_FORMS = (
    "общество с ограниченной ответственностью|общество с дополнительной ответственностью|"
    "публичное акционерное общество|непубличное акционерное общество|закрытое акционерное общество|"
    "открытое акционерное общество|акционерное общество|индивидуальный предприниматель|"
    "федеральное государственное унитарное предприятие|государственное унитарное предприятие|"
    "муниципальное унитарное предприятие|автономная некоммерческая организация|"
    "[оo0]{3}|[оo0]д[оo0]|п[аa][оo0]|н[аa][оo0]|[з3][аa][оo0]|[оo0][аa][оo0]|[аa][оo0]|ип|фгуп|гуп|муп|ан[оo0]"
)

MACROS = [
    f"""CREATE OR REPLACE MACRO {SCHEMA}.norm_name(x) AS nullif(replace(
        regexp_replace(regexp_replace(
            trim(regexp_replace(replace(lower(CAST(x AS VARCHAR)), 'ё', 'е'), '[^\\p{{L}}\\p{{N}}]+', ' ', 'g')),
            '^({_FORMS})\\s+', ''), '\\s+({_FORMS})$', ''), ' ', ''), '')""",
    f"CREATE OR REPLACE MACRO {SCHEMA}.norm_digits(x) AS "
    "nullif(regexp_replace(coalesce(CAST(x AS VARCHAR), ''), '[^0-9]', '', 'g'), '')",
    f"CREATE OR REPLACE MACRO {SCHEMA}.norm_email(x) AS "
    "nullif(lower(trim(regexp_replace(trim(CAST(x AS VARCHAR), ' <>'), '^mailto:', '', 'i'))), '')",
    # Extensions ('доб. 123', 'ext 5') dropped before taking the digits, as normalize_phone does.
    f"CREATE OR REPLACE MACRO {SCHEMA}.phone_digits(x) AS "
    f"{SCHEMA}.norm_digits(regexp_replace(CAST(x AS VARCHAR), '(доб|ext|x)\\.?.*$', '', 'i'))",
    f"""CREATE OR REPLACE MACRO {SCHEMA}.norm_phone(x) AS (
        CASE WHEN {SCHEMA}.phone_digits(x) IS NULL THEN NULL
             WHEN length({SCHEMA}.phone_digits(x)) = 11 AND left({SCHEMA}.phone_digits(x), 1) IN ('7', '8')
                 THEN '+7' || substr({SCHEMA}.phone_digits(x), 2)
             WHEN length({SCHEMA}.phone_digits(x)) = 10 THEN '+7' || {SCHEMA}.phone_digits(x)
             ELSE '+' || {SCHEMA}.phone_digits(x) END)""",
]


def _views(present: dict[str, set[str]]) -> list[View]:
    s = {table: source(table, present) for table in SOURCES}
    failures = ", ".join(_quote(x) for x in FAILURE_STATUSES)
    asset_tag = (
        "CASE flow "
        + " ".join(f"WHEN {_quote(k)} THEN {_quote(v)}" for k, v in FLOW_ASSET_TAGS.items())
        + " ELSE flow END"
    )
    partition_arg = (
        f"CASE WHEN flow IN ({', '.join(_quote(f) for f in PARTITIONED_BY_KEY)}) "
        "THEN ' --partition ' || key ELSE '' END"
    )
    from_customer = "AND coalesce(\"ВидОперации\", 'ОтПокупателя') = 'ОтПокупателя'"
    local_month = f"CAST(date_trunc('month', \"Date\" AT TIME ZONE '{TIMEZONE}') AS DATE)"

    def onec_docs(table: str, amount_name: str, extra: str = "") -> str:
        return (
            f'SELECT "Контрагент_Key" AS onec_ref, {local_month} AS month, count(*) AS docs, '
            f'sum("СуммаДокумента") AS {amount_name} FROM {s[table]} '
            f'WHERE "Posted" AND NOT coalesce("DeletionMark", false) {extra} GROUP BY ALL'
        )

    return [
        View(
            "client_reconciliation",
            "Client reconciliation, one row per client of client_master.clients: matched / only_1c / only_crm, "
            "and for matched clients which of name, INN, KPP, e-mail, phone differ after normalisation.",
            (
                ("client_id", "client master ID (client_master.clients)"),
                ("match_status", "matched (a 1C counterparty and a CRM company), only_1c, only_crm"),
                ("match_rule", "how the pair was matched (id_link, inn_kpp, ogrn, inn_branch_rule, ...)"),
                ("onec_ref", "1C counterparty Ref_Key"),
                ("company_id", "CRM company ID"),
                ("onec_name", "1C Description"),
                ("crm_name", "CRM company TITLE"),
                ("onec_inn", "1C ИНН"),
                ("crm_inn", "RQ_INN of the company's first active requisite"),
                ("onec_kpp", "1C КПП"),
                ("crm_kpp", "RQ_KPP of that requisite"),
                ("onec_email", "1C e-mail (normalised)"),
                ("crm_emails", "CRM EMAIL multifield values (normalised)"),
                ("onec_phone", "1C phone (normalised, +7...)"),
                ("crm_phones", "CRM PHONE values (normalised)"),
                ("conflicting_fields", "list of name/inn/kpp/email/phone differing while both sides have a value"),
                ("has_conflict", "true when conflicting_fields is not empty"),
            ),
            f"""
WITH req AS (
    SELECT TRY_CAST("ENTITY_ID" AS BIGINT) AS company_id,
           arg_min("RQ_INN", TRY_CAST("ID" AS BIGINT)) AS inn, arg_min("RQ_KPP", TRY_CAST("ID" AS BIGINT)) AS kpp
    FROM {s["bitrix24.requisites"]} WHERE "ENTITY_TYPE_ID" = '4' AND coalesce("ACTIVE", 'Y') <> 'N' GROUP BY 1),
crm AS (
    SELECT TRY_CAST("ID" AS BIGINT) AS company_id, "TITLE" AS crm_name,
           list_sort(list_distinct(list_filter(list_transform(
               coalesce(json_extract_string("EMAIL", '$[*].VALUE'), []), lambda v: {SCHEMA}.norm_email(v)), \
lambda v: v IS NOT NULL))) AS crm_emails,
           list_sort(list_distinct(list_filter(list_transform(
               coalesce(json_extract_string("PHONE", '$[*].VALUE'), []), lambda v: {SCHEMA}.norm_phone(v)), \
lambda v: v IS NOT NULL))) AS crm_phones
    FROM {s["bitrix24.companies"]}),
pairs AS (
    SELECT c.client_id,
           CASE WHEN c.onec_ref IS NOT NULL AND c.company_id IS NOT NULL THEN 'matched'
                WHEN c.onec_ref IS NOT NULL THEN 'only_1c' ELSE 'only_crm' END AS match_status,
           c.match_rule, c.onec_ref, c.company_id,
           o."Description" AS onec_name, crm.crm_name,
           o."ИНН" AS onec_inn, req.inn AS crm_inn, o."КПП" AS onec_kpp, req.kpp AS crm_kpp,
           {SCHEMA}.norm_email(o.email) AS onec_email, crm.crm_emails,
           {SCHEMA}.norm_phone(o.phone) AS onec_phone, crm.crm_phones
    FROM {s["client_master.clients"]} c
    LEFT JOIN {s["onec.counterparties"]} o ON o."Ref_Key" = c.onec_ref
    LEFT JOIN crm ON crm.company_id = c.company_id
    LEFT JOIN req ON req.company_id = c.company_id),
judged AS (
    SELECT *, CASE WHEN match_status <> 'matched' THEN []::VARCHAR[] ELSE list_filter([
        CASE WHEN {SCHEMA}.norm_name(onec_name) <> {SCHEMA}.norm_name(crm_name) THEN 'name' END,
        CASE WHEN {SCHEMA}.norm_digits(onec_inn) <> {SCHEMA}.norm_digits(crm_inn) THEN 'inn' END,
        CASE WHEN {SCHEMA}.norm_digits(onec_kpp) <> {SCHEMA}.norm_digits(crm_kpp) THEN 'kpp' END,
        CASE WHEN onec_email IS NOT NULL AND len(crm_emails) > 0 AND NOT list_contains(crm_emails, onec_email)
             THEN 'email' END,
        CASE WHEN onec_phone IS NOT NULL AND len(crm_phones) > 0 AND NOT list_contains(crm_phones, onec_phone)
             THEN 'phone' END], lambda f: f IS NOT NULL) END AS conflicting_fields
    FROM pairs)
SELECT client_id, match_status, match_rule, onec_ref, company_id, onec_name, crm_name, onec_inn, crm_inn,
       onec_kpp, crm_kpp, onec_email, crm_emails, onec_phone, crm_phones, conflicting_fields,
       len(conflicting_fields) > 0 AS has_conflict
FROM judged""",
        ),
        View(
            "balance_reconciliation",
            "Balance reconciliation, one row per client of the latest receivables.client_credit_status day: "
            "1C's balance against the CRM's UF_CRM_DEBT_SUM (as last extracted and as last pushed), "
            "with the difference and a status.",
            (
                ("snapshot_date", "the receivables day compared"),
                ("client_id", "client master ID"),
                ("onec_ref", "1C counterparty Ref_Key"),
                ("company_id", "CRM company ID (NULL = not in the CRM)"),
                ("name", "client name"),
                ("onec_balance", "1C balance of the client that day (debt minus advances)"),
                (
                    "onec_register_balance",
                    "sum of onec.receivables_balance СуммаBalance of the counterparty (the register as last extracted)",
                ),
                ("crm_debt_extracted", "UF_CRM_DEBT_SUM in bitrix24.companies (NULL: empty or field absent)"),
                ("crm_extracted_at", "when bitrix24.companies was extracted (UTC)"),
                ("crm_debt_pushed", "UF_CRM_DEBT_SUM last written successfully (sync.push_state)"),
                ("crm_pushed_at", "when it was written (UTC)"),
                ("crm_debt", "the CRM's debt as known latest: the push when newer than the extract, else the extract"),
                ("difference", "crm_debt - onec_balance"),
                (
                    "status",
                    "equal / crm_stale (differs) / crm_missing (linked, no value in the CRM) / "
                    "only_1c (no CRM company)",
                ),
            ),
            f"""
WITH latest AS (
    SELECT * FROM {s["receivables.client_credit_status"]}
    WHERE snapshot_date = (SELECT max(snapshot_date) FROM {s["receivables.client_credit_status"]})),
reg AS (SELECT "Контрагент_Key" AS onec_ref, sum("СуммаBalance") AS onec_register_balance
        FROM {s["onec.receivables_balance"]} GROUP BY 1),
crm AS (SELECT TRY_CAST("ID" AS BIGINT) AS company_id,
               TRY_CAST(nullif(trim(CAST("UF_CRM_DEBT_SUM" AS VARCHAR)), '') AS DECIMAL(18,2)) AS crm_debt_extracted,
               "_extracted_at" AS crm_extracted_at
        FROM {s["bitrix24.companies"]}),
pushed AS (SELECT TRY_CAST(key AS BIGINT) AS company_id,
                  TRY_CAST(json_extract_string(payload, '$.UF_CRM_DEBT_SUM') AS DECIMAL(18,2)) AS crm_debt_pushed,
                  pushed_at AS crm_pushed_at
           FROM {s["sync.push_state"]} WHERE flow = '{RECEIVABLES_FLOW}'),
joined AS (
    SELECT l.snapshot_date, l.client_id, l.onec_ref, l.company_id, l.name, l.balance AS onec_balance,
           reg.onec_register_balance, crm.crm_debt_extracted, crm.crm_extracted_at,
           pushed.crm_debt_pushed, pushed.crm_pushed_at,
           CASE WHEN pushed.crm_pushed_at IS NOT NULL
                     AND (crm.crm_extracted_at IS NULL OR pushed.crm_pushed_at > crm.crm_extracted_at)
                THEN pushed.crm_debt_pushed ELSE crm.crm_debt_extracted END AS crm_debt
    FROM latest l
    LEFT JOIN reg ON reg.onec_ref = l.onec_ref
    LEFT JOIN crm ON crm.company_id = l.company_id
    LEFT JOIN pushed ON pushed.company_id = l.company_id)
SELECT *, crm_debt - onec_balance AS difference,
       CASE WHEN company_id IS NULL THEN 'only_1c'
            WHEN crm_debt IS NULL THEN 'crm_missing'
            WHEN crm_debt = onec_balance THEN 'equal'
            ELSE 'crm_stale' END AS status
FROM joined""",
        ),
        View(
            "revenue_reconciliation",
            "Revenue reconciliation, one row per client and month (Moscow time): deals won in the CRM against "
            "1C's customer orders, invoices and payments received (bank + cash).",
            (
                ("client_id", "client master ID (crm:<company ID> / 1c:<Ref_Key> when not in client_master)"),
                ("client_name", "client name"),
                ("month", "first day of the month"),
                ("deals_won", "CRM deals won that month (semantic S, by CLOSEDATE)"),
                ("deals_won_amount", "sum of their OPPORTUNITY"),
                ("orders", "posted 1C customer orders dated that month"),
                ("orders_amount", "sum of their СуммаДокумента"),
                ("invoices", "posted 1C invoices (СчетНаОплату) dated that month"),
                ("invoiced_amount", "sum of their СуммаДокумента"),
                ("paid_amount", "posted bank + cash receipts from the customer dated that month"),
                ("won_minus_orders", "deals_won_amount - orders_amount (0 when both empty)"),
                ("invoiced_minus_paid", "invoiced_amount - paid_amount"),
            ),
            f"""
WITH clients AS (SELECT client_id, onec_ref, company_id, name FROM {s["client_master.clients"]}),
won AS (
    SELECT coalesce(c.client_id, 'crm:' || d."COMPANY_ID") AS client_id,
           CAST(substr(d."CLOSEDATE", 1, 7) || '-01' AS DATE) AS month,
           count(*) AS deals_won, sum(TRY_CAST(d."OPPORTUNITY" AS DECIMAL(18,2))) AS deals_won_amount
    FROM {s["bitrix24.deals"]} d LEFT JOIN clients c ON c.company_id = TRY_CAST(d."COMPANY_ID" AS BIGINT)
    WHERE (d."STAGE_SEMANTIC_ID" = 'S' OR d."STAGE_ID" = 'WON' OR d."STAGE_ID" LIKE '%:WON')
      AND d."CLOSEDATE" IS NOT NULL AND d."COMPANY_ID" IS NOT NULL AND d."COMPANY_ID" <> '0'
    GROUP BY ALL),
onec_side AS (
    SELECT onec_ref, month, docs AS orders, orders_amount, 0 AS invoices, NULL::DECIMAL(38,2) AS invoiced_amount,
           NULL::DECIMAL(38,2) AS paid_amount FROM ({onec_docs("onec.customer_orders", "orders_amount")})
    UNION ALL
    SELECT onec_ref, month, 0, NULL, docs, invoiced_amount, NULL FROM ({onec_docs("onec.invoices", "invoiced_amount")})
    UNION ALL
    SELECT onec_ref, month, 0, NULL, 0, NULL, paid_amount
    FROM ({onec_docs("onec.bank_receipts", "paid_amount", from_customer)})
    UNION ALL
    SELECT onec_ref, month, 0, NULL, 0, NULL, paid_amount
    FROM ({onec_docs("onec.cash_receipts", "paid_amount", from_customer)})),
onec_month AS (
    SELECT coalesce(c.client_id, '1c:' || o.onec_ref) AS client_id, o.month,
           sum(o.orders) AS orders, sum(o.orders_amount) AS orders_amount, sum(o.invoices) AS invoices,
           sum(o.invoiced_amount) AS invoiced_amount, sum(o.paid_amount) AS paid_amount
    FROM onec_side o LEFT JOIN clients c ON c.onec_ref = o.onec_ref GROUP BY ALL),
joined AS (
    SELECT coalesce(w.client_id, m.client_id) AS client_id, coalesce(w.month, m.month) AS month,
           coalesce(w.deals_won, 0) AS deals_won, coalesce(w.deals_won_amount, 0)::DECIMAL(38,2) AS deals_won_amount,
           coalesce(m.orders, 0) AS orders, coalesce(m.orders_amount, 0)::DECIMAL(38,2) AS orders_amount,
           coalesce(m.invoices, 0) AS invoices, coalesce(m.invoiced_amount, 0)::DECIMAL(38,2) AS invoiced_amount,
           coalesce(m.paid_amount, 0)::DECIMAL(38,2) AS paid_amount
    FROM won w FULL OUTER JOIN onec_month m ON m.client_id = w.client_id AND m.month = w.month)
SELECT j.client_id, c.name AS client_name, j.month, j.deals_won, j.deals_won_amount, j.orders, j.orders_amount,
       j.invoices, j.invoiced_amount, j.paid_amount,
       j.deals_won_amount - j.orders_amount AS won_minus_orders, \
j.invoiced_amount - j.paid_amount AS invoiced_minus_paid
FROM joined j LEFT JOIN clients c ON c.client_id = j.client_id""",
        ),
        View(
            "client_aging",
            "Aging per client, one row per client of the latest receivables day: debt split by days overdue.",
            (
                ("snapshot_date", "the receivables day"),
                ("client_id", "client master ID"),
                ("company_id", "CRM company ID"),
                ("name", "client name"),
                ("balance", "debt minus advances"),
                ("debt", "amount owed"),
                ("overdue_amount", "part of debt past its due date"),
                ("days_overdue", "days since the oldest unpaid due date"),
                ("aging_current", "not yet due"),
                ("aging_1_30", "1-30 days overdue"),
                ("aging_31_60", "31-60 days overdue"),
                ("aging_61_90", "61-90 days overdue"),
                ("aging_90_plus", "more than 90 days overdue"),
                ("credit_limit", "applied credit limit"),
                ("credit_status", "ok / warning / hold"),
            ),
            f"""
SELECT snapshot_date, client_id, company_id, name, balance, debt, overdue_amount, days_overdue, aging_current,
       aging_1_30, aging_31_60, aging_61_90, aging_90_plus, credit_limit, status AS credit_status
FROM {s["receivables.client_credit_status"]}
WHERE snapshot_date = (SELECT max(snapshot_date) FROM {s["receivables.client_credit_status"]})""",
        ),
        View(
            "portfolio_aging",
            "Aging of the whole portfolio, one row per bucket (current, 1-30, 31-60, 61-90, 90+) of the latest "
            "receivables day.",
            (
                ("snapshot_date", "the receivables day"),
                ("bucket_order", "1..5, for sorting"),
                ("bucket", "current / 1-30 / 31-60 / 61-90 / 90+"),
                ("amount", "sum over clients"),
                ("clients", "clients with a non-zero amount in the bucket"),
                ("share", "amount / total debt"),
            ),
            f"""
WITH latest AS (SELECT * FROM {SCHEMA}.client_aging),
buckets AS (
    SELECT snapshot_date, 1 AS bucket_order, 'current' AS bucket, aging_current AS amount FROM latest
    UNION ALL SELECT snapshot_date, 2, '1-30', aging_1_30 FROM latest
    UNION ALL SELECT snapshot_date, 3, '31-60', aging_31_60 FROM latest
    UNION ALL SELECT snapshot_date, 4, '61-90', aging_61_90 FROM latest
    UNION ALL SELECT snapshot_date, 5, '90+', aging_90_plus FROM latest)
SELECT snapshot_date, bucket_order, bucket, coalesce(sum(amount), 0)::DECIMAL(38,2) AS amount,
       count(*) FILTER (WHERE amount <> 0) AS clients,
       round(coalesce(sum(amount), 0) / nullif(sum(sum(amount)) OVER (), 0), 4) AS share
FROM buckets GROUP BY ALL ORDER BY bucket_order""",
        ),
        View(
            "flow_runs",
            "Push and flow history, one row per run and flow of sync.results: rows planned, ok, failed, "
            "rejected, deferred, dry-run.",
            (
                ("run_id", "Dagster run ID"),
                ("flow", "journal flow name"),
                ("started_at", "first result recorded (UTC)"),
                ("finished_at", "last result recorded (UTC)"),
                ("planned", "rows with a result in the run"),
                ("ok", "status ok"),
                ("failed", "status failed"),
                ("rejected", "status rejected (bad data, not sent)"),
                ("deferred", "status deferred"),
                ("dry_run", "true when the run only planned (dry run)"),
                ("dry_run_rows", "rows journaled as dry run"),
                ("attempts", "sum of write attempts"),
            ),
            f"""
SELECT run_id, flow, min(recorded_at) AS started_at, max(recorded_at) AS finished_at, count(*) AS planned,
       count(*) FILTER (WHERE status = 'ok') AS ok, count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'rejected') AS rejected, count(*) FILTER (WHERE status = 'deferred') AS deferred,
       bool_or(coalesce(dry_run, false)) AS dry_run, count(*) FILTER (WHERE dry_run) AS dry_run_rows,
       sum(attempts) AS attempts
FROM {s["sync.results"]} GROUP BY run_id, flow""",
        ),
        View(
            "push_latest_status",
            "Latest status per key, one row per (flow, key) of sync.results (dry runs left out).",
            (
                ("flow", "journal flow name"),
                ("key", "the row's key in the flow (company ID, 1C Ref_Key, day, ...)"),
                ("status", "latest status: ok / failed / rejected / deferred"),
                ("operation", "latest operation"),
                ("target_id", "ID written in the target system"),
                ("error_class", "latest error class"),
                ("error", "latest error text"),
                ("recorded_at", "when (UTC)"),
                ("run_id", "the run"),
                ("results", "results recorded for the key so far"),
            ),
            f"""
SELECT flow, key, arg_max(status, recorded_at) AS status, arg_max(operation, recorded_at) AS operation,
       arg_max(target_id, recorded_at) AS target_id, arg_max(error_class, recorded_at) AS error_class,
       arg_max(error, recorded_at) AS error, max(recorded_at) AS recorded_at, arg_max(run_id, recorded_at) AS run_id,
       count(*) AS results
FROM {s["sync.results"]} WHERE NOT coalesce(dry_run, false) GROUP BY flow, key""",
        ),
        View(
            "dead_letters",
            f"Dead letters, one row per (flow, key) whose latest results failed at least "
            f"{DEAD_LETTER_MIN_FAILURES} times in a row or have been failing for more than a day, "
            "with the commands that replay them.",
            (
                ("flow", "journal flow name"),
                ("key", "the row's key in the flow"),
                ("error_class", "error class of the latest failure (retryable, data, auth, ...; data for rejected)"),
                ("last_status", "failed or rejected"),
                ("last_error", "latest error text"),
                ("failures", "consecutive failed results since the last success"),
                ("attempts", "write attempts over those failures"),
                ("first_failure_at", "first failure of the streak (UTC)"),
                ("last_failure_at", "latest failure (UTC)"),
                ("last_run_id", "run of the latest failure"),
                ("replay_command", "clears the (flow, key) baseline so the next run plans the row again"),
                ("materialize_command", "runs the flow's assets now (Dagster CLI)"),
            ),
            f"""
WITH r AS (SELECT * FROM {s["sync.results"]} WHERE NOT coalesce(dry_run, false)),
last_ok AS (SELECT flow, key, max(recorded_at) AS last_ok_at FROM r WHERE status = 'ok' GROUP BY ALL),
latest AS (SELECT flow, key, arg_max(status, recorded_at) AS last_status FROM r GROUP BY ALL),
streak AS (
    SELECT r.flow, r.key, count(*) AS failures, sum(coalesce(r.attempts, 1)) AS attempts,
           min(r.recorded_at) AS first_failure_at, max(r.recorded_at) AS last_failure_at,
           arg_max(r.error, r.recorded_at) AS last_error, arg_max(r.status, r.recorded_at) AS failed_status,
           arg_max(coalesce(r.error_class, CASE WHEN r.status = 'rejected' THEN 'data' END), \
r.recorded_at) AS error_class,
           arg_max(r.run_id, r.recorded_at) AS last_run_id
    FROM r LEFT JOIN last_ok USING (flow, key)
    WHERE r.status IN ({failures}) AND (last_ok.last_ok_at IS NULL OR r.recorded_at > last_ok.last_ok_at)
    GROUP BY ALL)
SELECT st.flow, st.key, st.error_class, st.failed_status AS last_status, st.last_error, st.failures, st.attempts,
       st.first_failure_at, st.last_failure_at, st.last_run_id,
       'python -m b24_1c_assets.dead_letters replay --flow ' || st.flow || ' --key ''' || \
replace(st.key, '''', '''\\''''')
           || '''' AS replay_command,
       'dagster asset materialize -m b24_1c_assets.definitions --select ''tag:flow='
           || (SELECT {asset_tag} FROM (SELECT st.flow AS flow)) || ''''
           || (SELECT {partition_arg} FROM (SELECT st.flow AS flow, st.key AS key)) AS materialize_command
FROM streak st JOIN latest l USING (flow, key)
WHERE l.last_status IN ({failures})
  AND (st.failures >= {DEAD_LETTER_MIN_FAILURES}
       OR st.first_failure_at < CAST(current_timestamp AT TIME ZONE 'UTC' AS TIMESTAMP) - {DEAD_LETTER_MIN_AGE})""",
        ),
    ]


def view_definitions(present: dict[str, set[str]] | None = None) -> list[View]:
    """The views in creation order; `present` = table -> its columns in the target DuckDB file."""
    return _views(present or {})


def statements(present: dict[str, set[str]]) -> list[str]:
    """Every statement creating schema `analytics`, its macros, its views with comments, and ops.run_failures."""
    out = [f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}", "CREATE SCHEMA IF NOT EXISTS ops", RUN_FAILURES_DDL, *MACROS]
    for view in _views(present):
        out.append(f"CREATE OR REPLACE VIEW {view.qualified} AS {view.select.strip()}")
        out.append(f"COMMENT ON VIEW {view.qualified} IS {_quote(view.comment)}")
        for column, meaning in view.columns:
            out.append(f"COMMENT ON COLUMN {view.qualified}.{column} IS {_quote(meaning)}")
    return out


def columns_reference() -> str:
    """Markdown: every view with what one row is and each column's meaning (kept in docs/analytics.md)."""
    parts = []
    for view in _views({}):
        parts.append(f"### `{view.qualified}`\n\n{view.comment}\n\n| column | meaning |\n|---|---|")
        parts.extend(f"| `{c}` | {m} |" for c, m in view.columns)
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":  # regenerates the columns section of docs/analytics.md (see there)
    print(columns_reference(), end="")
