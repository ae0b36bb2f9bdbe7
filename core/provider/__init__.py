"""The provider connector: the provider's own truth beside planbot's records.

Pure parts (`model`: drift, usage levels, reconciliation; `messages`: the outbox facts), the
adapters that call the provider (`tencent`), and the jobs that store and post what they find
(`jobs`). It is an adapter like `core.provisioning`: nothing else in core depends on it.
"""

from core.provider.jobs import (
    AccountPort,
    ProviderJobs,
    ProviderSweep,
    ProviderView,
    ReconcileReport,
    SyncReport,
    UsagePort,
    UsageReport,
)
from core.provider.messages import DriftChanged, ReconciliationDifferences, UsageLevelReached
from core.provider.model import (
    FIGURES,
    LIMITED_FIGURES,
    BilledAmount,
    DailyUsage,
    Drift,
    DriftChange,
    ImKey,
    ProviderConfig,
    ProviderError,
    ReconciliationLine,
    UsageLevel,
    load_im_keys,
    parse_im_keys,
    reconcile,
    usage_warnings,
)
from core.provider.tencent import (
    ImRestApi,
    RateLimiter,
    TencentCloudAccount,
    split_endpoint,
    user_sig,
)

__all__ = [
    "FIGURES",
    "LIMITED_FIGURES",
    "AccountPort",
    "BilledAmount",
    "DailyUsage",
    "Drift",
    "DriftChange",
    "DriftChanged",
    "ImKey",
    "ImRestApi",
    "ProviderConfig",
    "ProviderError",
    "ProviderJobs",
    "ProviderSweep",
    "ProviderView",
    "RateLimiter",
    "ReconcileReport",
    "ReconciliationDifferences",
    "ReconciliationLine",
    "SyncReport",
    "TencentCloudAccount",
    "UsageLevel",
    "UsageLevelReached",
    "UsagePort",
    "UsageReport",
    "load_im_keys",
    "parse_im_keys",
    "reconcile",
    "split_endpoint",
    "usage_warnings",
    "user_sig",
]
