"""Test support: a fake Slack Web API on loopback and signed Slack request builders."""

from tests.support.fake_slack import Call, FakeSlack
from tests.support.signing import block_action_body, sign, signed_headers, slash_command_body

__all__ = [
    "Call",
    "FakeSlack",
    "block_action_body",
    "sign",
    "signed_headers",
    "slash_command_body",
]
