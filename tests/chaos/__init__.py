"""Chaos cases: one fault each (a killed worker, Temporal or PostgreSQL restarted, a failing
model, a mail relay away, a storm of duplicate deliveries, approvals at the plan's limit, a
poison message) against real processes, with the counts each case prints."""
