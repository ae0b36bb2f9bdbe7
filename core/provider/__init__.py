"""The provider connector: the provider's own truth beside planbot's records.

Pure parts (`model`: drift, usage levels, reconciliation; `messages`: the outbox facts), the
adapters that call the provider (`tencent`), and the jobs that store and post what they find
(`jobs`, over the store's `provider` repository). It is an adapter like `core.provisioning`:
nothing else in core depends on it but the message union and the store's port, which name its
plain values. The jobs are imported from `core.provider.jobs` (or `core`), since they need the
store and the messages, which need this package's values.
"""

from core.provider.messages import (
    DriftChanged,
    ProviderMessage,
    ReconciliationDifferences,
    UsageLevelReached,
)
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
    "BilledAmount",
    "DailyUsage",
    "Drift",
    "DriftChange",
    "DriftChanged",
    "ImKey",
    "ImRestApi",
    "ProviderConfig",
    "ProviderError",
    "ProviderMessage",
    "RateLimiter",
    "ReconciliationDifferences",
    "ReconciliationLine",
    "TencentCloudAccount",
    "UsageLevel",
    "UsageLevelReached",
    "load_im_keys",
    "parse_im_keys",
    "reconcile",
    "split_endpoint",
    "usage_warnings",
    "user_sig",
]
