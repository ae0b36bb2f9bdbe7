"""planbot's core: the plan rules, money, access policy, records and their persistence.

It knows nothing of Slack and never reads the environment: the entrypoint builds a `CoreConfig`,
an engine (`make_engine`), and a `PlanService`, and passes them down.
"""

from core.access import AccessPolicy, ApprovalRule, Grant, Role, effective_role
from core.audit import HASHED_FIELDS, ChainReport, verify_chain
from core.domain import (
    Actor,
    AppState,
    BillingMode,
    Operation,
    Plan,
    Status,
    add_months,
    utcnow,
)
from core.errors import *  # noqa: F403  (the error tree is part of the public API)
from core.errors import __all__ as _error_names
from core.importer import ImportResult, import_apps
from core.lifecycle import AppCharges, Lifecycle, PlanDays, SweepReport, TeamStatement
from core.money import (
    Catalog,
    ChargeRun,
    CostImpact,
    DayCharge,
    Statement,
    format_money,
    load_catalog,
)
from core.outbox import (
    DeliveryError,
    DeliveryReport,
    Notifier,
    OutboxDispatcher,
    Provisioner,
    Replier,
)
from core.provisioning import RecordingProvisioner, WebhookProvisioner, webhook_signature
from core.service import (
    AppPage,
    AppStatus,
    ChangeRequest,
    CoreConfig,
    FieldChange,
    HistoryEntry,
    Outcome,
    PendingRequest,
    PlanService,
    Preview,
    Reply,
)
from core.store.db import Checkpointer, checkpoint, make_engine, normalize_url
from core.store.schema import current_revision, head_revision, upgrade_schema
from core.store.uow import UnitOfWork

__all__ = [
    "AccessPolicy",
    "ApprovalRule",
    "Grant",
    "Role",
    "effective_role",
    "ChainReport",
    "verify_chain",
    "HASHED_FIELDS",
    "Actor",
    "AppState",
    "BillingMode",
    "Operation",
    "Plan",
    "Status",
    "add_months",
    "utcnow",
    "ImportResult",
    "import_apps",
    "AppCharges",
    "Lifecycle",
    "PlanDays",
    "SweepReport",
    "TeamStatement",
    "Catalog",
    "CostImpact",
    "ChargeRun",
    "DayCharge",
    "Statement",
    "format_money",
    "load_catalog",
    "DeliveryError",
    "DeliveryReport",
    "Notifier",
    "OutboxDispatcher",
    "Provisioner",
    "Replier",
    "RecordingProvisioner",
    "WebhookProvisioner",
    "webhook_signature",
    "AppPage",
    "AppStatus",
    "ChangeRequest",
    "CoreConfig",
    "FieldChange",
    "HistoryEntry",
    "Outcome",
    "PendingRequest",
    "PlanService",
    "Reply",
    "Preview",
    "Checkpointer",
    "checkpoint",
    "make_engine",
    "normalize_url",
    "current_revision",
    "head_revision",
    "upgrade_schema",
    "UnitOfWork",
    *_error_names,
]
