"""The pre-write guard as Dagster sees it: limits from settings, the audited override tag."""

import dagster as dg

from b24_1c_assets import settings
from b24_1c_assets.domain.push_plan import GuardLimits, GuardVerdict

GUARD_CHECK = "push_guard"
OVERRIDE_TAG = "b24_1c/guard_override"


def guard_limits(flow: str) -> GuardLimits:
    return GuardLimits(**settings.load("push_guard").get(flow, {}))


def guard_result(context: dg.AssetExecutionContext, verdict: GuardVerdict, asset_key: dg.AssetKey
                 ) -> dg.AssetCheckResult:
    """Passed when the plan is within limits, or when the run carries an explicit override (said why)."""
    override = context.run.tags.get(OVERRIDE_TAG)
    if not verdict.passed and override:
        context.log.warning(f"push guard overridden ({override}): {'; '.join(verdict.reasons)}")
    return dg.AssetCheckResult(
        check_name=GUARD_CHECK, asset_key=asset_key, passed=verdict.passed or bool(override),
        severity=dg.AssetCheckSeverity.ERROR,
        description=("; ".join(verdict.reasons) + (f" — overridden: {override}" if override else
                                                   f" — nothing written; rerun with tag {OVERRIDE_TAG}=<reason>"))
        if verdict.reasons else "within limits",
        metadata={**verdict.figures, "override": override or ""})


def guard_spec(asset_key: dg.AssetKey, what: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(GUARD_CHECK, asset=asset_key, blocking=True,
                             description=f"Stops {what} when the plan changes more rows than the limits in "
                                         f"settings/push_guard.toml allow, until a run carries {OVERRIDE_TAG}.")
