"""`cascade-ml live` (the loop, or a replay of history) and `cascade-ml paper report`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cascade_ml.config import PipelineConfig, load_pipeline
from cascade_ml.errors import CascadeError

if TYPE_CHECKING:
    from cascade_ml.live.loop import LoopSections

paper_app = typer.Typer(help="The paper-trading book.", no_args_is_help=True)


def loop_sections(config: PipelineConfig) -> LoopSections:
    """The sections the loop reads, taken from the pipeline file."""
    from cascade_ml.live.loop import LoopSections

    return LoopSections(task=config.task, features=config.features, labels=config.labels,
                        models=config.models, policy=config.policy, monitoring=config.monitoring,
                        tracking=config.tracking, live=config.live, trading=config.trading,
                        panel=config.panel)


def live_cmd(
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
    replay: bool = typer.Option(False, "--replay", help="Replay history (live.replay.source) "
                                "under a simulated clock instead of running live."),
    start: str | None = typer.Option(None, "--from", help="Replay: first bar close (UTC)."),
    until: str | None = typer.Option(None, "--until", help="Replay: last bar close (UTC)."),
    fresh: bool = typer.Option(False, "--fresh", help="Replay: discard a previous replay's "
                               "store, models, book, simulated venue and state first."),
    every: int = typer.Option(24, "--every", help="Replay: print the decision every N bars "
                              "(and every fail-safe one); 0: only the summary."),
    reset_breakers: str | None = typer.Option(
        None, "--reset-breakers", help="Reset tripped circuit breakers before starting: 'all' "
        "or a comma list of daily_loss, max_drawdown, stale_data (stale_data:<SYMBOL>). The "
        "only way to reset max_drawdown; stop the loop first (docs/live.md, runbook)."),
) -> None:
    """Run the loop: at each bar close collect, build features, forecast, check, decide and
    trade (paper by default); retrain on live.retrain_cron. With --replay, run it over
    [--from, --until] of the bundled history, offline, in minutes (live.mode testnet: trading
    with a simulated Binance venue, live.replay.faults injected)."""
    config = load_pipeline(pipeline)
    sections = loop_sections(config)
    if reset_breakers is not None:
        _reset_breakers(sections, config, replay, reset_breakers)
    if replay:
        from cascade_ml.live.run import run_replay

        if not start or not until:
            raise CascadeError("--replay needs --from and --until", "cascade-ml live")
        summary = run_replay(sections, start, until, fresh=fresh, echo=typer.echo,
                             report_every=every)
        for line in summary.lines():
            typer.echo(line)
        typer.echo(f"draw it: cascade-ml paper report --replay"
                   f"{f' --pipeline {pipeline}' if pipeline else ''}")
        return
    if start or until or fresh:
        raise CascadeError("--from, --until and --fresh apply to --replay only",
                           "cascade-ml live")
    from cascade_ml.live.run import live_paths, run_live_loop

    paths = live_paths(sections, config.store.root, config.forecasters_dir, config.tracking)
    run_live_loop(sections, paths, echo=typer.echo)


def _reset_breakers(sections: LoopSections, config: PipelineConfig, replay: bool,
                    which: str) -> None:
    """Reset the breakers saved in the loop state of this run (live or replay) and alert it."""
    from cascade_ml.live.run import live_paths, replay_paths
    from cascade_ml.live.state import reset_breakers
    from cascade_ml.monitoring.alerts import send_alerts

    paths = (replay_paths(sections) if replay else
             live_paths(sections, config.store.root, config.forecasters_dir, config.tracking))
    names = None if which.strip() == "all" else [n.strip() for n in which.split(",") if n.strip()]
    events = reset_breakers(paths.state_file, names)
    send_alerts(events, sections.live.breakers)
    for event in events:
        typer.echo(event.line())
    if not events:
        typer.echo(f"no circuit breaker was tripped in {paths.state_file}")


def report_cmd(
    pipeline: Path | None = typer.Option(None, "--pipeline", help="Pipeline YAML file."),
    replay: bool = typer.Option(False, "--replay", help="The replay's book (live.replay.db_url, "
                                "default live.replay.dir/book.db) instead of live.db_url."),
    db: str | None = typer.Option(None, "--db", help="Any book's SQLAlchemy URL."),
    out: Path | None = typer.Option(None, "--out", help="Folder of the PNG and JSON; default: "
                                    "reports/paper (reports/paper-replay for --replay)."),
) -> None:
    """Draw the book: equity and P&L, drawdown, hedge ratio, forecast vs realised vol."""
    from cascade_ml.live.report import write_paper_report
    from cascade_ml.live.run import replay_book_url

    config = load_pipeline(pipeline)
    url = db or (replay_book_url(config.live.replay) if replay else config.live.db_url)
    folder = out or Path("reports") / ("paper-replay" if replay else "paper")
    summary = write_paper_report(url, folder)
    typer.echo(f"{summary['start']} .. {summary['end']}: {summary['cycles']} decisions "
               f"({summary['fail_safe_share']:.0%} fail-safe), {summary['fills']} fills, "
               f"{summary['refused']} refused; equity {summary['initial_equity']:,.2f} -> "
               f"{summary['final_equity']:,.2f} (max drawdown {summary['max_drawdown']:.1%}, "
               f"funding {summary['funding']:,.2f}, fees {summary['fees']:,.2f})")
    typer.echo(f"figure: {summary['figure']}; figures: {summary['summary']}")


def register(app: typer.Typer) -> None:
    """Attach this area's commands to the top-level app."""
    app.command("live")(live_cmd)
    paper_app.command("report")(report_cmd)
    app.add_typer(paper_app, name="paper")
