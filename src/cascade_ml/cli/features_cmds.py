"""`cascade-ml features build|list` and `cascade-ml labels build`."""

from __future__ import annotations

from pathlib import Path

import typer

features_app = typer.Typer(help="Point-in-time feature tables.", no_args_is_help=True)
labels_app = typer.Typer(help="Forward-looking labels (stored apart from features).",
                         no_args_is_help=True)

_PIPELINE = typer.Option(None, "--pipeline", help="Pipeline YAML file (defaults if omitted).")


def _refs(value: str | None) -> list[str] | None:
    return None if value is None else [s.strip().upper() for s in value.split(",") if s.strip()]


@features_app.command("build")
def build(symbol: str = typer.Option(..., "--symbol", help="Target base asset, e.g. NEAR."),
          refs: str = typer.Option(None, "--refs", help="Reference symbols, e.g. BTC,ETH."),
          start: str = typer.Option(None, "--start", help="First row (UTC), e.g. 2024-01-01."),
          end: str = typer.Option(None, "--end", help="Last row (UTC)."),
          force: bool = typer.Option(False, "--force", help="Rebuild even if up to date."),
          pipeline: Path = _PIPELINE) -> None:
    """Build and store the feature table of one symbol (skipped when inputs are unchanged)."""
    from cascade_ml.config import load_pipeline
    from cascade_ml.data.store import MarketStore
    from cascade_ml.features.build import build_and_store

    config = load_pipeline(pipeline)
    result = build_and_store(MarketStore(config.store.root), symbol.upper(), config.task,
                             config.features, start=start, end=end, refs=_refs(refs), force=force)
    typer.echo(result.line())


@features_app.command("list")
def list_features(refs: str = typer.Option(None, "--refs", help="Reference symbols."),
                  pipeline: Path = _PIPELINE) -> None:
    """Print every feature name with its family and a one-line description."""
    from cascade_ml.config import load_pipeline
    from cascade_ml.features.registry import feature_specs

    config = load_pipeline(pipeline)
    names = _refs(refs)
    specs = feature_specs(config.features, names if names is not None
                          else list(config.task.references))
    width = max(len(s.name) for s in specs)
    for spec in specs:
        typer.echo(f"{spec.name:<{width}}  {spec.family:<13}  {spec.description}")
    typer.echo(f"{len(specs)} features")


@labels_app.command("build")
def build_labels(symbol: str = typer.Option(..., "--symbol", help="Target base asset."),
                 horizon: int = typer.Option(None, "--horizon",
                                             help="Bars ahead (default: task.horizon)."),
                 force: bool = typer.Option(False, "--force", help="Rebuild even if up to date."),
                 pipeline: Path = _PIPELINE) -> None:
    """Build and store one symbol's labels at ``labels/symbol=<S>/h=<H>/``."""
    from cascade_ml.config import load_pipeline
    from cascade_ml.data.store import MarketStore
    from cascade_ml.errors import ConfigError
    from cascade_ml.labels.build import build_and_store_labels

    if horizon is not None and horizon < 1:
        raise ConfigError(f"--horizon must be at least 1 bar, got {horizon}")
    config = load_pipeline(pipeline)
    task = config.task if horizon is None else config.task.model_copy(update={"horizon": horizon})
    result = build_and_store_labels(MarketStore(config.store.root), symbol.upper(), task,
                                    config.labels, oi_venues=config.features.oi_venues,
                                    force=force)
    typer.echo(result.line())


def register(app: typer.Typer) -> None:
    """Attach the `features` and `labels` command groups to the top-level app."""
    app.add_typer(features_app, name="features")
    app.add_typer(labels_app, name="labels")
