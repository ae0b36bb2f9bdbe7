"""`planbot doctor` against the fake Slack: one line per check, the fix named when one fails."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.doctor import manifest_bot_scopes, run_doctor
from fakes.slack import DEFAULT_SCOPES, FakeSlack
from tests.e2e.conftest import AUDIT, PLANBOT, TEAM, planbot_env, seed_csv
from tests.support.fake_tencent import FakeTencentCloud

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
CHECKS = [
    "settings",
    "database",
    "slack token",
    "slack scopes",
    "audit channel",
    "approvals channel",
    "owner channels",
    "provider credentials",
]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A fake Slack of the test's own (the tests change what it answers)."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite database with the seed apps (owned by CTEAM), made by the CLI."""
    tmp = tmp_path_factory.mktemp("doctor")
    url = f"sqlite:///{tmp / 'planbot.sqlite3'}"
    seed = tmp / "seed.csv"
    seed.write_text(seed_csv())
    with FakeSlack() as fake:
        subprocess.run(
            [PLANBOT, "apps", "import", str(seed)],
            env=planbot_env(fake, url),
            cwd=tmp,
            check=True,
            capture_output=True,
        )
    return url


def doctor(slack: FakeSlack, database_url: str, **extra: str) -> tuple[int, dict[str, str]]:
    """Run the checks in this process; the exit status and each check's line by name (and
    the summary line under "")."""
    env = planbot_env(slack, database_url, extra)
    for name, value in extra.items():
        if value == "":
            env.pop(name, None)
    out = io.StringIO()
    code = run_doctor(env, out=out)
    lines = out.getvalue().splitlines()
    by_name = {}
    for line in lines[:-1]:
        verdict, rest = line.split(None, 1)
        name = rest.split(":", 1)[0]
        by_name[name] = f"{verdict} {rest}"
    assert list(by_name) == CHECKS, lines
    by_name[""] = lines[-1]
    return code, by_name


def test_the_manifest_asks_for_the_scopes_the_fake_grants() -> None:
    assert manifest_bot_scopes(ROOT / "manifest.yml") == list(DEFAULT_SCOPES)


def test_a_good_setup_passes_every_check_and_exits_zero(
    slack: FakeSlack, database: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [PLANBOT, "doctor"],
        env=planbot_env(slack, database),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(CHECKS) + 1
    assert all(line.startswith("ok ") for line in lines[:-1]), lines
    assert lines[-1] == f"all {len(CHECKS)} checks passed"
    assert "bot @planbot (UBOT)" in result.stdout
    assert f"the bot is a member of #{AUDIT.lower()} ({AUDIT})" in result.stdout
    assert "the bot can post in all 1" in result.stdout  # CTEAM owns every seed app with one
    # it asked Slack, and changed nothing there
    assert slack.calls("auth.test") and not slack.calls("chat.postMessage")


def test_the_bot_missing_from_the_audit_channel_fails_with_the_invitation_to_send(
    slack: FakeSlack, database: str, tmp_path: Path
) -> None:
    slack.channels[AUDIT] = {"name": "plan-audit", "is_member": False}
    result = subprocess.run(
        [PLANBOT, "doctor"],
        env=planbot_env(slack, database),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert line == (
        f"FAIL  audit channel: the bot is not a member of #plan-audit ({AUDIT}); "
        f"fix: invite it: /invite @planbot in #plan-audit ({AUDIT})"
    )
    assert result.stdout.splitlines()[-1] == f"1 of {len(CHECKS)} checks failed"


def test_a_refused_token_fails_naming_the_setting_and_skips_what_needs_it(
    slack: FakeSlack, database: str
) -> None:
    slack.refused_tokens.add("xoxb-e2e")
    code, lines = doctor(slack, database)
    summary = lines[""]
    assert code == 1
    assert lines["slack token"].startswith(
        "FAIL slack token: Slack refused the token (invalid_auth)"
    )
    assert "fix: put the app's Bot User OAuth Token (xoxb-…" in lines["slack token"]
    assert "SLACK_BOT_TOKEN" in lines["slack token"]
    for name in ("slack scopes", "audit channel", "owner channels"):
        assert lines[name].startswith("skip"), lines[name]
    assert lines["database"].startswith("ok")
    assert summary == f"1 of {len(CHECKS)} checks failed, 4 skipped"


def test_a_missing_scope_fails_naming_it_and_the_reinstall(slack: FakeSlack, database: str) -> None:
    slack.scopes = ["commands", "chat:write", "usergroups:read"]
    code, lines = doctor(slack, database)
    assert code == 1
    assert lines["slack scopes"].startswith("FAIL slack scopes: missing channels:read, groups:read")
    assert "reinstall the app" in lines["slack scopes"]


def test_owner_channels_the_bot_cannot_post_in_are_counted(slack: FakeSlack, database: str) -> None:
    slack.channels[TEAM] = None  # a private channel it was never invited to: not found
    code, lines = doctor(slack, database)
    assert code == 1
    assert lines["owner channels"] == (
        f"FAIL owner channels: the bot cannot post in 1 of 1: {TEAM}: not found; "
        "fix: invite it to each (/invite @planbot), or give those apps another owner channel"
    )


def test_an_archived_approvals_channel_fails(slack: FakeSlack, database: str) -> None:
    slack.channels["C0APPROVALS"] = {"name": "approvals", "is_archived": True}
    code, lines = doctor(slack, database, PLANBOT_APPROVALS_CHANNEL="C0APPROVALS")
    assert code == 1
    assert lines["approvals channel"].startswith(
        "FAIL approvals channel: #approvals (C0APPROVALS) is archived; fix: point "
        "PLANBOT_APPROVALS_CHANNEL at a channel in use"
    )


def test_a_database_without_the_schema_fails_naming_the_upgrade(
    slack: FakeSlack, tmp_path: Path
) -> None:
    code, lines = doctor(slack, f"sqlite:///{tmp_path / 'missing.sqlite3'}")
    assert code == 1
    assert lines["database"].startswith("FAIL database: no SQLite database at")
    assert "fix: run `planbot db upgrade`" in lines["database"]
    assert not (tmp_path / "missing.sqlite3").exists()  # the doctor created nothing

    (tmp_path / "empty.sqlite3").write_bytes(b"")
    code, lines = doctor(slack, f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    assert "holds no planbot schema; fix: run `planbot db upgrade`" in lines["database"]
    assert lines["owner channels"].startswith("skip")


def test_an_unreachable_database_fails_naming_the_setting(slack: FakeSlack) -> None:
    code, lines = doctor(slack, "postgresql://planbot@127.0.0.1:1/planbot")
    assert code == 1
    assert lines["database"].startswith("FAIL database: cannot reach postgresql+psycopg://")
    assert "fix: check DATABASE_URL" in lines["database"]


def test_a_setting_that_does_not_parse_fails_first_and_names_itself(
    slack: FakeSlack, database: str
) -> None:
    code, lines = doctor(slack, database, PLANBOT_BILLING_TZ="Mars/Olympus")
    assert code == 1
    assert lines["settings"] == (
        "FAIL settings: PLANBOT_BILLING_TZ: 'Mars/Olympus' is not a time zone name; "
        "fix: correct PLANBOT_BILLING_TZ (README, Configuration)"
    )
    assert all(lines[name].startswith("skip") for name in CHECKS[1:])
    assert lines[""] == f"1 of {len(CHECKS)} checks failed, {len(CHECKS) - 1} skipped"


def test_provider_credentials_out_of_pairs_fail_the_settings(
    slack: FakeSlack, database: str
) -> None:
    code, lines = doctor(
        slack, database, TENCENTCLOUD_SECRET_ID="AKIDexample", TENCENTCLOUD_SECRET_KEY=""
    )
    assert code == 1
    assert lines["settings"] == (
        "FAIL settings: TENCENTCLOUD_SECRET_KEY: required when TENCENTCLOUD_SECRET_ID is set; "
        "fix: correct TENCENTCLOUD_SECRET_KEY (README, Configuration)"
    )
    assert lines["provider credentials"].startswith("skip")


@pytest.fixture
def cloud() -> Iterator[FakeTencentCloud]:
    with FakeTencentCloud() as fake:
        fake.sdk_app_ids = [1400000101, 1400000201, 1400000999]
        yield fake


def provider(cloud: FakeTencentCloud, keys: Path, **changed: str) -> dict[str, str]:
    keys.write_text(
        '[apps.1400000101]\nadmin = "administrator"\nkey = "k1"\n\n'
        '[apps.1400000555]\nadmin = "administrator"\nkey = "k5"\n'
    )
    return {
        "TENCENTCLOUD_SECRET_ID": cloud.secret_id,
        "TENCENTCLOUD_SECRET_KEY": cloud.secret_key,
        "PLANBOT_TENCENT_ENDPOINT": cloud.base_url,
        "PLANBOT_IM_KEYS": str(keys),
        **changed,
    }


def test_the_provider_credentials_are_tried_against_its_api(
    slack: FakeSlack, database: str, cloud: FakeTencentCloud, tmp_path: Path
) -> None:
    keys = tmp_path / "im-keys.toml"
    code, lines = doctor(slack, database, **provider(cloud, keys))
    assert code == 0, lines
    assert lines["provider credentials"] == (
        "ok provider credentials: the provider's API takes them: 3 SDKAppIDs in the account, "
        "IM keys for 1 of them"
    )
    assert [c.action for c in cloud.calls] == ["DescribeSdkAppid"]  # a read, nothing else

    code, lines = doctor(
        slack, database, **provider(cloud, keys, TENCENTCLOUD_SECRET_KEY="not-the-key")
    )
    assert code == 1
    assert lines["provider credentials"].startswith(
        "FAIL provider credentials: the provider refused them (AuthFailure.SignatureFailure); "
        "fix: check TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY"
    )
    assert lines[""] == f"1 of {len(CHECKS)} checks failed"

    cloud.allowed[cloud.secret_id] = {"DescribeBillResourceSummary"}  # a policy without cim
    code, lines = doctor(slack, database, **provider(cloud, keys))
    assert code == 1
    assert "refused them (AuthFailure.UnauthorizedOperation)" in lines["provider credentials"]
    assert "cim:DescribeSdkAppid" in lines["provider credentials"]


def test_a_provider_api_that_does_not_answer_fails_without_waiting_through_retries(
    slack: FakeSlack, database: str, cloud: FakeTencentCloud, tmp_path: Path
) -> None:
    cloud.throttle(1)
    code, lines = doctor(slack, database, **provider(cloud, tmp_path / "im-keys.toml"))
    assert code == 1
    assert lines["provider credentials"].startswith(
        "FAIL provider credentials: the provider's API did not answer (RequestLimitExceeded); "
        "fix: try again later"
    )
    assert len(cloud.calls) == 1


def test_an_im_keys_file_that_does_not_read_fails_naming_it(
    slack: FakeSlack, database: str, cloud: FakeTencentCloud, tmp_path: Path
) -> None:
    keys = tmp_path / "im-keys.toml"
    env = provider(cloud, keys)
    keys.write_text("[apps.1400000101\n")
    code, lines = doctor(slack, database, **env)
    assert code == 1
    assert lines["provider credentials"].startswith("FAIL provider credentials: PLANBOT_IM_KEYS: ")
    assert "fix: correct the file PLANBOT_IM_KEYS names" in lines["provider credentials"]
    assert not cloud.calls
