"""`planbot shell --lang ko` driven as a Korean-speaking person would: an upgrade through the plan
modal, then the home tab, all in Korean.

What is checked is what the shell itself draws: its headings, its lines, the plan modal, the
home tab, and the frame of the preview and result modals (title, footer, buttons). The cards
inside those two modals and the channel messages (the preview's changes and cost, the outcome,
the audit message) are worded by the message renderers and are not checked here.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bot.shell import DEMO_APPS, demo_csv
from core import utcnow
from tests.e2e.test_shell import PLANBOT, TIMEOUT, one_shot, shell_env
from tests.unit.test_surfaces_korean import HANGUL, english_left

pytestmark = pytest.mark.e2e

HEADING = re.compile(r"^── (.*) ──$")
#: the upgrade of demo-chat to premium through the modal: pick the app by typing, the
#: operation, the edition, preview, confirm; then the home tab
UPGRADE = "shortcut; 1 demo-ch; 5 upgrade; 10 premium; 11; 13; /home"
#: the demo apps' names (`demo-legacy`), which are names, not English sentences
NAMES = tuple(app.name for app in DEMO_APPS)


def korean_shell(cwd: Path, command: str, *options: str) -> subprocess.CompletedProcess[str]:
    return one_shot(cwd, command, "--lang", "ko", *options)


def sections(text: str) -> list[tuple[str, list[str]]]:
    """The output cut at each `── heading ──`: the heading and the lines under it."""
    found: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        match = HEADING.match(line)
        if match:
            found.append((match.group(1), []))
        else:
            found[-1][1].append(line)
    return found


def test_an_upgrade_through_the_modal_is_drawn_in_korean(tmp_path: Path) -> None:
    result = korean_shell(tmp_path, UPGRADE)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Traceback" not in out + result.stderr and "\x1b" not in out
    drawn = sections(out)
    headings = [heading for heading, _lines in drawn[1:]]
    assert set(headings) == {"모달", "#CAUDIT (감사)", "#CSHELL (이 채널)", "내 홈 탭"}
    modals = [lines for heading, lines in drawn if heading == "모달"]
    titles = [lines[0] for lines in modals]
    assert titles == ["┌─ 플랜 작업 ─"] * 4 + ["┌─ 변경 확인 ─", "┌─ 완료 ─"]

    # the plan modal, every state of it, and what the shell says as fields are filled in
    for lines in modals[:4]:
        text = "\n".join(lines)
        assert HANGUL.search(text) and english_left(text, *NAMES) == [], text
    form = "\n".join(modals[3])
    assert "[9] 작업: 유료 플랜으로 업그레이드   (선택)" in form
    assert "[10] 버전: 프리미엄 버전: 월 US$699.00   (선택)" in form
    assert "[11] 미리 보기  [12] 취소" in form
    said = "\n".join(drawn[0][1] + [line for lines in modals for line in lines])
    assert "애플리케이션: demo-chat (1400000001) (개발 버전, 활성)" in said
    assert "작업: 유료 플랜으로 업그레이드" in said
    assert "버전: 프리미엄 버전: 월 US$699.00" in said

    # the preview and the result: their frame is the shell's and the modal's
    preview, done = modals[4], modals[5]
    assert [line for line in preview if line.startswith("만료: ")], preview
    assert "[13] 확인  [14] 취소" in preview
    assert "[15] 닫기" in done

    # the home tab after the upgrade
    home = next(lines for heading, lines in drawn if heading == "내 홈 탭")
    tab = "\n".join(home)
    assert HANGUL.search(tab) and english_left(tab, *NAMES) == [], tab
    assert "demo-chat (`1400000001`): 프리미엄 버전, 활성" in tab
    assert "[16] 새 플랜 작업" in tab and "홈 탭을 여는 중…" in out


def test_the_shell_helps_and_refuses_in_korean(tmp_path: Path) -> None:
    result = korean_shell(tmp_path, "help; /other thing; 99")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr  # the other command and button 99
    assert out.startswith("planbot shell: Slack에서 입력하듯이 입력하십시오.\n")
    shell_help = out.split("\n\n", 1)[0]
    assert "종료" in shell_help and english_left(shell_help.replace("help, ?", "")) == []
    assert "여기서는 /plan만 명령입니다: /other은(는) planbot에 전달되지 않습니다." in out
    assert "화면에 99번 버튼이 없습니다." in out


def test_the_language_can_be_given_without_naming_the_shell(tmp_path: Path) -> None:
    result = subprocess.run(
        [PLANBOT, "--lang", "ko", "--no-color", "-c", "/home"],
        cwd=tmp_path,
        env=shell_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "── 내 홈 탭 ──" in result.stdout and "처리할 항목" in result.stdout


def test_the_command_line_speaks_planbot_language(tmp_path: Path) -> None:
    env = {**shell_env(tmp_path), "PLANBOT_LANGUAGE": "ko"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    (tmp_path / "apps.csv").write_text(demo_csv(utcnow(), "CTEAM"))

    def planbot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PLANBOT, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    imported = planbot("apps", "import", "apps.csv")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert imported.stdout.strip() == f"애플리케이션 {len(DEMO_APPS)}개를 가져왔습니다"
    tick = planbot("tick")
    assert tick.returncode == 0, tick.stdout + tick.stderr
    sweep, outbox = tick.stdout.splitlines()[:2]
    assert sweep.startswith("점검: ") and "일시 중단" in sweep and "갱신된 승인 카드" in sweep
    assert outbox.startswith("발신함: ") and "건 전달" in outbox
    verified = planbot("audit", "verify")
    assert verified.returncode == 0
    assert re.fullmatch(r"감사 로그 정상: 레코드 [0-9]+개, 체인 검증 완료\n", verified.stdout)
    missing = planbot("apps", "import", "nowhere.csv")
    assert missing.returncode == 1 and "nowhere.csv을(를) 읽을 수 없습니다" in missing.stderr
    assert "Traceback" not in imported.stderr + tick.stderr + missing.stderr
