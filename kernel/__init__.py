"""The bottom layer: settings, logging, errors, the HTTP client factory, enums and value types.

It imports nothing of ours, so anything may import it.
"""
