"""The daily finance digest: one short text about the day's receivables and holds (pure)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd


def money(value) -> str:
    return f"{Decimal(value):,.2f}".replace(",", " ")


def compose_digest(status: pd.DataFrame, transitions: pd.DataFrame, day, top: int = 10) -> str:
    """status: the day's client_credit_status; transitions: hold changes decided that day."""
    total = sum(status["balance"], Decimal(0)) if not status.empty else Decimal(0)
    overdue = sum(status["overdue_amount"], Decimal(0)) if not status.empty else Decimal(0)
    counts = status["status"].value_counts().to_dict() if not status.empty else {}
    lines = [
        f"Дебиторская задолженность на {day}: {money(total)} ₽, просрочено {money(overdue)} ₽.",
        f"Клиентов на стопе: {counts.get('hold', 0)}, с предупреждением: {counts.get('warning', 0)}.",
    ]
    if not transitions.empty:
        held = transitions[transitions["to_state"] == "held"]
        cleared = transitions[transitions["to_state"] == "clear"]
        lines.append(f"За день: поставлено на стоп {len(held)}, снято со стопа {len(cleared)}.")
    worst = (
        status[status["overdue_amount"] > 0].sort_values("overdue_amount", ascending=False).head(top)
        if not status.empty
        else status
    )
    if not worst.empty:
        lines.append("Наибольшая просрочка:")
        for row in worst.itertuples():
            lines.append(
                f"• {row.name} (ИНН {row.inn}): {money(row.overdue_amount)} ₽, {row.days_overdue} дн., "
                f"статус {row.status}"
            )
    return "\n".join(lines)


def digest_recipients(users: pd.DataFrame, user_ids: list[int], department_ids: list[int]) -> list[int]:
    """Explicit user IDs plus active users of the given departments (users as the portal's user.get)."""
    chosen = {int(u) for u in user_ids}
    if not users.empty and department_ids:
        for row in users.itertuples():
            departments = row.UF_DEPARTMENT
            if isinstance(departments, str):
                departments = [int(d) for d in departments.strip("[]").split(",") if d.strip()]
            active = str(getattr(row, "ACTIVE", True)).lower() in ("true", "y", "1")
            if active and any(int(d) in department_ids for d in departments or []):
                chosen.add(int(row.ID))
    return sorted(chosen)
