"""The adapters that talk to the provider: Tencent Cloud's API (through its SDK) and the IM REST API.

- `TencentCloudAccount`: `cim` DescribeSdkAppid (the account's SDKAppIDs) and `billing`
  DescribeBillResourceSummary (what each resource was billed in a month), signed TC3-HMAC-SHA256
  by the SDK; `ProviderConfig.endpoint` points every call at another base URL.
- `ImRestApi`: `v4/openconfigsvr/getappinfo`, an app's daily figures for the last 30 days, as the
  app's admin (a UserSig made by `user_sig`), at most `ProviderConfig.im_rate` calls a second.

Every failure becomes a `ProviderError`; throttling and network failures are retried a few times
with backoff (`attempts`, `backoff`), authentication failures never.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections import deque
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any, TypeVar

from core.provider.model import BilledAmount, DailyUsage, ImKey, ProviderConfig, ProviderError

__all__ = ["ImRestApi", "RateLimiter", "TencentCloudAccount", "split_endpoint", "user_sig"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: the IM REST API's answers to too many calls (retried later)
IM_THROTTLED = frozenset({60007, 60011, 60018, 60019, 70050})
#: the IM REST API's answers to a bad admin, key or UserSig (fixed only by changing the keys)
IM_AUTH = frozenset({60004, 60005, 60010, 70001, 70003, 70009, 70013, 70014, 70016, 70020})
#: getappinfo's fields, by the figure planbot keeps
IM_FIELDS = {
    "active_users": "ActiveUserNum",
    "logins": "LoginTimes",
    "peak_online": "MaxOnlineNum",
    "registered_users": "RegistUserNumTotal",
    "groups": "GroupAllGroupNum",
    "messages": "UpMsgNum",
}


def user_sig(sdkappid: int | str, key: str, identifier: str, *, now: int, expire: int) -> str:
    """A UserSig (the provider's tls-sig-api-v2): an HMAC-SHA256 of the fixed field layout with
    the app's secret key, in a zlib-compressed JSON document, base64 with `+/=` as `*-_`."""
    content = (
        f"TLS.identifier:{identifier}\n"
        f"TLS.sdkappid:{int(sdkappid)}\n"
        f"TLS.time:{now}\n"
        f"TLS.expire:{expire}\n"
    )
    mac = hmac.new(key.encode(), content.encode(), hashlib.sha256).digest()
    document = {
        "TLS.ver": "2.0",
        "TLS.identifier": identifier,
        "TLS.sdkappid": int(sdkappid),
        "TLS.expire": expire,
        "TLS.time": now,
        "TLS.sig": base64.b64encode(mac).decode(),
    }
    packed = zlib.compress(json.dumps(document, separators=(",", ":")).encode())
    return base64.b64encode(packed).decode().translate(str.maketrans("+/=", "*-_"))


class RateLimiter:
    """At most `rate` calls in any `period` seconds, across threads (a sliding window)."""

    def __init__(
        self,
        rate: float,
        period: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.capacity = max(1, int(rate * period))
        # a little slack, so that calls spread over the network still arrive within the limit
        self.period = period * 1.02
        self.clock = clock
        self.sleep = sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until one more call fits in the window, and count it."""
        while True:
            with self._lock:
                now = self.clock()
                while self._sent and now - self._sent[0] >= self.period:
                    self._sent.popleft()
                if len(self._sent) < self.capacity:
                    self._sent.append(now)
                    return
                delay = self.period - (now - self._sent[0])
            self.sleep(max(delay, 0.0005))


def _retrying(
    call: Callable[[], T], *, attempts: int, backoff: float, sleep: Callable[[float], None]
) -> T:
    for attempt in range(attempts):
        try:
            return call()
        except ProviderError as err:
            if not err.retryable or attempt == attempts - 1:
                raise
            log.info("provider call failed (%s), retrying", err.code)
            sleep(backoff * (2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover


def split_endpoint(base_url: str) -> tuple[str, str]:
    """('http', '127.0.0.1:9000') from 'http://127.0.0.1:9000'; ValueError when not a base URL."""
    parts = urllib.parse.urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{base_url!r} is not an http(s) base URL such as http://127.0.0.1:9000")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{base_url!r} must be a scheme and host only (no path)")
    return parts.scheme, parts.netloc


def _cloud_error(err: Exception, service: str) -> ProviderError:
    code = str(getattr(err, "code", "") or type(err).__name__)
    message = str(getattr(err, "message", "") or err)
    if code.startswith(("AuthFailure", "UnauthorizedOperation")):
        kind = "auth"
    elif code.startswith("RequestLimitExceeded"):
        kind = "throttled"
    elif code in ("ClientNetworkError", "ServerNetworkError") or code.startswith(
        ("InternalError", "ResourceUnavailable")
    ):
        kind = "unavailable"
        message = message.splitlines()[0][:200] if message else code
    else:
        kind = "refused"
    return ProviderError(kind, code, message, service=service)


def _decimal(value: object) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


class TencentCloudAccount:
    """The account's SDKAppIDs and monthly bill, through the Tencent Cloud SDK."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        attempts: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from tencentcloud.billing.v20180709 import billing_client
        from tencentcloud.cim.v20190318 import cim_client
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile

        if not config.enabled:
            raise ValueError("the provider connector has no credentials")

        def profile() -> Any:
            http = HttpProfile(reqTimeout=int(max(1, config.timeout)))
            if config.endpoint:
                http.protocol, http.endpoint = split_endpoint(config.endpoint)
                http.scheme = http.protocol
            return ClientProfile(httpProfile=http)

        secret = credential.Credential(config.secret_id, config.secret_key)
        self._cim = cim_client.CimClient(secret, config.region, profile())
        self._billing = billing_client.BillingClient(secret, config.region, profile())
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep

    def _call(self, service: str, call: Callable[[], T]) -> T:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )

        def once() -> T:
            try:
                return call()
            except TencentCloudSDKException as err:
                raise _cloud_error(err, service) from None

        return _retrying(once, attempts=self.attempts, backoff=self.backoff, sleep=self.sleep)

    def app_ids(self) -> set[str]:
        """The SDKAppIDs of the account (cim DescribeSdkAppid)."""
        from tencentcloud.cim.v20190318 import models

        response = self._call(
            "cim", lambda: self._cim.DescribeSdkAppid(models.DescribeSdkAppidRequest())
        )
        return {str(i) for i in (response.SdkAppids or [])}

    def billed(self, month: str) -> dict[str, BilledAmount]:
        """Per resource id, what the month's bill charged (billing DescribeBillResourceSummary)."""
        from tencentcloud.billing.v20180709 import models

        totals: dict[str, tuple[Decimal, Decimal | None]] = {}
        offset, limit = 0, 1000
        while True:
            request = models.DescribeBillResourceSummaryRequest()
            request.Offset, request.Limit, request.Month = offset, limit, month
            request.NeedRecordNum = 1
            response = self._call(
                "billing", partial(self._billing.DescribeBillResourceSummary, request)
            )
            page = list(response.ResourceSummarySet or [])
            for item in page:
                resource = str(item.ResourceId or "").strip()
                if not resource:
                    continue
                real = _decimal(item.RealTotalCost) or Decimal(0)
                listed = _decimal(item.TotalCost)
                before_real, before_list = totals.get(resource, (Decimal(0), None))
                if listed is not None:
                    before_list = (before_list or Decimal(0)) + listed
                totals[resource] = (before_real + real, before_list)
            offset += len(page)
            total = response.Total if response.Total is not None else offset
            if not page or offset >= int(total):
                break
        return {r: BilledAmount(real, listed) for r, (real, listed) in totals.items()}


class ImRestApi:
    """The IM REST API's daily figures of an app, as its admin, within the rate limit."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        attempts: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.config = config
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep
        self.clock = clock
        self.limiter = limiter or RateLimiter(config.im_rate)

    def _base(self, key: ImKey) -> str:
        host = (key.host or self.config.im_host).strip().rstrip("/")
        return host if host.startswith(("http://", "https://")) else f"https://{host}"

    def daily_usage(self, key: ImKey) -> list[DailyUsage]:
        """The app's figures for each day the API returns (the last 30), oldest first."""

        def once() -> list[DailyUsage]:
            self.limiter.wait()
            return self._get(key)

        return _retrying(once, attempts=self.attempts, backoff=self.backoff, sleep=self.sleep)

    def _get(self, key: ImKey) -> list[DailyUsage]:
        signature = user_sig(key.app_id, key.key, key.admin, now=int(self.clock()), expire=3600)
        query = urllib.parse.urlencode(
            {
                "sdkappid": key.app_id,
                "identifier": key.admin,
                "usersig": signature,
                "random": secrets.randbelow(2**32),
                "contenttype": "json",
            }
        )
        request = urllib.request.Request(
            f"{self._base(key)}/v4/openconfigsvr/getappinfo?{query}",
            data=b"{}",
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as err:
            kind = "throttled" if err.code == 429 else "unavailable"
            raise ProviderError(kind, f"HTTP {err.code}", err.reason or "", service="im") from None
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            reason = getattr(err, "reason", err)
            raise ProviderError("unavailable", "unreachable", str(reason), service="im") from None
        try:
            answer = json.loads(body)
            code = int(answer.get("ErrorCode", -1))
        except (ValueError, AttributeError, TypeError):
            raise ProviderError("unavailable", "bad answer", "not JSON", service="im") from None
        if code != 0:
            kind = "throttled" if code in IM_THROTTLED else "auth" if code in IM_AUTH else "refused"
            info = str(answer.get("ErrorInfo") or "")[:200]
            raise ProviderError(kind, str(code), info, service="im")
        days = [_daily(key.app_id, entry) for entry in answer.get("Result") or []]
        return sorted((d for d in days if d is not None), key=lambda d: d.day)


def _daily(app_id: str, entry: Any) -> DailyUsage | None:
    if not isinstance(entry, dict):
        return None
    try:
        day = date(int(entry["Date"][:4]), int(entry["Date"][4:6]), int(entry["Date"][6:8]))
    except (KeyError, ValueError, TypeError):
        return None

    def number(field: str) -> int:
        try:
            return max(0, int(str(entry.get(field, 0)).strip() or 0))
        except ValueError:
            return 0

    return DailyUsage(app_id, day, **{name: number(field) for name, field in IM_FIELDS.items()})
