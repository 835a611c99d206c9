"""What a token app shows the person before they confirm a login: who asks
(the SP), and from where (the browser the network saw). Shared by the phone
app, `passkey login` and the local agent."""

from __future__ import annotations

from authnet.protocol.factors import format_factors
from tokens.handshake import AuthRequest


def describe(request: AuthRequest) -> list[str]:
    """What the phone shows before the person confirms (anti-phishing hints)."""
    origin = request.browser_origin or "(none sent: not a web browser)"
    registered = request.origin_registered
    if not request.browser_origin:
        mark = "check that this is your own device"
    elif registered is None:
        mark = "SP lists no origins"
    else:
        mark = "registered for this SP" if registered else "NOT registered for this SP"
    wants = {"c": "a client key", "p": "your PIN"}
    asks = [wants[f] for f in format_factors(request.requested)] or ["sign-in only"]
    return [
        f"Log in to {request.sp_display_name} ({request.sp_name})?",
        f"  requested from  {request.browser_ip or '?'}",
        f"  browser         {request.browser_user_agent[:80] or '?'}",
        f"  page origin     {origin}  [{mark}]",
        f"  asks for        {', '.join(asks)}",
    ]
