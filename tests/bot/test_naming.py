"""Names, descriptions and tag values always fit the WorkSpaces API's rules."""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.naming import (
    DESCRIPTION_PATTERN,
    NAME_PATTERN,
    TAG_KEY_MAX,
    TAG_REQUEST_ID,
    sanitize_tag_value,
    short_request_id,
    update_tags,
    updated_image_description,
    updated_image_name,
)

# The patterns exactly as the botocore model spells them.
API_NAME = re.compile(r"^[a-zA-Z0-9_./()\-]+$")
API_DESCRIPTION = re.compile(r"^[a-zA-Z0-9_./() -]+$")
TAG_VALUE_CHARS = re.compile(r"^[a-zA-Z0-9 _.:/=+\-@]*$")

DAY = date(2025, 1, 31)
REQUEST = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"

any_text = st.text()
request_ids = st.one_of(st.uuids().map(str), st.text(min_size=0, max_size=40))
dates = st.dates()


def assert_valid_name(name: str) -> None:
    assert 1 <= len(name) <= 64
    assert API_NAME.match(name), name
    assert NAME_PATTERN.match(name)


def test_a_plain_name_keeps_its_source_date_and_request() -> None:
    assert updated_image_name("Win11-Office", REQUEST, DAY) == "Win11-Office-upd-20250131-9b1deb4d"


def test_seventy_chars_of_spaces_commas_and_accents_yield_a_valid_name() -> None:
    source = ("Équipe, Finanzbüro  ,  Ñandú, " * 3)[:70]
    assert len(source) == 70
    name = updated_image_name(source, REQUEST, DAY)
    assert_valid_name(name)
    assert name.startswith("Equipe-Finanzburo-Nandu-")
    assert name.endswith("-upd-20250131-9b1deb4d")


def test_an_empty_or_emoji_only_source_becomes_image() -> None:
    for source in ("", "   ", "🚀🔥", ",,,", "---"):
        name = updated_image_name(source, REQUEST, DAY)
        assert name == "image-upd-20250131-9b1deb4d"


def test_letters_without_a_decomposition_are_spelled_out() -> None:
    # anyascii spells Æ "Ae" (the hand-made table before it wrote "AE").
    assert updated_image_name("Straße Ærø", "abc", DAY) == "Strasse-Aero-upd-20250131-abc"


def test_a_cyrillic_name_keeps_its_meaning_in_the_name_and_description() -> None:
    # anyascii spells я as "ya" (the "Bukhgalteriia" is another romanisation of it).
    name = updated_image_name("Бухгалтерия-Win11", REQUEST, DAY)
    assert name == "Bukhgalteriya-Win11-upd-20250131-9b1deb4d"
    description = updated_image_description("Бухгалтерия-Win11", "wsi-abc123def", REQUEST)
    assert description == (
        "Updated by wsimg from wsi-abc123def (Bukhgalteriya-Win11) request 9b1deb4d"
    )


@pytest.mark.parametrize(
    ("source", "spelled"),
    [
        ("Λογιστήριο Win11", "Logistirio-Win11"),  # Greek
        ("财务部 Win11", "CaiWuBu-Win11"),  # Chinese
        ("経理部・Win11", "JingLiBu-Win11"),  # Japanese kanji and a middle dot
        ("Comptabilité Générale, Öffentlich", "Comptabilite-Generale-Offentlich"),
        ("Ærø Straße Łódź", "Aero-Strasse-Lodz"),
        ("حسابداری", None),  # Persian: spelled in Latin letters, whatever the spelling
        ("🚀🔥", "image"),  # emoji alone name nothing
        ("🚀 Win11 🔥", "Win11"),
    ],
)
def test_names_in_any_script_give_valid_names_and_descriptions_that_keep_their_words(
    source: str, spelled: str | None
) -> None:
    name = updated_image_name(source, REQUEST, DAY)
    description = updated_image_description(source, "wsi-abc123def", REQUEST)
    assert_valid_name(name)
    assert 1 <= len(description) <= 256
    assert API_DESCRIPTION.match(description), description
    part = name.removesuffix("-upd-20250131-9b1deb4d")
    if spelled is None:
        assert part != "image" and part.isascii()
    else:
        assert part == spelled
    if spelled != "image":
        assert all(word in description for word in part.split("-")), description


def test_a_long_non_latin_name_is_cut_to_64_and_the_suffix_survives() -> None:
    name = updated_image_name("Бухгалтерия " * 20, REQUEST, DAY)
    assert_valid_name(name)
    assert name.startswith("Bukhgalteriya-Bukhgalteriya-")
    assert name.endswith("-upd-20250131-9b1deb4d")


def test_a_long_source_is_cut_on_a_word_boundary_and_the_suffix_survives() -> None:
    source = "Windows-11-Enterprise-Finance-Department-Golden-Image-2024-Q4"
    name = updated_image_name(source, REQUEST, DAY)
    assert name == "Windows-11-Enterprise-Finance-Department-upd-20250131-9b1deb4d"
    assert_valid_name(name)


def test_the_short_request_id_takes_the_first_eight_ascii_letters_or_digits() -> None:
    assert short_request_id("9b1d-eb4d-3b7d") == "9b1deb4d"
    assert short_request_id("ab") == "ab"
    fallback = short_request_id("—…—")
    assert re.fullmatch(r"[0-9a-f]{8}", fallback)
    assert short_request_id("—…—") == fallback


def test_years_below_one_thousand_are_zero_padded() -> None:
    assert updated_image_name("x", "r1", date(5, 6, 7)).endswith("-upd-00050607-r1")


@given(source=any_text, request_id=request_ids, when=dates)
def test_any_source_name_gives_a_valid_deterministic_name_that_keeps_its_suffix(
    source: str, request_id: str, when: date
) -> None:
    name = updated_image_name(source, request_id, when)
    assert_valid_name(name)
    assert name == updated_image_name(source, request_id, when)
    suffix = f"-upd-{when.year:04d}{when.month:02d}{when.day:02d}-{short_request_id(request_id)}"
    assert name.endswith(suffix)
    assert len(name) > len(suffix)


@given(source=any_text, first=st.uuids(), second=st.uuids())
def test_two_requests_never_share_a_name(source: str, first: object, second: object) -> None:
    a, b = str(first), str(second)
    if short_request_id(a) != short_request_id(b):
        assert updated_image_name(source, a, DAY) != updated_image_name(source, b, DAY)


@given(source=any_text, image_id=any_text, request_id=request_ids)
def test_any_description_is_valid(source: str, image_id: str, request_id: str) -> None:
    description = updated_image_description(source, image_id, request_id)
    assert 1 <= len(description) <= 256
    assert API_DESCRIPTION.match(description), description
    assert DESCRIPTION_PATTERN.match(description)


def test_a_description_names_the_source_and_the_request() -> None:
    description = updated_image_description("Win 11, Büro", "wsi-abc123def", REQUEST)
    assert description == "Updated by wsimg from wsi-abc123def (Win 11 Buro) request 9b1deb4d"


def test_a_description_of_a_very_long_name_is_cut_to_256() -> None:
    description = updated_image_description("ä" * 400, "wsi-abc123def", REQUEST)
    assert len(description) <= 256
    assert description.endswith(" request 9b1deb4d")


@given(value=any_text)
def test_any_tag_value_is_cut_to_the_allowed_characters(value: str) -> None:
    cleaned = sanitize_tag_value(value)
    assert len(cleaned) <= 255
    assert TAG_VALUE_CHARS.match(cleaned), cleaned


def test_tag_values_keep_slack_ids_and_emails() -> None:
    assert sanitize_tag_value("U024BE7LH") == "U024BE7LH"
    assert sanitize_tag_value("José <jose@example.com>") == "Jose jose@example.com"


def test_update_tags_use_fixed_short_keys() -> None:
    tags = update_tags(
        request_id=REQUEST, source_image_id="wsi-abc123def", requested_by="U1", approved_by="U2"
    )
    assert tags[TAG_REQUEST_ID] == REQUEST
    assert all(1 <= len(key) <= TAG_KEY_MAX for key in tags)
    assert all(not key.lower().startswith("aws:") for key in tags)
    assert "wsimg:approved-by" in tags
    assert "wsimg:requested-by" not in update_tags(request_id="r", source_image_id="wsi-x")
