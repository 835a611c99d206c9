"""The JSON the API speaks: request and response bodies (pydantic), as the
OpenAPI document describes them.

Bytes are base64url without padding (RFC 4648 section 5, canonical: one
spelling per value). Requests refuse unknown fields. Sizes of ciphertexts the
server can check are checked here, so a wrong one is a 422 naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from authnet.errors import MalformedInput
from authnet.protocol.encoding import b64u_decode, b64u_encode
from vault_api.crypto import devices, factors, safekeys, success, userkeys
from vault_api.crypto import files as file_format
from vault_api.crypto.aead import OVERHEAD
from vault_api.roles import Role

INT31 = 2**31 - 1
MAX_NAME_CT = 4096
MAX_ITEM_CT = 256 * 1024


def _b64_chars(n: int) -> int:
    return (4 * n + 2) // 3


@dataclass(frozen=True, kw_only=True)
class B64:
    """Bytes as canonical unpadded base64url in JSON, with size limits."""

    size: int | None = None
    min_size: int = 0
    max_size: int | None = None
    description: str = ""

    @property
    def bounds(self) -> tuple[int, int | None]:
        if self.size is not None:
            return self.size, self.size
        return self.min_size, self.max_size

    def validate(self, value: object) -> bytes:
        lo, hi = self.bounds
        if isinstance(value, bytes):
            data = value
        elif isinstance(value, str):
            if hi is not None and len(value) > _b64_chars(hi):
                raise ValueError(f"at most {hi} bytes")
            try:
                data = b64u_decode(value, field="value")
            except MalformedInput as e:
                raise ValueError(e.message.replace("value ", "")) from None
        else:
            raise ValueError("must be a base64url string")
        if self.size is not None and len(data) != self.size:
            raise ValueError(f"must be {self.size} bytes, got {len(data)}")
        if len(data) < lo:
            raise ValueError(f"must be at least {lo} bytes, got {len(data)}")
        if hi is not None and len(data) > hi:
            raise ValueError(f"must be at most {hi} bytes, got {len(data)}")
        return data

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                b64u_encode, return_schema=core_schema.str_schema()
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        lo, hi = self.bounds
        out: dict[str, Any] = {
            "type": "string",
            "contentEncoding": "base64url",
            "pattern": "^[A-Za-z0-9_-]*$",
            "minLength": _b64_chars(lo),
            "description": self.description,
        }
        if hi is not None:
            out["maxLength"] = _b64_chars(hi)
        return out


Id = Annotated[bytes, B64(size=16, description="a 128-bit id, base64url (22 characters)")]
KeyId = Annotated[
    bytes, B64(size=16, description="an authnet key id (per token and SP), base64url")
]
PublicKey = Annotated[
    bytes, B64(size=userkeys.PUBLIC_KEY_BYTES, description="a raw X25519 public key")
]
Slot = Annotated[
    bytes,
    B64(
        min_size=factors.TOKEN_SLOT_BYTES,
        max_size=userkeys.SLOT_BYTES,
        description="a key slot (docs/vault.md 5.2; 60 bytes for kind kc+passphrase, 5.4)",
    ),
]
SlotKind = Literal["kc", "kc+passphrase"]
SealedKey = Annotated[
    bytes, B64(size=safekeys.SEALED_BYTES, description="Ks sealed to a member (HPKE)")
]
PreviousKey = Annotated[
    bytes,
    B64(
        size=safekeys.PREVIOUS_KEY_BYTES, description="the previous generation's key under this one"
    ),
]
KeyWrap = Annotated[
    bytes, B64(size=file_format.WRAPPED_KEY_BYTES, description="a file key wrapped under Ks")
]
NameCt = Annotated[
    bytes, B64(min_size=OVERHEAD, max_size=MAX_NAME_CT, description="an encrypted name")
]
ItemCt = Annotated[
    bytes, B64(min_size=OVERHEAD, max_size=MAX_ITEM_CT, description="an encrypted item")
]

Version = Annotated[int, Field(ge=1, le=INT31)]
Generation = Annotated[int, Field(ge=1, le=INT31)]
Schema = Annotated[int, Field(ge=1, le=65535)]
Handle = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9._-]{2,31}$",
        description="3-32 of a-z 0-9 . _ -, starting with a letter or digit",
    ),
]
DeviceNonce = Annotated[bytes, B64(size=32, description="a device login nonce")]
Ticket = Annotated[str, Field(pattern=r"^at1_[A-Za-z0-9_-]{22}$", description="an authnet ticket")]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Response(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- login and session ------------------------------------------------------------


class AccountEventOut(Response):
    seq: int
    at_ms: int
    action: str
    detail: dict[str, Any]


class ConfigOut(Response):
    spid: str = Field(description="the SP's SPID, 32 hex digits (the browser binds Kc to it)")
    gateway_url: str
    max_file_bytes: int
    chunk_bytes: int
    idle_timeout_seconds: int
    history_versions: int
    keyproxy_url: str | None = Field(
        default=None,
        description="the one-time key proxy browsers use (docs/devices.md 5, 7); null: none, "
        "device approval and one-time links are off",
    )


class TicketOut(Response):
    ticket: str
    spid: str
    gateway_url: str
    # Every gateway of the network, gateway_url first: where the page resumes
    # its wait when a connection to one node breaks.
    gateway_urls: list[str]
    passkey_address: str
    ttl_seconds: int
    expires_at_unix_ms: int


class TicketIn(Request):
    ticket: Ticket


class SlotOut(Response):
    key_id: KeyId
    keypair_version: int
    kind: SlotKind = "kc"
    slot: Slot
    created_ms: int
    last_used_ms: int | None


class UserOut(Response):
    user_id: Id
    handle: str | None
    public_key: PublicKey | None
    keypair_version: int
    registered: bool


class OrgRefOut(Response):
    org_id: Id
    name: str
    role: Literal["admin", "member"]


class PolicyOut(Response):
    """What the account's organisation (or, without one, this server) allows."""

    allow_device_registration: bool
    allow_bypass: bool
    require_passphrase: bool
    device_expiry_seconds: int
    organisation: OrgRefOut | None


class SessionOut(Response):
    user: UserOut
    key_id: KeyId = Field(description="the key id of the token this session logged in with")
    proven_key_ids: list[KeyId]
    slot: SlotOut | None = Field(description="the slot of the session's token, if it has one")
    csrf_token: str
    idle_timeout_seconds: int
    notices: list[AccountEventOut] = Field(
        default_factory=list,
        description="what other sessions did to this account since this one began "
        "(a recovery, a passphrase change): tell the user",
    )
    device_nonce: DeviceNonce | None = Field(
        default=None, description="what this session's device login proof signs (single use)"
    )
    device_id: Id | None = Field(default=None, description="the device this session is bound to")
    passphrase_unlocked: bool = Field(
        default=False, description="this session proved the vault passphrase (to the hardener)"
    )
    policy: PolicyOut | None = None


class ProvenOut(Response):
    key_id: KeyId
    has_slot: bool


# --- users and slots --------------------------------------------------------------


class RegisterIn(Request):
    handle: Handle
    public_key: PublicKey
    slot: Slot


class SlotIn(Request):
    keypair_version: Version
    kind: SlotKind = "kc"
    slot: Slot


class MeOut(Response):
    user: UserOut
    slots: list[SlotOut]


class PublicUserOut(Response):
    user_id: Id
    handle: str
    public_key: PublicKey
    keypair_version: int


# --- safes and members ------------------------------------------------------------


class SafeIn(Request):
    id: Id
    name_ct: NameCt
    sealed_key: SealedKey = Field(description="Ks (generation 1) sealed to the creator")


class SafeRenameIn(Request):
    expected_name_version: Version
    generation: Generation
    name_ct: NameCt


class SafeOut(Response):
    id: Id
    name_ct: NameCt
    name_version: int
    generation: int
    role: Role
    sealed_key: SealedKey = Field(description="Ks of `generation` sealed to the caller")
    rotation_needed: bool
    updated_ms: int


class SafeList(Response):
    safes: list[SafeOut]


class KeyLinkOut(Response):
    generation: int
    previous_key: PreviousKey | None


class KeyChainOut(Response):
    keys: list[KeyLinkOut]


class MemberIn(Request):
    user_id: Id
    role: Role
    generation: Generation
    sealed_key: SealedKey


class RoleIn(Request):
    role: Role


class MemberOut(Response):
    user_id: Id
    handle: str | None
    public_key: PublicKey | None
    role: Role
    generation: int
    added_ms: int


class MemberList(Response):
    members: list[MemberOut]


# --- folders, items, files --------------------------------------------------------


class FolderIn(Request):
    id: Id
    parent_id: Id | None = None
    generation: Generation
    name_ct: NameCt


class FolderUpdateIn(Request):
    expected_version: Version
    parent_id: Id | None = None
    generation: Generation
    name_ct: NameCt


class FolderOut(Response):
    id: Id
    parent_id: Id | None
    version: int
    generation: int
    name_ct: NameCt
    updated_ms: int


class ItemIn(Request):
    id: Id
    folder_id: Id | None = None
    generation: Generation
    schema_version: Schema = Field(default=1, alias="schema")
    ct: ItemCt

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ItemBatchIn(Request):
    items: list[ItemIn] = Field(min_length=1, max_length=1000)


class ItemUpdateIn(Request):
    expected_version: Version
    folder_id: Id | None = None
    generation: Generation
    schema_version: Schema = Field(default=1, alias="schema")
    ct: ItemCt

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ItemOut(Response):
    id: Id
    folder_id: Id | None
    version: int
    generation: int
    schema_version: int = Field(serialization_alias="schema")
    ct: ItemCt
    updated_by: Id
    updated_ms: int


class ItemList(Response):
    items: list[ItemOut]


class ItemVersionOut(Response):
    version: int
    folder_id: Id | None
    generation: int
    schema_version: int = Field(serialization_alias="schema")
    ct: ItemCt
    updated_by: Id
    updated_ms: int


class HistoryOut(Response):
    versions: list[ItemVersionOut]


class FileIn(Request):
    id: Id
    generation: Generation
    key_wrap: KeyWrap
    size: Annotated[int, Field(ge=0, le=2**53)]
    chunk_bytes: Literal[65536, 1048576] = Field(
        default=65536,
        description="the body's chunk size: 65536 (format 1) or 1048576 (format 2); a file "
        "of at most 65536 bytes is format 1 either way; the answer's chunk_bytes is the one to use",
    )


class FileOut(Response):
    id: Id
    generation: int
    key_wrap: KeyWrap
    size: int
    body_size: int = Field(description="bytes of the encrypted body to upload or download")
    chunk_bytes: int
    state: Literal["pending", "uploading", "complete"]
    created_ms: int


class ContentsOut(Response):
    safe: SafeOut
    folders: list[FolderOut]
    items: list[ItemOut]
    files: list[FileOut]


# --- moves between safes -----------------------------------------------------------


class MovedVersionIn(Request):
    version: Version
    ct: ItemCt = Field(description="the kept version re-encrypted for the target safe")


class MovedFileIn(Request):
    id: Id
    key_wrap: KeyWrap = Field(description="K_f wrapped under the target safe's current key")


class ItemMoveIn(Request):
    to_safe_id: Id = Field(description="the safe the item moves to")
    expected_version: Version = Field(description="the item's version now (409 if stale)")
    generation: Generation = Field(description="the target safe's current key generation")
    folder_id: Id | None = Field(default=None, description="a folder of the target safe")
    ct: ItemCt = Field(
        description="the item for (target safe, item, folder_id, expected_version, schema, "
        "generation): its version does not change"
    )
    history: list[MovedVersionIn] = Field(
        default_factory=list,
        max_length=1000,
        description="every kept earlier version, re-encrypted for the target safe and folder",
    )
    files: list[MovedFileIn] = Field(
        default_factory=list, max_length=1000, description="the item's files, keys re-wrapped"
    )


class ItemMoveOut(Response):
    item: ItemOut
    files: list[FileOut]
    history: int = Field(description="how many kept versions moved with the item")


class FileMoveIn(Request):
    to_safe_id: Id = Field(description="the safe the file moves to")
    generation: Generation = Field(description="the target safe's current key generation")
    key_wrap: KeyWrap = Field(description="K_f wrapped under the target safe's current key")


# --- rotation ---------------------------------------------------------------------


class RotationIn(Request):
    from_generation: Generation
    previous_key: PreviousKey


class StagedNameIn(Request):
    base_version: Version
    name_ct: NameCt


class StagedMemberIn(Request):
    user_id: Id
    sealed_key: SealedKey


class StagedItemIn(Request):
    id: Id
    base_version: Version
    ct: ItemCt


class StagedFolderIn(Request):
    id: Id
    base_version: Version
    name_ct: NameCt


class StagedFileIn(Request):
    id: Id
    key_wrap: KeyWrap


class StageIn(Request):
    safe_name: StagedNameIn | None = None
    members: list[StagedMemberIn] = Field(default_factory=list, max_length=1000)
    items: list[StagedItemIn] = Field(default_factory=list, max_length=5000)
    folders: list[StagedFolderIn] = Field(default_factory=list, max_length=5000)
    files: list[StagedFileIn] = Field(default_factory=list, max_length=5000)


class RotationOut(Response):
    id: Id
    from_generation: int
    to_generation: int
    created_ms: int
    staged: dict[str, int] = Field(description="how many of each kind are staged")
    missing: dict[str, list[Id]] = Field(
        description="what must still be staged: members, items, folders, files (ids), "
        "and safe_name (empty list or the safe's id)"
    )
    stale: dict[str, list[Id]] = Field(
        description="staged records that changed since: re-stage them from their new version"
    )
    complete: bool


# --- audit ------------------------------------------------------------------------


class AuditEventOut(Response):
    seq: int
    at_ms: int
    actor: Id
    actor_handle: str | None
    action: str
    target: Id | None
    detail: dict[str, Any]


class AuditOut(Response):
    events: list[AuditEventOut]
    next_before: int | None = Field(description="pass as `before` for older events")


class ErrorOut(Response):
    error: str = Field(description="a stable code")
    message: str


# --- hardened factors: passphrase, history, recovery (docs/vault.md 5.4-5.6) ------------

Purpose = Literal["passphrase", "recovery"]
Bytes = Annotated[bytes, B64(description="bytes, base64url")]
Salt = Annotated[bytes, B64(size=factors.SALT_BYTES, description="a record's random salt")]
HardenerKey = Annotated[
    bytes, B64(size=factors.HARDENER_KEY_BYTES, description="a hardener POPRF public key (pkS)")
]
Element = Annotated[bytes, B64(size=32, description="a ristretto255 element (blinded)")]
Iterations = Annotated[int, Field(ge=factors.MIN_ITERATIONS, le=factors.MAX_ITERATIONS)]
KeyVersion = Annotated[int, Field(ge=1, le=INT31)]
Wrap = Annotated[
    bytes, B64(size=factors.WRAP_BYTES, description="a passphrase wrap or recovery slot")
]
TokenSlot = Annotated[
    bytes, B64(size=factors.TOKEN_SLOT_BYTES, description="a kc+passphrase token slot")
]
Attempt = Annotated[bytes, B64(min_size=1, max_size=64, description="a hardener attempt id")]
Nonce = Annotated[bytes, B64(min_size=1, max_size=64, description="a hardener attempt nonce")]
Signature = Annotated[bytes, B64(size=64, description="an Ed25519 signature")]
SuccessPublic = Annotated[bytes, B64(size=32, description="an Ed25519 public key")]
SealedSuccess = Annotated[
    bytes,
    B64(size=success.SEALED_SUCCESS_BYTES, description="a success key sealed to the user (HPKE)"),
]


class HardenerKeyOut(Response):
    version: int
    public_key: Bytes = Field(description="32-byte pkS, base64url; empty when retired")
    state: str


class KdfOut(Response):
    name: Literal["pbkdf2-sha256"] = "pbkdf2-sha256"
    iterations: int


class HardenerOut(Response):
    enabled: bool = Field(description="false: this vault has no hardener configured")
    caller: str | None
    current_version: int
    keys: list[HardenerKeyOut]
    kdf: KdfOut
    require_passphrase: bool
    history_seconds: int


class EvaluateIn(Request):
    purpose: Purpose
    blinded_element: Element
    key_version: Annotated[int, Field(ge=0, le=INT31)] = 0


class EvaluationOut(Response):
    key_version: int
    evaluated_element: Bytes
    proof: Bytes
    attempt_id: Bytes
    nonce: Bytes
    attempts_left: int


class SuccessIn(Request):
    purpose: Purpose
    attempt_id: Attempt
    signature: Signature


class SuccessOut(Response):
    key_version_recorded: int


class SuccessKeyIn(Request):
    public_key: SuccessPublic
    sealed: SealedSuccess


class SuccessKeyOut(Response):
    purpose: str
    public_key: Bytes
    sealed: Bytes


class WrapIn(Request):
    id: Id
    salt: Salt
    iterations: Iterations
    key_version: KeyVersion
    hardener_public_key: HardenerKey
    wrap: Wrap


class WrapOut(Response):
    id: Bytes
    state: str
    salt: Bytes
    iterations: int
    key_version: int
    hardener_public_key: Bytes
    wrap: Bytes
    created_ms: int
    replaced_ms: int | None
    expires_ms: int | None


class TokenSlotIn(Request):
    key_id: KeyId
    slot: TokenSlot


class PassphraseSetIn(Request):
    wrap: WrapIn
    token_slots: Annotated[list[TokenSlotIn], Field(min_length=1, max_length=64)]
    success_key: SuccessKeyIn | None = None
    drop_unproven: bool = Field(
        default=False,
        description="remove the slots of tokens this session has not proved (they must be "
        "added again, in a session that proves them)",
    )


class PassphraseChangeIn(Request):
    expected_wrap_id: Id
    wrap: WrapIn


class RollbackIn(Request):
    wrap_id: Id


class RecoveryIn(Request):
    id: Id
    kind: Literal["passphrase", "code"]
    salt: Salt
    iterations: Iterations
    key_version: KeyVersion
    hardener_public_key: HardenerKey
    slot: Wrap
    success_key: SuccessKeyIn | None = None


class RecoveryOut(Response):
    id: Bytes
    kind: str
    salt: Bytes
    iterations: int
    key_version: int
    hardener_public_key: Bytes
    slot: Bytes
    created_ms: int


class FactorsOut(Response):
    passphrase: WrapOut | None
    history: list[WrapOut]
    recovery: RecoveryOut | None
    success_keys: list[SuccessKeyOut]
    dropped_key_ids: list[Bytes] = Field(default_factory=list)


class RecoveryLookupIn(Request):
    handle: Handle


class RecoveryTargetOut(Response):
    user_id: Bytes
    handle: str
    public_key: Bytes
    keypair_version: int
    recovery: RecoveryOut
    success_key: SuccessKeyOut


class RecoveryEvaluateIn(Request):
    handle: Handle
    blinded_element: Element
    key_version: Annotated[int, Field(ge=0, le=INT31)] = 0


class RecoveryCompleteIn(Request):
    handle: Handle
    attempt_id: Attempt
    nonce: Nonce
    signature: Signature
    keypair_version: Version
    slot: Annotated[bytes, B64(size=userkeys.SLOT_BYTES, description="the new token's key slot")]


class AccountEventsOut(Response):
    events: list[AccountEventOut]


# --- devices, approval, organisations (docs/devices.md 9) --------------------------------

DeviceName = Annotated[str, Field(min_length=1, max_length=64)]
UserAgent = Annotated[str, Field(max_length=256)]
DevicePublic = Annotated[bytes, B64(size=32, description="a raw X25519 or Ed25519 public key")]
DeviceProof = Annotated[bytes, B64(size=devices.SIGNATURE_BYTES, description="an Ed25519 proof")]
DeviceWrap = Annotated[
    bytes,
    B64(size=devices.DEVICE_WRAP_BYTES, description="skU under KEK_b (docs/devices.md 3)"),
]
SealedKek = Annotated[
    bytes,
    B64(size=devices.SEALED_KEK_BYTES, description="DKEK sealed to the device key (HPKE)"),
]
Hash32 = Annotated[bytes, B64(size=32, description="a SHA-256 hash")]
ProxyToken = Annotated[
    str,
    Field(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z0-9_.~-]+$",
        description="the proxy's token for a deposit (docs/keyproxy.md)",
    ),
]
OrgRole = Literal["admin", "member"]


class DeviceIn(Request):
    device_id: Id
    name: DeviceName
    user_agent: UserAgent = ""
    public_key: DevicePublic
    signing_key: DevicePublic
    proof: DeviceProof


class DeviceOut(Response):
    device_id: Id
    name: str
    user_agent: str
    public_key: DevicePublic
    signing_key: DevicePublic
    fingerprint: str
    state: Literal["active", "expired", "revoked"]
    bypass: bool
    created_ms: int
    last_used_ms: int
    expires_ms: int | None
    current: bool


class DevicesOut(Response):
    devices: list[DeviceOut]


class DeviceRenameIn(Request):
    name: DeviceName


class BypassIn(Request):
    keypair_version: Version
    device_wrap: DeviceWrap | None = None
    sealed_kek: SealedKek


class OpenIn(Request):
    proof: DeviceProof


class OpenOut(Response):
    keypair_version: int
    device_wrap: DeviceWrap
    sealed_kek: SealedKek


class DeviceRequestIn(DeviceIn):
    claim_hash: Hash32


class DeviceRequestCreatedOut(Response):
    code: str = Field(description="10 Crockford base32 symbols in two groups of five")
    expires_ms: int


class DeviceRequestOut(Response):
    code: str
    device_id: Id
    name: str
    user_agent: str
    public_key: DevicePublic
    signing_key: DevicePublic
    proof: DeviceProof
    claim_hash: Hash32 = Field(
        description="SHA-256 of the requester's claim secret: the approver's deposit condition"
    )
    state: Literal["pending", "approved", "refused"]
    expires_ms: int
    proxy_token: str | None = Field(
        default=None, description="only for the requesting session, once approved"
    )


class ApproveIn(Request):
    keypair_version: Version
    device_wrap: DeviceWrap
    proxy_token: ProxyToken


class OrgIn(Request):
    name: Annotated[str, Field(min_length=1, max_length=64)]


class OrgMemberOut(Response):
    user_id: Id
    handle: str | None
    role: OrgRole
    added_ms: int


class RemovedOut(Response):
    wraps: int = Field(description="devices whose bypass wraps were deleted")
    devices: int = Field(description="devices revoked")


class OrgOut(Response):
    org_id: Id
    name: str
    policy: PolicyOut
    role: OrgRole
    members: list[OrgMemberOut]
    removed: RemovedOut | None = None


class PolicyIn(Request):
    allow_device_registration: bool | None = None
    allow_bypass: bool | None = None
    require_passphrase: bool | None = None
    device_expiry_seconds: Annotated[int, Field(ge=0, le=10 * 365 * 86400)] | None = None


class OrgMemberIn(Request):
    handle: Handle
    role: OrgRole = "member"


class OrgRoleIn(Request):
    role: OrgRole


class OrgEventOut(Response):
    seq: int
    at_ms: int
    actor: Id | None
    actor_handle: str | None
    action: str
    detail: dict[str, Any]


class OrgAuditOut(Response):
    events: list[OrgEventOut]


class GrantIn(Request):
    token_hash: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$",
            description="SHA-256 of the proxy token the grant is for, base64url (docs/keyproxy.md)",
        ),
    ]


class GrantOut(Response):
    grant: Bytes
    issuer: str
    subject: str = Field(description="the account's user id, base64url")
    expires_ms: int
