"""upstream.lock parsing."""

from pathlib import Path

import pytest

from mpoverlay import REPO_ROOT
from mpoverlay.lock import LockError, load_lock, parse_lock

GOOD = """
[micropython]
url = "https://github.com/micropython/micropython"
ref = "v1.28.0"
commit = "E0E9FBB17ED6FD06BB76E266AE554784C9C80804"

[submodules."lib/btstack"]
url = "https://github.com/bluekitchen/btstack"
commit = "77e752abd6a0992334047a48038a5a3960e5c6bc"
builds = ["unix", "rp2"]

[submodules."lib/pico-sdk"]
url = "https://github.com/raspberrypi/pico-sdk"
commit = "a1438dff1d38bd9c65dbd693f0e5db4b9ae91779"
builds = ["rp2"]
"""


def test_parses_pins_and_normalises_commit_case() -> None:
    lock = parse_lock(GOOD)
    assert lock.micropython.commit == "e0e9fbb17ed6fd06bb76e266ae554784c9c80804"
    assert lock.micropython.ref == "v1.28.0"
    assert lock.micropython.name == "micropython"
    assert [p.path for p in lock.for_build("unix")] == ["lib/btstack"]
    assert [p.path for p in lock.for_build("rp2")] == ["lib/btstack", "lib/pico-sdk"]
    assert lock.submodule("lib/pico-sdk").name == "pico-sdk"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "missing [micropython]"),
        ("[micropython]\nurl = 'x'\n", "missing or non-string 'commit'"),
        ("[micropython]\nurl = 'x'\ncommit = 'abc'\n", "40 hex digits"),
        ("[micropython\n", "not valid TOML"),
        (GOOD.replace('builds = ["rp2"]', 'builds = "rp2"'), "'builds' must be a list"),
    ],
)
def test_rejects_malformed_lock(text: str, message: str) -> None:
    with pytest.raises(LockError, match=message.replace("[", r"\[")):
        parse_lock(text)


def test_repository_lock_pins_v1_28_0() -> None:
    lock = load_lock(REPO_ROOT / "upstream.lock")
    assert lock.micropython.ref == "v1.28.0"
    assert lock.micropython.commit.startswith("e0e9fbb17ed6")
    unix = {p.path for p in lock.for_build("unix")}
    assert {"lib/btstack", "lib/mynewt-nimble", "lib/micropython-lib"} <= unix
    assert all(p.url.startswith("https://github.com/") for p in lock.submodules)
    assert Path(REPO_ROOT / "upstream.lock").read_text().count("commit =") == 1 + len(
        lock.submodules
    )
