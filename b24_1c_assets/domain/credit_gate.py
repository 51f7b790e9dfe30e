"""May this company get a new deal? The answer from the latest credit status and hold state (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GateAnswer:
    allowed: bool
    status: str  # ok | warning | hold | unknown
    held: bool
    reasons: str
    balance: str | None = None
    credit_limit: str | None = None
    overdue_amount: str | None = None
    days_overdue: int | None = None
    as_of: str | None = None
    company_id: int | None = None
    inn: str | None = None

    def as_json(self) -> dict:
        return asdict(self)


def decide(status: dict | None, hold_state: str | None, *, allow_unknown: bool = True) -> GateAnswer:
    """A held client gets no new deal; a client the product knows nothing about is let through (the CRM
    owns sales) unless `allow_unknown` is False."""
    if status is None:
        return GateAnswer(
            allowed=allow_unknown, status="unknown", held=False, reasons="no receivables known for this company"
        )
    held = hold_state == "held"
    return GateAnswer(
        allowed=not held,
        status=str(status.get("status")),
        held=held,
        reasons=str(status.get("status_reasons") or ""),
        balance=_text(status.get("balance")),
        credit_limit=_text(status.get("credit_limit")),
        overdue_amount=_text(status.get("overdue_amount")),
        days_overdue=int(status["days_overdue"]) if status.get("days_overdue") is not None else None,
        as_of=str(status.get("snapshot_date"))[:10],
        company_id=_int(status.get("company_id")),
        inn=status.get("inn"),
    )


def _text(value) -> str | None:
    return None if value is None else f"{value}"


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
