// Starts the app without an inline script, so the Content-Security-Policy
// can allow only this site's own files. Trunk writes the hashed names of the
// wasm-bindgen glue and the wasm module into this tag's data attributes
// (Trunk.toml: `pattern_script`).
const tag = document.querySelector('script[data-js][data-wasm]');

// Inside another page's frame, the sign-in and sign-out buttons could be
// clickjacked: GitHub Pages sends no framing headers, and a <meta> CSP
// cannot carry frame-ancestors. So the app does not start in a frame.
if (window.top !== window.self) {
  document.querySelector('.shell.prerendered')?.remove();
  const note = document.createElement('p');
  note.className = 'noscript';
  note.id = 'framed';
  note.textContent = 'This page signs you in with Bitbucket, so it does not run inside another page. Open it in a tab of its own.';
  document.body.append(note);
  throw new Error('oauth-dance does not run in a frame');
}

// The app's first need is config.json: ask for it now, while the wasm loads,
// with the same options the app's own requests use. The app takes this
// request over once (src/api.rs, `take_early_config`); a retry fetches anew.
// Not on a return from Bitbucket, though: then the address holds the code,
// and the app takes it out of the address bar before any request is made.
const returning = /[?&](code|state|error)=/.test(location.search);
try {
  if (tag.dataset.config && !returning) {
    const url = new URL(tag.dataset.config, document.baseURI).href;
    const abort = new AbortController();
    const reply = fetch(url, {
      cache: 'no-store',
      credentials: 'omit',
      mode: 'cors',
      redirect: 'error',
      referrerPolicy: 'no-referrer',
      signal: abort.signal,
    });
    // The app reports a failure; this keeps the console free of an unhandled one.
    reply.catch(() => {});
    globalThis.danceEarlyConfig = { url, reply, abort };
  }
} catch {
  // Only a head start: without it the app fetches config.json itself.
}

try {
  const { default: init } = await import(tag.dataset.js);
  await init({ module_or_path: tag.dataset.wasm });
} catch (error) {
  console.error('oauth-dance failed to start', error);
  // The built-in first screen's button can't work without the app.
  document.querySelector('.shell.prerendered')?.remove();
  const note = document.createElement('p');
  note.className = 'noscript';
  note.textContent = 'This page could not start. Please reload it; if that does not help, your browser may be too old.';
  document.body.append(note);
}
