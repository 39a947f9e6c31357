"""What resolution decided: one payout row per staked or prized model, one result per round.

Written once, in the transaction that resolves the round, beside the ledger postings they
name (`event_key`): resolution is exactly once per (round, model) because these rows are
unique and the ledger is idempotent on the keys. `inputs` keeps what the rule was given
(scores, gates, confidence, payout factor) so the payout can be replayed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crowdquant.db.base import Base, HasId, TokenAmount

if TYPE_CHECKING:
    from crowdquant.db.models.models import Model
    from crowdquant.db.models.tournaments import Round


class RoundPayout(HasId, Base):
    __tablename__ = "round_payouts"
    __table_args__ = (
        UniqueConstraint("round_id", "model_id"),
        CheckConstraint("usd >= 0", name="usd_not_negative"),
    )

    round_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rounds.id", ondelete="RESTRICT"))
    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("models.id", ondelete="RESTRICT"), index=True
    )
    at_risk: Mapped[int] = mapped_column(TokenAmount())
    nmr: Mapped[int] = mapped_column(TokenAmount())
    """NMR paid (positive) or burned (negative), in 10^-18 units, after pro rata scaling."""
    usd: Mapped[int] = mapped_column(BigInteger)
    """USD paid, in cents."""
    rule_version: Mapped[str] = mapped_column(String(32))
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    event_key: Mapped[str] = mapped_column(String(200))
    resolved_at: Mapped[datetime]

    round: Mapped[Round] = relationship()
    model: Mapped[Model] = relationship()


class RoundResult(HasId, Base):
    """The seeds' "Results" summary of a resolved round."""

    __tablename__ = "round_results"

    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rounds.id", ondelete="RESTRICT"), unique=True
    )
    participants: Mapped[int] = mapped_column(Integer)
    """Models with an on-time valid submission."""
    stakers: Mapped[int] = mapped_column(Integer)
    """"Controlling capital": the participants with NMR at risk."""
    at_risk: Mapped[int] = mapped_column(TokenAmount())
    usd_paid: Mapped[int] = mapped_column(BigInteger)
    nmr_paid: Mapped[int] = mapped_column(TokenAmount())
    nmr_burned: Mapped[int] = mapped_column(TokenAmount())
    payout_factor: Mapped[str | None] = mapped_column(String(64))
    """Classic rules: min(1, threshold / total at risk), as an exact decimal string."""
    nmr_scaled_to: Mapped[int | None] = mapped_column(TokenAmount())
    """What the treasury held when it could not pay every NMR reward in full: the rewards
    were scaled down pro rata to it. None when they were paid in full."""
    usd_scaled_to: Mapped[int | None] = mapped_column(BigInteger)
    """What the prize pool held, in cents, when it could not pay every USD award in full: the
    awards were scaled down pro rata to it. None when they were paid in full."""
    resolved_at: Mapped[datetime]

    round: Mapped[Round] = relationship()

    @property
    def scale(self) -> str:
        """How the rewards were paid, as the results show it: `full`, or what was available
        when it was short (`nmr:<10^-18 NMR>`, `usd:<cents>`, or both joined by a comma)."""
        short = (("nmr", self.nmr_scaled_to), ("usd", self.usd_scaled_to))
        return ",".join(f"{kind}:{held}" for kind, held in short if held is not None) or "full"
