"""Every environment variable the product reads goes through config.py and is in the README's table."""

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pistachio_tui"
README = PACKAGE.parent / "README.md"

# A read of one named variable: os.environ["X"], os.environ.get("X"), os.getenv("X").
_DIRECT_READ = re.compile(r"""os\.(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()""")
_NAMED_READ = re.compile(r"""(?:env_override|get_secret|os\.environ\.get)\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def _product_modules():
    for path in PACKAGE.rglob("*.py"):
        if "sim" not in path.relative_to(PACKAGE).parts:
            yield path


def test_only_config_reads_the_environment():
    readers = [str(path.relative_to(PACKAGE)) for path in _product_modules()
               if path.name != "config.py" or path.parent != PACKAGE
               if _DIRECT_READ.search(path.read_text(encoding="utf-8"))]
    assert readers == []


def test_every_variable_read_is_in_the_readme_table():
    names = {name for path in _product_modules() for name in _NAMED_READ.findall(path.read_text(encoding="utf-8"))}
    table = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", README.read_text(encoding="utf-8"), re.MULTILINE))
    assert {"RUNPOD_API_URL", "HF_ENDPOINT", "PISTACHIO_DATA_DIR"} <= names
    assert sorted(names - table) == []
