"""Roman numerals: integers from 1 to 3999 to text and back."""

_NUMERALS = [
    (1000, "M"),
    (500, "D"),
    (100, "C"),
    (50, "L"),
    (10, "X"),
    (5, "V"),
    (1, "I"),
]


def to_roman(number):
    """The Roman numeral of `number` (1..3999)."""
    if not isinstance(number, int) or not 0 < number < 4000:
        raise ValueError(f"cannot write {number!r} in Roman numerals")
    parts = []
    for value, letters in _NUMERALS:
        count, number = divmod(number, value)
        parts.append(letters * count)
    return "".join(parts)


def from_roman(text):
    """The integer a Roman numeral stands for."""
    total, rest = 0, text.upper()
    for value, letters in _NUMERALS:
        while rest.startswith(letters):
            total += value
            rest = rest[len(letters) :]
    if rest or not total:
        raise ValueError(f"not a Roman numeral: {text!r}")
    return total
