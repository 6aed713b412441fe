"""HTTP routes of the web channel (transport only: no database, no broker).

- ``GET /`` and ``POST /``: the citizen form (HTML, works without JavaScript) and its receipt;
  ``POST /?ganti_bahasa=1`` is the form's language switch: the form again in the other
  language with what was typed, nothing stored, not counted against the rate limits. A post
  without the form's cookie is answered the same way (403, the form expired): it cannot pass
  the CSRF check, so it is not counted either.
- ``GET /cek``: the status check page (status and dates only).
- ``POST /api/v1/complaints`` (JSON, or multipart with attachments), ``GET
  /api/v1/complaints/{tracking_id}``, ``GET /api/v1/openapi.json``.

Errors of the API are RFC 9457 problem documents, Indonesian by default and English when the
client weighs English above Indonesian in ``Accept-Language``; so is what aiohttp answers by
itself under ``/api/v1`` (:func:`api_errors`: 404, 405 with ``Allow``, 413, an unreadable body,
a failure of our own). Every submission (form, API) is counted against the
per-address and per-identity rate limits (:mod:`channels.web.abuse`): a JSON body is parsed first
and both are counted in one statement; a multipart body's files are stored only after its
client's address passed (a form refused there is read without storing any, to give back what was
typed), and its identities are counted once it is validated. The intake port is called
only for a message that passed validation, and the 2xx answer comes only after its commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from aiohttp import MultipartReader, web

from channels.dates import WIB, latest_today
from channels.web import csrf, kept, pages
from channels.web.abuse import Bucket, Guard
from channels.web.form import (
    ATTACHMENT_FIELD,
    CONTENT_TYPE,
    FIELDS,
    PASTED_BREAKS,
    attachment_fields,
    encode_submission,
    first_values,
    refused_character,
)
from channels.web.form import validate as validate_form
from channels.web.openapi import document as openapi_document
from channels.web.pages import Lang
from channels.web.parse import ATTACHMENT_REFS, BOM, FOLLOWUP_OF, MAX_BODY, MAX_CODE, english
from channels.web.uploads import (
    BAD_BODY,
    FieldTooLong,
    Upload,
    UploadRejected,
    read_multipart,
)
from gateway import tracking
from gateway.contract import rfc3339
from gateway.domain import (
    Channel,
    ComplaintDraft,
    RawInbound,
    Receipt,
    ReceiptStatus,
    Reporter,
)
from gateway.errors import IntakeUnavailable, ParseError
from gateway.filestore import FileStore
from gateway.http import answer_language, header_text, is_utf8_text
from gateway.intake import Clock, IntakeService, Parser, utcnow
from gateway.ratelimit import Decision
from gateway.settings import WebSettings

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
MAX_IDEMPOTENCY_KEY = 200
# Seconds a client is asked to wait after a 503 (the database or the file store away).
RETRY_SECONDS = "5"
API_PREFIX = "/api/v1"

# Problem titles by status (RFC 9110 reason phrases), Indonesian and English.
TITLES: Mapping[int, tuple[str, str]] = {
    400: ("Permintaan tidak valid", "Bad Request"),
    404: ("Tidak ditemukan", "Not Found"),
    405: ("Metode tidak diizinkan", "Method Not Allowed"),
    413: ("Kiriman terlalu besar", "Content Too Large"),
    415: ("Jenis konten tidak didukung", "Unsupported Media Type"),
    422: ("Tidak dapat diproses", "Unprocessable Content"),
    429: ("Terlalu banyak permintaan", "Too Many Requests"),
    500: ("Galat server", "Internal Server Error"),
    503: ("Layanan tidak tersedia", "Service Unavailable"),
}
UNAVAILABLE = ("Coba lagi sebentar lagi / try again later.", "Try again later.")
NOT_FOUND = ("Nomor pelacakan tidak ditemukan / tracking ID not found.", "Tracking ID not found.")
NOT_YET = (
    "Laporan ini masih diperiksa petugas dan belum dapat ditambah. Coba lagi nanti.",
    "This report is still being checked by an officer and cannot take additions yet. Try "
    "again later.",
)
LATER_SECONDS = 3600
# The provider ids of what the page /tambah adds (the form's are form:<nonce>): a token posted
# to the receipt's switch finds only a form's receipt.
ADDED = "add:"
NOT_FOUND_OR_CODE = (
    "Nomor pelacakan tidak ditemukan atau kode tambahan salah.",
    "Tracking ID not found, or wrong follow-up code.",
)
BAD_BOUNDARY = (
    "Format multipart rusak: boundary tidak ada atau lebih dari 70 karakter.",
    "Malformed multipart body: the boundary is missing or longer than 70 characters.",
)
BAD_FORM = ("Isian formulir rusak.", "Malformed form body.")
FORM_TOO_BIG = (
    "Isian formulir terlalu besar untuk diterima; persingkat teksnya, lalu kirim lagi.",
    "The form is too large to be accepted; shorten the text and send it again.",
)
# Bytes of refused attachments the form reads into the void so that the browser, which sends the
# whole body before it looks at the answer, gets to show the form again with the typed values.
MIN_DISCARD = 64 * 1024 * 1024


def api_lang(request: web.Request) -> Lang:
    """English when the client weighs English above Indonesian (RFC 9110 section 12.5.4)."""
    return answer_language(request)


def page_lang(request: web.Request) -> Lang:
    """The pages' language: ``?lang=en`` switches to English."""
    return "en" if request.query.get("lang") == "en" else "id"


def problem(
    status: int, detail: str | tuple[str, str], lang: Lang = "id", **extra: Any
) -> web.Response:
    """An RFC 9457 problem document; ``detail`` may be (Indonesian, English)."""
    title = TITLES.get(status, ("Galat", "Error"))
    if isinstance(detail, tuple):
        detail = detail[0] if lang == "id" else detail[1]
    body = {
        "type": "about:blank",
        "title": title[0] if lang == "id" else title[1],
        "status": status,
        "detail": detail,
        **extra,
    }
    # Chosen by Accept-Language: a cache in between must not give one client another's.
    headers = {"Content-Language": lang, "Vary": "Accept-Language"}
    return web.json_response(body, status=status, content_type=PROBLEM, headers=headers)


class WebChannel:
    """The citizen pages and the JSON API."""

    def __init__(
        self,
        intake: IntakeService,
        files: FileStore,
        settings: WebSettings,
        guard: Guard,
        json_parser: Parser,
        form_parser: Parser,
        followup_parser: Parser,
        csrf_key: bytes,
        clock: Clock = utcnow,
        short_code: str = "1708",
    ) -> None:
        self._intake = intake
        self._files = files
        self._short_code = short_code
        self._settings = settings
        self._guard = guard
        self._json_parser = json_parser
        self._form_parser = form_parser
        self._followup_parser = followup_parser
        self._signer = csrf.CsrfSigner(csrf_key, settings.csrf_max_age)
        self._kept = kept.KeptFiles(csrf_key, settings.csrf_max_age)
        self._clock = clock
        self._openapi = openapi_document()

    def register(self, app: web.Application) -> None:
        """Add the routes to ``app``."""
        app.router.add_get("/", self.form)
        app.router.add_post("/", self.submit_form)
        app.router.add_get("/cek", self.check)
        app.router.add_post(pages.RECEIPT_PATH, self.receipt_again)
        app.router.add_get(pages.RECEIPT_PATH, self.receipt_gone)
        app.router.add_get(pages.ADD_PATH, self.add_form)
        app.router.add_post(pages.ADD_PATH, self.add)
        app.router.add_post(f"{API_PREFIX}/complaints", self.create)
        app.router.add_get(f"{API_PREFIX}/complaints/{{tracking_id}}", self.status)
        app.router.add_post(f"{API_PREFIX}/complaints/{{tracking_id}}/followups", self.follow_up)
        app.router.add_get(f"{API_PREFIX}/openapi.json", self.openapi)
        app.middlewares.append(api_errors)

    # ---- shared ---------------------------------------------------------------------------

    async def _limited(self, buckets: list[Bucket]) -> Decision:
        """Count this request in ``buckets``; raises IntakeUnavailable when the DB fails."""
        return await self._guard.check(buckets)

    def _metadata(self, request: web.Request, **extra: str) -> dict[str, str]:
        client = self._guard.client(request)
        meta = {
            "remote": client,
            "user_agent": header_text(request, "User-Agent")[:200],
            **extra,
        }
        if request.remote and request.remote != client:
            meta["peer"] = request.remote  # the trusted proxy the request came through
        return meta

    async def _read_upload(
        self,
        request: web.Request,
        file_fields: frozenset[str],
        keep_going: bool = False,
        store_files: bool = True,
        nameless_files: bool = False,
    ) -> Upload:
        cfg = self._settings
        return await read_multipart(
            await _multipart(request),
            self._files,
            file_fields=file_fields,
            max_files=cfg.max_attachments,
            max_file_size=cfg.max_attachment_size,
            max_field_size=cfg.max_field_size,
            keep_going=keep_going,
            discard_limit=self._discard_limit(),
            store_files=store_files,
            nameless_files=nameless_files,
        )

    def _discard_limit(self) -> int:
        """Bytes of a form's body worth reading into the void to get to the fields after them."""
        cfg = self._settings
        return max(MIN_DISCARD, 2 * cfg.max_attachment_size * cfg.max_attachments)

    # ---- the citizen form -----------------------------------------------------------------

    def _client_id(self, request: web.Request) -> tuple[str, bool]:
        existing = csrf.client_id(request.cookies.get(csrf.COOKIE))
        if existing:
            return existing, False
        return csrf.new_client_id(), True

    def _form_response(
        self,
        request: web.Request,
        values: Mapping[str, str] | None = None,
        errors: Mapping[str, tuple[str, str]] | None = None,
        alert: str | None = None,
        status: int = 200,
        files: Sequence[kept.KeptFile] = (),
        lang: Lang | None = None,
        reattach: Sequence[str] = (),
    ) -> web.Response:
        client_id, fresh = self._client_id(request)
        when = self._clock()
        now = when.timestamp()
        token = self._signer.issue(client_id, now)
        lang = lang or page_lang(request)
        carried = [(self._kept.token(client_id, f, now), f.label(lang)) for f in files]
        limits = self._settings.max_attachments
        html = pages.form_page(
            lang, token, values, errors, alert, carried,
            today=latest_today(when), reattach=reattach,
            # Told before a photo is sent over a slow connection only to be refused.
            max_files=limits or None, max_file_size=self._settings.max_attachment_size,
        )
        return self._page(request, html, status, client_id if fresh else None)

    def _page(
        self, request: web.Request, html: str, status: int, new_client: str | None
    ) -> web.Response:
        """A page with a form: never cached, ``Retry-After`` on a 503 (the database or the file
        store away for a moment), and the CSRF cookie of ``new_client`` when it is new."""
        resp = web.Response(text=html, content_type="text/html", status=status)
        resp.headers["Cache-Control"] = "no-store"
        if status == 503:
            resp.headers["Retry-After"] = RETRY_SECONDS
        if new_client is not None:
            # Secure when the citizen came over HTTPS, also through the TLS-terminating proxy
            # (a trusted proxy's X-Forwarded-Proto): the gateway itself is reached over HTTP.
            resp.set_cookie(
                csrf.COOKIE, new_client, httponly=True, samesite="Lax", path="/",
                secure=self._guard.origin(request).startswith("https:"),
            )
        return resp

    async def form(self, request: web.Request) -> web.Response:
        """The empty form."""
        return self._form_response(request)

    def _too_many(
        self,
        request: web.Request,
        decision: Decision,
        values: Mapping[str, str] | None = None,
        files: Sequence[kept.KeptFile] = (),
    ) -> web.Response:
        lang = page_lang(request)
        resp = self._form_response(
            request,
            values,
            alert=pages.t("too_many", lang, n=decision.retry_after),
            status=429,
            files=files,
        )
        resp.headers["Retry-After"] = str(decision.retry_after)
        return resp

    async def submit_form(self, request: web.Request) -> web.Response:
        """Store the attachments, validate, hand to intake, show the receipt."""
        if pages.SWITCH in request.query or not csrf.client_id(request.cookies.get(csrf.COOKIE)):
            # A post without the form's cookie can never pass its CSRF check: the post another
            # site makes a visitor's browser send comes without it (SameSite=Lax). Refused before
            # it is counted, or any page could use up the limit of everyone sharing the
            # visitor's address (a school, an operator's NAT); read like a language switch:
            # nothing stored, the form back (403, "expired") with what was typed.
            return await self._switch_language(request)
        lang = page_lang(request)
        try:
            # The address first: an over-limit client's files are never stored.
            decision = await self._limited([self._guard.address_bucket(request)])
        except IntakeUnavailable:
            return await self._turned_away(request, None)
        if not decision.allowed:
            return await self._turned_away(request, decision)
        try:
            upload = await self._read_form(request)
        except UploadRejected as exc:
            return self._unreadable(request, exc)
        if upload is None:
            return self._form_response(request, alert=pages.t("expired", lang), status=400)
        values = first_values(upload.fields)
        client_id = csrf.client_id(request.cookies.get(csrf.COOKIE))
        token = next((v for k, v in upload.fields if k == csrf.FIELD), "")
        nonce = self._signer.check(token, client_id, self._clock().timestamp())
        held, lost = await self._held_files(upload, client_id)
        files = kept.carried(held, upload.attachments, upload.gps)
        asked = next((v for k, v in upload.fields if k == pages.SWITCH), None)
        if asked is not None:
            # The language switch, from a browser that ignored its formaction (it counted
            # against the address's limit already): still the form again, never a complaint.
            # Its files are stored by now, so they are kept like those of a refused form.
            errors = {r.field_name: pages.both("too_long") for r in upload.too_long
                      if r.field_name in FIELDS}
            problems = [r.message for r in upload.rejected]
            if lost:
                problems.append(pages.both("kept_lost", n=lost))
            if problems:
                errors[ATTACHMENT_FIELD] = (
                    " ".join(p[0] for p in problems), " ".join(p[1] for p in problems)
                )
            target: Lang = "en" if asked == "en" else "id"
            return self._switched(request, target, values, errors, files, nonce is not None)
        if nonce is None:
            return self._form_response(
                request, values, alert=pages.t("expired", lang), status=403, files=files
            )
        now = self._clock()
        data, errors = validate_form(values, latest_today(now))
        # A text too long to be read is absent from ``values``: its own message replaces what
        # its absence would say ("required"), and the form comes back even when it was optional.
        too_long = {r.field_name for r in upload.too_long if r.field_name in FIELDS}
        errors.update({name: pages.both("too_long") for name in too_long})
        problems = [r.message for r in upload.rejected]
        status = upload.rejected[0].status if upload.rejected else 422
        if lost:
            problems.append(pages.both("kept_lost", n=lost))
        if len(files) > self._settings.max_attachments:
            problems.append(pages.both("kept_too_many", n=self._settings.max_attachments))
            status = 413 if not upload.rejected else status
        if problems:
            # Everything typed comes back, the files already received ticked; the refused or
            # lost file(s) are named by the attachment field.
            message = (
                " ".join(p[0] for p in problems) + " " + pages.t("reattach", "id"),
                " ".join(p[1] for p in problems) + " " + pages.t("reattach", "en"),
            )
            return self._form_response(
                request, values, {**errors, ATTACHMENT_FIELD: message}, status=status, files=files
            )
        if data is None or too_long:
            status = 413 if too_long else 422
            return self._form_response(request, values, errors, status=status, files=files)
        try:
            decision = await self._limited(
                self._guard.identity_buckets(data.nik, data.phone, data.email)
            )
            # The same form sent again (a double tap, the receipt reloaded) is answered its
            # receipt whatever the limit says (refused, the citizen would never see the tracking
            # ID), from what is stored: as without a limit, a form is sent once.
            sent = await self._sent_before(nonce) if not decision.allowed else None
        except IntakeUnavailable:
            return self._form_response(
                request, values, alert=pages.t("unavailable", lang), status=503, files=files
            )
        if sent is not None:
            return self._receipt(lang, sent, token)
        if not decision.allowed:
            return self._too_many(request, decision, values, files)
        gps = _exif_gps((f.attachment.sha256, f.gps) for f in files if f.gps)
        raw = RawInbound(
            channel=Channel.WEB,
            body=encode_submission(upload.fields, [f.attachment for f in files]),
            received_at=now,
            provider_message_id=f"form:{nonce}",
            content_type=CONTENT_TYPE,
            metadata=self._metadata(request, **({"exif_gps": gps} if gps else {})),
        )
        try:
            receipt = await self._intake.accept(raw, self._form_parser)
        except IntakeUnavailable:
            return self._form_response(
                request, values, alert=pages.t("unavailable", lang), status=503, files=files
            )
        assert receipt.tracking_id is not None
        return self._receipt(lang, receipt.tracking_id, token)

    async def receipt_again(self, request: web.Request) -> web.Response:
        """The receipt of the form the posted CSRF token came with, in the language asked
        (the receipt's language switch: a post answer, it cannot be fetched again, and the
        follow-up code is on no other page). Only for the browser the form was served to
        (the token is bound to its cookie) and while the token is valid; else the status page,
        which has everything but the code."""
        lang = page_lang(request)

        def status_page(alert: str, status: int, retry: int | None = None) -> web.Response:
            html = pages.check_page(lang, alert=alert)
            resp = web.Response(text=html, content_type="text/html", status=status)
            if retry is not None:
                resp.headers["Retry-After"] = str(retry)
            return resp

        client_id = csrf.client_id(request.cookies.get(csrf.COOKIE))
        if not client_id:  # never the form's browser: refused before it is counted
            return status_page(pages.t("expired", lang), 403)
        try:
            form = await request.post()
        except (ValueError, LookupError, web.RequestPayloadError, web.HTTPException):
            form = None
        token = form.get(csrf.FIELD) if form is not None else None
        nonce = (
            self._signer.check(token, client_id, self._clock().timestamp())
            if isinstance(token, str) else None
        )
        try:
            # It reads the database: counted like every post.
            decision = await self._limited([self._guard.address_bucket(request)])
            sent = await self._sent_before(nonce) if nonce is not None else None
        except IntakeUnavailable:
            return status_page(pages.t("unavailable", lang), 503, int(RETRY_SECONDS))
        if not decision.allowed:
            wait = decision.retry_after
            return status_page(pages.t("too_many", lang, n=wait), 429, wait)
        if sent is None or not isinstance(token, str):
            # The report was received all the same: not "send it again".
            return status_page(pages.t("receipt_gone", lang), 403)
        return self._receipt(lang, sent, token)

    async def receipt_gone(self, request: web.Request) -> web.Response:
        """The switched receipt's address opened again (the history, a reopened tab): a
        receipt cannot be fetched, so the status page, saying why."""
        lang = page_lang(request)
        html = pages.check_page(lang, alert=pages.t("receipt_gone", lang))
        return web.Response(text=html, content_type="text/html")

    async def _sent_before(self, nonce: str) -> str | None:
        """The tracking ID the form of ``nonce`` was given when it was sent before, else None;
        :class:`IntakeUnavailable` when the database cannot say."""
        first = await self._intake.earlier_receipt(Channel.WEB, f"form:{nonce}")
        return first.tracking_id if first is not None else None

    def _receipt(self, lang: Lang, tracking_id: str, token: str | None = None) -> web.Response:
        """The receipt page: the tracking ID to copy, its follow-up code, what happens next;
        with the form's CSRF ``token``, a button that shows it again in the other language
        (:meth:`receipt_again`: the code is on no other page)."""
        code = tracking.display_code(self._intake.followup_code(tracking_id))
        html = pages.receipt_page(
            lang, tracking.display(tracking_id), self._short_code, code, token
        )
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    async def _turned_away(
        self, request: web.Request, decision: Decision | None
    ) -> web.Response:
        """The form refused before its body was read: over its address's limit (``decision``,
        429 with its ``Retry-After``) or the database away at that check (None, 503). Many
        citizens share one address (a mobile operator's NAT, a school), so one may meet
        someone else's limit: the body is read like a language switch's, no file stored (an
        over-limit client must not fill the file store), and the form comes back with what
        was typed, the files chosen named to be chosen again, those kept from an earlier post
        still ticked. A body that cannot be read, or carries more than the limits allow to be
        read, gets the same answer without the values."""
        lang = page_lang(request)
        if decision is None:
            alert, status = pages.t("unavailable", lang), 503
        else:
            alert, status = pages.t("too_many", lang, n=decision.retry_after), 429
        values: dict[str, str] = {}
        errors: dict[str, tuple[str, str]] = {}
        held: list[kept.KeptFile] = []
        unread: list[str] = []
        try:
            upload = await self._read_form(request, store_files=False)
        except UploadRejected:
            upload = None
        if upload is not None:
            client_id = csrf.client_id(request.cookies.get(csrf.COOKIE))
            token = next((v for k, v in upload.fields if k == csrf.FIELD), "")
            nonce = self._signer.check(token, client_id, self._clock().timestamp())
            if nonce is None:
                alert += " " + pages.t("expired", lang)
            elif decision is not None:
                # The same form sent again (a double tap, the receipt reloaded): its receipt,
                # whatever the limit says (the database answering, as it just did).
                try:
                    sent = await self._sent_before(nonce)
                except IntakeUnavailable:
                    sent = None
                if sent is not None:
                    return self._receipt(lang, sent, token)
            values = first_values(upload.fields)
            held, lost = await self._held_files(upload, client_id)
            unread = upload.unread
            errors = {r.field_name: pages.both("too_long") for r in upload.too_long
                      if r.field_name in FIELDS}
            if lost:
                errors[ATTACHMENT_FIELD] = pages.both("kept_lost", n=lost)
        resp = self._form_response(
            request, values, errors, alert=alert, status=status, files=held, reattach=unread
        )
        if decision is not None:
            resp.headers["Retry-After"] = str(decision.retry_after)
        return resp

    def _unreadable(self, request: web.Request, exc: UploadRejected) -> web.Response:
        """The form after a body that could not be read through (malformed, or more refused
        data than is worth reading): the fields that came after it are unread, so only the
        message can be shown, next to the field at fault (on top of the form when that is none
        of the form's fields)."""
        if isinstance(exc, FieldTooLong) and exc.field_name in FIELDS:
            errors = {exc.field_name: pages.both("too_long")}
            return self._form_response(request, errors=errors, status=exc.status)
        if exc.field_name != ATTACHMENT_FIELD:
            return self._form_response(
                request, alert=pages.msg(exc.message, page_lang(request)), status=exc.status
            )
        return self._form_response(
            request, errors={ATTACHMENT_FIELD: exc.message}, status=exc.status
        )

    async def _switch_language(self, request: web.Request) -> web.Response:
        """The form's language switch (``?ganti_bahasa``): the form in the language of the
        address posted to, with every value typed and no validation message.

        Not a submission: it is not counted against the rate limits, nothing is stored, and
        the files chosen are read into the void (storing them uncounted would let anyone fill
        the file store): the form names them, to be chosen again. Files kept from an earlier
        refused post are already stored and stay ticked. The CSRF token is checked as for a
        submission: the form comes back with a fresh one either way, with the "expired" message
        when it was not valid, so that another site cannot show a citizen a form it filled in
        without the citizen being told. A submission without the form's cookie comes here too:
        its token cannot be valid, so it gets that answer, uncounted, in the page's language.
        """
        try:
            upload = await self._read_form(request, store_files=False) or Upload()
        except UploadRejected as exc:
            return self._unreadable(request, exc)
        fields = upload.fields
        client_id = csrf.client_id(request.cookies.get(csrf.COOKIE))
        token = next((v for k, v in fields if k == csrf.FIELD), "")
        valid = self._signer.check(token, client_id, self._clock().timestamp()) is not None
        held, lost = await self._held_files(upload, client_id)
        errors = {t.field_name: pages.both("too_long") for t in upload.too_long
                  if t.field_name in FIELDS}
        if lost:
            errors[ATTACHMENT_FIELD] = pages.both("kept_lost", n=lost)
        return self._switched(
            request, page_lang(request), first_values(fields), errors, held, valid, upload.unread
        )

    def _switched(
        self,
        request: web.Request,
        lang: Lang,
        values: Mapping[str, str],
        errors: Mapping[str, tuple[str, str]],
        files: Sequence[kept.KeptFile],
        valid: bool,
        reattach: Sequence[str] = (),
    ) -> web.Response:
        """The form in ``lang`` after a language switch; 403 when its token was not valid."""
        return self._form_response(
            request,
            values,
            errors,
            alert=None if valid else pages.t("expired", lang),
            status=200 if valid else 403,
            files=files,
            lang=lang,
            reattach=reattach,
        )

    async def _read_form(self, request: web.Request, store_files: bool = True) -> Upload | None:
        """The citizen form's body: multipart (its files stored, or with ``store_files`` false
        only named: the language switch) or urlencoded; None for any other content type."""
        if request.content_type == "multipart/form-data":
            return await self._read_upload(
                request, frozenset({ATTACHMENT_FIELD}), keep_going=True, store_files=store_files
            )
        if request.content_type == "application/x-www-form-urlencoded":
            try:
                posted = await request.post()  # no files: bounded by client_max_size
            except (ValueError, LookupError):  # not UTF-8, or an unknown charset
                raise UploadRejected("", BAD_FORM) from None
            except web.RequestPayloadError:  # a Content-Encoding that does not decode...
                raise UploadRejected("", BAD_BODY) from None
            except web.HTTPRequestEntityTooLarge:  # over http.client_max_size
                raise UploadRejected("", FORM_TOO_BIG, 413) from None
            fields = [(k, v) for k, v in posted.items() if isinstance(v, str)]
            if not is_utf8_text(*(k + v for k, v in fields)):  # a charset like UTF-7's
                raise UploadRejected("", BAD_FORM)
            return Upload(fields=fields)
        return None

    async def _held_files(
        self, upload: Upload, client_id: str | None
    ) -> tuple[list[kept.KeptFile], int]:
        """The files an earlier, refused post of this form left ticked, and how many of the
        ticked ones cannot be used (expired, from another browser, or no longer stored)."""
        tokens = [v for k, v in upload.fields if k == kept.FIELD]
        now = self._clock().timestamp()
        held: list[kept.KeptFile] = []
        for token in tokens[: self._settings.max_attachments * 2]:
            found = self._kept.open(token, client_id, now)
            if found is not None and await self._files.touch(found.attachment.sha256):
                held.append(found)
        return held, len(tokens) - len(held)

    async def check(self, request: web.Request) -> web.Response:
        """The status page; a mistyped ID answers exactly like an unknown one."""
        lang = page_lang(request)
        typed = request.query.get("id", "")[:40]
        if not typed.strip():
            return web.Response(text=pages.check_page(lang), content_type="text/html")
        try:
            found = await self._intake.status(typed)
        except IntakeUnavailable:
            html = pages.check_page(lang, typed, alert=pages.t("unavailable", lang))
            return web.Response(
                text=html, content_type="text/html", status=503,
                headers={"Retry-After": RETRY_SECONDS},
            )
        if found is None:
            html = pages.check_page(lang, typed, not_found=True)
            return web.Response(text=html, content_type="text/html", status=404)
        kind = pages.t(pages.KIND_LABEL.get(found.kind or "", "pengaduan"), lang)
        result = {
            "id": tracking.display(found.tracking_id),
            "status": pages.status_label(found.status, lang),
            "received_at": found.received_at.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB"),
            "kind": kind if found.kind else "-",
        }
        if found.updated_at is not None:
            result["updated_at"] = found.updated_at.astimezone(WIB).strftime("%d-%m-%Y %H:%M WIB")
        if found.agency:
            result["agency"] = found.agency
        return web.Response(text=pages.check_page(lang, typed, result), content_type="text/html")

    # ---- information added to a report --------------------------------------------------

    def _add_response(
        self,
        request: web.Request,
        values: Mapping[str, str] | None = None,
        errors: Mapping[str, tuple[str, str]] | None = None,
        alert: str | None = None,
        status: int = 200,
        lang: Lang | None = None,
    ) -> web.Response:
        """The page that adds to a report, with a fresh CSRF token (and cookie)."""
        client_id, fresh = self._client_id(request)
        token = self._signer.issue(client_id, self._clock().timestamp())
        html = pages.add_page(
            lang or page_lang(request), token, values, errors, alert, self._short_code
        )
        return self._page(request, html, status, client_id if fresh else None)

    async def add_form(self, request: web.Request) -> web.Response:
        """The page that adds to a report; ``?id=`` fills in its tracking ID."""
        return self._add_response(request, {"nomor": request.query.get("id", "")[:40]})

    async def add(self, request: web.Request) -> web.Response:
        """Information added to a report by whoever holds its tracking ID and follow-up code:
        a ``followup`` event of that report once committed. A wrong ID or code answers alike,
        and counts against the address's limit like every post."""
        lang = page_lang(request)
        client_id = csrf.client_id(request.cookies.get(csrf.COOKIE))
        if not client_id:
            # Without the page's cookie (another site's page making a visitor's browser post,
            # SameSite=Lax) it can never pass its CSRF check: refused before it is counted,
            # or any page could use up the limit of everyone sharing the visitor's address.
            return self._add_response(request, alert=pages.t("expired", lang), status=403)
        try:
            form = await request.post()  # bounded by http.client_max_size
        except web.HTTPRequestEntityTooLarge:
            return self._add_response(request, alert=pages.msg(FORM_TOO_BIG, lang), status=413)
        except (ValueError, LookupError, web.RequestPayloadError):
            # Not a form body (an unknown charset, bytes that are not its text).
            return self._add_response(request, alert=pages.msg(BAD_FORM, lang), status=400)
        names = ("nomor", "kode", "tambahan", "rahasia", csrf.FIELD, pages.SWITCH)
        texts = {k: v for k in names if isinstance(v := form.get(k, ""), str)}
        if len(texts) < len(names) or not all(is_utf8_text(v) for v in texts.values()):
            # A file where text belongs, or text that is no Unicode (UTF-7's lone surrogates).
            return self._add_response(request, alert=pages.msg(BAD_FORM, lang), status=400)
        # Word's and PowerPoint's manual line breaks, pasted: line breaks, as on the form.
        values = {k: texts[k].translate(PASTED_BREAKS).strip()
                  for k in ("nomor", "kode", "tambahan", "rahasia")}
        if pages.SWITCH in request.query or texts[pages.SWITCH]:
            # The language switch (its formaction, or the field from a browser that ignored
            # it): the page again in the other language, what was typed kept, nothing stored
            # or counted.
            target: Lang = "en" if texts[pages.SWITCH] == "en" else "id"
            return self._add_response(request, values, lang=target)
        nonce = self._signer.check(texts[csrf.FIELD], client_id, self._clock().timestamp())
        try:
            decision = await self._limited([self._guard.address_bucket(request)])
            # The same page sent again (a double tap, the answer reloaded) is answered as it
            # was, whatever the limit says: it adds nothing.
            sent = None
            if not decision.allowed and nonce is not None:
                sent = await self._intake.earlier_receipt(Channel.WEB, f"{ADDED}{nonce}")
        except IntakeUnavailable:
            return self._add_response(
                request, values, alert=pages.t("unavailable", lang), status=503
            )
        if sent is not None and sent.tracking_id is not None:
            return self._added(lang, sent, texts[csrf.FIELD])
        if not decision.allowed:
            resp = self._add_response(
                request, values, alert=pages.t("too_many", lang, n=decision.retry_after),
                status=429,
            )
            resp.headers["Retry-After"] = str(decision.retry_after)
            return resp
        if nonce is None:
            return self._add_response(request, values, alert=pages.t("expired", lang), status=403)
        about = tracking.normalize(values["nomor"])
        errors: dict[str, tuple[str, str]] = {}
        if about is None:
            errors["nomor"] = pages.both("add_wrong")
        if not values["kode"] or len(values["kode"]) > MAX_CODE:
            errors["kode"] = pages.both("add_wrong")
        if not values["tambahan"]:
            errors["tambahan"] = pages.both("add_empty")
        elif len(values["tambahan"].replace("\r\n", "\n")) > MAX_BODY:
            errors["tambahan"] = pages.both("add_long", n=MAX_BODY)
        elif refusal := refused_character(pages.t("tambahan", "id"), values["tambahan"]):
            errors["tambahan"] = (refusal.split(" / ")[0], english(refusal))
        body: dict[str, Any] = {"body": values["tambahan"], "followup_code": values["kode"]}
        if values["rahasia"]:
            body["privacy"] = {"confidential": True}
        raw = RawInbound(
            channel=Channel.WEB,
            body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            received_at=self._clock(),
            provider_message_id=f"{ADDED}{nonce}",
            content_type="application/json",
            metadata=self._metadata(request, **({FOLLOWUP_OF: about} if about else {})),
        )
        outcome = None
        if not errors:
            try:
                outcome = self._followup_parser.parse(raw)
            except ParseError as exc:  # checked above: not expected
                errors["tambahan"] = (exc.reason.split(" / ", 1)[0], english(exc.reason))
        if about is not None and not errors:
            if not self._intake.followup_code_matches(about, values["kode"]):
                errors["kode"] = pages.both("add_wrong")
        if errors or outcome is None or about is None:
            return self._add_response(request, values, errors, status=422)
        try:
            if not await self._intake.holds_complaint(about):
                return self._add_response(
                    request, values, alert=pages.t("add_later", lang), status=409
                )
            receipt = await self._intake.accept(raw, self._followup_parser, outcome)
        except IntakeUnavailable:
            return self._add_response(
                request, values, alert=pages.t("unavailable", lang), status=503
            )
        return self._added(lang, receipt, texts[csrf.FIELD])

    def _added(self, lang: Lang, receipt: Receipt, token: str) -> web.Response:
        """The answer to the page that adds to a report: that report's ID again; or, when
        the report was no longer there to add to, the receipt of a report of its own."""
        assert receipt.tracking_id is not None
        if receipt.status is not ReceiptStatus.FOLLOWUP:
            return self._receipt(lang, receipt.tracking_id, token)
        html = pages.added_page(lang, tracking.display(receipt.tracking_id))
        return web.Response(
            text=html, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    # ---- the JSON API ---------------------------------------------------------------------

    async def openapi(self, _request: web.Request) -> web.Response:
        """The OpenAPI 3.1 document."""
        return web.json_response(self._openapi)

    async def status(self, request: web.Request) -> web.Response:
        """Status and dates of one complaint; unknown and mistyped IDs answer alike."""
        lang = api_lang(request)
        try:
            found = await self._intake.status(request.match_info["tracking_id"])
        except IntakeUnavailable:
            return _unavailable(lang)
        if found is None:
            return problem(404, NOT_FOUND, lang)
        return web.json_response(
            {
                "tracking_id": found.tracking_id,
                "status": found.status,
                "received_at": rfc3339(found.received_at),
                "kind": found.kind,
                "updated_at": rfc3339(found.updated_at) if found.updated_at else None,
                "agency": found.agency,
            }
        )

    async def create(self, request: web.Request) -> web.Response:
        """Validate, count against the limits, hand to intake, answer with the receipt."""
        return await self._submit(request, self._json_parser)

    async def follow_up(self, request: web.Request) -> web.Response:
        """More about a complaint from whoever holds its tracking ID and follow-up code (both
        given with the receipt of a form or an API request): added to it as a ``followup``
        event. A wrong code answers like an unknown ID, and counts against the limits."""
        about = tracking.normalize(request.match_info["tracking_id"])
        if about is None:
            return problem(404, NOT_FOUND_OR_CODE, api_lang(request))
        return await self._submit(request, self._followup_parser, about)

    async def _submit(
        self, request: web.Request, parser: Parser, about: str | None = None
    ) -> web.Response:
        """A complaint (or, ``about`` a tracking ID, a follow-up) posted to the API: validated,
        counted against the limits, handed to intake, answered with the receipt."""
        lang = api_lang(request)
        key = request.headers.get("Idempotency-Key")
        # Text of 1-200 characters; bytes that are not UTF-8 (lone surrogates here) cannot be
        # stored as the provider id, and replacing them would make two keys one.
        if key is not None and not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and is_utf8_text(key)):
            return problem(400, ("Idempotency-Key 1-200 karakter UTF-8.", "Idempotency-Key: 1-200 "
                                 "UTF-8 characters."), lang)
        if request.content_type not in ("application/json", "multipart/form-data"):
            return problem(
                415,
                ("Kirim application/json atau multipart/form-data.",
                 "Send application/json or multipart/form-data."),
                lang,
            )
        address = [self._guard.address_bucket(request)]
        extra: dict[str, str] = {} if about is None else {FOLLOWUP_OF: about}
        if request.content_type == "multipart/form-data":
            # Files go to disk: only for a client whose address is within its limit.
            try:
                decision = await self._limited(address)
            except IntakeUnavailable:
                return _unavailable(lang)
            if not decision.allowed:
                return _too_many(decision, lang)
            address = []  # counted
            try:
                upload = await self._read_upload(
                    request, frozenset({"attachments"}), nameless_files=True
                )
            except UploadRejected as exc:
                named = {"field": exc.field_name} if exc.field_name else {}  # none: the body
                refused = problem(exc.status, exc.message, lang, **named)
                if exc.status == 503:  # the file store's trouble: send again later
                    refused.headers["Retry-After"] = RETRY_SECONDS
                return refused
            part = "complaint" if about is None else "followup"
            parts = [v for k, v in upload.fields if k == part]
            if len(parts) != 1:
                return problem(
                    400,
                    (f"Kirim satu bagian '{part}' berisi JSON.",
                     f"Send exactly one '{part}' part holding the JSON."),
                    lang,
                )
            body = parts[0].encode("utf-8")
            refs = [attachment_fields(a) for a in upload.attachments]
            if refs:
                extra[ATTACHMENT_REFS] = json.dumps(refs, separators=(",", ":"))
            # Where photos were taken, as for the form: the evidence /files/ strips when serving.
            gps = _exif_gps(upload.gps.items())
            if gps:
                extra["exif_gps"] = gps
        else:
            try:
                body = await request.read()  # bounded by http.client_max_size
            except web.RequestPayloadError:  # a Content-Encoding that does not decode...
                return problem(400, BAD_BODY, lang)
        raw = RawInbound(
            channel=Channel.WEB,
            body=body,
            received_at=self._clock(),
            provider_message_id=f"uuid:{uuid.uuid4()}",
            content_type="application/json",
            metadata=self._metadata(request, **extra),
        )
        # Validate first: an API client is answered 4xx and keeps its message (nothing is lost).
        refusal: web.Response | None = None
        buckets = address
        try:
            outcome = parser.parse(raw)
        except ParseError as exc:
            refusal = problem(400, exc.reason if lang == "id" else english(exc.reason), lang)
        else:
            if about is not None and not (
                isinstance(outcome, ComplaintDraft)
                and self._intake.followup_code_matches(about, outcome.about_code or "")
            ):
                # Counted like any request (below): codes cannot be tried faster than the
                # limits allow.
                refusal = problem(404, NOT_FOUND_OR_CODE, lang)
            elif about is not None:
                try:
                    if not await self._intake.holds_complaint(about):
                        # Its code is right, but no complaint stands behind it yet (a report
                        # still in quarantine): later, rather than a complaint of its own.
                        refusal = problem(409, NOT_YET, lang)
                        refusal.headers["Retry-After"] = str(LATER_SECONDS)
                except IntakeUnavailable:
                    return _unavailable(lang)
            rep = outcome.reporter if isinstance(outcome, ComplaintDraft) else Reporter()
            buckets = address + self._guard.identity_buckets(rep.nik, rep.phone, rep.email)
            if key:
                # The key is the caller's, not everyone's: scoped by who reports (or from where;
                # a follow-up's by the complaint it adds to).
                scope = self._guard.idempotency_scope(
                    request, rep.nik, rep.phone, rep.email, followed=about
                )
                raw = replace(raw, provider_message_id=f"idem:{scope}:{key}")
        try:
            decision = await self._limited(buckets)  # address and identities: one statement
            # A retry of a request that went through (its Idempotency-Key seen, the same body
            # and files) is answered its receipt whatever the limits say: it adds nothing, and
            # refused, the caller would never learn the tracking ID of the complaint it filed.
            # Answered here, from what is stored: nothing of it is written. Anything else over
            # the limit is refused alike (a 422 for another body would tell a stranger who
            # typed a NIK which keys its holder used).
            if not decision.allowed and refusal is None and key is not None:
                first = await self._intake.earlier_receipt(
                    Channel.WEB, str(raw.provider_message_id)
                )
                if first is not None and await self._same_request(first, raw):
                    return self._accepted(first)
        except IntakeUnavailable:
            return _unavailable(lang)
        if not decision.allowed:
            return _too_many(decision, lang)
        if refusal is not None:
            return refusal
        try:
            receipt = await self._intake.accept(raw, parser, outcome)
        except IntakeUnavailable:
            return _unavailable(lang)
        try:
            same = not receipt.redelivered or await self._same_request(receipt, raw)
        except IntakeUnavailable:
            return _unavailable(lang)
        if not same:
            return problem(
                422,
                ("Idempotency-Key ini sudah dipakai untuk isi laporan yang berbeda.",
                 "This Idempotency-Key was already used with a different request body."),
                lang,
            )
        return self._accepted(receipt)

    async def _same_request(self, receipt: Receipt, raw: RawInbound) -> bool:
        """Whether ``raw`` repeats the request its Idempotency-Key first came with: the same
        JSON, the same files (a multipart retry's attachments are part of the request) and
        the same complaint followed (a follow-up's is in its path, not its body)."""
        if not _same_body(receipt, raw):
            return False
        first = await self._intake.transport_meta(receipt.raw_id)
        return all(first.get(k) == raw.metadata.get(k) for k in (ATTACHMENT_REFS, FOLLOWUP_OF))

    def _accepted(self, receipt: Receipt) -> web.Response:
        """202 with the receipt: its tracking ID, status and status URL, and the ID's follow-up
        code (what adds to the complaint later: the caller keeps it, nobody else is told)."""
        body = {
            "tracking_id": receipt.tracking_id,
            "status": receipt.status.value,
            "status_url": f"{API_PREFIX}/complaints/{receipt.tracking_id}",
        }
        if receipt.tracking_id is not None:
            body["followup_code"] = tracking.display_code(
                self._intake.followup_code(receipt.tracking_id)
            )
        return web.json_response(body, status=202, headers={"Cache-Control": "no-store"})


async def _multipart(request: web.Request) -> MultipartReader:
    """The request's multipart reader; :class:`UploadRejected` when it cannot be read."""
    try:
        return await request.multipart()
    except ValueError:  # no boundary, or one longer than RFC 2046's 70 characters
        raise UploadRejected("", BAD_BOUNDARY) from None


# What aiohttp answers by itself under the API, as (Indonesian, English); ``{...}`` filled in.
_HTTP_ERRORS = {
    404: ("Tidak ada sumber API di alamat ini.", "There is no API resource at this address."),
    405: (
        "Metode {method} tidak dapat dipakai di sini; yang dapat: {allow}.",
        "The method {method} is not allowed here; allowed: {allow}.",
    ),
    413: (
        "Isi permintaan lebih besar dari batas ({limit} bita).",
        "The request body is larger than the limit ({limit} bytes).",
    ),
}
_SERVER_ERROR = (
    "Terjadi galat di server. Coba lagi nanti.",
    "The server failed. Try again later.",
)


def _is_api(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


@web.middleware
async def api_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """What aiohttp answers by itself under ``/api/v1`` (no such resource, a method the resource
    does not take with its ``Allow``, a body over ``http.client_max_size``, a body that cannot
    be read) and what a handler did not expect, as problem documents with the same status, in
    the client's language, like every other answer of the API."""
    if not _is_api(request.path):
        return await handler(request)
    lang = api_lang(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        ident, eng = _HTTP_ERRORS.get(
            exc.status,
            (f"Permintaan tidak dapat diproses (HTTP {exc.status}).", exc.reason),
        )
        values = {
            "method": request.method,
            "allow": exc.headers.get("Allow", "").replace(",", ", ") or "-",
            # aiohttp names the limit in its own text only ("Maximum request body size N").
            "limit": next(iter(re.findall(r"\d+", exc.text or "")), "?"),
        }
        answer = problem(exc.status, (ident.format(**values), eng.format(**values)), lang)
        for name in ("Allow", "Retry-After"):
            if name in exc.headers:
                answer.headers[name] = exc.headers[name]
        return answer
    except web.RequestPayloadError:
        return problem(400, BAD_BODY, lang)
    except (ConnectionError, TimeoutError):
        raise  # the client went away (nobody to answer), or aiohttp's 504
    except Exception:
        log.exception("api: unexpected error answering %s %s", request.method, request.path)
        return problem(500, _SERVER_ERROR, lang)


def _too_many(decision: Decision, lang: Lang) -> web.Response:
    wait = decision.retry_after
    if decision.refused_by.startswith("id"):
        detail = (
            f"Terlalu banyak laporan dengan identitas yang sama. Coba lagi dalam {wait} detik.",
            f"Too many reports with the same identity. Retry in {wait} s.",
        )
    else:
        detail = (f"Coba lagi dalam {wait} detik.", f"Retry in {wait} s.")
    resp = problem(429, detail, lang)
    resp.headers["Retry-After"] = str(wait)
    return resp


def _exif_gps(places: Iterable[tuple[str, tuple[float, float]]]) -> str:
    """``source.exif_gps``: where each photo was taken, ``<sha256>=<lat>,<long>`` joined by
    ``;`` (the form's and the API's alike)."""
    return ";".join(f"{sha}={lat},{lon}" for sha, (lat, lon) in places)


def _same_body(receipt: Receipt, raw: RawInbound) -> bool:
    """Whether ``raw``'s body is the first one's. A UTF-8 byte order mark in front is no part
    of the JSON (the parser skips it): the same JSON with or without one is the same body. The
    raw message keeps the bytes as received, so both spellings are compared with its hash."""
    if receipt.raw_sha256 is None:
        return True
    bare = raw.body.removeprefix(BOM)
    return any(
        secrets.compare_digest(receipt.raw_sha256, hashlib.sha256(body).hexdigest())
        for body in (bare, BOM + bare)
    )


def _unavailable(lang: Lang) -> web.Response:
    resp = problem(503, UNAVAILABLE, lang)
    resp.headers["Retry-After"] = RETRY_SECONDS
    return resp
