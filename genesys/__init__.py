"""The Genesys Cloud side of drop-caller: find live calls by number and disconnect one participant.

This package never imports the Slack side (`bot`): it hands out small typed domain objects
(`genesys.models`) and raises only `genesys.errors.GenesysError` subclasses.
"""
