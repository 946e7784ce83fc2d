"""Pure logic: mail parsing, threading, quoting and classification; guardrails; order rules;
plan arithmetic; playbook rules. Values in, values out: no database, no network, no Temporal.
"""
