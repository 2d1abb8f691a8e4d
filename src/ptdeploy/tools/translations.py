"""The Chinese edition: each notebook's markdown in a gettext catalog, and Chinese notebooks built from them.

    python -m ptdeploy.tools.translations update   # make i18n: catalogs follow the English notebooks
    python -m ptdeploy.tools.translations build    # make zh: notebooks/zh/ from the English ones + catalogs
    python -m ptdeploy.tools.translations check    # what is untranslated, fuzzy or broken, per catalog

One catalog per notebook (``notebooks/zh/po/01_flask_api.po``, ``notebooks/zh/po/deep_dives/...``), one
entry per markdown cell, keyed by the English text: Poedit, Weblate and sphinx-intl read them. ``update``
works like gettext's msgmerge: a new cell comes in untranslated; a changed cell keeps its old translation,
marked fuzzy, with the English it was made from (``#| msgid``) so a translator sees what changed.

A Chinese notebook is its English notebook with the markdown cells translated: code cells, their outputs
and their metadata are the English ones, byte for byte. So it is never executed separately; the tests
prove it current instead. Text that code renders (``display(Markdown(...))``) stays English.
"""

import argparse
import copy
import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polib

from ptdeploy.paths import NOTEBOOKS_DIR, REPO_ROOT

LANGUAGE = "zh_CN"
ZH_DIR = NOTEBOOKS_DIR / "zh"
CATALOG_DIR = ZH_DIR / "po"
GLOSSARY = ZH_DIR / "glossary.md"
# The cell a Chinese notebook gets under its title: what stays English, and where the original is.
NOTE_ID = "zh-edition-note"
NOTE = (
    "> 这是英文版 [{name}]({link}) 的中文版：文字已翻译；代码、代码注释和输出与英文版逐字节相同，"
    "来自同一次运行。代码运行时生成的文字（例如结论摘要）保持英文。"
)

CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
# a URL in running text (or <autolink>); a sentence's full stop or comma after it is not part of it
BARE_URL = re.compile(r"(?<!\()https?://[^\s)>\]]+?(?=[.,;:]?(?:[\s>]|$|[^\x00-\x7f]))")
FORMULA = re.compile(r"\$[^$\n]+\$")
HEADING = re.compile(r"^(#{1,6})\s", re.M)
CHINESE = re.compile(r"[\u4e00-\u9fff]")
NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")


def english_notebooks() -> list[Path]:
    from ptdeploy.tools.notebooks import all_notebooks

    return all_notebooks()


def relative_name(english: Path) -> Path:
    """``notebooks/deep_dives/05_executorch.ipynb`` -> ``deep_dives/05_executorch.ipynb``."""
    return english.resolve().relative_to(NOTEBOOKS_DIR)


def catalog_path(english: Path) -> Path:
    return CATALOG_DIR / relative_name(english).with_suffix(".po")


def chinese_path(english: Path) -> Path:
    return ZH_DIR / relative_name(english)


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_notebook(nb: dict, path: Path) -> None:
    """As Jupyter and the English notebooks write it (one-space indent, sorted keys, UTF-8)."""
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False, separators=(",", ": ")) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)  # atomic: Lab or a test never reads half a notebook


def markdown_cells(nb: dict) -> list[tuple[str, str]]:
    """(cell id, source) of each markdown cell, in order."""
    return [(c["id"], "".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "markdown"]


# --- catalogs -----------------------------------------------------------------------------------------


def new_catalog(name: Path) -> polib.POFile:
    """An empty catalog for the notebook ``name`` (its path under notebooks/)."""
    po = polib.POFile(wrapwidth=0)  # no re-wrapping: a catalog line is a markdown line
    po.metadata = {
        "Project-Id-Version": "pytorch-deploy-notebooks",
        "Language": LANGUAGE,
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Transfer-Encoding": "8bit",
        "Plural-Forms": "nplurals=1; plural=0;",
    }
    po.header = f"Chinese (zh_CN) text of notebooks/{name.as_posix()}, one entry per markdown cell."
    return po


def load_catalog(path: Path) -> polib.POFile:
    po = polib.pofile(str(path), wrapwidth=0)
    po.wrapwidth = 0
    return po


def _cell_ids(entry: polib.POEntry) -> list[str]:
    """The cells an entry translates: its references read "notebook.ipynb:cell-id" (polib, expecting a
    line number, may hand the whole reference back as the file)."""
    return [f"{file}:{line}".rstrip(":").rpartition(":")[2] for file, line in entry.occurrences]


def merge(nb: dict, name: Path, old: polib.POFile | None) -> polib.POFile:
    """The catalog the notebook ``nb`` (``name`` under notebooks/) needs now, keeping every translation
    ``old`` has.

    Unchanged cells keep their entry. A cell whose English changed (same cell id, new text) keeps its
    translation, marked fuzzy, with the previous English beside it. Entries no cell uses any more are
    kept as obsolete (``#~``): a cell that comes back finds its translation there.
    """
    po = new_catalog(name)
    old_entries = [e for e in old if not e.obsolete] if old else []
    by_text = {e.msgid: e for e in (old or [])}
    by_cell = {cell: e for e in old_entries for cell in _cell_ids(e)}
    used = set()
    for cell_id, source in markdown_cells(nb):
        entry = po.find(source)
        if entry is not None:  # the same text twice in one notebook: one entry, two places
            entry.occurrences.append((name.name, cell_id))
            continue
        previous = by_text.get(source)
        if previous is not None:
            entry = polib.POEntry(msgid=source, msgstr=previous.msgstr, flags=list(previous.flags))
            entry.previous_msgid = previous.previous_msgid
            used.add(previous.msgid)
        elif cell_id in by_cell and by_cell[cell_id].msgstr:
            changed = by_cell[cell_id]
            flags = sorted(set(changed.flags) | {"fuzzy"})
            entry = polib.POEntry(msgid=source, msgstr=changed.msgstr, flags=flags)
            entry.previous_msgid = changed.previous_msgid or changed.msgid
            used.add(changed.msgid)
        else:
            entry = polib.POEntry(msgid=source, msgstr="")
        entry.occurrences = [(name.name, cell_id)]
        po.append(entry)
    for entry in old or []:
        if entry.msgid not in used and po.find(entry.msgid) is None and entry.msgstr:
            gone = polib.POEntry(
                msgid=entry.msgid, msgstr=entry.msgstr, flags=list(entry.flags), obsolete=True
            )
            po.append(gone)
    return po


def update(english: Path) -> polib.POFile:
    """``make i18n`` for one notebook: write its merged catalog; returns it."""
    path = catalog_path(english)
    po = merge(read_notebook(english), relative_name(english), load_catalog(path) if path.exists() else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    po.save(str(partial))
    partial.replace(path)
    return po


def is_translation(english: str, chinese: str) -> bool:
    """A msgstr that is its msgid again, or holds no Chinese at all, translates nothing."""
    return chinese.strip() != english.strip() and CHINESE.search(chinese) is not None


def usable(entry: polib.POEntry | None) -> bool:
    return entry is not None and bool(entry.msgstr) and "fuzzy" not in entry.flags


# --- Chinese notebooks ---------------------------------------------------------------------------------


def _relink(text: str, english: Path, chinese: Path) -> str:
    """Relative links of ``english``'s markdown, made to work from ``chinese``: a notebook that has a
    Chinese edition is linked in Chinese (the same relative path, the trees mirror each other); any other
    file is reached from the Chinese folder."""

    def fix(match: re.Match) -> str:
        target = match.group(1)
        if re.match(r"[a-z]+:|#|/", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = (english.parent / path).resolve()
        if (
            resolved.suffix == ".ipynb"
            and NOTEBOOKS_DIR in resolved.parents
            and ZH_DIR not in resolved.parents
        ):
            return match.group(0)
        new = Path(os.path.relpath(resolved, chinese.parent)).as_posix()
        return f"]({new}{'#' + anchor if anchor else ''})"

    return LINK_TARGET.sub(fix, text)


def build(nb: dict, name: Path, po: polib.POFile) -> dict:
    """The Chinese edition of the notebook ``nb`` (``name`` under notebooks/): each markdown cell's
    usable translation (the English where there is none yet), links that work from notebooks/zh/, and a
    note under the title. Code cells, outputs and metadata are ``nb``'s."""
    nb = copy.deepcopy(nb)
    english, chinese = NOTEBOOKS_DIR / name, ZH_DIR / name
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        entry = po.find("".join(cell["source"]))
        text = entry.msgstr if usable(entry) else "".join(cell["source"])
        cell["source"] = _relink(text, english, chinese).splitlines(keepends=True)
    link = Path(os.path.relpath(english.resolve(), chinese.parent)).as_posix()
    note = {
        "cell_type": "markdown",
        "id": NOTE_ID,
        "metadata": {},
        "source": NOTE.format(name=english.name, link=link).splitlines(keepends=True),
    }
    nb["cells"].insert(1, note)
    nb["metadata"]["language"] = LANGUAGE.replace("_", "-")
    return nb


def current(english: Path) -> dict:
    """The Chinese notebook ``english`` and its catalog make today."""
    path, name = catalog_path(english), relative_name(english)
    po = load_catalog(path) if path.exists() else new_catalog(name)
    return build(read_notebook(english), name, po)


# --- checks --------------------------------------------------------------------------------------------


def _without_code(text: str) -> str:
    text = FORMULA.sub(" ", CODE_SPAN.sub(" ", text))
    return BARE_URL.sub(" ", LINK_TARGET.sub("]", text))


def integrity_problems(english: str, chinese: str) -> list[str]:
    """What a translation lost or changed of what must stay as it is: inline code, link targets and
    URLs, formulas, the headings' levels, and every number of the English text."""
    problems = []
    kept = {
        "inline code": lambda t: [m.group(0) for m in CODE_SPAN.finditer(t)],
        "links": lambda t: (
            LINK_TARGET.findall(CODE_SPAN.sub(" ", t)) + BARE_URL.findall(CODE_SPAN.sub(" ", t))
        ),
        "formulas": lambda t: FORMULA.findall(CODE_SPAN.sub(" ", t)),
        "headings": lambda t: HEADING.findall(CODE_SPAN.sub(" ", t)),
    }
    for what, find in kept.items():
        if sorted(find(english)) != sorted(find(chinese)):
            missing = Counter(find(english)) - Counter(find(chinese))
            extra = Counter(find(chinese)) - Counter(find(english))
            problems.append(f"{what} differ: missing {sorted(missing)}, added {sorted(extra)}")
    numbers = Counter(NUMBER.findall(_without_code(english))) - Counter(
        NUMBER.findall(_without_code(chinese))
    )
    if numbers:
        problems.append(f"numbers missing: {sorted(numbers)}")
    return problems


@dataclass(frozen=True)
class Term:
    english: str  # a regular expression, matched case-insensitively on whole words
    chinese: str
    avoid: tuple[str, ...] = ()


def glossary(path: Path = GLOSSARY) -> list[Term]:
    """The glossary's table rows: | English | 中文 | avoid | note |. English forms are separated by /."""
    terms = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3 or cells[0] == "English" or set(cells[0]) <= set("-: "):
            continue
        forms = "|".join(re.escape(form.strip()) for form in cells[0].split("/"))
        avoid = tuple(w.strip() for w in cells[2].split("/") if w.strip())
        terms.append(Term(english=rf"\b(?:{forms})\b", chinese=cells[1], avoid=avoid))
    return terms


def glossary_problems(english: str, chinese: str, terms: list[Term]) -> list[str]:
    """Where a translation does not use the glossary's word for a term of the English text: the agreed
    Chinese is missing (and the English word was not kept, as in a name), or a word to avoid is used."""
    prose, problems = _without_code(english), []
    zh_prose = _without_code(chinese)
    for term in terms:
        found = re.search(term.english, prose, re.I)
        if found and term.chinese not in zh_prose and not re.search(term.english, zh_prose, re.I):
            problems.append(f"'{found.group(0)}' should read {term.chinese}")
        problems += [
            f"{word} is not the glossary's word (use {term.chinese})"
            for word in term.avoid
            if word in zh_prose
        ]
    return problems


@dataclass
class CatalogState:
    name: str
    entries: int
    untranslated: list[str]
    fuzzy: list[str]
    broken: list[str]


def check(english: Path, terms: list[Term] | None = None) -> CatalogState:
    """How complete and sound ``english``'s catalog is (as it is on disk, without updating it)."""
    terms = glossary() if terms is None else terms
    path = catalog_path(english)
    po = merge(read_notebook(english), relative_name(english), load_catalog(path) if path.exists() else None)
    state = CatalogState(relative_name(english).as_posix(), 0, [], [], [])
    for entry in (e for e in po if not e.obsolete):
        state.entries += 1
        first_line = entry.msgid.splitlines()[0][:60]
        if not is_translation(entry.msgid, entry.msgstr):
            state.untranslated.append(first_line)
        elif "fuzzy" in entry.flags:
            state.fuzzy.append(first_line)
        else:
            problems = integrity_problems(entry.msgid, entry.msgstr)
            problems += glossary_problems(entry.msgid, entry.msgstr, terms)
            state.broken += [f"{first_line!r}: {p}" for p in problems]
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ptdeploy.tools.translations", description=__doc__.split("\n")[0]
    )
    parser.add_argument("action", choices=["update", "build", "check"])
    parser.add_argument("notebooks", nargs="*", type=Path, help="English notebooks (default: all)")
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or english_notebooks()
    for path in notebooks:
        if not path.exists() or NOTEBOOKS_DIR not in path.parents or ZH_DIR in path.parents:
            parser.error(f"{path}: not an English notebook under {NOTEBOOKS_DIR.relative_to(REPO_ROOT)}/")
    if args.action == "update":
        for english in notebooks:
            po = update(english)
            print(
                f"{catalog_path(english).relative_to(REPO_ROOT)}: {len(po)} entries, "
                f"{len(po.untranslated_entries())} untranslated, {len(po.fuzzy_entries())} fuzzy"
            )
        return 0
    if args.action == "build":
        for english in notebooks:
            write_notebook(current(english), chinese_path(english))
            print(f"wrote {chinese_path(english).relative_to(REPO_ROOT)}")
        return 0
    failed = False
    for english in notebooks:
        state = check(english)
        failed |= bool(state.untranslated or state.fuzzy or state.broken)
        print(
            f"{state.name}: {state.entries} cells, {len(state.untranslated)} untranslated, "
            f"{len(state.fuzzy)} fuzzy, {len(state.broken)} problems"
        )
        for line in state.broken:
            print(f"  {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
