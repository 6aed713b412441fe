"""HTTP routes of the letter desk (transport: the database only through the stores and the
intake port).

=========================================  ====================================================
``GET /staff/``                            upload form, letters not sent, newest sent (a
                                           supervisor: every clerk's)
``POST /staff/letters``                    upload one letter or a batch; 303 to its progress
``GET /staff/uploads/{batch}``             progress per letter and page (refreshes itself)
``GET /staff/uploads/{batch}/progress.json``  the same as JSON (for ``staff.js``)
``GET|POST /staff/letters/{id}``           review: scans beside the fields; save or confirm
``POST /staff/letters/{id}/read-again``    read a letter that failed again
``GET /staff/letters/{id}/pages/{n}``      a page image (PNG), staff only
``GET /staff/letters/{id}/files/{i}``      an uploaded file as received, staff only
``GET /staff/letters/{id}/receipt``        the citizen's printable receipt
=========================================  ====================================================

A clerk sees and works on the letters they uploaded; a supervisor on every letter. Only a
confirmation calls the intake port: the raw message is the reviewed letter as JSON with the
draft id as provider message id, so a second confirmation (a double click, two tabs, a retry
after a timeout) gets the first receipt back and creates nothing.

Two people on one letter (a supervisor helping a clerk, two tabs): the review form sends the
version of the values it was drawn from (``based_on``). A save or confirmation over values
someone else saved meanwhile is not written: the page comes back (409) with what this clerk
typed, the other values beside the fields that differ. A confirmation of a letter confirmed
meanwhile with other values sends nothing and says so above the receipt, which shows what was
sent. A valid confirmation holds the letter from its save until the intake has committed it
(:meth:`DraftStore.save` with ``hold``): a save landing in between would be overwritten by the
values sent, so it is refused (409) instead, and the review page says who holds the letter
and until when. A save that lands all the same (the hold ran out while the intake was slow, or
was named failed while its confirmation went through after all) is not written over unawares:
:meth:`DraftStore.confirmed` keeps it beside the values sent, and the receipt page shows both
to the staff. When the database is away, a save or confirmation is answered (503) with the
form holding what was typed and what to do, never a bare page that loses it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from aiohttp import web

from channels.fields import CHECKED, Message
from channels.letter import pages, static
from channels.letter.ack import SmsAck
from channels.letter.drafts import (
    SET_ASIDE_REASONS,
    Draft,
    DraftStatus,
    DraftStore,
    failed_hold_of,
    held_by_own,
    new_hold,
    values_version,
)
from channels.letter.extract import LOW_CONFIDENCE
from channels.letter.pages import PREFIX, Context, Lang, t, when
from channels.letter.parse import (
    CONTENT_TYPE,
    FIELDS,
    ReviewedLetter,
    Scan,
    clean_values,
    decode_review,
    encode_review,
    source_metadata,
    validate,
)
from channels.letter.receipt import ReceiptData, receipt_page
from channels.letter.staff import COOKIE, HEADERS, UNAVAILABLE, BadForm, StaffGate, read_form
from channels.letter.upload import (
    DamagedScan,
    LetterUpload,
    RefusedFile,
    UploadRejected,
    check_scan,
    read_upload,
)
from gateway import tracking
from gateway.domain import Channel, RawInbound, Receipt, ReceiptStatus
from gateway.errors import IntakeUnavailable
from gateway.filestore import FileStore
from gateway.http import send_stored
from gateway.intake import Clock, IntakeService, Parser, utcnow
from gateway.settings import LetterSettings
from normalizer import InvalidNik, parse_nik

log = logging.getLogger(__name__)

PROVIDER_PREFIX = "letter-draft:"

UPLOAD_TEXTS: Mapping[str, Message] = {
    "none": ("Pilih paling sedikit satu berkas.", "Choose at least one file."),
    "multipart": ("Kirim formulir unggah (multipart/form-data).",
                  "Send the upload form (multipart/form-data)."),
    "uploaded": ("{n} surat lainnya sudah diunggah dan sedang dibaca.",
                 "The other {n} letters were uploaded and are being read."),
    "uploaded_one": ("Surat lainnya sudah diunggah dan sedang dibaca.",
                     "The other letter was uploaded and is being read."),
    "not_one": ("Surat ini belum diunggah: unggah lagi semua halamannya bersama berkas yang "
                "sudah diperbaiki.",
                "The letter was not uploaded: upload all its pages again with the file put "
                "right."),
}


def _refused_status(refused: Sequence[RefusedFile]) -> int:
    """The answer's status for refused files: theirs when they share it (415 for files of the
    wrong kind), else 422."""
    statuses = {r.status for r in refused}
    return statuses.pop() if len(statuses) == 1 else 422


def _messages(messages: list[Message], lang: pages.Lang) -> str:
    """Several messages as one alert, in ``lang``."""
    return " ".join(pages.msg(m, lang) for m in messages)


def _upload_key(
    fields: Mapping[str, str], staff_id: str, letters: Sequence[Sequence[Scan]]
) -> str | None:
    """What makes an upload the same one again: the form it came from (its ``upload_id``,
    new at each rendering), who sent it, and the letters with their files. The same form sent
    twice gives the same key; the form brought back with Back and sent with other files does
    not. None for a form without ``upload_id``."""
    form = fields.get(pages.UPLOAD_ID, "")
    if not form or len(form) > 64:
        return None
    shapes = ";".join(",".join(scan.sha256 for scan in letter) for letter in letters)
    return hashlib.sha256(f"{form}|{staff_id}|{shapes}".encode()).hexdigest()


def _index(text: str) -> int | None:
    """A page or file number from the path; None when it cannot be one (thousands of digits
    are more than ``int()`` converts: that would be a 500)."""
    return int(text) if len(text) <= 6 else None


def nik_region(text: str, lang: pages.Lang, today: date | None = None) -> str | None:
    """Where a NIK was issued (district, regency, province), or why it is not valid."""
    if not text.strip():
        return None
    result = parse_nik(text, today=today)
    if isinstance(result, InvalidNik):
        return result.message_id if lang == "id" else result.message_en
    if not result.region_listed:
        return pages.msg(
            (
                f"Kode wilayah {result.district.dotted} tidak ada di daftar kode wilayah: NIK "
                "lama, atau periksa angkanya.",
                f"The region code {result.district.dotted} is not in the region list: an old "
                "NIK, or check its digits.",
            ),
            lang,
        )
    return (
        f"{result.district.name}, {result.regency.name}, {result.province.name} "
        f"({result.district.dotted})"
    )


class LetterDesk:
    """The front desk's letter pages."""

    def __init__(
        self,
        gate: StaffGate,
        drafts: DraftStore,
        files: FileStore,
        intake: IntakeService,
        parser: Parser,
        settings: LetterSettings,
        short_code: str = "1708",
        wake_reader: Callable[[], None] | None = None,
        clock: Clock = utcnow,
        sms_ack: SmsAck | None = None,
    ) -> None:
        self._gate = gate
        self._drafts = drafts
        self._files = files
        self._intake = intake
        self._parser = parser
        self._settings = settings
        self._short_code = short_code
        self._wake = wake_reader
        self._clock = clock
        self._sms_ack = sms_ack

    def register(self, app: web.Application) -> None:
        """Add the routes to ``app``."""
        page = self._gate.page
        app.router.add_get(PREFIX, self.to_home)
        app.router.add_get(f"{PREFIX}/", page(self.home))
        app.router.add_get(f"{PREFIX}/static/staff.js", self.script)
        app.router.add_post(f"{PREFIX}/letters", page(self.upload))
        app.router.add_get(f"{PREFIX}/uploads/{{batch}}", page(self.batch))
        app.router.add_get(f"{PREFIX}/uploads/{{batch}}/progress.json", page(self.progress))
        app.router.add_get(f"{PREFIX}/letters/{{id}}", page(self.review))
        app.router.add_post(
            f"{PREFIX}/letters/{{id}}", page(self.submit, unavailable=self.submit_unavailable)
        )
        app.router.add_post(f"{PREFIX}/letters/{{id}}/read-again", page(self.read_again))
        app.router.add_post(f"{PREFIX}/letters/{{id}}/set-aside", page(self.set_aside))
        app.router.add_post(f"{PREFIX}/letters/{{id}}/put-back", page(self.put_back))
        app.router.add_get(f"{PREFIX}/letters/{{id}}/pages/{{n:\\d+}}", page(self.page_image))
        app.router.add_get(f"{PREFIX}/letters/{{id}}/files/{{i:\\d+}}", page(self.original))
        app.router.add_get(f"{PREFIX}/letters/{{id}}/receipt", page(self.receipt))

    # ---- shared ---------------------------------------------------------------------------

    async def to_home(self, request: web.Request) -> web.StreamResponse:
        """``/staff`` → ``/staff/``."""
        return self._gate.finish(request, self._gate.redirect(f"{PREFIX}/"))

    async def script(self, request: web.Request) -> web.StreamResponse:
        """The small progressive-enhancement script (print button, progress polling)."""
        resp = web.Response(
            text=static.STAFF_JS, content_type="text/javascript", charset="utf-8"
        )
        return self._gate.finish(request, resp)

    async def _draft(
        self, ctx: Context, draft_id: str
    ) -> tuple[Draft | None, web.Response | None]:
        """The draft when this staff member may see it, else the refusal to answer."""
        draft = await self._drafts.get(draft_id) if len(draft_id) <= 36 else None
        if draft is None:
            return None, self._gate.refuse(ctx, 404, t("not_found", ctx.lang))
        if not self._may_see(ctx, draft):
            log.info(
                "letter refused: another clerk's",
                extra={"staff": ctx.staff.username if ctx.staff else "", "draft": draft.id},
            )
            return None, self._gate.refuse(ctx, 403, t("not_yours", ctx.lang))
        return draft, None

    @staticmethod
    def _may_see(ctx: Context, draft: Draft) -> bool:
        staff = ctx.staff
        return staff is not None and (staff.is_supervisor or draft.created_by == staff.id)

    async def _home(
        self,
        ctx: Context,
        status: int = 200,
        alert: str | None = None,
        uploaded: tuple[str, str] | None = None,
    ) -> web.Response:
        assert ctx.staff is not None
        mine = None if ctx.staff.is_supervisor else ctx.staff.id
        # Every letter not sent yet, whatever its age, and the newest sent ones.
        desk = await self._drafts.desk(mine)
        html = pages.home_page(
            ctx, desk, alert, uploaded=uploaded,
            max_files=self._settings.max_files, max_file_size=self._settings.max_file_size,
        )
        return self._gate.html(ctx, html, status)

    # ---- upload and progress --------------------------------------------------------------

    async def home(self, _request: web.Request, ctx: Context, _s: Any) -> web.StreamResponse:
        """The upload form and the desk's list: the letters not sent yet, the newest sent."""
        return await self._home(ctx)

    async def upload(self, request: web.Request, ctx: Context, session: Any) -> web.StreamResponse:
        """Store the scans as received, one draft per letter, wake the reader."""
        assert ctx.staff is not None
        if request.content_type != "multipart/form-data":
            return await self._home(ctx, 400, pages.msg(UPLOAD_TEXTS["multipart"], ctx.lang))
        try:
            try:
                reader = await request.multipart()
            except ValueError:  # no boundary, or one longer than RFC 2046's 70 characters
                raise UploadRejected(("Format unggahan rusak.", "Malformed upload.")) from None
            upload = await read_upload(
                reader,
                self._files,
                csrf_ok=lambda token: self._gate.csrf_ok(session, token),
                max_files=self._settings.max_files,
                max_file_size=self._settings.max_file_size,
            )
        except UploadRejected as exc:
            # The message names the file (often after the citizen): the log says why, not whom.
            log.info(
                "letter upload refused",
                extra={"staff": ctx.staff.username, "status": exc.status, "code": exc.code,
                       "file": exc.index},
            )
            return await self._home(ctx, exc.status, pages.msg(exc.message, ctx.lang))
        if not upload.scans and not upload.refused:
            return await self._home(ctx, 400, pages.msg(UPLOAD_TEXTS["none"], ctx.lang))
        scans, refusals = await self._checked(ctx, upload)
        refused = [r.message for r in refusals]
        one_letter = upload.fields.get("one_letter", "") in ("1", "on")
        if refused and (one_letter or not scans):
            if one_letter and scans:  # a letter without one of its pages is not a letter
                refused.append(UPLOAD_TEXTS["not_one"])
            return await self._home(ctx, _refused_status(refusals), _messages(refused, ctx.lang))
        letters = [scans] if one_letter else [[scan] for scan in scans]
        batch, made = await self._drafts.create_batch(
            letters, ctx.staff.id, _upload_key(upload.fields, ctx.staff.id, letters)
        )
        log.info(
            "letters uploaded" if made else "letters uploaded already (the form sent again)",
            extra={"staff": ctx.staff.username, "batch": batch, "letters": len(letters),
                   "files": len(scans), "refused": len(refused)},
        )
        if made and self._wake is not None:
            self._wake()
        if refused:  # the others went in: say so, with their progress a click away
            uploaded = UPLOAD_TEXTS["uploaded_one" if len(letters) == 1 else "uploaded"]
            return await self._home(
                ctx,
                _refused_status(refusals),
                _messages(refused, ctx.lang),
                uploaded=(
                    pages.msg(uploaded, ctx.lang).format(n=len(letters)),
                    f"{PREFIX}/uploads/{batch}",
                ),
            )
        return self._gate.redirect(f"{PREFIX}/uploads/{batch}")

    async def _checked(
        self, ctx: Context, upload: LetterUpload
    ) -> tuple[list[Scan], list[RefusedFile]]:
        """The scans that can be read and served, and every file of the upload that cannot
        (refused as it came, or damaged), in the upload's order, each logged without its name
        (a broken file is named to the clerk now, not after a failed reading or a cut
        download)."""
        good: list[Scan] = []
        refused = list(upload.refused)
        for refusal in refused:
            log.info(
                "letter file refused",
                extra={"staff": ctx.staff.username if ctx.staff else "", **refusal.log_extra},
            )
        for index, scan in zip(upload.indexes, upload.scans, strict=True):
            try:
                await asyncio.to_thread(check_scan, self._files, scan)
            except DamagedScan as exc:
                refused.append(RefusedFile(
                    index, exc.message, exc.status, exc.code, scan.size, scan.media_type
                ))
                log.info(
                    "letter file refused",
                    extra={"staff": ctx.staff.username if ctx.staff else "",
                           **refused[-1].log_extra, "sha256": scan.sha256[:12],
                           "reason": exc.reason},
                )
            else:
                good.append(scan)
        refused.sort(key=lambda r: r.index)
        return good, refused

    async def _batch(self, ctx: Context, batch_id: str) -> tuple[list[Draft], web.Response | None]:
        drafts = await self._drafts.batch(batch_id) if len(batch_id) <= 36 else []
        if not drafts:
            return [], self._gate.refuse(ctx, 404, t("not_found", ctx.lang))
        if not all(self._may_see(ctx, d) for d in drafts):
            return [], self._gate.refuse(ctx, 403, t("not_yours", ctx.lang))
        return drafts, None

    async def batch(self, request: web.Request, ctx: Context, _s: Any) -> web.StreamResponse:
        """The progress page of one upload."""
        drafts, refusal = await self._batch(ctx, request.match_info["batch"])
        if refusal is not None:
            return refusal
        return self._gate.html(ctx, pages.batch_page(ctx, drafts))

    async def progress(self, request: web.Request, ctx: Context, _s: Any) -> web.StreamResponse:
        """Progress of one upload as JSON."""
        drafts, refusal = await self._batch(ctx, request.match_info["batch"])
        if refusal is not None:
            return refusal
        return web.json_response(
            {
                "letters": [
                    {
                        "id": d.id,
                        "status": d.status.value,
                        "status_text": pages.status_text(d, ctx.lang),
                        "pages_done": d.pages_done,
                        "pages_total": d.pages_total,
                        "review_url": f"{PREFIX}/letters/{d.id}",
                        "review_text": t("review", ctx.lang),
                    }
                    for d in drafts
                ],
                "done": all(d.status is not DraftStatus.READING for d in drafts),
            }
        )

    async def _posted(
        self, request: web.Request, ctx: Context, session: Any
    ) -> tuple[Any, Draft] | web.StreamResponse:
        """A form posted about one letter: the form and the letter, once its CSRF token is
        checked and the letter is this staff member's to see; else the refusal to answer."""
        form = await read_form(request)
        if not self._gate.csrf_ok(session, str(form.get("csrf", ""))):
            return self._gate.refuse(ctx, 403, t("expired", ctx.lang))
        draft, refusal = await self._draft(ctx, request.match_info["id"])
        if draft is None:
            assert refusal is not None
            return refusal
        return form, draft

    async def read_again(
        self, request: web.Request, ctx: Context, session: Any
    ) -> web.StreamResponse:
        """Put a letter that could not be read back in the queue."""
        posted = await self._posted(request, ctx, session)
        if isinstance(posted, web.StreamResponse):
            return posted
        _form, draft = posted
        assert ctx.staff is not None
        await self._drafts.read_again(draft.id, ctx.staff.id)
        if self._wake is not None:
            self._wake()
        return self._gate.redirect(f"{PREFIX}/uploads/{draft.batch_id}")

    async def set_aside(
        self, request: web.Request, ctx: Context, session: Any
    ) -> web.StreamResponse:
        """Take a letter that is no report to send off the list (the reason from a list)."""
        posted = await self._posted(request, ctx, session)
        if isinstance(posted, web.StreamResponse):
            return posted
        form, draft = posted
        assert ctx.staff is not None
        reason = str(form.get("reason", ""))
        if reason not in SET_ASIDE_REASONS:
            return self._gate.refuse(ctx, 400, t("set_aside_not", ctx.lang))
        # Sent already, its receipt not recorded on the letter (the request that sent it
        # failed after the intake's commit): it is recorded now, and never set aside.
        sent = await self._intake.earlier_receipt(Channel.LETTER, f"{PROVIDER_PREFIX}{draft.id}")
        if sent is not None:
            await self._confirmed_by_earlier(draft.id, sent.raw_id, sent)
            return await self._home(ctx, 409, t("set_aside_not", ctx.lang))
        if not await self._drafts.set_aside(draft.id, ctx.staff.id, reason):
            return await self._home(ctx, 409, t("set_aside_not", ctx.lang))
        log.info(
            "letter set aside",
            extra={"staff": ctx.staff.username, "draft": draft.id, "reason": reason},
        )
        return self._gate.redirect(f"{PREFIX}/")

    async def put_back(
        self, request: web.Request, ctx: Context, session: Any
    ) -> web.StreamResponse:
        """Return a letter set aside to the list, as it was."""
        posted = await self._posted(request, ctx, session)
        if isinstance(posted, web.StreamResponse):
            return posted
        _form, draft = posted
        assert ctx.staff is not None
        if await self._drafts.put_back(draft.id, ctx.staff.id):
            log.info("letter put back", extra={"staff": ctx.staff.username, "draft": draft.id})
        return self._gate.redirect(f"{PREFIX}/")

    # ---- review ---------------------------------------------------------------------------

    def _review_html(
        self,
        ctx: Context,
        draft: Draft,
        values: Mapping[str, str],
        errors: Mapping[str, Message] | None = None,
        alert: str | None = None,
        saved: bool = False,
        based_on: Mapping[str, str] | None = None,
        theirs: Mapping[str, str] | None = None,
        failed_hold: str | None = None,
        *,
        version: str | None = None,
        theirs_label: str = "theirs",
        held: bool = False,
    ) -> str:
        """The review page showing ``values``; the form says it was drawn from ``based_on``
        (the values as saved, by default the draft's; or ``version``, as the form sent it) and,
        after a confirmation the intake could not take, names its hold (``failed_hold``: sent
        again, it need not wait). ``held``: say that a confirmation holds the letter right now,
        when one does (who, until when)."""
        low = frozenset(
            name for name, info in draft.fields.items() if info.confidence < LOW_CONFIDENCE
        )
        region = nik_region(values.get("nik", ""), ctx.lang, self._clock().date())
        if version is None:
            version = values_version(draft.values if based_on is None else based_on)
        notice = None
        if held and draft.held(self._clock(), failed_hold):
            if self._own_hold(ctx, draft):
                notice = t("held_own", ctx.lang, t=pages.until(draft.held_until))
            else:
                notice = t(
                    "held", ctx.lang, u=draft.held_by or "", t=pages.until(draft.held_until)
                )
        return pages.review_page(
            ctx, draft, values, low, region, errors, alert, saved, version, theirs, failed_hold,
            theirs_label=theirs_label, held=notice,
        )

    @staticmethod
    def _own_hold(ctx: Context, draft: Draft) -> bool:
        """Whether the confirmation holding ``draft`` is this staff member's own (an earlier
        click, another tab): the pages then speak to them, not of them."""
        if ctx.staff is None:
            return False
        name = ctx.staff.username
        # An earlier release's hold is "confirm:<username>".
        return held_by_own(draft.hold, name) or draft.hold == f"confirm:{name}"[:64]

    def _conflict(
        self, ctx: Context, draft: Draft, values: Mapping[str, str], confirming: bool = False
    ) -> web.Response:
        """Someone saved other values after this clerk's form was drawn (or, ``confirming``,
        is confirming the letter right now): nothing is written; the clerk's values come back
        with the saved ones beside the fields that differ, and the form now builds on what was
        saved (sent again, it is meant)."""
        theirs = {
            name: draft.values.get(name, "")
            for name in FIELDS
            if draft.values.get(name, "") != values.get(name, "")
        }
        end = pages.until(draft.held_until)
        if confirming and self._own_hold(ctx, draft):
            alert, label = t("confirming_own", ctx.lang, t=end), "theirs_confirming"
        elif confirming:
            alert = t("confirming", ctx.lang, u=draft.held_by or "", t=end)
            label = "theirs_confirming"
        else:
            who = draft.updated_by_name or draft.created_by_name
            if ctx.staff is not None and who == ctx.staff.username:  # their own other tab
                alert, label = t("conflict_own", ctx.lang, t=when(draft.updated_at)), "theirs_own"
            else:
                alert, label = t("conflict", ctx.lang, u=who, t=when(draft.updated_at)), "theirs"
        html = self._review_html(
            ctx, draft, values, alert=alert, theirs=theirs, theirs_label=label
        )
        return self._gate.html(ctx, html, 409)

    async def review(self, request: web.Request, ctx: Context, _s: Any) -> web.StreamResponse:
        """The scans beside the fields (or the progress while the letter is read)."""
        draft, refusal = await self._draft(ctx, request.match_info["id"])
        if draft is None:
            assert refusal is not None
            return refusal
        if draft.status is DraftStatus.CONFIRMED:
            return self._gate.redirect(f"{PREFIX}/letters/{draft.id}/receipt")
        if draft.status is not DraftStatus.READY:
            return self._gate.html(ctx, pages.waiting_page(ctx, draft))
        saved = request.query.get("saved") == "1"
        html = self._review_html(ctx, draft, draft.values, saved=saved, held=True)
        return self._gate.html(ctx, html)

    async def submit(self, request: web.Request, ctx: Context, session: Any) -> web.StreamResponse:
        """Save the clerk's values; on confirm, hand the letter to the intake port."""
        assert ctx.staff is not None
        form = await read_form(request)
        if not self._gate.csrf_ok(session, str(form.get("csrf", ""))):
            return self._gate.refuse(ctx, 403, t("expired", ctx.lang))
        draft, refusal = await self._draft(ctx, request.match_info["id"])
        if draft is None:
            assert refusal is not None
            return refusal
        receipt_url = f"{PREFIX}/letters/{draft.id}/receipt"
        values = clean_values({name: str(form.get(name, "")) for name in FIELDS})
        # The version of the values the form was drawn from (absent: a form of an older page,
        # or a client of its own: its values are saved over whatever is there).
        based_on = str(form.get(pages.BASED_ON, "")) or None
        # The hold of this clerk's confirmation that the intake could not take (its answer's
        # form names it): nothing of it was committed, so it holds the letter no longer.
        # Only a hold of this clerk's own (a form is the client's to write).
        assert ctx.staff is not None
        failed = failed_hold_of(str(form.get(pages.FAILED_HOLD, "")) or None, ctx.staff.username)
        confirm = form.get("action") == "confirm"
        # A "NIK sesuai KTP" tick saved for another NIK is no check of this one (the NIK was
        # changed after the tick was saved, and the box came back ticked): cleared, and the
        # clerk asked to check this NIK against the KTP and tick again.
        recheck = _tick_carried(draft.values, values)
        if recheck:
            values["nik_checked"] = ""
        letter, errors = (
            validate(values, draft.created_at.date()) if confirm else (None, {})
        )
        if recheck:
            letter, errors = None, {**errors, "nik": RECHECK_NIK}
        # A valid confirmation holds the letter from its save until the intake has committed
        # it: a save by someone else in between would be overwritten by the values sent.
        hold = new_hold(ctx.staff.username) if letter is not None else None
        mine = False  # whether this request holds the letter
        try:
            for _ in range(3):  # a save that lost a race reads the draft again
                if draft.status is DraftStatus.CONFIRMED:
                    # A second confirmation (a double click, another tab) gets the same
                    # receipt; one with other values is told that they were not sent.
                    same = dict(draft.values) == values
                    return self._gate.redirect(
                        receipt_url if same else f"{receipt_url}?not_sent=1"
                    )
                if draft.status is not DraftStatus.READY:
                    return self._gate.redirect(f"{PREFIX}/letters/{draft.id}")
                if draft.held(self._clock(), failed):
                    if hold is not None and dict(draft.values) == values:
                        break  # the same values being confirmed (a double click): same receipt
                    return self._conflict(ctx, draft, values, confirming=True)
                if (
                    based_on is not None
                    and based_on != values_version(draft.values)
                    and dict(draft.values) != values
                ):
                    return self._conflict(ctx, draft, values)
                if await self._drafts.save(
                    draft.id, ctx.staff.id, values, over=draft.version, hold=hold,
                    failed=failed,
                ):
                    mine = hold is not None
                    break
                again = await self._drafts.get(draft.id)
                if again is None:
                    return self._gate.refuse(ctx, 404, t("not_found", ctx.lang))
                draft = again
            else:
                return self._conflict(ctx, draft, values)
        except UNAVAILABLE as exc:
            # The database went away while saving: nothing was sent. The form comes back with
            # what was typed, built on what it was built on, so sent again it is the same Save
            # or Confirm. (This request's own hold, if its save did land, is not named failed:
            # a double click's other request may be confirming under it.)
            log.warning(
                "letter not saved: %s", type(exc).__name__,
                extra={"staff": ctx.staff.username, "draft": draft.id},
            )
            return self._unavailable(
                ctx, draft, values, t("unsaved", ctx.lang), version=based_on or "",
                failed_hold=failed,
            )
        if not confirm and not recheck:
            return self._gate.redirect(f"{PREFIX}/letters/{draft.id}?saved=1")
        if letter is None:
            html = self._review_html(ctx, draft, values, errors, based_on=values)
            return self._gate.html(ctx, html, 422 if confirm else 200)
        raw = self._raw(ctx, draft, values, letter)
        try:
            receipt = await self._intake.accept(raw, self._parser)
        except IntakeUnavailable:
            # Nothing committed: others may save again. (On any other failure the hold stays
            # until it runs out: the same values confirmed again get the same receipt.)
            if mine:
                assert hold is not None
                try:
                    await self._drafts.release(draft.id, hold)
                except UNAVAILABLE:  # the database is away too: the form names the hold
                    pass  # failed, so this clerk's next Save or Confirm need not wait for it
            return self._unavailable(
                ctx, draft, values, t("unavailable", ctx.lang),
                failed_hold=hold if mine else None,
            )
        assert receipt.tracking_id is not None
        if receipt.raw_sha256 is not None and receipt.raw_sha256 != raw.sha256:
            # Another confirmation of this letter was committed first: another clerk's, or
            # with other values.
            log.info(
                "letter confirmed already by another request: these values were not sent",
                extra={"staff": ctx.staff.username, "draft": draft.id},
            )
            try:
                sent = await self._confirmed_by_earlier(draft.id, receipt.raw_id, receipt)
            except UNAVAILABLE:  # the database is away: the next confirmation tries again
                log.warning("letter confirmation not recorded", extra={"draft": draft.id})
                # Not the receipt (it is not recorded: it would lead back to this letter
                # with nothing said): the form, saying the letter went and what to do. The
                # hold is not named failed: the letter is sent, nothing may be saved over it.
                return self._unavailable(ctx, draft, values, t("recorded_busy", ctx.lang))
            # The very same values (another clerk confirming them at the same moment) are what
            # was registered: the same receipt, as for a confirmation arriving after it.
            same = sent is not None and dict(sent) == values
            return self._gate.redirect(receipt_url if same else f"{receipt_url}?not_sent=1")
        try:
            acks = await self._acknowledge(
                receipt.raw_id, receipt.tracking_id, letter.phone, receipt.status
            )
            late = await self._drafts.confirmed(
                draft.id, ctx.staff.id, receipt.tracking_id, receipt.status.value, acks, values
            )
        except UNAVAILABLE as exc:
            # Committed, not recorded on the draft: this clerk's next confirmation (the same
            # values, let through by this request's hold) gets the same receipt and records it.
            log.warning(
                "letter confirmed, not recorded: %s", type(exc).__name__,
                extra={"staff": ctx.staff.username, "draft": draft.id,
                       "tracking_id": receipt.tracking_id},
            )
            return self._unavailable(ctx, draft, values, t("sent_busy", ctx.lang))
        log.info(
            "letter confirmed",
            extra={"staff": ctx.staff.username, "draft": draft.id,
                   "tracking_id": receipt.tracking_id, "status": receipt.status.value},
        )
        if late is not None:
            # Its hold ran out (or was named failed) while the intake committed it, and a save
            # landed meanwhile: kept beside the values sent; the receipt page shows both.
            log.warning(
                "letter confirmed: values saved after the confirmation began were not sent",
                extra={"staff": ctx.staff.username, "draft": draft.id,
                       "tracking_id": receipt.tracking_id},
            )
        return self._gate.redirect(receipt_url)

    def _unavailable(
        self,
        ctx: Context,
        draft: Draft,
        values: Mapping[str, str],
        alert: str,
        *,
        version: str | None = None,
        failed_hold: str | None = None,
    ) -> web.Response:
        """503 with the review form holding what was typed (``alert`` says what happened and
        what to do), drawn from the typed values, or from ``version`` when given."""
        html = self._review_html(
            ctx, draft, values, alert=alert, based_on=values, failed_hold=failed_hold,
            version=version,
        )
        resp = self._gate.html(ctx, html, 503)
        resp.headers["Retry-After"] = "5"
        return resp

    async def submit_unavailable(
        self, request: web.Request, ctx: Context
    ) -> web.Response | None:
        """The review form sent while the database is away before the letter could be read
        (the session, the draft): the form back with what was typed and its hidden fields as
        sent, rather than a bare 503 that loses it (without JavaScript nothing else keeps it).
        None (the bare 503) when there is no form to give back."""
        draft_id = request.match_info["id"]
        if len(draft_id) > 36 or (ctx.staff is None and COOKIE not in request.cookies):
            return None  # no letter's address, or not a logged-in browser's form
        try:
            form = await read_form(request)
        except (BadForm, web.HTTPException, web.RequestPayloadError):
            return None  # over client_max_size, or a body that cannot be read: the bare 503
        values = clean_values({name: str(form.get(name, "")) for name in FIELDS})
        if ctx.staff is None:
            # The session could not be read: its token cannot be checked now, the form's is
            # given back as sent (it is checked when the form comes back).
            sent = str(form.get("csrf", ""))
            ctx = replace(ctx, csrf=sent if sent.isascii() and len(sent) <= 128 else "")
        region = nik_region(values.get("nik", ""), ctx.lang, self._clock().date())
        html = pages.unsaved_page(
            ctx,
            draft_id,
            values,
            region,
            str(form.get(pages.BASED_ON, ""))[:64],
            str(form.get(pages.FAILED_HOLD, ""))[:64] or None,
        )
        return self._gate.html(ctx, html, 503)

    async def _confirmed_by_earlier(
        self, draft_id: str, raw_id: str, receipt: Receipt
    ) -> Mapping[str, str] | None:
        """Record the confirmation that was committed first, when its request could not (it
        failed or crashed between the intake's commit and :meth:`DraftStore.confirmed`):
        without it the letter would stay unconfirmed for good and no receipt be printed.
        The values recorded are the ones that were sent, read back from the raw message, and
        the acknowledgement by SMS is asked for as that request did (one per message: queued
        already, it is not queued again), so the receipt says what a normal one says.
        Returns the values the draft records as sent (None when the draft is gone)."""
        again = await self._drafts.get(draft_id)
        if again is None or again.status is DraftStatus.CONFIRMED:
            # The usual case: the first request recorded it itself.
            return None if again is None else dict(again.values)
        assert receipt.tracking_id is not None
        by, sent = decode_review(await self._intake.raw_body(raw_id))
        staff_id = await self._drafts.staff_id(by) if by else None
        if staff_id is None:  # no such account (never expected): the draft's uploader
            staff_id = again.created_by
        letter, _ = validate(sent, again.created_at.date())  # as when it was sent
        acks = await self._acknowledge(
            raw_id, receipt.tracking_id, None if letter is None else letter.phone, receipt.status
        )
        await self._drafts.confirmed(
            draft_id, staff_id, receipt.tracking_id, receipt.status.value, acks, sent
        )
        log.warning(
            "letter confirmation recorded from the message committed first",
            extra={"draft": draft_id, "tracking_id": receipt.tracking_id, "confirmed_by": by},
        )
        return sent

    async def _acknowledge(
        self, raw_id: str, tracking_id: str, phone: str | None, status: ReceiptStatus
    ) -> list[str]:
        """Send the tracking ID to the letter's phone (E.164) as well, when SMS can send (best
        effort: the printed receipt is the answer; a failure here is logged, not shown)."""
        if self._sms_ack is None:
            return []
        try:
            masked = await self._sms_ack.acknowledge(
                raw_id, tracking_id, phone, followup=status is ReceiptStatus.FOLLOWUP
            )
        except Exception as exc:  # the SMS outbox is away: the letter itself is committed
            log.warning(
                "letter acknowledgement by SMS not queued: %s", type(exc).__name__,
                extra={"tracking_id": tracking_id},
            )
            return []
        return [f"SMS {masked}"] if masked else []

    def _raw(
        self, ctx: Context, draft: Draft, values: Mapping[str, str], letter: ReviewedLetter
    ) -> RawInbound:
        """The raw inbound message of a confirmed letter (who entered it in the metadata)."""
        assert ctx.staff is not None
        metadata = {
            "entered_by": ctx.staff.username,
            "letter_draft_id": draft.id,
            "pages": str(len(draft.pages)),
            **source_metadata(letter),
        }
        if draft.created_by_name != ctx.staff.username:
            metadata["uploaded_by"] = draft.created_by_name
        return RawInbound(
            channel=Channel.LETTER,
            body=encode_review(draft.id, values, draft.files, ctx.staff.username, len(draft.pages)),
            received_at=draft.created_at,
            provider_message_id=f"{PROVIDER_PREFIX}{draft.id}",
            content_type=CONTENT_TYPE,
            metadata=metadata,
        )

    # ---- files ----------------------------------------------------------------------------

    async def page_image(self, request: web.Request, ctx: Context, _s: Any) -> web.StreamResponse:
        """One page as the reader saw it (PNG)."""
        draft, refusal = await self._draft(ctx, request.match_info["id"])
        if draft is None:
            assert refusal is not None
            return refusal
        number = _index(request.match_info["n"])
        found = next((p for p in draft.pages if p.number == number), None)
        if found is None:
            return self._gate.refuse(ctx, 404, t("not_found", ctx.lang))
        headers = {**HEADERS, "Content-Type": "image/png"}
        return await send_stored(request, self._files, found.image_sha256, headers, strip=False)

    async def original(self, request: web.Request, ctx: Context, _s: Any) -> web.StreamResponse:
        """An uploaded file exactly as received (a download)."""
        draft, refusal = await self._draft(ctx, request.match_info["id"])
        if draft is None:
            assert refusal is not None
            return refusal
        index = _index(request.match_info["i"])
        if index is None or index >= len(draft.files):
            return self._gate.refuse(ctx, 404, t("not_found", ctx.lang))
        scan = draft.files[index]
        ext = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
        name = f"surat-{draft.id[:8]}-{index + 1}.{ext.get(scan.media_type, 'tif')}"
        headers = {
            **HEADERS,  # sent with the answer: it is streamed, so the gate cannot add them after
            "Content-Type": scan.media_type,
            "Content-Disposition": f'attachment; filename="{name}"',
        }
        return await send_stored(request, self._files, scan.sha256, headers, strip=False)

    # ---- receipt --------------------------------------------------------------------------

    async def receipt(self, request: web.Request, ctx: Context, _s: Any) -> web.StreamResponse:
        """The citizen's printable receipt."""
        draft, refusal = await self._draft(ctx, request.match_info["id"])
        if draft is None:
            assert refusal is not None
            return refusal
        if draft.status is not DraftStatus.CONFIRMED or draft.tracking_id is None:
            return self._gate.redirect(f"{PREFIX}/letters/{draft.id}")
        clerk = draft.confirmed_by_name or draft.created_by_name
        followup = draft.receipt_status == ReceiptStatus.FOLLOWUP.value
        data = ReceiptData(
            tracking_id=draft.tracking_id,
            received_at=draft.created_at,
            subject=draft.values.get("subject") or None,
            pages=len(draft.pages),
            clerk=clerk,
            duplicate=draft.receipt_status == ReceiptStatus.DUPLICATE.value,
            followup=followup,
            acks=draft.acks,
            draft_id=draft.id,
            # A letter added to an earlier report does not give that report's code: its
            # holder's (the letter shows only that the report carries the NIK checked).
            followup_code=None if followup else tracking.display_code(
                self._intake.followup_code(draft.tracking_id)
            ),
        )
        notice = (
            t("not_sent", ctx.lang, u=clerk, t=when(draft.confirmed_at))
            if request.query.get("not_sent") == "1"
            else None
        )
        about = draft.values.get("about", "").strip()
        if about and not data.followup:
            # For the clerk only (never printed): the ID typed named no report this letter
            # could be added to, so it is a report of its own.
            apart = t("not_added", ctx.lang, id=about)
            notice = f"{notice} {apart}" if notice else apart
        # The citizen's language, not the clerk's: Indonesian unless English is asked for.
        receipt_lang: Lang = "en" if request.query.get("receipt_lang") == "en" else "id"
        html = receipt_page(
            ctx, data, self._settings.public_base_url, self._short_code, notice, receipt_lang,
            pages.unsent_box(ctx, draft),
        )
        return self._gate.html(ctx, html)


# Said under the NIK when a tick saved for another NIK was cleared (see _tick_carried).
RECHECK_NIK = (
    "NIK ini diubah setelah centang NIK sesuai KTP disimpan: cocokkan NIK ini dengan KTP, lalu "
    "centang lagi.",
    "This NIK was changed after the tick NIK matches the KTP was saved: check this NIK against "
    "the KTP, then tick again.",
)


def _tick_carried(saved: Mapping[str, str], sent: Mapping[str, str]) -> bool:
    """Whether the "NIK sesuai KTP" tick sent is the one saved for another NIK: ticked when
    saved with a NIK, still ticked, and the NIK changed since. (Saved ticked without a NIK, the
    tick vouched for nothing yet: typing the NIK is how the clerk answers "fill in the NIK
    checked against the KTP".)"""

    def ticked(values: Mapping[str, str]) -> bool:
        return values.get("nik_checked", "").strip().lower() in CHECKED

    def digits(values: Mapping[str, str]) -> str:
        return "".join(c for c in values.get("nik", "") if c.isdigit())

    before = digits(saved)
    return ticked(saved) and ticked(sent) and bool(before) and before != digits(sent)
