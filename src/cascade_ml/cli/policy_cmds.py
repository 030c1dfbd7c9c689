"""`cascade-ml decide` (one policy decision as JSON) and `cascade-ml backtest`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from pydantic import ValidationError

from cascade_ml.errors import CascadeError


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"unknown field '{loc}'" if err["type"] == "extra_forbidden"
                     else f"'{loc}': {err['msg']}")
    return "; ".join(parts)


def load_inputs(path: Path):  # -> PolicyInputs
    """Read and validate a decision request; any problem is a CascadeError naming the file."""
    from cascade_ml.policy.schemas import PolicyInputs

    if not path.exists():
        raise CascadeError("input file not found", str(path))
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CascadeError(f"not valid JSON ({exc})", str(path)) from exc
    if not isinstance(raw, dict):
        raise CascadeError("the input must be a JSON object", str(path))
    try:
        return PolicyInputs.model_validate(raw)
    except ValidationError as exc:
        raise CascadeError(f"invalid policy inputs: {_validation_message(exc)}", str(path)) from exc


def register(app: typer.Typer) -> None:
    """Attach the policy and backtest commands to the top-level app."""

    @app.command("decide")
    def decide_cmd(
        json_in: Path = typer.Option(..., "--json-in", help="JSON file with the PolicyInputs."),
        pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline file (policy)."),
    ) -> None:
        """Print the policy decision for one position as JSON."""
        from cascade_ml.config import load_pipeline
        from cascade_ml.policy.decide import decide

        config = load_pipeline(pipeline)
        decision = decide(load_inputs(json_in), config.policy)
        typer.echo(decision.model_dump_json(indent=2))

    @app.command("backtest")
    def backtest_cmd(
        symbol: str | None = typer.Option(
            None, "--symbol", help="Backtest this perp alone. Default: the task's symbol; with "
            "several task symbols, the universe backtest of all of them."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the JSON: the "
                                             "strategy records (one perp, --book) or the "
                                             "universe document."),
        report_dir: Path | None = typer.Option(None, "--report-dir",
                                                help="Folder for plots and the HTML report."),
        pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline file."),
        no_mlflow: bool = typer.Option(False, "--no-mlflow", help="Do not log to MLflow."),
        book: bool = typer.Option(False, "--book", help="Backtest the book alone: every "
                                  "perp of backtest.book.symbols (default task.symbols) on one "
                                  "account; --symbol is ignored."),
        tune: int = typer.Option(0, "--tune", min=0, help="Tune the policy's maps with Optuna "
                                 "(this many trials) on --symbol's (default: the first task "
                                 "symbol's) development folds only, then score it once on its "
                                 "final period and on the other book symbols; writes "
                                 "policy_tuning.json."),
    ) -> None:
        """Backtest the hedging strategies on out-of-sample forecasts and compare them: the
        policy fed by the models, HAR, EWMA and an oracle, beside static hedges and the
        size-capped position unhedged, with the forecast value (model-fed minus HAR-fed,
        bootstrap interval), the economic value, the efficiency frontier, regimes and an HTML
        report. Without --symbol on a task of several symbols: every perp, pooled, with the
        left-out perps apart and the one-book view, in one JSON."""
        from cascade_ml.backtest.run import run_backtest, run_book_backtest, run_tuning
        from cascade_ml.config import load_pipeline
        from cascade_ml.data.store import MarketStore

        config = load_pipeline(pipeline)
        store = MarketStore(config.store.root)
        symbols = [s.upper() for s in config.task.symbols]
        if tune:
            others = config.backtest.book.symbols or config.task.symbols
            run_tuning(store, (symbol or symbols[0]).upper(), [s.upper() for s in others],
                       config.task, config.backtest, config.trading, config.policy,
                       trials=tune, out_dir=report_dir)
            return
        if book:
            members = [s.upper() for s in (config.backtest.book.symbols or config.task.symbols)]
            run_book_backtest(store, members, config.task, config.backtest, config.trading,
                              config.policy, config.tracking, json_path=json_out,
                              report_dir=report_dir,
                              log_mlflow=not no_mlflow)
            return
        if symbol is None and len(symbols) > 1:
            from cascade_ml.backtest.universe import run_universe_backtest

            holdout = config.panel.holdout_symbols if config.panel.enabled else []
            run_universe_backtest(store, symbols, config.task, config.backtest, config.trading,
                                  config.policy, config.tracking, holdout=holdout,
                                  compute=config.compute, json_path=json_out,
                                  report_dir=report_dir, log_mlflow=not no_mlflow)
            return
        run_backtest(store, (symbol or symbols[0]).upper(), config.task, config.backtest,
                     config.trading, config.policy, config.tracking, json_path=json_out,
                     report_dir=report_dir, log_mlflow=not no_mlflow)
