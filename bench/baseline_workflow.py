"""A bare Temporal workflow of the pipeline's shape: one step, an update, three steps."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
async def noop(step: int) -> int:
    return step


@workflow.defn(name="BaselineWorkflow")
class BaselineWorkflow:
    def __init__(self) -> None:
        self._ready = False
        self._approved = False

    @workflow.run
    async def run(self) -> str:
        options = {"start_to_close_timeout": timedelta(seconds=30)}
        await workflow.execute_activity(noop, 1, **options)
        self._ready = True
        await workflow.wait_condition(lambda: self._approved)
        for step in (2, 3, 4):
            await workflow.execute_activity(noop, step, **options)
        return "done"

    @workflow.query(name="ready")
    def ready(self) -> bool:
        return self._ready

    @workflow.update(name="approve")
    async def approve(self) -> str:
        self._approved = True
        return "approved"

    @approve.validator
    def _validate(self) -> None:
        if not self._ready or self._approved:
            raise ValueError("not waiting for approval")
