"""The Genesys Cloud side of drop-caller: find live calls and disconnect one participant.

This package never imports the Slack side (`bot`): it hands out small typed domain objects
(`genesys.models`) and raises only `genesys.errors.GenesysError` subclasses.

    config    what a client needs (no SDK)          client    the operations, retries, pacing
    errors    the error tree and `translate`         auth      the OAuth token cache
    models    calls, parties, outcomes; parsing      queries   the look-up's three queries
    realtime  how the real-time sources fare         transport timeouts on, hidden retries off
    sdk       lean loading of the official SDK       ratelimit pacing under the rate limit
    addresses numbers in Genesys' addresses          regions   region names to API hosts

Importing the package loads nothing of the SDK; `genesys.sdk` does that, lazily, for the
modules that talk to Genesys.
"""
