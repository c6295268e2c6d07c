"""Build the Bolt app: one wiring point, no global app."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from slack_bolt import App, BoltResponse, Respond
from slack_sdk import WebClient

from bot import actions, commands, home
from bot.authorisation import Authoriser
from bot.blocking import BlockList
from bot.calls import CallDirectory
from bot.drops import DropWorkflow, lease_for
from bot.health import Health
from bot.home import HomeTab
from bot.identity import BotIdentity, authorize_with
from bot.policy import Policy
from bot.publisher import SLACK_TIMEOUT, CardPublisher, slack_retries
from bot.services import Services
from bot.settings import Settings
from bot.store import RequestStore
from bot.supervisors import SupervisorDirectory
from bot.sweeper import Sweeper
from bot.web import WsgiApp, wsgi_app
from bot.work import WorkQueue
from genesys.errors import GenesysError
from genesys.realtime import SourceState

logger = logging.getLogger(__name__)

# Each listener holds a thread while it waits on Genesys; Bolt's default of 5 lets five slow
# lookups starve the sixth command's acknowledgement.
LISTENER_THREADS = 32


@dataclass
class Bot:
    """The Bolt app and the background work that goes with it."""

    app: App
    services: Services
    supervisors: SupervisorDirectory
    sweeper: Sweeper
    identity: BotIdentity
    executor: ThreadPoolExecutor
    signing_secret: str

    # Set once the start-up check of Genesys' real-time lookup sources has finished.
    realtime_checked: threading.Event = field(default_factory=threading.Event, init=False)

    _background_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stopped: bool = field(default=False, init=False)

    def start_background(self, *, check_realtime: bool = True) -> None:
        """Start the background work: read the supervisor groups, learn who the bot is
        (auth.test), sweep, and ask Genesys' real-time sources once so that the log names a
        missing permission at start (`check_realtime`; tests of other things turn it off).

        The groups are read before this returns: a supervisor listed only through a group
        must be recognised from the first request on.
        """
        self.supervisors.start()
        with self._background_lock:
            if self._stopped:
                return
            self.identity.start()
            self.sweeper.start()
        if check_realtime:
            threading.Thread(
                target=self._check_realtime_sources, name="realtime-check", daemon=True
            ).start()
        else:
            self.realtime_checked.set()

    def _check_realtime_sources(self) -> None:
        """Ask Genesys' real-time sources once, and read the block-list table's schema, so the
        log names a missing permission or an unsuitable table now."""
        self.services.blocklist.check()
        try:
            statuses = self.services.calls.check_realtime_sources()
        except GenesysError as exc:
            logger.warning("Could not check Genesys' real-time lookup at start: %s", exc)
        else:
            # Sources that fail have said why already (genesys.realtime logs each new cause).
            if all(status.state is SourceState.ANSWERING for status in statuses):
                logger.info(
                    "Real-time lookup is on: %s.", ", ".join(s.source.label for s in statuses)
                )
        finally:
            self.realtime_checked.set()

    def stop_background(self) -> None:
        """Stop the background threads (or keep them from starting)."""
        with self._background_lock:
            self._stopped = True
        self.sweeper.stop()
        self.supervisors.stop()
        self.identity.stop()

    @functools.cached_property
    def wsgi(self) -> WsgiApp:
        """The WSGI application for HTTP mode: Slack's endpoint and /healthz."""
        return wsgi_app(self.app, self.services.health.report, self.signing_secret)

    def finish_work(self, timeout: float = 30.0) -> bool:
        """Let work already accepted (a disconnect in flight) finish; False on timeout."""
        return self.services.work.drain(timeout)


def create_bot(
    settings: Settings,
    calls: CallDirectory,
    store: RequestStore,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    lease: timedelta | None = None,
    catch_up_after: timedelta | None = None,
) -> Bot:
    """The Bolt app with its handlers, plus its background workers (not yet started)."""
    base_url = settings.slack_api_url or WebClient.BASE_URL
    # The bot's own calls (cards after the fact, audit channel, user groups, auth.test).
    client = WebClient(
        token=settings.slack_bot_token,
        base_url=base_url,
        timeout=SLACK_TIMEOUT,
        retry_handlers=slack_retries(),
    )
    identity = BotIdentity(client)
    if not settings.supervisors and not settings.supervisor_groups:
        logger.warning(
            "DROP_CALLER_SUPERVISORS is empty: nobody can drop callers "
            "until it lists Slack user IDs or user-group IDs"
        )
    # Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that the
    # client's token wins; it is the same token, so that warning only confuses operators.
    bolt_logger = logging.getLogger("slack_bolt.App")
    if _drop_token_skipped_warning not in bolt_logger.filters:
        bolt_logger.addFilter(_drop_token_skipped_warning)
    executor = ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="bolt-listener")
    app = App(
        # Without a name, Bolt takes its caller's file name from inspect.stack(), which reads
        # the source path of every loaded module: 80-170 ms of the worker's start.
        name="drop-caller",
        # No token here: with one, Bolt would call auth.test before the first ack. The
        # token comes from `authorize` instead, per request, with no call to Slack.
        client=WebClient(base_url=base_url, timeout=SLACK_TIMEOUT, retry_handlers=slack_retries()),
        authorize=authorize_with(identity),
        signing_secret=settings.slack_signing_secret or "",
        # Socket Mode requests are not signed; HTTP requests always are.
        request_verification_enabled=settings.mode == "http",
        # Listeners only check, acknowledge and queue (bot.work), so running them in the
        # request's own thread answers at once, without Bolt's 10 ms polling for the ack.
        process_before_response=True,
        listener_executor=executor,
    )
    supervisors = SupervisorDirectory(
        settings.supervisors, settings.supervisor_groups, client=client
    )
    publisher = CardPublisher(client, audit_channel=settings.audit_channel, store=store, now=now)
    work = WorkQueue()
    authoriser = Authoriser(supervisors, channels=settings.channels)
    policy = Policy(
        default_region=settings.default_region,
        protected_numbers=settings.protected_numbers,
        two_person=settings.two_person,
        dry_run=settings.dry_run,
        allow_teardown=settings.allow_teardown,
        require_reason=settings.require_reason,
        write_back=settings.write_back,
    )
    blocklist = BlockList(
        table_id=settings.blocklist_table,
        key_format=settings.blocklist_key_format,
        days=settings.block_days,
        tables=calls.data_tables if settings.blocklist_table else None,
        store=store,
        policy=policy,
        now=now,
    )
    health = Health(store=store, calls=calls, work=work, blocklist=blocklist, now=now)
    home_tab = HomeTab(
        client,
        authoriser=authoriser,
        health=health,
        policy=policy,
        blocklist=blocklist,
        store=store,
        identity=identity,
        request_ttl=settings.request_ttl,
        now=now,
    )
    drops = DropWorkflow(
        store=store,
        calls=calls,
        publisher=publisher,
        authoriser=authoriser,
        policy=policy,
        blocklist=blocklist,
        lease=lease_for(settings.genesys_config()) if lease is None else lease,
        now=now,
        on_end=home_tab.request_ended,
    )
    services = Services(
        calls=calls,
        store=store,
        authoriser=authoriser,
        policy=policy,
        publisher=publisher,
        work=work,
        health=health,
        drops=drops,
        blocklist=blocklist,
        request_ttl=settings.request_ttl,
        now=now,
    )
    commands.register(app, services)
    actions.register(app, services)
    home.register(app, home_tab, work)
    app.error(_report_unexpected_error)
    sweeper = Sweeper(
        drops,
        interval=settings.sweep_interval,
        catch_up_after=(
            timedelta(seconds=settings.catch_up_after) if catch_up_after is None else catch_up_after
        ),
    )
    return Bot(
        app=app,
        services=services,
        supervisors=supervisors,
        sweeper=sweeper,
        identity=identity,
        executor=executor,
        signing_secret=settings.slack_signing_secret or "",
    )


def build_bot(settings: Settings, *, prepare_schema: bool = True) -> Bot:
    """The bot from its settings, with its store and Genesys client, its background work
    started. With `prepare_schema` the store checks (or makes) the schema now, waiting for
    the database; without, on its first use."""
    from genesys.client import GenesysCalls

    store = RequestStore.from_url(settings.database_url, prepare=prepare_schema)
    bot = create_bot(settings, GenesysCalls(settings.genesys_config()), store)
    bot.start_background()
    return bot


def create_app(
    settings: Settings,
    calls: CallDirectory,
    store: RequestStore,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> App:
    """Just the Bolt app, without background work (for tests and embedding)."""
    return create_bot(settings, calls, store, now=now).app


def _report_unexpected_error(error: Exception, respond: Respond | None) -> BoltResponse:
    """Log a bug with its traceback and tell the person it affected, instead of silence.

    Signed payloads Bolt cannot match (a malformed `actions`, say) end here too. The answer
    is an empty 200: the person has been told, and a 500 would only add Slack's own error.
    """
    logger.error("Unexpected error in a handler", exc_info=error)
    if respond is not None:
        with contextlib.suppress(Exception):
            respond(
                text=":x: The bot hit an internal error, which has been logged. "
                "Check the call in Genesys Cloud before trying again.",
                response_type="ephemeral",
                replace_original=False,
            )
    return BoltResponse(status=200, body="")


def _drop_token_skipped_warning(record: logging.LogRecord) -> bool:
    return "`token` will be unused" not in record.getMessage()
