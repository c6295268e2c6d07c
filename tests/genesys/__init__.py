"""Unit tests for the Genesys side, against the fake Genesys Cloud over real HTTP."""
