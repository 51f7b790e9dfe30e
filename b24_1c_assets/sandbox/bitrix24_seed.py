"""Project the sandbox `World` into the Bitrix24 portal's records.

- users -> `user.get` users;
- each CRM spelling of a party -> one company (duplicates in the CRM are several spellings of one party;
  parties present only in 1C get none) with EMAIL/PHONE as typed, and one requisite (preset "Организация" for
  legal entities, "ИП" for entrepreneurs) holding the spelling's INN/KPP/OGRN(IP);
- spellings flagged `linked_onec` carry `ORIGINATOR_ID = ONEC_ORIGINATOR_ID` and `ORIGIN_ID` = the party's
  1C Ref_Key (`world.guid("counterparty", party.key)`), as an earlier integration would have left them;
  a spelling may name another ORIGINATOR_ID (a connector not in the trusted list) or another 1C record
  (`Spelling.originator` / `origin_of`: a deleted duplicate, no record at all, another party);
- one contact (the party's accountant) per party with companies, attached to its first company;
- products for items with `in_crm` (XML_ID = the 1C item Ref_Key `world.guid("item", item.key)`);
- pipelines 0 "Общая", 1 "Опт", 2 "Проекты" with the default stages (no `HOLD` / `C<N>:HOLD`: the
  deal-holds flow adds it with crm.status.add, as on a real portal), and deals under their world IDs with
  product rows.
"""

from __future__ import annotations

import gc
from datetime import datetime, timedelta

from b24_1c_assets.sandbox.bitrix24_crm import CrmState, format_datetime, format_money
from b24_1c_assets.sandbox.onec_seed import counterparty_guid
from b24_1c_assets.sandbox.world import World

ONEC_ORIGINATOR_ID = "1C_UNF"  # what the earlier integration wrote to ORIGINATOR_ID of linked companies
PIPELINES = {0: "Общая", 1: "Опт", 2: "Проекты"}
PRESET_LEGAL, PRESET_IP = 1, 2
MEASURE_CODES = {"шт": (796, "шт"), "кг": (166, "кг"), "м": (6, "м"), "усл": (796, "усл")}
LARGE_SEED = 50_000  # companies + deals from which the seeded heap is frozen out of the cyclic GC
DEPARTMENTS = {"sales": 1, "finance": 2, "ops": 3}
_FIRST_NAMES = ("Ольга", "Ирина", "Татьяна", "Наталья", "Елена", "Светлана", "Марина", "Анна", "Юлия")
_LAST_NAMES = ("Иванова", "Смирнова", "Кузнецова", "Попова", "Соколова", "Лебедева", "Новикова", "Морозова")


def stage_id(category_id: int, stage: str) -> str:
    """World stage ('WON') -> portal STAGE_ID ('WON' in pipeline 0, 'C1:WON' in pipeline 1)."""
    return stage if category_id == 0 else f"C{category_id}:{stage}"


def seed_portal(state: CrmState, world: World) -> dict[str, int]:
    """Fill `state` from `world` (no offline events are queued). Returns counts per entity."""
    # Millions of small dicts: the cyclic GC would rescan the growing heap again and again (10x slower);
    # nothing built here forms cycles, so it pauses while seeding.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    with state.lock:
        state.events_enabled = False
        try:
            counts = _seed(state, world)
        finally:
            state.events_enabled = True
            if gc_was_enabled:
                gc.enable()
    if counts["companies"] + counts["deals"] >= LARGE_SEED:
        # Big portals live as long as the process: keep later collections from rescanning their records
        # (a full collection over millions of dicts stalls requests for seconds). Process-wide, hence only here.
        gc.freeze()
    return counts


def _seed(state: CrmState, world: World) -> dict[str, int]:
    for user in world.users:
        state.add_user(user.id, user.name, user.last_name, user.email, user.active, DEPARTMENTS.get(user.department, 1))
    for category_id, name in PIPELINES.items():
        state.add_category(category_id, name, sort=100 + 10 * category_id)
    for category_id in sorted({d.category_id for d in world.deals} - set(PIPELINES)):
        state.add_category(category_id, f"Воронка {category_id}", sort=100 + 10 * category_id)

    # Finance keeps agreed credit limits on the company card (UNF has no such field); the product reads it.
    state.define_userfield(
        "company",
        {
            "FIELD_NAME": "CREDIT_LIMIT",
            "USER_TYPE_ID": "money",
            "EDIT_FORM_LABEL": "Кредитный лимит",
            "LIST_COLUMN_LABEL": "Кредитный лимит",
        },
    )
    company_of_party: dict[int, int] = {}
    contact_of_party: dict[int, int] = {}
    companies = contacts = 0
    for party in world.parties:
        if party.presence == "1c" or not party.crm_spellings:
            continue
        created = format_datetime(world.as_of - timedelta(days=30 + party.key % 700, minutes=party.key % 600))
        origin = world.guid("counterparty", party.key)
        for spelling in party.crm_spellings:
            company_id = state.seed_record(
                "company",
                {
                    "TITLE": spelling.title,
                    "COMPANY_TYPE": "CUSTOMER",
                    "ASSIGNED_BY_ID": str(party.manager_id),
                    "CREATED_BY_ID": str(party.manager_id),
                    "MODIFY_BY_ID": str(party.manager_id),
                    "DATE_CREATE": created,
                    "DATE_MODIFY": created,
                    "EMAIL": [{"VALUE": spelling.email, "VALUE_TYPE": "WORK"}] if spelling.email else [],
                    "PHONE": [{"VALUE": spelling.phone, "VALUE_TYPE": "WORK"}] if spelling.phone else [],
                    "ORIGINATOR_ID": (spelling.originator or ONEC_ORIGINATOR_ID) if spelling.linked_onec else None,
                    "ORIGIN_ID": (counterparty_guid(world, *spelling.origin_of) if spelling.origin_of else origin)
                    if spelling.linked_onec
                    else None,
                    "UF_CRM_CREDIT_LIMIT": f"{party.credit_limit:.2f}|RUB" if party.credit_limit is not None else None,
                },
            )
            companies += 1
            company_of_party.setdefault(party.key, company_id)
            legal = party.kind == "legal"
            state.seed_record(
                "requisite",
                {
                    "ENTITY_TYPE_ID": "4",
                    "ENTITY_ID": str(company_id),
                    "PRESET_ID": str(PRESET_LEGAL if legal else PRESET_IP),
                    "NAME": "Организация" if legal else "ИП",
                    "ACTIVE": "Y",
                    "SORT": "500",
                    "DATE_CREATE": created,
                    "DATE_MODIFY": created,
                    "CREATED_BY_ID": str(party.manager_id),
                    "MODIFY_BY_ID": str(party.manager_id),
                    "RQ_COMPANY_NAME": spelling.title if legal else None,
                    "RQ_COMPANY_FULL_NAME": party.full_name if legal else None,
                    "RQ_NAME": None if legal else party.short_name,
                    "RQ_INN": spelling.inn,
                    "RQ_KPP": spelling.kpp if legal else None,
                    "RQ_OGRN": spelling.ogrn if legal else None,
                    "RQ_OGRNIP": None if legal else spelling.ogrn,
                },
            )
        contact_of_party[party.key] = state.seed_record(
            "contact",
            {
                "NAME": _FIRST_NAMES[party.key % len(_FIRST_NAMES)],
                "LAST_NAME": _LAST_NAMES[party.key % len(_LAST_NAMES)],
                "POST": "Бухгалтер",
                "COMPANY_ID": str(company_of_party[party.key]),
                "ASSIGNED_BY_ID": str(party.manager_id),
                "DATE_CREATE": created,
                "DATE_MODIFY": created,
                "TYPE_ID": "CLIENT",
                "EMAIL": [{"VALUE": party.email, "VALUE_TYPE": "WORK"}] if party.email else [],
                "PHONE": [{"VALUE": party.phone, "VALUE_TYPE": "WORK"}] if party.phone else [],
            },
        )
        contacts += 1

    product_of_item: dict[int, int] = {}
    items = {item.key: item for item in world.items}
    stamp = format_datetime(world.as_of - timedelta(days=400))
    for item in world.items:
        if not item.in_crm:
            continue
        measure = MEASURE_CODES.get(item.unit, (796, item.unit))
        product_of_item[item.key] = state.seed_record(
            "product",
            {
                "NAME": item.name,
                "CODE": item.article,
                "ACTIVE": "N" if item.deleted else "Y",
                "SORT": "500",
                "PRICE": format_money(item.price),
                "CURRENCY_ID": "RUB",
                "XML_ID": world.guid("item", item.key),
                "MEASURE": str(measure[0]),
                "VAT_INCLUDED": "Y",
                "VAT_ID": {20: "3", 10: "2", 0: "1"}.get(item.vat_rate),
                "CATALOG_ID": "24",
                "DATE_CREATE": stamp,
                "TIMESTAMP_X": stamp,
            },
        )

    for deal in sorted(world.deals, key=lambda d: d.key):
        semantic = {"WON": "S", "LOSE": "F"}.get(deal.stage, "P")
        created = format_datetime(deal.created)
        contact_id = contact_of_party.get(deal.party_key)
        deal_wire_id = str(deal.key)
        state.seed_record(
            "deal",
            {
                "TITLE": deal.title,
                "TYPE_ID": "SALE",
                "CATEGORY_ID": str(deal.category_id),
                "STAGE_ID": stage_id(deal.category_id, deal.stage),
                "STAGE_SEMANTIC_ID": semantic,
                "CLOSED": "N" if semantic == "P" else "Y",
                "IS_NEW": "N",
                "COMPANY_ID": str(company_of_party[deal.party_key]) if deal.party_key in company_of_party else "0",
                "CONTACT_ID": str(contact_id) if contact_id else None,
                "OPPORTUNITY": format_money(deal.amount),
                "CURRENCY_ID": "RUB",
                "ASSIGNED_BY_ID": str(deal.manager_id),
                "CREATED_BY_ID": str(deal.manager_id),
                "MODIFY_BY_ID": str(deal.manager_id),
                "BEGINDATE": format_datetime(datetime.combine(deal.created.date(), datetime.min.time())),
                "CLOSEDATE": format_datetime(
                    datetime.combine(deal.created.date() + timedelta(days=30), datetime.min.time())
                ),
                "DATE_CREATE": created,
                "DATE_MODIFY": created,
            },
            record_id=deal.key,
        )
        rows = []
        for sort, line in enumerate(deal.lines, 1):
            item = items.get(line.item_key)
            code, unit = MEASURE_CODES.get(item.unit if item else "шт", (796, "шт"))
            name = item.name if item else f"Товар {line.item_key}"
            price = float(line.price)
            state.product_row_seq += 1
            # The same shape `crm.deal.productrows.set` stores (see CrmState._product_row), built directly: fast.
            rows.append(
                {
                    "ID": str(state.product_row_seq),
                    "OWNER_ID": deal_wire_id,
                    "OWNER_TYPE": "D",
                    "PRODUCT_ID": product_of_item.get(line.item_key, 0),
                    "PRODUCT_NAME": name,
                    "ORIGINAL_PRODUCT_NAME": name,
                    "PRICE": price,
                    "PRICE_EXCLUSIVE": price,
                    "PRICE_NETTO": price,
                    "PRICE_BRUTTO": price,
                    "QUANTITY": float(line.quantity),
                    "DISCOUNT_TYPE_ID": 1,
                    "DISCOUNT_RATE": 0,
                    "DISCOUNT_SUM": 0.0,
                    "TAX_RATE": float(item.vat_rate if item else 20),
                    "TAX_INCLUDED": "Y",
                    "CUSTOMIZED": "Y",
                    "MEASURE_CODE": code,
                    "MEASURE_NAME": unit,
                    "SORT": sort * 10,
                }
            )
        state.product_rows[deal.key] = rows
    return {
        "users": len(world.users),
        "companies": companies,
        "requisites": companies,
        "contacts": contacts,
        "products": len(product_of_item),
        "deals": len(world.deals),
    }
