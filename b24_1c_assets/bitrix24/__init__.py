"""Bitrix24 REST client (no Dagster here): paced, retried calls, `batch` with per-command outcomes, keyset export."""

from .auth import ApplicationAuth, TokenStore, WebhookAuth
from .client import (
    BATCH_LIMIT,
    PAGE_SIZE,
    BatchResult,
    Bitrix24Client,
    ClientStats,
    CommandOutcome,
    Envelope,
    is_write_method,
)
from .errors import (
    AuthError,
    BadRequest,
    Bitrix24Error,
    ExportError,
    MethodNotFound,
    MissingScopes,
    NotFound,
    OperationTimeLimit,
    OverloadLimit,
    PortalDeleted,
    QueryLimitExceeded,
    ServerError,
    TransportError,
    error_from_envelope,
)
from .pacing import Pacer, shared_pacer
from .query import batch_command, http_build_query

__all__ = [
    "ApplicationAuth",
    "TokenStore",
    "WebhookAuth",
    "BATCH_LIMIT",
    "PAGE_SIZE",
    "AuthError",
    "BadRequest",
    "BatchResult",
    "Bitrix24Client",
    "Bitrix24Error",
    "ClientStats",
    "CommandOutcome",
    "Envelope",
    "ExportError",
    "MethodNotFound",
    "MissingScopes",
    "NotFound",
    "OperationTimeLimit",
    "OverloadLimit",
    "Pacer",
    "PortalDeleted",
    "QueryLimitExceeded",
    "ServerError",
    "TransportError",
    "batch_command",
    "error_from_envelope",
    "http_build_query",
    "is_write_method",
    "shared_pacer",
]
