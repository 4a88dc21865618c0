"""What storing and serving recordings costs on Cloudflare R2 and AWS S3, per storage class.

Django-free arithmetic over list prices: the policy check (does a storage class save money for this
policy?), the cost forecast, the dashboard and the storage-class benchmark all price through here.

List prices as published on 2025-06-01 (USD; AWS S3 us-east-1, first 50 TB tier; Cloudflare R2). Each is
a setting of the same name (``VICIREC_PRICE_*``), so a customer with other prices or another region
overrides them without a code change. Storage is billed per GB-month where a GB is 2^30 bytes (both
providers), requests per request (the defaults are the per-million or per-thousand prices divided out).

* R2 Standard $0.015/GB-month; R2 Infrequent Access $0.01/GB-month, $0.01/GB retrieved, 30-day minimum.
  Class A (writes, copies) $4.50/million, class B (reads) $0.36/million; IA: $9.00 and $0.90. No egress.
* S3 Standard $0.023/GB-month; Standard-IA $0.0125 (+$0.01/GB retrieved, 30-day minimum); Glacier
  Instant Retrieval $0.004 (+$0.03/GB retrieved, 90-day minimum). Both IA classes bill every object as at
  least 128 KB. PUT/COPY $0.005 per 1000 (Standard-IA $0.01, Glacier IR $0.02); GET $0.0004 per 1000
  (Standard-IA $0.001, Glacier IR $0.01). Egress to the internet $0.09/GB.

The storage class is sent as the S3 ``StorageClass`` header, which R2 also reads: ``STANDARD`` and
``STANDARD_IA`` (R2's Infrequent Access). R2 has no Glacier class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

GIB = 1024**3
DAYS_PER_MONTH = 30  # the providers prorate a GB-month over the days of the month; 30 keeps it simple
MIN_BILLABLE_OBJECT = 128 * 1024

STANDARD, STANDARD_IA, GLACIER_IR = "STANDARD", "STANDARD_IA", "GLACIER_IR"
CLASSES = (STANDARD, STANDARD_IA, GLACIER_IR)
PROVIDERS = ("r2", "s3")

PRICE_DEFAULTS: dict[str, float] = {
    # storage, USD per GB-month
    "VICIREC_PRICE_R2_GB_MONTH": 0.015,
    "VICIREC_PRICE_R2_IA_GB_MONTH": 0.01,
    "VICIREC_PRICE_S3_STANDARD_GB_MONTH": 0.023,
    "VICIREC_PRICE_S3_STANDARD_IA_GB_MONTH": 0.0125,
    "VICIREC_PRICE_S3_GLACIER_IR_GB_MONTH": 0.004,
    # retrieval, USD per GB read
    "VICIREC_PRICE_R2_IA_RETRIEVAL_GB": 0.01,
    "VICIREC_PRICE_S3_STANDARD_IA_RETRIEVAL_GB": 0.01,
    "VICIREC_PRICE_S3_GLACIER_IR_RETRIEVAL_GB": 0.03,
    # requests, USD per request
    "VICIREC_PRICE_R2_WRITE": 4.50 / 1_000_000,
    "VICIREC_PRICE_R2_READ": 0.36 / 1_000_000,
    "VICIREC_PRICE_R2_IA_WRITE": 9.00 / 1_000_000,
    "VICIREC_PRICE_R2_IA_READ": 0.90 / 1_000_000,
    "VICIREC_PRICE_S3_STANDARD_WRITE": 0.005 / 1000,
    "VICIREC_PRICE_S3_STANDARD_READ": 0.0004 / 1000,
    "VICIREC_PRICE_S3_STANDARD_IA_WRITE": 0.01 / 1000,
    "VICIREC_PRICE_S3_STANDARD_IA_READ": 0.001 / 1000,
    "VICIREC_PRICE_S3_GLACIER_IR_WRITE": 0.02 / 1000,
    "VICIREC_PRICE_S3_GLACIER_IR_READ": 0.01 / 1000,
    # egress to the internet, USD per GB
    "VICIREC_PRICE_R2_EGRESS_GB": 0.0,
    "VICIREC_PRICE_S3_EGRESS_GB": 0.09,
}

# (provider, class) -> (label, price-name stem, minimum days, minimum billable bytes)
_OFFERS: dict[tuple[str, str], tuple[str, str, int, int]] = {
    ("r2", STANDARD): ("Cloudflare R2 Standard", "R2", 0, 0),
    ("r2", STANDARD_IA): ("Cloudflare R2 Infrequent Access", "R2_IA", 30, 0),
    ("s3", STANDARD): ("AWS S3 Standard", "S3_STANDARD", 0, 0),
    ("s3", STANDARD_IA): ("AWS S3 Standard-IA", "S3_STANDARD_IA", 30, MIN_BILLABLE_OBJECT),
    ("s3", GLACIER_IR): ("AWS S3 Glacier Instant Retrieval", "S3_GLACIER_IR", 90, MIN_BILLABLE_OBJECT),
}


@dataclass(frozen=True)
class Offer:
    """One storage class at one provider, with the prices in force."""

    provider: str
    storage_class: str
    label: str
    gb_month: float
    retrieval_gb: float
    write: float
    read: float
    egress_gb: float
    min_days: int
    min_bytes: int


def offer(provider: str, storage_class: str, prices: Callable[[str], float] | None = None) -> Offer | None:
    """The offer for ``storage_class`` at ``provider`` (None if the provider has no such class).

    ``prices(name)`` gives a price by its setting name; by default the list prices above.
    """
    found = _OFFERS.get((provider, storage_class))
    if found is None:
        return None
    label, stem, min_days, min_bytes = found
    price = prices or PRICE_DEFAULTS.__getitem__
    provider_stem = provider.upper()
    storage_name = f"VICIREC_PRICE_{stem}_GB_MONTH"
    retrieval_name = f"VICIREC_PRICE_{stem}_RETRIEVAL_GB"
    return Offer(
        provider=provider,
        storage_class=storage_class,
        label=label,
        gb_month=price(storage_name),
        retrieval_gb=price(retrieval_name) if retrieval_name in PRICE_DEFAULTS else 0.0,
        write=price(f"VICIREC_PRICE_{stem}_WRITE"),
        read=price(f"VICIREC_PRICE_{stem}_READ"),
        egress_gb=price(f"VICIREC_PRICE_{provider_stem}_EGRESS_GB"),
        min_days=min_days,
        min_bytes=min_bytes,
    )


def offers(prices: Callable[[str], float] | None = None) -> list[Offer]:
    """Every (provider, class) offered, R2 first."""
    return [o for p, c in _OFFERS if (o := offer(p, c, prices)) is not None]


@dataclass(frozen=True)
class Volume:
    """What a policy stores and serves: objects and bytes, and how they are read.

    ``objects`` and ``bytes`` are what is (or will be) stored; ``billable_bytes`` counts each object as at
    least 128 KB; ``days`` is how long each object stays in the bucket; ``reads`` and ``read_bytes`` are
    the playbacks and downloads over the same span.
    """

    objects: int
    bytes: int
    billable_bytes: int
    days: float
    reads: int = 0
    read_bytes: int = 0


def cost(offer_: Offer, volume: Volume, *, minimums: bool = True) -> dict[str, float]:
    """What ``volume`` costs on ``offer_``: storage (minimum size and, with ``minimums``, minimum duration
    applied), requests (one write per object, one read per playback), retrieval and egress of the bytes
    read; and the total. ``minimums=False`` prices a month of a bucket whose objects stay longer."""
    stored = volume.billable_bytes if offer_.min_bytes else volume.bytes
    months = (max(volume.days, offer_.min_days) if minimums else volume.days) / DAYS_PER_MONTH
    parts = {
        "storage": stored / GIB * offer_.gb_month * months,
        "requests": volume.objects * offer_.write + volume.reads * offer_.read,
        "retrieval": volume.read_bytes / GIB * offer_.retrieval_gb,
        "egress": volume.read_bytes / GIB * offer_.egress_gb,
    }
    parts["total"] = sum(parts.values())
    return parts


def billable(size: int, min_bytes: int = MIN_BILLABLE_OBJECT) -> int:
    return max(size, min_bytes)


def saving_per_object(
    provider: str, storage_class: str, *, size: int, days: float, prices: Callable[[str], float] | None = None
) -> float | None:
    """What one object of ``size`` bytes kept ``days`` days in the bucket saves in ``storage_class`` against
    STANDARD at the same provider, storage and write included (negative: it costs more). None if the
    provider has no such class."""
    chosen, standard = offer(provider, storage_class, prices), offer(provider, STANDARD, prices)
    if chosen is None or standard is None:
        return None
    one = Volume(objects=1, bytes=size, billable_bytes=billable(size), days=days)
    return cost(standard, one)["total"] - cost(chosen, one)["total"]


def refusal(
    storage_class: str,
    *,
    providers: tuple[str, ...],
    size: int,
    days: float,
    prices: Callable[[str], float] | None = None,
) -> str:
    """Why ``storage_class`` costs more than it saves for objects of ``size`` bytes kept ``days`` days on
    any of ``providers`` that offer it (a sentence), or "" when it saves (or is STANDARD)."""
    if storage_class == STANDARD:
        return ""
    offering = [p for p in providers if offer(p, storage_class, prices) is not None]
    if not offering:
        names = " or ".join(p.upper() for p in providers)
        return f"{storage_class} is not offered by {names}; choose STANDARD or STANDARD_IA there."
    for provider in offering:
        chosen = offer(provider, storage_class, prices)
        assert chosen is not None
        saving = saving_per_object(provider, storage_class, size=size, days=days, prices=prices)
        if saving is not None and saving <= 0:
            reasons = []
            if days < chosen.min_days:
                reasons.append(f"objects stay {days:g} days but {chosen.label} bills at least {chosen.min_days}")
            if chosen.min_bytes and size < chosen.min_bytes:
                reasons.append(
                    f"a typical recording is {size // 1024} KB but {chosen.label} bills at least "
                    f"{chosen.min_bytes // 1024} KB"
                )
            why = "; ".join(reasons) or "its write price outweighs the storage saved"
            return f"{chosen.label} costs more than STANDARD for this policy ({why})."
    return ""


def price_lookup(overrides: Mapping[str, float]) -> Callable[[str], float]:
    """A ``prices(name)`` that takes ``overrides`` first and the list prices otherwise."""
    return lambda name: float(overrides.get(name, PRICE_DEFAULTS[name]))
