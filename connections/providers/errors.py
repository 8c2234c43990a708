from devpilot.errors import Invalid


class ProviderError(Invalid):
    """Validation failed. `message` tells the user what to do; `connection_status` is a Connection.Status value."""

    def __init__(self, message, status):
        super().__init__(message)
        self.connection_status = status
