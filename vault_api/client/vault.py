"""The vault as a logged-in client sees it: safes, folders, items and files,
decrypted and encrypted here with vault_api.crypto (the same format the
browser writes), over the HTTP API.

Writes follow the API's rules (docs/vault.md 13.1): the client makes record
ids, every ciphertext is made for the version it will have once stored, and
an update names the version it replaces, so a stale edit is refused (409)
rather than written over someone else's.
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from vault_api import crypto as vc
from vault_api.client import contents as ct
from vault_api.client import items as it
from vault_api.client import transfers as tr
from vault_api.client.api import VaultApi
from vault_api.client.errors import ApiError, CliError, Exit, NotFound, Usage
from vault_api.client.keys import Keyring, dec, enc, opt_dec, refused

READ_PIECE = 256 * 1024
BATCH = 1000  # items per batch request (the API's limit)
Progress = Callable[[int], None]


@dataclass(kw_only=True)
class SafeRef:
    id: str
    name: str
    role: str
    generation: int
    rotation_needed: bool
    raw: dict[str, Any]


class Vault:
    def __init__(self, api: VaultApi, ring: Keyring) -> None:
        self.api = api
        self.ring = ring

    # --- safes --------------------------------------------------------------------

    def _safe_name(self, safe: Mapping[str, Any]) -> str:
        ks, g = self.ring.safe_key(safe)
        try:
            return vc.decrypt_safe_name(
                ks,
                dec(safe["name_ct"]),
                safe_id=dec(safe["id"]),
                version=int(safe["name_version"]),
                generation=g,
            )
        except vc.VaultCryptoError as e:
            raise refused(e) from None

    async def safes(self) -> list[SafeRef]:
        out = []
        for s in await self.api.safes():
            out.append(
                SafeRef(
                    id=s["id"],
                    name=self._safe_name(s),
                    role=s["role"],
                    generation=int(s["generation"]),
                    rotation_needed=bool(s["rotation_needed"]),
                    raw=s,
                )
            )
        return sorted(out, key=lambda s: (s.name.lower(), s.id))

    async def find_safe(self, ref: str) -> SafeRef:
        safes = await self.safes()
        bare = ref.removeprefix(ct.ID_PREFIX)  # "id:..." for ids that start with "-"
        tests: list[Callable[[SafeRef], bool]] = [
            lambda s: s.id == bare,
            lambda s: s.name == ref,
            lambda s: s.name.lower() == ref.lower(),
            lambda s: len(bare) >= ct.MIN_ID_PREFIX and s.id.startswith(bare),
        ]
        for test in tests:
            found = [s for s in safes if test(s)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise CliError(
                    f"{len(found)} safes match {ref!r}: "
                    + "; ".join(f"{s.id[:8]} {s.name}" for s in found)
                    + ". Name one by id.",
                    Exit.USAGE,
                )
        names = ", ".join(repr(s.name) for s in safes) or "none yet (`vault create-safe NAME`)"
        raise NotFound(f"no safe {ref!r}; your safes: {names}")

    async def open(self, ref: str) -> ct.OpenedSafe:
        safe = await self.find_safe(ref)
        return await self.open_id(safe.id)

    async def open_id(self, sid: str) -> ct.OpenedSafe:
        c = await self.api.contents(sid)
        ks, current = self.ring.safe_key(c["safe"])

        def key_for(g: int) -> bytes:
            if g == current:
                return ks
            # A committed rotation re-encrypts every record (docs/vault.md 11.4).
            raise CliError(
                f"refused: a record of safe {sid[:8]} claims key generation {g} while the "
                f"safe is at {current}",
                Exit.REFUSED,
            )

        return ct.open_contents(c, key_for)

    async def create_safe(self, name: str) -> dict[str, Any]:
        if not name.strip():
            raise Usage("a safe needs a name")
        sid, ks = vc.new_id(), vc.new_safe_key()
        body = {
            "id": enc(sid),
            "name_ct": enc(vc.encrypt_safe_name(ks, name, safe_id=sid, version=1, generation=1)),
            "sealed_key": enc(
                vc.seal_safe_key(
                    ks, self.ring.public_key, safe_id=sid, user_id=self.ring.user_id, generation=1
                )
            ),
        }
        safe: dict[str, Any] = await self.api.create_safe(body)
        self.ring.remember(sid, 1, ks)
        return safe

    # --- folders ------------------------------------------------------------------

    async def ensure_folder(
        self, safe: ct.OpenedSafe, path: str, *, create: bool = True
    ) -> tuple[bytes | None, list[str]]:
        """The folder at `path`, made (with its parents) when missing; returns
        its id and the paths of the folders made."""
        parent, missing = safe.missing_folders(path)
        if missing and not create:
            safe.find_folder(path)  # raises NotFound naming the folders there are
        made = []
        for name in missing:
            fid = vc.new_id()
            name_ct = vc.encrypt_folder_name(
                safe.key,
                name,
                safe_id=safe.id,
                folder_id=fid,
                parent_id=parent,
                version=1,
                generation=safe.generation,
            )
            await self.api.create_folder(
                safe.ref,
                {
                    "id": enc(fid),
                    "parent_id": None if parent is None else enc(parent),
                    "generation": safe.generation,
                    "name_ct": enc(name_ct),
                },
            )
            safe.folders[fid] = ct.Folder(
                id=fid, parent_id=parent, name=name, version=1, generation=safe.generation
            )
            made.append(safe.path(fid))
            parent = fid
        return parent, made

    async def delete_folder(self, safe: ct.OpenedSafe, path: str) -> None:
        fid = safe.find_folder(path)
        if fid is None:
            raise Usage("the top of a safe is not a folder to delete")
        await self.api.delete_folder(safe.ref, enc(fid), safe.folders[fid].version)

    # --- items --------------------------------------------------------------------

    async def add_item(
        self, safe: ct.OpenedSafe, content: Mapping[str, Any], folder_id: bytes | None
    ) -> ct.Item:
        iid = vc.new_id()
        body = ct.item_body(safe, iid, content, version=1, folder_id=folder_id)
        r = await self.api.create_item(safe.ref, {"id": enc(iid), **body})
        item = ct.Item(
            id=iid,
            folder_id=folder_id,
            version=int(r["version"]),
            generation=safe.generation,
            schema=vc.SCHEMA_VERSION,
            content=dict(content),
            updated_ms=int(r["updated_ms"]),
        )
        safe.items.append(item)
        return item

    async def add_items(
        self,
        safe: ct.OpenedSafe,
        batch: list[tuple[dict[str, Any], bytes | None]],
        progress: Progress | None = None,
    ) -> int:
        """Many items, in batches of up to 1000 (each batch all or none)."""
        done = 0
        for start in range(0, len(batch), BATCH):
            bodies = []
            for content, folder_id in batch[start : start + BATCH]:
                iid = vc.new_id()
                bodies.append(
                    {
                        "id": enc(iid),
                        **ct.item_body(safe, iid, content, version=1, folder_id=folder_id),
                    }
                )
            await self.api.create_items(safe.ref, bodies)
            done += len(bodies)
            if progress:
                progress(done)
        return done

    async def update_item(
        self,
        safe: ct.OpenedSafe,
        item: ct.Item,
        content: Mapping[str, Any],
        *,
        folder_id: bytes | None,
        expected_version: int,
    ) -> ct.Item:
        body = ct.item_body(
            safe, item.id, content, version=expected_version + 1, folder_id=folder_id
        )
        try:
            r = await self.api.update_item(
                safe.ref, item.ref, {"expected_version": expected_version, **body}
            )
        except ApiError as e:
            if e.error == "version_conflict":
                raise await self.conflict(safe, item, expected_version, e) from None
            raise
        return ct.Item(
            id=item.id,
            folder_id=folder_id,
            version=int(r["version"]),
            generation=safe.generation,
            schema=vc.SCHEMA_VERSION,
            content=dict(content),
            updated_ms=int(r["updated_ms"]),
        )

    async def conflict(
        self, safe: ct.OpenedSafe, item: ct.Item, expected: int, e: ApiError, *, move: bool = False
    ) -> CliError:
        """A 409 said clearly: what changed meanwhile (field names only)."""
        current = e.facts.get("current_version")
        what = ""
        try:
            now = ct.open_item(safe.id, await self.api.item(safe.ref, item.ref), self._key(safe))
            base = next((v for v in await self.history(safe, item) if v.version == expected), None)
            if base is not None:
                names = it.changed(base.content, now.content)
                what = f" Changed since: {', '.join(names) or 'nothing visible'}."
        except CliError:
            pass
        again = "move the current version" if move else "make your change to the current version"
        return CliError(
            f"item {item.title!r} changed meanwhile: it is at version {current}, and this "
            f"{'move' if move else 'edit'} was made to version {expected}. Nothing was "
            f"{'moved' if move else 'written'}.{what} Run the command again to {again}.",
            Exit.CONFLICT,
        )

    def _key(self, safe: ct.OpenedSafe) -> Callable[[int], bytes]:
        def key_for(g: int) -> bytes:
            if g == safe.generation:
                return safe.key
            raise CliError(f"key generation {g} is not open", Exit.CONFLICT)

        return key_for

    async def delete_item(self, safe: ct.OpenedSafe, item: ct.Item, expected_version: int) -> None:
        try:
            await self.api.delete_item(safe.ref, item.ref, expected_version)
        except ApiError as e:
            if e.error == "version_conflict":
                raise CliError(
                    f"item {item.title!r} changed meanwhile (it is at version "
                    f"{e.facts.get('current_version')}, not {expected_version}); nothing was "
                    "deleted. Look at it again (`vault show`) before deleting.",
                    Exit.CONFLICT,
                ) from None
            raise
        for f in it.files(item.content):
            try:
                await self.api.delete_file(safe.ref, str(f["id"]))
            except ApiError as e:
                if e.http_status != 404:
                    raise

    async def history(self, safe: ct.OpenedSafe, item: ct.Item) -> list[ct.Item]:
        """The item's earlier versions, newest first, each opened in its own
        context (older key generations through the key chain)."""
        versions = await self.api.history(safe.ref, item.ref)
        keys: dict[int, bytes] = {safe.generation: safe.key}
        if any(int(v["generation"]) != safe.generation for v in versions):
            raw = await self.api.safe(safe.ref)
            keys = self.ring.generations(raw, await self.api.key_chain(safe.ref))

        def key_for(g: int) -> bytes:
            if g not in keys:
                raise CliError(
                    f"the key of generation {g} of safe {safe.name!r} is not reachable from "
                    "the current one",
                    Exit.REFUSED,
                )
            return keys[g]

        return [ct.open_item(safe.id, v, key_for, item_id=item.id) for v in versions]

    # --- moving to another safe -----------------------------------------------------

    async def move_item(
        self,
        safe: ct.OpenedSafe,
        item: ct.Item,
        target: ct.OpenedSafe,
        *,
        folder_id: bytes | None,
        expected_version: int,
    ) -> tuple[dict[str, Any], vc.MovePlan]:
        """Move an item with its kept versions and its files into `target`
        (docs/vault.md 8.4): everything re-encrypted here for the target's
        current key, at the same version; the server swaps it in at once and
        leaves the file bodies as they are. Returns the server's answer and the plan."""
        raw = await self.api.item(safe.ref, item.ref)
        versions = await self.api.history(safe.ref, item.ref)
        file_records = [
            vc.FileRecord(file_id=fid, generation=int(f["generation"]), key_wrap=dec(f["key_wrap"]))
            for fid, f in safe.files.items()
        ]
        keys: dict[int, bytes] = {safe.generation: safe.key}
        generations = {int(raw["generation"])} | {int(v["generation"]) for v in versions}
        generations |= {f.generation for f in file_records}
        if generations - {safe.generation}:
            keys = self.ring.generations(
                await self.api.safe(safe.ref), await self.api.key_chain(safe.ref)
            )

        def record(r: Mapping[str, Any]) -> vc.ItemRecord:
            return vc.ItemRecord(
                item_id=item.id,
                folder_id=opt_dec(r["folder_id"]),
                version=int(r["version"]),
                generation=int(r["generation"]),
                schema=int(r["schema"]),
                ct=dec(r["ct"]),
            )

        try:
            plan = vc.plan_move(
                record(raw),
                history=[record(v) for v in versions],
                safe_files=file_records,
                from_safe_id=safe.id,
                from_keys=keys,
                to_safe_id=target.id,
                to_key=target.key,
                to_generation=target.generation,
                to_folder_id=folder_id,
            )
        except vc.VaultCryptoError as e:
            raise refused(e) from None
        body = {
            "to_safe_id": target.ref,
            "expected_version": expected_version,
            "generation": plan.to_generation,
            "folder_id": None if folder_id is None else enc(folder_id),
            "ct": enc(plan.ct),
            "history": [{"version": h.version, "ct": enc(h.ct)} for h in plan.history],
            "files": [{"id": enc(f.file_id), "key_wrap": enc(f.key_wrap)} for f in plan.files],
        }
        try:
            moved: dict[str, Any] = await self.api.move_item(safe.ref, item.ref, body)
        except ApiError as e:
            if e.error == "version_conflict":
                raise await self.conflict(safe, item, expected_version, e, move=True) from None
            if e.error == "generation_stale":
                raise CliError(
                    f"the key of safe {target.name!r} was rotated while the move was prepared; "
                    "nothing was moved. Run the command again.",
                    Exit.CONFLICT,
                ) from None
            raise
        return moved, plan

    # --- files --------------------------------------------------------------------

    async def upload(
        self,
        safe: ct.OpenedSafe,
        source: BinaryIO,
        size: int,
        *,
        name: str,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Announce a file, then stream its body encrypted chunk by chunk;
        returns the entry an item lists it by."""
        fid, fk = vc.new_id(), vc.new_file_key()
        wrapped = vc.wrap_file_key(
            safe.key, fk, safe_id=safe.id, file_id=fid, generation=safe.generation
        )
        meta = await self.api.create_file(
            safe.ref,
            {
                "id": enc(fid),
                "generation": safe.generation,
                "key_wrap": enc(wrapped),
                "size": size,
                "chunk_bytes": vc.CURRENT.chunk_bytes,
            },
        )
        # The server answers with the format it recorded (format 1 for a one-chunk file).
        sealer = vc.FileSealer(fk, fid, size, _format(meta))
        stop = threading.Event()
        body = tr.sealed_pieces(sealer, source, name=name, progress=progress, stop=stop)
        try:
            await self.api.upload_body(safe.ref, enc(fid), body, int(meta["body_size"]), stop)
        except BaseException:
            # The announced file is useless without its body: remove it.
            with contextlib.suppress(CliError):
                await self.api.delete_file(safe.ref, enc(fid))
            raise
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return {"id": enc(fid), "name": name, "size": size, "type": kind}

    async def download(
        self,
        safe: ct.OpenedSafe,
        entry: Mapping[str, Any],
        sink: BinaryIO,
        *,
        progress: Progress | None = None,
    ) -> int:
        """Stream a file's plaintext into `sink`, chunk by chunk as each
        verifies; raises (exit 7) if any chunk, or the end, does not."""
        fid = str(entry["id"])
        meta = await self.api.file(safe.ref, fid)
        if meta["state"] != "complete":
            raise CliError(
                f"file {entry.get('name')!r} was never completely uploaded ({meta['state']})",
                Exit.NOT_FOUND,
            )
        try:
            fk = vc.unwrap_file_key(
                safe.key,
                dec(meta["key_wrap"]),
                safe_id=safe.id,
                file_id=dec(fid),
                generation=int(meta["generation"]),
            )
            decryptor = vc.FileDecryptor(fk, dec(fid), _format(meta))
            stop = threading.Event()
            opener = tr.BodyOpener(decryptor, sink, progress=progress, stop=stop)
            await self.api.download_body(safe.ref, fid, opener.feed, stop)
            return opener.finish()
        except vc.VaultCryptoError as e:
            raise refused(e) from None


def _format(meta: Mapping[str, Any]) -> vc.FileFormat:
    """The body format of a file the server describes (its chunk_bytes)."""
    try:
        return vc.format_for(int(meta["size"]), int(meta["chunk_bytes"]))
    except ValueError as e:
        raise CliError(f"the vault describes a file this client cannot read: {e}") from None


def file_size(path: Path) -> int:
    try:
        st = path.stat()
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror}", Exit.USAGE) from None
    if not os.path.isfile(path):
        raise Usage(f"{path} is not a file")
    return st.st_size
