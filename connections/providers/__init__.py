"""Providers a workspace can connect to. Each is one module with the same small interface:

    slug, name, summary            what the Integrations page shows
    access_key_help, secret_key_help   the two-field form's help texts
    CAPABILITIES                   [(key, label)] that probe() reports on
    validate(token) -> Account     a read-only call; raises ProviderError with a message for people
    probe(token) -> {key: bool}    cheap reads that show which read scopes work
"""

from dataclasses import dataclass

from connections.providers import digitalocean

PROVIDERS = {digitalocean.slug: digitalocean}


@dataclass
class Account:
    uuid: str
    email: str = ""
    team_uuid: str = ""
    team_name: str = ""
    droplet_limit: int | None = None


def get_provider(slug):
    return PROVIDERS[slug]


def all_providers():
    return list(PROVIDERS.values())
