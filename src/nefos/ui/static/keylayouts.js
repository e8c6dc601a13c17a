// The keyboard layouts a machine's console may have, as the physical keys that type each
// character: for a VNC server that takes key codes (QEMU's Extended Key Event), "Type
// this text" presses these keys, so that the guest's own layout turns them back into
// the very characters written (keysyms.js).
//
// The tables follow the Linux console keymaps of Debian's console-data: us, de-latin1,
// fr-latin1 and gr (whose Latin mode, the one a console starts in, is US). Each key is
// its KeyboardEvent.code, then what it types alone, with Shift and with AltGr (null:
// nothing we send). `dead` lists the characters whose key is a dead key there: it waits
// for the next key, and a Space after it gives the sign alone. tests/ui/test_keylayouts.py
// checks every entry against those keymap files, compiled by `loadkeys -b`.

// The letter rows as printed on the keyboard, onto the keys of a US keyboard's letter rows.
const ROWS = [
  ["KeyQ", "KeyW", "KeyE", "KeyR", "KeyT", "KeyY", "KeyU", "KeyI", "KeyO", "KeyP"],
  ["KeyA", "KeyS", "KeyD", "KeyF", "KeyG", "KeyH", "KeyJ", "KeyK", "KeyL", "Semicolon"],
  ["KeyZ", "KeyX", "KeyC", "KeyV", "KeyB", "KeyN", "KeyM"],
];

function letters(...rows) {
  const keys = {};
  rows.forEach((row, line) => {
    [...row].forEach((letter, index) => {
      keys[ROWS[line][index]] = [letter, letter.toUpperCase(), null];
    });
  });
  return keys;
}

const US_SIGNS = {
  Backquote: ["`", "~", null],
  Digit1: ["1", "!", null],
  Digit2: ["2", "@", null],
  Digit3: ["3", "#", null],
  Digit4: ["4", "$", null],
  Digit5: ["5", "%", null],
  Digit6: ["6", "^", null],
  Digit7: ["7", "&", null],
  Digit8: ["8", "*", null],
  Digit9: ["9", "(", null],
  Digit0: ["0", ")", null],
  Minus: ["-", "_", null],
  Equal: ["=", "+", null],
  BracketLeft: ["[", "{", null],
  BracketRight: ["]", "}", null],
  Backslash: ["\\", "|", null],
  Semicolon: [";", ":", null],
  Quote: ["'", '"', null],
  Comma: [",", "<", null],
  Period: [".", ">", null],
  Slash: ["/", "?", null],
};

const US = { keys: { ...letters("qwertyuiop", "asdfghjkl", "zxcvbnm"), ...US_SIGNS }, dead: "" };

const DE = {
  keys: {
    ...letters("qwertzuiop", "asdfghjkl", "yxcvbnm"),
    KeyQ: ["q", "Q", "@"],
    KeyE: ["e", "E", "¤"],
    KeyC: ["c", "C", "¢"],
    KeyM: ["m", "M", "µ"],
    Backquote: ["^", "°", null],
    Digit1: ["1", "!", null],
    Digit2: ["2", '"', "²"],
    Digit3: ["3", "§", "³"],
    Digit4: ["4", "$", null],
    Digit5: ["5", "%", null],
    Digit6: ["6", "&", null],
    Digit7: ["7", "/", "{"],
    Digit8: ["8", "(", "["],
    Digit9: ["9", ")", "]"],
    Digit0: ["0", "=", "}"],
    Minus: ["ß", "?", "\\"],
    Equal: [null, "`", null], // alone: the dead acute, not ASCII's '
    BracketLeft: ["ü", "Ü", null],
    BracketRight: ["+", "*", "~"],
    Semicolon: ["ö", "Ö", null],
    Quote: ["ä", "Ä", null],
    Backslash: ["#", "'", null],
    Comma: [",", ";", null],
    Period: [".", ":", null],
    Slash: ["-", "_", null],
    IntlBackslash: ["<", ">", "|"],
  },
  dead: "^`~",
};

const FR = {
  keys: {
    ...letters("azertyuiop", "qsdfghjklm", "wxcvbn"),
    Backquote: ["²", null, null],
    Digit1: ["&", "1", null],
    Digit2: ["é", "2", "~"],
    Digit3: ['"', "3", "#"],
    Digit4: ["'", "4", "{"],
    Digit5: ["(", "5", "["],
    Digit6: ["-", "6", "|"],
    Digit7: ["è", "7", "`"],
    Digit8: ["_", "8", "\\"],
    Digit9: ["ç", "9", "^"], // dead, as on BracketLeft
    Digit0: ["à", "0", "@"],
    Minus: [")", "°", "]"],
    Equal: ["=", "+", "}"],
    BracketLeft: ["^", null, null], // with Shift: the dead diaeresis, not ASCII's "
    BracketRight: ["$", "£", "¤"],
    Quote: ["ù", "%", null],
    Backslash: ["*", "µ", null],
    KeyM: [",", "?", null],
    Comma: [";", ".", null],
    Period: [":", "/", null],
    Slash: ["!", "§", null],
    IntlBackslash: ["<", ">", "|"],
  },
  dead: "~`^",
};

// gr's Latin mode is the US layout; its Greek letters sit behind a lock key, out of reach.
const GR = { keys: US.keys, dead: "" };

export const LAYOUTS = { us: US, de: DE, fr: FR, gr: GR };
export const DEFAULT_LAYOUT = "us";

const found = new Map();

// For each character of `layout` the key that types it: char -> { code, shift, altgr,
// dead }. Plain before Shift before AltGr, should a character be on two keys.
export function keysOf(layout) {
  if (found.has(layout)) return found.get(layout);
  const { keys, dead } = LAYOUTS[layout] || LAYOUTS[DEFAULT_LAYOUT];
  const chars = new Map([[" ", { code: "Space", shift: false, altgr: false, dead: false }]]);
  for (const level of [0, 1, 2]) {
    for (const [code, row] of Object.entries(keys)) {
      const char = row[level];
      if (char === null || chars.has(char)) continue;
      chars.set(char, { code, shift: level === 1, altgr: level === 2, dead: dead.includes(char) });
    }
  }
  found.set(layout, chars);
  return chars;
}
