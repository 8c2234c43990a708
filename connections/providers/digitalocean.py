"""DigitalOcean: a personal access token, validated with GET /v2/account."""

from django.views.decorators.debug import sensitive_variables

from connections import digitalocean as api
from connections.models import Status
from connections.providers.errors import ProviderError

slug = "digital-ocean"
name = "DigitalOcean"
summary = "Provision and manage Droplets, and sync secrets into App Platform apps."
access_key_help = "A label for this token, e.g. devpilot-integration. Unique in the workspace."
secret_key_help = (
    "A personal access token (starts with dop_v1_) from DigitalOcean > API > Personal access tokens, "
    "with Read and Write scope. It is stored encrypted and never shown again."
)
CAPABILITIES = [
    ("apps", "Read App Platform apps", "/v2/apps"),
    ("droplets", "Read Droplets", "/v2/droplets"),
    ("regions", "Read regions", "/v2/regions"),
    ("sizes", "Read sizes", "/v2/sizes"),
]


def _explain(error):
    if isinstance(error, api.InvalidToken):
        return ProviderError(
            "DigitalOcean rejected this token: it is wrong, expired or revoked. Generate a new one under "
            "API > Personal access tokens and paste it here.", Status.INVALID)
    if isinstance(error, api.MissingScope):
        return ProviderError(
            "This token cannot read the account (it needs the account:read scope). Create it with Read and "
            "Write scope.", Status.INVALID)
    if isinstance(error, api.RateLimited):
        return ProviderError(
            f"DigitalOcean is rate limiting this token; try again after {error.reset_at:%H:%M:%S} UTC.",
            Status.RATE_LIMITED)
    return ProviderError(
        f"DigitalOcean could not be reached to check the token ({error.message}) Nothing was saved; try again.",
        Status.UNREACHABLE)


@sensitive_variables("token")
def validate(token):
    from connections.providers import Account

    try:
        account = api.DigitalOceanClient(token).get_account()
    except api.DigitalOceanError as e:
        raise _explain(e) from None
    team = account.get("team") or {}
    return Account(
        uuid=account.get("uuid", ""), email=account.get("email", ""), team_uuid=team.get("uuid", ""),
        team_name=team.get("name", ""), droplet_limit=account.get("droplet_limit"),
    )


@sensitive_variables("token")
def probe(token):
    """Which read scopes work. Write scopes cannot be checked without side effects."""
    client = api.DigitalOceanClient(token)
    results = {}
    for key, _label, path in CAPABILITIES:
        try:
            client.get(path, params={"per_page": 1})
            results[key] = True
        except api.MissingScope:
            results[key] = False
        except api.DigitalOceanError:
            results[key] = None  # unknown: unreachable or rate limited right now
    return results
