"""The template helpers: idea reading, casing, joining, deterministic choice."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ideamine.agents import textkit
from ideamine.agents.textkit import (
    category_of,
    complexity_of,
    compliance_hints,
    domain_nouns,
    entities,
    features,
    hash_pick,
    kebab,
    keywords,
    oxford_join,
    pascal,
    persona_name,
    plural,
    semver,
    sentence,
    singular,
    slug,
    snake,
    title_from,
    tojson,
    user_roles,
    with_article,
)

FARMERS = "A marketplace where local farmers sell produce to nearby restaurants"


def test_user_roles_finds_subjects_and_objects() -> None:
    assert user_roles(FARMERS) == ["farmers", "restaurants"]
    assert user_roles("An app for pet owners to find dog sitters nearby") == [
        "pet owners",
        "dog sitters",
    ]
    assert user_roles("An action game where the player must defeat waves of enemies") == ["players"]


def test_user_roles_is_empty_when_nobody_is_named() -> None:
    assert user_roles("Convert CSV files into Parquet") == []
    assert user_roles("todo") == []


def test_user_roles_ignores_modifiers_and_products() -> None:
    assert user_roles("A budget planner with a clean user interface") == []
    assert user_roles("Helps gardeners plan their beds") == ["gardeners"]


def test_title_from_prefers_a_given_name() -> None:
    assert title_from("Mystic Maze is a 3D action game where players explore") == "Mystic Maze"
    assert title_from("The Road Condition Reporter is a tool for drivers") == (
        "Road Condition Reporter"
    )
    # a short given name still meets IdeaSpec's five characters (SRDD's "OPT is a …")
    assert title_from("OPT is a software application that helps teams track projects") == "OPT App"


def test_title_from_qualifies_a_bare_product_type() -> None:
    assert title_from(FARMERS) == "Local Farmers Marketplace"
    assert title_from("I want to build a budget planner that helps families") == "Budget Planner"
    assert title_from("todo") == "Todo App"
    assert len(title_from("")) >= 5


def test_domain_nouns_skip_roles_verbs_and_generic_words() -> None:
    assert domain_nouns(FARMERS) == ["produce"]
    nouns = domain_nouns("Users track expenses and set a monthly budget for groceries")
    assert nouns[:3] == ["expense", "budget", "grocery"]


def test_features_start_with_what_the_text_says_people_do() -> None:
    found = features(FARMERS, 6)
    assert found[0] == {
        "name": "Sell produce",
        "description": "sell produce to nearby restaurants",
        "actor": "farmers",
    }
    assert len(found) == 6
    assert {f["actor"] for f in found} <= {"farmers", "restaurants", ""}
    assert len({f["description"] for f in found}) == 6


def test_features_always_offer_at_least_five_for_short_ideas() -> None:
    assert len(features("todo", 8)) >= 5
    assert len(features("x", 8)) >= 5


def test_keywords_rank_by_frequency_then_position() -> None:
    assert keywords("maze maze puzzles the puzzle maze runner", 2) == ["maze", "puzzle"]


@pytest.mark.parametrize(
    ("word", "single", "many"),
    [
        ("farmers", "farmer", "farmers"),
        ("categories", "category", "categories"),
        ("boxes", "box", "boxes"),
        ("people", "person", "people"),
        ("produce", "produce", "produce"),
        ("courses", "course", "courses"),
        ("status", "status", "statuses"),
        ("pet owners", "pet owner", "pet owners"),
        ("Menus", "Menu", "Menus"),
    ],
)
def test_singular_and_plural(word: str, single: str, many: str) -> None:
    assert singular(word) == single
    assert plural(single) == many


def test_identifier_casings_are_ascii() -> None:
    assert snake("Café Finder") == "cafe_finder"
    assert snake("3D maze") == "n_3d_maze"
    assert snake("日本語") == "item"
    assert pascal("pet owner") == "PetOwner"
    assert textkit.camel("pet owner") == "petOwner"
    assert kebab("BookClub Connect!") == "book-club-connect"
    assert slug("A" * 100) == "a" * 48


def test_prose_helpers() -> None:
    assert oxford_join(["a"]) == "a"
    assert oxford_join(["a", "b"]) == "a and b"
    assert oxford_join(["a", "b", "c"], "or") == "a, b, or c"
    assert sentence("  hello   world ") == "Hello world."
    assert sentence("Done!") == "Done!"
    assert with_article("order") == "an order"
    assert with_article("user") == "a user"
    assert textkit.numbered("US", 7) == "US-007"
    assert textkit.clip("one two three", 2) == "one two…"


def test_semver_normalises() -> None:
    assert semver("v1.2") == "1.2.0"
    assert semver("release 3") == "3.0.0"
    assert semver("nothing") == "0.1.0"


def test_hash_pick_is_stable_and_seed_dependent() -> None:
    options = list("abcdefgh")
    assert hash_pick(options, "seed") == hash_pick(options, "seed")
    assert len({hash_pick(options, f"seed-{i}") for i in range(40)}) > 3
    assert hash_pick([], "x") == ""


def test_persona_names_alliterate() -> None:
    assert persona_name("farmers")[0] == "F"
    assert persona_name("restaurants")[0] == "R"


def test_category_complexity_and_compliance() -> None:
    assert category_of(FARMERS) == "commerce"
    assert category_of("zzz") == "general"
    assert complexity_of("todo") == "low"
    assert complexity_of("todo", {"compliance": ["GDPR"]}) == "medium"
    hints = compliance_hints("patients pay by credit card")
    assert hints == ["HIPAA", "PCI-DSS"]


def test_entities_agree_for_every_caller() -> None:
    artifacts = {"IdeaSpec": {"description": FARMERS, "target_users": ["farmers", "restaurants"]}}
    first = entities(artifacts)
    assert first == entities(artifacts)
    names = [e["name"] for e in first]
    assert names[:3] == ["Farmer", "Restaurant", "Produce"]
    assert "Order" in names
    order = next(e for e in first if e["name"] == "Order")
    assert order["path"] == "/orders"
    refs = [f["references"] for f in order["fields"] if "references" in f]
    assert refs == ["Farmer", "Restaurant", "Produce"]
    # Every reference points to an earlier entity, so tables can be created in order.
    for index, entity in enumerate(first):
        earlier = {e["name"] for e in first[:index]}
        assert {f["references"] for f in entity["fields"] if "references" in f} <= earlier


def test_entities_fall_back_when_the_spec_is_empty() -> None:
    names = [e["name"] for e in entities({})]
    assert names == ["User", "Item"]


def test_tojson_output_is_yaml_that_round_trips() -> None:
    value = {"b": '😀 "q" \\ \x85 \u2028 \ufeff <script>{{ x }}</script>: [1]', "a": [1, None]}
    text = tojson(value)
    assert yaml.safe_load(text) == value
    assert json.loads(text) == value
    assert text.index('"a"') < text.index('"b"')


def test_every_helper_is_exposed_to_templates() -> None:
    for name in ("user_roles", "entities", "hash_pick", "tojson", "palette", "by_suffix"):
        assert name in textkit.FILTERS
        assert name in textkit.GLOBALS
    assert textkit.GLOBALS["COMPLIANCE_REGIMES"] == ["GDPR", "SOC2", "HIPAA", "PCI-DSS", "ISO27001"]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_idea_readers_never_crash_and_are_deterministic(text: str) -> None:
    roles = user_roles(text)
    assert roles == user_roles(text)
    assert all(isinstance(r, str) and r for r in roles)
    assert keywords(text) == keywords(text)
    assert features(text) == features(text)
    title = title_from(text)
    assert 5 <= len(title) <= 200
    assert yaml.safe_load(tojson(text)) == text
    spec = {"IdeaSpec": {"description": text, "target_users": roles or ["users"]}}
    found = entities(spec)
    assert found == entities(spec)
    assert all(e["snake"].isidentifier() and e["snake"].isascii() for e in found)
