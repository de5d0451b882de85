"""Champion and challenger: whether a newly trained model replaces the current champion.

The rule compares PR-AUC (average precision of the window scores) on one fixed
evaluation set, both models scored on the same windows: the challenger is
promoted unless its PR-AUC is lower than the champion's by more than
``margin``. Without labels, or without a champion, there is nothing to compare,
so the challenger is promoted and the decision's ``reason`` states why.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from objectstore import ObjectStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of comparing a challenger with the champion of one model kind.

    Attributes:
        kind: the model kind.
        promote: True when the challenger becomes champion.
        reason: one sentence saying why.
        challenger_version: version of the newly trained model.
        champion_version: version of the current champion, None when there is none.
        challenger_pr_auc: the challenger's PR-AUC on the evaluation set, or None.
        champion_pr_auc: the champion's PR-AUC on the same windows, or None.
        margin: the largest PR-AUC loss still promoted.
    """

    kind: str
    promote: bool
    reason: str
    challenger_version: str
    champion_version: str | None
    challenger_pr_auc: float | None
    champion_pr_auc: float | None
    margin: float

    def to_json(self) -> dict:
        """Return the decision as a JSON-able dict."""
        return asdict(self)


def decide_promotion(
    kind: str,
    *,
    challenger_version: str,
    challenger_pr_auc: float | None,
    champion_version: str | None,
    champion_pr_auc: float | None,
    margin: float = 0.02,
) -> PromotionDecision:
    """Decide whether the challenger replaces the champion.

    Args:
        kind: the model kind.
        challenger_version: version of the new model.
        challenger_pr_auc: its PR-AUC on the evaluation set; None without labels.
        champion_version: version of the champion, None when there is none.
        champion_pr_auc: the champion's PR-AUC on the same windows; None when it
            could not be scored.
        margin: the largest PR-AUC loss that still promotes, in [0, 1].

    Raises:
        ValueError: when ``margin`` is outside [0, 1].
    """
    if not 0.0 <= margin <= 1.0:
        raise ValueError(f"margin must be in [0, 1], got {margin}")

    def decision(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(
            kind=kind, promote=promote, reason=reason, challenger_version=challenger_version,
            champion_version=champion_version, challenger_pr_auc=challenger_pr_auc,
            champion_pr_auc=champion_pr_auc, margin=margin,
        )

    if champion_version is None:
        return decision(True, "no champion yet, so the first model becomes champion")
    if challenger_pr_auc is None:
        return decision(True, "the evaluation windows have no labels of both classes, so PR-AUC cannot compare the models; promoted unchecked")
    if champion_pr_auc is None:
        return decision(True, f"champion {champion_version} could not be scored on this run's windows; promoted unchecked")
    if challenger_pr_auc < champion_pr_auc - margin:
        return decision(
            False,
            f"PR-AUC {challenger_pr_auc:.4f} is more than {margin} below champion {champion_version}'s {champion_pr_auc:.4f}",
        )
    # The champion's PR-AUC is measured again on this run's evaluation windows, so both scores see the same data.
    if challenger_pr_auc >= champion_pr_auc:
        return decision(
            True,
            f"PR-AUC {challenger_pr_auc:.4f} is at least champion {champion_version}'s {champion_pr_auc:.4f} "
            "on this run's evaluation windows",
        )
    return decision(
        True,
        f"PR-AUC {challenger_pr_auc:.4f} is within {margin} of champion {champion_version}'s {champion_pr_auc:.4f} "
        "on this run's evaluation windows",
    )


def read_champion(store: ObjectStore, pointer_key: str) -> dict | None:
    """Return the champion pointer document at ``pointer_key``, or None when there is none."""
    return store.get_json(pointer_key) if store.exists(pointer_key) else None


def apply_decision(store: ObjectStore, pointer_key: str, decision: PromotionDecision, *, prefix: str) -> bool:
    """Move the champion pointer to the challenger when the decision promotes it.

    The pointer is written whole in one put, after the model version is
    complete, so readers see either the old or the new champion. When the
    decision does not promote, the pointer is left byte for byte as it was.

    Args:
        store: the object store.
        pointer_key: key of the kind's champion pointer.
        decision: the outcome of ``decide_promotion``.
        prefix: key prefix of the challenger's model version.

    Returns:
        True when the pointer was moved.
    """
    if not decision.promote:
        logger.info("Champion %s stays at %s: %s", decision.kind, decision.champion_version, decision.reason)
        return False
    store.put_json(
        pointer_key,
        {
            "kind": decision.kind,
            "version": decision.challenger_version,
            "prefix": prefix,
            "published_utc": datetime.now(timezone.utc).isoformat(),
            "pr_auc": decision.challenger_pr_auc,
        },
    )
    logger.info("Champion %s -> version %s: %s", decision.kind, decision.challenger_version, decision.reason)
    return True
