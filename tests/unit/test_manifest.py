"""The Slack app manifest matches what the code registers and calls."""

from __future__ import annotations

import re
from pathlib import Path

from bot import modals

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = (ROOT / "manifest.yml").read_text()

#: the bot scopes each Web API method the code calls needs
SCOPE_OF: dict[str, tuple[str, ...]] = {
    "auth_test": (),  # planbot doctor: the token, and its scopes
    "chat_postMessage": ("chat:write",),
    "chat_update": ("chat:write",),
    "chat_postEphemeral": ("chat:write",),
    "chat_getPermalink": (),  # needs no scope
    "usergroups_users_list": ("usergroups:read",),
    "usergroups_list": ("usergroups:read",),
    "users_info": ("users:read",),
    # whether planbot is in a channel: public ones, and private ones it was invited to
    "conversations_info": ("channels:read", "groups:read"),
    "users_conversations": ("channels:read", "groups:read"),
    # modals and the home tab need no scope
    "views_open": (),
    "views_update": (),
    "views_push": (),
    "views_publish": (),
}
SOURCE = "\n".join(p.read_text() for p in (ROOT / "bot").rglob("*.py"))


def manifest_list(key: str) -> list[str]:
    """The items of a YAML list under `key:` (the manifest is plain enough for this)."""
    block = re.search(rf"^(\s*){key}:\n((?:\1\s+-.*\n)+)", MANIFEST, re.MULTILINE)
    assert block, f"no {key} list in manifest.yml"
    return [
        re.sub(r"\s+#.*$", "", line.split("-", 1)[1]).strip()
        for line in block.group(2).splitlines()
    ]


def test_slash_commands_match_the_registered_ones() -> None:
    in_manifest = set(re.findall(r"-\s*command:\s*(/\S+)", MANIFEST))
    source = "\n".join(p.read_text() for p in (ROOT / "bot").rglob("*.py"))
    registered = set(re.findall(r"\.command\(\"(/[a-z-]+)\"\)", source))
    assert registered == {"/plan"}
    assert in_manifest == registered


def test_bot_scopes_are_exactly_the_ones_the_code_uses() -> None:
    pattern = r"client\.((?:chat|users|usergroups|conversations|auth|views)_\w+)\("
    called = set(re.findall(pattern, SOURCE))
    assert {"views_open", "views_update", "views_publish"} <= called
    needed = {scope for m in called for scope in SCOPE_OF[m]} | {"commands"}  # /plan, shortcut
    assert set(manifest_list("bot")) == needed


def test_interactivity_and_events_point_at_the_one_endpoint() -> None:
    assert re.search(
        r"interactivity:\n\s+is_enabled: true\n\s+request_url: \S+/slack/events", MANIFEST
    )
    assert "url: https://planbot.example.com/slack/events" in MANIFEST
    assert "should_escape: true" in MANIFEST


def test_event_subscriptions_are_the_events_the_code_handles() -> None:
    handled = set(re.findall(r"\.event\(\"(\w+)\"\)", SOURCE))
    assert handled == {"app_home_opened"}
    assert set(manifest_list("bot_events")) == handled
    assert re.search(r"event_subscriptions:\n\s+request_url: \S+/slack/events", MANIFEST)
    # the home tab is drawn for that event, so the manifest turns it on
    assert "home_tab_enabled: true" in MANIFEST and "views_publish(" in SOURCE


def test_shortcuts_are_the_ones_the_code_registers() -> None:
    callback_ids = set(re.findall(r"callback_id:\s*(\S+)", MANIFEST))
    registered = set(re.findall(r"\.shortcut\(modals\.(\w+)\)", SOURCE))
    assert registered == {"SHORTCUT"}
    assert callback_ids == {modals.SHORTCUT}
    assert re.search(r"-\s*name: .+\n\s+type: global\n\s+callback_id: plan_shortcut", MANIFEST)


def test_the_options_load_url_is_set_when_the_code_serves_options() -> None:
    assert re.search(r"\.options\(modals\.PICK_APP\)", SOURCE)
    assert re.search(r"message_menu_options_url: \S+/slack/events", MANIFEST)
