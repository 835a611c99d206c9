"""authnet's browser client, served from the vault's own origin.

The page decrypts secrets, so it runs only code from this origin
(`script-src 'self'`): a copy of authnet.js and hpke.js from the installed
authnet package, not the network's gateway, which would otherwise be able to
serve the page altered code and read every key the page opens.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from authnet.gateway import browser_client_files

router = APIRouter(tags=["session"])
FILES = browser_client_files()


@router.get("/authnet/v1/{name:path}", include_in_schema=False)
async def browser_client(name: str) -> Response:
    """authnet.js and the modules it imports."""
    body = FILES.get(name)
    if body is None:
        raise HTTPException(status_code=404, detail="no such file")
    return Response(
        body,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
