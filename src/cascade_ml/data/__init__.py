"""Market data: canonical schemas, validation, the Parquet store and the sources that fill it."""
