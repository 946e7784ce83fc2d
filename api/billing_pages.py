"""The usage and plan page, its plan forms (checkout, change, cancel, resume) and the page
Razorpay's checkout returns to.

Plain forms with the session's CSRF token; each answers a 303 (to the gateway's checkout,
or back to the page with a notice) or the page again with the error. The data and the
changes are the JSON API's own (services/billing.py, services/usage.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api.billing_deps import GatewaysDep, return_url
from api.deps import CsrfProtected, SessionDep, SettingsDep, WebUser
from api.errors import status_of
from api.rendering import render
from domain.plans import COUNTERS
from integrations.billing_gateways import BillingGateway
from kernel.enums import PlanType
from kernel.errors import DeskpilotError, Invalid
from kernel.settings import Settings
from models.user import User
from services import billing
from services.billing import When
from services.usage import UsageSummary, usage_for

router = APIRouter(include_in_schema=False)

COUNTER_LABELS = {
    "emails_received": "Emails received",
    "emails_sent": "Emails sent",
    "ai_suggestions": "AI suggestions",
}
LIMIT_LABELS = {
    "emails_received": "emails received",
    "emails_sent": "emails sent",
    "ai_suggestions": "AI suggestions",
}
GATEWAY_LABELS = {"razorpay": "Razorpay", "paddle": "Paddle"}
CURRENCY_SIGNS = {"INR": "₹", "USD": "$"}
# Messages a redirect may ask the page to show; never text taken from the URL itself.
NOTICES = {
    "payment_received": "Payment received — activating your plan. This page updates as soon "
    "as the gateway confirms it.",
    "checkout_done": "Checkout finished — activating your plan. This page updates as soon as "
    "the gateway confirms the payment.",
    "changed": "Plan change requested.",
    "cancelled": "Cancellation requested.",
    "resumed": "The subscription continues.",
}


def money(currency: str, amount_minor: int) -> str:
    sign = CURRENCY_SIGNS.get(currency)
    amount = f"{amount_minor / 100:,.2f}"
    return f"{sign}{amount}" if sign else f"{amount} {currency}"


def _sentence(message: str) -> str:
    """An error's message (lower case, no stop: made for JSON) as the page shows it."""
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def _counters(summary: UsageSummary) -> list[dict[str, Any]]:
    counters = []
    for name in COUNTERS:
        used = getattr(summary.usage, name)
        limit = getattr(summary.limits, name)
        percent = None if not limit else min(100, round(100 * used / limit))
        counters.append(
            {"name": name, "label": COUNTER_LABELS[name], "used": used, "limit": limit,
             "percent": percent}
        )  # fmt: skip
    return counters


async def _usage_page(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    gateways: Mapping[str, BillingGateway],
    user_id: uuid.UUID,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    usage = await usage_for(session, user_id)
    view = await billing.billing_view(session, user_id, settings, gateways=gateways)
    await session.commit()
    gateway = gateways.get(view.payment_gateway or "")
    return render(
        request,
        "usage.html",
        status_code=status_code,
        summary=usage.summary,
        counters=_counters(usage.summary),
        history=usage.history,
        labels=COUNTER_LABELS,
        limit_labels=LIMIT_LABELS,
        billing=view,
        running=billing.is_running(view),
        # Only what the subscription's gateway can do is offered.
        changes_at_period_end=bool(gateway and gateway.changes_at_period_end),
        undoes_cancel=bool(gateway and gateway.undoes_cancel_at_period_end),
        gateway_labels=GATEWAY_LABELS,
        money=money,
        notice=notice,
        error=error,
    )


@router.get("/usage", response_class=HTMLResponse)
async def usage_page(
    request: Request,
    user_id: WebUser,
    session: SessionDep,
    settings: SettingsDep,
    gateways: GatewaysDep,
    notice: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    return await _usage_page(
        request, session, settings, gateways, user_id, notice=NOTICES.get(notice or "")
    )


@dataclass(frozen=True)
class PlanForm:
    """What every plan form needs: its change runs, then a 303 where the change says, or
    the page again with the error."""

    request: Request
    user_id: uuid.UUID
    session: AsyncSession
    settings: Settings
    gateways: Mapping[str, BillingGateway]

    async def run(self, change: Callable[[], Awaitable[str]]) -> HTMLResponse | RedirectResponse:
        try:
            location = await change()
        except DeskpilotError as exc:
            await self.session.rollback()
            return await _usage_page(
                self.request, self.session, self.settings, self.gateways, self.user_id,
                error=_sentence(exc.message), status_code=status_of(exc),
            )  # fmt: skip
        await self.session.commit()
        return RedirectResponse(location, status_code=303)


def _plan_form(
    request: Request,
    user_id: CsrfProtected,
    session: SessionDep,
    settings: SettingsDep,
    gateways: GatewaysDep,
) -> PlanForm:
    return PlanForm(request, user_id, session, settings, gateways)


PlanFormDep = Annotated[PlanForm, Depends(_plan_form)]


def _plan(value: str) -> PlanType:
    try:
        return PlanType(value)
    except ValueError as exc:
        raise Invalid(f"{value!r} is not a plan") from exc


@router.post("/billing/checkout", response_model=None)
async def checkout_form(
    form: PlanFormDep,
    plan: Annotated[str, Form(max_length=20)],
    gateway: Annotated[str, Form(max_length=20)],
) -> HTMLResponse | RedirectResponse:
    async def change() -> str:
        user = await form.session.get(User, form.user_id)
        assert user is not None  # the session's own user
        checkout = await billing.start_checkout(
            form.session,
            user,
            _plan(plan),
            gateway,
            form.gateways,
            return_url(form.settings, gateway),
        )
        return checkout.url  # the gateway's payment page

    return await form.run(change)


@router.post("/billing/change", response_model=None)
async def change_form(
    form: PlanFormDep,
    plan: Annotated[str, Form(max_length=20)],
    when: Annotated[str, Form(max_length=20)] = "now",
) -> HTMLResponse | RedirectResponse:
    async def change() -> str:
        if when not in ("now", "period_end"):
            raise Invalid(f"{when!r} is not a time for a plan change: now or period_end")
        timing: When = "period_end" if when == "period_end" else "now"
        await billing.change_plan(
            form.session, form.user_id, _plan(plan), timing, form.gateways, form.settings
        )
        return "/usage?notice=changed#plan"

    return await form.run(change)


@router.post("/billing/cancel", response_model=None)
async def cancel_form(
    form: PlanFormDep, at_period_end: Annotated[str, Form(max_length=10)] = "true"
) -> HTMLResponse | RedirectResponse:
    async def change() -> str:
        later = at_period_end.lower() in {"1", "true", "on", "yes"}
        await billing.cancel(form.session, form.user_id, later, form.gateways, form.settings)
        return "/usage?notice=cancelled#plan"

    return await form.run(change)


@router.post("/billing/resume", response_model=None)
async def resume_form(form: PlanFormDep) -> HTMLResponse | RedirectResponse:
    async def change() -> str:
        await billing.resume(form.session, form.user_id, form.gateways, form.settings)
        return "/usage?notice=resumed#plan"

    return await form.run(change)


@router.get("/billing/razorpay/return", response_model=None)
async def razorpay_return(
    request: Request,
    user_id: WebUser,
    session: SessionDep,
    settings: SettingsDep,
    gateways: GatewaysDep,
    razorpay_payment_id: Annotated[str, Query(max_length=100)] = "",
    razorpay_subscription_id: Annotated[str, Query(max_length=100)] = "",
    razorpay_signature: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse | RedirectResponse:
    """Where Razorpay's checkout sends the buyer: its signed result is checked, and the
    page says the plan is being activated (the webhook activates it); nothing changes here."""
    try:
        await billing.confirm_razorpay_return(
            session,
            user_id,
            gateways,
            payment_id=razorpay_payment_id,
            subscription_id=razorpay_subscription_id,
            signature=razorpay_signature,
        )
    except Invalid as exc:
        return await _usage_page(
            request, session, settings, gateways, user_id,
            error=_sentence(exc.message), status_code=400,
        )  # fmt: skip
    return RedirectResponse("/usage?notice=payment_received", status_code=303)
