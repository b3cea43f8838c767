"""Sources and history of the ``ledger`` sample repository.

``ledger`` is a small bookkeeping library: money amounts with currencies,
calendar helpers, interest calculations and a journal of entries.  See
``minicsv_repo.py`` for the format of HISTORY and TASKS.
"""

NAME = "ledger"


def _s(text):
    return text.lstrip("\n")


def _t(text):
    """Tests appended to an existing test file, after two blank lines."""
    return "\n\n" + text.lstrip("\n")


PYPROJECT = _s(r"""
[project]
name = "ledger"
version = "0.2.0"
description = "Money amounts, date ranges and interest for small bookkeeping tools"
requires-python = ">=3.9"

[tool.pytest.ini_options]
testpaths = ["tests"]
""")

README = _s(r"""
# ledger

Money amounts, date ranges and interest for small bookkeeping tools.

```python
from datetime import date
from ledger import Money, DateRange, add_months, amortize

price = Money("19.99", "EUR")
print((price * 3).format(symbol=False))   # 59.97 EUR
print(Money("100.00").allocate([1, 1, 1]))

q1 = DateRange(date(2024, 1, 1), date(2024, 3, 31))
print(len(q1), add_months(date(2024, 1, 15), 1))

for row in amortize(Money("1000.00"), "0.05", 12, date(2024, 2, 1)):
    print(row.due, row.payment, row.balance)
```

Amounts are exact `Decimal` values; `Money.rounded()` rounds to the minor
unit of the currency, halves away from zero.  Run the tests with
`python -m pytest`.
""")

INIT_V1 = _s(r'''
"""ledger - money amounts, date ranges and interest for small bookkeeping tools."""

from .currency import Currency, get_currency, known_currencies, register_currency
from .errors import CurrencyError, CurrencyMismatchError, LedgerError, MoneyError
from .money import Money, round_half_away

__version__ = "0.2.0"
''')

ERRORS = _s(r'''
"""Exceptions raised by ledger."""


class LedgerError(Exception):
    """Base class of all ledger errors."""


class CurrencyError(LedgerError, ValueError):
    """Unknown or invalid currency."""


class CurrencyMismatchError(LedgerError, ValueError):
    """Raised when amounts in different currencies are combined."""


class MoneyError(LedgerError, ValueError):
    """Invalid amount or unparsable money string."""
''')

CURRENCY = _s(r'''
"""ISO 4217 currencies known to ledger."""

import re
from dataclasses import dataclass
from decimal import Decimal

from .errors import CurrencyError


@dataclass(frozen=True)
class Currency:
    code: str
    minor_units: int
    symbol: str
    name: str = ""

    @property
    def step(self):
        """The smallest amount of this currency, e.g. Decimal('0.01')."""
        return Decimal(1).scaleb(-self.minor_units)


_TABLE = {}


def register_currency(code, minor_units, symbol=None, name=""):
    """Add (or replace) a currency and return it."""
    if not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code):
        raise CurrencyError(f"currency codes are three upper-case letters, got {code!r}")
    if not isinstance(minor_units, int) or not 0 <= minor_units <= 4:
        raise CurrencyError(f"minor_units must be an integer from 0 to 4, got {minor_units!r}")
    currency = Currency(code, minor_units, symbol or code, name)
    _TABLE[code] = currency
    return currency


for _code, _units, _symbol, _name in [
    ("USD", 2, "$", "US dollar"),
    ("EUR", 2, "\u20ac", "Euro"),
    ("GBP", 2, "\u00a3", "Pound sterling"),
    ("CHF", 2, "CHF", "Swiss franc"),
    ("JPY", 0, "\u00a5", "Yen"),
    ("KRW", 0, "\u20a9", "Won"),
    ("BHD", 3, "BD", "Bahraini dinar"),
    ("KWD", 3, "KD", "Kuwaiti dinar"),
]:
    register_currency(_code, _units, _symbol, _name)


def get_currency(code):
    """Look up a currency by its code (case-insensitive)."""
    if isinstance(code, Currency):
        return code
    try:
        return _TABLE[code.strip().upper()]
    except (KeyError, AttributeError):
        raise CurrencyError(f"unknown currency {code!r}") from None


def known_currencies():
    return sorted(_TABLE)
''')

MONEY = _s(r'''
"""Exact money amounts."""

import math
import re
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from fractions import Fraction
from functools import total_ordering

from .currency import get_currency
from .errors import CurrencyMismatchError, MoneyError

_MONEY_RE = re.compile(
    r"^\s*(?:(?P<pre>[A-Za-z]{3})\s*)?"
    r"(?P<amount>[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+)"
    r"\s*(?P<post>[A-Za-z]{3})?\s*$"
)


def round_half_away(amount, places):
    """Round *amount* to *places* decimals; halves are rounded away from zero.

    This is the usual commercial rounding: 2.345 -> 2.35 and -2.345 -> -2.35.
    """
    step = Decimal(1).scaleb(-places)
    return (amount + step / 2).quantize(step, rounding=ROUND_FLOOR)


def _to_decimal(value):
    if isinstance(value, bool):
        raise TypeError("booleans are not amounts")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError(f"invalid amount {value!r}") from None
    raise TypeError(f"cannot use {type(value).__name__} as an amount")


@total_ordering
class Money:
    """An exact amount of money in one currency.

    Arithmetic keeps full precision; call :meth:`rounded` to round to the
    currency's minor unit.  Money objects are immutable and hashable.
    """

    __slots__ = ("amount", "currency")

    def __init__(self, amount, currency="USD"):
        if isinstance(amount, Money):
            raise TypeError("use Money.amount to copy a Money value")
        value = _to_decimal(amount)
        if not value.is_finite():
            raise MoneyError(f"amount must be finite, got {amount!r}")
        object.__setattr__(self, "amount", value)
        object.__setattr__(self, "currency", get_currency(currency))

    def __setattr__(self, name, value):
        raise AttributeError("Money objects are immutable")

    @classmethod
    def zero(cls, currency="USD"):
        return cls(0, currency)

    @classmethod
    def parse(cls, text, default_currency=None):
        """Parse strings such as '12.50 EUR', 'USD 1,234.00' or '-3 JPY'."""
        match = _MONEY_RE.match(text)
        if not match:
            raise MoneyError(f"cannot parse money value {text!r}")
        pre, post = match.group("pre"), match.group("post")
        if pre and post:
            raise MoneyError(f"two currency codes in {text!r}")
        code = pre or post or default_currency
        if code is None:
            raise MoneyError(f"no currency given in {text!r}")
        return cls(match.group("amount").replace(",", ""), code)

    # -- rounding and formatting -------------------------------------------

    def rounded(self):
        """Return the amount rounded to the currency's minor unit."""
        return Money(round_half_away(self.amount, self.currency.minor_units), self.currency)

    def format(self, symbol=True, thousands=","):
        """Format the rounded amount, e.g. '-$1,234.50' or '-1,234.50 USD'."""
        value = self.rounded().amount
        digits = f"{abs(value):,.{self.currency.minor_units}f}"
        if thousands != ",":
            digits = digits.replace(",", thousands)
        sign = "-" if value < 0 else ""
        if symbol:
            return f"{sign}{self.currency.symbol}{digits}"
        return f"{sign}{digits} {self.currency.code}"

    def __str__(self):
        value = self.rounded().amount
        return f"{value:.{self.currency.minor_units}f} {self.currency.code}"

    def __repr__(self):
        return f"Money('{self.amount}', '{self.currency.code}')"

    # -- arithmetic -----------------------------------------------------------

    def _same_currency(self, other):
        if other.currency != self.currency:
            raise CurrencyMismatchError(
                f"cannot combine {self.currency.code} and {other.currency.code}"
            )

    def __add__(self, other):
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __radd__(self, other):
        # Allows sum() over Money values.
        if other == 0:
            return self
        return NotImplemented

    def __sub__(self, other):
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self):
        return Money(-self.amount, self.currency)

    def __abs__(self):
        return Money(abs(self.amount), self.currency)

    def __mul__(self, factor):
        if isinstance(factor, Money):
            return NotImplemented
        return Money(self.amount * _to_decimal(factor), self.currency)

    __rmul__ = __mul__

    def __truediv__(self, divisor):
        if isinstance(divisor, Money):
            return NotImplemented
        divisor = _to_decimal(divisor)
        if divisor == 0:
            raise ZeroDivisionError("division of money by zero")
        return Money(self.amount / divisor, self.currency)

    # -- comparisons ------------------------------------------------------------

    def __eq__(self, other):
        if not isinstance(other, Money):
            return NotImplemented
        return self.currency == other.currency and self.amount == other.amount

    def __lt__(self, other):
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return self.amount < other.amount

    def __hash__(self):
        return hash((self.amount, self.currency.code))

    def __bool__(self):
        return self.amount != 0

    # -- splitting ----------------------------------------------------------------

    def allocate(self, ratios):
        """Split the rounded amount into shares proportional to *ratios*.

        No minor unit is lost: the shares always add up to the rounded
        amount.  Leftover units are handed out one at a time, starting with
        the first share.
        """
        ratios = [Fraction(_to_decimal(r)) for r in ratios]
        if not ratios:
            raise ValueError("at least one ratio is required")
        if any(r < 0 for r in ratios):
            raise ValueError("ratios must not be negative")
        total = sum(ratios)
        if total == 0:
            raise ValueError("ratios must not all be zero")
        step = self.currency.step
        units = int(self.rounded().amount.scaleb(self.currency.minor_units))
        shares = [math.floor(units * r / total) for r in ratios]
        for i in range(units - sum(shares)):
            shares[i % len(shares)] += 1
        return [Money(Decimal(share) * step, self.currency) for share in shares]
''')

TEST_CURRENCY = _s(r"""
from decimal import Decimal

import pytest

from ledger import CurrencyError, get_currency, known_currencies, register_currency


def test_lookup_is_case_insensitive():
    assert get_currency("usd") is get_currency("USD")
    assert get_currency(" eur ").code == "EUR"


def test_minor_units_and_step():
    assert get_currency("USD").step == Decimal("0.01")
    assert get_currency("JPY").step == Decimal("1")
    assert get_currency("BHD").step == Decimal("0.001")


def test_unknown_currency():
    with pytest.raises(CurrencyError):
        get_currency("XYZ")
    with pytest.raises(ValueError):
        get_currency(None)


def test_register_currency():
    register_currency("XTS", 2, name="Testing code")
    assert "XTS" in known_currencies()
    assert get_currency("xts").symbol == "XTS"


def test_register_rejects_bad_codes():
    with pytest.raises(CurrencyError):
        register_currency("us", 2)
    with pytest.raises(CurrencyError):
        register_currency("ABC", 7)
""")

TEST_MONEY = _s(r"""
from decimal import Decimal

import pytest

from ledger import CurrencyMismatchError, Money, MoneyError


def test_construction_from_various_types():
    assert Money("12.50").amount == Decimal("12.50")
    assert Money(3, "EUR").amount == Decimal(3)
    assert Money(0.1).amount == Decimal("0.1")
    assert Money(Decimal("1.005")).currency.code == "USD"


def test_invalid_amounts():
    with pytest.raises(MoneyError):
        Money("twelve")
    with pytest.raises(MoneyError):
        Money("NaN")
    with pytest.raises(TypeError):
        Money(True)


def test_money_is_immutable():
    m = Money("1.00")
    with pytest.raises(AttributeError):
        m.amount = Decimal("2.00")


def test_addition_and_subtraction():
    assert Money("1.10") + Money("2.20") == Money("3.30")
    assert Money("1.10") - Money("2.20") == Money("-1.10")
    assert sum([Money("1"), Money("2"), Money("3")]) == Money("6")


def test_currency_mismatch():
    with pytest.raises(CurrencyMismatchError):
        Money("1", "USD") + Money("1", "EUR")
    with pytest.raises(CurrencyMismatchError):
        Money("1", "USD") < Money("1", "EUR")


def test_multiplication_and_division():
    assert Money("2.50") * 3 == Money("7.50")
    assert 2 * Money("2.50") == Money("5.00")
    assert Money("10") / 4 == Money("2.5")
    with pytest.raises(ZeroDivisionError):
        Money("1") / 0


def test_comparisons_and_hashing():
    assert Money("1.00") < Money("1.01")
    assert Money("2.0") == Money("2.00")
    assert len({Money("2.0"), Money("2.00")}) == 1
    assert Money("1", "USD") != Money("1", "EUR")


def test_parse():
    assert Money.parse("12.50 EUR") == Money("12.50", "EUR")
    assert Money.parse("USD 1,234.00") == Money("1234.00", "USD")
    assert Money.parse("-3 jpy") == Money("-3", "JPY")
    assert Money.parse("7.25", default_currency="GBP") == Money("7.25", "GBP")
    with pytest.raises(MoneyError):
        Money.parse("12.50")
    with pytest.raises(MoneyError):
        Money.parse("USD 1,23.00")


def test_rounding_positive_half_goes_up():
    assert Money("2.345").rounded() == Money("2.35")
    assert Money("2.344").rounded() == Money("2.34")
    assert Money("0.5", "JPY").rounded() == Money("1", "JPY")


def test_rounding_negative_amounts_below_half():
    assert Money("-2.344").rounded() == Money("-2.34")
    assert Money("-2.346").rounded() == Money("-2.35")


def test_rounding_three_decimal_currency():
    assert Money("1.23456", "BHD").rounded().amount == Decimal("1.235")


def test_format():
    assert Money("1234.5").format() == "$1,234.50"
    assert Money("-1234.5", "EUR").format(symbol=False) == "-1,234.50 EUR"
    assert Money("1234567", "JPY").format(thousands=" ") == "\u00a51 234 567"
    assert str(Money("3.14159", "GBP")) == "3.14 GBP"


def test_allocate_even_split_keeps_every_cent():
    shares = Money("100.00").allocate([1, 1, 1])
    assert shares == [Money("33.34"), Money("33.33"), Money("33.33")]
    assert sum(shares) == Money("100.00")


def test_allocate_by_ratio():
    assert Money("10.00").allocate([70, 30]) == [Money("7.00"), Money("3.00")]
    assert Money("5", "JPY").allocate([1, 1]) == [Money("3", "JPY"), Money("2", "JPY")]


def test_allocate_negative_amount():
    shares = Money("-1.00").allocate([1, 1, 1])
    assert sum(shares) == Money("-1.00")
    assert sorted(s.amount for s in shares) == [Decimal("-0.34"), Decimal("-0.33"), Decimal("-0.33")]


def test_allocate_rejects_bad_ratios():
    with pytest.raises(ValueError):
        Money("1").allocate([])
    with pytest.raises(ValueError):
        Money("1").allocate([0, 0])
    with pytest.raises(ValueError):
        Money("1").allocate([1, -1])
""")

DATES = _s(r'''
"""Calendar helpers and inclusive date ranges."""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta


def days_in_month(year, month):
    return calendar.monthrange(year, month)[1]


def month_end(day):
    """Return the last day of the month of *day*."""
    return day.replace(day=days_in_month(day.year, day.month))


def is_month_end(day):
    return day.day == days_in_month(day.year, day.month)


def add_months(day, months):
    """Shift *day* by a whole number of calendar months (may be negative).

    The day of the month is kept; if the target month is too short the
    result is the last day of that month.
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    return day.replace(year=year, month=month0 + 1)


def months_between(start, end):
    """Number of whole calendar months from *start* to *end*."""
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if months > 0 and add_months(start, months) > end:
        months -= 1
    elif months < 0 and add_months(start, months) < end:
        months += 1
    return months


@dataclass(frozen=True)
class DateRange:
    """A range of calendar days.  Both *start* and *end* belong to the range."""

    start: date
    end: date

    def __post_init__(self):
        if not isinstance(self.start, date) or not isinstance(self.end, date):
            raise TypeError("DateRange needs two dates")
        if self.end < self.start:
            raise ValueError(f"range ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def month(cls, year, month):
        return cls(date(year, month, 1), date(year, month, days_in_month(year, month)))

    @classmethod
    def year(cls, year):
        return cls(date(year, 1, 1), date(year, 12, 31))

    def __len__(self):
        return (self.end - self.start).days + 1

    def __contains__(self, day):
        return self.start <= day <= self.end

    def __iter__(self):
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)

    def overlaps(self, other):
        """True if the two ranges have at least one day in common."""
        return self.start < other.end and other.start < self.end

    def intersection(self, other):
        """The days common to both ranges, or None."""
        start = max(self.start, other.start)
        end = min(self.end, other.end)
        if start > end:
            return None
        return DateRange(start, end)

    def shift(self, days):
        delta = timedelta(days=days)
        return DateRange(self.start + delta, self.end + delta)

    def split_by_month(self):
        """Split the range at month boundaries."""
        parts = []
        start = self.start
        while start <= self.end:
            end = min(month_end(start), self.end)
            parts.append(DateRange(start, end))
            start = end + timedelta(days=1)
        return parts
''')

INIT_V2 = INIT_V1.replace(
    "from .currency import Currency, get_currency, known_currencies, register_currency\n",
    "from .currency import Currency, get_currency, known_currencies, register_currency\n"
    "from .dates import (\n"
    "    DateRange,\n"
    "    add_months,\n"
    "    days_in_month,\n"
    "    is_month_end,\n"
    "    month_end,\n"
    "    months_between,\n"
    ")\n",
)

TEST_DATES = _s(r"""
from datetime import date

import pytest

from ledger import DateRange, add_months, days_in_month, is_month_end, month_end, months_between


def test_days_in_month_and_month_end():
    assert days_in_month(2024, 2) == 29
    assert days_in_month(2023, 2) == 28
    assert month_end(date(2024, 4, 10)) == date(2024, 4, 30)
    assert is_month_end(date(2023, 12, 31))
    assert not is_month_end(date(2023, 12, 30))


def test_add_months_keeps_day():
    assert add_months(date(2024, 1, 15), 1) == date(2024, 2, 15)
    assert add_months(date(2024, 5, 31), 2) == date(2024, 7, 31)


def test_add_months_crosses_years():
    assert add_months(date(2023, 11, 15), 3) == date(2024, 2, 15)
    assert add_months(date(2024, 1, 15), -1) == date(2023, 12, 15)
    assert add_months(date(2024, 1, 15), -25) == date(2021, 12, 15)


def test_months_between():
    assert months_between(date(2024, 1, 15), date(2024, 4, 15)) == 3
    assert months_between(date(2024, 1, 15), date(2024, 4, 14)) == 2
    assert months_between(date(2024, 4, 15), date(2024, 1, 15)) == -3


def test_range_length_and_membership():
    q1 = DateRange(date(2024, 1, 1), date(2024, 3, 31))
    assert len(q1) == 91
    assert date(2024, 3, 31) in q1
    assert date(2024, 4, 1) not in q1
    assert len(DateRange(date(2024, 1, 1), date(2024, 1, 1))) == 1


def test_range_rejects_reversed_bounds():
    with pytest.raises(ValueError):
        DateRange(date(2024, 2, 1), date(2024, 1, 1))


def test_range_iteration():
    days = list(DateRange(date(2024, 2, 27), date(2024, 3, 1)))
    assert days == [date(2024, 2, 27), date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1)]


def test_overlapping_ranges():
    a = DateRange(date(2024, 1, 1), date(2024, 1, 20))
    b = DateRange(date(2024, 1, 10), date(2024, 2, 10))
    assert a.overlaps(b) and b.overlaps(a)
    assert a.intersection(b) == DateRange(date(2024, 1, 10), date(2024, 1, 20))


def test_adjacent_ranges_do_not_overlap():
    january = DateRange.month(2024, 1)
    february = DateRange.month(2024, 2)
    assert not january.overlaps(february)
    assert january.intersection(february) is None


def test_split_by_month():
    parts = DateRange(date(2024, 1, 20), date(2024, 3, 5)).split_by_month()
    assert parts == [
        DateRange(date(2024, 1, 20), date(2024, 1, 31)),
        DateRange.month(2024, 2),
        DateRange(date(2024, 3, 1), date(2024, 3, 5)),
    ]


def test_shift_and_year():
    assert DateRange.year(2023).shift(1) == DateRange(date(2023, 1, 2), date(2024, 1, 1))
""")

INTEREST = _s(r'''
"""Interest calculations and amortization schedules."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .dates import add_months
from .money import Money, _to_decimal

CONVENTIONS = ("ACT/365", "ACT/360", "30/360")


def year_fraction(start, end, convention="ACT/365"):
    """Length of the period from *start* to *end* in years, as a Decimal."""
    if end < start:
        raise ValueError("end must not be before start")
    if convention == "ACT/365":
        return Decimal((end - start).days) / 365
    if convention == "ACT/360":
        return Decimal((end - start).days) / 360
    if convention == "30/360":
        d1 = min(start.day, 30)
        d2 = end.day
        if d2 == 31 and d1 == 30:
            d2 = 30
        days = 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)
        return Decimal(days) / 360
    raise ValueError(f"unknown day count convention {convention!r}")


def simple_interest(principal, annual_rate, start, end, convention="ACT/365"):
    """Simple interest on *principal* from *start* to *end*, rounded."""
    rate = _to_decimal(annual_rate)
    return (principal * (rate * year_fraction(start, end, convention))).rounded()


def compound(principal, annual_rate, years, periods_per_year=12):
    """Value of *principal* after *years* of compounding, rounded."""
    periods = Decimal(str(years)) * periods_per_year
    if periods != periods.to_integral_value():
        raise ValueError("years must cover a whole number of periods")
    rate = _to_decimal(annual_rate) / periods_per_year
    return (principal * (1 + rate) ** int(periods)).rounded()


@dataclass(frozen=True)
class Installment:
    number: int
    due: date
    payment: Money
    interest: Money
    principal: Money
    balance: Money


def amortize(principal, annual_rate, months, first_due):
    """Schedule of equal monthly payments paying off *principal*.

    Payments are due on the same day of every month as *first_due* (or on
    the last day of shorter months).  The final payment absorbs rounding
    differences so that the balance ends at exactly zero.
    """
    if months < 1:
        raise ValueError("months must be at least 1")
    rate = _to_decimal(annual_rate) / 12
    if rate == 0:
        payment = (principal / months).rounded()
    else:
        payment = (principal * rate / (1 - (1 + rate) ** -months)).rounded()
    balance = principal.rounded()
    schedule = []
    for number in range(1, months + 1):
        interest = (balance * rate).rounded()
        if number == months:
            paid_principal = balance
        else:
            paid_principal = payment - interest
        balance = balance - paid_principal
        schedule.append(Installment(
            number=number,
            due=add_months(first_due, number - 1),
            payment=paid_principal + interest,
            interest=interest,
            principal=paid_principal,
            balance=balance,
        ))
    return schedule
''')

INIT_V3 = INIT_V2.replace(
    "from .errors import CurrencyError, CurrencyMismatchError, LedgerError, MoneyError\n",
    "from .errors import CurrencyError, CurrencyMismatchError, LedgerError, MoneyError\n"
    "from .interest import Installment, amortize, compound, simple_interest, year_fraction\n",
)

TEST_INTEREST = _s(r"""
from datetime import date
from decimal import Decimal

import pytest

from ledger import Money, amortize, compound, simple_interest, year_fraction


def test_year_fraction_act_365():
    assert year_fraction(date(2023, 1, 1), date(2024, 1, 1)) == 1
    assert year_fraction(date(2024, 1, 1), date(2024, 1, 1)) == 0


def test_year_fraction_30_360():
    assert year_fraction(date(2024, 1, 31), date(2024, 3, 31), "30/360") == Decimal(60) / 360
    assert year_fraction(date(2024, 1, 15), date(2025, 1, 15), "30/360") == 1


def test_year_fraction_rejects_unknown_convention():
    with pytest.raises(ValueError):
        year_fraction(date(2024, 1, 1), date(2024, 2, 1), "ACT/999")


def test_simple_interest():
    interest = simple_interest(Money("1000.00"), "0.05", date(2023, 1, 1), date(2024, 1, 1))
    assert interest == Money("50.00")
    interest = simple_interest(Money("1000.00"), "0.036", date(2024, 1, 1), date(2024, 1, 31), "ACT/360")
    assert interest == Money("3.00")


def test_compound_monthly():
    assert compound(Money("1000.00"), "0.12", 1) == Money("1126.83")
    with pytest.raises(ValueError):
        compound(Money("1000.00"), "0.12", "0.01")


def test_amortize_pays_off_the_loan():
    schedule = amortize(Money("1000.00"), "0.06", 12, date(2024, 2, 1))
    assert len(schedule) == 12
    assert schedule[0].payment == Money("86.07")
    assert schedule[0].interest == Money("5.00")
    assert schedule[-1].balance == Money("0.00")
    assert sum(row.principal for row in schedule) == Money("1000.00")


def test_amortize_due_dates():
    schedule = amortize(Money("300.00"), 0, 3, date(2024, 11, 15))
    assert [row.due for row in schedule] == [date(2024, 11, 15), date(2024, 12, 15), date(2025, 1, 15)]
    assert [row.payment for row in schedule] == [Money("100.00")] * 3
""")

JOURNAL = _s(r'''
"""A journal of dated money entries in one currency."""

import bisect
from dataclasses import dataclass, field
from datetime import date

from .currency import get_currency
from .errors import CurrencyMismatchError
from .money import Money


@dataclass(frozen=True)
class Entry:
    day: date
    amount: Money
    memo: str = ""
    seq: int = field(default=0, compare=False, repr=False)


class Journal:
    """Entries kept in date order (entries of the same day keep insertion order)."""

    def __init__(self, currency="USD"):
        self.currency = get_currency(currency)
        self._entries = []
        self._keys = []
        self._seq = 0

    def add(self, day, amount, memo=""):
        if not isinstance(amount, Money):
            amount = Money(amount, self.currency)
        if amount.currency != self.currency:
            raise CurrencyMismatchError(
                f"journal is in {self.currency.code}, got {amount.currency.code}"
            )
        self._seq += 1
        entry = Entry(day, amount, memo, self._seq)
        key = (day, self._seq)
        index = bisect.bisect(self._keys, key)
        self._keys.insert(index, key)
        self._entries.insert(index, entry)
        return entry

    def __len__(self):
        return len(self._entries)

    def __iter__(self):
        return iter(self._entries)

    def balance(self, as_of=None):
        """Sum of all entries up to and including *as_of*."""
        total = Money.zero(self.currency)
        for entry in self._entries:
            if as_of is not None and entry.day > as_of:
                break
            total = total + entry.amount
        return total

    def entries_in(self, period):
        return [entry for entry in self._entries if entry.day in period]

    def total(self, period):
        return sum((entry.amount for entry in self.entries_in(period)), Money.zero(self.currency))

    def monthly_totals(self):
        """Map (year, month) to the sum of the entries of that month."""
        totals = {}
        for entry in self._entries:
            key = (entry.day.year, entry.day.month)
            totals[key] = totals.get(key, Money.zero(self.currency)) + entry.amount
        return totals
''')

TEST_JOURNAL = _s(r"""
from datetime import date

import pytest

from ledger import CurrencyMismatchError, DateRange, Journal, Money


def make_journal():
    journal = Journal("EUR")
    journal.add(date(2024, 1, 5), "100.00", "salary")
    journal.add(date(2024, 1, 3), "-20.00", "groceries")
    journal.add(date(2024, 2, 1), "-35.50", "rent share")
    journal.add(date(2024, 1, 5), "-5.00", "coffee")
    return journal


def test_entries_are_sorted_by_day_then_insertion():
    memos = [entry.memo for entry in make_journal()]
    assert memos == ["groceries", "salary", "coffee", "rent share"]


def test_balance():
    journal = make_journal()
    assert journal.balance() == Money("39.50", "EUR")
    assert journal.balance(as_of=date(2024, 1, 31)) == Money("75.00", "EUR")
    assert journal.balance(as_of=date(2023, 12, 31)) == Money("0", "EUR")


def test_total_for_period():
    journal = make_journal()
    assert journal.total(DateRange.month(2024, 1)) == Money("75.00", "EUR")
    assert len(journal.entries_in(DateRange.month(2024, 2))) == 1


def test_monthly_totals():
    totals = make_journal().monthly_totals()
    assert totals == {(2024, 1): Money("75.00", "EUR"), (2024, 2): Money("-35.50", "EUR")}


def test_currency_must_match():
    with pytest.raises(CurrencyMismatchError):
        Journal("EUR").add(date(2024, 1, 1), Money("1", "USD"))
""")

INIT_V4 = INIT_V3.replace(
    "from .interest import Installment, amortize, compound, simple_interest, year_fraction\n",
    "from .interest import Installment, amortize, compound, simple_interest, year_fraction\nfrom .journal import Entry, Journal\n",
)

HISTORY = [
    {
        "message": "Add currencies and Money",
        "write": {
            "pyproject.toml": PYPROJECT,
            "README.md": README,
            "ledger/__init__.py": INIT_V1,
            "ledger/errors.py": ERRORS,
            "ledger/currency.py": CURRENCY,
            "ledger/money.py": MONEY,
            "tests/test_currency.py": TEST_CURRENCY,
            "tests/test_money.py": TEST_MONEY,
        },
    },
    {
        "message": "Add calendar helpers and DateRange",
        "write": {
            "ledger/__init__.py": INIT_V2,
            "ledger/dates.py": DATES,
            "tests/test_dates.py": TEST_DATES,
        },
    },
    {
        "message": "Add interest calculations and amortization schedules",
        "write": {
            "ledger/__init__.py": INIT_V3,
            "ledger/interest.py": INTEREST,
            "tests/test_interest.py": TEST_INTEREST,
        },
    },
    {"task": "ledger-month-end-clamp"},
    {
        "message": "Add Journal",
        "write": {
            "ledger/__init__.py": INIT_V4,
            "ledger/journal.py": JOURNAL,
            "tests/test_journal.py": TEST_JOURNAL,
        },
    },
    {"task": "ledger-range-overlap-boundary"},
    {"task": "ledger-negative-rounding"},
    {
        "message": "Release 0.3.0",
        "edit": [
            ("ledger/__init__.py", '__version__ = "0.2.0"', '__version__ = "0.3.0"'),
            ("pyproject.toml", 'version = "0.2.0"', 'version = "0.3.0"'),
        ],
        "write": {
            "CHANGELOG.md": _s(r"""
# Changelog

## 0.3.0

- New `Journal` of dated entries.
- `add_months()` clamps to the end of shorter months.
- `DateRange.overlaps()` counts a shared first/last day as an overlap.
- Negative amounts round half away from zero, like positive ones.

## 0.2.0

- Dates, interest and amortization schedules.
"""),
        },
    },
]

TASKS = {
    "ledger-month-end-clamp": {
        "fix_message": "Clamp add_months() to the last day of shorter months",
        "edit": [
            (
                "ledger/dates.py",
                "    year, month0 = divmod(index, 12)\n    return day.replace(year=year, month=month0 + 1)\n",
                "    year, month0 = divmod(index, 12)\n"
                "    month = month0 + 1\n"
                "    return date(year, month, min(day.day, days_in_month(year, month)))\n",
            ),
        ],
        "append": {
            "tests/test_dates.py": _t(r"""
def test_add_months_clamps_to_end_of_shorter_month():
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2024, 3, 31), 1) == date(2024, 4, 30)


def test_add_months_clamps_going_backwards():
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    assert add_months(date(2023, 12, 31), -10) == date(2023, 2, 28)


def test_months_between_from_month_end():
    assert months_between(date(2024, 1, 31), date(2024, 2, 29)) == 1
"""),
            "tests/test_interest.py": _t(r"""
def test_amortize_starting_on_the_31st():
    schedule = amortize(Money("400.00"), 0, 4, date(2024, 1, 31))
    assert [row.due for row in schedule] == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
    ]
"""),
        },
        "problem_statement": _s(r"""
amortize() crashes for loans whose first payment is on the 31st

Building a repayment schedule for a loan whose first installment is due on
January 31st fails with a ValueError:

```python
from datetime import date
from ledger import Money, amortize

amortize(Money("400.00"), 0, 4, date(2024, 1, 31))
```

```
Traceback (most recent call last):
  ...
ValueError: day is out of range for month
```

The docstring says payments are due on the same day every month, or on the
last day of shorter months, so I expected due dates of 2024-01-31,
2024-02-29, 2024-03-31 and 2024-04-30. The same error shows up when calling
`ledger.add_months(date(2024, 1, 31), 1)` directly (I'd expect 2024-02-29
there), and when going backwards, e.g. from March 31st by -1 month.
`months_between(date(2024, 1, 31), date(2024, 2, 29))` also blows up instead
of returning 1.
"""),
    },
    "ledger-range-overlap-boundary": {
        "fix_message": "DateRange.overlaps: ranges sharing one day overlap",
        "edit": [
            (
                "ledger/dates.py",
                "        return self.start < other.end and other.start < self.end\n",
                "        return self.start <= other.end and other.start <= self.end\n",
            ),
        ],
        "append": {
            "tests/test_dates.py": _t(r"""
def test_ranges_sharing_a_single_day_overlap():
    january = DateRange(date(2024, 1, 1), date(2024, 1, 31))
    rollover = DateRange(date(2024, 1, 31), date(2024, 2, 15))
    assert january.overlaps(rollover)
    assert rollover.overlaps(january)


def test_single_day_range_overlaps():
    day = DateRange(date(2024, 5, 5), date(2024, 5, 5))
    assert day.overlaps(day)
    assert day.overlaps(DateRange(date(2024, 5, 1), date(2024, 5, 5)))
    assert DateRange.month(2024, 5).overlaps(day)
"""),
        },
        "problem_statement": _s(r"""
DateRange.overlaps() misses ranges that share their first/last day

We use `DateRange.overlaps()` to reject billing periods that overlap an
existing one. A period ending on January 31st and another one starting on
January 31st were both accepted, although both contain that day
(`DateRange` is documented as inclusive on both ends):

```python
from datetime import date
from ledger import DateRange

a = DateRange(date(2024, 1, 1), date(2024, 1, 31))
b = DateRange(date(2024, 1, 31), date(2024, 2, 15))
print(a.overlaps(b))      # False, expected True
print(a.intersection(b))  # DateRange(start=2024-01-31, end=2024-01-31)
```

So `intersection()` finds a common day but `overlaps()` says there is none.
Single-day ranges are affected too: `r = DateRange(d, d)` gives
`r.overlaps(r) == False`. Ranges that are merely adjacent (January and
February) should of course still not overlap.
"""),
    },
    "ledger-negative-rounding": {
        "fix_message": "Round negative halves away from zero",
        "edit": [
            (
                "ledger/money.py",
                "from decimal import ROUND_FLOOR, Decimal, InvalidOperation\n",
                "from decimal import ROUND_HALF_UP, Decimal, InvalidOperation\n",
            ),
            (
                "ledger/money.py",
                "    return (amount + step / 2).quantize(step, rounding=ROUND_FLOOR)\n",
                "    return amount.quantize(step, rounding=ROUND_HALF_UP)\n",
            ),
        ],
        "append": {
            "tests/test_money.py": _t(r"""
def test_rounding_negative_half_goes_away_from_zero():
    assert Money("-2.345").rounded() == Money("-2.35")
    assert Money("-0.005", "EUR").rounded() == Money("-0.01", "EUR")
    assert Money("-1.0005", "BHD").rounded().amount == Decimal("-1.001")


def test_rounding_is_symmetric_for_yen():
    assert Money("2.5", "JPY").rounded().amount == Decimal("3")
    assert Money("-2.5", "JPY").rounded().amount == Decimal("-3")


def test_refund_formats_like_the_charge():
    charge = Money("10.125")
    refund = -charge
    assert charge.format() == "$10.13"
    assert refund.format() == "-$10.13"
    assert str(refund) == "-10.13 USD"
"""),
        },
        "problem_statement": _s(r"""
Refunds round differently from charges

`Money.rounded()` is documented to round halves away from zero (2.345 ->
2.35 and -2.345 -> -2.35). Positive amounts behave like that, but for
negative amounts that are exactly half-way the result goes towards zero:

```python
from ledger import Money

print(Money("2.345").rounded())    # 2.35 USD  (ok)
print(Money("-2.345").rounded())   # -2.34 USD (expected -2.35 USD)
print(Money("-2.5", "JPY").rounded())  # -2 JPY (expected -3 JPY)
```

This bites us when we refund a charge: the charge of 10.125 is shown as
`$10.13` but the refund (the negated amount) is shown as `-$10.12`, so the
customer's statement doesn't net to zero. Amounts that are not exactly on
the half (like -2.346 or -2.344) round correctly.
"""),
    },
}
