"""AliasTestMailWorkflow: sends the test email a merchant asked for to one of their aliases.

A workflow, as for account mail: the worker owns outbound mail, and a relay that is briefly
down is retried while the connections page waits for the arrival.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.alias_test_contracts import (
        ALIAS_TEST_MAIL_WORKFLOW,
        SEND_ALIAS_TEST_MAIL,
        AliasTestMailInput,
        AliasTestMailOutcome,
    )

# The page stops waiting after two minutes; a test that arrives much later proves little.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
)


@workflow.defn(name=ALIAS_TEST_MAIL_WORKFLOW)
class AliasTestMailWorkflow:
    @workflow.run
    async def run(self, data: AliasTestMailInput) -> AliasTestMailOutcome:
        return await workflow.execute_activity(
            SEND_ALIAS_TEST_MAIL,
            data,
            result_type=AliasTestMailOutcome,
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )
