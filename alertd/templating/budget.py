"""What one rendering may spend (time, loop iterations, output size) and the meter that counts it.

A rendering sets a ``Meter`` for its own thread of control; the environment's hooks (operators, calls, filters,
loops, output) ask it before they allocate or iterate, and raise ``BudgetExceeded`` instead of going on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Set
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateRuntimeError
from jinja2.utils import Namespace

MARKER = "… [template budget exceeded: {limit}]"


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits of one rendering; the defaults keep a bad template to a tenth of a second and a few megabytes."""

    time: float = 0.1
    iterations: int = 100_000
    output: int = 65_536  # characters of output, and of any single value a template builds


DEFAULT_BUDGET = Budget()


class BudgetExceeded(TemplateRuntimeError):
    """Raised by a hook when the next step would go past the budget; ``limit`` names which one."""

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(f"template budget exceeded: {limit} ({detail})")
        self.limit = limit
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Breach:
    """A rendering that was cut short: which limit, why, and which template (its name, or its first line)."""

    limit: str
    detail: str
    template: str

    def describe(self) -> str:
        return f"template budget exceeded: {self.limit} ({self.detail})"


class Meter:
    """Loop iterations and the deadline of the rendering under way.

    Past the deadline, a rendering gets as much again in CPU time of its own thread before it is stopped: one
    that is still computing stops within twice the limit, one that a busy machine merely kept waiting finishes.
    """

    __slots__ = ("budget", "cpu_mark", "deadline", "iterations")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.deadline = time.monotonic() + budget.time
        self.iterations = 0
        self.cpu_mark: float | None = None

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > self.budget.iterations:
            raise BudgetExceeded("loop iterations", f"more than {self.budget.iterations}")
        if not self.iterations & 255:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() <= self.deadline:
            return
        cpu = time.thread_time()
        if self.cpu_mark is None:
            self.cpu_mark = cpu
        elif cpu - self.cpu_mark > self.budget.time:
            raise BudgetExceeded("time", f"more than {self.budget.time * 1000:g} ms")


current_meter: ContextVar[Meter | None] = ContextVar("alertd_template_meter", default=None)


def check_time() -> None:
    meter = current_meter.get()
    if meter is not None:
        meter.check_time()


def printed_size(value: Any, limit: int) -> int:
    """About how many characters ``str(value)`` takes, counted without building it; stops once past ``limit``."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        v = stack.pop()
        if isinstance(v, (str, bytes, bytearray)):
            total += len(v) + 2
        elif isinstance(v, bool) or v is None:
            total += 5
        elif isinstance(v, int):
            total += v.bit_length() // 3 + 2
        elif isinstance(v, float):
            total += 24
        elif isinstance(v, Namespace):
            stack.append(object.__getattribute__(v, "_Namespace__attrs"))
            total += 12
        elif isinstance(v, Mapping):
            total += 2 + 4 * len(v)
            if total <= limit:
                for k, item in v.items():
                    stack.append(k)
                    stack.append(item)
        elif isinstance(v, (list, tuple, Set)):
            total += 2 + 2 * len(v)
            if total <= limit:
                stack.extend(v)
        else:
            total += 64  # objects of the context print what they hold, which is data of bounded size
    return total


def check_size(value: Any, budget: Budget, what: str = "a value") -> None:
    if printed_size(value, budget.output) > budget.output:
        raise BudgetExceeded("output size", f"{what} longer than {budget.output} characters")


def check_length(length: int, budget: Budget, what: str) -> None:
    if length > budget.output:
        raise BudgetExceeded("output size", f"{what} of {length} characters, more than {budget.output}")
