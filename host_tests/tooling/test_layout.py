"""The test suites' own layout."""

from __future__ import annotations

from collections import Counter

from mpoverlay import REPO_ROOT


def test_test_modules_have_unique_names() -> None:
    # host_tests/* are not packages: pytest imports each test module by its
    # base name, so two of the same name stop the whole run at collection.
    names = Counter(p.name for p in (REPO_ROOT / "host_tests").rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
