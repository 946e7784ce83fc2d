"""The merchant's view of customer-data exports made for Shopify's customers/data_request.

Shopify relays a customer's request to the merchant, who answers the customer; the
export is what deskpilot holds on that customer for that shop, ready to hand over.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from api.deps import CurrentUser, SessionDep
from api.schemas import error_responses
from kernel.errors import NotFound
from models.shopify import ComplianceExport

router = APIRouter(prefix="/api/compliance", tags=["compliance"])


class ExportSummary(BaseModel):
    id: uuid.UUID
    shop_domain: str
    data_request_id: str | None
    created_at: datetime


class ExportDetail(ExportSummary):
    data: dict[str, Any]


@router.get("/exports", response_model=list[ExportSummary], responses=error_responses(401))
async def list_exports(user_id: CurrentUser, session: SessionDep) -> list[ExportSummary]:
    rows = (
        await session.execute(
            select(ComplianceExport)
            .where(ComplianceExport.user_id == user_id)
            .order_by(ComplianceExport.created_at.desc())
            .limit(200)
        )
    ).scalars()
    return [ExportSummary.model_validate(row, from_attributes=True) for row in rows]


@router.get(
    "/exports/{export_id}", response_model=ExportDetail, responses=error_responses(401, 404, 422)
)
async def get_export(
    export_id: uuid.UUID, user_id: CurrentUser, session: SessionDep
) -> ExportDetail:
    row = (
        await session.execute(
            select(ComplianceExport).where(
                ComplianceExport.id == export_id, ComplianceExport.user_id == user_id
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("no such export")
    return ExportDetail.model_validate(row, from_attributes=True)
