"""The use cases the entry points share (API routes and pages, activities, the SMTP
receiver, the CLI): ingest, starting and signalling workflows, decisions, accounts, usage.
"""
