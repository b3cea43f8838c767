"""Hidden checks of /app/roman.py (copied to /tests, run from /app)."""

import sys
import unittest

sys.path.insert(0, "/app")

import roman  # noqa: E402


class RomanTests(unittest.TestCase):
    def test_subtractive_pairs(self):
        expected = {4: "IV", 9: "IX", 14: "XIV", 40: "XL", 90: "XC", 400: "CD", 900: "CM"}
        for number, text in expected.items():
            self.assertEqual(roman.to_roman(number), text)

    def test_known_years(self):
        self.assertEqual(roman.to_roman(1994), "MCMXCIV")
        self.assertEqual(roman.to_roman(2024), "MMXXIV")
        self.assertEqual(roman.from_roman("MCMXCIV"), 1994)

    def test_round_trip(self):
        for number in range(1, 4000):
            self.assertEqual(roman.from_roman(roman.to_roman(number)), number)

    def test_out_of_range(self):
        for bad in (0, 4000, -1, 2.5):
            with self.assertRaises(ValueError):
                roman.to_roman(bad)


if __name__ == "__main__":
    unittest.main()
