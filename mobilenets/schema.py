"""The pieces of the experiment schema that the tasks' own config sections use too: `option`
(a key with its default, meaning and range) and `Range`. `config` assembles the schema."""

import dataclasses
import math

from mobilenets.errors import UserError


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed values of a number: `low` <= value (< if `low_open`), likewise `high`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, path, value):
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{path} must be a finite number, got {value}")
        too_low = self.low is not None and (value <= self.low if self.low_open
                                            else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open
                                              else value > self.high)
        if too_low or too_high:
            raise UserError(f"{path} must be {self.describe()}, got {value}")

    def describe(self):
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is None:
            return f"{'>' if self.low_open else '>='} {low}"
        if self.low is None and self.high is not None:
            return f"{'<' if self.high_open else '<='} {high}"
        if not (self.low_open or self.high_open):
            return f"between {low} and {high}"
        above = f"{'>' if self.low_open else '>='} {low}"
        return f"{above} and {'<' if self.high_open else '<='} {high}"


def _number(value):
    return str(int(value)) if value is not None and value == int(value) else f"{value}"


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1)
SEED = Range(0, 2**31 - 1)


def option(default, help, check=None):
    """A config key: its default, one line saying what it means, and its `Range` if a number."""
    factory = {"default_factory": lambda: type(default)(default)} if isinstance(
        default, (list, dict)) else {"default": default}
    return dataclasses.field(**factory, metadata={"help": help, "check": check})
