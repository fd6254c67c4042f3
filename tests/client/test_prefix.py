"""Unique id prefixes: exact, unique, ambiguous, unknown, empty."""

import pytest

from atwh.client.prefix import resolve_prefix
from atwh.errors import NotFoundError, UsageError

IDS = ["3f2a1c-aaaa", "3f2a1c-bbbb", "9e00-cccc", "9e00"]


def test_a_unique_prefix_resolves():
    assert resolve_prefix("3f2a1c-a", IDS, "delivery", "--id") == "3f2a1c-aaaa"


def test_an_exact_id_wins_over_longer_ids_sharing_it():
    assert resolve_prefix("9e00", IDS, "delivery", "--id") == "9e00"


def test_an_ambiguous_prefix_lists_the_candidates():
    with pytest.raises(UsageError) as e:
        resolve_prefix("3f2a", IDS, "delivery", "--id")
    assert "ambiguous" in e.value.message
    assert "3f2a1c-aaaa" in e.value.message and "3f2a1c-bbbb" in e.value.message
    assert e.value.message.startswith("--id '3f2a'")


def test_many_candidates_are_summed_up():
    ids = [f"ab{i:03d}" for i in range(12)]
    with pytest.raises(UsageError) as e:
        resolve_prefix("ab", ids, "event", "--event-id")
    assert "12 event ids" in e.value.message and "and 7 more" in e.value.message


def test_no_match_is_not_found():
    with pytest.raises(NotFoundError) as e:
        resolve_prefix("zz", IDS, "delivery", "--id")
    assert e.value.message == "--id 'zz': no delivery id starts with it"


def test_an_empty_prefix_is_a_usage_error():
    with pytest.raises(UsageError):
        resolve_prefix("", IDS, "delivery", "--id")


def test_control_characters_in_the_prefix_are_not_echoed():
    with pytest.raises(NotFoundError) as e:
        resolve_prefix("\x1b]0;x\x07", IDS, "delivery", "--id")
    assert "\x1b" not in e.value.message
