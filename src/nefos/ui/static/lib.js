// The one import point for the component library (Preact with htm; docs/ui.md says why
// and which versions). Views are class components: Preact's hooks module imports
// "preact" by bare name, which a browser resolves only through an inline import map,
// and the page's policy runs no inline script.
import { Component, createRef, h, render } from "./vendor/preact-11.2.0.mjs";
import htm from "./vendor/htm-3.1.1.mjs";

export const html = htm.bind(h);
export { Component, createRef, render };
