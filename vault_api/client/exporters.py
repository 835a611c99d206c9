"""Writing a safe out in other password managers' formats. No I/O: the
caller writes the text (0600, after warning that it is plaintext).

`bitwarden`: Bitwarden's unencrypted JSON, every login, note and card with
its folder, URLs, TOTP, custom fields and notes; `vault import` reads it back.

`csv`: Chrome's passwords CSV (name,url,username,password,note), which
Chrome, Firefox, Bitwarden and `vault import` read; logins only, one URL each.

Neither format holds files (download them with `vault download`); what a
format cannot hold is reported, never silently dropped.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from vault_api.client.contents import OpenedSafe
from vault_api.client.items import custom_fields, files, urls

FORMATS = ("bitwarden", "csv")


@dataclass(kw_only=True)
class Exported:
    text: str = field(repr=False)
    items: int
    left_out: list[str] = field(default_factory=list)  # what the format could not hold


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def to_bitwarden(safe: OpenedSafe) -> Exported:
    folder_ids: dict[bytes, str] = {}
    folders = []
    for fid in sorted(safe.folders, key=safe.path):
        folder_ids[fid] = str(uuid.uuid4())
        folders.append({"id": folder_ids[fid], "name": safe.path(fid)})
    items = []
    left_out: list[str] = []
    with_files = 0
    for item in sorted(safe.items, key=safe.item_path):
        c = item.content
        out: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "organizationId": None,
            "folderId": folder_ids.get(item.folder_id) if item.folder_id else None,
            "type": 2,
            "reprompt": 0,
            "name": item.title,
            "notes": _s(c.get("notes")) or None,
            "favorite": False,
            "fields": [
                {
                    "name": f["name"],
                    "value": _s(f.get("value")),
                    "type": 1 if f.get("hidden") else 0,
                    "linkedId": None,
                }
                for f in custom_fields(c)
            ],
            "collectionIds": None,
        }
        if item.kind == "login":
            out["type"] = 1
            out["login"] = {
                "uris": [{"match": None, "uri": u} for u in urls(c)],
                "username": _s(c.get("username")) or None,
                "password": _s(c.get("password")) or None,
                "totp": _s(c.get("totp")) or None,
            }
        elif item.kind == "card":
            out["type"] = 3
            month, _, year = _s(c.get("expiry")).partition("/")
            out["card"] = {
                "cardholderName": _s(c.get("cardholder")) or None,
                "brand": _s(c.get("brand")) or None,
                "number": _s(c.get("number")) or None,
                "expMonth": str(int(month)) if month.isdigit() else None,
                "expYear": year or None,
                "code": _s(c.get("code")) or None,
            }
            if _s(c.get("pin")):
                out["fields"].append(
                    {"name": "PIN", "value": c["pin"], "type": 1, "linkedId": None}
                )
        else:
            out["secureNote"] = {"type": 0}
            if item.kind == "document":
                left_out.append(f"{safe.item_path(item)!r} is a document: exported as a note")
        if files(c):
            with_files += 1
        if c.get("tags"):
            left_out.append(f"{safe.item_path(item)!r}: tags (Bitwarden has none)")
        items.append(out)
    if with_files:
        left_out.append(f"files of {with_files} items (download them with `vault download`)")
    text = json.dumps({"encrypted": False, "folders": folders, "items": items}, indent=2)
    return Exported(text=text + "\n", items=len(items), left_out=left_out)


def to_csv(safe: OpenedSafe) -> Exported:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "url", "username", "password", "note"])
    n = 0
    not_logins: dict[str, int] = {}
    extra_urls = totps = fields = foldered = with_files = 0
    for item in sorted(safe.items, key=safe.item_path):
        c = item.content
        if item.kind != "login":
            not_logins[item.kind] = not_logins.get(item.kind, 0) + 1
            continue
        u = urls(c)
        w.writerow(
            [
                item.title,
                u[0] if u else "",
                _s(c.get("username")),
                _s(c.get("password")),
                _s(c.get("notes")),
            ]
        )
        n += 1
        extra_urls += max(0, len(u) - 1)
        totps += bool(_s(c.get("totp")))
        fields += len(custom_fields(c))
        foldered += item.folder_id is not None
        with_files += bool(files(c))
    left_out = [f"{count} {kind} items (CSV holds logins)" for kind, count in not_logins.items()]
    for count, what in (
        (extra_urls, "URLs beyond each login's first"),
        (totps, "TOTP secrets"),
        (fields, "custom fields"),
        (foldered, "folder placements (CSV has no folders)"),
        (with_files, "items' files"),
    ):
        if count:
            left_out.append(f"{count} {what}")
    return Exported(text=buf.getvalue(), items=n, left_out=left_out)


def export(safe: OpenedSafe, fmt: str) -> Exported:
    if fmt == "bitwarden":
        return to_bitwarden(safe)
    return to_csv(safe)
