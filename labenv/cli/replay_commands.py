"""Commands that replay scenarios and run the demo."""

COMMANDS: list = []
