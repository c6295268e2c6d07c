"""Unit tests for the Slack side's pure modules (no network, no fakes)."""
