"""Tests of optimizer.tasks.metrics: each metric on matches, mismatches and edge cases."""

from __future__ import annotations

import pytest

from optimizer.errors import UsageError
from optimizer.tasks.metrics import (
    METRICS,
    contains,
    exact_match,
    exact_set,
    f1,
    first_line,
    label,
    map_to_label,
    normalize_text,
    normalized_match,
    numeric,
    parse_number,
    resolve_metric,
)


def test_first_line_takes_first_non_empty_line_stripped():
    assert first_line("\n  \n  Paris  \nLondon") == "Paris"
    assert first_line("Tokyo") == "Tokyo"
    assert first_line("") == ""
    assert first_line(" \n\t\n") == ""
    assert first_line("a\r\nb") == "a"


def test_normalize_text_is_squad_style():
    assert normalize_text("  The  Quick, brown FOX!  ") == "quick brown fox"
    assert normalize_text("an apple a day") == "apple day"
    # Articles only as whole words.
    assert normalize_text("Theory and another") == "theory and another"
    # Hyphens and dashes separate words.
    assert normalize_text("twenty-two") == normalize_text("twenty two") == "twenty two"
    # Unicode punctuation goes too, accents stay.
    assert normalize_text("¿Qué?  «posición»") == "qué posición"


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("Paris", ["Paris"], 1.0),
        ("  Paris\n", ["Paris "], 1.0),
        ("paris", ["Paris"], 0.0),
        ("Paris.", ["Paris"], 0.0),
        ("Lyon", ["Paris", "Lyon"], 1.0),
        ("Paris", [], 0.0),
        ("", [""], 1.0),
    ],
)
def test_exact_match(prediction, answers, expected):
    assert exact_match(prediction, answers) == expected


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("The Eiffel Tower!", ["eiffel tower"], 1.0),
        ("an apple", ["Apple."], 1.0),
        ("one hundred and twenty-two", ["One hundred and twenty two"], 1.0),
        ("eiffel", ["eiffel tower"], 0.0),
        ("x", ["y", "X"], 1.0),
        ("x", [], 0.0),
    ],
)
def test_normalized_match(prediction, answers, expected):
    assert normalized_match(prediction, answers) == expected


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("I think it is a big dog.", ["Dog"], 1.0),
        ("hotdog", ["dog"], 0.0),  # whole words only
        ("the big red dog", ["red dog"], 1.0),
        ("the big red dog", ["dog red"], 0.0),
        ("nothing here", ["cat", "here"], 1.0),
        ("anything", ["the"], 0.0),  # gold normalizes to nothing
        ("the", ["a"], 1.0),
        ("x", [], 0.0),
    ],
)
def test_contains(prediction, answers, expected):
    assert contains(prediction, answers) == expected


def test_f1():
    assert f1("The cat sat", ["a cat sat down"]) == pytest.approx(0.8)
    assert f1("cat sat", ["cat sat"]) == 1.0
    assert f1("dog", ["cat"]) == 0.0
    # Best over answers.
    assert f1("cat sat", ["dog", "cat sat"]) == 1.0
    # Repeated tokens count once per gold occurrence (SQuAD's Counter intersection).
    assert f1("cat cat", ["cat"]) == pytest.approx(2 * 0.5 * 1 / 1.5)
    # Empty sides: 1 only when both are empty.
    assert f1("", [""]) == 1.0
    assert f1("the", ["cat"]) == 0.0
    assert f1("cat", []) == 0.0


def test_exact_set():
    assert exact_set("cat, dog", ["dog cat"]) == 1.0
    assert exact_set("cat dog dog", ["dog cat"]) == 1.0
    assert exact_set("cat", ["dog cat"]) == 0.0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42.0),
        ("-3", -3.0),
        ("The answer is 3.50 dollars", 3.5),
        ("1,000 people", 1000.0),
        ("12,345,678.5", 12345678.5),
        ("+7", 7.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("\u22124", -4.0),
        ("first 2 then 3", 2.0),
        ("x-3", -3.0),
        ("no number", None),
        ("", None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("47", ["47"], 1.0),
        ("The sum is 47.", ["47"], 1.0),
        ("47.0000000001", ["47"], 1.0),
        ("47.01", ["47"], 0.0),
        ("-3", ["-3"], 1.0),
        ("3", ["-3"], 0.0),
        ("1,000", ["1000"], 1.0),
        ("3.50", ["3.5"], 1.0),
        ("forty-seven", ["47"], 0.0),
        ("47", ["forty-seven", "47"], 1.0),
        ("47", ["n/a"], 0.0),
        ("47", [], 0.0),
    ],
)
def test_numeric(prediction, answers, expected):
    assert numeric(prediction, answers) == expected


LABELS = ["positive", "negative", "very negative"]


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("positive", "positive"),
        ("Positive, I think.", "positive"),
        ("It is NEGATIVE", "negative"),
        ("negative, not positive", "negative"),  # the first label to occur wins
        ("very negative indeed", "very negative"),  # longer label at the same position wins
        ("positively", None),  # whole words only
        ("", None),
    ],
)
def test_map_to_label(prediction, expected):
    assert map_to_label(prediction, LABELS) == expected


def test_label_metric():
    assert label("Positive.", ["positive"], LABELS) == 1.0
    assert label("negative", ["positive"], LABELS) == 0.0
    assert label("no idea", ["positive"], LABELS) == 0.0
    assert label("very negative", ["negative"], LABELS) == 0.0
    assert label("Very negative!", ["Very Negative"], LABELS) == 1.0


def test_registry_has_every_metric_and_all_stay_in_unit_interval():
    assert {"exact_match", "normalized_match", "contains", "f1", "numeric", "label", "exact_set"} <= set(METRICS)
    cases = [("", []), ("", [""]), ("a b", ["b a"]), ("12", ["12", "x"]), ("positive", ["positive"])]
    for name in METRICS:
        fn = resolve_metric(name, labels=["positive", "negative"])
        for prediction, answers in cases:
            assert 0.0 <= fn(prediction, answers) <= 1.0, (name, prediction, answers)


def test_resolve_metric_by_name():
    assert resolve_metric("exact_match") is exact_match
    assert resolve_metric("F1") is f1
    assert resolve_metric("normalized-match") is normalized_match
    bound = resolve_metric("label", labels=["yes", "no"])
    assert bound("Yes.", ["yes"]) == 1.0
    assert bound("no", ["yes"]) == 0.0


def test_resolve_metric_passes_callables_through():
    def mine(prediction, answers):
        return 0.5

    assert resolve_metric(mine) is mine


def test_resolve_metric_unknown_name_lists_known_names():
    with pytest.raises(UsageError) as info:
        resolve_metric("bleu")
    message = str(info.value)
    assert "bleu" in message
    for name in METRICS:
        assert name in message


def test_resolve_metric_label_without_labels():
    with pytest.raises(UsageError, match="labels"):
        resolve_metric("label")
    with pytest.raises(UsageError, match="labels"):
        resolve_metric("label", labels=[])
    with pytest.raises(UsageError, match="labels"):
        resolve_metric("label", labels=["!!"])


def test_resolve_metric_rejects_non_callables():
    with pytest.raises(UsageError, match="callable"):
        resolve_metric(3)  # type: ignore[arg-type]
