"""Objects for the isolation test: one factory per uuid URL kwarg.

Each factory takes a workspace (and its owner) and returns an object of that workspace
whose pk fills the kwarg. tests/test_isolation.py walks every workspace URL with ids of
workspace A as a member of workspace B and as an anonymous user; a uuid kwarg without a
factory here fails that test, so every new URL is covered.
"""

FACTORIES = {}


def factory(*kwarg_names):
    def register(fn):
        for name in kwarg_names:
            FACTORIES[name] = fn
        return fn

    return register
