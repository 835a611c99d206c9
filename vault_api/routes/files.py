"""Files: announce, stream the encrypted body up, stream it down.

The body is the client's chunk boxes back to back (docs/vault.md, "Files"),
exactly `body_size` bytes. It streams through to the blob store as it
arrives; nothing holds a whole file. A body of the wrong length is refused
(422) and nothing is kept; the file stays pending and can be uploaded again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from vault_api.blobs import blob_name
from vault_api.context import ID_PATTERN, UserDep, VaultDep, decode_id
from vault_api.errors import Invalid, NotFound
from vault_api.models import FileIn, FileMoveIn, FileOut
from vault_api.store import files as store
from vault_api.store import moves

SafePath = Annotated[str, Path(pattern=ID_PATTERN, description="a safe id, base64url")]
FilePath = Annotated[str, Path(pattern=ID_PATTERN, description="a file id, base64url")]

BODY_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the encrypted body",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _wrong_length(expected: int) -> Invalid:
    return Invalid(
        f"the body must be exactly {expected} bytes (the file's chunk boxes back to back); "
        "nothing was stored",
        code="body_length",
        body_size=expected,
    )


async def _exactly(stream: AsyncIterator[bytes], expected: int) -> AsyncIterator[bytes]:
    total = 0
    async for piece in stream:
        total += len(piece)
        if total > expected:
            raise _wrong_length(expected)
        yield piece


router = APIRouter(tags=["files"])


@router.post("/api/safes/{safe_id}/files", status_code=201)
async def create_file(vault: VaultDep, user: UserDep, safe_id: SafePath, body: FileIn) -> FileOut:
    """Announce a file: its id, plaintext size and key wrapped under Ks.
    413 over the size limit. Then PUT its body."""
    return await vault.db.write(
        store.create_file,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        file_id=body.id,
        generation=body.generation,
        key_wrap=body.key_wrap,
        size=body.size,
        chunk_bytes=body.chunk_bytes,
        max_bytes=vault.settings.max_file_bytes,
        now_ms=vault.clock(),
    )


@router.get("/api/safes/{safe_id}/files/{file_id}")
async def get_file(vault: VaultDep, user: UserDep, safe_id: SafePath, file_id: FilePath) -> FileOut:
    return await vault.db.read(
        store.get_file,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        file_id=decode_id(file_id, "file id"),
    )


@router.put(
    "/api/safes/{safe_id}/files/{file_id}/body",
    openapi_extra=BODY_OPENAPI,
)
async def upload_body(
    vault: VaultDep, user: UserDep, safe_id: SafePath, file_id: FilePath, request: Request
) -> FileOut:
    """Stream the encrypted body (application/octet-stream, exactly body_size bytes)."""
    sid, fid = decode_id(safe_id, "safe id"), decode_id(file_id, "file id")
    started = vault.clock()
    meta = await vault.db.write(
        store.begin_upload, user_id=user.user_id, safe_id=sid, file_id=fid, now_ms=started
    )
    declared = request.headers.get("content-length")
    name = blob_name(fid)
    try:
        if declared is not None and declared != str(meta.body_size):
            raise _wrong_length(meta.body_size)
        written = await vault.blobs.write(name, _exactly(request.stream(), meta.body_size))
        if written != meta.body_size:
            await vault.blobs.delete(name)
            raise _wrong_length(meta.body_size)
    except (Exception, ClientDisconnect):
        await vault.db.write(store.abort_upload, safe_id=sid, file_id=fid, started_ms=started)
        raise
    done = await vault.db.write(
        store.finish_upload,
        user_id=user.user_id,
        safe_id=sid,
        file_id=fid,
        started_ms=started,
        now_ms=vault.clock(),
    )
    if done is None:
        await vault.blobs.delete(name)
        raise NotFound(f"file {file_id[:8]} was deleted during the upload", code="file_not_found")
    return done


@router.get("/api/safes/{safe_id}/files/{file_id}/body", responses=DOWNLOAD_RESPONSES)
async def download_body(
    vault: VaultDep, user: UserDep, safe_id: SafePath, file_id: FilePath
) -> StreamingResponse:
    """The encrypted body, streamed."""
    meta = await vault.db.read(
        store.open_download,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        file_id=decode_id(file_id, "file id"),
    )
    name = blob_name(meta.id)
    if await vault.blobs.size(name) != meta.body_size:
        raise NotFound(
            f"the body of file {file_id[:8]} is missing from the file store",
            code="body_missing",
        )
    return StreamingResponse(
        vault.blobs.read(name),
        media_type="application/octet-stream",
        headers={"Content-Length": str(meta.body_size)},
    )


@router.delete("/api/safes/{safe_id}/files/{file_id}", status_code=204)
async def delete_file(vault: VaultDep, user: UserDep, safe_id: SafePath, file_id: FilePath) -> None:
    fid = decode_id(file_id, "file id")
    await vault.db.write(
        store.delete_file,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        file_id=fid,
        now_ms=vault.clock(),
    )
    await vault.blobs.delete(blob_name(fid))


@router.post("/api/safes/{safe_id}/files/{file_id}/move")
async def move_file(
    vault: VaultDep, user: UserDep, safe_id: SafePath, file_id: FilePath, body: FileMoveIn
) -> FileOut:
    """Move a file no item lists to another safe: its key re-wrapped by the
    client under the target's Ks; the body stays as it is."""
    return await vault.db.write(
        moves.move_file,
        user_id=user.user_id,
        safe_id=decode_id(safe_id, "safe id"),
        file_id=decode_id(file_id, "file id"),
        to_safe_id=body.to_safe_id,
        generation=body.generation,
        key_wrap=body.key_wrap,
        now_ms=vault.clock(),
    )
