"""Field ownership (survivorship): which system owns a client field and what the sync may write where.

Rules come from ``settings/field_ownership.toml`` (the file documents each rule; ``settings.field_ownership()``
reads and checks it).
The sync flows call ``plan_field_writes(target_system, current, incoming)`` with the target's current
values and the other system's values and get back only the fields to write. ``plan_field_changes``
gives the same plan with old values and rules, for the audit log. Pure: the settings hand it the parsed file.

An empty value (None, '', whitespace, empty list) never overwrites anything: an owner that has not
filled a field yet does not wipe the other side's value - except for ``push_only`` computed fields,
where "no debt any more" must reach the CRM.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

System = Literal["1c", "crm"]
SYSTEMS = ("1c", "crm")
OWNERS = ("1c", "crm", "shared")
RULES = ("owner_wins", "push_only", "fill_if_empty", "union", "never")


class UnknownFieldError(KeyError):
    """A field with no ownership rule: the integration must not guess whether it may write it."""


@dataclass(frozen=True)
class FieldRule:
    """Ownership of one field."""

    field: str
    owner: str  # '1c' | 'crm' | 'shared'
    rule: str  # one of RULES
    note: str = ""


@dataclass(frozen=True)
class FieldChange:
    """One planned write: `field` in `target` goes from `old` to `new` under `rule`."""

    field: str
    target: System
    old: Any
    new: Any
    rule: str


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, set, frozenset)):
        return not any(not _is_empty(v) for v in value)
    return False


def _comparable(value: Any) -> Any:
    if _is_empty(value):
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (list, tuple, set, frozenset)):
        return frozenset(_comparable(v) for v in value if not _is_empty(v))
    return value


class FieldOwnership:
    """The parsed ownership settings."""

    def __init__(self, rules: Mapping[str, FieldRule]):
        self.rules = dict(rules)

    @classmethod
    def from_toml(cls, text: str, source: str = "field_ownership.toml") -> FieldOwnership:
        return cls.from_dict(tomllib.loads(text), source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "field_ownership.toml") -> FieldOwnership:
        rules = {}
        for name, spec in data.get("fields", {}).items():
            owner, rule = spec.get("owner"), spec.get("rule")
            if owner not in OWNERS:
                raise ValueError(f"{source}: field {name!r} has owner {owner!r}, expected one of {OWNERS}")
            if rule not in RULES:
                raise ValueError(f"{source}: field {name!r} has rule {rule!r}, expected one of {RULES}")
            if rule in ("owner_wins", "push_only") and owner == "shared":
                raise ValueError(f"{source}: field {name!r}: rule {rule!r} needs a single owner, not 'shared'")
            rules[name] = FieldRule(name, owner, rule, spec.get("note", ""))
        return cls(rules)

    @classmethod
    def from_path(cls, path: str | Path) -> FieldOwnership:
        path = Path(path)
        return cls.from_toml(path.read_text(encoding="utf-8"), source=str(path))

    def rule(self, field: str) -> FieldRule:
        try:
            return self.rules[field]
        except KeyError:
            raise UnknownFieldError(f"no ownership rule for field {field!r} in field_ownership.toml") from None

    def owned_by(self, system: str) -> list[str]:
        """Fields a system owns (sorted), e.g. to pick which CRM edits to revert."""
        return sorted(f for f, r in self.rules.items() if r.owner == system)

    def decide(self, field: str, target: System, current: Any, incoming: Any) -> FieldChange | None:
        """What to write into `field` of `target` (currently `current`) given the other side's `incoming`."""
        if target not in SYSTEMS:
            raise ValueError(f"target system must be one of {SYSTEMS}, got {target!r}")
        rule = self.rule(field)
        if rule.rule == "never" or rule.owner == target:
            return None
        same = _comparable(current) == _comparable(incoming)
        if rule.rule == "push_only":
            new = None if _is_empty(incoming) else incoming
            return None if same else FieldChange(field, target, current, new, rule.rule)
        if _is_empty(incoming) or same:
            return None
        if rule.rule == "owner_wins":
            return FieldChange(field, target, current, incoming, rule.rule)
        if rule.rule == "fill_if_empty":
            return FieldChange(field, target, current, incoming, rule.rule) if _is_empty(current) else None
        # union: keep everything the target has, add what it lacks; deletions are not propagated.
        have = [v for v in (current or []) if not _is_empty(v)]
        known = {_comparable(v) for v in have}
        missing = sorted({v for v in incoming if not _is_empty(v) and _comparable(v) not in known}, key=str)
        return FieldChange(field, target, current, have + missing, rule.rule) if missing else None

    def resolve(self, field: str, onec_value: Any, crm_value: Any) -> dict[System, FieldChange]:
        """Both directions for one field: {'1c': change, 'crm': change}, only where a write is due."""
        plan = {
            "1c": self.decide(field, "1c", onec_value, crm_value),
            "crm": self.decide(field, "crm", crm_value, onec_value),
        }
        return {system: change for system, change in plan.items() if change is not None}

    def plan_field_changes(
        self, target_system: System, current: Mapping[str, Any], incoming: Mapping[str, Any]
    ) -> list[FieldChange]:
        """Writes due in `target_system`, with old values and rules, sorted by field."""
        changes = (self.decide(f, target_system, current.get(f), incoming[f]) for f in sorted(incoming))
        return [c for c in changes if c is not None]

    def plan_field_writes(
        self, target_system: System, current: Mapping[str, Any], incoming: Mapping[str, Any]
    ) -> dict[str, Any]:
        """{field: value} to write into `target_system`; fields not listed must not be written."""
        return {c.field: c.new for c in self.plan_field_changes(target_system, current, incoming)}


def default_ownership() -> FieldOwnership:
    """The product's ``field_ownership.toml`` (a customer's copy under B24_1C_SETTINGS_DIR wins), as the
    settings read and validate it once."""
    from b24_1c_assets import settings  # settings builds on this module's types

    return settings.field_ownership()


def plan_field_writes(
    target_system: System,
    current: Mapping[str, Any],
    incoming: Mapping[str, Any],
    ownership: FieldOwnership | None = None,
) -> dict[str, Any]:
    """What to write into `target_system` ('1c' | 'crm') given its `current` values and the other side's.

    >>> plan_field_writes('crm', {'inn': '7707083893', 'email': 'a@x.ru'},
    ...                   {'inn': '7707083890', 'email': 'b@x.ru'})
    {'inn': '7707083890'}
    """
    return (ownership or default_ownership()).plan_field_writes(target_system, current, incoming)
