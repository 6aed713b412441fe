"""Drive a real Gammu SMSD (Debian ``gammu-smsd``) on Gammu's dummy phone from tests.

The dummy phone driver (``model = dummy``) keeps the phone's SMS folders as files in a
directory: ``gammu savesms -folder 3`` puts a message into its inbox, as a modem receiving an SMS
would, and SMSD reads it from there, stores it in its own inbox (files backend) and runs the
project's ``config/gammu/lapor-onreceive`` with the message in its environment. Replies the
program queues with ``gammu-smsd-inject`` are "sent" by the dummy phone and land in SMSD's
sent folder, as smsbackup files. SMSD is started and stopped by PID; everything lives in the
test's temporary directory. Installed by ``scripts/install-system-packages``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
ONRECEIVE = ROOT / "config" / "gammu" / "lapor-onreceive"
GAMMU = "gammu"
SMSD = "gammu-smsd"
TOKEN = "gammu-test-token"


def installed() -> bool:
    """True when gammu, gammu-smsd, gammu-smsd-inject and curl are on the PATH."""
    return all(shutil.which(p) for p in (GAMMU, SMSD, "gammu-smsd-inject", "curl"))


@dataclass
class Gammu:
    """One SMSD on the dummy phone, posting to ``url`` through ``lapor-onreceive``."""

    workdir: Path
    url: str
    token: str = TOKEN
    phone_id: str = ""
    process: subprocess.Popen[bytes] | None = None
    _location: int = field(default=0)

    @property
    def phone(self) -> Path:
        return self.workdir / "phone"

    @property
    def spool(self) -> Path:
        return self.workdir / "spool"

    @property
    def smsdrc(self) -> Path:
        return self.workdir / "smsdrc"

    def config(self) -> str:
        """The SMSD configuration (files backend; what the channel README shows)."""
        return f"""[gammu]
device = {self.phone}
connection = none
model = dummy

[smsd]
service = files
phoneid = {self.phone_id}
inboxpath = {self.spool}/inbox/
outboxpath = {self.spool}/outbox/
sentsmspath = {self.spool}/sent/
errorsmspath = {self.spool}/error/
logfile = {self.workdir}/smsd.log
debuglevel = 1
runonreceive = {ONRECEIVE}
receivefrequency = 1
multiparttimeout = 2
commtimeout = 1
checksecurity = 0
checkbattery = 0
checksignal = 0
hangupcalls = 0
"""

    def start(self) -> None:
        for folder in range(1, 6):
            (self.phone / "sms" / str(folder)).mkdir(parents=True, exist_ok=True)
        for box in ("inbox", "outbox", "sent", "error"):
            (self.spool / box).mkdir(parents=True, exist_ok=True)
        self.smsdrc.write_text(self.config())
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "GAMMU_LAPOR_URL": self.url,
            "GAMMU_LAPOR_TOKEN": self.token,
            "GAMMU_SMSDRC": str(self.smsdrc),
        }
        with open(self.workdir / "smsd.out", "wb") as out:
            self.process = subprocess.Popen(
                [SMSD, "-c", str(self.smsdrc)], stdout=out, stderr=subprocess.STDOUT, env=env
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def receive(self, sender: str, text: str, *, unicode: bool = False, parts: int = 1) -> None:
        """Put an SMS from ``sender`` into the phone's inbox (``parts`` > 1: a long message)."""
        argv = [GAMMU, "-c", str(self.smsdrc), "savesms", "TEXT", "-folder", "3"]
        argv += ["-sender", sender, "-text", text]
        if unicode:
            argv.append("-unicode")
        if parts > 1:
            argv += ["-len", str(len(text))]
        subprocess.run(argv, check=True, capture_output=True, timeout=20)

    def sent(self) -> list[tuple[str, str]]:
        """(recipient, text) of every message SMSD has sent through the phone so far."""
        found = []
        for path in sorted((self.spool / "sent").iterdir()):
            number = text = ""
            for line in path.read_text("utf-8", "replace").splitlines():
                if line.startswith("Number = "):
                    number = line.split("=", 1)[1].strip().strip('"')
                elif line.startswith("Text00 = "):
                    text = bytes.fromhex(line.split("=", 1)[1].strip()).decode("utf-16-be")
            found.append((number, text))
        return found

    def log(self) -> str:
        path = self.workdir / "smsd.log"
        return path.read_text("utf-8", "replace") if path.exists() else ""

    def wait_log(self, needle: str, count: int = 1, timeout: float = 20.0) -> None:
        """Wait until the SMSD log shows ``needle`` ``count`` times."""
        deadline = time.monotonic() + timeout
        while self.log().count(needle) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"SMSD log never showed {needle!r} x{count}:\n{self.log()}")
            time.sleep(0.1)


@contextlib.contextmanager
def running(workdir: Path, url: str, **kwargs: str) -> Iterator[Gammu]:
    """A started SMSD, stopped (by PID) when the block ends."""
    smsd = Gammu(workdir, url, **kwargs)
    smsd.start()
    try:
        yield smsd
    finally:
        smsd.stop()
