"""planbot's core: the plan rules, money, access policy, records and their persistence.

It knows nothing of Slack and never reads the environment: the entrypoint builds a `CoreConfig`,
an engine (`make_engine`), and a `PlanService`, and passes them down.
"""

from core.access import (
    ROLE_FOR,
    AccessPolicy,
    ApprovalRule,
    Approvers,
    Grant,
    Role,
    effective_role,
)
from core.audit import HASHED_FIELDS, ChainReport, verify_chain
from core.changes import PendingRequest
from core.config import CoreConfig
from core.domain import (
    Actor,
    AppState,
    BillingMode,
    HistoryEntry,
    Operation,
    Plan,
    Status,
    add_months,
    utcnow,
)
from core.errors import *  # noqa: F403  (the error tree is part of the public API)
from core.errors import __all__ as _error_names
from core.facts import (
    Field,
    FieldChange,
    Notice,
    NoticeCode,
    Outcome,
    Preview,
    Refusal,
    parse_config_text,
)
from core.forms import FORM_OPERATIONS, PICKER_LIMIT
from core.health import OutboxBacklog, outbox_backlog, owner_channels
from core.home import APPS_PER_PAGE, AppLine, ComingUp, HomeBoard, WaitingRequest
from core.importer import ImportResult
from core.lifecycle import Lifecycle, SweepReport
from core.messages import (
    AccessChanged,
    ApprovalCardPosted,
    ApprovalCardUpdate,
    ApprovalRequested,
    CardDecided,
    ChangeApplied,
    DeliveryFailed,
    DevExpiryReminder,
    HomeChanged,
    HomePublish,
    Message,
    PurgeWarning,
    Rendered,
    RequestEvent,
    StatementIssued,
)
from core.messages import dump as dump_message
from core.messages import load as load_message
from core.money import (
    Catalog,
    ChargeRun,
    CostImpact,
    DayCharge,
    Statement,
    billing_window,
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
from core.people import People, Person
from core.provider import (
    FIGURES,
    DailyUsage,
    DriftChanged,
    ImKey,
    ProviderConfig,
    ProviderError,
    ReconciliationDifferences,
    ReconciliationLine,
    TencentCloudAccount,
    UsageLevelReached,
    load_im_keys,
    split_endpoint,
)
from core.provider.jobs import ProviderJobs, ProviderView, ReconcileReport, SyncReport, UsageReport
from core.provisioning import RecordingProvisioner, WebhookProvisioner, webhook_signature
from core.queries import AppPage, AppStatus
from core.requests import ChangeRequest, Click, Request, RequestState
from core.service import PlanService
from core.statements import AppCharges, PlanDays, TeamStatement
from core.store.db import Checkpointer, checkpoint, make_engine, normalize_url
from core.store.ports import Store
from core.store.schema import current_revision, head_revision, upgrade_schema
from core.store.sql import SqlStore
from core.store.waits import observe_waits

__all__ = [
    "APPS_PER_PAGE",
    "FORM_OPERATIONS",
    "HASHED_FIELDS",
    "PICKER_LIMIT",
    "ROLE_FOR",
    "AccessChanged",
    "AccessPolicy",
    "Actor",
    "AppCharges",
    "AppLine",
    "AppPage",
    "AppState",
    "AppStatus",
    "ApprovalCardPosted",
    "ApprovalCardUpdate",
    "ApprovalRequested",
    "ApprovalRule",
    "Approvers",
    "BillingMode",
    "CardDecided",
    "Catalog",
    "ChargeRun",
    "ChainReport",
    "ChangeApplied",
    "ChangeRequest",
    "ComingUp",
    "Checkpointer",
    "Click",
    "CoreConfig",
    "CostImpact",
    "DayCharge",
    "DeliveryError",
    "DeliveryFailed",
    "DeliveryReport",
    "DevExpiryReminder",
    "Field",
    "FieldChange",
    "Grant",
    "HistoryEntry",
    "HomeBoard",
    "HomeChanged",
    "HomePublish",
    "ImportResult",
    "Lifecycle",
    "Message",
    "Notice",
    "NoticeCode",
    "Notifier",
    "Operation",
    "Outcome",
    "OutboxBacklog",
    "OutboxDispatcher",
    "PendingRequest",
    "People",
    "Person",
    "Plan",
    "PlanDays",
    "PlanService",
    "Preview",
    "Provisioner",
    "PurgeWarning",
    "RecordingProvisioner",
    "Refusal",
    "Rendered",
    "Replier",
    "Request",
    "RequestEvent",
    "RequestState",
    "Role",
    "SqlStore",
    "Statement",
    "StatementIssued",
    "Status",
    "Store",
    "SweepReport",
    "TeamStatement",
    "WaitingRequest",
    "WebhookProvisioner",
    "add_months",
    "billing_window",
    "checkpoint",
    "current_revision",
    "dump_message",
    "effective_role",
    "format_money",
    "head_revision",
    "load_catalog",
    "load_message",
    "make_engine",
    "normalize_url",
    "observe_waits",
    "outbox_backlog",
    "owner_channels",
    "parse_config_text",
    "upgrade_schema",
    "utcnow",
    "verify_chain",
    "webhook_signature",
    # the provider connector
    "FIGURES",
    "DailyUsage",
    "DriftChanged",
    "ImKey",
    "ProviderConfig",
    "ProviderError",
    "ProviderJobs",
    "ProviderView",
    "ReconcileReport",
    "ReconciliationDifferences",
    "ReconciliationLine",
    "SyncReport",
    "TencentCloudAccount",
    "UsageLevelReached",
    "UsageReport",
    "load_im_keys",
    "split_endpoint",
    *_error_names,
]
