"""Commands that build, start, inspect and stop a lab."""

COMMANDS: list = []
