"""Every table, one module per family; importing this package registers them all on `Base`."""

from crowdquant.db.models.accounts import Account, ApiKey, ApiScope, WebSession
from crowdquant.db.models.compute import ComputeJob, ComputeJobStatus, ModelUpload
from crowdquant.db.models.datasets import DatasetAlias, DatasetFile
from crowdquant.db.models.diagnostics import Diagnostics, DiagnosticsStatus
from crowdquant.db.models.evm import ChainCursor, ChainEvent, ChainRound, EvmTransaction
from crowdquant.db.models.fund import FundBook, FundReturn
from crowdquant.db.models.leases import Lease
from crowdquant.db.models.ledger import LedgerBalance, LedgerPosting, LedgerTransaction
from crowdquant.db.models.models import Model, PayoutMode
from crowdquant.db.models.payouts import RoundPayout, RoundResult
from crowdquant.db.models.scores import MetaModel, RoundScore, RoundTargets
from crowdquant.db.models.stakes import (
    RoundStake,
    StakeChange,
    StakeChangeKind,
    StakeChangeStatus,
)
from crowdquant.db.models.submissions import Submission, SubmissionCheck, SubmissionStatus
from crowdquant.db.models.throttle import RateLimitHits, SignInFailures
from crowdquant.db.models.tournaments import Cadence, Round, RoundStatus, Rules, Tournament
from crowdquant.db.models.webhooks import ModelWebhook, WebhookDelivery, WebhookDeliveryStatus

__all__ = [
    "Account",
    "ApiKey",
    "ApiScope",
    "Cadence",
    "ChainCursor",
    "ChainEvent",
    "ChainRound",
    "ComputeJob",
    "ComputeJobStatus",
    "DatasetAlias",
    "DatasetFile",
    "Diagnostics",
    "DiagnosticsStatus",
    "EvmTransaction",
    "FundBook",
    "FundReturn",
    "Lease",
    "LedgerBalance",
    "LedgerPosting",
    "LedgerTransaction",
    "MetaModel",
    "Model",
    "ModelUpload",
    "ModelWebhook",
    "PayoutMode",
    "RateLimitHits",
    "Round",
    "RoundPayout",
    "RoundResult",
    "RoundScore",
    "RoundStake",
    "RoundStatus",
    "RoundTargets",
    "Rules",
    "SignInFailures",
    "StakeChange",
    "StakeChangeKind",
    "StakeChangeStatus",
    "Submission",
    "SubmissionCheck",
    "SubmissionStatus",
    "Tournament",
    "WebSession",
    "WebhookDelivery",
    "WebhookDeliveryStatus",
]
