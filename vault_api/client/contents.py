"""A safe opened: its name, folders and items decrypted, and finding things
in it by name, path or id. No I/O: built from `GET /api/safes/{id}/contents`
and the safe's keys.

Items are named as people name them: by title ("Mail"), by folder path and
title ("Work/Servers/db1"), or by id (the 22 base64url characters, or a
prefix of at least 4 that only one item has). Every record is opened in the
context the client expects; one that does not open stops the command
(exit 7): a vault that silently skipped records would hide tampering.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vault_api import crypto as vc
from vault_api.client.errors import CliError, Exit, NotFound, Usage
from vault_api.client.keys import dec, enc, opt_dec, refused

SEP = "/"
MIN_ID_PREFIX = 4
ID_PREFIX = "id:"


@dataclass(kw_only=True)
class Folder:
    id: bytes
    parent_id: bytes | None
    name: str
    version: int
    generation: int


@dataclass(kw_only=True)
class Item:
    id: bytes
    folder_id: bytes | None
    version: int
    generation: int
    schema: int
    content: dict[str, Any] = field(repr=False)
    updated_ms: int
    updated_by: str | None = None

    @property
    def title(self) -> str:
        return str(self.content.get("title", ""))

    @property
    def kind(self) -> str:
        return str(self.content.get("type", ""))

    @property
    def ref(self) -> str:
        return enc(self.id)


@dataclass(kw_only=True)
class OpenedSafe:
    id: bytes
    name: str
    name_version: int
    generation: int
    role: str
    rotation_needed: bool
    key: bytes = field(repr=False)
    folders: dict[bytes, Folder]
    items: list[Item]
    files: dict[bytes, dict[str, Any]]

    @property
    def ref(self) -> str:
        return enc(self.id)

    # --- folders ----------------------------------------------------------------

    def path(self, folder_id: bytes | None) -> str:
        """The folder's path from the top ("" for the top itself)."""
        parts: list[str] = []
        seen: set[bytes] = set()
        while folder_id is not None and folder_id not in seen:
            seen.add(folder_id)
            folder = self.folders.get(folder_id)
            if folder is None:
                break
            parts.append(folder.name)
            folder_id = folder.parent_id
        return SEP.join(reversed(parts))

    def folder_paths(self) -> dict[str, bytes]:
        return {self.path(fid): fid for fid in self.folders}

    def find_folder(self, path: str) -> bytes | None:
        """The folder at `path` (None for the top: "" or "/"); NotFound if absent."""
        wanted = path.strip().strip(SEP)
        if not wanted:
            return None
        paths = self.folder_paths()
        if wanted in paths:
            return paths[wanted]
        folded = [fid for p, fid in paths.items() if p.lower() == wanted.lower()]
        if len(folded) == 1:
            return folded[0]
        raise NotFound(
            f"safe {self.name!r} has no folder {wanted!r}"
            + (f"; its folders: {', '.join(sorted(paths))}" if paths else "; it has no folders")
        )

    def missing_folders(self, path: str) -> tuple[bytes | None, list[str]]:
        """The deepest existing folder on `path` and the names still to create below it."""
        parts = [p for p in path.strip().strip(SEP).split(SEP) if p]
        parent: bytes | None = None
        for i, name in enumerate(parts):
            child = next(
                (f.id for f in self.folders.values() if f.parent_id == parent and f.name == name),
                None,
            )
            if child is None:
                return parent, parts[i:]
            parent = child
        return parent, []

    # --- items ------------------------------------------------------------------

    def item_path(self, item: Item) -> str:
        folder = self.path(item.folder_id)
        return f"{folder}{SEP}{item.title}" if folder else item.title

    def find_item(self, ref: str) -> Item:
        """An item by id, id prefix, folder path and title, or title."""
        if not ref:
            raise Usage("name an item: its title, FOLDER/TITLE, or its id")
        bare = ref.removeprefix(ID_PREFIX)  # "id:..." for ids that start with "-"
        tests: list[Callable[[Item], bool]] = [
            lambda i: i.ref == bare,
            lambda i: self.item_path(i) == ref,
            lambda i: i.title == ref,
            lambda i: self.item_path(i).lower() == ref.lower(),
            lambda i: i.title.lower() == ref.lower(),
            lambda i: len(bare) >= MIN_ID_PREFIX and i.ref.startswith(bare),
        ]
        for test in tests:
            found = [i for i in self.items if test(i)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                names = "; ".join(f"{i.ref[:8]} {self.item_path(i)}" for i in found[:10])
                raise CliError(
                    f"{len(found)} items of safe {self.name!r} match {ref!r}: {names}. "
                    "Name one by FOLDER/TITLE or by id.",
                    Exit.USAGE,
                )
        raise NotFound(f"safe {self.name!r} has no item {ref!r} (see `vault items`)")


def open_contents(contents: Mapping[str, Any], key_for: Callable[[int], bytes]) -> OpenedSafe:
    """Decrypt a contents response. `key_for(g)` gives the safe key of generation g."""
    safe = contents["safe"]
    sid = dec(safe["id"])
    g = int(safe["generation"])
    try:
        ks = key_for(g)
        name = vc.decrypt_safe_name(
            ks, dec(safe["name_ct"]), safe_id=sid, version=int(safe["name_version"]), generation=g
        )
        folders = {}
        for f in contents["folders"]:
            fid = dec(f["id"])
            parent = opt_dec(f["parent_id"])
            folders[fid] = Folder(
                id=fid,
                parent_id=parent,
                version=int(f["version"]),
                generation=int(f["generation"]),
                name=vc.decrypt_folder_name(
                    key_for(int(f["generation"])),
                    dec(f["name_ct"]),
                    safe_id=sid,
                    folder_id=fid,
                    parent_id=parent,
                    version=int(f["version"]),
                    generation=int(f["generation"]),
                ),
            )
        items = [open_item(sid, i, key_for) for i in contents["items"]]
    except vc.VaultCryptoError as e:
        raise refused(e) from None
    return OpenedSafe(
        id=sid,
        name=name,
        name_version=int(safe["name_version"]),
        generation=g,
        role=str(safe["role"]),
        rotation_needed=bool(safe.get("rotation_needed")),
        key=ks,
        folders=folders,
        items=items,
        files={dec(f["id"]): f for f in contents.get("files", [])},
    )


def open_item(
    sid: bytes,
    i: Mapping[str, Any],
    key_for: Callable[[int], bytes],
    *,
    item_id: bytes | None = None,
) -> Item:
    """One item opened in its own context (a history entry: give its `item_id`)."""
    iid = item_id if item_id is not None else dec(i["id"])
    fid = opt_dec(i["folder_id"])
    g = int(i["generation"])
    try:
        content = vc.decrypt_item(
            key_for(g),
            dec(i["ct"]),
            safe_id=sid,
            item_id=iid,
            folder_id=fid,
            version=int(i["version"]),
            generation=g,
            schema=int(i["schema"]),
        )
    except vc.VaultCryptoError as e:
        raise refused(e) from None
    return Item(
        id=iid,
        folder_id=fid,
        version=int(i["version"]),
        generation=g,
        schema=int(i["schema"]),
        content=content,
        updated_ms=int(i.get("updated_ms") or 0),
        updated_by=i.get("updated_by"),
    )


def item_body(
    safe: OpenedSafe,
    item_id: bytes,
    content: Mapping[str, Any],
    *,
    version: int,
    folder_id: bytes | None,
) -> dict[str, Any]:
    """The request body fields of an item write (docs/vault.md 13.5)."""
    try:
        ct = vc.encrypt_item(
            safe.key,
            content,
            safe_id=safe.id,
            item_id=item_id,
            folder_id=folder_id,
            version=version,
            generation=safe.generation,
        )
    except vc.ContentInvalid as e:
        raise Usage(f"the item cannot be stored: {e.message}") from None
    return {
        "folder_id": None if folder_id is None else enc(folder_id),
        "generation": safe.generation,
        "schema": vc.SCHEMA_VERSION,
        "ct": enc(ct),
    }
