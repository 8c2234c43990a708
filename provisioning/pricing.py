"""What a server costs: the Droplet's price, and weekly backups at 20% of it (DigitalOcean's pricing)."""

from decimal import Decimal

BACKUPS_SHARE = Decimal("0.20")
CENT = Decimal("0.01")


def monthly_cost(price_monthly, backups: bool) -> Decimal | None:
    if price_monthly is None:
        return None
    price = Decimal(str(price_monthly))
    return (price * (1 + BACKUPS_SHARE) if backups else price).quantize(CENT)


def backups_price(price_monthly) -> Decimal | None:
    """What weekly backups add to the month."""
    if price_monthly is None:
        return None
    return (Decimal(str(price_monthly)) * BACKUPS_SHARE).quantize(CENT)
