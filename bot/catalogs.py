"""Managing the translation catalogs with Babel: extract, update, check.

`python3 tasks.py i18n` extracts every message marked in `bot/` (`_`, `N_`, `ngettext`) into the
template `bot/locale/planbot.pot` and updates each language's `.po` from it (new messages
appear untranslated, vanished ones are dropped). A translator then fills in `msgstr`.
`problems()` lists what is wrong with the catalogs as they stand, and the tests fail on any of
it: a message in the code that a catalog lacks or leaves untranslated or fuzzy, a catalog entry
the code no longer has, placeholders (`{name}`) that differ between the English and a
translation.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import DOMAIN, ENGLISH, LANGUAGES, LOCALE_DIR

__all__ = ["extract", "po_path", "problems", "update"]

PACKAGE = Path(__file__).resolve().parent
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"(?<!\{)\{([^{}]*)\}(?!\})")
#: fixed so that extracting twice writes the same template
STAMP = datetime(2026, 1, 1)


def po_path(language: str) -> Path:
    """Where the catalog of `language` lives."""
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract() -> Catalog:
    """Every message marked in the bot's code, with where it is used."""
    catalog = Catalog(project="planbot", domain=DOMAIN, creation_date=STAMP, revision_date=STAMP)
    found = extract_from_dir(
        str(PACKAGE),
        method_map=[("**.py", "python")],
        keywords=KEYWORDS,
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    )
    for filename, lineno, message, comments, context in found:
        where = (f"bot/{filename}", lineno)
        catalog.add(message, None, [where], auto_comments=comments, context=context)
    return catalog


def _read(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=language, domain=DOMAIN)


def _write(catalog: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as target:
        write_po(target, catalog, width=100, sort_output=False, omit_header=False)


def update() -> list[str]:
    """Write the template from the code and bring every catalog up to date; what was done."""
    template = extract()
    _write(template, TEMPLATE)
    done = [f"{TEMPLATE.relative_to(PACKAGE.parent)}: {len(template)} messages"]
    for language in LANGUAGES:
        if language == ENGLISH:
            continue
        path = po_path(language)
        catalog = (
            _read(path, language)
            if path.exists()
            else Catalog(locale=language, domain=DOMAIN, creation_date=STAMP)
        )
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        catalog.obsolete.clear()
        catalog.revision_date = STAMP
        _write(catalog, path)
        missing = sum(1 for m in catalog if m.id and not _translated(m))
        done.append(f"{path.relative_to(PACKAGE.parent)}: {missing} untranslated")
    return done


def _translated(message: Message) -> bool:
    strings = _texts(message.string)
    return not message.fuzzy and bool(strings) and all(strings)


def _placeholders(text: str) -> set[str]:
    return {name.split("!")[0].split(":")[0] for name in PLACEHOLDER.findall(text)}


def problems() -> list[str]:
    """What is wrong with the catalogs, one line each (nothing when all is well)."""
    code = extract()
    wanted = {m.id if isinstance(m.id, str) else m.id[0]: m for m in code if m.id}
    found: list[str] = []
    for language in LANGUAGES:
        if language == ENGLISH:
            continue
        path = po_path(language)
        if not path.exists():
            found.append(f"{language}: no catalog at {path}")
            continue
        catalog = _read(path, language)
        have = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog if m.id}
        for key, message in wanted.items():
            where = ", ".join(f"{f}:{n}" for f, n in message.locations[:2])
            entry = have.get(key)
            if entry is None:
                found.append(f"{language}: not in the catalog ({where}): {key!r}")
            elif not _translated(entry):
                found.append(f"{language}: not translated ({where}): {key!r}")
            else:
                found.extend(_placeholder_problems(language, entry))
        for key in have.keys() - wanted.keys():
            found.append(f"{language}: in the catalog but no longer in the code: {key!r}")
    return found


def _texts(value: object) -> tuple[str, ...]:
    """A message's id or string as its forms (one, or one per plural form)."""
    if isinstance(value, str):
        return (value,)
    return tuple(str(text) for text in value) if isinstance(value, tuple | list) else ()


def _placeholder_problems(language: str, entry: Message) -> list[str]:
    ids, strings = _texts(entry.id), _texts(entry.string)
    expected = set().union(*(_placeholders(text) for text in ids))
    return [
        f"{language}: placeholders differ in {ids[0]!r}: {sorted(_placeholders(text))} "
        f"instead of {sorted(expected)}"
        for text in strings
        if _placeholders(text) != expected
    ]
