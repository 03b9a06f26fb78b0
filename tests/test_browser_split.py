"""``make test`` runs each browser test module in one of the two engines' suites (tests/conftest.py,
``browser_modules_for``): every module lands in exactly one, and the two halves are near the same size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.conftest import browser_modules_for


@dataclass(frozen=True)
class FakeItem:
    """What the split reads of a collected test: its module's path and whether it is a browser test."""

    path: Path
    browser: bool = True

    def get_closest_marker(self, name: str):
        """The ``browser`` marker when this item is a browser test."""
        return object() if name == "browser" and self.browser else None


def items_of(sizes: dict[str, int], unit_tests: int = 5) -> list[FakeItem]:
    """Browser modules with the given numbers of tests, and some tests outside tests/browser/."""
    items = [FakeItem(Path(f"tests/browser/{name}.py")) for name, size in sizes.items() for _ in range(size)]
    return items + [FakeItem(Path("tests/test_unit.py"), browser=False) for _ in range(unit_tests)]


def test_every_browser_module_runs_in_exactly_one_suite():
    items = items_of({"test_a": 15, "test_b": 10, "test_c": 4, "test_d": 3, "test_e": 1, "test_f": 1, "test_g": 1})
    sqlite = browser_modules_for("sqlite", items)
    postgresql = browser_modules_for("postgresql", items)
    assert sqlite.isdisjoint(postgresql)
    assert sqlite | postgresql == {item.path for item in items if item.browser}
    assert Path("tests/test_unit.py") not in sqlite | postgresql  # the rest runs in both suites


def test_the_halves_weigh_about_the_same_and_the_deal_does_not_change_between_runs():
    sizes = {"test_a": 15, "test_b": 10, "test_c": 4, "test_d": 3, "test_e": 1, "test_f": 1, "test_g": 1}
    items = items_of(sizes)

    def weight(paths: set[Path]) -> int:
        return sum(sizes[path.stem] + 3 for path in paths)

    sqlite = browser_modules_for("sqlite", items)
    assert abs(weight(sqlite) - weight(browser_modules_for("postgresql", items))) <= max(sizes.values()) + 3
    assert browser_modules_for("sqlite", list(reversed(items))) == sqlite


def test_without_browser_tests_neither_suite_keeps_a_module():
    items = items_of({})
    assert browser_modules_for("sqlite", items) == set() == browser_modules_for("postgresql", items)
