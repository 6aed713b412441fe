"""The letter desk: the staff side of the letter channel, assembled for the composition root.

Staff (clerks and supervisors, :mod:`channels.letter.auth`) log in under ``/staff/``, upload
scans (PDF, JPEG, PNG, TIFF; one letter or a batch), watch them being read in the background
(:mod:`channels.letter.reading`: the OCR pool, page images, fields), review the fields beside
the page images and confirm; only the confirmation goes through the intake port, with the pure
parser ``letter.review`` (:mod:`channels.letter.parse`). The citizen gets a printed receipt with
the tracking ID and a QR code of the status page (:mod:`channels.letter.receipt`).

Pure: :mod:`~channels.letter.parse`, :mod:`~channels.letter.pages`,
:mod:`~channels.letter.receipt`. State in the database: :mod:`~channels.letter.drafts`,
:mod:`~channels.letter.auth`. Transport: :mod:`~channels.letter.staff`,
:mod:`~channels.letter.routes`, :mod:`~channels.letter.upload`.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.letter.ack import SmsAck, sms_ack
from channels.letter.auth import StaffStore
from channels.letter.drafts import DraftStore
from channels.letter.metrics import LetterMetrics
from channels.letter.pages import PREFIX
from channels.letter.parse import PARSER_NAME, parse_review
from channels.letter.reading import DocumentReader, LetterReader
from channels.letter.routes import LetterDesk
from channels.letter.staff import Accounts, AddressThrottle, StaffGate
from gateway.crypto import Keys
from gateway.filestore import FileStore
from gateway.http import SCRAPE_HOOKS
from gateway.intake import Clock, IntakeService, Parser, utcnow
from gateway.settings import LetterSettings

REVIEW_PARSER = Parser(PARSER_NAME, parse_review)
PARSERS = (REVIEW_PARSER,)

__all__ = [
    "PARSERS", "REVIEW_PARSER", "AddressThrottle", "LetterMetrics", "LetterReader", "SmsAck",
    "setup", "sms_ack",
]


def setup(
    app: web.Application,
    intake: IntakeService,
    files: FileStore,
    engine: AsyncEngine,
    keys: Keys,
    settings: LetterSettings,
    ocr: DocumentReader,
    short_code: str = "1708",
    clock: Clock = utcnow,
    sms_ack: SmsAck | None = None,
    metrics: LetterMetrics | None = None,
    throttle: AddressThrottle | None = None,
) -> LetterReader:
    """Mount the staff pages on ``app``; the reader runs while the application runs. With
    ``metrics``, the backlog is read at every scrape of ``/metrics``; with ``throttle``, failed
    logins are limited per client address too."""
    store = StaffStore(engine, settings, clock)
    gate = StaffGate(store, settings, clock, throttle)
    drafts = DraftStore(engine, keys, clock)  # what letters say is sealed at rest
    reader = LetterReader(drafts, files, ocr, settings, metrics=metrics)
    if metrics is not None:

        async def backlog() -> None:
            counts, waiting_since = await drafts.backlog()
            metrics.backlog(counts, waiting_since, clock())

        app[SCRAPE_HOOKS].append(backlog)
    app.router.add_get(f"{PREFIX}/login", gate.login_form)
    app.router.add_post(f"{PREFIX}/login", gate.login)
    app.router.add_post(f"{PREFIX}/logout", gate.page(gate.logout))
    LetterDesk(
        gate, drafts, files, intake, REVIEW_PARSER, settings, short_code, reader.wake, clock,
        sms_ack,
    ).register(app)
    Accounts(gate, clock).register(app)

    async def start(_app: web.Application) -> None:
        reader.start()

    async def stop(_app: web.Application) -> None:
        await reader.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return reader
