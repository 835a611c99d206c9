"""The vault's speed: API item reads and writes, a safe opened by the Python
client, file transfer through the API against plain disk copies, and a safe
of 10,000 items opened in the browser.

The vault server is `vault-api serve` in a child process (its own data
directory, SQLite unless --database-url), so its work is measured apart from
the load generator's; its CPU time is read from /proc before and after each
phase. The authnet network runs in this process (authnet.testing): it is used
only to log in (and, once a minute, to renew the session's ticket), never on
the measured path. The client is the `vault` command's library
(vault_api.client), so every item is encrypted and decrypted here exactly as
the CLI does it:

  * a CLI command's login: what each `vault` command does before its work
    (an authnet login answered by the phone key store within the saved
    session, and the key slot opened with the fresh Kc).
  * writes: POST one item (made and encrypted by the worker), `--concurrency`
    workers back to back for `--seconds`; reads: GET one item and decrypt it.
    Each worker has its own HTTP connection.
  * open safe (CLI): GET the contents of a safe of `--safe-items` items and
    decrypt every one.
  * files: a `--file-mb` MB file uploaded (format 2: 1 MiB chunks, each
    sealed in a worker thread while the one before is sent) and downloaded
    (streamed, each chunk checked), against copying the same bytes on the same
    disk in the same run (shutil.copyfile; a 256 KiB read/write loop; the loop
    with fsync, which the server's file store does) and against the client's
    encryption alone (formats 1 and 2). `--repeat N` measures N times, each
    with its own copy; each run's `to_copy` and `files_summary` give the
    ratio of each run to its own copy. `--files-only` skips everything else.
  * `--browser`: the same file attached to an item in the page and downloaded
    again (Chromium, the page's own measures vault:file-upload and
    vault:file-download), each run with its copy.
  * browser: the page (vault_api/static) logs in by QR code (the phone
    simulator reads it from a screenshot), opens the safe of `--safe-items`
    items, and the page's own performance measure `vault:safe-open` (fetch +
    decrypt + render) is read. Needs Playwright and /usr/bin/chromium;
    reported as not measured when the page has no such measure.

    .venv/bin/python bench/vault.py --seconds 5 --concurrency 1 --concurrency 8
    .venv/bin/python bench/vault.py --files-only --repeat 5 --browser

Prints one JSON object on stdout; progress goes to stderr.
"""

# ruff: noqa: E402  (the imports below come after the sys.path fix)
from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/vault.py`, Python puts bench/ first on sys.path, where
# bench/tokens.py would shadow the `tokens` package the phone simulator uses.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import io
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from vault_api import crypto as vc
from vault_api.client import contents as ct
from vault_api.client.api import VaultApi
from vault_api.client.keys import enc
from vault_api.client.login import LoginMethod, Pins
from vault_api.client.session import SessionState, start, unlock
from vault_api.client.vault import Vault

ROOT = Path(__file__).resolve().parent.parent
STATIC_JS = ROOT / "vault_api" / "static" / "js"
BROWSER_MEASURE = "vault:safe-open"
CHROMIUM = "/usr/bin/chromium"
TICK = os.sysconf("SC_CLK_TCK")
MB = 1_000_000


def log(text: str) -> None:
    print(f"[bench/vault] {text}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def item_content(n: int) -> dict[str, Any]:
    """A typical login item (about 200 bytes of JSON)."""
    return {
        "type": "login",
        "title": f"Site {n}",
        "username": f"user{n}@example.org",
        "password": f"pw-{n}-{random.getrandbits(64):016x}",
        "urls": [f"https://site{n}.example/login"],
        "notes": "created by bench/vault.py",
    }


# --- the server ---------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def start_server(data_dir: Path, credentials: Path, database_url: str | None) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "vault_api.cli",
        "--data-dir",
        str(data_dir),
        "serve",
        "--credentials",
        str(credentials),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--public-url",
        url,
        "--log-level",
        "warning",
    ]
    if database_url:
        cmd += ["--database-url", database_url]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(proc, url)
    async with httpx.AsyncClient() as http:
        for _ in range(400):
            if proc.poll() is not None:
                raise RuntimeError(f"vault-api serve exited with status {proc.returncode}")
            try:
                if (await http.get(url + "/api/health")).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    server.stop()
    raise RuntimeError("vault-api serve did not come up in 20 s")


# --- measurements -------------------------------------------------------------------


def latency_summary(
    latencies: list[float], seconds: float, errors: dict[str, int]
) -> dict[str, Any]:
    n = len(latencies)
    qs = statistics.quantiles(latencies, n=100) if n >= 2 else [latencies[0] if n else 0.0] * 99
    return {
        "n": n,
        "per_s": round(n / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": ms(qs[49]),
        "p99_ms": ms(qs[98]),
        "errors": errors,
    }


async def closed_loop(
    workers: list[Callable[[], Awaitable[None]]], seconds: float
) -> tuple[list[float], float, dict[str, int]]:
    """Run each worker's operation back to back until `seconds` pass."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds

    async def loop(op: Callable[[], Awaitable[None]]) -> None:
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            try:
                await op()
            except Exception as e:  # counted, and the run goes on
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in workers))
    return latencies, time.perf_counter() - t0, errors


def worker_apis(main: VaultApi, n: int) -> list[VaultApi]:
    """`n` clients on the same session, each with its own connection."""
    apis = []
    for _ in range(n):
        api = VaultApi(main.base_url)
        assert main.session_cookie is not None
        assert main.csrf is not None
        api.resume(main.session_cookie, main.csrf)
        apis.append(api)
    return apis


async def measure_items(
    vault: Vault, server: Server, safe: ct.OpenedSafe, concurrency: int, seconds: float
) -> dict[str, Any]:
    apis = worker_apis(vault.api, concurrency)
    written: list[str] = []
    counter = iter(range(10**9))

    def writer(api: VaultApi) -> Callable[[], Awaitable[None]]:
        async def op() -> None:
            iid = vc.new_id()
            body = ct.item_body(safe, iid, item_content(next(counter)), version=1, folder_id=None)
            await api.create_item(safe.ref, {"id": enc(iid), **body})
            written.append(enc(iid))

        return op

    def reader(api: VaultApi) -> Callable[[], Awaitable[None]]:
        async def op() -> None:
            i = await api.item(safe.ref, random.choice(written))
            ct.open_item(safe.id, i, lambda _g: safe.key)

        return op

    out: dict[str, Any] = {"concurrency": concurrency}
    try:
        for name, make in (("writes", writer), ("reads", reader)):
            cpu0, client0 = server.cpu(), time.process_time()
            lat, took, errors = await closed_loop([make(a) for a in apis], seconds)
            server_cpu, client_cpu = server.cpu() - cpu0, time.process_time() - client0
            out[name] = latency_summary(lat, took, errors)
            out[name]["server_cpu_ms_per_op"] = ms(server_cpu / max(len(lat), 1))
            out[name]["client_cpu_ms_per_op"] = ms(client_cpu / max(len(lat), 1))
            log(f"{name} at concurrency {concurrency}: {out[name]['per_s']}/s")
    finally:
        for a in apis:
            await a.close()
    return out


async def measure_unlock(state: SessionState, method: LoginMethod, n: int) -> dict[str, Any]:
    """What every CLI command pays before its work: a new connection, an authnet
    login answered by the phone key store within the saved session, and the
    key slot opened with the fresh Kc."""
    took = []
    for _ in range(n):
        t = time.perf_counter()
        async with VaultApi(state.server) as api:
            await unlock(
                api,
                state,
                method,
                Pins(from_stdin=False),
                say=lambda _t: None,
                qr_out=io.StringIO(),
            )
        took.append(time.perf_counter() - t)
    return {"n": n, "p50_ms": ms(statistics.median(took)), "min_ms": ms(min(took))}


async def fill_safe(vault: Vault, name: str, n: int) -> ct.OpenedSafe:
    created = await vault.create_safe(name)
    safe = await vault.open_id(created["id"])
    await vault.add_items(safe, [(item_content(i), None) for i in range(n)])
    return safe


async def measure_open_safe(vault: Vault, safe_id: str, n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    raw = await vault.api.contents(safe_id)
    t1 = time.perf_counter()
    ks, _ = vault.ring.safe_key(raw["safe"])
    opened = ct.open_contents(raw, lambda _g: ks)
    t2 = time.perf_counter()
    assert len(opened.items) == n
    return {"items": n, "fetch_ms": ms(t1 - t0), "decrypt_ms": ms(t2 - t1), "total_ms": ms(t2 - t0)}


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as f:
        left = size
        while left:
            piece = os.urandom(min(left, 1 << 20))
            f.write(piece)
            left -= len(piece)


def disk_copies(src: Path, work: Path, size: int) -> dict[str, float]:
    out: dict[str, float] = {}
    dst = work / "copy.bin"
    t = time.perf_counter()
    shutil.copyfile(src, dst)
    out["copyfile_MB_per_s"] = round(size / MB / (time.perf_counter() - t), 1)
    for name, sync in (("rw_loop_MB_per_s", False), ("rw_loop_fsync_MB_per_s", True)):
        dst.unlink()
        t = time.perf_counter()
        with src.open("rb") as r, dst.open("wb") as w:
            while piece := r.read(256 * 1024):
                w.write(piece)
            if sync:
                w.flush()
                os.fsync(w.fileno())
        out[name] = round(size / MB / (time.perf_counter() - t), 1)
    dst.unlink()
    return out


def crypto_alone(data: bytes, fmt: vc.FileFormat = vc.CURRENT) -> dict[str, float]:
    """The client's file encryption and decryption alone (format `fmt`), fed
    in 256 KiB pieces as the CLI reads and receives them."""
    fid, key = vc.new_id(), vc.new_file_key()
    view = memoryview(data)
    pieces = [view[i : i + 256 * 1024] for i in range(0, len(data), 256 * 1024)]
    t = time.perf_counter()
    boxes = list(vc.encrypt_file(key, fid, pieces, fmt))  # type: ignore[arg-type]
    enc_s = time.perf_counter() - t
    t = time.perf_counter()
    plain = b"".join(vc.decrypt_file(key, fid, boxes, fmt))
    dec_s = time.perf_counter() - t
    assert plain == data
    return {
        "format": fmt.version,
        "encrypt_MB_per_s": round(len(data) / MB / enc_s, 1),
        "decrypt_MB_per_s": round(len(data) / MB / dec_s, 1),
    }


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": round(statistics.median(values), 3), "max": max(values)}


def to_copy(run: dict[str, Any], copy: dict[str, float]) -> dict[str, float]:
    """A run's speeds as fractions of its own plain copy (shutil.copyfile), and
    of the copy with fsync where it was measured (the server fsyncs a body)."""
    out = {
        "upload": round(run["upload_MB_per_s"] / copy["copyfile_MB_per_s"], 3),
        "download": round(run["download_MB_per_s"] / copy["copyfile_MB_per_s"], 3),
    }
    if "rw_loop_fsync_MB_per_s" in copy:
        out["upload_to_fsynced_copy"] = round(
            run["upload_MB_per_s"] / copy["rw_loop_fsync_MB_per_s"], 3
        )
    return out


def files_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Ranges over the runs; each ratio is against the copy of the same run."""
    copy = [r["disk_copy_same_bytes"]["copyfile_MB_per_s"] for r in runs]
    up = [r["upload_MB_per_s"] for r in runs]
    down = [r["download_MB_per_s"] for r in runs]
    return {
        "runs": len(runs),
        "copy_MB_per_s": spread(copy),
        "upload_MB_per_s": spread(up),
        "download_MB_per_s": spread(down),
        "upload_to_copy": spread([round(u / c, 3) for u, c in zip(up, copy, strict=True)]),
        "download_to_copy": spread([round(d / c, 3) for d, c in zip(down, copy, strict=True)]),
    }


async def measure_files(
    vault: Vault, server: Server, safe: ct.OpenedSafe, size: int, work: Path
) -> dict[str, Any]:
    src = work / "file.bin"
    write_random(src, size)
    out: dict[str, Any] = {"bytes": size}
    cpu0, mine0 = server.cpu(), time.process_time()
    t = time.perf_counter()
    with src.open("rb") as f:
        entry = await vault.upload(safe, f, size, name="file.bin")
    up_s = time.perf_counter() - t
    up_cpu, up_mine = server.cpu() - cpu0, time.process_time() - mine0
    sink = work / "down.bin"
    cpu0, mine0 = server.cpu(), time.process_time()
    t = time.perf_counter()
    with sink.open("wb") as f:
        got = await vault.download(safe, entry, f)
    down_s = time.perf_counter() - t
    down_cpu, down_mine = server.cpu() - cpu0, time.process_time() - mine0
    assert got == size
    out["upload_MB_per_s"] = round(size / MB / up_s, 1)
    out["download_MB_per_s"] = round(size / MB / down_s, 1)
    out["server_cpu_s"] = {"upload": round(up_cpu, 3), "download": round(down_cpu, 3)}
    # This process: the CLI's client, and the authnet network idling beside it.
    out["client_cpu_s"] = {"upload": round(up_mine, 3), "download": round(down_mine, 3)}
    sample = src.read_bytes()[: min(size, 64 * MB)]
    out["client_crypto_alone"] = [crypto_alone(sample, fmt) for fmt in (vc.V1, vc.V2)]
    out["disk_copy_same_bytes"] = disk_copies(src, work, size)
    out["to_copy"] = to_copy(out, out["disk_copy_same_bytes"])
    sink.unlink()
    src.unlink()
    return out


# --- the browser (the UI's own performance measure) ---------------------------------


def browser_measure_present() -> bool:
    """Whether the page marks opening a safe (vault_api/static/js/*.js)."""
    if not STATIC_JS.is_dir():
        return False
    return any(BROWSER_MEASURE in p.read_text() for p in STATIC_JS.rglob("*.js"))


async def browser_open_safe(url: str, phone: PhoneApp, safe_name: str, n: int) -> dict[str, Any]:
    """Time to open a safe of `n` items in the browser: log in by QR code,
    click the safe, read the page's `vault:safe-open` measure (and its fetch,
    decrypt and render parts)."""
    if not browser_measure_present():
        return {
            "measured": False,
            "reason": f"the page has no '{BROWSER_MEASURE}' performance measure "
            "(vault_api/static/js/)",
        }
    if not Path(CHROMIUM).exists():
        return {"measured": False, "reason": f"{CHROMIUM} is not installed"}
    from playwright.async_api import async_playwright

    from simulators.phone.camera import read_qr

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
            headless=True,
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(url + "/")
            qr = page.locator(".authnet-qr svg").first
            await qr.wait_for(state="visible", timeout=20_000)
            payload = read_qr(await page.screenshot())
            await phone.scan(payload, confirm=lambda _request: True)
            await page.wait_for_selector("html[data-state=vault]", timeout=30_000)
            button = page.locator("#safe-list").get_by_role("button").filter(has_text=safe_name)
            await button.first.click(timeout=20_000)
            deadline = time.monotonic() + 120
            entries: list[list[Any]] = []
            while time.monotonic() < deadline:
                entries = await page.evaluate(
                    "() => performance.getEntriesByType('measure')"
                    ".filter((e) => e.name.startsWith('vault:safe-open'))"
                    ".map((e) => [e.name, e.duration])"
                )
                if any(name == BROWSER_MEASURE for name, _ in entries):
                    break
                await asyncio.sleep(0.1)
            found = {name: float(d) for name, d in entries}
            if BROWSER_MEASURE not in found:
                return {"measured": False, "reason": "the page did not report opening the safe"}
            return {
                "measured": True,
                "items": n,
                "total_ms": round(found[BROWSER_MEASURE], 1),
                "fetch_ms": round(found.get(BROWSER_MEASURE + ":fetch", 0.0), 1),
                "decrypt_ms": round(found.get(BROWSER_MEASURE + ":decrypt", 0.0), 1),
                "render_ms": round(found.get(BROWSER_MEASURE + ":render", 0.0), 1),
                "browser": f"chromium {browser.version} (headless)",
            }
        finally:
            await browser.close()


FILE_MEASURE = "vault:file-"


async def browser_login(page: Any, url: str, phone: PhoneApp) -> None:
    from simulators.phone.camera import read_qr

    await page.goto(url + "/")
    qr = page.locator(".authnet-qr svg").first
    await qr.wait_for(state="visible", timeout=20_000)
    payload = read_qr(await page.screenshot())
    await phone.scan(payload, confirm=lambda _request: True)
    await page.wait_for_selector("html[data-state=vault]", timeout=30_000)


async def last_measure(page: Any, name: str, after: int) -> float:
    """The duration (ms) of the page's measure `name` once more than `after` exist."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = await page.evaluate(
            "(n) => performance.getEntriesByName(n, 'measure').map((e) => e.duration)", name
        )
        if len(found) > after:
            return float(found[-1])
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the page did not report {name}")


async def browser_files(
    url: str, phone: PhoneApp, safe_name: str, item_title: str, size: int, repeat: int, work: Path
) -> dict[str, Any]:
    """A `size`-byte file attached to an item and downloaded again in the page,
    `repeat` times, each with a plain copy of the same file: the page's own
    measures vault:file-upload (announce, encrypt into a Blob, PUT) and
    vault:file-download (GET, decrypt, the plaintext Blob)."""
    if not Path(CHROMIUM).exists():
        return {"measured": False, "reason": f"{CHROMIUM} is not installed"}
    from playwright.async_api import async_playwright

    runs: list[dict[str, Any]] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
            headless=True,
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await browser_login(page, url, phone)
            button = page.locator("#safe-list").get_by_role("button").filter(has_text=safe_name)
            await button.first.click(timeout=20_000)
            await page.locator(".vlist-row", has_text=item_title).first.click(timeout=20_000)
            for i in range(repeat):
                src = work / f"page-{i}.bin"
                write_random(src, size)
                log(f"browser: {size / MB:g} MB up and down (run {i + 1} of {repeat})")
                await page.locator("#attach-input").set_input_files(str(src))
                up_ms = await last_measure(page, FILE_MEASURE + "upload", i)
                enc_ms = await last_measure(page, FILE_MEASURE + "upload:encrypt", i)
                put_ms = await last_measure(page, FILE_MEASURE + "upload:put", i)
                download = page.get_by_role("button", name=f"Download {src.name}")
                async with page.expect_download(timeout=300_000) as dl:
                    await download.first.click(timeout=60_000)
                got = Path(await (await dl.value).path())
                down_ms = await last_measure(page, FILE_MEASURE + "download", i)
                same = got.stat().st_size == size and got.read_bytes() == src.read_bytes()
                copy = disk_copies(src, work, size)["copyfile_MB_per_s"]
                src.unlink()
                run = {
                    "upload_MB_per_s": round(size / MB / (up_ms / 1000), 1),
                    "upload_encrypt_ms": round(enc_ms, 1),
                    "upload_put_ms": round(put_ms, 1),
                    "download_MB_per_s": round(size / MB / (down_ms / 1000), 1),
                    "downloaded_bytes_match": same,
                    "disk_copy_same_bytes": {"copyfile_MB_per_s": copy},
                }
                run["to_copy"] = to_copy(run, run["disk_copy_same_bytes"])
                runs.append(run)
            return {
                "measured": True,
                "bytes": size,
                "browser": f"chromium {browser.version} (headless)",
                "runs": runs,
                "summary": files_summary(runs),
            }
        finally:
            await browser.close()


# --- main ---------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "benchmark": "vault",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
        },
        "settings": {
            "seconds_per_measurement": args.seconds,
            "concurrency": args.concurrency,
            "file_MB": args.file_mb,
            "safe_items": args.safe_items,
            "database": "postgresql" if args.database_url else "sqlite",
        },
    }
    with tempfile.TemporaryDirectory(prefix="bench-vault-") as tmp:
        root = Path(tmp)
        async with TestNetwork(root / "authnet") as net:
            log("starting vault-api serve in a child process")
            await net.add_sp("vault", "Vault")
            server = await start_server(
                root / "vault", net.root / "sps" / "vault", args.database_url
            )
            result["server"] = {"url": server.url, "process": "vault-api serve (child)"}
            try:
                phone = PhoneApp.create(root / "phone.json", label="bench phone")
                await phone.enrol(net.addresses.passkey, net.ca_pem)
                api = VaultApi(server.url)
                method = LoginMethod(kind="phone", phone_store=root / "phone.json")
                unlocked = await start(
                    api,
                    method,
                    Pins(from_stdin=False),
                    handle="bench",
                    say=lambda _text: None,
                    qr_out=io.StringIO(),
                )
                vault = Vault(api, unlocked.ring)
                created = await vault.create_safe("Bench")
                safe = await vault.open_id(created["id"])
                if not args.files_only:
                    result["cli_command_login"] = await measure_unlock(unlocked.state, method, 5)
                    log(f"a command's login: {result['cli_command_login']['p50_ms']} ms")
                    result["items"] = [
                        await measure_items(vault, server, safe, c, args.seconds)
                        for c in args.concurrency
                    ]
                    log(f"filling a safe with {args.safe_items} items")
                    big = await fill_safe(vault, "Big", args.safe_items)
                    result["open_safe_cli"] = await measure_open_safe(
                        vault, big.ref, args.safe_items
                    )
                    log(f"opened it in the CLI in {result['open_safe_cli']['total_ms']} ms")
                size = int(args.file_mb * MB)
                runs = []
                for i in range(args.repeat):
                    log(f"files: {size / MB:g} MB up and down (run {i + 1} of {args.repeat})")
                    runs.append(await measure_files(vault, server, safe, size, root))
                result["files"] = runs[0] if len(runs) == 1 else {"runs": runs}
                result["files_summary"] = files_summary(runs)
                if args.browser:
                    await vault.add_items(safe, [(item_content(0), None)])
                    result["browser_files"] = await browser_files(
                        server.url, phone, "Bench", "Site 0", size, args.repeat, root
                    )
                    log(f"browser files: {result['browser_files'].get('summary')}")
                if args.files_only:
                    pass
                elif args.no_browser:
                    result["browser_open_safe"] = {"measured": False, "reason": "--no-browser"}
                else:
                    log("browser: logging in and opening the safe")
                    try:
                        result["browser_open_safe"] = await asyncio.wait_for(
                            browser_open_safe(server.url, phone, "Big", args.safe_items), 300
                        )
                    except Exception as e:  # the UI is not this benchmark's subject
                        result["browser_open_safe"] = {
                            "measured": False,
                            "reason": f"the browser run failed: {type(e).__name__}: "
                            + str(e).splitlines()[0][:200],
                        }
                await api.close()
            finally:
                server.stop()
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/vault.py",
        description="The vault's speed: API item reads/s and writes/s, opening a safe, "
        "file MB/s through the API against plain disk copies, and opening a safe of "
        "10,000 items in the browser. One JSON object on stdout; progress on stderr.",
    )
    p.add_argument("--seconds", type=float, default=5.0, help="per measurement (default 5)")
    p.add_argument(
        "--concurrency",
        type=int,
        action="append",
        help="workers for item reads and writes; repeat for several levels (default 1 and 8)",
    )
    p.add_argument("--file-mb", type=float, default=64.0, help="file size in MB (default 64)")
    p.add_argument(
        "--safe-items", type=int, default=10_000, help="items in the safe opened (default 10000)"
    )
    p.add_argument("--database-url", help="the vault's database (default: SQLite in a temp dir)")
    p.add_argument("--no-browser", action="store_true", help="skip the browser measurement")
    p.add_argument(
        "--files-only",
        action="store_true",
        help="measure files only (no items, no safe opening)",
    )
    p.add_argument(
        "--repeat", type=int, default=1, help="file measurements, each with its copy (default 1)"
    )
    p.add_argument(
        "--browser",
        action="store_true",
        help="also upload and download the file in Chromium (the page's own code)",
    )
    return p


def main() -> None:
    args = parser().parse_args()
    args.concurrency = args.concurrency or [1, 8]
    if any(c < 1 for c in args.concurrency) or args.seconds <= 0 or args.safe_items < 1:
        parser().error("concurrency, seconds and safe items must be positive")
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
