"""mpoverlay/radio.py: radios are forked from a server that has vradio imported.

The server must really have it: Python 3.11's forkserver ignores a preload
that fails to import, and then every radio imported Bumble afresh (0.3 s of
CPU each, some 300 times a suite) with nothing to show for it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from mpoverlay import REPO_ROOT
from mpoverlay.radio import RadioProcess, forkserver, preloaded


def test_a_forked_process_starts_with_vradio_imported() -> None:
    context = forkserver()
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=preloaded, args=(send,))
    child.start()
    send.close()
    assert receive.recv() is True
    child.join(10)
    assert child.exitcode == 0


def test_the_preload_does_not_depend_on_the_callers_directory(tmp_path: Path) -> None:
    """A fresh interpreter in another directory, as a pytest-xdist worker is."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from mpoverlay.radio import forkserver, preloaded
        context = forkserver()
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=preloaded, args=(send,))
        child.start()
        send.close()
        print(receive.recv())
        child.join(10)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "True", out.stderr


def test_a_radio_serves_its_controllers_on_ptys() -> None:
    with RadioProcess(2) as radio:
        assert len(radio.ptys) == 2
        assert all(p.startswith("/dev/pts/") for p in radio.ptys)
