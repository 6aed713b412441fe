"""Drive a real Kannel 1.4.5 (bearerbox + smsbox + fakesmsc) from tests.

Installed by ``scripts/install-system-packages``. Every process is started by PID and stopped
by PID; the configuration and logs live in the test's temporary directory. Facts used here
(fakesmsc pacing, ``sent message N``, one client per fake SMSC) are in the shared Kannel notes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tests.support import free_port

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")
FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
GET_URL_QUERY = "p=%p&P=%P&b=%b&c=%c&C=%C&I=%I&t=%t&u=%u&i=%i"
SENDSMS_USER = "lapor"
SENDSMS_PASSWORD = "sendsms-test-password"
HTTP_SMSC_ID = "http-inject"
HTTP_SMSC_USER = "inject"
HTTP_SMSC_PASSWORD = "inject-test-password"


def installed() -> bool:
    """True when the Kannel binaries are there."""
    return all(p.exists() for p in (BEARERBOX, SMSBOX, FAKESMSC))


@dataclass
class Kannel:
    """One bearerbox + smsbox pair with a fake SMSC for MO injection."""

    workdir: Path
    get_url: str  # e.g. http://127.0.0.1:PORT/sms/kannel?  (the query is appended)
    retry: int = 3
    queue_delay: int = 1
    combine_timeout: int = 1800
    # A Kannel HTTP SMSC (system-type kannel) to inject MOs over HTTP, with its MTs going to
    # ``mt_sink_url`` (Kannel requires a send-url); None leaves it out.
    mt_sink_url: str | None = None
    http_smsc_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    smsbox_port: int = field(default_factory=free_port)
    sendsms_port: int = field(default_factory=free_port)
    smsc_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def config(self) -> str:
        """The kannel.conf used (also what the channel README documents)."""
        wd = self.workdir
        return f"""
group = core
admin-port = {self.admin_port}
admin-password = test
status-password = test
admin-interface = 127.0.0.1
admin-allow-ip = 127.0.0.1
smsbox-port = {self.smsbox_port}
box-allow-ip = 127.0.0.1
log-file = "{wd}/bearerbox.log"
log-level = 1
access-log = "{wd}/access.log"
sms-combine-concatenated-mo-timeout = {self.combine_timeout}

group = smsc
smsc = fake
smsc-id = inject
port = {self.smsc_port}
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.smsbox_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{wd}/smsbox.log"
log-level = 1
http-request-retry = {self.retry}
http-queue-delay = {self.queue_delay}
mo-recode = yes

{self._http_smsc()}
group = sendsms-user
username = {SENDSMS_USER}
password = {SENDSMS_PASSWORD}
max-messages = 1
concatenation = false

group = sms-service
keyword = default
catch-all = yes
get-url = "{self.get_url}{GET_URL_QUERY}"
omit-empty = yes
max-messages = 1
concatenation = false
"""

    def _http_smsc(self) -> str:
        if self.mt_sink_url is None:
            return ""
        return f"""
group = smsc
smsc = http
smsc-id = {HTTP_SMSC_ID}
system-type = kannel
port = {self.http_smsc_port}
connect-allow-ip = 127.0.0.1
smsc-username = {HTTP_SMSC_USER}
smsc-password = {HTTP_SMSC_PASSWORD}
send-url = "{self.mt_sink_url}"
# Only MTs addressed to this link (smsc=http-inject) go to the sink, never the fake SMSC's.
allowed-smsc-id = {HTTP_SMSC_ID}
"""

    @property
    def sendsms_url(self) -> str:
        """smsbox's sendsms endpoint (user ``SENDSMS_USER``)."""
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    @property
    def http_smsc_url(self) -> str:
        """Where the HTTP SMSC takes MOs (``username``, ``password``, ``from``, ``to``, ``text``)."""
        return f"http://127.0.0.1:{self.http_smsc_port}/"

    def start(self, timeout: float = 20.0) -> None:
        """Write the configuration, start bearerbox then smsbox, wait until both listen."""
        self.start_bearerbox(timeout)
        self.start_smsbox(timeout)

    def start_bearerbox(self, timeout: float = 20.0) -> None:
        """Write the configuration and start bearerbox alone (MOs queue there until smsbox)."""
        conf = self.workdir / "kannel.conf"
        conf.write_text(self.config())
        self._spawn([str(BEARERBOX), str(conf)], "bearerbox.out")
        _wait_port(self.smsbox_port, timeout)
        _wait_port(self.smsc_port, timeout)
        if self.mt_sink_url is not None:
            _wait_port(self.http_smsc_port, timeout)

    def start_smsbox(self, timeout: float = 20.0) -> None:
        """Start smsbox; it connects to bearerbox and delivers what is queued there."""
        self._spawn([str(SMSBOX), str(self.workdir / "kannel.conf")], "smsbox.out")
        _wait_port(self.sendsms_port, timeout)

    def _spawn(self, argv: list[str], out: str) -> None:
        with open(self.workdir / out, "wb") as sink:
            proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, cwd=self.workdir)
        self.processes.append(proc)

    def stop(self) -> None:
        """Stop what was started, smsbox first, by PID; kill what does not stop in 10 s."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.processes.clear()

    async def inject(
        self,
        *messages: str,
        count: int = 1,
        verbose: bool = False,
        wait_mt: float = 0.0,
        timeout: float = 60.0,
        until: Callable[[], Awaitable[bool]] | None = None,
    ) -> str:
        """Send MOs through the fake SMSC and return fakesmsc's output.

        ``messages`` are fakesmsc message arguments, ONE argv element each
        (``"<from> <to> text <text>"``, ``"<from> <to> ucs2 <urlenc>"`` ...); with
        several, fakesmsc picks one at random per message. It never exits by itself: wait for
        ``sent message <count>`` (and, with ``wait_mt``, for that long or an MT line), then
        SIGINT. With ``until``, SIGINT only once it says so: fakesmsc closing its socket while
        MT replies sit unread in it resets the connection, and bearerbox then loses the MOs it
        had not read yet.
        """
        argv = [
            str(FAKESMSC),
            "-H",
            "127.0.0.1",
            "-r",
            str(self.smsc_port),
            "-i",
            "0",
            "-m",
            str(count),
        ]
        if verbose:
            argv += ["-v", "0"]
        argv += list(messages)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        assert proc.stdout is not None
        output: list[str] = []
        done = f"sent message {count}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            sent_at: float | None = None
            while True:
                remaining = deadline - loop.time()
                if sent_at is not None:
                    remaining = min(remaining, sent_at + wait_mt - loop.time())
                if remaining <= 0:
                    break
                try:
                    line = await asyncio.wait_for(proc.stdout.readline(), remaining)
                except TimeoutError:
                    break
                if not line:
                    break
                text = line.decode("utf-8", "replace")
                output.append(text)
                if done in text and sent_at is None:
                    sent_at = loop.time()
                    if wait_mt <= 0:
                        break
                if sent_at is not None and "Got message" in text:
                    break
            while until is not None and loop.time() < deadline:
                if await until():
                    break
                await asyncio.sleep(0.1)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(proc.communicate(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        joined = "".join(output)
        assert done in joined, f"fakesmsc did not send {count}: {joined[-2000:]}"
        return joined


@dataclass
class PostUrlKannel(Kannel):
    """The harness's Kannel with a ``post-url`` sms-service (``get_url`` is its URL as it is,
    ``service_lines`` more lines of the group, such as ``send-sender = true``)."""

    service_lines: str = ""
    recode: bool = True

    def config(self) -> str:
        lines = []
        for line in super().config().splitlines():
            if line.startswith("get-url"):
                # A blank line would end the group: the extra lines only when there are some.
                line = "\n".join(filter(None, [f'post-url = "{self.get_url}"', self.service_lines]))
            if line == "mo-recode = yes" and not self.recode:
                line = "mo-recode = no"
            lines.append(line)
        return "\n".join(lines) + "\n"


def _wait_port(port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@contextlib.contextmanager
def running(workdir: Path, get_url: str, **kwargs: int) -> Iterator[Kannel]:
    """A started Kannel, stopped on exit."""
    kannel = Kannel(workdir, get_url, **kwargs)
    try:
        kannel.start()
        yield kannel
    finally:
        kannel.stop()


def ucs2(text: str) -> str:
    """A fakesmsc ``ucs2`` argument: URL-encoded UTF-16BE."""
    return quote(text.encode("utf-16-be"), safe="")


def data(raw: bytes) -> str:
    """A fakesmsc ``data`` / ``udh`` argument: URL-encoded bytes."""
    return quote(raw, safe="")


def concat_udh(reference: int, total: int, sequence: int) -> bytes:
    """A UDH with the 8-bit-reference concatenation element."""
    return bytes([5, 0, 3, reference, total, sequence])


def concat_udh16(reference: int, total: int, sequence: int) -> bytes:
    """A UDH with the 16-bit-reference concatenation element (IEI 08)."""
    return bytes([6, 8, 4, reference >> 8, reference & 0xFF, total, sequence])


MT_LINE = re.compile(r"Got message \d+: <(?P<msg>.*)>")
