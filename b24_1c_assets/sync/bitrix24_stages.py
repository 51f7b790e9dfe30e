"""Pipelines and stages the product needs on the portal: read them, and create the deal "Suspended" stage.

A portal has no `HOLD` / `C<N>:HOLD` stage until someone adds it. Pipelines come from `crm.category.list
{entityTypeId: 2}` (pipeline 0 included), stages from `crm.status.list` with `ENTITY_ID` `DEAL_STAGE` (pipeline
0) or `DEAL_STAGE_<N>`; a missing Suspended stage is added with `crm.status.add` as an in-progress stage sorted
before the final ones (`api-reference/crm/status/crm-status-add.md`: the portal refuses an in-progress stage
sorted after the success stage, and adds the `C<N>:` prefix itself). The call needs a CRM administrator.
"""

from __future__ import annotations

import logging

from b24_1c_assets.bitrix24 import Bitrix24Client, Bitrix24Error

log = logging.getLogger(__name__)

DEAL_TYPE_ID = 2
SUSPENDED_NAME = "Приостановлена"


class StageSetupError(RuntimeError):
    """A stage the flow needs is missing and could not be created; names the pipeline."""


def deal_stage_entity(category_id: int) -> str:
    return "DEAL_STAGE" if int(category_id) == 0 else f"DEAL_STAGE_{int(category_id)}"


def deal_pipelines(client: Bitrix24Client) -> dict[int, str]:
    """Pipeline id -> name, from crm.category.list (entityTypeId 2)."""
    result = client.call("crm.category.list", {"entityTypeId": DEAL_TYPE_ID}) or {}
    rows = result.get("categories", []) if isinstance(result, dict) else result
    return {int(r["id"]): str(r.get("name") or "") for r in rows}


def stages_of(client: Bitrix24Client, entity_id: str) -> list[dict]:
    return list(client.call("crm.status.list", {"filter": {"ENTITY_ID": entity_id}, "order": {"SORT": "ASC"}}) or [])


def suspended_sort(stages: list[dict]) -> int | None:
    """A SORT for a new in-progress stage: after the last in-progress one, before the first final one."""
    finals = [int(s["SORT"]) for s in stages if s.get("SEMANTICS") in ("S", "F")]
    in_progress = [int(s["SORT"]) for s in stages if s.get("SEMANTICS") not in ("S", "F")]
    ceiling = min(finals) if finals else None
    floor = max(in_progress) if in_progress else 0
    if ceiling is None:
        return floor + 10
    if ceiling - floor >= 2:
        return floor + (ceiling - floor) // 2
    return None


def ensure_suspended_stages(
    client: Bitrix24Client, category_ids: set[int], stage_code: str = "HOLD", name: str = SUSPENDED_NAME
) -> list[str]:
    """Create the Suspended stage (`HOLD` / `C<N>:HOLD`) in each listed pipeline that lacks it; returns the
    STATUS_IDs created. Raises StageSetupError naming the pipeline when it cannot be created."""
    if not category_ids:
        return []
    pipelines = deal_pipelines(client)
    created = []
    for category in sorted(int(c) for c in category_ids):
        label = f"pipeline {category} «{pipelines.get(category, '?')}»"
        if category not in pipelines:
            raise StageSetupError(f"{label}: the portal has no such deal pipeline (crm.category.list)")
        wanted = stage_code if category == 0 else f"C{category}:{stage_code}"
        entity = deal_stage_entity(category)
        stages = stages_of(client, entity)
        if any(s["STATUS_ID"] == wanted for s in stages):
            continue
        sort = suspended_sort(stages)
        if sort is None:
            raise StageSetupError(
                f"{label}: no SORT value left between the last in-progress and the first final "
                f"stage for {wanted}; renumber the stages' sort order in the CRM settings"
            )
        try:
            client.call(
                "crm.status.add",
                {"fields": {"ENTITY_ID": entity, "STATUS_ID": wanted, "NAME": name, "SORT": sort, "SEMANTICS": ""}},
            )
        except Bitrix24Error as exc:
            raise StageSetupError(
                f"{label}: cannot create the Suspended stage {wanted} with crm.status.add "
                f"({exc.code or type(exc).__name__}: {exc.description or exc.message}); the "
                f"integration user needs CRM administrator rights"
            ) from None
        log.info("Bitrix24: created deal stage %s in %s", wanted, label)
        created.append(wanted)
    return created
