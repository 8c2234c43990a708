"""Server metrics: stored from heartbeats, downsampled so storage stays bounded, drawn as SVG.

Tiers (MetricSample.resolution), per server:
  raw samples (0)        at most one per 55 s, kept 2 hours  -> at most 131 rows
  5-minute averages (300)                    kept 2 days     -> at most 577 rows
  1-hour averages (3600)                     kept 31 days    -> at most 745 rows
so a server never holds more than ROW_BOUND (1,453) rows, whatever its agent sends.
`compact()` (scheduled every 5 minutes) averages finished buckets into the next tier and
deletes what is past its tier's retention.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from pydantic import Field

from devpilot.schemas import Strict
from provisioning.models import MetricSample, Server

RAW, FIVE_MINUTES, HOUR = 0, 300, 3600
MIN_RAW_SPACING = timedelta(seconds=55)
RETENTION = {RAW: timedelta(hours=2), FIVE_MINUTES: timedelta(days=2), HOUR: timedelta(days=31)}
SOURCE = {FIVE_MINUTES: RAW, HOUR: FIVE_MINUTES}  # each average tier is made from the tier below
ROW_BOUND = (int(RETENTION[RAW] / MIN_RAW_SPACING) + 1 + int(RETENTION[FIVE_MINUTES].total_seconds()) // FIVE_MINUTES + 1
             + int(RETENTION[HOUR].total_seconds()) // HOUR + 1)
FIELDS = ("cpu_percent", "memory_used", "memory_total", "disk_used", "disk_total", "load1", "load5", "load15")
INTEGER_FIELDS = {"memory_used", "memory_total", "disk_used", "disk_total"}


class Metrics(Strict):
    """What a heartbeat reports (the agent reads /proc and statvfs("/"))."""

    cpuPercent: float = Field(ge=0, le=100)
    memoryUsedBytes: int = Field(ge=0)
    memoryTotalBytes: int = Field(gt=0)
    diskUsedBytes: int = Field(ge=0)
    diskTotalBytes: int = Field(gt=0)
    load1: float = Field(ge=0, le=100000)
    load5: float = Field(ge=0, le=100000)
    load15: float = Field(ge=0, le=100000)
    uptimeSeconds: int = Field(ge=0)


def record(server: Server, metrics: Metrics, at: datetime | None = None) -> MetricSample | None:
    """Stores a raw sample, unless the last one is under 55 s old (a chatty agent cannot grow storage)."""
    at = at or timezone.now()
    last = MetricSample.objects.filter(server=server, resolution=RAW).aggregate(last=Max("at"))["last"]
    if last is not None and at - last < MIN_RAW_SPACING:
        return None
    MetricSample.objects.filter(server=server, resolution=RAW, at__lt=at - RETENTION[RAW]).delete()
    return MetricSample.objects.create(
        server=server, resolution=RAW, at=at, cpu_percent=metrics.cpuPercent,
        memory_used=min(metrics.memoryUsedBytes, metrics.memoryTotalBytes), memory_total=metrics.memoryTotalBytes,
        disk_used=min(metrics.diskUsedBytes, metrics.diskTotalBytes), disk_total=metrics.diskTotalBytes,
        load1=metrics.load1, load5=metrics.load5, load15=metrics.load15)


def bucket_start(at: datetime, width: int) -> datetime:
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % width, tz=at.tzinfo)


def _average(rows: list[MetricSample]) -> dict:
    averages = {}
    for field in FIELDS:
        mean = sum(getattr(r, field) for r in rows) / len(rows)
        averages[field] = round(mean) if field in INTEGER_FIELDS else mean
    return averages


def _downsample(server: Server, tier: int, now: datetime) -> int:
    """Averages the finished buckets of the tier below that this tier does not hold yet."""
    done_until = MetricSample.objects.filter(server=server, resolution=tier).aggregate(last=Max("at"))["last"]
    rows = MetricSample.objects.filter(server=server, resolution=SOURCE[tier], at__lt=bucket_start(now, tier))
    if done_until is not None:
        rows = rows.filter(at__gte=done_until + timedelta(seconds=tier))
    buckets: dict[datetime, list[MetricSample]] = defaultdict(list)
    for row in rows:
        buckets[bucket_start(row.at, tier)].append(row)
    MetricSample.objects.bulk_create(MetricSample(server=server, resolution=tier, at=start, **_average(members))
                                     for start, members in sorted(buckets.items()))
    return len(buckets)


def compact_server(server: Server, now: datetime | None = None) -> None:
    now = now or timezone.now()
    with transaction.atomic():
        _downsample(server, FIVE_MINUTES, now)
        _downsample(server, HOUR, now)
        for tier, kept in RETENTION.items():
            MetricSample.objects.filter(server=server, resolution=tier, at__lt=now - kept).delete()


def compact() -> int:
    """Scheduled every 5 minutes (devpilot/schedules.py): every server with samples."""
    server_ids = MetricSample.objects.values_list("server_id", flat=True).distinct()
    servers = list(Server.objects.filter(pk__in=server_ids))
    for server in servers:
        compact_server(server)
    return len(servers)


# --- Charts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    key: str
    label: str  # "the last hour"
    span: timedelta
    tier: int


RANGES = {r.key: r for r in (Range("hour", "the last hour", timedelta(hours=1), RAW),
                             Range("day", "the last day", timedelta(days=1), FIVE_MINUTES),
                             Range("month", "the last 30 days", timedelta(days=30), HOUR))}
WIDTH, HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 360, 150, 40, 6, 10, 22


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    unit: str
    paths: list[str]  # SVG path data, one per run of samples without a gap
    y_max: float
    y_ticks: list[tuple[float, str]]  # (y pixel, label)
    x_labels: list[tuple[float, str]]
    summary: str
    has_data: bool


def _percent(used: float, total: float) -> float:
    return 100 * used / total if total else 0.0


SERIES = {  # chart key: (title, unit, value of a sample)
    "cpu": ("CPU", "%", lambda s: s.cpu_percent),
    "memory": ("Memory", "%", lambda s: _percent(s.memory_used, s.memory_total)),
    "disk": ("Disk /", "%", lambda s: _percent(s.disk_used, s.disk_total)),
    "load": ("Load (1 minute)", "", lambda s: s.load1),
}


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def _summary(key: str, title: str, unit: str, values: list[float], latest: MetricSample, span: str) -> str:
    text = (f"{title} over {span}: latest {values[-1]:.1f}{unit}, average {sum(values) / len(values):.1f}{unit}, "
            f"peak {max(values):.1f}{unit}.")
    if key == "memory":
        text += f" {_gib(latest.memory_used)} of {_gib(latest.memory_total)} in use now."
    elif key == "disk":
        text += f" {_gib(latest.disk_used)} of {_gib(latest.disk_total)} in use now."
    elif key == "load":
        text += f" Load 1/5/15 now: {latest.load1:.2f} / {latest.load5:.2f} / {latest.load15:.2f}."
    return text


def series(server: Server, range_key: str, now: datetime | None = None) -> list[MetricSample]:
    now = now or timezone.now()
    chosen = RANGES[range_key]
    return list(MetricSample.objects.filter(server=server, resolution=chosen.tier, at__gte=now - chosen.span,
                                            at__lte=now).order_by("at"))


def charts(server: Server, range_key: str, now: datetime | None = None) -> list[Chart]:
    now = now or timezone.now()
    chosen = RANGES[range_key]
    samples = series(server, range_key, now)
    start = now - chosen.span
    gap = timedelta(seconds=max(chosen.tier, 60) * 3)  # a break in the line: the agent was not reporting
    drawn = []
    for key, (title, unit, value) in SERIES.items():
        values = [value(s) for s in samples]
        y_max = 100.0 if unit == "%" else max([1.0, *values]) * 1.1
        drawn.append(Chart(key, title, unit, _paths(samples, values, start, chosen.span, y_max, gap), y_max,
                           _y_ticks(y_max, unit), _x_labels(start, chosen),
                           _summary(key, title, unit, values, samples[-1], chosen.label) if samples else
                           f"{title}: no data for {chosen.label} yet.", bool(samples)))
    return drawn


def _x(at: datetime, start: datetime, span: timedelta) -> float:
    return PAD_LEFT + (WIDTH - PAD_LEFT - PAD_RIGHT) * ((at - start) / span)


def _y(value: float, y_max: float) -> float:
    return PAD_TOP + (HEIGHT - PAD_TOP - PAD_BOTTOM) * (1 - min(value, y_max) / y_max)


def _paths(samples: list[MetricSample], values: list[float], start: datetime, span: timedelta, y_max: float,
           gap: timedelta) -> list[str]:
    paths: list[str] = []
    current: list[str] = []
    previous = None
    for sample, value in zip(samples, values, strict=True):
        if previous is not None and sample.at - previous > gap and current:
            paths.append(" ".join(current))
            current = []
        point = f"{_x(sample.at, start, span):.1f} {_y(value, y_max):.1f}"
        current.append(("M " if not current else "L ") + point)
        previous = sample.at
    if current:
        if len(current) == 1:  # a lone sample: a short dash, so it shows
            current.append("h 2")
        paths.append(" ".join(current))
    return paths


def _y_ticks(y_max: float, unit: str) -> list[tuple[float, str]]:
    ticks = [0.0, y_max / 2, y_max]
    return [(_y(t, y_max), f"{t:.0f}{unit}" if unit else f"{t:.1f}") for t in ticks]


def _x_labels(start: datetime, chosen: Range) -> list[tuple[float, str]]:
    local = timezone.localtime
    fmt = "%H:%M" if chosen.span <= timedelta(days=1) else "%b %d"
    marks = [start + chosen.span * i / 4 for i in range(5)]
    return [(_x(m, start, chosen.span), local(m).strftime(fmt)) for m in marks]
