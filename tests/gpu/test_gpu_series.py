from hypothesis import given
from hypothesis import strategies as st

from pistachio_tui.gpu.series import Series, TieredSeries

floats = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


@given(st.integers(min_value=1, max_value=50), st.lists(floats, max_size=200))
def test_series_matches_a_naive_model(capacity: int, values: list[float]) -> None:
    series = Series(capacity)
    for i, v in enumerate(values):
        series.append(float(i), v)
        assert len(series) <= capacity
    kept = values[-capacity:]
    assert series.values() == kept
    assert series.times() == [float(i) for i in range(len(values))][-capacity:]
    assert series.last() == (kept[-1] if kept else None)
    assert series.peak() == (max(kept) if kept else None)
    if kept:
        assert abs(series.mean() - sum(kept) / len(kept)) <= 1e-6 * max(1.0, max(abs(v) for v in kept))


def test_buffer_is_preallocated_and_never_grows() -> None:
    series = Series(4)
    buffer = series._values
    for i in range(1000):
        series.append(i, i)
    assert series._values is buffer and len(buffer) == 4
    assert series.values() == [996, 997, 998, 999]


def test_empty_series_reports_none() -> None:
    series = Series(3)
    assert (series.last(), series.peak(), series.mean(), series.last_time()) == (None, None, None, None)


@given(st.lists(floats, min_size=1, max_size=300))
def test_tiered_peak_survives_the_short_tier(values: list[float]) -> None:
    series = TieredSeries(5, bucket=10.0, long_capacity=10)
    for i, v in enumerate(values):
        series.append(float(i), v)
    assert series.peak() == max(values)
    assert len(series.long) <= 10


def test_tiered_long_tier_holds_bucket_means() -> None:
    series = TieredSeries(3, bucket=10.0, long_capacity=100)
    for t in range(30):
        series.append(float(t), float(t))
    assert series.long.times() == [0.0, 10.0]
    assert series.long.values() == [4.5, 14.5]
    assert series.values() == [27.0, 28.0, 29.0]
    series.reset_peak()
    assert series.peak() == 29.0
