"""1C:UNF client side: standard OData client, $metadata checks, exchange-folder reader (JSON + CommerceML)."""

from .errors import (
    ExchangeFileRejected,
    OneCAuthError,
    OneCConnectionError,
    OneCError,
    OneCPublicationError,
    OneCRequestError,
    OneCWireError,
    WriteNotApplied,
    WriteNotVerified,
)
from .metadata import Metadata
from .odata import OneCClient, OneCStats

__all__ = [
    "ExchangeFileRejected",
    "Metadata",
    "OneCAuthError",
    "OneCClient",
    "OneCConnectionError",
    "OneCError",
    "OneCPublicationError",
    "OneCRequestError",
    "OneCStats",
    "OneCWireError",
    "WriteNotApplied",
    "WriteNotVerified",
]
