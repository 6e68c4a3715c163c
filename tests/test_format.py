import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pistachio_tui.format import duration, gib, money, percent, size, transfer


@pytest.mark.parametrize("n, shown", [(0, "0 B"), (512, "512 B"), (1536, "1.5 KB"), (6.9 * 1024 ** 3, "6.9 GB"),
                                      (3 * 1024 ** 6, "3072.0 PB"), (None, "—"), (math.nan, "—")])
def test_size(n, shown):
    assert size(n) == shown


@pytest.mark.parametrize("seconds, shown", [(0, "0s"), (12.4, "12s"), (249, "4m 09s"), (7500, "2h 05m"),
                                            (273600, "3d 04h"), (-5, "0s"), (None, "—"), (math.inf, "—")])
def test_duration(seconds, shown):
    assert duration(seconds) == shown


def test_gib_money_percent():
    assert gib(24 * 1024 ** 3) == "24.0G" and gib(None) == "—" and gib(2 * 1024 ** 3, " GiB") == "2.0 GiB"
    assert money(1234.5) == "$1,234.50" and money(0.4429, 3) == "$0.443" and money(-2) == "-$2.00"
    assert money(None) == "—" and money(math.nan) == "—"
    assert percent(42.4) == "42%" and percent(None, "?") == "?"


def test_transfer_leaves_out_what_is_unknown():
    assert transfer(12 * 1024 ** 2, int(6.9 * 1024 ** 3), 48 * 1024 ** 2, 145) == "12.0 MB / 6.9 GB, 48.0 MB/s, 2m 25s left"
    assert transfer(3 * 1024 ** 2) == "3.0 MB"
    assert transfer(512, None, 0, None) == "512 B"


@given(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)))
def test_never_raises_on_any_number(value):
    for fmt in (size, gib, duration, money, percent):
        assert isinstance(fmt(value), str)
