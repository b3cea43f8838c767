#!/bin/bash
# The reference solution: Harbor's oracle runs it in the task's container.
set -euo pipefail
cd /app
python3 - <<'PY'
from pathlib import Path

path = Path("roman.py")
text = path.read_text()
# Each subtractive pair goes right after the numeral it is smaller than.
for larger, pair in [((1000, "M"), (900, "CM")), ((500, "D"), (400, "CD")), ((100, "C"), (90, "XC")),
                     ((50, "L"), (40, "XL")), ((10, "X"), (9, "IX")), ((5, "V"), (4, "IV"))]:
    line = f"    {larger!r},\n".replace("'", '"')
    assert text.count(line) == 1, line
    text = text.replace(line, line + f"    {pair!r},\n".replace("'", '"'))
path.write_text(text)
PY
