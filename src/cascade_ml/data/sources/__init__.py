"""Data sources: files in known formats and exchanges through ccxt."""
