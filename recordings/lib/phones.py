"""Phone numbers as people write them, in the form VICIdial's catalog stores them. No Django.

VICIdial keeps ``phone_number`` as the national digits without the country code (``7735557219``) and the
country code apart (``phone_code``, 1 for the US), so a number typed as ``(773) 555-7219``,
``+1 773-555-7219``, ``1-773-555-7219`` or ``773.555.7219`` is looked for as ``7735557219``. Parsing is
Google's libphonenumber (the ``phonenumbers`` package) with a default region for numbers written without
a country code (vicirec's setting ``VICIREC_PHONE_REGION``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

DEFAULT_REGION = "US"


class PhoneError(ValueError):
    """A text that is not a complete phone number (too short, too long, letters, unknown country)."""


@dataclass(frozen=True)
class Phone:
    country_code: int
    national: str  # the catalog's form: national digits, no country code, no trunk prefix
    display: str  # as people write it (national format in the default region, international otherwise)


def parse(text: str, region: str = DEFAULT_REGION) -> Phone:
    """The phone number ``text`` writes; raises PhoneError if it is not a complete, possible number."""
    cleaned = (text or "").strip()
    if not cleaned:
        raise PhoneError("an empty phone number")
    if re.search(r"[A-Za-z]", cleaned):
        raise PhoneError(f"{cleaned!r} is not a phone number (letters)")
    try:
        number = phonenumbers.parse(cleaned, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"{cleaned!r} is not a phone number ({exc})") from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        why = {
            phonenumbers.ValidationResult.TOO_SHORT: "too short",
            phonenumbers.ValidationResult.TOO_LONG: "too long",
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
            phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "no area code",
        }.get(reason, "not a possible number")
        raise PhoneError(f"{cleaned!r} is not a complete phone number ({why})")
    home = phonenumbers.country_code_for_region(region)
    style = phonenumbers.PhoneNumberFormat.NATIONAL if number.country_code == home else None
    display = phonenumbers.format_number(number, style or phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return Phone(number.country_code, phonenumbers.national_significant_number(number), display)


def catalog_form(text: str, region: str = DEFAULT_REGION) -> str:
    """The digits the catalog holds for ``text`` (``(773) 555-7219`` → ``7735557219``); raises PhoneError."""
    return parse(text, region).national


def try_catalog_form(text: str, region: str = DEFAULT_REGION) -> str | None:
    """catalog_form, or None when ``text`` is not a complete phone number."""
    try:
        return catalog_form(text, region)
    except PhoneError:
        return None


def display(stored: str, region: str = DEFAULT_REGION) -> str:
    """A catalog phone number as people read it (``7735557219`` → ``(773) 555-7219``); unchanged if it is not
    a complete number of the default region."""
    if not stored or not stored.isdigit():
        return stored
    try:
        phone = parse(stored, region)
    except PhoneError:
        return stored
    return phone.display if phone.national == stored else stored


def split_entries(text: str) -> list[str]:
    """Phone numbers typed in one box: separated by commas, semicolons or new lines (never by the spaces
    inside a number such as ``(773) 555-7219``)."""
    return [part.strip() for part in re.split(r"[,;\n]+", text or "") if part.strip()]


def repaired(values: list[str], region: str = DEFAULT_REGION) -> list[str]:
    """``values`` followed by the catalog forms they stand for, none dropped: each value that parses, and
    two neighbours that only together make a number (``(773)``, ``555-7219``: a number once split at its
    space). Only ever adds values, so a criterion using it matches at least what it matched before."""
    out = [str(v) for v in values]
    found: list[str] = []
    for index, value in enumerate(out):
        single = try_catalog_form(value, region)
        if single:
            found.append(single)
            continue
        if index + 1 < len(out) and try_catalog_form(out[index + 1], region) is None:
            pair = try_catalog_form(f"{value} {out[index + 1]}", region)
            if pair:
                found.append(pair)
    return out + [f for f in dict.fromkeys(found) if f not in out]
