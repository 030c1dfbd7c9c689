"""Shared constants of the example tests."""

TOKEN = "example-token-0123456789"
