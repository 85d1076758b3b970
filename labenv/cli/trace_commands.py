"""The trace command: where a delivered message really came from."""

COMMANDS: list = []
