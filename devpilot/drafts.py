"""Wizard drafts: what a user entered so far, kept in the session per workspace, so Back,
Next and a refresh lose nothing."""


class Draft:
    def __init__(self, request, name):
        self.session = request.session
        self.key = f"{name}:{request.workspace.pk}"

    @property
    def data(self):
        return self.session.get(self.key, {})

    def update(self, **values):
        self.session[self.key] = {**self.data, **values}

    def clear(self):
        self.session.pop(self.key, None)
