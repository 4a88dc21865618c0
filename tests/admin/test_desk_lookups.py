"""The desk's lookups written for the index give the same recordings as the plain conditions they replace:
the search (agents' names and user ids, phone, lead, recording id, filename) against the OR of its
alternatives, the list's pages read keys first against plain slicing, and the held filter against
``held_condition()``. Run on SQLite by default, and on MariaDB / PostgreSQL with VICIREC_TEST_DATABASE_URL."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.test import Client
from django.urls import reverse

from holds.actions import place_hold, release_hold
from holds.models import Case, held_condition, held_covered
from recordings import desk, views
from recordings.admin import search_condition
from recordings.lib import phones
from recordings.models import Agent, Campaign, Recording
from tests.admin.conftest import DESK
from tests.factories import make_recording
from vicirec.actors import Actor
from vicirec.admin_kit import BoundedPaginator

pytestmark = pytest.mark.django_db


def plain_search(term: str) -> Q:
    """The search as the OR of its alternatives (what ``search_condition`` answered before it read the
    exact matches as ids): the reference the fast form must equal."""

    def names(text: str) -> Q:
        users = list(Agent.objects.filter(full_name__istartswith=text.strip()).values_list("user", flat=True))
        return Q(agent__in=users) if len(text.strip()) >= 2 and users else Q(pk__in=[])

    def phone(text: str) -> Q:
        digits = re.sub(r"\D", "", text)
        numbers = {n for n in (digits, phones.try_catalog_form(text, settings.VICIREC_PHONE_REGION)) if n}
        return Q(phone_number__in=sorted(numbers)) if numbers else Q(pk__in=[])

    term = term.strip()
    field, _, value = term.partition(":")
    if value and field.lower() == "agent":
        return Q(agent=value.strip()) | names(value)
    digits = re.sub(r"[\s()+.-]", "", term)
    condition = Q(agent=term) | Q(filename__in=views.link_candidates(term))
    if digits.isdigit() and len(digits) <= 18:
        number = int(digits)
        return condition | phone(term) | Q(pk=number) | Q(lead_id=number)
    return condition | names(term)


@pytest.fixture
def catalog() -> list[Recording]:
    """Agents whose user ids are numbers that are also recording ids, lead ids and phone digits."""
    Agent.objects.bulk_create(
        [Agent(user="1017", full_name="Jane Roe"), Agent(user="1018", full_name="Janet Poe"),
         Agent(user="1019", full_name="Sam Doe")]
    )  # fmt: skip
    made = [make_recording(recording_id=1017, agent="1019", lead_id=5)]
    made += [make_recording(recording_id=2000 + n, agent="1017", lead_id=n) for n in range(30)]
    made += [make_recording(recording_id=3000 + n, agent="1018", lead_id=1017 if n == 3 else n) for n in range(8)]
    made += [make_recording(recording_id=4000 + n, agent="1019", phone_number="7735557219") for n in range(5)]
    made += [make_recording(recording_id=5000, agent="Jane", filename="20261101-142501_1017")]
    made += [make_recording(recording_id=5001, agent="2000", phone_number="1017")]
    return made


TERMS = [
    "Jane", "jane roe", "Janet", "jan", "J", "Sam Doe", "Nobody", "1017", "1018", "2000", "agent:1017",
    "agent:Jane", "agent:jan", "(773) 555-7219", "7735557219", "20261101-142501_1017", "Jane Roe ", "5",
    "MP3/20261101-142501_1017-all.mp3", "3000",
]  # fmt: skip


def ids(condition: Q | None) -> set[int]:
    return set(Recording.objects.filter(condition if condition is not None else Q()).values_list("pk", flat=True))


@pytest.mark.parametrize("term", TERMS)
def test_the_search_finds_what_the_or_of_its_alternatives_finds(catalog: list[Recording], term: str) -> None:
    assert ids(search_condition(term)) == ids(plain_search(term))


def test_the_search_reads_large_exact_matches_as_conditions(
    catalog: list[Recording], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(desk, "SEARCH_IDS", 2)  # the phone number's 5 calls are "many"
    for term in ["(773) 555-7219", "1017", "Jane", "5"]:
        assert ids(search_condition(term)) == ids(plain_search(term))
    assert ids(search_condition("7735557219")) == {4000, 4001, 4002, 4003, 4004}


def test_an_agent_and_id_search_is_led_by_the_agent_column(catalog: list[Recording]) -> None:
    """The term 1017 is an agent's user id, a recording id and a lead id: one agent list leads the condition."""
    condition = search_condition("1017")
    found = ids(condition)
    assert found == {1017, 3003, 5001} | {2000 + n for n in range(30)}
    sql = str(Recording.objects.filter(condition).values("pk").query).lower()
    assert sql.count("agent") >= 2 and "filename" not in sql and "phone_number" not in sql and "lead_id" not in sql


def test_pages_read_keys_first_are_the_pages_of_plain_slicing(catalog: list[Recording]) -> None:
    listed = Recording.objects.annotate(
        is_held=ExpressionWrapper(held_condition(), BooleanField()), agent_full_name=desk.agent_name()
    ).select_related("campaign")
    for ordering in (["-recording_id"], ["-start_time", "-recording_id"], ["agent", "recording_id"]):
        items = listed.order_by(*ordering)
        paginator = BoundedPaginator(items, 7, orphans=2)
        plain = Paginator([r.pk for r in items], 7, orphans=2)
        assert paginator.count == len(catalog) and paginator.num_pages == plain.num_pages == 7
        for number in paginator.page_range:
            page = paginator.page(number)
            assert [r.pk for r in page.object_list] == list(plain.page(number).object_list)
            assert all(hasattr(r, "agent_full_name") for r in page.object_list)
    jane = next(r for r in paginator.page(1).object_list if r.agent == "1017")
    assert jane.agent_full_name == "Jane Roe"


def test_the_count_is_bounded_and_a_distinct_list_is_paged_as_before(
    catalog: list[Recording], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(BoundedPaginator, "CAP", 10)
    assert BoundedPaginator(Recording.objects.order_by("-pk"), 4).count == 10
    distinct = Recording.objects.filter(agent="1017").order_by("-pk").distinct()
    paginator = BoundedPaginator(distinct, 4)
    assert paginator.count == 10 and [r.pk for r in paginator.page(2).object_list] == [2025, 2024, 2023, 2022]


def test_the_desk_lists_an_agent_search_page_by_page(
    catalog: list[Recording], make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from recordings.admin import RecordingAdmin

    monkeypatch.setattr(RecordingAdmin, "list_per_page", 10)
    client = Client(headers=DESK)
    client.force_login(make_user("Legal"))
    url = reverse("admin:recordings_recording_changelist")
    shown: list[int] = []
    for page in (1, 2, 3, 4):
        content = client.get(url, {"q": "1017", "p": page}).content.decode()
        shown += [int(pk) for pk in re.findall(r'name="_selected_action" value="(\d+)"', content)]
    assert shown == sorted(ids(plain_search("1017")), reverse=True) and len(shown) == 33


# --- the held filter ------------------------------------------------------------------------------------


@pytest.fixture
def holds() -> dict[str, Any]:
    """Active holds of each kind (a campaign, a case with criteria and picked recordings, recordings picked
    by hand, some with no campaign), and a released hold whose recordings are no longer held."""
    sales, debt = (Campaign.objects.create(kind="outbound", campaign_id=c) for c in ("SALES", "DEBT"))
    made = {
        "sales": [make_recording(campaign=sales, phone_number=f"31255500{n:02d}") for n in range(6)],
        "debt": [make_recording(campaign=debt, phone_number=f"31255501{n:02d}") for n in range(6)],
        "none": [make_recording(campaign=None, phone_number=f"31255502{n:02d}") for n in range(6)],
    }
    actor = Actor.command("tests")
    place_hold(reason="campaign", actor=actor, campaign=sales)
    case = Case.objects.create(name="Smith", phone_numbers=["3125550101", "(312) 555-0202"])
    case.recordings.add(made["debt"][4])
    place_hold(reason="case", actor=actor, case=case)
    place_hold(reason="picked", actor=actor, recording_ids=[made["none"][3].pk, made["debt"][5].pk])
    released = place_hold(reason="gone", actor=actor, recording_ids=[made["debt"][0].pk, made["none"][0].pk])
    release_hold(released, reason="settled", actor=actor)
    make_recording(campaign=debt, phone_number="3125550101")  # cataloged after the case hold: its criteria
    return made


def test_the_held_filter_finds_what_held_condition_finds(holds: dict[str, Any]) -> None:
    held = ids(held_condition())
    assert len(held) == 12 and ids(held_covered()) == held  # 6 of SALES, 4 of the case, 2 picked
    for limit in (0, 1, 3):  # an alternative of more recordings than the limit stays a condition
        assert ids(held_covered(limit)) == held
    everything = ids(None)
    assert set(Recording.objects.exclude(held_covered()).values_list("pk", flat=True)) == everything - held


def test_the_held_filter_is_led_by_the_campaign_column(holds: dict[str, Any]) -> None:
    sql = str(Recording.objects.filter(held_covered()).values("pk").query).lower()
    assert "campaign_id" in sql and "holds_" not in sql and "phone_number" not in sql and "is null" in sql


def test_the_desk_lists_held_and_not_held_page_by_page(
    holds: dict[str, Any], make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from recordings.admin import RecordingAdmin

    monkeypatch.setattr(RecordingAdmin, "list_per_page", 5)
    client = Client(headers=DESK)
    client.force_login(make_user("Legal"))
    url = reverse("admin:recordings_recording_changelist")
    for value, expected in (("yes", ids(held_condition())), ("no", ids(None) - ids(held_condition()))):
        shown: list[int] = []
        for page in (1, 2, 3):
            content = client.get(url, {"held": value, "p": page}).content.decode()
            shown += [int(pk) for pk in re.findall(r'name="_selected_action" value="(\d+)"', content)]
        assert shown == sorted(expected, reverse=True)
