"""Champion and challenger: promotion by PR-AUC within a margin; the pointer moves only on promotion."""

from __future__ import annotations

import pytest

from models.champion import apply_decision, decide_promotion, read_champion
from objectstore import open_store

POINTER = "models/lstm/champion.json"


def _decide(challenger: float | None, champion: float | None, champion_version: str | None = "v1"):
    return decide_promotion(
        "lstm", challenger_version="v2", challenger_pr_auc=challenger,
        champion_version=champion_version, champion_pr_auc=champion, margin=0.02,
    )


def test_worse_challenger_not_promoted():
    decision = _decide(0.90, 0.95)
    assert not decision.promote
    assert "more than 0.02 below" in decision.reason


def test_challenger_within_margin_promoted():
    decision = _decide(0.94, 0.95)
    assert decision.promote
    assert "within 0.02 of champion" in decision.reason


def test_better_challenger_promoted():
    decision = _decide(0.99, 0.95)
    assert decision.promote
    assert "is at least champion" in decision.reason


def test_first_model_promoted():
    decision = _decide(None, None, champion_version=None)
    assert decision.promote
    assert "no champion yet" in decision.reason


def test_unlabelled_run_promotes_and_says_so():
    decision = _decide(None, 0.95)
    assert decision.promote
    assert "no labels" in decision.reason


def test_margin_outside_unit_interval_rejected():
    with pytest.raises(ValueError, match=r"margin must be in \[0, 1\], got 1.5"):
        decide_promotion("lstm", challenger_version="v2", challenger_pr_auc=0.5, champion_version=None,
                         champion_pr_auc=None, margin=1.5)


def test_champion_pointer_stays_for_worse_challenger(tmp_path):
    store = open_store(f"file://{tmp_path}")
    store.put_json(POINTER, {"kind": "lstm", "version": "v1", "prefix": "models/lstm/v1/"})
    before = store.get_bytes(POINTER)

    moved = apply_decision(store, POINTER, _decide(0.80, 0.95), prefix="models/lstm/v2/")

    assert not moved
    assert store.get_bytes(POINTER) == before


def test_champion_pointer_moves_for_promoted_challenger(tmp_path):
    store = open_store(f"file://{tmp_path}")
    store.put_json(POINTER, {"kind": "lstm", "version": "v1", "prefix": "models/lstm/v1/"})

    moved = apply_decision(store, POINTER, _decide(0.97, 0.95), prefix="models/lstm/v2/")

    assert moved
    pointer = read_champion(store, POINTER)
    assert pointer["version"] == "v2"
    assert pointer["prefix"] == "models/lstm/v2/"
    assert pointer["pr_auc"] == pytest.approx(0.97)


def test_read_champion_without_pointer_is_none(tmp_path):
    assert read_champion(open_store(f"file://{tmp_path}"), POINTER) is None
