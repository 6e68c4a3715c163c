from hypothesis import given
from hypothesis import strategies as st

from pistachio_tui.gpu.series import PeakSeries, Series

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
def test_peak_survives_samples_ageing_out(values: list[float]) -> None:
    series = PeakSeries(5)
    for i, v in enumerate(values):
        series.append(float(i), v)
    assert series.peak() == max(values)
    assert series.values() == values[-5:]


def test_reset_peak_restarts_from_the_samples_held() -> None:
    series = PeakSeries(3)
    for t in range(30):
        series.append(float(t), float(30 - t))
    assert series.peak() == 30.0
    series.reset_peak()
    assert series.peak() == 3.0
