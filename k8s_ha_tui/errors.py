"""The one exception type a user may see: a clear, one-line message and an exit code."""


class UserError(Exception):
    """Bad input or an impossible request. The CLI prints `error: <message>` and exits `code`."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code
