// Picks the first screen before the browser paints anything. index.html
// already holds the app's two possible first screens, rendered at build time
// from its own views (src/prerender.rs): the landing page, and "Signing you
// in…". This classic script in <head> runs before <body> is parsed, so the
// right one is on screen from the first paint, never the landing page for a
// moment on a return from Bitbucket. The app starts on the same screen
// (src/browser.rs, first_screen) and takes over without a visible change.
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
})();
