"""Self-checks of the fake Tencent Cloud and IM APIs: what the real SDK signs passes, and a request
altered after signing, a stale timestamp or a forged UserSig does not."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

from tencentcloud.cim.v20190318 import cim_client
from tencentcloud.common import credential
from tencentcloud.common.http.request import RequestInternal
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile

from core.provider import user_sig
from tests.support.fake_tencent import FakeIm, FakeTencentCloud


def signed_request(cloud: FakeTencentCloud, params: dict[str, Any]) -> RequestInternal:
    """The request the real SDK would send for DescribeSdkAppid, signed, not sent."""
    host = cloud.base_url.split("://", 1)[1]
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=host))
    client = cim_client.CimClient(
        credential.Credential(cloud.secret_id, cloud.secret_key), "", profile
    )
    request = RequestInternal(host, "POST", "/", header={})
    client._build_req_inter("DescribeSdkAppid", params, request)
    return request


def send(
    cloud: FakeTencentCloud, request: RequestInternal, body: str | None = None
) -> dict[str, Any]:
    data = (body if body is not None else request.data).encode()
    headers = {k: v for k, v in request.header.items() if k != "Host"}
    raw = urllib.request.Request(cloud.base_url + "/", data=data, method="POST", headers=headers)
    with urllib.request.urlopen(raw, timeout=5) as response:
        return dict(json.loads(response.read())["Response"])


def test_the_sdks_signature_passes_and_an_altered_body_fails() -> None:
    with FakeTencentCloud() as cloud:
        cloud.sdk_app_ids = [1400000001]
        request = signed_request(cloud, {})
        assert send(cloud, request)["SdkAppids"] == [1400000001]
        altered = send(cloud, request, body='{"Extra": 1}')
        assert altered["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_a_request_signed_ten_minutes_ago_has_expired() -> None:
    with FakeTencentCloud(clock=lambda: time.time() + 600) as cloud:
        answer = send(cloud, signed_request(cloud, {}))
        assert answer["Error"]["Code"] == "AuthFailure.SignatureExpire"


def getappinfo(im: FakeIm, sdkappid: str, identifier: str, usersig: str) -> dict[str, Any]:
    query = urllib.parse.urlencode(
        {
            "sdkappid": sdkappid,
            "identifier": identifier,
            "usersig": usersig,
            "random": 7,
            "contenttype": "json",
        }
    )
    request = urllib.request.Request(
        f"{im.base_url}/v4/openconfigsvr/getappinfo?{query}", data=b"{}", method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return dict(json.loads(response.read()))


def test_the_fake_im_checks_usersigs() -> None:
    with FakeIm() as im:
        im.add_app("1400000001", admin="administrator", key="the-key")
        now = int(time.time())
        good = user_sig("1400000001", "the-key", "administrator", now=now, expire=60)
        assert getappinfo(im, "1400000001", "administrator", good)["ErrorCode"] == 0
        forged = user_sig("1400000001", "another-key", "administrator", now=now, expire=60)
        assert getappinfo(im, "1400000001", "administrator", forged)["ErrorCode"] == 70009
        expired = user_sig("1400000001", "the-key", "administrator", now=now - 120, expire=60)
        assert getappinfo(im, "1400000001", "administrator", expired)["ErrorCode"] == 70001
        assert getappinfo(im, "1400000001", "someone", good)["ErrorCode"] == 70013
        user = user_sig("1400000001", "the-key", "someone", now=now, expire=60)
        assert getappinfo(im, "1400000001", "someone", user)["ErrorCode"] == 60010
        assert getappinfo(im, "1400000001", "administrator", "not-a-sig")["ErrorCode"] == 70003
