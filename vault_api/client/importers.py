"""Reading other password managers' exports into vault items. No I/O: each
reader takes the file's text and returns what it found, what it left out and
why, so `vault import --dry-run` can show it before anything is sent.

| format      | file                                                         |
|-------------|--------------------------------------------------------------|
| `bitwarden` | Bitwarden's unencrypted JSON export (File > Export vault > .json) |
| `keepass`   | KeePass 2 XML (File > Export > KeePass XML (2.x)); KeePassXC's XML |
| `chrome`    | Chrome's passwords CSV: name,url,username,password[,note]     |
| `firefox`   | Firefox's logins CSV: url,username,password,httpRealm,...     |

The reader keeps every field the vault's item format can hold; what it
cannot (password history, passkeys, attachments inside the export file) is
counted in `notes`. Skipped entries name their place in the file (item 3,
row 7, entry 'x' in group 'y') and a reason, never a secret value.

XML is parsed with expat with document type declarations refused, so no
entity can expand (no "billion laughs") and nothing external is fetched.
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.parsers.expat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

from vault_api.client import totp
from vault_api.client.errors import Usage

FORMATS = ("bitwarden", "keepass", "chrome", "firefox")


@dataclass(kw_only=True)
class Candidate:
    """An item the file holds, ready to encrypt."""

    content: dict[str, Any] = field(repr=False)
    folder: str  # "A/B", "" for the top of the safe
    source: str  # where it is in the file

    @property
    def title(self) -> str:
        return str(self.content.get("title", ""))


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass(kw_only=True)
class Parsed:
    format: str
    items: list[Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, source: str, reason: str) -> None:
        self.skipped.append(Skipped(source, reason))


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Usage("the file is not UTF-8 text (exports of every supported format are)") from None


def detect(text: str) -> str:
    """The format of an export, from its first bytes (JSON, XML) or CSV header."""
    head = text.lstrip()
    if head.startswith("{"):
        return "bitwarden"
    if head.startswith("<"):
        return "keepass"
    first = next(csv.reader(io.StringIO(head)), [])
    header = [h.strip().lower() for h in first]
    if header[:4] == ["name", "url", "username", "password"]:
        return "chrome"
    if header[:3] == ["url", "username", "password"]:
        return "firefox"
    raise Usage(
        "cannot tell the file's format: expected Bitwarden JSON, KeePass 2 XML, or a CSV "
        "whose header is Chrome's (name,url,username,password[,note]) or Firefox's "
        "(url,username,password,httpRealm,...); or give --format"
    )


def parse(text: str, fmt: str) -> Parsed:
    if fmt == "bitwarden":
        return parse_bitwarden(text)
    if fmt == "keepass":
        return parse_keepass(text)
    if fmt in ("chrome", "firefox"):
        return parse_csv(text, fmt)
    raise Usage(f"unknown import format {fmt!r}: one of {', '.join(FORMATS)}")


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _host(url: str) -> str:
    try:
        host = urlsplit(url if "://" in url else "//" + url).hostname
    except ValueError:
        host = None
    return host or url


def _title(title: str, *, url: str = "", username: str = "") -> str:
    return title.strip() or (_host(url) if url else "") or username or "Untitled"


def _login(title: str, username: str, password: str, urls: list[str], notes: str) -> dict[str, Any]:
    content: dict[str, Any] = {"type": "login", "title": _title(title, url=next(iter(urls), ""))}
    if username:
        content["username"] = username
    if password:
        content["password"] = password
    if urls:
        content["urls"] = urls
    if notes:
        content["notes"] = notes
    return content


def _dedupe(parsed: Parsed) -> None:
    """Entries identical to an earlier one in the same file are skipped."""
    seen: dict[str, str] = {}
    kept = []
    for c in parsed.items:
        key = json.dumps([c.folder, c.content], sort_keys=True)
        if key in seen:
            parsed.skip(c.source, f"the same as {seen[key]}")
        else:
            seen[key] = c.source
            kept.append(c)
    parsed.items = kept


# --- Bitwarden ----------------------------------------------------------------------

BW_LOGIN, BW_NOTE, BW_CARD, BW_IDENTITY, BW_SSH = 1, 2, 3, 4, 5
BW_TEXT, BW_HIDDEN, BW_BOOLEAN, BW_LINKED = 0, 1, 2, 3
BW_SECRET_DETAILS = frozenset({"privateKey", "ssn", "passportNumber", "licenseNumber"})


def _words(name: str) -> str:
    """Bitwarden's camelCase detail names as people write them: firstName -> First name."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()
    return spaced[:1].upper() + spaced[1:]


def parse_bitwarden(text: str) -> Parsed:
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise Usage(f"the file is not JSON (line {getattr(e, 'lineno', '?')})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise Usage("not a Bitwarden export: no list of items")
    if doc.get("encrypted"):
        raise Usage(
            "this is an encrypted Bitwarden export; export again choosing the file format "
            "'.json' (not '.json (Encrypted)'), import it, then delete it"
        )
    out = Parsed(format="bitwarden")
    folders = {
        f.get("id"): _s(f.get("name"))
        for f in doc.get("folders") or []
        if isinstance(f, dict) and f.get("id")
    }
    collections = {
        c.get("id"): _s(c.get("name"))
        for c in doc.get("collections") or []
        if isinstance(c, dict) and c.get("id")
    }
    dropped_history = dropped_passkeys = dropped_linked = dropped_attachments = 0
    for n, raw in enumerate(doc["items"], 1):
        if not isinstance(raw, dict):
            out.skip(f"item {n}", "not a JSON object")
            continue
        name = _s(raw.get("name"))
        source = f"item {n} {name!r}" if name else f"item {n}"
        if raw.get("deletedDate"):
            out.skip(source, "it is in Bitwarden's trash")
            continue
        kind = raw.get("type")
        notes = _s(raw.get("notes"))
        content: dict[str, Any]
        if kind == BW_LOGIN:
            login = _obj(raw.get("login"))
            uris = [_s(u.get("uri")) for u in login.get("uris") or [] if isinstance(u, dict)]
            content = _login(
                name,
                _s(login.get("username")),
                _s(login.get("password")),
                [u for u in uris if u],
                notes,
            )
            if _s(login.get("totp")):
                content["totp"] = _s(login["totp"])
            if login.get("fido2Credentials"):
                dropped_passkeys += len(login["fido2Credentials"])
        elif kind == BW_NOTE:
            content = {"type": "note", "title": _title(name)}
            if notes:
                content["notes"] = notes
        elif kind == BW_CARD:
            card = _obj(raw.get("card"))
            content = {"type": "card", "title": _title(name)}
            for ours, theirs in (
                ("cardholder", "cardholderName"),
                ("brand", "brand"),
                ("number", "number"),
                ("code", "code"),
            ):
                if _s(card.get(theirs)):
                    content[ours] = _s(card[theirs])
            month, year = _s(card.get("expMonth")), _s(card.get("expYear"))
            if month.isdigit() and year.isdigit() and 1 <= int(month) <= 12:
                content["expiry"] = f"{int(month):02d}/{'20' + year if len(year) == 2 else year}"
            if notes:
                content["notes"] = notes
        elif kind in (BW_IDENTITY, BW_SSH):
            what = "identity" if kind == BW_IDENTITY else "sshKey"
            details = _obj(raw.get(what))
            content = {"type": "note", "title": _title(name)}
            if notes:
                content["notes"] = notes
            fields = [
                {"name": _words(k), "value": v, "hidden": k in BW_SECRET_DETAILS}
                for k, v in details.items()
                if isinstance(v, str) and v
            ]
            if fields:
                content["fields"] = fields
            out.notes.append(
                f"{source}: a Bitwarden {'identity' if kind == BW_IDENTITY else 'SSH key'} "
                "became a secure note with its details as fields"
            )
        else:
            out.skip(source, f"Bitwarden item type {kind!r} has no vault equivalent")
            continue
        custom = []
        for f in raw.get("fields") or []:
            if not isinstance(f, dict):
                continue
            if f.get("type") == BW_LINKED:
                dropped_linked += 1
                continue
            value = f.get("value")
            if isinstance(value, bool):
                value = "true" if value else "false"
            custom.append(
                {
                    "name": _s(f.get("name")) or "field",
                    "value": _s(value),
                    "hidden": f.get("type") == BW_HIDDEN,
                }
            )
        if custom:
            content["fields"] = [*content.get("fields", []), *custom]
        dropped_history += len(raw.get("passwordHistory") or [])
        dropped_attachments += len(raw.get("attachments") or [])
        folder = folders.get(raw.get("folderId"), "")
        if not folder and raw.get("collectionIds"):
            folder = collections.get(raw["collectionIds"][0], "")
        out.items.append(Candidate(content=content, folder=folder, source=source))
    for count, what in (
        (dropped_history, "old passwords (password history)"),
        (dropped_passkeys, "passkeys (FIDO2 credentials)"),
        (dropped_linked, "linked custom fields"),
        (dropped_attachments, "attachments (not inside the export file)"),
    ):
        if count:
            out.notes.append(f"not imported: {count} {what}")
    _dedupe(out)
    return out


# --- KeePass 2 XML ------------------------------------------------------------------


class _DoctypeRefused(Exception):
    pass


def parse_xml(text: str) -> Element:
    """An element tree from XML with no document type declaration (so no
    entities at all); raises Usage on anything else."""
    parser = xml.parsers.expat.ParserCreate()
    stack: list[Element] = []
    root: list[Element] = []
    texts: list[list[str]] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        el = Element(tag, attrs)
        if stack:
            stack[-1].append(el)
        else:
            root.append(el)
        stack.append(el)
        texts.append([])

    def end(tag: str) -> None:
        el = stack.pop()
        el.text = "".join(texts.pop())

    def data(s: str) -> None:
        if texts:
            texts[-1].append(s)

    def doctype(*_: object) -> None:
        raise _DoctypeRefused

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    try:
        parser.Parse(text, True)
    except _DoctypeRefused:
        raise Usage(
            "the XML file declares a document type (DTD); KeePass exports do not, and "
            "entities are refused"
        ) from None
    except xml.parsers.expat.ExpatError as e:
        raise Usage(f"the file is not well-formed XML: {e}") from None
    if not root:
        raise Usage("the XML file is empty")
    return root[0]


def _child_text(el: Element, tag: str) -> str:
    child = el.find(tag)
    return child.text or "" if child is not None else ""


KEEPASS_STANDARD = {"Title", "UserName", "Password", "URL", "Notes"}


def _keepass_totp(strings: dict[str, str]) -> str | None:
    """KeePassXC keeps `otp` (an otpauth URI); KeePass 2.47+ `TimeOtp-Secret-Base32`
    with optional `TimeOtp-Length`, `-Period`, `-Algorithm`."""
    if strings.get("otp"):
        return strings["otp"]
    secret = strings.get("TimeOtp-Secret-Base32") or strings.get("TOTP Seed")
    if not secret:
        return None
    params = []
    algorithm = strings.get("TimeOtp-Algorithm", "").upper().replace("HMAC-", "").replace("-", "")
    if algorithm in totp.ALGORITHMS and algorithm != "SHA1":
        params.append(f"algorithm={algorithm}")
    if strings.get("TimeOtp-Length", "").isdigit():
        params.append(f"digits={strings['TimeOtp-Length']}")
    if strings.get("TimeOtp-Period", "").isdigit():
        params.append(f"period={strings['TimeOtp-Period']}")
    if not params:
        return secret
    clean = re.sub(r"\s", "", secret)
    return f"otpauth://totp/imported?secret={clean}&" + "&".join(params)


TOTP_KEYS = {
    "otp",
    "TOTP Seed",
    "TOTP Settings",
    "TimeOtp-Secret-Base32",
    "TimeOtp-Length",
    "TimeOtp-Period",
    "TimeOtp-Algorithm",
}


def parse_keepass(text: str) -> Parsed:
    root = parse_xml(text)
    if root.tag != "KeePassFile" or root.find("Root") is None:
        raise Usage("not a KeePass 2 XML file (no KeePassFile/Root)")
    out = Parsed(format="keepass")
    meta = root.find("Meta")
    bin_uuid = ""
    if meta is not None and _child_text(meta, "RecycleBinEnabled").lower() != "false":
        bin_uuid = _child_text(meta, "RecycleBinUUID")
    attachments = history = 0
    top = root.find("Root/Group")
    if top is None:
        raise Usage("the KeePass file has no groups")

    def walk(group: Element, path: list[str], in_bin: bool) -> Iterator[tuple[Element, str, bool]]:
        for child in group:
            if child.tag == "Entry":
                yield child, "/".join(path), in_bin
            elif child.tag == "Group":
                uuid = _child_text(child, "UUID")
                yield from walk(
                    child,
                    [*path, _child_text(child, "Name") or "Group"],
                    in_bin or bool(bin_uuid and uuid == bin_uuid),
                )

    for n, (entry, folder, in_bin) in enumerate(walk(top, [], False), 1):
        strings: dict[str, str] = {}
        hidden: set[str] = set()
        protected = False
        for s in entry.findall("String"):
            key = _child_text(s, "Key")
            value_el = s.find("Value")
            value = value_el.text or "" if value_el is not None else ""
            if value_el is not None and value_el.get("Protected", "").lower() == "true":
                protected = True
            if value_el is not None and value_el.get("ProtectInMemory", "").lower() == "true":
                hidden.add(key)
            strings[key] = value
        title = strings.get("Title", "")
        where = f" in group {folder!r}" if folder else ""
        source = f"entry {n} {title!r}{where}" if title else f"entry {n}{where}"
        if in_bin:
            out.skip(source, "it is in KeePass's recycle bin")
            continue
        if protected:
            out.skip(
                source,
                "its protected values are encrypted in this XML (a file from inside a KDBX); "
                "export with File > Export > KeePass XML (2.x) instead",
            )
            continue
        attachments += len(entry.findall("Binary"))
        history += len(entry.findall("History/Entry"))
        url = strings.get("URL", "")
        username = strings.get("UserName", "")
        password = strings.get("Password", "")
        notes = strings.get("Notes", "")
        otp = _keepass_totp(strings)
        custom = [
            {"name": k, "value": v, "hidden": k in hidden}
            for k, v in strings.items()
            if k not in KEEPASS_STANDARD and k not in TOTP_KEYS and not k.startswith("TimeOtp-")
        ]
        if not any([title, url, username, password, notes, otp, custom]):
            out.skip(source, "the entry is empty")
            continue
        content: dict[str, Any]
        if username or password or url or otp:
            content = _login(title, username, password, [url] if url else [], notes)
            if otp:
                content["totp"] = otp
        else:
            content = {"type": "note", "title": _title(title)}
            if notes:
                content["notes"] = notes
        if custom:
            content["fields"] = custom
        tags = [t.strip() for t in re.split(r"[;,]", _child_text(entry, "Tags")) if t.strip()]
        if tags:
            content["tags"] = tags
        out.items.append(Candidate(content=content, folder=folder, source=source))
    if attachments:
        out.notes.append(f"not imported: {attachments} attachments (add them with `vault upload`)")
    if history:
        out.notes.append(f"not imported: {history} old versions of entries (entry history)")
    _dedupe(out)
    return out


# --- CSV (Chrome, Firefox) -------------------------------------------------------------

FIREFOX_ACCOUNTS = "chrome://FirefoxAccounts"


def parse_csv(text: str, fmt: str) -> Parsed:
    out = Parsed(format=fmt)
    rows = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(rows)]
    except StopIteration:
        raise Usage("the CSV file is empty") from None
    except csv.Error as e:
        raise Usage(f"the CSV header cannot be read: {e}") from None
    needed = (
        ("name", "url", "username", "password")
        if fmt == "chrome"
        else ("url", "username", "password")
    )
    missing = [h for h in needed if h not in header]
    if missing:
        raise Usage(
            f"not a {fmt.capitalize()} passwords CSV: the header lacks {', '.join(missing)}"
        )
    col = {h: i for i, h in enumerate(header)}
    notes_col = col.get("note", col.get("notes"))
    while True:
        line = rows.line_num + 1  # where the record starts (a quoted field may span lines)
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as e:
            raise Usage(f"the CSV file is damaged at line {rows.line_num}: {e}") from None
        if not any(cell.strip() for cell in row):
            continue

        def get(name: str, row: list[str] = row) -> str:
            return row[col[name]] if name in col and col[name] < len(row) else ""

        url, username, password = get("url"), get("username"), get("password")
        title = get("name") if fmt == "chrome" else ""
        if title:
            source = f"row {line} {title!r}"
        elif url:
            source = f"row {line} ({_host(url)})"
        else:
            source = f"row {line}"
        if len(row) != len(header):
            out.skip(source, f"it has {len(row)} fields where the header has {len(header)}")
            continue
        if fmt == "firefox" and url.startswith(FIREFOX_ACCOUNTS):
            out.skip(source, "Firefox's own account login, not a site's")
            continue
        if not username and not password:
            out.skip(source, "it has neither a username nor a password")
            continue
        notes = row[notes_col] if notes_col is not None else ""
        content = _login(title, username, password, [url] if url else [], notes)
        out.items.append(Candidate(content=content, folder="", source=source))
    _dedupe(out)
    return out


def summary(parsed: Parsed) -> Mapping[str, int]:
    kinds: dict[str, int] = {}
    for c in parsed.items:
        kinds[c.content["type"]] = kinds.get(c.content["type"], 0) + 1
    return kinds
