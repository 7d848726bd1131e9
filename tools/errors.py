"""The one exception type for mistakes a user can fix; the CLI prints it as a single line."""


class RearagError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""
