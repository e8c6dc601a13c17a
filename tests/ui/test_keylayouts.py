"""The console's keyboard layouts (keylayouts.js) against the Linux console keymaps they
follow: Debian's console-data maps, compiled by kbd's ``loadkeys -b`` into the binary
format the test guest's ``loadkmap`` loads (scripts/ganeti-dev.sh puts the same files in
its initramfs).

Chromium runs the real modules; "type this text" sends its key presses into a recording
RFB client, and this test plays them through the keymap the way the Linux keyboard driver
does (Shift and AltGr select the keymap, a dead key waits for the next key, a Space gives
the sign alone): what comes out must be the text typed.
"""

from __future__ import annotations

import functools
import os
import shutil
import string
import struct
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Page

STATIC = Path(__file__).resolve().parents[2] / "src" / "nefos" / "ui" / "static"

# The console page's layouts and the console-data keymap each one follows (the same
# names as scripts/ganeti-dev.sh's GUEST_KEYMAPS).
KEYMAPS = {"us": "us", "de": "de-latin1", "fr": "fr-latin1", "gr": "gr"}

# Linux key numbers (linux/input-event-codes.h) of the keys the layouts use, by the
# KeyboardEvent.code noVNC turns into the same XT scancode.
KEY_NUMBERS = {
    "Digit1": 2, "Digit2": 3, "Digit3": 4, "Digit4": 5, "Digit5": 6, "Digit6": 7,
    "Digit7": 8, "Digit8": 9, "Digit9": 10, "Digit0": 11, "Minus": 12, "Equal": 13,
    "Tab": 15, "KeyQ": 16, "KeyW": 17, "KeyE": 18, "KeyR": 19, "KeyT": 20, "KeyY": 21,
    "KeyU": 22, "KeyI": 23, "KeyO": 24, "KeyP": 25, "BracketLeft": 26, "BracketRight": 27,
    "Enter": 28, "KeyA": 30, "KeyS": 31, "KeyD": 32, "KeyF": 33, "KeyG": 34, "KeyH": 35,
    "KeyJ": 36, "KeyK": 37, "KeyL": 38, "Semicolon": 39, "Quote": 40, "Backquote": 41,
    "ShiftLeft": 42, "Backslash": 43, "KeyZ": 44, "KeyX": 45, "KeyC": 46, "KeyV": 47,
    "KeyB": 48, "KeyN": 49, "KeyM": 50, "Comma": 51, "Period": 52, "Slash": 53,
    "Space": 57, "IntlBackslash": 86, "AltRight": 100,
}  # fmt: skip

# Key types of linux/keyboard.h, and what the kernel's dead keys (KT_DEAD) stand for.
KT_LATIN, KT_SPEC, KT_DEAD, KT_SHIFT, KT_LETTER = 0, 2, 4, 7, 11
K_ENTER = (KT_SPEC << 8) | 1
SHIFT, ALTGR = 0, 1  # KT_SHIFT values, also the bits of the keymap's index
DEAD = "`'^~\",'"
PRINTABLE = string.ascii_letters + string.digits + string.punctuation + " "


def bkeymap(name: str) -> dict[int, tuple[int, ...]]:
    """A console keymap compiled by ``loadkeys -b``: 'bkeymap', one byte per keymap
    (present or not), then each present keymap's 128 entries of 16 bits."""
    if not shutil.which("loadkeys") or not Path("/usr/share/keymaps").is_dir():
        reason = "no loadkeys or console-data (scripts/ganeti-dev.sh install adds them)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    data = subprocess.run(["loadkeys", "-b", name], capture_output=True, check=True).stdout
    assert data[:7] == b"bkeymap", name
    maps, offset = {}, 7 + 256
    for index, present in enumerate(data[7 : 7 + 256]):
        if present:
            maps[index] = struct.unpack("<128H", data[offset : offset + 256])
            offset += 256
    assert offset == len(data), name
    return maps


class Keyboard:
    """The Linux keyboard driver's part that turns key presses into characters, on one
    keymap: Shift and AltGr choose the keymap; a dead key waits, and a Space after it
    gives its sign alone (anything else would make an accented letter, which no test
    here wants); Enter."""

    def __init__(self, maps: dict[int, tuple[int, ...]]) -> None:
        self.maps = maps
        self.held = 0
        self.dead: str | None = None
        self.out = ""

    def press(self, code: str, down: bool) -> None:
        assert self.held in self.maps, f"no keymap for modifiers {self.held}: nothing typed"
        value = self.maps[self.held][KEY_NUMBERS[code]]
        kind, low = (value >> 8) & 0x0F, value & 0xFF
        if kind == KT_SHIFT:
            self.held = self.held | (1 << low) if down else self.held & ~(1 << low)
            return
        if not down:
            return
        if kind == KT_DEAD:
            assert self.dead is None, f"dead {DEAD[low]} right after dead {self.dead}"
            self.dead = DEAD[low]
            return
        if kind in (KT_LATIN, KT_LETTER):
            char = chr(low)
        elif value == K_ENTER:
            char = "\n"
        else:
            raise AssertionError(f"{code} gives {value:#06x}, which types nothing")
        if self.dead is not None:
            assert char == " ", f"dead {self.dead} then {char!r}: an accented letter"
            char, self.dead = self.dead, None
        self.out += char


class Static(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    handler = functools.partial(Static, directory=str(STATIC))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def page(browser: Any, static_url: str) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.goto(f"{static_url}/texts.js")  # any page of that origin, for the imports
    yield opened
    context.close()


def layouts(page: Page) -> dict[str, Any]:
    return page.evaluate("async () => (await import('/keylayouts.js')).LAYOUTS")


def typed(page: Page, text: str, layout: str, codes: bool) -> list[list[Any]]:
    """What "type this text" sends to a server with or without key codes: each
    ``rfb.sendKey`` call as [keysym, code, down]."""
    return page.evaluate(
        """async ([text, layout, codes]) => {
            const { keystrokes, typeText } = await import('/keysyms.js');
            const sent = [];
            const rfb = { _qemuExtKeyEventSupported: codes,
                          sendKey: (keysym, code, down) => sent.push([keysym, code, down]) };
            await typeText(rfb, keystrokes(text, layout).strokes);
            return sent;
        }""",
        [text, layout, codes],
    )


@pytest.mark.parametrize("layout", list(KEYMAPS))
def test_every_table_entry_is_what_the_console_keymap_types(page: Page, layout: str) -> None:
    maps = bkeymap(KEYMAPS[layout])
    assert maps[0][KEY_NUMBERS["ShiftLeft"]] == (KT_SHIFT << 8) | SHIFT
    assert maps[0][KEY_NUMBERS["AltRight"]] == (KT_SHIFT << 8) | ALTGR
    table = layouts(page)[layout]
    on_keys: set[str] = set()
    for code, row in table["keys"].items():
        for level, char in enumerate(row):
            if char is None:
                continue
            value = maps[level][KEY_NUMBERS[code]]
            kind, low = (value >> 8) & 0x0F, value & 0xFF
            where = f"{layout}: {code} at level {level} ({value:#06x})"
            if char in table["dead"]:
                assert kind == KT_DEAD and DEAD[low] == char, where + f" is not a dead {char}"
            else:
                assert kind in (KT_LATIN, KT_LETTER) and chr(low) == char, where + f" != {char}"
            on_keys.add(char)
    assert set(PRINTABLE) - {" "} <= on_keys, set(PRINTABLE) - on_keys


@pytest.mark.parametrize("layout", list(KEYMAPS))
def test_every_printable_character_arrives_through_the_keymap(page: Page, layout: str) -> None:
    keyboard = Keyboard(bkeymap(KEYMAPS[layout]))
    text = PRINTABLE + "\n" + "".join(reversed(PRINTABLE)) + "\n"
    for keysym, code, down in typed(page, text, layout, codes=True):
        assert code is not None, f"keysym {keysym:#x} sent without a key code"
        keyboard.press(code, down)
    assert keyboard.out == text
    assert keyboard.held == 0 and keyboard.dead is None


def test_the_wrong_layout_types_other_characters(page: Page) -> None:
    """A German guest reads what the US table sends for y and z as z and y."""
    keyboard = Keyboard(bkeymap(KEYMAPS["de"]))
    for _, code, down in typed(page, "yz", "us", codes=True):
        keyboard.press(code, down)
    assert keyboard.out == "zy"


def test_without_key_codes_the_keysyms_go_with_a_us_shift(page: Page) -> None:
    sent = typed(page, "zA!", "de", codes=False)
    shift, z, a, one = 0xFFE1, ord("z"), ord("A"), ord("!")
    assert sent == [
        [z, None, True], [z, None, False],
        [shift, None, True], [a, None, True], [a, None, False], [shift, None, False],
        [shift, None, True], [one, None, True], [one, None, False], [shift, None, False],
    ]  # fmt: skip


def test_characters_a_layout_lacks_are_named_and_go_as_keysyms(page: Page) -> None:
    found = page.evaluate(
        """async () => {
            const { keystrokes } = await import('/keysyms.js');
            return keystrokes('aλ€', 'fr');
        }"""
    )
    assert found["unusual"] == ["λ", "€"]
    assert [s["key"] and s["key"]["code"] for s in found["strokes"]] == ["KeyQ", None, None]
