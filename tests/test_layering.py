"""Import layering: core imports no domain and no torch; domains do not import each other."""

import ast
from pathlib import Path

import selfimprove

PACKAGE = Path(selfimprove.__file__).parent
DOMAINS = {
    "collapse",
    "games",
    "reasoning",
    "distill",
    "constitutional",
    "oversight",
    "hacking",
    "failures",
}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_no_domain_no_torch_no_reports() -> None:
    files = list((PACKAGE / "core").glob("*.py"))
    assert files
    for path in files:
        for name in imports_of(path):
            assert not name.startswith("torch"), f"{path.name} imports {name}"
            parts = name.split(".")
            if parts[0] == "selfimprove":
                assert parts[1] == "core", f"{path.name} imports {name}"


def test_domains_do_not_import_each_other_or_reports() -> None:
    for domain in DOMAINS:
        for path in (PACKAGE / domain).glob("*.py") if (PACKAGE / domain).is_dir() else []:
            for name in imports_of(path):
                parts = name.split(".")
                if parts[0] == "selfimprove" and len(parts) > 1:
                    assert parts[1] in {"core", "models", "data", domain}, (
                        f"{domain}/{path.name} imports {name}"
                    )


def test_reports_never_train() -> None:
    for path in (PACKAGE / "reports").glob("*.py"):
        for name in imports_of(path):
            assert not name.startswith(("selfimprove.experiments", "selfimprove.core.engine")), name
