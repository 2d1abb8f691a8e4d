"""The package's three wings: serving/ (the service), lessons/ (chapter code), tools/ (the repository's
own), on a small base of torch-free modules. Who may import whom, and what each lesson module serves."""

import ast
import re

import pytest

from ptdeploy.paths import NOTEBOOKS_DIR, REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "ptdeploy"
BASE = {"paths", "resources", "imagenet", "ort", "system_packages", "text"}
# wing -> the wings and base modules its modules may import (at module level)
ALLOWED = {
    "base": {"base"},
    "serving": {"base", "serving"},
    "lessons": {"base", "lessons"},
    "tools": {"base", "serving", "lessons", "tools"},
}


def wing_of(module: str) -> str:
    """ptdeploy.serving.app -> serving; ptdeploy.imagenet -> base."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and parts[1] in {"serving", "lessons", "tools"}):
        return parts[1]
    return "base"


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if "ray_site" in path.parts:
            continue  # Ray's own processes' sitecustomize, not part of the package
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        yield ".".join(p for p in rel.parts if p != "__init__"), path


def top_level_imports(path) -> set[str]:
    """ptdeploy modules imported at module level (imports inside functions are lazy on purpose)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ptdeploy"):
            found |= {
                f"{node.module}.{a.name}"
                if node.module in {"ptdeploy", "ptdeploy.lessons", "ptdeploy.tools"}
                else node.module
                for a in node.names
            }
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ptdeploy")}
    return found


@pytest.mark.parametrize("module,path", list(modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_each_wing_imports_only_what_it_stands_on(module, path):
    wing = wing_of(module)
    for imported in top_level_imports(path):
        assert wing_of(imported) in ALLOWED[wing], (
            f"{module} ({wing}) imports {imported} ({wing_of(imported)})"
        )


def test_the_base_is_what_the_layout_says():
    base = {m.split(".")[-1] for m, _ in modules() if wing_of(m) == "base" and m != "ptdeploy"}
    assert base == BASE


@pytest.mark.parametrize("path", sorted((PACKAGE / "lessons").glob("[a-z]*.py")), ids=lambda p: p.name)
def test_each_lesson_module_opens_with_the_chapters_it_serves(path):
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    match = re.match(r"Chapters? (\d\d(?:(?:, | and )\d\d)*)\b", doc)
    assert match, f"{path.name}: the docstring should open with 'Chapter NN' (the notebook it serves)"
    chapters = {
        NOTEBOOKS_DIR.glob(f"{n}_*.ipynb").__next__().name for n in re.findall(r"\d\d", match.group(1))
    }
    assert chapters, path.name
