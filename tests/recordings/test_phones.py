"""recordings.lib.phones: phone numbers as people write them, in the catalog's form (no Django needed)."""

from __future__ import annotations

import pytest

from recordings.lib import phones


@pytest.mark.parametrize(
    "typed", ["(773) 555-7219", "7735557219", "17735557219", "+1 773 555 7219", "1-773-555-7219", "773.555.7219"]
)
def test_every_way_of_writing_a_us_number_gives_the_catalog_form(typed: str) -> None:
    assert phones.catalog_form(typed) == "7735557219"
    assert phones.display("7735557219") == "(773) 555-7219"


@pytest.mark.parametrize("typed", ["(773)", "555-7219", "abc", "", "773555721999999", "+999 1234"])
def test_an_incomplete_or_foreign_text_is_refused_with_a_reason(typed: str) -> None:
    with pytest.raises(phones.PhoneError):
        phones.catalog_form(typed)
    assert phones.try_catalog_form(typed) is None


def test_another_region_and_international_numbers() -> None:
    assert phones.catalog_form("020 7946 0018", "GB") == "2079460018"
    assert phones.catalog_form("+44 20 7946 0018") == "2079460018"  # VICIdial keeps the country code apart
    assert phones.display("2079460018", "GB") == "020 7946 0018"
    assert phones.display("12345") == "12345"  # not a full number: shown as stored


def test_entries_split_on_commas_and_lines_never_inside_a_number() -> None:
    assert phones.split_entries("(773) 555-7219, +1 312 555 1212\n3125550100;") == [
        "(773) 555-7219",
        "+1 312 555 1212",
        "3125550100",
    ]


def test_repaired_only_adds_the_catalog_forms_it_finds() -> None:
    stored = ["(773)", "555-7219", "17735550001", "junk"]
    assert phones.repaired(stored) == [*stored, "7735557219", "7735550001"]
    assert phones.repaired(["7735557219"]) == ["7735557219"]
