// "Type this text": text as the key presses that make it arrive in the guest exactly,
// whatever keyboard layout the person's own computer has.
//
// Each character goes as its X keysym (the character itself, as RFB names it), never as
// a physical key: a physical key means a different character under each layout (Z is
// Y on a German keyboard), a keysym means one character everywhere. The VNC server
// turns keysyms into the guest's key codes with its own keymap; QEMU's is en-us unless
// the operator set another, and it drops the Shift its keymap says a character needs
// (`!` becomes the `1` key alone). So a character typed with Shift on a US keyboard is
// sent between Shift presses of its own. docs/ui.md tells the whole story.

import keysyms from "./vendor/novnc/core/input/keysymdef.js";
import KeyTable from "./vendor/novnc/core/input/keysym.js";

// What needs Shift on a US keyboard: capitals and the upper signs of the other keys.
const SHIFTED = new Set(`ABCDEFGHIJKLMNOPQRSTUVWXYZ~!@#$%^&*()_+{}|:"<>?`);
const SPECIAL = { "\n": KeyTable.XK_Return, "\t": KeyTable.XK_Tab };

// The key presses for `text`: [{ char, keysym, shift }], and the characters a US keymap
// has no key for (they are sent all the same: a guest with another keymap may have one).
export function keystrokes(text) {
  const strokes = [];
  const unusual = new Set();
  for (const char of text.replace(/\r\n?/g, "\n")) {
    const code = char.codePointAt(0);
    const keysym = SPECIAL[char] || keysyms.lookup(code);
    if (code > 0x7e || (code < 0x20 && !SPECIAL[char])) unusual.add(char);
    strokes.push({ char, keysym, shift: SHIFTED.has(char) });
  }
  return { strokes, unusual: [...unusual] };
}

const PAUSE_MS = 15; // between characters: the guest's PS/2 queue holds 16 bytes

// Presses and releases each key through noVNC's `rfb.sendKey(keysym, null, down)`: no
// physical key code (null), so noVNC sends a plain RFB KeyEvent even to a QEMU that
// takes scancodes. `onProgress(done, total)` after each character; `stopped()` ends it.
export async function typeText(rfb, strokes, onProgress = () => {}, stopped = () => false) {
  for (const [index, { keysym, shift }] of strokes.entries()) {
    if (stopped()) return false;
    if (shift) rfb.sendKey(KeyTable.XK_Shift_L, null, true);
    rfb.sendKey(keysym, null, true);
    rfb.sendKey(keysym, null, false);
    if (shift) rfb.sendKey(KeyTable.XK_Shift_L, null, false);
    onProgress(index + 1, strokes.length);
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  return true;
}
