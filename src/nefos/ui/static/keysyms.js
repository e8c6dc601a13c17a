// "Type this text": text as the key presses that make it arrive in the guest exactly,
// whatever keyboard layout the person's own computer has, and whatever the machine's.
//
// Where the VNC server takes key codes (QEMU's Extended Key Event, which noVNC uses when
// the server offers it), each character goes as the physical key(s) that type it under
// the machine's own layout, chosen on the console page (keylayouts.js): the guest's
// keymap turns them back into that character, and QEMU's own keymap (-k) plays no part.
// Elsewhere each character goes as its X keysym (the character itself, as RFB names it),
// which the VNC server turns into key codes with its own keymap: QEMU's is en-us unless
// the operator set another, and it drops the Shift its keymap says a character needs
// (`!` becomes the `1` key alone), so a character typed with Shift on a US keyboard is
// sent between Shift presses of its own. docs/ui.md tells the whole story.

import keysyms from "./vendor/novnc/core/input/keysymdef.js";
import KeyTable from "./vendor/novnc/core/input/keysym.js";
import { keysOf } from "./keylayouts.js";

// What needs Shift on a US keyboard: capitals and the upper signs of the other keys.
const SHIFTED = new Set(`ABCDEFGHIJKLMNOPQRSTUVWXYZ~!@#$%^&*()_+{}|:"<>?`);
const SPECIAL = { "\n": KeyTable.XK_Return, "\t": KeyTable.XK_Tab };

const SPECIAL_KEYS = {
  "\n": { code: "Enter", shift: false, altgr: false, dead: false },
  "\t": { code: "Tab", shift: false, altgr: false, dead: false },
};

// The key presses for `text` on a machine whose keyboard layout is `layout`: [{ char,
// keysym, shift, key }], where `shift` is what the keysym path needs (a US keyboard's
// Shift) and `key` the physical key under `layout` ({ code, shift, altgr, dead }, or null
// where it has none). `unusual`: the characters `layout` has no key for (sent as keysyms
// all the same: the guest may still make something of them).
export function keystrokes(text, layout = "us") {
  const keys = keysOf(layout);
  const strokes = [];
  const unusual = new Set();
  for (const char of text.replace(/\r\n?/g, "\n")) {
    const code = char.codePointAt(0);
    const keysym = SPECIAL[char] || keysyms.lookup(code);
    const key = SPECIAL_KEYS[char] || keys.get(char) || null;
    if (!key) unusual.add(char);
    strokes.push({ char, keysym, shift: SHIFTED.has(char), key });
  }
  return { strokes, unusual: [...unusual] };
}

// Whether `rfb` sends key codes the server uses as they are (noVNC learns it from the
// server's answer to its QEMU Extended Key Event pseudo-encoding).
export function sendsKeyCodes(rfb) {
  return Boolean(rfb._qemuExtKeyEventSupported);
}

const PAUSE_MS = 15; // between characters: the guest's PS/2 queue holds 16 bytes

// Presses and releases each key through noVNC's `rfb.sendKey(keysym, code, down)`: with
// key codes, the stroke's physical key between its Shift/AltGr presses (and a Space after
// a dead key); else its keysym (code null: noVNC then sends a plain RFB KeyEvent even to
// a QEMU that takes key codes). `onProgress(done, total)` after each character;
// `stopped()` ends it.
export async function typeText(rfb, strokes, onProgress = () => {}, stopped = () => false) {
  const physical = sendsKeyCodes(rfb);
  for (const [index, stroke] of strokes.entries()) {
    if (stopped()) return false;
    if (physical && stroke.key) pressKey(rfb, stroke);
    else pressKeysym(rfb, stroke);
    onProgress(index + 1, strokes.length);
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  return true;
}

function pressKey(rfb, { keysym, key }) {
  if (key.shift) rfb.sendKey(KeyTable.XK_Shift_L, "ShiftLeft", true);
  if (key.altgr) rfb.sendKey(KeyTable.XK_ISO_Level3_Shift, "AltRight", true);
  rfb.sendKey(keysym, key.code, true);
  rfb.sendKey(keysym, key.code, false);
  if (key.altgr) rfb.sendKey(KeyTable.XK_ISO_Level3_Shift, "AltRight", false);
  if (key.shift) rfb.sendKey(KeyTable.XK_Shift_L, "ShiftLeft", false);
  if (key.dead) {
    rfb.sendKey(KeyTable.XK_space, "Space", true);
    rfb.sendKey(KeyTable.XK_space, "Space", false);
  }
}

function pressKeysym(rfb, { keysym, shift }) {
  if (shift) rfb.sendKey(KeyTable.XK_Shift_L, null, true);
  rfb.sendKey(keysym, null, true);
  rfb.sendKey(keysym, null, false);
  if (shift) rfb.sendKey(KeyTable.XK_Shift_L, null, false);
}
