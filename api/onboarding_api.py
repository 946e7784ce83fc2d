"""The first-run checklist as JSON: the steps the inbox shows until they are all done."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep
from api.schemas import error_responses
from services.onboarding import OnboardingOut, onboarding_for

router = APIRouter(prefix="/api", tags=["onboarding"])


@router.get("/onboarding", response_model=OnboardingOut, responses=error_responses(401))
async def get_onboarding(user_id: CurrentUser, session: SessionDep) -> OnboardingOut:
    """Each setup step, whether it is done (read from the account's rows) and where."""
    return await onboarding_for(session, user_id)
