"""The dashboard in a real browser: headless Chromium (Debian's package) driven by
Playwright. Chats move the charts, the A/B panel appears, and nothing is loaded from
anywhere but the dashboard's own server. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from dashboard_kit import ARTIFACTS, live_stack, require_chromium

pytest.importorskip("playwright")

TOKEN = "browser-test-token"


async def _total(page, chart: str, series: int = 1) -> float:
    data = await page.evaluate(f"window.victorDashboard.series({chart!r})")
    return sum(v or 0 for v in data[series]) if data else 0.0


async def _eventually(check, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the page did not update in time")
        await asyncio.sleep(0.1)


async def test_the_page_charts_live_chats_and_the_ab_panel_and_loads_nothing_from_outside(
    tmp_path,
):
    from playwright.async_api import async_playwright

    chromium = require_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    async with live_stack(tmp_path, token=TOKEN) as stack, async_playwright() as pw:
        await stack.chats(5, prefix="before")  # history: the snapshot shows it
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1440, "height": 1500})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("websocket", lambda ws: requests.append(ws.url))
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{stack.server.url}#token={TOKEN}")
            await page.wait_for_selector("#conn[data-state=live]", timeout=10_000)
            assert "#token" not in page.url  # the token leaves the address bar
            await _eventually(lambda: _has(page, "c-rate"))
            before = await _total(page, "c-rate")
            tokens_before = await _total(page, "c-tokens")
            assert before > 0  # the snapshot: requests that happened before the page opened

            await stack.chats(25, prefix="live")
            await _eventually(lambda: _grew(page, "c-rate", before))
            await _eventually(lambda: _grew(page, "c-tokens", tokens_before))
            # The panel is recomputed as sessions finish: both arms once enough are stored.
            await _eventually(lambda: _variants_shown(page, {"control", "treatment"}))
            verdict = await page.locator("#experiments .verdict").first.inner_text()
            assert verdict.startswith("treatment: ") and "SRM" in verdict
            latency = await page.evaluate("window.victorDashboard.series('c-latency')")
            assert any(v for v in latency[2] if v)  # p95 of some interval
            models = await page.locator("#t-models tbody").inner_text()
            assert "gpt-4o-mini" in models and "claude-haiku-4-5" in models
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            # A filter narrows every chart: one tenant's requests are fewer than all.
            everything = await _total(page, "c-rate")
            await page.select_option("#f-tenant", "acme")
            await page.evaluate("window.victorDashboard.render()")
            acme = await _total(page, "c-rate")
            assert 0 < acme < everything
            await page.screenshot(path=str(ARTIFACTS / "dashboard-acme.png"), full_page=True)
        finally:
            await browser.close()
    assert not errors, errors
    origin = urlsplit(stack.server.url).netloc
    outside = [u for u in requests if urlsplit(u).netloc != origin and not u.startswith("data:")]
    assert requests and not outside, outside


async def _variants_shown(page, variants: set[str]) -> bool:
    rows = await page.locator("#experiments table.variants tbody tr").all_inner_texts()
    return {row.split()[0] for row in rows if row.strip()} >= variants


async def _has(page, chart: str) -> bool:
    return await page.evaluate(f"!!window.victorDashboard.series({chart!r})")


async def _grew(page, chart: str, before: float) -> bool:
    return await _total(page, chart) > before


async def test_a_wrong_token_shows_the_token_form_and_the_right_one_opens_the_page(tmp_path):
    from playwright.async_api import async_playwright

    chromium = require_chromium()
    async with live_stack(tmp_path, token=TOKEN) as stack, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            await page.goto(f"{stack.server.url}#token=wrong")
            await page.wait_for_selector("#login:not([hidden])")
            assert await page.locator("#login-error").is_visible()
            await page.screenshot(path=str(ARTIFACTS / "dashboard-token.png"))
            await page.fill("#login-token", TOKEN)
            await page.click("#login-form button")
            await page.wait_for_selector("#conn[data-state=live]")
            assert await page.locator("#main").is_visible()
        finally:
            await browser.close()
