"""Clients for the outside world, each behind a small port (Protocol) in ports.py."""
