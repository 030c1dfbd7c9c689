"""Paper-mode hedging bot: polls the service for a decision on one position and prints the hedge
it *would* place. Places no orders. Bounded: stops after ``--iterations``.

    export CASCADE_ML_TOKEN=...            # the service's token
    cascade-ml serve --pipeline pipelines/near.yaml &
    python examples/paper_bot.py --symbol NEAR --notional 5000 --mark-price 5.1 --leverage 3 \\
        --iterations 5 --interval 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from cascade_ml.client import CascadeClient, ClientError


def run(args: argparse.Namespace) -> int:
    token = os.environ.get(args.token_env, "")
    if not token:
        print(f"set {args.token_env} to the service token", file=sys.stderr)
        return 2
    hedge_ratio = args.hedge_ratio  # what the paper book holds now
    failures = 0
    with CascadeClient(args.url, token, timeout=args.timeout, retries=args.retries) as client:
        for i in range(1, args.iterations + 1):
            try:
                d = client.decision(args.symbol, notional=args.notional, side=args.side,
                                    mark_price=args.mark_price, leverage=args.leverage,
                                    portfolio_value=args.equity, hedge_ratio=hedge_ratio)
            except ClientError as exc:  # service down or request refused: hold, keep trying
                failures += 1
                print(f"[{i}] no decision ({exc.message}); holding hedge {hedge_ratio:.0%}")
            else:
                flag = "FAIL-SAFE " if d.fail_safe else ""
                hedge_side = "short" if args.side == "long" else "long"
                print(f"[{i}] {flag}{d.action}: hedge {d.hedge_ratio:.0%} of {args.notional:,.0f}"
                      f" = {d.hedge_ratio * args.notional:,.0f} {hedge_side} via {d.instrument};"
                      f" leverage cap {d.leverage_cap:.2f}x; size cap {d.size_cap:,.0f};"
                      f" model {d.model_version} (forecast age {d.forecast_age_seconds} s)")
                if d.action == "rebalance":
                    hedge_ratio = d.hedge_ratio  # paper fill
                if args.verbose:
                    for reason in d.reasons:
                        print(f"      - {reason}")
            if i < args.iterations:
                time.sleep(args.interval)
    return 1 if failures == args.iterations else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--token-env", default="CASCADE_ML_TOKEN")
    ap.add_argument("--symbol", default="NEAR")
    ap.add_argument("--side", choices=["long", "short"], default="long")
    ap.add_argument("--notional", type=float, default=5_000.0)
    ap.add_argument("--mark-price", type=float, required=True)
    ap.add_argument("--leverage", type=float, default=3.0)
    ap.add_argument("--equity", type=float, default=None)
    ap.add_argument("--hedge-ratio", type=float, default=0.0)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--retries", type=int, default=3)
    ap.add_argument("-v", "--verbose", action="store_true")
    sys.exit(run(ap.parse_args()))


if __name__ == "__main__":
    main()
