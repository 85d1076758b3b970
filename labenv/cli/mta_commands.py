"""Commands that run the lab MTA outside containers."""

COMMANDS: list = []
