"""SDKs: the service-provider client (sync and async), SP credentials, and
the browser role in Python (for terminal clients and tests)."""

from authnet.sdk.browser import BrowserSession, LoginOutcome
from authnet.sdk.credentials import CredentialsError, SpCredentials
from authnet.sdk.sp_client import AsyncSPClient, Data, Identity, Lock, SPClient, Ticket

__all__ = [
    "AsyncSPClient",
    "BrowserSession",
    "CredentialsError",
    "Data",
    "Identity",
    "Lock",
    "LoginOutcome",
    "SPClient",
    "SpCredentials",
    "Ticket",
]
