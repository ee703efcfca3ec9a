"""The one exception type a user may see: a clear, one-line message and an exit code."""


class UserError(Exception):
    """Bad input or an impossible request. The CLI prints `error: <message>` and exits `code`."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class Refused(UserError):
    """An interlock or the cluster lock said no; the message says why. Exit 3."""

    def __init__(self, message: str):
        super().__init__(message, code=3)
