"""deskpilot: the process-level pieces (settings, CLI, embedded services, logging)."""
