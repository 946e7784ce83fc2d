"""Temporal activities: thin adapters that read and write the database and call the ports.

They implement the contracts in `workflows/`, under the names those declare.
"""
