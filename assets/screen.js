// Picks the first screen before the browser paints anything, and starts the
// app once that screen is on show, without an inline script (so the
// Content-Security-Policy can allow only this site's own files).
// index.html already holds the app's two possible first screens, rendered
// at build time from its own views (src/prerender.rs): the landing page, and
// "Signing you in…". This classic script in <head> runs before <body> is
// parsed, so the right one is on screen from the first paint, never the
// landing page for a moment on a return from Bitbucket. The app starts on
// the same screen (src/app.rs, first_screen, which reads the choice through
// src/browser.rs, shows_resuming_screen) and takes over without a visible
// change.
(function () {
  var root = document.documentElement;
  var returning = /[?&](code|state|error)=/.test(location.search);
  var session = false;
  try {
    // The tab's saved sign-in (src/storage.rs, Key::Session).
    session = window.sessionStorage.getItem('oauth-dance:session') !== null;
  } catch (blocked) {
    // No storage: no session to resume.
  }
  if (returning || session) {
    root.setAttribute('data-screen', 'resuming');
  }
  // "Sign in" pressed before the app runs: remembered, and the app signs in
  // as soon as it can (src/browser.rs, take_queued_sign_in).
  document.addEventListener('click', function (event) {
    if (root.hasAttribute('data-app') || !event.target.closest) {
      return;
    }
    var button = event.target.closest('#sign-in');
    if (!button || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) {
      return;
    }
    event.preventDefault();
    root.setAttribute('data-queued', 'sign-in');
    button.setAttribute('aria-busy', 'true');
  }, true);

  // The app's files are asked for once the first screen has been painted
  // (its first contentful paint), so they never compete with that paint:
  // the wasm adds behaviour, it does not delay the picture. A hidden tab
  // paints nothing, and a browser without paint timing says nothing: those
  // start as soon as the page is parsed.
  var started = false;
  function start() {
    if (started) {
      return;
    }
    started = true;
    // Inside another page's frame, the sign-in and sign-out buttons could be
    // clickjacked: GitHub Pages sends no framing headers, and a <meta> CSP
    // cannot carry frame-ancestors. So the app does not start in a frame.
    if (window.top !== window.self) {
      fail('This page signs you in with Bitbucket, so it does not run inside another page. '
        + 'Open it in a tab of its own.', 'framed');
      return;
    }
    // Trunk writes the hashed names of the wasm-bindgen glue and the wasm
    // module on <template id="dance-app"> (Trunk.toml: pattern_script).
    var files = document.getElementById('dance-app').dataset;
    var at = function (path) {
      return new URL(path, document.baseURI).href;
    };
    // The app's first need is config.json: ask for it now, while the wasm
    // loads, with the same options the app's own requests use. The app takes
    // this request over once (src/api.rs, take_early_config); a retry
    // fetches anew. Not on a return from Bitbucket, though: then the address
    // holds the code, and the app takes it out of the address bar before any
    // request is made.
    try {
      if (files.config && !returning) {
        var url = at(files.config);
        var abort = new AbortController();
        var reply = fetch(url, {
          cache: 'no-store',
          credentials: 'omit',
          mode: 'cors',
          redirect: 'error',
          referrerPolicy: 'no-referrer',
          signal: abort.signal
        });
        // The app reports a failure; this keeps the console free of an unhandled one.
        reply.catch(function () {});
        window.danceEarlyConfig = { url: url, reply: reply, abort: abort };
      }
    } catch (noHeadStart) {
      // Only a head start: without it the app fetches config.json itself.
    }
    // The wasm downloads while the glue loads.
    var wasm = fetch(at(files.wasm));
    wasm.catch(function () {});
    import(at(files.js))
      .then(function (glue) {
        return glue.default({ module_or_path: wasm });
      })
      .catch(function (error) {
        console.error('oauth-dance failed to start', error);
        fail('This page could not start. Please reload it; if that does not help, '
          + 'your browser may be too old.', 'failed');
      });
  }
  // The built-in first screen's button can't work without the app: it goes,
  // and a note says why.
  function fail(text, id) {
    var shell = document.querySelector('.shell.prerendered');
    if (shell) {
      shell.remove();
    }
    var note = document.createElement('p');
    note.className = 'noscript';
    note.id = id;
    note.textContent = text;
    document.body.append(note);
  }
  function whenParsed(then) {
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', then);
    } else {
      then();
    }
  }
  var painted = false;
  try {
    painted = PerformanceObserver.supportedEntryTypes.indexOf('paint') >= 0;
  } catch (unsupported) {
    // No PerformanceObserver: start when parsed.
  }
  if (!painted || document.visibilityState === 'hidden') {
    whenParsed(start);
    return;
  }
  new PerformanceObserver(function (list, observer) {
    if (list.getEntriesByName('first-contentful-paint').length) {
      observer.disconnect();
      whenParsed(start);
    }
  }).observe({ type: 'paint', buffered: true });
  // Hidden before its first paint (opened in the background): start anyway.
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'hidden') {
      whenParsed(start);
    }
  });
})();
