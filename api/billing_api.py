"""The merchant's plan as JSON: GET /api/billing, and the requests made of the gateway
(checkout, change of plan, cancel, resume). The usage page (api/billing_pages.py) calls the
same services (services/billing.py)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from api.billing_deps import GatewaysDep, return_url
from api.deps import CurrentUser, SessionDep, SettingsDep
from api.schemas import error_responses
from integrations.billing_gateways import BillingGateway
from kernel.enums import PlanType
from kernel.settings import Settings
from models.user import User
from services import billing
from services.billing import BillingOut, When

router = APIRouter(prefix="/api/billing", tags=["billing"])

GatewayName = Literal["razorpay", "paddle"]  # domain.billing.GATEWAYS


class CheckoutIn(BaseModel):
    plan: PlanType = Field(description="STARTER, GROWTH or PRO")
    gateway: GatewayName


class CheckoutOut(BaseModel):
    checkout_url: str  # open it in the browser: the gateway's payment page
    gateway: str


class ChangeIn(BaseModel):
    plan: PlanType = Field(description="STARTER, GROWTH or PRO")
    when: When = Field(
        default="now",
        description="now: prorated at once; period_end: at the renewal (Razorpay only)",
    )


class CancelIn(BaseModel):
    at_period_end: bool = Field(
        default=True, description="true: the plan runs until the period ends; false: at once"
    )


_NO_SUBSCRIPTION = (409, "no paid subscription to change, or the change is not possible now")
_VENDOR = (502, "the payment gateway refused or failed the request")


async def _view(
    session: AsyncSession,
    user_id: uuid.UUID,
    settings: Settings,
    gateways: Mapping[str, BillingGateway],
) -> BillingOut:
    """The plan after a change, committed with the change and its Event."""
    view = await billing.billing_view(session, user_id, settings, gateways=gateways)
    await session.commit()
    return view


@router.get("", response_model=BillingOut, responses=error_responses(401))
async def get_billing(
    user_id: CurrentUser, session: SessionDep, settings: SettingsDep, gateways: GatewaysDep
) -> BillingOut:
    """The plan, its period and state, whether it is entitled (and why not), usage against
    the plan's limits, the plans for sale with their prices per gateway."""
    return await _view(session, user_id, settings, gateways)  # a trial is stored on first read


@router.post(
    "/checkout",
    response_model=CheckoutOut,
    responses=error_responses(
        (400, "the body does not parse, the gateway is not configured, or the plan is not sold"),
        401,
        403,
        (409, "a paid subscription is running: change its plan instead"),
        422,
        _VENDOR,
    ),
)
async def post_checkout(
    body: CheckoutIn,
    user_id: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    gateways: GatewaysDep,
) -> CheckoutOut:
    """Start paying for a plan: the answer's `checkout_url` is the gateway's payment page.
    The plan changes when the gateway's webhook says the payment went through."""
    user = await session.get(User, user_id)
    assert user is not None  # the caller was just authenticated
    checkout = await billing.start_checkout(
        session, user, body.plan, body.gateway, gateways, return_url(settings, body.gateway)
    )
    await session.commit()
    return CheckoutOut(checkout_url=checkout.url, gateway=checkout.gateway)


CHANGE_ERRORS = error_responses(
    (400, "the body does not parse, the plan is not sold, or the gateway cannot wait for the "
     "period's end (not_at_period_end)"), 401, 403, _NO_SUBSCRIPTION, 422,
    _VENDOR,
)  # fmt: skip


@router.post("/change", response_model=BillingOut, responses=CHANGE_ERRORS)
async def post_change(
    body: ChangeIn,
    user_id: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    gateways: GatewaysDep,
) -> BillingOut:
    """Upgrade or downgrade the running subscription, at once or at the period's end
    (`scheduled_plan` shows it until then)."""
    await billing.change_plan(session, user_id, body.plan, body.when, gateways, settings)
    return await _view(session, user_id, settings, gateways)


@router.post(
    "/cancel",
    response_model=BillingOut,
    responses=error_responses(400, 401, 403, _NO_SUBSCRIPTION, 422, _VENDOR),
)
async def post_cancel(
    user_id: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    gateways: GatewaysDep,
    body: CancelIn | None = None,
) -> BillingOut:
    """Cancel at the period's end (still entitled until then) or at once."""
    at_period_end = (body or CancelIn()).at_period_end
    await billing.cancel(session, user_id, at_period_end, gateways, settings)
    return await _view(session, user_id, settings, gateways)


@router.post(
    "/resume",
    response_model=BillingOut,
    responses=error_responses(
        401, 403, (409, "no paid subscription, or it is not set to end"), _VENDOR
    ),
)
async def post_resume(
    user_id: CurrentUser, session: SessionDep, settings: SettingsDep, gateways: GatewaysDep
) -> BillingOut:
    """Keep a subscription that was set to end with its period."""
    await billing.resume(session, user_id, gateways, settings)
    return await _view(session, user_id, settings, gateways)
