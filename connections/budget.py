"""Each DigitalOcean token's call budget, shared through the database by every worker and machine.

Policy (the client in connections/digitalocean.py applies it before every request, retries included):

- DigitalOcean allows 250 calls a minute and 5,000 an hour per token. Devpilot stays under
  DEVPILOT_DO_CALLS_PER_MINUTE (240) in any 60 seconds and DEVPILOT_DO_CALLS_PER_HOUR (4,800) in
  any hour, counted across every process that uses the token.
- Calls are counted per token in 10-second slots (CallBucket). The key is the SHA-256 of the token,
  never the token: connections holding the same token share one budget.
- Taking a call is one conditional UPDATE of the current slot (count + 1 only while the slot plus the
  slots before it stay under both limits, and DigitalOcean has not asked us to hold off). The first
  call of a slot inserts its row (a race for it ends in IntegrityError and the UPDATE again).
- The minute window is the current slot and the 6 before it (60-70 s) and the hour window 361 slots:
  any 60-s window lies within 7 slots, so the limit holds for every 60 s, not only whole minutes.
  Sustained, that is about 205 calls a minute, far above the hour limit's 80.
- DigitalOcean's word still counts: a 429, or `ratelimit-remaining` at 10 or fewer, is kept as a hold
  (RateLimitState) until its reset, so calls made with the token outside Devpilot are heeded too.
  While DigitalOcean says a few calls are left, the client spreads them over the rest of its window.
- A refused call says when to try again (`Refusal.reset_at`). The client waits when that is at most
  MAX_RATE_WAIT (5 s) away and a web request's time budget allows; otherwise it raises RateLimited,
  which the sync engine turns into a retry at reset_at and provisioning steps into a wait.
- Slots older than two hours are deleted once a minute by whichever process opens that minute's
  first slot for a token.
- Cost: one SQL query per call; the first call of a slot and refused calls take three or four.
- Clocks: slots come from each machine's clock, so machines must run NTP; a skew of a few seconds
  is within the minute window's 10-s margin.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.db.models.lookups import LessThan
from django.utils import timezone

from connections.models import SLOT_SECONDS, CallBucket, RateLimitState
from devpilot.models import hash_token

MINUTE_SLOTS = 7  # the current slot and the 6 before: every 60-s window fits in them
HOUR_SLOTS = 361
KEEP_SLOTS = 720  # two hours
PRUNE_EVERY = 6  # slots: once a minute
# DigitalOcean says this few calls are left: heed it (hold off, or spread the rest).
LOW_REMAINING = 10


def rate_key_for(token: str) -> str:
    """The budget's key for a token: its hash as API tokens are stored, so the token itself never is."""
    return hash_token(token)


def per_minute() -> int:
    return max(1, settings.DEVPILOT_DO_CALLS_PER_MINUTE)


def per_hour() -> int:
    return max(1, settings.DEVPILOT_DO_CALLS_PER_HOUR)


def _slot_now() -> int:
    return int(time.time()) // SLOT_SECONDS


def _slot_start(slot: int) -> datetime:
    return datetime.fromtimestamp(slot * SLOT_SECONDS, tz=UTC)


@dataclass(frozen=True)
class Refusal:
    """No call may go now; try again at reset_at. `held`: DigitalOcean's hold refused it, which still
    allows `spare` calls (the client spreads them out)."""

    reset_at: datetime
    message: str
    held: bool = False
    spare: int = 0

    @property
    def wait(self) -> float:
        return max(0.0, self.reset_at.timestamp() - time.time())  # the clock slots are counted by


@dataclass(frozen=True)
class Usage:
    last_minute: int
    last_hour: int
    per_minute: int
    per_hour: int

    @property
    def summary(self) -> str:
        return (f"{self.last_hour:,} of {self.per_hour:,} in the last hour ({self.last_minute:,} of "
                f"{self.per_minute:,} in the last minute)")


class CallBudget:
    """One token's budget. `take()` before each request; `observe()` or `exhaust()` after its answer."""

    def __init__(self, rate_key: str):
        self.rate_key = rate_key
        self._held = False  # the last take met DigitalOcean's hold: its next answer may lift it

    def take(self, *, heed_hold: bool = True) -> Refusal | None:
        """Count one call now, or say why not and until when. `heed_hold=False`: the hold was waited out."""
        slot = _slot_now()
        for _ in range(3):  # a lost race to open the slot, or a hold that just ended: the UPDATE again
            if self._increment(slot, heed_hold):
                return None
            refusal, slot_exists = self._explain(slot, heed_hold)
            if refusal is not None:
                return refusal
            if not slot_exists and self._open(slot):
                return None
        return Refusal(timezone.now() + timedelta(seconds=1), "DigitalOcean's call budget is busy; trying again.")

    def _increment(self, slot: int, heed_hold: bool) -> bool:
        """The one query of a normal call: +1 on the current slot while both windows stay under their limits.

        The slot's own count is read from the row being updated, so concurrent takers queue on its row lock
        and each sees the others' calls (earlier slots no longer change)."""
        earlier = CallBucket.objects.filter(rate_key=self.rate_key, slot__lt=slot)
        conditions = [
            LessThan(F("calls") + _sum(earlier.filter(slot__gt=slot - MINUTE_SLOTS)), per_minute()),
            LessThan(F("calls") + _sum(earlier.filter(slot__gt=slot - HOUR_SLOTS)), per_hour()),
        ]
        if heed_hold:
            conditions.append(~Exists(_holds(self.rate_key)))
        rows = CallBucket.objects.filter(*conditions, rate_key=self.rate_key, slot=slot)
        return rows.update(calls=F("calls") + 1) == 1

    def _open(self, slot: int) -> bool:
        """The first call of a slot inserts its row (the checks just passed); False if another process was first."""
        try:
            with transaction.atomic():
                CallBucket.objects.create(rate_key=self.rate_key, slot=slot, calls=1)
        except IntegrityError:
            return False
        if slot % PRUNE_EVERY == 0:
            CallBucket.objects.filter(slot__lt=slot - KEEP_SLOTS).delete()
        return True

    def _explain(self, slot: int, heed_hold: bool) -> tuple[Refusal | None, bool]:
        """Why the UPDATE changed nothing: a refusal, or none (the slot's row is missing or a hold just ended)."""
        hold = _holds(self.rate_key).first() if heed_hold else None
        self._held = hold is not None
        if hold is not None:
            return Refusal(hold.reset_at, f"DigitalOcean's rate limit for this token is used up until "
                           f"{hold.reset_at:%H:%M:%S} UTC.", held=True, spare=hold.remaining), True
        calls = dict(CallBucket.objects.filter(rate_key=self.rate_key, slot__gt=slot - HOUR_SLOTS,
                                               slot__lte=slot).values_list("slot", "calls"))
        spent = [(reset, f"{limit:,} DigitalOcean calls {span}") for reset, limit, span in (
            (_frees_at(calls, slot, MINUTE_SLOTS, per_minute()), per_minute(), "a minute"),
            (_frees_at(calls, slot, HOUR_SLOTS, per_hour()), per_hour(), "an hour")) if reset is not None]
        if not spent:
            return None, slot in calls
        reset_slot, what = max(spent)
        reset_at = _slot_start(reset_slot)
        return Refusal(reset_at, f"Devpilot's budget of {what} for this token is used up until "
                       f"{reset_at:%H:%M:%S} UTC."), True

    def observe(self, headers) -> None:
        """DigitalOcean's own count from an answer: kept only when few calls are left (no write per call)."""
        remaining, reset = headers.get("ratelimit-remaining"), headers.get("ratelimit-reset")
        if not (remaining and remaining.strip().isdigit() and reset and reset.strip().isdigit()):
            return
        low = int(remaining) <= LOW_REMAINING
        if low or self._held:  # after a hold, a plentiful answer lifts it
            self._hold(int(remaining), datetime.fromtimestamp(int(reset), tz=UTC))
            self._held = low

    def exhaust(self, reset_at: datetime) -> None:
        """A 429: every process holds off until DigitalOcean's reset."""
        self._hold(0, reset_at)
        self._held = True

    def _hold(self, remaining: int, reset_at: datetime) -> None:
        values = {"remaining": remaining, "reset_at": reset_at, "updated_at": timezone.now()}
        if RateLimitState.objects.filter(rate_key=self.rate_key).update(**values):
            return
        try:
            with transaction.atomic():
                RateLimitState.objects.create(rate_key=self.rate_key, **values)
        except IntegrityError:  # another process wrote it first
            RateLimitState.objects.filter(rate_key=self.rate_key).update(**values)


def _sum(buckets: QuerySet[CallBucket]) -> Coalesce:
    """The calls in these buckets, as a subquery (0 when there are none)."""
    total = buckets.order_by().values("rate_key").annotate(total=Sum("calls")).values("total")
    return Coalesce(Subquery(total), 0)


def _holds(rate_key: str) -> QuerySet[RateLimitState]:
    return RateLimitState.objects.filter(rate_key=rate_key, remaining__lte=LOW_REMAINING, reset_at__gt=timezone.now())


def _frees_at(calls: dict[int, int], slot: int, span: int, limit: int) -> int | None:
    """The first slot whose window (it and the span - 1 before) holds fewer than `limit` calls; None: this one."""
    first = slot - span + 1
    used = sum(calls.get(s, 0) for s in range(first, slot + 1))
    if used < limit:
        return None
    for oldest in range(first, slot + 1):  # the window moves on past its oldest slots one by one
        used -= calls.get(oldest, 0)
        if used < limit:
            return oldest + span
    return slot + span


def usage(rate_key: str) -> Usage:
    """Calls made with a token in the last minute and the last hour (one query), for the connection page."""
    slot = _slot_now()
    minute = hour = 0
    rows = CallBucket.objects.filter(rate_key=rate_key, slot__gt=slot - 360, slot__lte=slot)
    for bucket_slot, count in rows.values_list("slot", "calls"):
        hour += count
        minute += count if bucket_slot > slot - 6 else 0
    return Usage(minute, hour, per_minute(), per_hour())
