"""The staff side of the HTTP routes: sessions, CSRF, roles, login, logout, accounts.

Every page under ``/staff/`` goes through :meth:`StaffGate.page`, which reads the session
cookie, sends a visitor without a session to the login form (a form sent after the session
ended is answered with the login form itself, saying so, which leads back to the page it came
from), refuses a clerk on supervisor pages (403), and sets the headers of every staff answer:
``Cache-Control: no-store`` (nothing a clerk saw stays in a shared browser's cache), a
Content-Security-Policy that allows only the gateway's own script and images, no framing, no
referrer. Every POST carries the session's CSRF token; a wrong one is refused with 403 before
anything changes.

A form body that cannot be read (bytes that are not in its charset, an unknown charset, broken
multipart) is answered 400 (:func:`read_form`), never 500.

Login attempts are limited twice: per account (a lockout, :mod:`channels.letter.auth`), and
per client address (:class:`AddressThrottle`): failed logins from one address, whatever
accounts they tried, are counted in the gateway's shared rate-limit table; once an address has
``letter.login_address_failures`` of them in its window, its further attempts are answered 429
with ``Retry-After`` without any password being checked. A new login form stores a
pre-login session: ``letter.login_address_forms`` of them per address in that window, then 429
too, with nothing stored (a client asking for the form again and again without its cookie filled
the table). Only failures count, so the clerks of
an office behind one address never lock it out by logging in. Attempts sent in parallel are
checked before any of them is counted, so a burst can pass the limit by its own size; the
per-account count, atomic, still bounds what each account sees.

Cookies: ``lapor_staff`` (the session, path ``/staff``) and ``lapor_staff_login`` (the login
form's pre-login session, path ``/staff/login``), both HttpOnly and SameSite=Strict, Secure when
``letter.cookie_secure`` is set. Refusals and errors map to statuses in one place
(:data:`STATUS`).
"""

from __future__ import annotations

import hmac
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from channels.letter import pages
from channels.letter.auth import (
    AccountLocked,
    InvalidAccount,
    LoginFailed,
    Session,
    StaffStore,
)
from channels.letter.pages import PREFIX, Context, Lang, t
from gateway.errors import IntakeUnavailable
from gateway.http import is_utf8_text
from gateway.intake import DB_UNAVAILABLE, Clock, utcnow
from gateway.ratelimit import Decision, Limit, RateLimiter
from gateway.settings import LetterSettings

log = logging.getLogger(__name__)

COOKIE = "lapor_staff"
LOGIN_COOKIE = "lapor_staff_login"
LANG_COOKIE = "lapor_staff_lang"
HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
# Database trouble: the page answers 503 and nothing is half done.
UNAVAILABLE = (*DB_UNAVAILABLE, IntakeUnavailable)


def page_lang(request: web.Request) -> Lang:
    """``?lang=en``/``?lang=id`` first, then the language cookie, else Indonesian."""
    asked = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    return "en" if asked == "en" else "id"


_LETTER_FORM = re.compile(rf"{PREFIX}/letters/([0-9A-Za-z-]{{1,36}})(?:/read-again)?")


def resume_path(path: str) -> str:
    """The page to go back to after logging in again, for a form sent to ``path`` after the
    session ended: the letter it was about, the accounts page, else the letters."""
    found = _LETTER_FORM.fullmatch(path)
    if found:
        return f"{PREFIX}/letters/{found.group(1)}"
    if path.startswith(f"{PREFIX}/accounts"):
        return f"{PREFIX}/accounts"
    return f"{PREFIX}/"


def safe_next(target: str) -> str:
    """Where to go after login: only a page of the staff area (no open redirect), written as a
    URL is (printable ASCII: a line break would end the Location header, and a control
    character is refused by aiohttp as it sends the answer)."""
    if (
        target.startswith(f"{PREFIX}/")
        and not target.startswith("//")
        and "\\" not in target
        and target.isascii()
        and target.isprintable()
        and " " not in target
    ):
        return target
    return f"{PREFIX}/"


class BadForm(Exception):
    """A posted form whose body cannot be read (answered 400)."""


async def read_form(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The posted form; :class:`BadForm` when its body cannot be read: bytes that are not in its
    charset, a charset Python does not know, a broken multipart body."""
    try:
        form = await request.post()
    except (ValueError, LookupError):  # UnicodeDecodeError is a ValueError
        raise BadForm() from None
    # A charset the client names (UTF-7) can decode to lone surrogates: no page nor password
    # hash can take them.
    if not is_utf8_text(*(k + v for k, v in form.items() if isinstance(v, str))):
        raise BadForm()
    return form


NO_LIMIT = Limit(0, 1.0)


def _minutes(decision: Decision) -> int:
    """A refusal's ``Retry-After`` in whole minutes, as the pages say it."""
    return max(1, math.ceil(decision.retry_after / 60))


class AddressThrottle:
    """Failed logins, and new login forms, per client address (see the module's docstring)."""

    def __init__(
        self,
        limiter: RateLimiter,
        limit: Limit,
        client: Callable[[web.Request], str],
        forms: Limit = NO_LIMIT,
    ) -> None:
        self._limiter = limiter
        self._limit = limit
        self._client = client
        self._forms = forms

    def _bucket(self, request: web.Request) -> str:
        return f"staff-login:{self._client(request)}"

    async def check(self, request: web.Request) -> Decision:
        """Whether this address may still try; counts nothing."""
        return await self._limiter.peek(self._bucket(request), self._limit)

    async def failed(self, request: web.Request) -> None:
        """Count one failed login of this address."""
        await self._limiter.hit([(self._bucket(request), self._limit)])

    async def new_form(self, request: web.Request) -> Decision:
        """Count one new login form (a pre-login session stored) for this address."""
        return await self._limiter.hit(
            [(f"staff-login-form:{self._client(request)}", self._forms)]
        )


class StaffGate:
    """Sessions, CSRF, roles and the headers of every staff page."""

    def __init__(
        self,
        store: StaffStore,
        settings: LetterSettings,
        clock: Clock = utcnow,
        throttle: AddressThrottle | None = None,
    ) -> None:
        self.store = store
        self._settings = settings
        self._clock = clock
        self._throttle = throttle

    # ---- answers --------------------------------------------------------------------------

    def html(self, ctx: Context, text: str, status: int = 200) -> web.Response:
        """An HTML page."""
        return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")

    def redirect(self, location: str) -> web.Response:
        """303 See Other (after a POST, the browser GETs ``location``)."""
        return web.Response(status=303, headers={"Location": location})

    def refuse(self, ctx: Context, status: int, text: str) -> web.Response:
        """A short error page."""
        titles = {403: "403", 404: "404", 409: "409", 503: "503"}
        html = pages.message_page(ctx, titles.get(status, str(status)), text)
        return self.html(ctx, html, status)

    def csrf_ok(self, session: Session | None, token: str) -> bool:
        """True when ``token`` is the session's CSRF token."""
        if session is None or not token or not token.isascii():
            return False  # ours are ASCII (and a lone surrogate cannot be compared)
        return hmac.compare_digest(session.csrf_token.encode(), token.encode())

    def set_session_cookie(self, resp: web.StreamResponse, token: str) -> None:
        """The session cookie (HttpOnly, SameSite=Strict, path /staff).

        A browser-session cookie (no Max-Age): closing the browser of a shared front-desk PC
        logs out; the server ends the session at ``session_max_age`` in any case.
        """
        resp.set_cookie(
            COOKIE,
            token,
            path=PREFIX,
            httponly=True,
            samesite="Strict",
            secure=self._settings.cookie_secure,
        )

    # ---- the wrapper of every staff page --------------------------------------------------

    async def _context(self, request: web.Request) -> tuple[Context, Session | None]:
        session = await self.store.session(request.cookies.get(COOKIE))
        if session is not None and session.staff is None:
            session = None  # a pre-login token in the session cookie: not a login
        ctx = Context(
            lang=page_lang(request),
            staff=session.staff if session is not None else None,
            csrf=session.csrf_token if session is not None else "",
            path=request.path,
        )
        return ctx, session

    def page(
        self,
        handler: Callable[[web.Request, Context, Session], Awaitable[web.StreamResponse]],
        *,
        supervisor: bool = False,
        unavailable: Callable[[web.Request, Context], Awaitable[web.Response | None]]
        | None = None,
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """A logged-in page: login redirect, role check, CSRF on POST, headers, 503.

        ``unavailable`` answers the 503 of a form (the database away, also for the session):
        the form back with what was typed; None from it, or none given, is the bare 503 page.
        """

        async def wrapped(request: web.Request) -> web.StreamResponse:
            lang = page_lang(request)
            ctx = Context(lang, None, "", request.path)
            try:
                ctx, session = await self._context(request)
                if session is None or ctx.staff is None:
                    if request.method == "GET":
                        resp: web.StreamResponse = self.redirect(
                            f"{PREFIX}/login?next={quote(request.path_qs, safe='/')}"
                            if request.path != f"{PREFIX}/"
                            else f"{PREFIX}/login"
                        )
                    elif request.path == f"{PREFIX}/logout":  # out already (a double click)
                        resp = self.redirect(f"{PREFIX}/login")
                    else:
                        # A form sent after the session ended (idle, logged out in another
                        # tab): say so, with the login form leading back to the page. Nothing
                        # of the form is kept here (staff.js keeps a letter's typed values).
                        resp = await self._login_response(
                            request, lang, 403, alert=t("session_ended", lang),
                            nxt=resume_path(request.path),
                        )
                elif supervisor and not ctx.staff.is_supervisor:
                    log.info(
                        "staff page refused: supervisors only",
                        extra={"staff": ctx.staff.username, "path": request.path},
                    )
                    resp = self.refuse(ctx, 403, t("forbidden", lang))
                else:
                    resp = await handler(request, ctx, session)
            except BadForm:
                resp = self.refuse(ctx, 400, t("bad_form", lang))
            except UNAVAILABLE as exc:
                log.warning(
                    "staff page unavailable: %s", type(exc).__name__,
                    extra={"path": request.path, "error": str(exc)[:300]},
                )
                given = None if unavailable is None else await unavailable(request, ctx)
                resp = given if given is not None else self.refuse(
                    ctx, 503, t("unavailable", lang)
                )
                resp.headers["Retry-After"] = "5"
            return self.finish(request, resp)

        return wrapped

    def finish(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        """Add the staff headers, and keep a language chosen with ``?lang=``."""
        for name, value in HEADERS.items():
            resp.headers.setdefault(name, value)
        chosen = request.query.get("lang")
        if chosen in ("id", "en") and chosen != request.cookies.get(LANG_COOKIE):
            resp.set_cookie(
                LANG_COOKIE, chosen, path=PREFIX, samesite="Strict", httponly=True,
                secure=self._settings.cookie_secure, max_age=365 * 86400,
            )
        return resp

    # ---- login and logout -----------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.StreamResponse:
        """The login form, with a pre-login session for its CSRF token."""
        lang = page_lang(request)
        ctx = Context(lang, None, "", request.path)
        try:
            current, _ = await self._context(request)
            if current.staff is not None:
                return self.finish(request, self.redirect(f"{PREFIX}/"))
            resp = await self._login_response(request, lang, status=200)
        except UNAVAILABLE:
            resp = self.refuse(ctx, 503, t("unavailable", lang))
        return self.finish(request, resp)

    async def _login_response(
        self,
        request: web.Request,
        lang: Lang,
        status: int,
        username: str = "",
        alert: str | None = None,
        nxt: str | None = None,
        fresh: bool = False,
    ) -> web.Response:
        pre = None if fresh else await self.store.session(request.cookies.get(LOGIN_COOKIE))
        token = None
        if pre is None or pre.staff is not None:
            if self._throttle is not None:
                decision = await self._throttle.new_form(request)
                if not decision.allowed:  # no row stored for a flood of forms
                    log.warning("staff login form refused: too many from this address")
                    ctx = Context(lang, None, "", request.path)
                    resp = self.refuse(ctx, 429, t("forms_busy", lang, m=_minutes(decision)))
                    resp.headers["Retry-After"] = str(decision.retry_after)
                    return resp
            token, pre = await self.store.new_session(None)
        ctx = Context(lang, None, pre.csrf_token, request.path)
        target = nxt if nxt is not None else request.query.get("next", "")
        html = pages.login_page(ctx, username, alert, safe_next(target) if target else "")
        resp = self.html(ctx, html, status)
        if token is not None:
            resp.set_cookie(
                LOGIN_COOKIE, token, path=f"{PREFIX}/login", httponly=True, samesite="Strict",
                secure=self._settings.cookie_secure,
            )
        return resp

    async def login(self, request: web.Request) -> web.StreamResponse:
        """Check the CSRF token and the password; a new session on success."""
        lang = page_lang(request)
        ctx = Context(lang, None, "", request.path)
        try:
            resp = await self._login(request, lang)
        except BadForm:
            resp = self.refuse(ctx, 400, t("bad_form", lang))
        except UNAVAILABLE:
            resp = self.refuse(ctx, 503, t("unavailable", lang))
        return self.finish(request, resp)

    async def _failed(self, request: web.Request) -> None:
        if self._throttle is not None:
            await self._throttle.failed(request)

    async def _login(self, request: web.Request, lang: Lang) -> web.StreamResponse:
        form = await read_form(request)
        username = str(form.get("username", ""))[:64]
        password = str(form.get("password", ""))
        nxt = str(form.get("next", ""))
        pre = await self.store.session(request.cookies.get(LOGIN_COOKIE))
        # The pre-login token is good for one attempt: it is spent here, before the password is
        # checked, so of several requests sent with it at once only one goes on; the answer to
        # a failed attempt carries a fresh token.
        if (
            pre is None
            or pre.staff is not None
            or not self.csrf_ok(pre, str(form.get("csrf", "")))
            or not await self.store.end_session(pre.token_hash)
        ):
            return await self._login_response(
                request, lang, 403, username, t("expired", lang), nxt, fresh=True
            )
        if self._throttle is not None:
            decision = await self._throttle.check(request)
            if not decision.allowed:
                log.warning("staff login refused: too many failed logins from this address")
                resp = await self._login_response(
                    request, lang, 429, username,
                    t("address_locked", lang, m=_minutes(decision)),
                    nxt, fresh=True,
                )
                resp.headers["Retry-After"] = str(decision.retry_after)
                return resp
        try:
            staff = await self.store.authenticate(username, password)
        except AccountLocked as exc:
            log.warning("staff login refused: account locked", extra={"staff": username})
            await self._failed(request)
            resp = await self._login_response(
                request, lang, 429, username, pages.msg(exc.message, lang), nxt, fresh=True
            )
            wait = max(1, math.ceil((exc.until - self._clock()).total_seconds()))
            resp.headers["Retry-After"] = str(wait)
            return resp
        except LoginFailed as exc:
            log.info("staff login failed", extra={"staff": username})
            await self._failed(request)
            return await self._login_response(
                request, lang, 403, username, pages.msg(exc.message, lang), nxt, fresh=True
            )
        token, _ = await self.store.new_session(staff)
        log.info("staff logged in", extra={"staff": staff.username, "role": staff.role.value})
        resp = self.redirect(safe_next(nxt))
        self.set_session_cookie(resp, token)
        resp.del_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
        return resp

    async def logout(
        self, request: web.Request, ctx: Context, session: Session
    ) -> web.StreamResponse:
        """End the session (POST with the CSRF token)."""
        form = await read_form(request)
        if not self.csrf_ok(session, str(form.get("csrf", ""))):
            return self.refuse(ctx, 403, t("expired", ctx.lang))
        await self.store.end_session(session.token_hash)
        log.info("staff logged out", extra={"staff": ctx.staff.username if ctx.staff else ""})
        resp = self.redirect(f"{PREFIX}/login")
        resp.del_cookie(COOKIE, path=PREFIX)
        return resp


class Accounts:
    """Supervisors: list accounts, create one, unlock, disable and enable."""

    def __init__(self, gate: StaffGate, clock: Clock = utcnow) -> None:
        self._gate = gate
        self._clock = clock

    def register(self, app: web.Application) -> None:
        """Add the routes to ``app``."""
        app.router.add_get(f"{PREFIX}/accounts", self._gate.page(self.list, supervisor=True))
        app.router.add_post(f"{PREFIX}/accounts", self._gate.page(self.create, supervisor=True))
        app.router.add_post(
            f"{PREFIX}/accounts/{{id}}/{{action:unlock|disable|enable}}",
            self._gate.page(self.change, supervisor=True),
        )

    async def _page(
        self, ctx: Context, status: int = 200, alert: str | None = None, ok: bool = False,
        username: str = "",
    ) -> web.Response:
        accounts = await self._gate.store.accounts()
        html = pages.accounts_page(ctx, accounts, self._clock(), alert, ok, username)
        return self._gate.html(ctx, html, status)

    async def list(self, request: web.Request, ctx: Context, _s: Session) -> web.StreamResponse:
        """Every account."""
        done = request.query.get("done")
        alert = t("done", ctx.lang) if done else None
        return await self._page(ctx, alert=alert, ok=True)

    async def create(
        self, request: web.Request, ctx: Context, session: Session
    ) -> web.StreamResponse:
        """A new account."""
        form = await read_form(request)
        if not self._gate.csrf_ok(session, str(form.get("csrf", ""))):
            return self._gate.refuse(ctx, 403, t("expired", ctx.lang))
        username = str(form.get("username", ""))[:64]
        password = str(form.get("password", ""))
        if password != str(form.get("password2", "")):
            return await self._page(ctx, 422, t("mismatch", ctx.lang), username=username)
        try:
            staff = await self._gate.store.create_account(
                username, str(form.get("role", "")), password
            )
        except InvalidAccount as exc:
            return await self._page(ctx, 422, pages.msg(exc.message, ctx.lang), username=username)
        log.info(
            "staff account created",
            extra={"staff": staff.username, "role": staff.role.value,
                   "by": ctx.staff.username if ctx.staff else ""},
        )
        return await self._page(ctx, 200, t("created", ctx.lang, u=staff.username), ok=True)

    async def change(
        self, request: web.Request, ctx: Context, session: Session
    ) -> web.StreamResponse:
        """Unlock, disable or enable one account (never one's own disable)."""
        form = await read_form(request)
        if not self._gate.csrf_ok(session, str(form.get("csrf", ""))):
            return self._gate.refuse(ctx, 403, t("expired", ctx.lang))
        staff_id = request.match_info["id"]
        action = request.match_info["action"]
        if ctx.staff is not None and staff_id == ctx.staff.id and action == "disable":
            # (An old page or a second tab: the list offers no Disable on one's own row.)
            log.info("staff account not disabled: one's own", extra={"staff": ctx.staff.username})
            return self._gate.refuse(ctx, 409, t("own_account", ctx.lang))
        store = self._gate.store
        found = (
            await store.unlock(staff_id)
            if action == "unlock"
            else await store.set_disabled(staff_id, action == "disable")
        )
        if not found:
            return self._gate.refuse(ctx, 404, t("not_found", ctx.lang))
        log.info(
            "staff account changed",
            extra={"account": staff_id, "action": action,
                   "by": ctx.staff.username if ctx.staff else ""},
        )
        return self._gate.redirect(f"{PREFIX}/accounts?done=1")

