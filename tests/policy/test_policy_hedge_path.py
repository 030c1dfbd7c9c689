"""rules.hedge_path: bar by bar, or asking its move test for blocks of bars; the same path."""

from __future__ import annotations

import numpy as np
import pytest

from cascade_ml.policy import rules


def bar_by_bar(target: list[float], pays) -> list[float]:
    """The path written out: bar i moves to its target when it differs and the move pays."""
    held, path = target[0], []
    for i, t in enumerate(target):
        if t != held and pays(i, t, held):
            held = t
        path.append(held)
    return path


def test_a_hand_made_path() -> None:
    # moves only when the target is at least 0.1 away: 0.3 is held through 0.35, 0.45 is taken
    target = [0.3, 0.35, 0.45, 0.5, 0.3, 0.7, 0.65]
    one = lambda i, t, held: abs(t - held) >= 0.1  # noqa: E731
    block = lambda a, b, held: np.abs(np.asarray(target[a:b]) - held) >= 0.1  # noqa: E731
    want = [0.3, 0.3, 0.45, 0.45, 0.3, 0.7, 0.7]
    assert rules.hedge_path(target, one) == want
    assert rules.hedge_path(np.array(target), one, moves=block, scalar_bars=1,
                            first_block=2) == want


@pytest.mark.parametrize("scalar_bars, first_block", [(0, 1), (1, 2), (2, 3), (16, 64)])
def test_blocks_give_the_bar_by_bar_path_with_moves_on_block_edges(scalar_bars: int,
                                                                   first_block: int) -> None:
    rng = np.random.default_rng(3)
    target = np.round(rng.uniform(0.3, 0.7, 500), 2)
    target[100:300] = 0.5  # a long run where nothing moves: the blocks grow
    target[[0, 7, 8, 64, 65, 127, 128, 400]] = [0.3, 0.7, 0.3, 0.7, 0.3, 0.7, 0.3, 0.9]
    fee = rng.uniform(0.0, 0.3, 500)  # a bar-dependent cost the move must beat
    fee[400] = 0.0
    one = lambda i, t, held: abs(t - held) > fee[i]  # noqa: E731

    def block(a: int, b: int, held: float) -> np.ndarray:
        return np.abs(target[a:b] - held) > fee[a:b]

    got = rules.hedge_path(target, one, moves=block, scalar_bars=scalar_bars,
                           first_block=first_block)
    assert got == bar_by_bar(target.tolist(), one)
    assert got[400] == 0.9 and {0.3, 0.7} <= set(got[1:10])  # moves on the edges happened


def test_a_start_outside_the_targets_is_left_at_the_first_move() -> None:
    target = [0.5, 0.5, 0.6]
    up = lambda i, t, held: t > held + 0.05  # noqa: E731
    never = lambda a, b, held: np.zeros(b - a, dtype=bool)  # noqa: E731
    assert rules.hedge_path(target, up, start=0.4) == [0.5, 0.5, 0.6]
    assert rules.hedge_path(target, lambda i, t, h: False, start=0.4, moves=never,
                            scalar_bars=0) == [0.4, 0.4, 0.4]
