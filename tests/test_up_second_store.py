"""`deskpilot up`'s demo offers a second sandbox store nobody has installed: a newcomer
signs up on the web and installs it from the connections page, through the sandbox's
consent and back to the running API's callback."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from sandbox.shopify.server import SECOND_DEMO_ORDERS, SECOND_DEMO_SHOP
from tests.test_cli import _up_ports
from tests.test_up_pipeline import Up, launch  # noqa: F401  (launch is the fixture)


def _backfilled(log: Path) -> bool:
    for line in log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the banner
        if entry.get("msg") == "shopify orders backfilled" and entry.get("shop") == (
            SECOND_DEMO_SHOP
        ):
            return bool(entry.get("orders") == SECOND_DEMO_ORDERS)
    return False


def test_a_new_merchant_installs_the_second_demo_store(
    launch: Callable[[Path, list[str]], Up],  # noqa: F811
    tmp_path: Path,
) -> None:
    up = launch(tmp_path / "home", _up_ports())
    assert f"2nd store    {SECOND_DEMO_SHOP}" in up.log.read_text(), "the banner names it"
    with httpx.Client(base_url=up.base, timeout=30) as browser:
        form = browser.get("/signup")
        start = form.text.find('action="/signup"')
        csrf = re.search(r'name="csrf" value="([^"]*)"', form.text[start:])
        assert start >= 0 and csrf, form.text
        signed_up = browser.post(
            "/signup",
            data={
                "email": "new.merchant@example.com",
                "password": "a long enough passphrase",
                "csrf": csrf.group(1),
            },
        )
        assert signed_up.status_code == 303, signed_up.text

        # The connections page's form: GET /shopify/install?shop=...
        started = browser.get("/shopify/install", params={"shop": SECOND_DEMO_SHOP})
        assert started.status_code == 302, started.text
        consent = started.headers["location"]
        assert consent.startswith(f"{up.sandbox}/shops/{SECOND_DEMO_SHOP}/admin/oauth/authorize")
        approved = httpx.get(consent, timeout=30)
        assert approved.status_code == 302, approved.text
        back = urlsplit(approved.headers["location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == f"{up.base}/shopify/callback"
        installed = browser.get(f"{back.path}?{back.query}", headers={"Accept": "text/html"})
        assert installed.status_code == 303, installed.text
        assert installed.headers["location"] == "/connections?notice=installed"

        connections = browser.get("/api/connections")
        assert connections.status_code == 200, connections.text
        shops = [c["shop_domain"] for c in connections.json() if c["type"] == "SHOPIFY"]
        assert shops == [SECOND_DEMO_SHOP]
    # The worker's backfill brought the store's seeded orders in.
    deadline = time.monotonic() + 30
    while not _backfilled(up.log):
        assert time.monotonic() < deadline, "the second store's orders were never backfilled"
        time.sleep(0.2)
    up.stop(signal.SIGINT)
