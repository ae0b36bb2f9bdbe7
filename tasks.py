#!/usr/bin/env python3
"""Set-up and run in one step: `python3 tasks.py run` (the bot) or `python3 tasks.py test`.

Also `python3 tasks.py lint` (ruff and mypy), `python3 tasks.py bench` (the ack benchmark) and
`python3 tasks.py i18n` (extract the messages for people from the code into the translation
catalogs, `bot/locale`; then translate what it says is untranslated).

Creates `.venv` with this project and its test tools on first use (and again when
pyproject.toml changes), then runs the bot or the test suite inside it. Needs only Python 3.11+.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".planbot-installed"


def ensure_venv() -> None:
    """Create or refresh the virtualenv when pyproject.toml changed."""
    if sys.version_info < (3, 11):  # noqa: UP036  (run by whatever python3 is found first)
        raise SystemExit(f"planbot needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest and (BIN / "planbot").exists():
        return
    if not (BIN / "python").exists():
        print("Creating .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    print("Installing planbot and its test tools into .venv ...", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(digest)


def main(argv: list[str]) -> int:
    """`run [planbot args...]`, `test [pytest args...]`, `lint`, `bench [bench args...]`, `i18n`."""
    if not argv or argv[0] not in ("run", "test", "lint", "bench", "i18n"):
        print(__doc__)
        return 2
    ensure_venv()
    what, rest = argv[0], argv[1:]
    if what == "run":
        return subprocess.call([str(BIN / "planbot"), *rest], cwd=ROOT)
    if what == "lint":
        first = subprocess.call([str(BIN / "ruff"), "check", "."], cwd=ROOT)
        second = subprocess.call([str(BIN / "ruff"), "format", "--check", "."], cwd=ROOT)
        return first or second or subprocess.call([str(BIN / "mypy")], cwd=ROOT)
    if what == "i18n":
        update = "from bot.catalogs import update; print(*update(), sep=chr(10))"
        return subprocess.call([str(BIN / "python"), "-c", update], cwd=ROOT)
    if what == "bench":
        return subprocess.call([str(BIN / "python"), "-m", "bench.run", *rest], cwd=ROOT)
    pytest = [str(BIN / "python"), "-m", "pytest"]
    if rest:
        return subprocess.call([*pytest, *rest], cwd=ROOT)
    # The whole suite: everything but the reliability attacks on two workers, then those attacks
    # alone, since they measure acknowledgement times and kill servers on purpose.
    first = subprocess.call([*pytest, "-n", "2", "--ignore=tests/reliability"], cwd=ROOT)
    second = subprocess.call([*pytest, "tests/reliability"], cwd=ROOT)
    return first or second


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
