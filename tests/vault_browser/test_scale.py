"""A safe of 10,000 items in the page: it opens (fetch, decrypt in batches,
render a virtualized list) without blocking the page for long, input is
handled while it decrypts, search finds an item without decrypting anything
again, and scrolling renders only the rows in view. The page's performance
measures (vault:safe-open and its :fetch, :decrypt and :render parts) are
printed; the only bound on speed is a generous sanity one."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from playwright.async_api import Page, expect

from simulators.phone.app import PhoneApp
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

N = 10_000
NEEDLE = "Needle in the haystack"

# Installed before the safe opens: long tasks (over 50 ms of main thread),
# gaps between animation frames and between 10 ms timer ticks (when and how
# long), the delay of key presses in the search box, the status messages, and
# a count of AES-GCM decryptions.
PROBES = """
() => {
  window.__probe = { longTasks: [], gaps: [], frameGaps: [], inputDelays: [], decrypts: 0,
                     status: [] };
  if (window.__probeInstalled) return;
  window.__probeInstalled = true;
  const status = document.getElementById("status");
  new MutationObserver(() => window.__probe.status.push(status.textContent))
    .observe(status, { childList: true, characterData: true, subtree: true });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__probe.longTasks.push([e.startTime, e.duration]);
  }).observe({ type: "longtask" });
  let last = performance.now();
  const tick = () => {
    const now = performance.now();
    if (now - last > 30) window.__probe.gaps.push([last, now - last]);
    last = now;
    setTimeout(tick, 10);
  };
  setTimeout(tick, 10);
  let lastFrame = performance.now();
  const frame = (now) => {
    if (now - lastFrame > 30) window.__probe.frameGaps.push([lastFrame, now - lastFrame]);
    lastFrame = now;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  document.getElementById("search").addEventListener("keydown", (e) => {
    window.__probe.inputDelays.push([e.timeStamp, performance.now() - e.timeStamp]);
  });
  const decrypt = crypto.subtle.decrypt.bind(crypto.subtle);
  crypto.subtle.decrypt = (...args) => { window.__probe.decrypts += 1; return decrypt(...args); };
}
"""

# The last open's marks and measures.
MARKS = """
() => {
  const last = (name, type) => performance.getEntriesByName(name, type).at(-1);
  const m = (n) => Math.round(last(n, "measure").duration);
  return {
    start: last("vault:safe-open:start", "mark").startTime,
    fetched: last("vault:safe-open:fetched", "mark").startTime,
    decrypted: last("vault:safe-open:decrypted", "mark").startTime,
    total: m("vault:safe-open"), fetch: m("vault:safe-open:fetch"),
    decrypt: m("vault:safe-open:decrypt"), render: m("vault:safe-open:render"),
  };
}
"""


async def open_big(
    page: Page, *, type_meanwhile: str = ""
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """Click the safe (typing `type_meanwhile` into the search box at once), wait
    until it is open; returns the probe, the marks, and the wall time."""
    await page.evaluate(PROBES)
    started = time.monotonic()
    await page.locator("#safe-list").get_by_role("button", name="Big").click()
    if type_meanwhile:
        await ui.until(page, "() => window.__probe.status.some((s) => s.startsWith('Decrypting'))")
        await page.locator("#search").press_sequentially(type_meanwhile, delay=10)
    await ui.until(
        page,
        "() => window.__probe.status.some((s) => /^Opened Big: 10,000 items in /.test(s))",
        wait_ms=120_000,
    )
    wall = time.monotonic() - started
    probe = await page.evaluate("() => window.__probe")
    return probe, await page.evaluate(MARKS), wall


def within(events: list[list[float]], lo: float, hi: float) -> list[float]:
    """How long each [start, duration] event lasted inside [lo, hi].

    Clipped to the window: the task that parses the fetched JSON can end just
    after the `fetched` mark, and the one that sorts and renders the list can
    begin a fraction of a millisecond before `decrypted`; only the part of
    them inside the window blocked the page while it was decrypting. (Whole
    tasks, wherever they fall, are bounded by `longest_task_ms`.)"""
    return [min(t + d, hi) - max(t, lo) for t, d in events if t < hi and t + d > lo]


@pytest.mark.timeout(600)
async def test_ten_thousand_items_open_responsively_and_search_finds_one(
    browsers: Browsers, vault: VaultSite, alice_phone: PhoneApp, record_property: object
) -> None:
    page = await browsers.page()
    await ui.sign_up(page, vault, alice_phone, "alice")
    async with vault.client() as py:
        await py.login(alice_phone)
        sid = await py.create_safe("Big")
        contents = [
            {
                "type": "login",
                "title": f"Site {n:05}",
                "username": f"user{n}@example.com",
                "password": f"pw-{n:05}-xyzzy",
                "urls": [f"https://site{n}.example.com/login"],
                "notes": "some notes " * (n % 7),
            }
            for n in range(N - 1)
        ]
        contents.insert(6_789, {"type": "note", "title": NEEDLE, "notes": "found it"})
        await ui.bulk_items(py, sid, contents)

    await page.get_by_role("button", name="Reload safes").click()
    await expect(page.locator("#safe-list").get_by_role("button", name="Big")).to_be_visible()

    # First open (cold): the figures.
    probe, marks, wall = await open_big(page)
    figures = {
        "items": N,
        "wall_s": round(wall, 2),
        "safe_open_ms": marks["total"],
        "fetch_ms": marks["fetch"],
        "decrypt_ms": marks["decrypt"],
        "render_ms": marks["render"],
        "longest_task_ms": round(max((d for _, d in probe["longTasks"]), default=0)),
        "long_tasks": len(probe["longTasks"]),
        "longest_task_while_decrypting_ms": round(
            max(within(probe["longTasks"], marks["fetched"], marks["decrypted"]), default=0)
        ),
        "longest_frame_gap_while_decrypting_ms": round(
            max(within(probe["frameGaps"], marks["fetched"], marks["decrypted"]), default=0)
        ),
        "longest_timer_gap_while_decrypting_ms": round(
            max(within(probe["gaps"], marks["fetched"], marks["decrypted"]), default=0)
        ),
    }
    # The status counted the decryption up (for screen readers too).
    counts = [s for s in probe["status"] if s.startswith("Decrypting ")]
    assert counts, probe["status"]
    assert counts[-1] == "Decrypting 10,000 of 10,000 items", probe["status"]
    # The parts add up to the whole; the page decrypted each item once.
    assert (
        figures["fetch_ms"] + figures["decrypt_ms"] + figures["render_ms"]
        <= figures["safe_open_ms"] + 2
    )
    assert N <= probe["decrypts"] < N + 20
    # Responsive: no main-thread task near a second, during decryption or at all.
    assert figures["longest_task_ms"] < 1000, figures
    assert figures["longest_task_while_decrypting_ms"] < 250, figures
    assert figures["longest_frame_gap_while_decrypting_ms"] < 250, figures
    assert figures["safe_open_ms"] < 60_000, figures  # a sanity bound, not a speed target

    # Open it again on a CPU four times slower (Chromium's emulation: a modest
    # laptop or a phone), typing a search while it decrypts: the keys are handled.
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    try:
        probe2, marks2, _ = await open_big(page, type_meanwhile="needle")
    finally:
        await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    delays = [d for _, d in probe2["inputDelays"]]
    assert len(delays) == len("needle")
    figures["keys_typed_while_decrypting"] = len(
        [t for t, _ in probe2["inputDelays"] if marks2["fetched"] <= t <= marks2["decrypted"]]
    )
    figures["max_input_delay_ms"] = round(max(delays))
    figures["reopen_at_quarter_cpu_ms"] = marks2["total"]
    figures["longest_frame_gap_at_quarter_cpu_ms"] = round(
        max(within(probe2["frameGaps"], marks2["fetched"], marks2["decrypted"]), default=0)
    )
    print("\nvault 10k open:", json.dumps(figures))
    record_property("vault_10k_open", json.dumps(figures))  # type: ignore[operator]
    assert figures["keys_typed_while_decrypting"] >= 1, figures
    assert figures["max_input_delay_ms"] < 250, figures

    # The search typed during decryption applies to the finished list.
    await expect(page.locator("#list-count")).to_have_text("1 of 10,000 items match")
    await expect(page.locator(".vlist-row")).to_have_text([f"{NEEDLE}Secure note"])
    decrypts = await page.evaluate("window.__probe.decrypts")
    # Searching again decrypts nothing.
    await page.locator("#search").fill("site 0999")
    await expect(page.locator("#list-count")).to_have_text("9 of 10,000 items match")
    await page.locator("#search").fill("user4242@")
    await expect(page.locator("#list-count")).to_have_text("1 of 10,000 items match")
    assert await page.evaluate("window.__probe.decrypts") == decrypts

    # The list is virtual: 10,000 options, a few dozen rows in the DOM, keyboard to the end.
    await page.locator("#search").fill("")
    await expect(page.locator("#list-count")).to_have_text("10,000 items")
    listbox = page.get_by_role("listbox", name="Items")
    await listbox.focus()
    await page.keyboard.press("End")
    last = page.locator('.vlist-row[aria-selected="true"]')
    await expect(last).to_have_attribute("aria-posinset", "10000")
    await expect(last).to_have_attribute("aria-setsize", "10000")
    await expect(last).to_contain_text("Site 09998")
    assert await page.locator(".vlist-row").count() < 80
    await page.keyboard.press("Enter")
    await expect(page.locator("#item-heading")).to_have_text("Site 09998")
    await expect(page.locator("#item-heading")).to_be_focused()
