"""The Genesys Cloud side of drop-caller: find live calls by number and disconnect one participant.

This package never imports the Slack side (`bot`): it hands out small typed domain objects
(`genesys.models`) and raises only `genesys.errors.GenesysError` subclasses.

Importing it registers the Genesys SDK for lean loading (`genesys.sdk`), so that the modules
here that import the SDK load only the parts of it they use.
"""

from genesys import sdk as _sdk

_sdk.install()
