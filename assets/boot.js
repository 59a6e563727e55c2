// Starts the app without an inline script, so the Content-Security-Policy
// can allow only this site's own files. Trunk writes the hashed names of the
// wasm-bindgen glue and the wasm module into this tag's data attributes
// (Trunk.toml: `pattern_script`).
const tag = document.querySelector('script[data-js][data-wasm]');
try {
  const { default: init } = await import(tag.dataset.js);
  await init({ module_or_path: tag.dataset.wasm });
} catch (error) {
  console.error('oauth-dance failed to start', error);
  const note = document.createElement('p');
  note.className = 'noscript';
  note.textContent = 'This page could not start. Please reload it; if that does not help, your browser may be too old.';
  document.body.append(note);
}
