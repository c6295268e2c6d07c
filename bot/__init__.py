"""The Slack side of drop-caller: the slash command, the confirmation card and its buttons."""
