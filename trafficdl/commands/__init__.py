"""CLI command modules, one per capability, each with `register(app)`."""
