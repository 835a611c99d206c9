"""A vault client for tests: the Python crypto reference (vault_api.crypto)
plus the HTTP API, as the browser UI and the CLI use them.

    async with VaultClient(url) as alice:
        await alice.login(phone)          # QR login through authnet: Kc, session, CSRF
        await alice.register("alice")     # key pair, first key slot, handle
        sid = await alice.create_safe("Home")
        iid = await alice.add_item(sid, {"type": "login", "title": "Mail", ...})

It keeps what a browser would keep in memory: Kc per token, the private key,
the safe keys it opened. Methods that send something return the parsed JSON
and assert the status they expect (`expect=`), so a test reads as the story.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Any

import aiohttp
import httpx
from cryptography.hazmat.primitives.asymmetric import x25519

from authnet.protocol.encoding import b64u_decode, b64u_encode
from authnet.sdk.browser import BrowserSession
from simulators.phone.app import PhoneApp
from vault_api import crypto as vc
from vault_api.client import factors
from vault_api.crypto import factors as factor_format

GET = frozenset({"GET", "HEAD"})


def enc(b: bytes) -> str:
    return b64u_encode(b)


def dec(s: str) -> bytes:
    return b64u_decode(s, field="value")


def opt(s: str | None) -> bytes | None:
    return None if s is None else dec(s)


class VaultClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30.0)
        self.csrf: str | None = None
        self.kc: dict[bytes, bytes] = {}
        self.key_id: bytes | None = None
        self.user_id: bytes | None = None
        self.private_key: x25519.X25519PrivateKey | None = None
        self.public_key: bytes | None = None
        self.keypair_version = 1
        # (safe id, generation) -> Ks
        self.safe_keys: dict[tuple[bytes, int], bytes] = {}
        # The session's token slot as the server sent it (kind kc or kc+passphrase).
        self.slot: dict[str, Any] | None = None
        # The token factor T, once opened (a vault passphrase is set).
        self.token_factor: bytes | None = None

    async def __aenter__(self) -> VaultClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.http.aclose()

    # --- HTTP ---------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        expect: int | None = 200,
        csrf: bool = True,
    ) -> httpx.Response:
        h = dict(headers or {})
        if csrf and self.csrf and method not in GET:
            h["X-CSRF-Token"] = self.csrf
        r = await self.http.request(
            method, path, json=json, content=content, headers=h, params=params
        )
        if expect is not None:
            assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r

    async def json(self, method: str, path: str, **kw: Any) -> Any:
        r = await self.call(method, path, **kw)
        return r.json() if r.content else None

    # --- login --------------------------------------------------------------------

    async def scan(self, phone: PhoneApp) -> tuple[str, bytes]:
        """Get a login ticket, wait on the gateway as the page does, let the
        phone scan the QR code; returns the ticket and the Kc it delivered."""
        t = await self.json("POST", "/api/login/ticket", expect=201)
        session = BrowserSession(
            ticket=t["ticket"],
            spid=bytes.fromhex(t["spid"]),
            gateway_url=t["gateway_url"],
            passkey_address=t["passkey_address"],
        )
        async with aiohttp.ClientSession() as http, session.waiting(http) as wait:
            await phone.scan(session.payload().encode(), confirm=lambda _: True, ask_pin=None)
            async with asyncio.timeout(10):
                outcome = await wait.result()
        assert outcome.kc is not None
        return t["ticket"], outcome.kc

    async def login(self, phone: PhoneApp) -> dict[str, Any]:
        ticket, kc = await self.scan(phone)
        s = await self.json("POST", "/api/login", json={"ticket": ticket})
        self._session(s, kc)
        return s

    def _session(self, s: dict[str, Any], kc: bytes) -> None:
        self.csrf = s["csrf_token"]
        self.user_id = dec(s["user"]["user_id"])
        self.key_id = dec(s["key_id"])
        self.kc[self.key_id] = kc
        user = s["user"]
        self.slot = s["slot"]
        self.private_key = None
        if user["registered"]:
            self.public_key = dec(user["public_key"])
            self.keypair_version = user["keypair_version"]
            if s["slot"] is not None and s["slot"]["kind"] == "kc":
                self.unlock(s["slot"])

    def unlock(self, slot: dict[str, Any]) -> None:
        """Open the private key from a key slot with this token's Kc."""
        assert self.user_id is not None
        assert self.public_key is not None
        kid = dec(slot["key_id"])
        self.private_key = vc.open_slot(
            self.kc[kid],
            dec(slot["slot"]),
            user_id=self.user_id,
            key_id=kid,
            keypair_version=slot["keypair_version"],
            public_key=self.public_key,
        )

    async def register(self, handle: str) -> dict[str, Any]:
        assert self.user_id is not None
        assert self.key_id is not None
        self.private_key = vc.generate_key_pair()
        self.public_key = vc.public_key_bytes(self.private_key)
        slot = vc.make_slot(
            self.kc[self.key_id], self.private_key, user_id=self.user_id, key_id=self.key_id
        )
        return await self.json(
            "POST",
            "/api/me",
            json={"handle": handle, "public_key": enc(self.public_key), "slot": enc(slot)},
            expect=201,
        )

    async def add_token(self, phone: PhoneApp) -> bytes:
        """Prove another token of the account in this session and give it a slot."""
        assert self.private_key is not None
        assert self.user_id is not None
        ticket, kc = await self.scan(phone)
        proven = await self.json("POST", "/api/session/tokens", json={"ticket": ticket})
        kid = dec(proven["key_id"])
        self.kc[kid] = kc
        if self.token_factor is not None:  # a vault passphrase is set: the slot holds T
            assert self.public_key is not None
            slot = factor_format.make_token_slot(
                kc,
                self.token_factor,
                user_id=self.user_id,
                key_id=kid,
                keypair_version=self.keypair_version,
                public_key=self.public_key,
            )
            kind = "kc+passphrase"
        else:
            slot = vc.make_slot(kc, self.private_key, user_id=self.user_id, key_id=kid)
            kind = "kc"
        await self.json(
            "PUT",
            f"/api/me/slots/{enc(kid)}",
            json={"keypair_version": self.keypair_version, "kind": kind, "slot": enc(slot)},
        )
        return kid

    async def logout(self) -> None:
        await self.call("POST", "/api/logout", expect=204)

    # --- safes --------------------------------------------------------------------

    async def create_safe(self, name: str) -> bytes:
        assert self.public_key is not None
        assert self.user_id is not None
        sid, ks = vc.new_id(), vc.new_safe_key()
        body = {
            "id": enc(sid),
            "name_ct": enc(vc.encrypt_safe_name(ks, name, safe_id=sid, version=1, generation=1)),
            "sealed_key": enc(
                vc.seal_safe_key(
                    ks, self.public_key, safe_id=sid, user_id=self.user_id, generation=1
                )
            ),
        }
        await self.json("POST", "/api/safes", json=body, expect=201)
        self.safe_keys[(sid, 1)] = ks
        return sid

    async def safe(self, sid: bytes) -> dict[str, Any]:
        return await self.json("GET", f"/api/safes/{enc(sid)}")

    async def key(self, sid: bytes, safe: dict[str, Any] | None = None) -> tuple[bytes, int]:
        """The current Ks of a safe (opened from the sealed key the server holds)."""
        assert self.private_key is not None
        assert self.user_id is not None
        safe = safe or await self.safe(sid)
        g = safe["generation"]
        ks = vc.open_safe_key(
            dec(safe["sealed_key"]),
            self.private_key,
            safe_id=sid,
            user_id=self.user_id,
            generation=g,
        )
        self.safe_keys[(sid, g)] = ks
        return ks, g

    async def safe_name(self, sid: bytes) -> str:
        safe = await self.safe(sid)
        ks, g = await self.key(sid, safe)
        return vc.decrypt_safe_name(
            ks, dec(safe["name_ct"]), safe_id=sid, version=safe["name_version"], generation=g
        )

    async def contents(self, sid: bytes) -> dict[str, Any]:
        return await self.json("GET", f"/api/safes/{enc(sid)}/contents")

    async def items(self, sid: bytes) -> dict[bytes, dict[str, Any]]:
        """Open the safe: every item decrypted (raises on any that does not open)."""
        c = await self.contents(sid)
        ks, _ = await self.key(sid, c["safe"])
        return {
            dec(i["id"]): vc.decrypt_item(
                ks,
                dec(i["ct"]),
                safe_id=sid,
                item_id=dec(i["id"]),
                folder_id=opt(i["folder_id"]),
                version=i["version"],
                generation=i["generation"],
                schema=i["schema"],
            )
            for i in c["items"]
        }

    def item_body(
        self,
        sid: bytes,
        iid: bytes,
        content: dict[str, Any],
        *,
        ks: bytes,
        generation: int,
        version: int,
        folder_id: bytes | None = None,
    ) -> dict[str, Any]:
        ct = vc.encrypt_item(
            ks,
            content,
            safe_id=sid,
            item_id=iid,
            folder_id=folder_id,
            version=version,
            generation=generation,
        )
        return {
            "folder_id": None if folder_id is None else enc(folder_id),
            "generation": generation,
            "schema": 1,
            "ct": enc(ct),
        }

    async def add_item(
        self,
        sid: bytes,
        content: dict[str, Any],
        *,
        folder_id: bytes | None = None,
        expect: int = 201,
    ) -> bytes:
        ks, g = await self.key(sid)
        iid = vc.new_id()
        body = self.item_body(
            sid, iid, content, ks=ks, generation=g, version=1, folder_id=folder_id
        )
        await self.call(
            "POST", f"/api/safes/{enc(sid)}/items", json={"id": enc(iid), **body}, expect=expect
        )
        return iid

    async def update_item(
        self,
        sid: bytes,
        iid: bytes,
        content: dict[str, Any],
        *,
        expected_version: int,
        folder_id: bytes | None = None,
        generation: int | None = None,
        expect: int = 200,
    ) -> httpx.Response:
        ks, g = await self.key(sid)
        if generation is not None:
            ks, g = self.safe_keys[(sid, generation)], generation
        body = self.item_body(
            sid,
            iid,
            content,
            ks=ks,
            generation=g,
            version=expected_version + 1,
            folder_id=folder_id,
        )
        return await self.call(
            "PUT",
            f"/api/safes/{enc(sid)}/items/{enc(iid)}",
            json={"expected_version": expected_version, **body},
            expect=expect,
        )

    async def add_folder(self, sid: bytes, name: str, parent: bytes | None = None) -> bytes:
        ks, g = await self.key(sid)
        fid = vc.new_id()
        ct = vc.encrypt_folder_name(
            ks, name, safe_id=sid, folder_id=fid, parent_id=parent, version=1, generation=g
        )
        await self.json(
            "POST",
            f"/api/safes/{enc(sid)}/folders",
            json={
                "id": enc(fid),
                "parent_id": None if parent is None else enc(parent),
                "generation": g,
                "name_ct": enc(ct),
            },
            expect=201,
        )
        return fid

    # --- sharing --------------------------------------------------------------------

    async def share(self, sid: bytes, handle: str, role: str, *, expect: int = 201) -> str:
        """Share with a user by handle; returns the fingerprint the admin would
        compare with the one the recipient sees."""
        user = await self.json("GET", f"/api/users/{handle}")
        uid, pk = dec(user["user_id"]), dec(user["public_key"])
        fp = vc.fingerprint(user_id=uid, public_key=pk)
        ks, g = await self.key(sid)
        sealed = vc.seal_safe_key(ks, pk, safe_id=sid, user_id=uid, generation=g)
        await self.call(
            "POST",
            f"/api/safes/{enc(sid)}/members",
            json={"user_id": enc(uid), "role": role, "generation": g, "sealed_key": enc(sealed)},
            expect=expect,
        )
        return fp

    def fingerprint(self) -> str:
        assert self.user_id is not None
        assert self.public_key is not None
        return vc.fingerprint(user_id=self.user_id, public_key=self.public_key)

    # --- files ----------------------------------------------------------------------

    async def upload(
        self, sid: bytes, data: Iterable[bytes], size: int, fmt: vc.FileFormat = vc.V1
    ) -> bytes:
        """Announce a file (in format `fmt`: the server keeps a one-chunk file
        in format 1), then stream its encrypted body chunk by chunk."""
        ks, g = await self.key(sid)
        fid, fk = vc.new_id(), vc.new_file_key()
        wrapped = vc.wrap_file_key(ks, fk, safe_id=sid, file_id=fid, generation=g)
        announce = {"id": enc(fid), "generation": g, "key_wrap": enc(wrapped), "size": size}
        if fmt is not vc.V1:
            announce["chunk_bytes"] = fmt.chunk_bytes
        meta = await self.json("POST", f"/api/safes/{enc(sid)}/files", json=announce, expect=201)
        used = vc.format_for(size, fmt.chunk_bytes)
        assert meta["chunk_bytes"] == used.chunk_bytes
        assert meta["body_size"] == vc.ciphertext_size(size, used)

        async def body() -> AsyncIterator[bytes]:
            for box in vc.encrypt_file(fk, fid, data, used):
                yield box

        await self.call(
            "PUT",
            f"/api/safes/{enc(sid)}/files/{enc(fid)}/body",
            content=body(),
            headers={"Content-Type": "application/octet-stream"},
        )
        return fid

    async def download(self, sid: bytes, fid: bytes) -> AsyncIterator[bytes]:
        """The file's plaintext, streamed and checked chunk by chunk."""
        meta = await self.json("GET", f"/api/safes/{enc(sid)}/files/{enc(fid)}")
        ks, _ = await self.key(sid)
        fk = vc.unwrap_file_key(
            ks, dec(meta["key_wrap"]), safe_id=sid, file_id=fid, generation=meta["generation"]
        )
        decryptor = vc.FileDecryptor(fk, fid, vc.format_for(meta["size"], meta["chunk_bytes"]))
        async with self.http.stream("GET", f"/api/safes/{enc(sid)}/files/{enc(fid)}/body") as r:
            assert r.status_code == 200, r.status_code
            async for piece in r.aiter_raw():
                out = decryptor.feed(piece)
                if out:
                    yield out
        last = decryptor.finish()
        if last:
            yield last

    # --- moves between safes ---------------------------------------------------------

    async def key_generations(self, sid: bytes) -> dict[int, bytes]:
        """Every generation's Ks of a safe: the current one, older ones through the chain."""
        ks, g = await self.key(sid)
        chain = (await self.json("GET", f"/api/safes/{enc(sid)}/keys"))["keys"]
        links = {k["generation"]: dec(k["previous_key"]) for k in chain if k["previous_key"]}
        return vc.key_chain(ks, safe_id=sid, current_generation=g, links=links)

    async def plan_move(
        self, sid: bytes, iid: bytes, to_sid: bytes, *, folder_id: bytes | None = None
    ) -> vc.MovePlan:
        """Read the item, its history and the safe's files; re-encrypt for `to_sid`."""
        item = await self.json("GET", f"/api/safes/{enc(sid)}/items/{enc(iid)}")
        versions = (await self.json("GET", f"/api/safes/{enc(sid)}/items/{enc(iid)}/history"))[
            "versions"
        ]
        c = await self.contents(sid)
        to_key, to_g = await self.key(to_sid)

        def record(i: dict[str, Any]) -> vc.ItemRecord:
            return vc.ItemRecord(
                item_id=iid,
                folder_id=opt(i["folder_id"]),
                version=i["version"],
                generation=i["generation"],
                schema=i["schema"],
                ct=dec(i["ct"]),
            )

        return vc.plan_move(
            record(item),
            history=[record(v) for v in versions],
            safe_files=[
                vc.FileRecord(
                    file_id=dec(f["id"]), generation=f["generation"], key_wrap=dec(f["key_wrap"])
                )
                for f in c["files"]
            ],
            from_safe_id=sid,
            from_keys=await self.key_generations(sid),
            to_safe_id=to_sid,
            to_key=to_key,
            to_generation=to_g,
            to_folder_id=folder_id,
        )

    @staticmethod
    def move_body(plan: vc.MovePlan) -> dict[str, Any]:
        return {
            "to_safe_id": enc(plan.to_safe_id),
            "expected_version": plan.expected_version,
            "generation": plan.to_generation,
            "folder_id": None if plan.folder_id is None else enc(plan.folder_id),
            "ct": enc(plan.ct),
            "history": [{"version": h.version, "ct": enc(h.ct)} for h in plan.history],
            "files": [{"id": enc(f.file_id), "key_wrap": enc(f.key_wrap)} for f in plan.files],
        }

    async def send_move(
        self, plan: vc.MovePlan, *, body: dict[str, Any] | None = None, expect: int = 200
    ) -> httpx.Response:
        return await self.call(
            "POST",
            f"/api/safes/{enc(plan.from_safe_id)}/items/{enc(plan.item_id)}/move",
            json=self.move_body(plan) if body is None else body,
            expect=expect,
        )

    async def move_item(
        self,
        sid: bytes,
        iid: bytes,
        to_sid: bytes,
        *,
        folder_id: bytes | None = None,
        expect: int = 200,
    ) -> httpx.Response:
        """Move an item (with its history and files) to another safe."""
        plan = await self.plan_move(sid, iid, to_sid, folder_id=folder_id)
        return await self.send_move(plan, expect=expect)

    # --- rotation -------------------------------------------------------------------

    async def plan_rotation(self, sid: bytes) -> tuple[vc.RotationPlan, dict[str, Any]]:
        """Read the safe and its members, and make the re-encrypted state."""
        c = await self.contents(sid)
        ks, g = await self.key(sid, c["safe"])
        members = (await self.json("GET", f"/api/safes/{enc(sid)}/members"))["members"]
        state = vc.SafeState(
            safe_id=sid,
            generation=g,
            name_version=c["safe"]["name_version"],
            name_ct=dec(c["safe"]["name_ct"]),
            items=[
                vc.ItemRecord(
                    item_id=dec(i["id"]),
                    folder_id=opt(i["folder_id"]),
                    version=i["version"],
                    generation=i["generation"],
                    schema=i["schema"],
                    ct=dec(i["ct"]),
                )
                for i in c["items"]
            ],
            folders=[
                vc.FolderRecord(
                    folder_id=dec(f["id"]),
                    parent_id=opt(f["parent_id"]),
                    version=f["version"],
                    generation=f["generation"],
                    name_ct=dec(f["name_ct"]),
                )
                for f in c["folders"]
            ],
            files=[
                vc.FileRecord(
                    file_id=dec(f["id"]), generation=f["generation"], key_wrap=dec(f["key_wrap"])
                )
                for f in c["files"]
            ],
        )
        plan = vc.plan_rotation(
            state,
            ks,
            [
                vc.Member(user_id=dec(m["user_id"]), public_key=dec(m["public_key"]))
                for m in members
            ],
        )
        return plan, c

    async def begin_rotation(self, sid: bytes, plan: vc.RotationPlan) -> dict[str, Any]:
        return await self.json(
            "POST",
            f"/api/safes/{enc(sid)}/rotations",
            json={"from_generation": plan.from_generation, "previous_key": enc(plan.previous_key)},
            expect=201,
        )

    async def stage(
        self,
        sid: bytes,
        rid: str,
        plan: vc.RotationPlan,
        *,
        items: list[vc.StagedItem] | None = None,
        name: bool = True,
        members: bool = True,
        folders: bool = True,
        files: bool = True,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "items": [
                {"id": enc(i.item_id), "base_version": i.base_version, "ct": enc(i.ct)}
                for i in (plan.items if items is None else items)
            ]
        }
        if name:
            body["safe_name"] = {
                "base_version": plan.name_base_version,
                "name_ct": enc(plan.name_ct),
            }
        if members:
            body["members"] = [
                {"user_id": enc(m.user_id), "sealed_key": enc(m.sealed_key)} for m in plan.members
            ]
        if folders:
            body["folders"] = [
                {"id": enc(f.folder_id), "base_version": f.base_version, "name_ct": enc(f.name_ct)}
                for f in plan.folders
            ]
        if files:
            body["files"] = [
                {"id": enc(f.file_id), "key_wrap": enc(f.key_wrap)} for f in plan.files
            ]
        return await self.json("POST", f"/api/safes/{enc(sid)}/rotations/{rid}/stage", json=body)

    async def commit(self, sid: bytes, rid: str, *, expect: int = 200) -> dict[str, Any]:
        r = await self.call("POST", f"/api/safes/{enc(sid)}/rotations/{rid}/commit", expect=expect)
        return r.json()

    async def rotate(self, sid: bytes) -> int:
        """A whole rotation, as an admin's client does after a revocation."""
        plan, _ = await self.plan_rotation(sid)
        rot = await self.begin_rotation(sid, plan)
        status = await self.stage(sid, rot["id"], plan)
        assert status["complete"], status
        safe = await self.commit(sid, rot["id"])
        self.safe_keys[(sid, plan.to_generation)] = plan.new_key
        return int(safe["generation"])

    # --- hardened factors (vault_api.client.factors over this client's HTTP) --------

    async def send(self, method: str, path: str, body: Any) -> Any:
        return await self.json(method, path, json=body)

    def account(self) -> factors.Account:
        assert self.user_id is not None
        assert self.public_key is not None
        assert self.private_key is not None
        return factors.Account(
            user_id=self.user_id,
            public_key=self.public_key,
            keypair_version=self.keypair_version,
            private_key=self.private_key,
        )

    def user(self) -> dict[str, Any]:
        assert self.user_id is not None
        assert self.public_key is not None
        return {"user_id": enc(self.user_id), "public_key": enc(self.public_key)}

    async def set_passphrase(self, passphrase: str, *, drop_unproven: bool = False) -> Any:
        """Set the vault passphrase for every token this session holds a Kc of."""
        t, out = await factors.set_passphrase(
            self.send, self.account(), self.kc, passphrase, drop_unproven=drop_unproven
        )
        self.token_factor = t
        self.slot = (await self.json("GET", "/api/session"))["slot"]
        return out

    async def unlock_passphrase(self, passphrase: str) -> None:
        """Open the private key with this token's Kc and the passphrase."""
        assert self.slot is not None
        assert self.key_id is not None
        t, sk = await factors.unlock_passphrase(
            self.send,
            kc=self.kc[self.key_id],
            user=self.user(),
            slot=self.slot,
            passphrase=passphrase,
        )
        self.token_factor, self.private_key = t, sk

    async def change_passphrase(self, new: str) -> Any:
        assert self.token_factor is not None
        current = await self.json("GET", "/api/me/factors")
        return await factors.change_passphrase(
            self.send,
            self.account(),
            self.token_factor,
            new,
            expected_wrap_id=dec(current["passphrase"]["id"]),
        )

    async def rollback_passphrase(self, old: str) -> None:
        assert self.slot is not None
        assert self.key_id is not None
        t, sk = await factors.rollback_passphrase(
            self.send, kc=self.kc[self.key_id], user=self.user(), slot=self.slot, old_passphrase=old
        )
        self.token_factor, self.private_key = t, sk

    async def setup_recovery(self, secret: str | None = None) -> str:
        text, _ = await factors.setup_recovery(self.send, self.account(), secret)
        return text

    async def recover(self, handle: str, secret: str) -> dict[str, Any]:
        """Recover `handle`'s vault in this session (logged in with a new token)."""
        assert self.key_id is not None
        account, session = await factors.recover(
            self.send, handle=handle, secret=secret, kc=self.kc[self.key_id], key_id=self.key_id
        )
        self.user_id, self.public_key = account.user_id, account.public_key
        self.keypair_version = account.keypair_version
        self.private_key = account.private_key
        self.slot = session["slot"]
        return dict(session)
