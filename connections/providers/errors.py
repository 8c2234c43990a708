class ProviderError(Exception):
    """Validation failed. `message` tells the user what to do; `status` is a Connection.Status value."""

    def __init__(self, message, status):
        super().__init__(message)
        self.message = message
        self.status = status
