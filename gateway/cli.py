"""``lapor-gateway``: run, migrate and operate the gateway.

Subcommands: ``serve``, ``relay``, ``migrate``, ``check-config``, ``quarantine list|show|replay``,
``outbox status|republish|prune|unopenable|set-aside|restore``, ``dedup show``, ``status show``,
``keys reseal``, ``files gc``, ``sms requeue|prune``, ``staff create|list``. Every subcommand
reads the same settings (``config/gateway.toml`` and ``LAPOR_...`` variables). Exit status: 0
done, 1 operational failure, 2 invalid settings/usage, 130 interrupted; an error is one line on
stderr (a usage error: argparse's usage line, then the error), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import re
import socket
import sys
import traceback
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.letter.auth import InvalidAccount, StaffStore
from channels.sms.message import Bridge
from gateway import bootstrap, filegc, logs, queries, status_feed, tracking
from gateway.crypto import check_keys, load_keys, missing_key_files
from gateway.domain import Channel
from gateway.errors import ConfigError, IntakeUnavailable, QuarantineNotFound
from gateway.filestore import CorruptFile
from gateway.intake import utcnow
from gateway.outbox import (
    Refused,
    StuckEvent,
    outbox_status,
    prune_cutoff,
    prune_published,
    republish,
    restore,
    set_aside,
    set_aside_events,
    stuck_events,
)
from gateway.reseal import dumps, reseal
from gateway.settings import ENV_PREFIX, Settings, config_path, load_settings
from gateway.sms_store import prune as prune_sms
from gateway.sms_store import requeue_failed
from gateway.storage import migrate as migrations
from gateway.storage.database import create_engine
from gateway.storage.schema import quarantine

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="lapor-gateway", description=__doc__.split("\n")[0])
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the HTTP server and the outbox relay")
    sub.add_parser("relay", help="run the outbox relay alone (serve with outbox.enabled = false)")
    sub.add_parser("migrate", help="create or upgrade the database tables")
    sub.add_parser("check-config", help="validate and print the effective settings (masked)")
    q = sub.add_parser("quarantine", help="messages that could not be parsed")
    qsub = q.add_subparsers(dest="action", required=True)
    ql = qsub.add_parser("list", help="open entries, oldest first")
    ql.add_argument("--all", action="store_true", help="include resolved entries")
    qs = qsub.add_parser("show", help="one entry with its raw message")
    qs.add_argument("id", type=_entry_id)
    qs.add_argument("--reveal", action="store_true", help="do not mask NIK and phone numbers")
    qr = qsub.add_parser("replay", help="parse entries again (after a parser fix)")
    qr.add_argument("ids", type=_entry_id, nargs="*",
                    help="entries to replay (default: every open one); one already resolved is"
                    " said so and left as it is")
    d = sub.add_parser("dedup", help="why messages were linked to a complaint")
    dsub = d.add_subparsers(dest="action", required=True)
    ds = dsub.add_parser(
        "show",
        help="every message linked to a tracking ID, with tier and score",
        description="Every dedup decision of the complaint with this tracking ID (the"
        " complaint's own or one a message that joined it was told): when the message arrived,"
        " its channel, the tier (new, retry, similar), the identity kind that recognised its"
        " sender, the similarity score (for a new complaint: the best score against the"
        " person's earlier complaints, with how far below dedup.similarity_threshold it"
        " stayed), the number of candidates and the raw inbound id; under a new complaint of"
        " the same matter as a closed one, that one's tracking ID. Under a decision, each"
        " identity of its message that was already linked to another NIK's person (left"
        " there: identity_conflicts), by kind and persons, never its value.",
    )
    ds.add_argument("tracking_id")
    st = sub.add_parser("status", help="status changes the routing core sent")
    stsub = st.add_subparsers(dest="action", required=True)
    sts = stsub.add_parser(
        "show", help="a complaint's status and every change received for it, oldest first"
    )
    sts.add_argument("tracking_id")
    sts.add_argument(
        "--code", action="store_true",
        help="also print the ID's follow-up code (what adds to the complaint on the web): for a"
        " citizen who lost the receipt, once the help desk has checked who they are",
    )
    o = sub.add_parser("outbox", help="events waiting for publication")
    osub = o.add_subparsers(dest="action", required=True)
    osub.add_parser("status", help="pending events, oldest age, per channel")
    rp = osub.add_parser(
        "republish",
        help="queue published events again (the routing core lost them): the relays send them"
        " again, oldest first, with the same message_id",
    )
    rp.add_argument("--since", required=True, type=_moment,
                    help="first commit time to send again, ISO 8601 with its offset"
                    " (2026-12-01T00:00+07:00)")
    rp.add_argument("--until", type=_moment, default=None,
                    help="send again only events committed before this time (default: up to now)")
    rp.add_argument("--channel", choices=[c.value for c in Channel], default=None,
                    help="only this channel's events")
    rp.add_argument("--dry-run", action="store_true", help="change nothing, say what would go")
    pr = osub.add_parser(
        "prune",
        help="delete the events published longer ago than outbox.keep_published (serve does it"
        " every outbox.prune_interval); republish cannot reach them any more",
    )
    pr.add_argument("--dry-run", action="store_true", help="delete nothing, count what would go")
    un = osub.add_parser(
        "unopenable",
        help="the pending events no data key of this process opens (damaged, or sealed under a"
        " key no replica has), with their complaint's tracking ID, as JSON",
    )
    un.add_argument("--set-aside", action="store_true",
                    help="list the events set aside instead, with whether they open now")
    sa = osub.add_parser(
        "set-aside",
        help="move pending events no data key opens out of the outbox (table outbox_set_aside),"
        " one transaction each, so the relays stop trying them; `outbox restore` puts one back",
    )
    sa.add_argument("message_ids", nargs="+", metavar="MESSAGE_ID")
    sa.add_argument("--reason", default=None, help="why, kept with the event")
    sa.add_argument("--force", action="store_true",
                    help="set aside an event that does open with this process's data keys too")
    rs = osub.add_parser(
        "restore",
        help="put events set aside back in the outbox, pending, with their message_id and body"
        " (after the key that sealed them was added to LAPOR_SECURITY__PREVIOUS_DATA_KEYS)",
    )
    rs.add_argument("message_ids", nargs="+", metavar="MESSAGE_ID")
    rs.add_argument("--force", action="store_true",
                    help="restore an event that still opens with none of this process's keys")
    sm = sub.add_parser("sms", help="the SMS channel's replies")
    smsub = sm.add_subparsers(dest="action", required=True)
    rq = smsub.add_parser(
        "requeue",
        help="queue again the replies given up (failed: the bridge did not take them within"
        " sms.sender_give_up_after), so that the senders try them at once",
    )
    rq.add_argument("--since", required=True, type=_moment,
                    help="replies queued at this time or later, ISO 8601 with its offset"
                    " (2026-12-01T00:00+07:00)")
    rq.add_argument("--bridge", choices=[b.value for b in Bridge], default=None,
                    help="only this bridge's replies")
    rq.add_argument("--dry-run", action="store_true", help="change nothing, count them")
    sp = smsub.add_parser(
        "prune",
        help="delete replies older than sms.keep_replies that are no longer pending (but the"
        " receipts and status messages of complaints still open), and parts"
        " of long messages joined more than sms.keep_fragments ago (serve does it every"
        " outbox.prune_interval)",
    )
    sp.add_argument("--dry-run", action="store_true", help="delete nothing, count them")
    k = sub.add_parser("keys", help="the data key: seal again under the current one")
    ksub = k.add_subparsers(dest="action", required=True)
    ksub.add_parser(
        "reseal",
        help="seal under the current data key every stored value and file that is not (after a"
        " rotation, or rows stored before sealing); run until it reports 0, then drop the"
        " previous keys",
    )
    f = sub.add_parser("files", help="the file store")
    fsub = f.add_subparsers(dest="action", required=True)
    gc = fsub.add_parser(
        "gc",
        help="delete the files no row refers to (left by refused submissions) once they are"
        " older than the grace, and leftover temporaries",
    )
    gc.add_argument("--dry-run", action="store_true", help="delete nothing, say what it would")
    gc.add_argument(
        "--grace-hours",
        type=float,
        default=None,
        help="keep every file written within this many hours (at least 1; default:"
        " storage.gc_grace, 24 h)",
    )
    st = sub.add_parser("staff", help="front-desk staff accounts (letter channel)")
    stsub = st.add_subparsers(dest="action", required=True)
    sc = stsub.add_parser(
        "create", help="add an account; the password is read from the terminal or stdin"
    )
    sc.add_argument("--username", required=True)
    sc.add_argument("--role", required=True, choices=["clerk", "supervisor"])
    stsub.add_parser("list", help="every account with its role and state")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"lapor-gateway: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.logging.level, settings.logging.format)
    if args.command == "check-config":
        try:
            fingerprints = check_keys(settings)
        except ConfigError as exc:
            print(f"lapor-gateway: {exc}", file=sys.stderr)
            return 2
        shown = settings.masked()
        # The keys stay masked; their fingerprints tell whether two replicas hold the same.
        shown["security"]["key_fingerprints"] = fingerprints
        print(json.dumps(shown, indent=2, ensure_ascii=False))
        print(f"lapor-gateway: {_settings_source()}", file=sys.stderr)
        return 0
    missing = _missing_sqlite_file(settings)
    if missing is not None and args.command != "migrate":
        # Not made here: a mistyped path would become a new, empty database. A relative path
        # (the default, var/lapor.db) is named in full: run from another directory, the
        # command looks for the database (and config/gateway.toml) there.
        where = str(missing)
        if not missing.is_absolute():
            where = f"{missing.absolute()} ({missing} in the working directory)"
        print(
            f"lapor-gateway: no database at {where}: check LAPOR_DATABASE__URL, or run"
            " `lapor-gateway migrate` to create it there",
            file=sys.stderr,
        )
        return 1
    keys_missing = missing_key_files(settings)
    if keys_missing and args.command != "migrate":
        # Not made here either: run from another directory (var/secrets is relative, like the
        # default database), a command would seal and hash under a second pair of keys beside
        # a database whose rows the first pair sealed. Only `migrate` of a new database makes them.
        print(f"lapor-gateway: {_no_key_files(keys_missing)}; `lapor-gateway migrate` makes them"
              " only with a new database", file=sys.stderr)
        return 1
    commands: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
        "serve": _serve,
        "relay": _relay,
        "migrate": _migrate,
        "quarantine": _quarantine,
        "outbox": _outbox,
        "dedup": _dedup,
        "status": _status,
        "staff": _staff,
        "keys": _keys,
        "files": _files,
        "sms": _sms,
    }
    try:
        loop = bootstrap.loop_factory(settings.http.event_loop)
        with asyncio.Runner(loop_factory=loop) as runner:
            return runner.run(commands[args.command](settings, args))
    except ConfigError as exc:  # the keys, read as the command starts
        print(f"lapor-gateway: {exc}", file=sys.stderr)
        return 2
    except (bootstrap.NotMigrated, migrations.UnknownRevision, migrations.ForeignKeysBroken) as exc:
        print(f"lapor-gateway: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # the database refused or could not be reached
        url = settings.masked()["database"]["url"]
        print(f"lapor-gateway: database {url}: {_database_error(exc)}", file=sys.stderr)
        return 1
    except IntakeUnavailable as exc:  # the intake's retry signal: its database failed
        url = settings.masked()["database"]["url"]
        print(f"lapor-gateway: database {url}: {_database_error(exc.__cause__ or exc)}",
              file=sys.stderr)
        return 1
    except OSError as exc:  # a connection refused or timed out, a port in use, a file
        whose = _whose(settings, exc)
        if not whose and args.command in ("serve", "relay") and isinstance(exc, socket.gaierror):
            # The address to listen on (the broker and the bridges are retried, never fatal).
            whose = f"http.host {settings.http.host}: "
        print(f"lapor-gateway: {whose}{_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _settings_source() -> str:
    """Where the effective settings come from: run from another directory, the command reads
    no file and shows the defaults; the names (never the values) of the variables set."""
    path = config_path(os.environ)
    source = (
        f"settings from {path.absolute()}"
        if path.is_file()
        else f"no {path} in {Path.cwd()}: the documented defaults"
    )
    names = sorted(n for n in os.environ if n.startswith(ENV_PREFIX) and n != "LAPOR_CONFIG")
    return f"{source}, overridden by {', '.join(names)}" if names else source


def _missing_sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file the settings name when it does not exist (only ``migrate`` makes it)."""
    url = make_url(settings.database.effective_url())
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database)
    return None if path.exists() else path


def _whose(settings: Settings, exc: OSError) -> str:
    """``database <url>: `` when the error is a failed connection to the database (asyncpg
    raises it bare), else nothing."""
    url = make_url(settings.database.effective_url())
    if url.get_backend_name() != "postgresql" or not url.host:
        return ""
    # asyncio's message names the address as resolved ('::1', 5432, 0, 0) or ('172.18.0.2',
    # 5432), the port saying which service; uvloop's names none ("Connection refused"), so the
    # driver's own frames in the traceback say it.
    by_address = re.search(rf"\('[^']*', {url.port or 5432}[,)]", str(exc))
    by_driver = any(
        "/asyncpg/" in frame.f_code.co_filename.replace("\\", "/")
        for frame, _ in traceback.walk_tb(exc.__traceback__)
    )
    if not (by_address or by_driver):
        return ""
    return f"database {settings.masked()['database']['url']}: "


def _database_error(exc: BaseException) -> str:
    """What the database (or the driver) said, in one line: the driver's own error under
    SQLAlchemy's; a timeout, which says nothing (``str(TimeoutError())`` is empty), named."""
    exc = getattr(exc, "orig", None) or exc
    if isinstance(exc, TimeoutError) and not str(exc).strip():
        return "no answer in time (TimeoutError)"
    return _one_line(exc)


def _no_key_files(missing: list[Path]) -> str:
    """The key files of the embedded SQLite default that are not there, the folder named in
    full as the database's path is (``var/secrets`` is relative to the working directory)."""
    folder = missing[0].parent
    where = str(folder)
    if not folder.is_absolute():
        where = f"{folder.absolute()} ({folder} in the working directory)"
    names = ", ".join(p.name for p in missing)
    env = " and ".join(f"LAPOR_SECURITY__{p.stem.upper()}" for p in missing)
    return (
        f"no key file {names} in {where}: set {env}, or run from the directory that holds the"
        " database's keys (security.generated_keys_dir)"
    )


def _one_line(exc: BaseException) -> str:
    """An error's first line (SQLAlchemy adds the statement and a link on the next ones)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


async def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    await bootstrap.serve(settings)
    return 0


async def _relay(settings: Settings, _args: argparse.Namespace) -> int:
    await bootstrap.run_relay(settings)
    return 0


_UNOPENED = (
    "lapor-gateway: a stored value opens with neither LAPOR_SECURITY__DATA_KEY nor any of"
    " LAPOR_SECURITY__PREVIOUS_DATA_KEYS: set the key that sealed it among the previous keys and"
    " run again"
)


async def _keys(settings: Settings, _args: argparse.Namespace) -> int:
    gateway = bootstrap.build(settings)
    try:
        await bootstrap.check_migrated(gateway)
        report = await reseal(gateway.engine, gateway.keys, gateway.files)
    except (InvalidTag, CorruptFile):
        print(f"{_UNOPENED} (what was done so far is kept)", file=sys.stderr)
        return 1
    finally:
        await gateway.close()
    print(dumps(report))
    # "0" only when nothing is left under a previous key: rows changed during the run count.
    print(f"{report.total} sealed again under the current data key or left for the next run")
    return 0


async def _files(settings: Settings, args: argparse.Namespace) -> int:
    hours = args.grace_hours
    if hours is None:
        hours = settings.storage.gc_grace / 3600
    try:
        grace = timedelta(hours=hours)
    except (ValueError, OverflowError):  # NaN, infinite or beyond any date
        grace = timedelta(0)
    if grace < filegc.MIN_GRACE:
        print(
            "lapor-gateway: --grace-hours must be a number of hours, at least 1: requests in flight"
            " hold files that no row refers to yet",
            file=sys.stderr,
        )
        return 2
    max_age = settings.web.csrf_max_age
    if grace.total_seconds() < max_age:
        print(
            f"lapor-gateway: the grace is shorter than web.csrf_max_age ({max_age:g} s): the"
            " attachments a refused form keeps for the citizen may be deleted before it is sent",
            file=sys.stderr,
        )
    gateway = bootstrap.build(settings)
    try:
        await bootstrap.check_migrated(gateway)
        report = await filegc.collect(
            gateway.engine, gateway.files, gateway.keys, grace, dry_run=args.dry_run
        )
    except (InvalidTag, CorruptFile):
        print(f"{_UNOPENED} (nothing was deleted)", file=sys.stderr)
        return 1
    finally:
        await gateway.close()
    print(filegc.summary(report))
    return 0


async def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    # No migration reads a key, and the job that runs it (docker-compose.yml's `migrate`) is given
    # the database settings only; the embedded SQLite default's keys are made here, with a new
    # database only: beside one that has tables (run from another directory), new keys would
    # open none of its rows, and every later command would use them.
    missing = missing_key_files(settings)
    if settings.database.is_sqlite and not missing:
        load_keys(settings)  # checked: a key that is not one fails here, naming it
    engine = create_engine(settings.database)
    try:
        if missing:
            if await migrations.current_revision(engine) is None:
                load_keys(settings)
            else:
                print(f"lapor-gateway: {_no_key_files(missing)}; not made for a database that"
                      " already has tables (its rows were sealed under other keys)",
                      file=sys.stderr)
        await migrations.upgrade(engine)
        print(f"database at migration {await migrations.current_revision(engine)}")
    finally:
        await engine.dispose()
    return 0


def _print_json(data: Any) -> None:
    """Counts and times, no personal data: printed as they are (the masks would take the
    digits of a time, ``…52.096123+00:00``, for a phone number)."""
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


# Fields of a quarantine entry that are ids, never personal data: shown as they are.
_ENTRY_IDS = frozenset({"raw_inbound_id", "sha256", "tracking_id"})


def _masked(value: Any) -> Any:
    """``value`` with NIK and phone numbers masked in its texts; times and numbers as they are."""
    if isinstance(value, str):
        return logs.mask_text(value)
    if isinstance(value, dict):
        return {k: v if k in _ENTRY_IDS else _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


async def _quarantine(settings: Settings, args: argparse.Namespace) -> int:
    gateway = bootstrap.build(settings)
    try:
        await bootstrap.check_migrated(gateway)
        if args.action == "list":
            rows = await gateway.intake.list_quarantine(include_resolved=args.all)
            for row in rows:
                state = "resolved" if row["resolved_at"] else "open"
                print(
                    f"{row['id']:>6}  {row['created_at']:%Y-%m-%d %H:%M}  {row['channel']:<8} "
                    f"{row['parser']:<14} {row['stage']:<12} {state:<8} "
                    f"{logs.mask_text(row['reason'])[:80]}"
                )
            print(f"{len(rows)} entries")
            return 0
        if args.action == "show":
            try:
                entry = await gateway.intake.show_quarantine(args.id)
            except QuarantineNotFound:
                # Masked: an operator may have pasted a NIK where the entry id goes.
                print(f"no quarantine entry {_entry_shown(args.id)}", file=sys.stderr)
                return 1
            except (InvalidTag, CorruptFile):
                print(_UNOPENED, file=sys.stderr)
                return 1
            body = entry.pop("body")
            entry["body"] = body.decode("utf-8", errors="replace")
            shown = entry if args.reveal else _masked(entry)
            print(json.dumps(shown, indent=2, ensure_ascii=False, default=str))
            return 0
        ids = args.ids or [r["id"] for r in await gateway.intake.list_quarantine()]
        if not ids:
            print("nothing to replay: no open quarantine entry")
            return 0
        failed = 0
        for entry_id in ids:
            shown = _entry_shown(entry_id)
            try:
                receipt = await gateway.intake.replay(entry_id, gateway.parsers)
            except QuarantineNotFound:
                # Run twice (a dropped terminal, a retried cron job), a replay finds the entry
                # it resolved: said, nothing done, not a failure. Only an id with no entry is.
                try:
                    resolved = await _quarantine_resolved(gateway.engine, entry_id)
                except SQLAlchemyError as exc:  # this entry only, as below
                    print(f"{shown}: not replayed, the database refused it"
                          f" ({type(exc).__name__})")
                    failed += 1
                    continue
                if resolved:
                    print(f"{shown}: already resolved, nothing done")
                else:
                    print(f"{shown}: no quarantine entry {shown}")
                    failed += 1
                continue
            except SQLAlchemyError as exc:  # this entry only: the others are still replayed
                print(f"{shown}: not replayed, the database refused it ({type(exc).__name__})")
                failed += 1
                continue
            except (InvalidTag, CorruptFile):
                print(f"{shown}: not replayed, its message opens with neither"
                      " LAPOR_SECURITY__DATA_KEY nor any of LAPOR_SECURITY__PREVIOUS_DATA_KEYS")
                failed += 1
                continue
            print(f"{shown}: {receipt.status.value} {receipt.tracking_id or ''}")
            failed += receipt.status.value == "quarantined"
        return 1 if failed else 0
    finally:
        await gateway.close()


def _entry_shown(entry_id: int) -> str:
    """A quarantine entry id as typed, masked like a tracking ID (:func:`_no_complaint`): a NIK
    pasted where the id goes is a whole number in range, which argparse takes."""
    return logs.mask_text(str(entry_id))


async def _quarantine_resolved(engine: AsyncEngine, entry_id: int) -> bool:
    """Whether quarantine entry ``entry_id`` exists and is resolved."""
    async with engine.connect() as conn:
        resolved = (
            await conn.execute(
                select(quarantine.c.resolved_at).where(quarantine.c.id == entry_id)
            )
        ).first()
    return resolved is not None and resolved.resolved_at is not None


def _no_complaint(tracking_id: str) -> int:
    """Say that no complaint has ``tracking_id``: masked, an operator may have pasted a NIK or
    a phone number where the tracking ID goes."""
    print(f"no complaint with tracking ID {logs.mask_text(tracking_id)}", file=sys.stderr)
    return 1


async def _dedup(settings: Settings, args: argparse.Namespace) -> int:
    gateway = bootstrap.build(settings)
    try:
        await bootstrap.check_migrated(gateway)
        rows = await gateway.intake.dedup_history(args.tracking_id)
    finally:
        await gateway.close()
    if not rows:
        return _no_complaint(args.tracking_id)
    threshold = settings.dedup.similarity_threshold
    for row in rows:
        score, below = "", ""
        if row["score"] is not None and row["tier"] == "new":
            # How close the message came to joining an earlier complaint of the person.
            score = f"best={row['score']:.3f}"
            gap = threshold - row["score"]
            below = (
                f"  below threshold {threshold:.3f} by {gap:.3f}"
                if gap > 0
                else f"  (threshold now {threshold:.3f}: decided under a higher one)"
            )
        elif row["score"] is not None:
            score = f"score={row['score']:.3f}"
        print(
            f"{row['received_at']:%Y-%m-%d %H:%M}  {row['channel']:<8} {row['tier']:<8} "
            f"via={row['identity_kind'] or '-':<9} {score:<12} candidates={row['candidates']}  "
            f"raw={row['raw_inbound_id']}{below}"
        )
        if row["tier"] == "new" and row["matched_tracking_id"]:
            repeated = tracking.display(row["matched_tracking_id"])
            print(f"    repeats {repeated}, closed: the same matter reported again")
        if row["tier"] == "followup" and row["matched_tracking_id"]:
            named = tracking.display(row["matched_tracking_id"])
            print(f"    named {named}, which its sender holds: added as a follow-up")
        for c in row["conflicts"]:
            print(
                f"    conflict: its {c['kind']} was already linked to another NIK's person"
                f" ({c['person_id']}), left there; the message went to {c['claimed_by_person_id']}"
            )
    return 0


async def _status(settings: Settings, args: argparse.Namespace) -> int:
    gateway = bootstrap.build(settings)
    try:
        await bootstrap.check_migrated(gateway)
        found = await gateway.intake.status(args.tracking_id)
        # The ID of a message that joined a complaint (quarantined then replayed, or told an ID
        # of its own): the complaint's changes, all of them, for the operator.
        joined = (
            await queries.complaint_tracking_id(gateway.engine, found.tracking_id)
            if found
            else None
        )
        changes = await status_feed.history(gateway.engine, joined) if joined else []
    finally:
        await gateway.close()
    if found is None:
        return _no_complaint(args.tracking_id)
    updated = f"{found.updated_at:%Y-%m-%d %H:%M}" if found.updated_at else "-"
    print(
        f"{tracking.display(found.tracking_id)}  status={found.status}  "
        f"received={found.received_at:%Y-%m-%d %H:%M}  updated={updated}  "
        f"agency={found.agency or '-'}  (UTC)"
    )
    if args.code:
        code = tracking.display_code(gateway.intake.followup_code(found.tracking_id))
        print(f"  follow-up code: {code}")
    if joined is not None and joined != found.tracking_id:
        print(
            f"  a message that joined {tracking.display(joined)}: its sender holds this ID, which "
            "shows what changed since it joined; the complaint's changes:"
        )
    for c in changes:
        print(
            f"{c.changed_at:%Y-%m-%d %H:%M}  {c.status:<16} "
            f"{'shown' if c.applied else 'older':<6} agency={c.agency or '-'}  "
            f"received={c.received_at:%Y-%m-%d %H:%M:%S}  message_id={c.message_id}"
        )
    return 0


def _entry_id(text: str) -> int:
    """A quarantine entry id: a whole number the database can hold (a larger one was an
    OverflowError traceback on SQLite, a "database refused it" on PostgreSQL)."""
    shown = logs.mask_text(repr(text))  # a NIK or phone number pasted where the id goes
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a quarantine entry id: {shown}") from None
    if not 1 <= value <= _MAX_ID:
        raise argparse.ArgumentTypeError(
            f"not a quarantine entry id: {shown} (ids run from 1, see `quarantine list`)"
        )
    return value


# The largest id a BIGINT (PostgreSQL) or INTEGER (SQLite) column holds.
_MAX_ID = 2**63 - 1


def _moment(text: str) -> datetime:
    """A command-line time: ISO 8601 with an explicit offset (WIB is +07:00), never a guess."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if moment.tzinfo is None:
        # The example from what was read: a date alone is midnight, and "2026-12-01+07:00" is
        # read as 07:00 without an offset.
        spec = "minutes" if moment.second == moment.microsecond == 0 else "auto"
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset: write it with one, e.g."
            f" {moment.isoformat(timespec=spec)}+07:00 for WIB"
        )
    return moment.astimezone(UTC)


async def _outbox(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "republish":
        return await _republish(settings, args)
    if args.action == "prune":
        return await _prune(settings, args)
    if args.action == "unopenable":
        return await _unopenable(settings, args)
    if args.action in ("set-aside", "restore"):
        return await _set_aside_or_restore(settings, args)
    gateway = bootstrap.build(settings)
    try:
        await bootstrap.check_migrated(gateway)
        status = await outbox_status(gateway.engine, count_published=True, count_set_aside=True)
        now = gateway.clock()
        _print_json(
            {
                "pending": status.pending,
                "published": status.published,
                "unopenable": status.unopenable,
                "set_aside": status.set_aside,
                "lag_seconds": round(status.lag_seconds(now), 3),
                "by_channel": {
                    ch: {"pending": n, "oldest": oldest.isoformat()}
                    for ch, (n, oldest) in sorted(status.by_channel.items())
                },
            }
        )
    finally:
        await gateway.close()
    return 0


async def _sms(settings: Settings, args: argparse.Namespace) -> int:
    gateway = bootstrap.build(settings)
    try:
        await bootstrap.check_migrated(gateway)
        now = gateway.clock()
        if args.action == "prune":
            sms = settings.sms
            replies, fragments = await prune_sms(
                gateway.engine, sms.keep_replies, sms.keep_fragments, now, args.dry_run
            )
            done = "would delete" if args.dry_run else "deleted"
            print(f"{done} {replies} replies and {fragments} joined parts of long messages")
            return 0
        count = await requeue_failed(gateway.engine, args.since, args.bridge, now, args.dry_run)
    finally:
        await gateway.close()
    if args.dry_run:
        print(f"would queue again {count} failed replies")
    else:
        print(
            f"queued again {count} failed replies; the senders of the running replicas try them"
            " at their next look (sms.sender_poll_interval)"
        )
    return 0


async def _republish(settings: Settings, args: argparse.Namespace) -> int:
    if args.until is not None and args.until <= args.since:
        print("--until must be later than --since", file=sys.stderr)
        return 2
    gateway = bootstrap.build(settings)
    try:
        await bootstrap.check_migrated(gateway)
        now = gateway.clock()
        found = await republish(
            gateway.engine, args.since, args.until, args.channel, now, args.dry_run,
            keep=settings.outbox.keep_published,
        )
    finally:
        await gateway.close()
    cutoff = prune_cutoff(settings.outbox.keep_published, now)
    if cutoff is not None and args.since < cutoff:
        print(
            f"events last published before {cutoff.isoformat()} are not sent again"
            " (outbox.keep_published: the routing core may have forgotten their ids)",
            file=sys.stderr,
        )
    span = (
        f" committed {found.first_created_at.isoformat()} to {found.last_created_at.isoformat()}"
        if found.first_created_at and found.last_created_at
        else ""
    )
    if args.dry_run:
        print(f"would queue again {found.count} published events{span}")
    else:
        print(
            f"queued again {found.count} published events{span}; the relays send them at their"
            " next look at the outbox, oldest first, with their message_id (consumers drop"
            " the ones they already have)"
        )
    return 0


async def _prune(settings: Settings, args: argparse.Namespace) -> int:
    keep = settings.outbox.keep_published
    gateway = bootstrap.build(settings)
    try:
        await bootstrap.check_migrated(gateway)
        now = gateway.clock()
        count = await prune_published(gateway.engine, keep, now, dry_run=args.dry_run)
    finally:
        await gateway.close()
    cutoff = prune_cutoff(keep, now)
    if cutoff is None:
        print(f"outbox.keep_published = {keep:g}: published events are kept for ever",
              file=sys.stderr)
    _print_json(
        {
            "dry_run": args.dry_run,
            "would_remove" if args.dry_run else "removed": count,
            "published_before": cutoff.isoformat() if cutoff else None,
            "keep_published_seconds": keep,
        }
    )
    return 0


def _event_json(event: StuckEvent) -> dict[str, Any]:
    """One event as the outbox commands print it. Ids as they are (masking could take a run of
    digits in a message_id for a phone number); the free texts masked."""
    shown: dict[str, Any] = {
        "message_id": event.message_id,
        "channel": event.channel,
        "event": event.event,
        "tracking_id": event.tracking_id,
        "created_at": event.created_at.isoformat(),
        "attempts": event.attempts,
        "last_error": None if event.last_error is None else logs.mask_text(event.last_error),
    }
    if event.set_aside_at is not None:
        shown["set_aside_at"] = event.set_aside_at.isoformat()
        shown["reason"] = None if event.reason is None else logs.mask_text(event.reason)
        shown["opens_now"] = event.opens
    return shown


async def _unopenable(settings: Settings, args: argparse.Namespace) -> int:
    """Print the events as one JSON document, written as they are found: the outbox is read in
    batches, and neither it nor the list is held whole."""
    gateway = bootstrap.build(settings)
    key = "set_aside" if args.set_aside else "unopenable"
    count = opening = 0
    try:
        await bootstrap.check_migrated(gateway)
        found = (
            set_aside_events(gateway.engine, gateway.keys)
            if args.set_aside
            else stuck_events(gateway.engine, gateway.keys)
        )
        print("{")
        print(f'  "{key}": [', end="")
        async for event in found:
            if event.opens and not args.set_aside:
                opening += 1  # given back by a relay, but it opens here
                continue
            item = json.dumps(_event_json(event), ensure_ascii=False)
            print(("," if count else "") + "\n    " + item, end="")
            count += 1
    finally:
        await gateway.close()
    print("\n  ]," if count else "],")
    summary: dict[str, Any] = {"count": count}
    if not args.set_aside:
        summary["given_back_but_open_here"] = opening
    print(",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in summary.items()))
    print("}")
    if opening:
        print(
            f"{opening} pending event(s) a relay gave back open with this process's data keys: a"
            " replica runs with another LAPOR_SECURITY__DATA_KEY (runbook, LaporRelayDataKey);"
            " do not set them aside",
            file=sys.stderr,
        )
    return 0


async def _set_aside_or_restore(settings: Settings, args: argparse.Namespace) -> int:
    """Each event in a transaction of its own; a refused one changes nothing and the others are
    still done. Exit 1 when any was refused."""
    gateway = bootstrap.build(settings)
    done: list[dict[str, Any]] = []
    refused = 0
    try:
        await bootstrap.check_migrated(gateway)
        for message_id in dict.fromkeys(args.message_ids):
            try:
                if args.action == "set-aside":
                    event = await set_aside(
                        gateway.engine, gateway.keys, message_id, reason=args.reason,
                        force=args.force, clock=gateway.clock,
                    )
                else:
                    event = await restore(
                        gateway.engine, gateway.keys, message_id, force=args.force,
                        clock=gateway.clock,
                    )
            except Refused as exc:
                print(f"lapor-gateway: outbox {args.action} {exc}", file=sys.stderr)
                refused += 1
                continue
            except SQLAlchemyError as exc:  # this event only: the others are still tried
                print(f"lapor-gateway: outbox {args.action} {message_id}: the database refused"
                      f" it ({type(exc).__name__}); nothing changed", file=sys.stderr)
                refused += 1
                continue
            done.append(_event_json(event))
    finally:
        await gateway.close()
    if args.action == "set-aside":
        print(json.dumps({"set_aside": done}, indent=2, ensure_ascii=False))
    else:
        print(json.dumps({"restored": done}, indent=2, ensure_ascii=False))
        if done:
            print("the relays publish them at their next look at the outbox, with their"
                  " message_id", file=sys.stderr)
    return 1 if refused else 0


def _read_password() -> str | None:
    """The new password: asked twice on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("password again: "):
            print("lapor-gateway: the two passwords differ", file=sys.stderr)
            return None
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


async def _staff(settings: Settings, args: argparse.Namespace) -> int:
    engine = create_engine(settings.database)
    store = StaffStore(engine, settings.letter)
    try:
        await bootstrap.check_engine_migrated(engine)
        if args.action == "list":
            now = utcnow()
            accounts = await store.accounts()
            if not accounts:
                print("no accounts yet: `lapor-gateway staff create --username NAME --role"
                      " supervisor` makes the first")
            for a in accounts:
                locked = a.locked_until is not None and a.locked_until > now
                state = "disabled" if a.disabled else "locked" if locked else "active"
                last = f"{a.last_login_at:%Y-%m-%d %H:%M}" if a.last_login_at else "-"
                print(f"{a.username:<24} {a.role.value:<11} {state:<9} last login {last}")
            return 0
        password = _read_password()
        if password is None:
            return 2
        try:
            staff = await store.create_account(args.username, args.role, password)
        except InvalidAccount as exc:
            print(f"lapor-gateway: {exc.message[1]}", file=sys.stderr)
            return 2
        print(f"created {staff.role.value} {staff.username}")
        return 0
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
