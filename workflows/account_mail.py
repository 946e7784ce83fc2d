"""AccountMailWorkflow: sends one account email (verification or password-reset link).

A workflow rather than a send inside the request: the worker owns the outbound mail, and a
relay that is briefly down is retried without the merchant waiting on the page.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.account_mail_contracts import (
        ACCOUNT_MAIL_WORKFLOW,
        SEND_ACCOUNT_MAIL,
        AccountMailInput,
        AccountMailOutcome,
    )

# A reset link expires in an hour: retrying for longer than about that sends a dead link.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=15,
)


@workflow.defn(name=ACCOUNT_MAIL_WORKFLOW)
class AccountMailWorkflow:
    @workflow.run
    async def run(self, data: AccountMailInput) -> AccountMailOutcome:
        return await workflow.execute_activity(
            SEND_ACCOUNT_MAIL,
            data,
            result_type=AccountMailOutcome,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )
