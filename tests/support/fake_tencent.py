"""A fake Tencent Cloud API and a fake IM REST API on loopback, for tests of the provider connector.

`FakeTencentCloud` answers `cim` DescribeSdkAppid (2019-03-18) and `billing`
DescribeBillResourceSummary (2018-07-09) at its base URL, after checking each request's
TC3-HMAC-SHA256 signature the way the real service does: the canonical request rebuilt from what
arrived (method, path, query, the signed headers' lower-cased values, the SHA-256 of the body),
the credential scope's date against X-TC-Timestamp, the timestamp within five minutes, the secret
id known, the signing key derived from the secret key, date and service. Its errors are the real
ones (`AuthFailure.SignatureFailure`, `AuthFailure.SignatureExpire`,
`AuthFailure.SecretIdNotFound`, `AuthFailure.UnauthorizedOperation`, `RequestLimitExceeded`,
`InvalidAction`, `NoSuchVersion`, ...), in the real envelope (`{"Response": {"Error": ...}}`, HTTP
200, `Content-Type: application/json`), so the real SDK's requests and error handling are tested.

`FakeIm` answers `v4/openconfigsvr/getappinfo` after verifying the UserSig (base64 with `*-_`,
zlib, JSON; the HMAC-SHA256 of the fixed field layout with the app's key; identifier, SDKAppID
and expiry), as the app's admin only, and enforces the documented 200 calls a second (60007).

    with FakeTencentCloud() as cloud, FakeIm() as im:
        cloud.sdk_app_ids = [1400000001]
        im.add_app("1400000001", admin="administrator", key="...")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["CloudCall", "FakeIm", "FakeTencentCloud", "ImCall", "daily_figures"]

#: the products the fake serves: credential-scope service -> (version, actions)
PRODUCTS = {
    "cim": ("2019-03-18", frozenset({"DescribeSdkAppid"})),
    "billing": ("2018-07-09", frozenset({"DescribeBillResourceSummary"})),
}
SKEW = 300  # seconds a signed request's timestamp may differ from the server's clock


@dataclass(frozen=True)
class CloudCall:
    """One request the fake cloud API received, and the error it answered (None: success)."""

    action: str
    service: str
    secret_id: str
    params: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class ImCall:
    """One getappinfo request, and the ErrorCode it answered."""

    sdkappid: str
    identifier: str
    error: int
    at: float


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Loopback:
    """A threaded HTTP server on 127.0.0.1 calling `self.handle(handler)` for every request."""

    def __init__(self, port: int = 0) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                owner.handle(self)

            def do_GET(self) -> None:
                owner.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = _Server(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @staticmethod
    def reply(handler: BaseHTTPRequestHandler, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


class FakeTencentCloud(_Loopback):
    """The cloud API's two actions, behind the real TC3-HMAC-SHA256 verification."""

    def __init__(
        self,
        *,
        secrets: dict[str, str] | None = None,
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(port)
        #: secret id -> secret key of the account's API keys
        self.secrets = dict(secrets or {"AKIDplanbottest": "planbot-test-secret-key"})
        #: secret id -> the actions its CAM policy allows (absent: all)
        self.allowed: dict[str, set[str]] = {}
        self.sdk_app_ids: list[int] = []
        #: month (YYYY-MM) -> the resource summaries of the month's bill
        self.bills: dict[str, list[dict[str, Any]]] = {}
        self.clock = clock
        self.calls: list[CloudCall] = []
        self._scripted: deque[tuple[str, str]] = deque()

    @property
    def secret_id(self) -> str:
        """The first secret id (the one tests use)."""
        return next(iter(self.secrets))

    @property
    def secret_key(self) -> str:
        """Its secret key."""
        return self.secrets[self.secret_id]

    def throttle(self, count: int, code: str = "RequestLimitExceeded") -> None:
        """The next `count` correctly signed requests answer a throttling error."""
        self.fail_next(count, code, "Your current request times equals to `20` in a second.")

    def fail_next(self, count: int, code: str, message: str) -> None:
        """The next `count` correctly signed requests answer this error."""
        with self.lock:
            self._scripted.extend([(code, message)] * count)

    def errors(self) -> list[str | None]:
        """The error code of every call so far (None for a success)."""
        with self.lock:
            return [c.error for c in self.calls]

    def bill(self, month: str, resource_id: str, real: str, total: str | None = None) -> None:
        """Add a line to the month's bill for a resource (an SDKAppID for IM)."""
        self.bills.setdefault(month, []).append(
            {
                "BusinessCodeName": "Instant Messaging",
                "ProductCodeName": "IM Standard Edition",
                "PayModeName": "Postpaid",
                "ResourceId": resource_id,
                "ResourceName": "",
                "ActionTypeName": "Monthly settlement",
                "RealTotalCost": real,
                "TotalCost": total if total is not None else real,
                "BillMonth": month,
            }
        )

    # --- serving -----------------------------------------------------------------------------

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        action = headers.get("x-tc-action", "")
        try:
            service, secret_id = self._verify(handler.command, handler.path, headers, body, action)
            params = self._params(handler.command, handler.path, body)
            scripted = self._next_scripted()
            if scripted is not None:
                raise _CloudError(*scripted)
            result = self._run(service, action, params)
        except _CloudError as err:
            self._record(action, "", "", {}, err.code)
            self.reply(
                handler,
                {
                    "Response": {
                        "Error": {"Code": err.code, "Message": err.message},
                        "RequestId": str(uuid.uuid4()),
                    }
                },
            )
            return
        self._record(action, service, secret_id, params, None)
        self.reply(handler, {"Response": {**result, "RequestId": str(uuid.uuid4())}})

    def _record(
        self, action: str, service: str, secret_id: str, params: dict[str, Any], error: str | None
    ) -> None:
        with self.lock:
            self.calls.append(CloudCall(action, service, secret_id, params, error))

    def _next_scripted(self) -> tuple[str, str] | None:
        with self.lock:
            return self._scripted.popleft() if self._scripted else None

    def _verify(
        self, method: str, path: str, headers: dict[str, str], body: bytes, action: str
    ) -> tuple[str, str]:
        """(service, secret id) of a correctly signed request, else the real error."""
        for name in ("x-tc-action", "x-tc-timestamp", "x-tc-version", "authorization"):
            if not headers.get(name):
                raise _CloudError("MissingParameter", f"The request is missing {name}.")
        auth = headers["authorization"]
        algorithm, _, rest = auth.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part.strip())
        credential = fields.get("Credential", "").split("/")
        if (
            algorithm != "TC3-HMAC-SHA256"
            or len(credential) != 4
            or credential[3] != "tc3_request"
            or not fields.get("SignedHeaders")
            or not fields.get("Signature")
        ):
            raise _CloudError("AuthFailure.InvalidAuthorization", "Authorization is invalid.")
        secret_id, scope_date, service, _ = credential
        product = PRODUCTS.get(service)
        if product is None or action not in product[1]:
            raise _CloudError("InvalidAction", f"The action {action} does not exist.")
        if headers["x-tc-version"] != product[0]:
            raise _CloudError("NoSuchVersion", "The API version does not exist.")
        try:
            timestamp = int(headers["x-tc-timestamp"])
        except ValueError:
            raise _CloudError("InvalidParameter", "X-TC-Timestamp is not a number.") from None
        if abs(self.clock() - timestamp) > SKEW:
            raise _CloudError(
                "AuthFailure.SignatureExpire",
                "The request has expired (X-TC-Timestamp is more than 5 minutes away).",
            )
        key = self.secrets.get(secret_id)
        if key is None:
            raise _CloudError("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        signed = fields["SignedHeaders"]
        names = signed.split(";")
        if "content-type" not in names or "host" not in names or names != sorted(names):
            raise _CloudError("AuthFailure.SignatureFailure", "The signed headers are invalid.")
        day = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        parts = urlsplit(path)
        query = parts.query if method == "GET" else ""
        payload = b"" if method == "GET" else body
        if headers.get("x-tc-content-sha256") == "UNSIGNED-PAYLOAD":
            hashed = hashlib.sha256(b"UNSIGNED-PAYLOAD").hexdigest()
        else:
            hashed = hashlib.sha256(payload).hexdigest()
        canonical_headers = "".join(f"{n}:{headers.get(n, '').strip().lower()}\n" for n in names)
        canonical = "\n".join([method, parts.path or "/", query, canonical_headers, signed, hashed])
        scope = f"{scope_date}/{service}/tc3_request"
        to_sign = "\n".join(
            [
                "TC3-HMAC-SHA256",
                headers["x-tc-timestamp"],
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        signing = _hmac(_hmac(_hmac(("TC3" + key).encode(), scope_date), service), "tc3_request")
        expected = hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()
        if scope_date != day or not hmac.compare_digest(expected, fields["Signature"]):
            raise _CloudError(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature "
                "is correct.",
            )
        allowed = self.allowed.get(secret_id)
        if allowed is not None and f"{service}:{action}" not in allowed:
            raise _CloudError(
                "AuthFailure.UnauthorizedOperation",
                f"you are not authorized to perform operation ({service}:{action})",
            )
        return service, secret_id

    @staticmethod
    def _params(method: str, path: str, body: bytes) -> dict[str, Any]:
        if method == "GET":
            return {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        try:
            value = json.loads(body or b"{}")
        except ValueError:
            raise _CloudError("InvalidParameter", "The body is not JSON.") from None
        if not isinstance(value, dict):
            raise _CloudError("InvalidParameter", "The body is not a JSON object.")
        return value

    def _run(self, service: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
        if action == "DescribeSdkAppid":
            return {"SdkAppids": list(self.sdk_app_ids)}
        month = str(params.get("Month", ""))
        if len(month) != 7 or month[4] != "-":
            raise _CloudError("InvalidParameterValue", "Month must be yyyy-mm.")
        offset, limit = int(params.get("Offset", 0)), int(params.get("Limit", 0))
        if not 1 <= limit <= 1000 or offset < 0:
            raise _CloudError("InvalidParameterValue", "Limit must be 1 to 1000.")
        lines = self.bills.get(month, [])
        result: dict[str, Any] = {"ResourceSummarySet": lines[offset : offset + limit]}
        if int(params.get("NeedRecordNum", 0)) == 1:
            result["Total"] = len(lines)
        return result


class _CloudError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message


# --- IM REST API -------------------------------------------------------------------------------


def daily_figures(
    last: date, days: int = 30, *, active: int = 100, **fixed: int
) -> list[dict[str, str]]:
    """getappinfo's `Result`: `days` days up to `last`, newest first, figures as strings.

    Active users grow by one a day up to `active` on `last`; other figures are derived from it
    unless given in `fixed` (by their getappinfo names, e.g. MaxOnlineNum=62).
    """
    rows = []
    for back in range(days):
        day = last - timedelta(days=back)
        users = max(0, active - back)
        row = {
            "Date": f"{day:%Y%m%d}",
            "AppId": "1104620500",
            "ActiveUserNum": users,
            "LoginTimes": users * 3,
            "LoginUserNum": users,
            "MaxOnlineNum": users // 10,
            "RegistUserNumOneDay": 5,
            "RegistUserNumTotal": 1000 + users,
            "GroupAllGroupNum": 40,
            "UpMsgNum": users * 7,
            "C2CUpMsgNum": users * 5,
            "GroupUpMsgNum": users * 2,
            **fixed,
        }
        rows.append({k: str(v) for k, v in row.items()})
    return rows


@dataclass
class _ImApp:
    admin: str
    key: str
    figures: list[dict[str, str]] = field(default_factory=list)


class FakeIm(_Loopback):
    """`v4/openconfigsvr/getappinfo`, with UserSig verification and the 200-a-second limit."""

    def __init__(
        self,
        *,
        port: int = 0,
        clock: Callable[[], float] = time.time,
        limit_per_second: int = 200,
    ) -> None:
        super().__init__(port)
        self.apps: dict[str, _ImApp] = {}
        self.clock = clock
        self.limit_per_second = limit_per_second
        self.calls: list[ImCall] = []
        self._scripted: deque[int] = deque()
        self._window: deque[float] = deque()

    def add_app(
        self, app_id: str, *, admin: str, key: str, figures: list[dict[str, str]] | None = None
    ) -> None:
        """An app the fake knows, with its admin, secret key and daily figures."""
        self.apps[app_id] = _ImApp(admin, key, list(figures or []))

    def throttle(self, count: int, code: int = 60007) -> None:
        """The next `count` requests with a valid UserSig answer a rate-limit error."""
        with self.lock:
            self._scripted.extend([code] * count)

    def errors(self) -> list[int]:
        """The ErrorCode of every call so far (0 for a success)."""
        with self.lock:
            return [c.error for c in self.calls]

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        now = self.clock()
        sdkappid, identifier = query.get("sdkappid", ""), query.get("identifier", "")
        if parts.path != "/v4/openconfigsvr/getappinfo" or handler.command != "POST":
            code, info = 60009, "request resource error"
        elif query.get("contenttype") != "json" or not query.get("random", "").isdigit():
            code, info = 60002, "HTTP parse error"
        else:
            code, info = self._check(sdkappid, identifier, query.get("usersig", ""), body, now)
        with self.lock:
            self.calls.append(ImCall(sdkappid, identifier, code, now))
        if code:
            self.reply(handler, {"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": info})
            return
        figures = self.apps[sdkappid].figures
        self.reply(
            handler, {"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "", "Result": figures}
        )

    def _check(
        self, sdkappid: str, identifier: str, usersig: str, body: bytes, now: float
    ) -> tuple[int, str]:
        with self.lock:
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            self._window.append(now)
            if len(self._window) > self.limit_per_second:
                return 60007, "REST API call frequency exceeds the limit"
        try:
            json.loads(body or b"{}")
        except ValueError:
            return 60003, "HTTP request JSON parse error"
        try:
            packed = base64.b64decode(usersig.translate(str.maketrans("*-_", "+/=")), validate=True)
            document = json.loads(zlib.decompress(packed))
            sig_time, expire = int(document["TLS.time"]), int(document["TLS.expire"])
            signed_id, signed_app = str(document["TLS.identifier"]), int(document["TLS.sdkappid"])
            mac = str(document["TLS.sig"])
        except (ValueError, KeyError, TypeError, zlib.error):
            return 70003, "UserSig parse failed"
        if signed_id != identifier:
            return 70013, "the UserID in the request does not match the UserSig's"
        if not sdkappid.isdigit() or signed_app != int(sdkappid):
            return 70014, "the SDKAppID in the request does not match the UserSig's"
        app = self.apps.get(sdkappid)
        if app is None:
            return 70016, "no key for this SDKAppID"
        if sig_time + expire < now:
            return 70001, "UserSig expired"
        content = (
            f"TLS.identifier:{signed_id}\nTLS.sdkappid:{signed_app}\n"
            f"TLS.time:{sig_time}\nTLS.expire:{expire}\n"
        )
        expected = base64.b64encode(_hmac(app.key.encode(), content)).decode()
        if not hmac.compare_digest(expected, mac):
            return 70009, "UserSig verification failed"
        if identifier != app.admin:
            return 60010, "the request needs the app admin's permission"
        with self.lock:
            if self._scripted:
                return self._scripted.popleft(), "REST API call frequency exceeds the limit"
        return 0, ""
