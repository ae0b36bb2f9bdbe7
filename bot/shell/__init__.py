"""`planbot shell`: the bot in a terminal (`session`), Block Kit drawn as text (`render`), and
modals and home tabs (`views`)."""

from bot.shell.session import (
    DEMO_APPS,
    DemoApp,
    Posted,
    ShellNotifier,
    ShellResponder,
    ShellSession,
    ShellSurfaces,
    demo_csv,
    is_refusal,
    run_shell,
    seed_demo_apps,
    shell_settings,
    split_commands,
    wire_text,
)

__all__ = [
    "DEMO_APPS",
    "DemoApp",
    "Posted",
    "ShellNotifier",
    "ShellResponder",
    "ShellSession",
    "ShellSurfaces",
    "demo_csv",
    "is_refusal",
    "run_shell",
    "seed_demo_apps",
    "shell_settings",
    "split_commands",
    "wire_text",
]
