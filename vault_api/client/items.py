"""Items as JSON objects (docs/vault.md 7.3): making, editing, reading one
field, and describing them without showing their secrets. No I/O.

Editing keeps every field the CLI does not know (another client may have
written it): `apply` changes only what a `Changes` names.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vault_api.client.errors import NotFound, Usage

KINDS = ("login", "note", "card", "document")
# Fields whose values `show` hides unless asked (`--reveal`); custom fields
# marked hidden too.
SECRET_FIELDS = frozenset({"password", "totp", "number", "code", "pin"})
# Scalar text fields by item type (every type also has title, notes, tags,
# fields and files).
TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "login": ("username", "password", "totp"),
    "note": (),
    "card": ("cardholder", "number", "brand", "expiry", "code", "pin"),
    "document": (),
}
ALIASES = {
    "user": "username",
    "login": "username",
    "pass": "password",
    "cvv": "code",
    "cvc": "code",
    "otp": "totp",
    "note": "notes",
    "holder": "cardholder",
    "name": "title",
}
STANDARD = frozenset(
    {"title", "type", "notes", "tags", "url", "urls", "id"}
    | {f for names in TEXT_FIELDS.values() for f in names}
)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def custom_fields(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for f in content.get("fields") or []:
        if isinstance(f, dict) and isinstance(f.get("name"), str):
            out.append(f)
    return out


def urls(content: Mapping[str, Any]) -> list[str]:
    return [u for u in content.get("urls") or [] if isinstance(u, str) and u]


def files(content: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [f for f in content.get("files") or [] if isinstance(f, dict) and "id" in f]


def normalise_expiry(text: str) -> str:
    """ "MM/YYYY" from MM/YYYY, M/YY, MM-YYYY or MMYY."""
    m = re.fullmatch(r"\s*(\d{1,2})\s*[/-]?\s*(\d{2}|\d{4})\s*", text)
    if not m or not 1 <= int(m.group(1)) <= 12:
        raise Usage(f"a card expiry is MM/YYYY, got {text!r}")
    year = m.group(2)
    return f"{int(m.group(1)):02d}/{'20' + year if len(year) == 2 else year}"


def normalise_card_number(text: str) -> str:
    digits = re.sub(r"[\s-]", "", text)
    if not re.fullmatch(r"\d{8,19}", digits):
        raise Usage("a card number is 8 to 19 digits (spaces and dashes are ignored)")
    return digits


@dataclass(kw_only=True)
class Changes:
    """What `vault add` or `vault edit` sets. None leaves a field as it is;
    an empty string removes it."""

    values: dict[str, str] = field(default_factory=dict)  # title, username, password, ...
    urls: list[str] | None = None
    tags: list[str] | None = None
    set_fields: list[tuple[str, str, bool]] = field(default_factory=list)  # name, value, hidden
    remove_fields: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # never the values
        return f"Changes(fields={sorted(self.values)}, custom={len(self.set_fields)})"

    @property
    def empty(self) -> bool:
        return not (
            self.values
            or self.urls is not None
            or self.tags is not None
            or self.set_fields
            or self.remove_fields
        )


def new_item(kind: str, title: str, changes: Changes) -> dict[str, Any]:
    if kind not in KINDS:
        raise Usage(f"an item is one of {', '.join(KINDS)}, not {kind!r}")
    if not title.strip():
        raise Usage("an item needs a title")
    return apply({"type": kind, "title": title}, changes)


def apply(content: Mapping[str, Any], changes: Changes) -> dict[str, Any]:
    """A copy of `content` with `changes` made; unknown fields kept."""
    out = copy.deepcopy(dict(content))
    kind = out.get("type")
    allowed = {"title", "notes", *TEXT_FIELDS.get(str(kind), ())}
    for name, value in changes.values.items():
        if name not in allowed:
            raise Usage(f"a {kind} item has no field {name!r}")
        if name == "title" and not value.strip():
            raise Usage("an item needs a title")
        if name == "expiry" and value:
            value = normalise_expiry(value)
        if name == "number" and value:
            value = normalise_card_number(value)
        if value:
            out[name] = value
        else:
            out.pop(name, None)
    if changes.urls is not None:
        if kind != "login":
            raise Usage(f"a {kind} item has no URLs")
        if changes.urls:
            out["urls"] = list(changes.urls)
        else:
            out.pop("urls", None)
    if changes.tags is not None:
        if changes.tags:
            out["tags"] = list(changes.tags)
        else:
            out.pop("tags", None)
    fields = custom_fields(out)
    for name in changes.remove_fields:
        kept = [f for f in fields if f["name"] != name]
        if len(kept) == len(fields):
            raise NotFound(f"the item has no custom field {name!r}")
        fields = kept
    for name, value, hidden in changes.set_fields:
        if not name:
            raise Usage("a custom field needs a name")
        for f in fields:
            if f["name"] == name:
                f["value"], f["hidden"] = value, hidden
                break
        else:
            fields.append({"name": name, "value": value, "hidden": hidden})
    if fields:
        out["fields"] = fields
    else:
        out.pop("fields", None)
    return out


def field_names(content: Mapping[str, Any]) -> list[str]:
    """The fields `get --field` can read from this item."""
    names = ["title"]
    for name in ("username", "password", "totp", "cardholder", "number", "brand", "expiry"):
        if _text(content.get(name)):
            names.append(name)
    for name in ("code", "pin", "notes"):
        if _text(content.get(name)):
            names.append(name)
    if urls(content):
        names += ["url", "urls"]
    names += [f["name"] for f in custom_fields(content)]
    return names


def get_field(content: Mapping[str, Any], name: str) -> str:
    """One field's exact value: a standard field, else a custom field of that
    name (`field:NAME` reads a custom field even when a standard one shares it)."""
    if name.startswith("field:"):
        return _custom(content, name[len("field:") :])
    key = ALIASES.get(name.lower(), name.lower())
    if key in STANDARD:
        if key == "url":
            found = urls(content)
            if found:
                return found[0]
        elif key == "urls":
            if urls(content):
                return "\n".join(urls(content))
        elif key == "tags":
            tags = [t for t in content.get("tags") or [] if isinstance(t, str)]
            if tags:
                return ",".join(tags)
        elif _text(content.get(key)):
            return _text(content[key])
        # A standard name the item lacks may still be a custom field's name.
        try:
            return _custom(content, name)
        except NotFound:
            raise NotFound(
                f"item {content.get('title')!r} has no {key}; it has: "
                + ", ".join(field_names(content))
            ) from None
    return _custom(content, name)


def _custom(content: Mapping[str, Any], name: str) -> str:
    fields = custom_fields(content)
    found = [f for f in fields if f["name"] == name] or [
        f for f in fields if f["name"].lower() == name.lower()
    ]
    if found:
        return _text(found[0].get("value"))
    raise NotFound(
        f"item {content.get('title')!r} has no field {name!r}; it has: "
        + ", ".join(field_names(content))
    )


def summary(content: Mapping[str, Any]) -> str:
    """One line about an item for lists: nothing secret."""
    kind = content.get("type")
    if kind == "login":
        parts = [_text(content.get("username"))]
        if urls(content):
            parts.append(urls(content)[0])
        return "  ".join(p for p in parts if p)
    if kind == "card":
        number = _text(content.get("number"))
        brand = _text(content.get("brand")) or "card"
        return f"{brand} ending {number[-4:]}" if len(number) >= 4 else brand
    if kind == "document":
        return ", ".join(str(f.get("name", "")) for f in files(content))
    return ""


def masked(content: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The item without its secret values, and the names of those removed."""
    out = copy.deepcopy(dict(content))
    hidden = []
    for name in sorted(SECRET_FIELDS):
        if name in out:
            del out[name]
            hidden.append(name)
    fields = []
    for f in custom_fields(out):
        if f.get("hidden"):
            hidden.append(f["name"])
            fields.append({k: v for k, v in f.items() if k != "value"})
        else:
            fields.append(f)
    if fields:
        out["fields"] = fields
    return out, hidden


LABELS = {
    "username": "Username",
    "password": "Password",
    "totp": "TOTP",
    "cardholder": "Cardholder",
    "number": "Number",
    "brand": "Brand",
    "expiry": "Expiry",
    "code": "Security code",
    "pin": "PIN",
}


def describe(content: Mapping[str, Any], *, reveal: bool) -> list[str]:
    """The item as `vault show` prints it; secrets as dots unless `reveal`."""
    lines = [f"{content.get('title')}  ({content.get('type')})"]
    for name, label in LABELS.items():
        value = _text(content.get(name))
        if not value:
            continue
        if name in SECRET_FIELDS and not reveal:
            value = "••••••••" + ("  (`vault totp` for the code)" if name == "totp" else "")
        lines.append(f"{label + ':':15}{value}")
    for u in urls(content):
        lines.append(f"{'URL:':15}{u}")
    for f in custom_fields(content):
        value = _text(f.get("value"))
        if f.get("hidden") and not reveal:
            value = "••••••••"
        lines.append(f"{f['name'] + ':':15}{value}")
    tags = [t for t in content.get("tags") or [] if isinstance(t, str)]
    if tags:
        lines.append(f"{'Tags:':15}{', '.join(tags)}")
    for f in files(content):
        lines.append(f"{'File:':15}{f.get('name')}  ({human_size(int(f.get('size') or 0))})")
    notes = _text(content.get("notes"))
    if notes:
        lines.append("Notes:")
        lines += ["  " + line for line in notes.splitlines()]
    return lines


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Names of the fields that differ (never their values)."""
    names = []
    for key in sorted(set(old) | set(new)):
        if key == "fields":
            a = {f["name"]: f for f in custom_fields(old)}
            b = {f["name"]: f for f in custom_fields(new)}
            names += [n for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)]
        elif old.get(key) != new.get(key):
            names.append(key)
    return names


def fingerprint(content: Mapping[str, Any]) -> str:
    """What makes two items the same for an import (files aside)."""
    return json.dumps(
        {k: v for k, v in content.items() if k != "files"}, sort_keys=True, ensure_ascii=False
    )


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def matches(content: Mapping[str, Any], text: str) -> bool:
    """Client-side search: title, username, URLs, tags, notes, custom field names
    and visible values; case-insensitive."""
    needle = text.lower()
    hay: Iterable[str] = [
        _text(content.get("title")),
        _text(content.get("username")),
        _text(content.get("notes")),
        _text(content.get("cardholder")),
        _text(content.get("brand")),
        *urls(content),
        *[t for t in content.get("tags") or [] if isinstance(t, str)],
        *[f["name"] for f in custom_fields(content)],
        *[_text(f.get("value")) for f in custom_fields(content) if not f.get("hidden")],
    ]
    return any(needle in h.lower() for h in hay)
