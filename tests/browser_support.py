"""Browser tests: Playwright driving Debian's Chromium over real HTTP on loopback.

A test module loads these fixtures with ``pytest_plugins = ("tests.browser_support",)`` and
imports names from here for type hints only (under ``TYPE_CHECKING``: importing this module
before pytest loads it as a plugin costs it assertion rewriting, with a warning):

- ``browser``: one headless Chromium for the session;
- ``page``: a fresh laptop-sized page in a context of its own (no cookies shared);
- ``new_page``: ``await new_page("phone", base_url=url)`` opens more pages, closed after the
  test (``"laptop"``, ``"phone"`` or a ``Device``);
- ``page_problems``: console errors, uncaught exceptions, failed requests and HTTP error
  responses on every page the test opened; ``page_problems.assert_none()``;
- ``served_app``: ``async with served_app(app) as base_url`` serves a FastAPI app on a
  loopback port in the session's event loop;
- ``screenshot``: ``await screenshot(page, "inbox-phone")`` saves
  ``<basetemp>/screenshots/inbox-phone.png`` and prints the path.

Chromium is the Debian package that ``.ci/run`` installs (``DESKPILOT_CHROMIUM`` names another
executable); Playwright's own browsers are never downloaded. The browser resolves no host name
but ``localhost``, so a page that needs the internet (a CDN script) fails here as it would in
CI, and the failed request is one of the ``page_problems``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from fastapi import FastAPI
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    Request,
    Response,
    async_playwright,
)

from sandbox.server import serve_app

CHROMIUM_ENV = "DESKPILOT_CHROMIUM"
# Generous for a loaded CI machine, short enough that a missing element fails the test quickly.
ACTION_TIMEOUT_MS = 10_000
LAUNCH_TIMEOUT_MS = 60_000
CHROMIUM_ARGS = (
    "--disable-dev-shm-usage",  # a container's /dev/shm is often 64 MB
    "--disable-gpu",
    # Nothing may be fetched from the internet at run time: no update, sync or
    # field-trial traffic, and no host name resolves except localhost.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)
SCREENSHOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Device:
    name: str
    width: int
    height: int
    device_scale_factor: float = 1
    is_mobile: bool = False
    has_touch: bool = False


LAPTOP = Device("laptop", 1366, 768)
# An iPhone 13/14-sized screen; is_mobile makes Chromium honour <meta name="viewport">.
PHONE = Device("phone", 390, 844, device_scale_factor=3, is_mobile=True, has_touch=True)
DEVICES = {device.name: device for device in (LAPTOP, PHONE)}


@dataclass
class PageProblems:
    """What went wrong on the pages of a test: console errors, uncaught exceptions, requests
    that got no response (refused, DNS, aborted) and responses with an HTTP error status.

    A request that a later navigation of its page aborted (a stylesheet still loading when
    the test moves on, the inbox's event stream) is the navigation, not a fault: it goes to
    `cut_by_navigation`, not to `failed_requests`."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    cut_by_navigation: list[str] = field(default_factory=list)
    # (status, "METHOD url: status")
    error_responses: list[tuple[int, str]] = field(default_factory=list)
    # Per page: how many main-frame navigations it has started, and that count when each
    # of its requests started.
    _navigations: dict[Page, int] = field(default_factory=dict, repr=False)
    _started_after: dict[Request, int] = field(default_factory=dict, repr=False)

    def watch(self, page: Page) -> None:
        self._navigations[page] = 0
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        page.on("request", lambda request: self._on_request(page, request))
        page.on("requestfailed", lambda request: self._on_request_failed(page, request))
        page.on("requestfinished", self._forget)
        page.on("response", self._on_response)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location.get("url") or ""
            if urlsplit(where).path == "/favicon.ico":
                return  # Chromium asks for one by itself; a missing one is no page's fault
            self.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def _on_page_error(self, error: Error) -> None:
        self.page_errors.append(f"{error.name}: {error.message}")

    def _on_request(self, page: Page, request: Request) -> None:
        if request.is_navigation_request() and request.frame == page.main_frame:
            self._navigations[page] += 1
        self._started_after[request] = self._navigations[page]

    def _forget(self, request: Request) -> None:
        self._started_after.pop(request, None)

    def _on_request_failed(self, page: Page, request: Request) -> None:
        line = f"{request.method} {request.url}: {request.failure}"
        started_after = self._started_after.pop(request, None)
        navigated_since = started_after is not None and self._navigations[page] > started_after
        if request.failure == "net::ERR_ABORTED" and navigated_since:
            self.cut_by_navigation.append(line)
        else:
            self.failed_requests.append(line)

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            line = f"{response.request.method} {response.url}: {response.status}"
            self.error_responses.append((response.status, line))

    def lines(self, allow_status: Iterable[int] = ()) -> list[str]:
        """Every problem as one line. `allow_status`: HTTP statuses the test expects (a 404
        page); Chromium's console line about that status is allowed with it."""
        allowed = set(allow_status)
        responses = [line for status, line in self.error_responses if status not in allowed]
        console = [
            line
            for line in self.console_errors
            if not any(f"status of {status} " in line for status in allowed)
        ]
        return (
            [f"console error: {line}" for line in console]
            + [f"uncaught: {line}" for line in self.page_errors]
            + [f"request failed: {line}" for line in self.failed_requests]
            + [f"HTTP error: {line}" for line in responses]
        )

    def assert_none(self, allow_status: Iterable[int] = ()) -> None:
        problems = self.lines(allow_status)
        assert not problems, "the page had problems:\n" + "\n".join(problems)


ServeApp = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[str]]


@pytest.fixture
def served_app() -> ServeApp:
    """`async with served_app(app) as base_url`: `app` over real HTTP on a loopback port, in
    the session's event loop, until the block ends."""
    return serve_app


# --- Finding and starting Chromium ------------------------------------------------------------


def _on_ci() -> bool:
    return bool(os.environ.get("CI"))


def chromium_executable() -> str:
    """The Chromium to drive: $DESKPILOT_CHROMIUM, else `chromium` or `chromium-browser` on PATH.

    Fails the test (never skips) when there is none: browser tests are part of the suite."""
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        found = shutil.which(named)
        if not found:
            pytest.fail(f"{CHROMIUM_ENV}={named} is not an executable", pytrace=False)
        return found
    for candidate in ("chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    how = (
        "`bash .ci/run` installs it"
        if _on_ci()
        else "run `bash .ci/run`, or `sudo apt-get install -y chromium chromium-driver`"
    )
    pytest.fail(
        f"Chromium is not installed (no `chromium` or `chromium-browser` on PATH, "
        f"{CHROMIUM_ENV} unset): {how}. Never `playwright install`: it downloads a browser.",
        pytrace=False,
    )


@dataclass
class _Session:
    version: str = ""
    executable: str = ""
    start_s: float = 0.0
    screenshots: list[Path] = field(default_factory=list)


_session = _Session()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the whole session."""
    executable = chromium_executable()
    started = time.perf_counter()
    async with async_playwright() as playwright:
        try:
            chromium = await playwright.chromium.launch(
                executable_path=executable,
                headless=True,
                # Playwright's default, said aloud: Chromium's sandbox refuses to run as root
                # and needs user namespaces that containers often lack. The pages are ours.
                chromium_sandbox=False,
                args=list(CHROMIUM_ARGS),
                timeout=LAUNCH_TIMEOUT_MS,
            )
        except Error as exc:
            pytest.fail(f"Chromium ({executable}) did not start: {exc.message}", pytrace=False)
        _session.version = chromium.version
        _session.executable = executable
        _session.start_s = time.perf_counter() - started
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def page_problems() -> PageProblems:
    """The problems of every page the test opens (popups included)."""
    return PageProblems()


class NewPage(Protocol):
    async def __call__(
        self, device: Device | str = LAPTOP, *, base_url: str | None = None
    ) -> Page: ...


@pytest_asyncio.fixture(loop_scope="session")
async def new_page(browser: Browser, page_problems: PageProblems) -> AsyncIterator[NewPage]:
    """`await new_page("phone", base_url=url)`: a page in a context of its own, closed after
    the test. With `base_url` the test can `goto("/path")`."""
    contexts: list[BrowserContext] = []

    async def open_page(device: Device | str = LAPTOP, *, base_url: str | None = None) -> Page:
        if isinstance(device, str):
            device = DEVICES[device]
        context = await browser.new_context(
            viewport={"width": device.width, "height": device.height},
            device_scale_factor=device.device_scale_factor,
            is_mobile=device.is_mobile,
            has_touch=device.has_touch,
            base_url=base_url,
            locale="en-US",
            timezone_id="UTC",
        )
        contexts.append(context)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.on("page", page_problems.watch)
        return await context.new_page()

    try:
        yield open_page
    finally:
        for context in contexts:
            await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(new_page: NewPage) -> Page:
    """A fresh laptop-sized page (its own context: no cookies shared with other tests)."""
    return await new_page(LAPTOP)


Screenshot = Callable[[Page, str], Awaitable[Path]]


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`screenshots/` in pytest's base temp folder (`--basetemp`), which CI keeps."""
    path = tmp_path_factory.getbasetemp() / "screenshots"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def screenshot(screenshots_dir: Path) -> Screenshot:
    """`await screenshot(page, "inbox-phone")` saves the whole page as screenshots/NAME.png."""

    async def take(page: Page, name: str, *, full_page: bool = True) -> Path:
        if not SCREENSHOT_NAME.fullmatch(name):
            raise ValueError(f"screenshot name {name!r}: use letters, digits, '.', '_', '-'")
        path = screenshots_dir / f"{name}.png"
        if path in _session.screenshots:
            raise ValueError(f"screenshot {name!r} was already taken in this session")
        # scale="css": one pixel per CSS pixel, so a phone's 3x screen does not make a
        # 9x larger file that takes seconds to encode.
        await page.screenshot(path=path, full_page=full_page, scale="css")
        _session.screenshots.append(path)
        print(f"screenshot: {path}")
        return path

    return take


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _session.version:
        return
    terminalreporter.write_line(
        f"browser: Chromium {_session.version} ({_session.executable}) "
        f"started in {_session.start_s:.2f} s"
    )
    if _session.screenshots:
        terminalreporter.write_line(
            f"browser: {len(_session.screenshots)} screenshot(s) in {_session.screenshots[0].parent}"
        )
