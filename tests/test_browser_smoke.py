"""Smoke test of the browser harness: the real app over loopback HTTP in Debian's Chromium."""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from api.app import create_app
from models.migrate import head_revision

if TYPE_CHECKING:
    from playwright.async_api import Page
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.browser_support import NewPage, PageProblems, Screenshot, ServeApp

pytest_plugins = ("tests.browser_support",)


async def _json_shown(page: Page) -> object:
    """The JSON document Chromium is displaying (it wraps it in a <pre>)."""
    return json.loads(await page.locator("pre").first.inner_text())


async def test_the_app_answers_in_a_laptop_browser(
    engine: AsyncEngine,
    served_app: ServeApp,
    page: Page,
    page_problems: PageProblems,
    screenshot: Screenshot,
) -> None:
    async with served_app(create_app(engine)) as base_url:
        response = await page.goto(f"{base_url}/readyz")
        assert response is not None
        assert response.status == 200
        assert response.headers["content-type"] == "application/json"
        shown = await _json_shown(page)
        path = await screenshot(page, "smoke-readyz-laptop")
    assert shown == {"status": "ready", "database": "ok", "schema": head_revision()}
    assert await page.evaluate("[innerWidth, innerHeight]") == [1366, 768]
    assert path.read_bytes().startswith(b"\x89PNG")
    page_problems.assert_none()


async def test_the_app_answers_on_a_phone(
    engine: AsyncEngine,
    served_app: ServeApp,
    new_page: NewPage,
    page_problems: PageProblems,
    screenshot: Screenshot,
) -> None:
    async with served_app(create_app(engine)) as base_url:
        phone = await new_page("phone", base_url=base_url)
        response = await phone.goto("/healthz")
        assert response is not None
        assert response.status == 200
        shown = await _json_shown(phone)
        await screenshot(phone, "smoke-healthz-phone")
    assert shown == {"status": "ok"}
    # A JSON document has no <meta name="viewport">, so a phone lays it out 980 px wide as a
    # real one would; the app's HTML pages need that tag to fit the 390 px screen.
    measures = "[screen.width, innerWidth, devicePixelRatio]"
    assert await phone.evaluate(measures) == [390, 980, 3]
    assert await phone.evaluate("matchMedia('(pointer: coarse)').matches") is True
    page_problems.assert_none()


BROKEN_PAGE = """<!doctype html>
<title>broken</title>
<h1>broken</h1>
<img src="/missing.png" alt="">
<script src="https://cdn.jsdelivr.net/npm/htmx.org@2/dist/htmx.min.js"></script>
<script>console.error("wired wrong"); throw new Error("boom");</script>
"""


def _broken_app() -> FastAPI:
    app = FastAPI()

    @app.get("/", response_class=HTMLResponse)
    async def broken() -> str:
        return BROKEN_PAGE

    return app


async def test_problems_on_a_page_are_caught(
    served_app: ServeApp, page: Page, page_problems: PageProblems
) -> None:
    """The harness sees console errors, uncaught exceptions, 404s and the internet being
    out of reach (a CDN script), so a browser test can fail on them."""
    async with served_app(_broken_app()) as base_url:
        await page.goto(base_url)
        await page.wait_for_load_state("load")
        assert await page.locator("h1").inner_text() == "broken"
        nope = await page.goto(f"{base_url}/nope")
    assert nope is not None
    assert nope.status == 404

    assert any("wired wrong" in line for line in page_problems.console_errors)
    assert any("Error: boom" in line for line in page_problems.page_errors)
    assert [line for status, line in page_problems.error_responses] == [
        f"GET {base_url}/missing.png: 404",
        f"GET {base_url}/nope: 404",
    ]
    assert page_problems.failed_requests == [
        "GET https://cdn.jsdelivr.net/npm/htmx.org@2/dist/htmx.min.js: net::ERR_NAME_NOT_RESOLVED"
    ]
    with pytest.raises(
        AssertionError, match=re.escape("request failed: GET https://cdn.jsdelivr.net/")
    ):
        page_problems.assert_none()
    # Allowing the 404s leaves the console error, the exception and the CDN request (Chromium
    # also logs that one to the console).
    remaining = page_problems.lines(allow_status=[404])
    # Matched as a status, not as digits: the loopback port may contain 404.
    assert not any(re.search(r": 404$|status of 404 ", line) for line in remaining), remaining
    assert len(remaining) == 4, remaining


SLOW_STYLE_PAGE = """<!doctype html>
<title>slow</title><link rel="stylesheet" href="/slow.css"><h1>slow</h1>
"""
# The page itself gives up on a request: a fault of the page, though Chromium says "aborted"
# as it does for a navigation's.
SELF_ABORTING_PAGE = """<!doctype html>
<title>gives up</title><h1>gives up</h1>
<script>
const giveUp = new AbortController();
fetch("/slow.css", {signal: giveUp.signal}).catch(() => {});
setTimeout(() => giveUp.abort(), 1000);
</script>
"""


def _slow_app(release: asyncio.Event) -> FastAPI:
    app = FastAPI()

    @app.get("/slow", response_class=HTMLResponse)
    async def slow() -> str:
        return SLOW_STYLE_PAGE

    @app.get("/gives-up", response_class=HTMLResponse)
    async def gives_up() -> str:
        return SELF_ABORTING_PAGE

    @app.get("/slow.css")
    async def slow_css() -> HTMLResponse:
        await release.wait()
        return HTMLResponse("h1 { color: teal }", media_type="text/css")

    return app


async def test_a_request_cut_by_leaving_the_page_is_no_problem_but_one_the_page_drops_is(
    served_app: ServeApp, page: Page, page_problems: PageProblems
) -> None:
    release = asyncio.Event()
    async with served_app(_slow_app(release)) as base_url:
        try:
            async with page.expect_request(f"{base_url}/slow.css"):
                await page.goto(f"{base_url}/slow", wait_until="commit")
            # The stylesheet is still loading when the test moves on.
            async with page.expect_event(
                "requestfailed", predicate=lambda request: request.url.endswith("/slow.css")
            ):
                await page.goto(f"{base_url}/gives-up", wait_until="commit")
            # The page itself may be reported cut too: its load never ended.
            cut = f"GET {base_url}/slow.css: net::ERR_ABORTED"
            assert cut in page_problems.cut_by_navigation, page_problems.cut_by_navigation
            assert set(page_problems.cut_by_navigation) <= {
                cut,
                f"GET {base_url}/slow: net::ERR_ABORTED",
            }
            assert page_problems.failed_requests == []

            async with page.expect_event("requestfailed"):
                await page.wait_for_load_state("load")
            assert page_problems.failed_requests == [f"GET {base_url}/slow.css: net::ERR_ABORTED"]
        finally:
            # Else the server's shutdown waits on the handlers still holding the stylesheet.
            release.set()
    with pytest.raises(AssertionError, match=r"request failed: GET .*/slow\.css: net::ERR_ABORTED"):
        page_problems.assert_none()
