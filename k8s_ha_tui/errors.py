"""The one exception type a user may see: a clear, one-line message and an exit code."""


class UserError(Exception):
    """Bad input or an impossible request. The CLI prints `error: <message>` and exits `code`."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class Refused(UserError):
    """An interlock or the cluster lock said no; the message says why. Exit 3.

    Also as data, for front ends that show it in pieces (the monitor's greyed keys): `reason`,
    short (the message when not given), and `way_out`, what makes it possible (or None)."""

    def __init__(self, message: str, reason: str | None = None, way_out: str | None = None):
        super().__init__(message, code=3)
        self.reason = reason or message
        self.way_out = way_out
