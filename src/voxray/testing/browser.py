"""Render HTML in a real headless Chromium: screenshots and the DOM after scripts ran.

The HTML repr's test (``tests/test_html_repr.py``) checks what a notebook user would
see, so it renders the repr in Debian's ``chromium`` (``make test`` installs it when
``/usr/bin/chromium`` is missing). Each run gets a fresh profile directory, no network
services (no sync, component updates, background networking or QUIC) and a hard
timeout; the process group is killed if Chromium hangs.

``VOXRAY_CHROMIUM`` names another browser binary.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from ..errors import MissingDependencyError

__all__ = ["ChromiumError", "chromium_path", "dump_dom", "require_chromium", "screenshot"]

#: Where Debian's package puts it; looked for after ``VOXRAY_CHROMIUM`` and ``PATH``.
DEBIAN_CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


class ChromiumError(RuntimeError):
    """Chromium ran but failed (a crash, a timeout, no output); the message has the tail
    of its standard error. (A test helper's error, not one of the library's.)"""


def chromium_path() -> str | None:
    """The Chromium binary to run (``VOXRAY_CHROMIUM``, ``chromium`` on ``PATH``, then
    ``/usr/bin/chromium``), or None if there is none.

    >>> path = chromium_path()
    >>> path is None or os.access(path, os.X_OK)
    True
    """
    env = os.environ.get("VOXRAY_CHROMIUM")
    if env:
        return env if os.access(env, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return DEBIAN_CHROMIUM if os.access(DEBIAN_CHROMIUM, os.X_OK) else None


def require_chromium() -> str:
    """:func:`chromium_path`, or :class:`~voxray.MissingDependencyError` saying how to
    install it."""
    path = chromium_path()
    if path is None:
        where = os.environ.get("VOXRAY_CHROMIUM")
        what = (
            f"VOXRAY_CHROMIUM={where!r} is not an executable" if where else "it is not installed"
        )
        raise MissingDependencyError(
            f"Chromium is needed to render HTML in a real browser, and {what}: "
            "`make test` installs Debian's package when run as root, or run "
            "`apt-get install --no-install-recommends chromium` (or set VOXRAY_CHROMIUM)"
        )
    return path


def _url(page) -> str:
    return Path(page).resolve().as_uri()


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run Chromium with a fresh profile in its own process group; kill the group on a
    timeout."""
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="voxray-chromium-") as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise ChromiumError(
                f"Chromium did not finish within {timeout:g} s ({' '.join(args)}); "
                f"its stderr ended with: {_tail(err)}"
            ) from None
        finally:
            if proc.poll() is None:  # pragma: no cover - communicate returned
                os.killpg(proc.pid, signal.SIGKILL)
    done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if done.returncode != 0:
        raise ChromiumError(
            f"Chromium exited with status {done.returncode} ({' '.join(args)}); "
            f"its stderr ended with: {_tail(err)}"
        )
    return done


def _tail(err: bytes, lines: int = 8) -> str:
    text = err.decode("utf-8", "replace").strip().splitlines()
    useful = [line for line in text if "dbus" not in line.lower()]  # container noise
    return " | ".join(useful[-lines:]) or "(nothing)"


def screenshot(page, out, *, size: tuple[int, int] = (1000, 700), timeout: float = 60) -> Path:
    """Screenshot HTML file ``page`` as PNG ``out`` in a ``size`` (width, height) window at
    one device pixel per CSS pixel.

    For example (``matplotlib.image.imread`` reads the result as RGBA floats)::

        (tmp / "a.html").write_text('<body style="background:#123456">')
        png = screenshot(tmp / "a.html", tmp / "a.png", size=(200, 100))
        matplotlib.image.imread(png).shape  # (100, 200, 4)
    """
    out = Path(out).resolve()
    if out.exists():
        out.unlink()
    w, h = (int(n) for n in size)
    _run([f"--window-size={w},{h}", f"--screenshot={out}", _url(page)], timeout)
    if not out.is_file() or out.stat().st_size == 0:
        raise ChromiumError(f"Chromium exited without writing the screenshot {str(out)!r}")
    return out


def dump_dom(page, *, size: tuple[int, int] = (1000, 700), timeout: float = 60) -> str:
    """The DOM of HTML file ``page`` after its scripts ran (``--dump-dom``), laid out in a
    ``size`` window (scripts that measure the layout see that size)."""
    w, h = (int(n) for n in size)
    done = _run([f"--window-size={w},{h}", "--dump-dom", _url(page)], timeout)
    dom = done.stdout.decode("utf-8", "replace")
    if "<html" not in dom.lower():
        raise ChromiumError(f"Chromium printed no DOM for {str(page)!r}: {_tail(done.stderr)}")
    return dom
