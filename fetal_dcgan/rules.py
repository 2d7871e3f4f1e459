"""Rules for configuration values, each a test and the words for what it allows; declared
next to what they govern (``checks.RULES``, a metric's ``options``) and checked in one pass
by ``checks.check_config``."""

from __future__ import annotations

from typing import Callable

#: (test of a value, what it allows in words)
Rule = tuple[Callable[[object], bool], str]
#: (rule, an example of a good value)
Check = tuple[Rule, str]


def int_at_least(low: int) -> Rule:
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low), f"an integer >= {low}"


def number_in(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Rule:
    def ok(v) -> bool:
        return (
            isinstance(v, (int, float))
            and not isinstance(v, bool)
            and (low < v if low_open else low <= v)
            and (v < high if high_open else v <= high)
        )

    return ok, f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def one_of(*values) -> Rule:
    return (lambda v: v in values and type(v) in {type(x) for x in values}), "one of " + ", ".join(
        str(v).lower() if isinstance(v, bool) else str(v) for v in values
    )


def subset_of(*values: str) -> Rule:
    return (lambda v: isinstance(v, list) and set(v) <= set(values)), "a list of any of " + ", ".join(values)


def or_null(rule: Rule) -> Rule:
    return (lambda v: v is None or rule[0](v)), rule[1] + " or null"
