"""The layout's rules, checked on the source: the core stays UI-free, the protocol stays below the
graph and the fix flow, the simulator stays out of the product, and no module reaches into another's
private names or Textual's."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pistachio_tui"
CORE = ("comfy", "workflow", "fix", "runpod", "gpu", "training", "fleet", "config.py", "format.py")


def modules(*under: str) -> list[Path]:
    found: list[Path] = []
    for part in under:
        path = PACKAGE / part
        found.extend([path] if path.suffix == ".py" else sorted(path.rglob("*.py")))
    return found


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """Every import in ``path`` (also inside functions): (absolute module, names, line)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, [a.name for a in node.names], node.lineno


def offenders(paths: list[Path], bad) -> list[str]:
    return [f"{p.relative_to(PACKAGE.parent)}:{line}: {mod}"
            for p in paths for mod, names, line in imports(p) if bad(mod, names)]


def test_the_core_never_imports_textual():
    assert offenders(modules(*CORE), lambda mod, _: mod == "textual" or mod.startswith("textual.")) == []


@pytest.mark.parametrize("above", ["pistachio_tui.workflow", "pistachio_tui.fix", "pistachio_tui.ui"])
def test_the_protocol_does_not_import_what_is_built_on_it(above):
    assert offenders(modules("comfy"), lambda mod, _: mod == above or mod.startswith(above + ".")) == []


def test_only_the_demo_and_the_simulator_itself_import_the_simulator():
    allowed = set(modules("sim")) | set(PACKAGE.glob("cli/demo*.py"))
    product = [p for p in all_modules() if p not in allowed]
    assert offenders(product, lambda mod, _: mod == "pistachio_tui.sim" or mod.startswith("pistachio_tui.sim.")) == []


def test_no_module_imports_another_modules_private_names():
    def private(mod: str, names: list[str]) -> bool:
        return mod.startswith("pistachio_tui") and any(n.startswith("_") and not n.startswith("__") for n in names)

    assert offenders(all_modules(), private) == []


def test_the_ui_reads_no_private_attribute_of_the_app():
    found = []
    for path in modules("ui"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Attribute) and node.value.attr in ("app", "papp")):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: .{node.value.attr}.{node.attr}")
    assert found == []


def test_each_package_says_what_it_is():
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc, f"{init.relative_to(PACKAGE.parent)} has no docstring"


def test_the_rules_see_the_code_they_check():
    # A rule over no files passes whatever the code does.
    assert len(modules(*CORE)) > 40 and len(modules("ui")) > 20
    assert any(mod == "textual.app" for p in modules("ui") for mod, _, _ in imports(p))
