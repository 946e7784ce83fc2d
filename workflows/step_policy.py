"""How workflow steps are retried and timed: shared by the message and playbook runs."""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

# Transient failures (a store or mail server down) retry with backoff for about an hour;
# the errors that retrying cannot fix arrive non-retryable (activities/errors.py) and end
# the step at once.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=40,
)
# Executing may wait on the store much longer than a step takes: a cancellation job
# (integrations/shopify/admin.py JOB_PATIENCE_SECONDS) and rate-limit waits. The attempt
# gets EXECUTE_TIMEOUT for those, and heartbeats while it waits, so a dead worker is still
# noticed after step_timeout. tests/test_exactly_once_actions.py holds the two to the waits.
EXECUTE_TIMEOUT = timedelta(minutes=5)


def execute_timeouts(step_timeout: timedelta) -> tuple[timedelta, timedelta]:
    """(start-to-close, heartbeat) timeouts of the steps that may wait long: executing in
    the store, and recording a sent reply through a database outage."""
    return max(step_timeout, EXECUTE_TIMEOUT), step_timeout
