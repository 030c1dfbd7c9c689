"""The freqtrade example's callbacks, called as freqtrade calls them, against a running service:
leverage and stake stay inside the served decision; failing safe or no answer means no entry."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from demo_data import make_demo_bundle, run_score, synthetic_features, write_features
from demo_data import write_pipeline as pipeline_file
from example_helpers import TOKEN

from cascade_ml.client import CascadeClient

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "freqtrade_strategy.py"


def strategy_class():  # noqa: ANN201 - the example's class, loaded from its file
    spec = importlib.util.spec_from_file_location("freqtrade_strategy", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.CascadeHedgedStrategy


@pytest.fixture(scope="module")
def service_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NEAR with a forecast on the bar that just closed; SOL whose newest bar is two days old."""
    tmp = tmp_path_factory.mktemp("freqtrade")
    pipeline = pipeline_file(tmp, symbols=("NEAR", "SOL"))
    write_features(tmp, synthetic_features(800), "NEAR")
    stale_end = pd.Timestamp.now(tz="UTC").floor("1h") - pd.Timedelta("2d")
    write_features(tmp, synthetic_features(800, stale_end, seed=1), "SOL")
    for seed, symbol in enumerate(("NEAR", "SOL")):
        make_demo_bundle(tmp / "models" / symbol, seed=seed, symbol=symbol, n_rows=600,
                         n_estimators=15)
    assert all(r.ok for r in run_score(pipeline))
    return pipeline


class Wallets:
    """freqtrade's ``self.wallets``, as far as the strategy reads it."""

    def __init__(self, total: float) -> None:
        self.total = total

    def get_total_stake_amount(self) -> float:
        return self.total


def ask(url: str, symbol: str, **body) -> object:  # noqa: ANN003 - the same request, by hand
    with CascadeClient(url, TOKEN) as client:
        return client.decision(symbol, side="long", **body)


def test_callbacks_keep_the_bot_inside_the_served_decision(
        service_files: Path, serve, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    url = serve(service_files)
    now = datetime.now(UTC)  # the callbacks send it as as_of: live trading's clock
    monkeypatch.setenv("CASCADE_ML_URL", url)
    monkeypatch.setenv("CASCADE_ML_TOKEN", TOKEN)
    bot = strategy_class()({"stake_amount": 1_000})
    price = 5.0

    # freqtrade always proposes 1x: the answer is the decision's cap, not the proposal
    lev = bot.leverage("NEAR/USDT:USDT", now, price, proposed_leverage=1.0, max_leverage=50.0,
                       entry_tag=None, side="long")
    first = ask(url, "NEAR", notional=1_000.0, mark_price=price, leverage=1.0)
    assert not first.fail_safe and 1.0 < first.leverage_cap < 50.0
    assert lev == pytest.approx(first.leverage_cap)
    # just below the cap, freqtrade's max_leverage for the pair binds
    below = first.leverage_cap - 0.01
    assert bot.leverage("NEAR/USDT:USDT", now, price, proposed_leverage=1.0,
                        max_leverage=below, entry_tag=None, side="long") == below

    stake = bot.custom_stake_amount("NEAR/USDT:USDT", now, price, proposed_stake=1_000.0,
                                    min_stake=5.0, max_stake=50_000.0, leverage=lev,
                                    entry_tag=None, side="long")
    second = ask(url, "NEAR", notional=1_000.0 * lev, mark_price=price, leverage=lev)
    assert stake == pytest.approx(second.size_cap / lev)  # sized by the decision
    assert stake * lev <= second.size_cap * (1 + 1e-9)  # the position fits the size cap
    # with freqtrade's wallet known (equity 100k) the risk budget is larger; the balance
    # freqtrade offers (max_stake) still binds
    bot.wallets = Wallets(100_000.0)
    rich = ask(url, "NEAR", notional=100.0, mark_price=price, leverage=2.0,
               portfolio_value=100_000.0)
    assert rich.size_cap / 2.0 > second.size_cap / lev
    assert bot.custom_stake_amount("NEAR/USDT:USDT", now, price, proposed_stake=50.0,
                                   min_stake=5.0, max_stake=50_000.0, leverage=2.0,
                                   entry_tag=None, side="long") == pytest.approx(
        min(50_000.0, rich.size_cap / 2.0))
    assert bot.custom_stake_amount("NEAR/USDT:USDT", now, price, proposed_stake=50.0,
                                   min_stake=5.0, max_stake=40.0, leverage=2.0,
                                   entry_tag=None, side="long") == 40.0

    # SOL's forecast is two days old: the service fails safe, so the bot does not enter
    stale = ask(url, "SOL", notional=1_000.0, mark_price=price, leverage=2.0)
    assert stale.fail_safe and stale.stale
    assert bot.custom_stake_amount("SOL/USDT:USDT", now, price, proposed_stake=1_000.0,
                                   min_stake=5.0, max_stake=50_000.0, leverage=2.0,
                                   entry_tag=None, side="long") == 0.0
    assert stale.leverage_cap <= 1.0  # the fail-safe's 1x: the bot's floor of 1x applies
    assert bot.leverage("SOL/USDT:USDT", now, price, proposed_leverage=1.0, max_leverage=50.0,
                        entry_tag=None, side="long") == 1.0


def test_no_service_means_no_entry_and_the_lowest_leverage(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC)
    monkeypatch.setenv("CASCADE_ML_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("CASCADE_ML_TOKEN", TOKEN)
    bot = strategy_class()({"stake_amount": "unlimited"})
    assert bot.leverage("NEAR/USDT:USDT", now, 5.0, proposed_leverage=10.0, max_leverage=20.0,
                        entry_tag=None, side="long") == 1.0
    assert bot.custom_stake_amount("NEAR/USDT:USDT", now, 5.0, proposed_stake=100.0,
                                   min_stake=5.0, max_stake=1_000.0, leverage=1.0,
                                   entry_tag=None, side="long") == 0.0
    monkeypatch.delenv("CASCADE_ML_TOKEN")  # no token: no request, no entry either
    assert bot.custom_stake_amount("NEAR/USDT:USDT", now, 5.0, proposed_stake=100.0,
                                   min_stake=5.0, max_stake=1_000.0, leverage=1.0,
                                   entry_tag=None, side="long") == 0.0
