from hypothesis import given
from hypothesis import strategies as st

from mm.risk.pnl import net_pnl_units, update_peak, window_pnl_units


def test_net_pnl_is_realized_plus_unrealized_minus_fees() -> None:
    assert net_pnl_units(12_0000, -3_5000, 1750) == 8_3250


def test_window_pnl() -> None:
    assert window_pnl_units(net_now_units=-20_0000, net_at_window_start_units=15_0000) == -35_0000


def test_drawdown_follows_the_running_peak() -> None:
    peak = None
    seen = []
    for net in (0, 10_0000, 4_0000, 12_0000, -3_0000):
        peak, drawdown = update_peak(peak, net)
        seen.append((peak, drawdown))
    assert seen == [(0, 0), (10_0000, 0), (10_0000, 6_0000), (12_0000, 0), (12_0000, 15_0000)]


@given(st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=50))
def test_drawdown_is_the_distance_below_the_running_maximum(series: list[int]) -> None:
    peak = None
    running_max = series[0]
    for net in series:
        running_max = max(running_max, net)
        peak, drawdown = update_peak(peak, net)
        assert peak == running_max
        assert drawdown == running_max - net >= 0
