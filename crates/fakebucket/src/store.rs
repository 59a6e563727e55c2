//! The server's memory: consent pages waiting for an answer, authorization
//! codes, access and refresh tokens, rate-limit windows, queued faults and
//! counters.
//!
//! Everything lives in one [`Store`] behind a mutex that is never held across
//! an `.await`. Every grant carries a *family* number: the code and all the
//! tokens that descend from it (through any number of refreshes) share one.
//! Replaying a code revokes its whole family, as RFC 6749 4.1.2 asks.

use crate::admin::{Counters, Fault, FaultTarget};
use crate::config::Config;
use crate::random;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use url::Url;

/// Everything a request handler can reach: the configuration, the public
/// base URL and the store.
#[derive(Debug)]
pub(crate) struct App {
    pub(crate) config: Config,
    /// The base URL with a trailing slash, such as `http://127.0.0.1:9090/`.
    pub(crate) base: Url,
    store: Mutex<Store>,
    /// Flips to `true` when the server shuts down, so injected delays end early.
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl App {
    pub(crate) fn new(config: Config, base: Url, shutdown: watch::Receiver<bool>) -> Self {
        Self { config, base, store: Mutex::new(Store::default()), shutdown }
    }

    /// The store. A panic while it was held cannot leave it half-updated in a
    /// way that matters to an emulator, so a poisoned lock is simply reused.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current time on the configured clock.
    pub(crate) fn now(&self) -> Instant {
        self.config.clock.now()
    }

    /// Forgets everything and puts the clock back to real time.
    pub(crate) fn reset(&self) {
        let mut store = self.lock();
        *store = Store::default();
        self.config.clock.reset();
    }

    /// Takes the next queued fault for `target`, if any, counting it.
    pub(crate) fn take_fault(&self, target: FaultTarget) -> Option<Fault> {
        let mut store = self.lock();
        let index = store.faults.iter().position(|f| f.target == target)?;
        let fault = store.faults[index].clone();
        if fault.count <= 1 {
            store.faults.remove(index);
        } else {
            store.faults[index].count -= 1;
        }
        store.counters.faults_served += 1;
        Some(fault)
    }

    /// Waits `delay_ms`, or less if the server is shutting down meanwhile.
    pub(crate) async fn fault_delay(&self, delay_ms: u64) {
        if delay_ms == 0 {
            return;
        }
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(delay_ms)) => {}
            _ = shutdown.wait_for(|down| *down) => {}
        }
    }
}

/// An authorization request shown on a consent page, waiting for the user.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) consumer: String,
    /// The `redirect_uri` exactly as sent, if one was.
    pub(crate) redirect_uri_sent: Option<String>,
    /// Where the answer goes: the `redirect_uri` or the registered callback.
    pub(crate) redirect: Url,
    pub(crate) state: Option<String>,
    pub(crate) challenge: Option<String>,
    pub(crate) expires: Instant,
}

/// An issued authorization code.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub(crate) consumer: String,
    pub(crate) user: String,
    pub(crate) redirect_uri_sent: Option<String>,
    pub(crate) challenge: Option<String>,
    pub(crate) expires: Instant,
    pub(crate) used: bool,
    pub(crate) family: u64,
}

/// An access or refresh token's grant.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) consumer: String,
    /// The account id of the user the token acts for.
    pub(crate) user: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires: Instant,
    pub(crate) family: u64,
}

/// An issued refresh token.
#[derive(Debug, Clone)]
pub(crate) struct Refresh {
    /// The grant it renews; `expires` is the end of its inactivity period.
    pub(crate) grant: Grant,
    /// When it was first used, and how long it keeps working after that
    /// (the grace window); `None` while unused.
    pub(crate) used: Option<(Instant, Duration)>,
}

impl Refresh {
    /// Until when the token works: the end of its inactivity period, or of
    /// its grace window once used, whichever comes first.
    fn usable_until(&self) -> Instant {
        match self.used {
            None => self.grant.expires,
            Some((first_use, grace)) => self.grant.expires.min(first_use + grace),
        }
    }
}

/// What a code redemption found.
#[derive(Debug)]
pub(crate) enum Redeem {
    /// No such code for this consumer.
    Unknown,
    /// The code had been used; its family is now revoked.
    Replayed,
    /// The code is past its lifetime.
    Expired,
    /// A usable code (not yet marked used: call [`Store::consume_code`]).
    Valid(Code),
}

/// What an access-token lookup found.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// Never issued, or revoked.
    Unknown,
    /// Issued but past its lifetime.
    Expired,
    /// Good to use.
    Valid(Grant),
}

/// The mutable state of one server.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pending: HashMap<String, Pending>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Refresh>,
    next_family: u64,
    rate: HashMap<String, VecDeque<Instant>>,
    faults: Vec<Fault>,
    pub(crate) counters: Counters,
}

impl Store {
    /// Drops consent pages, codes and tokens that can no longer be used. Used
    /// codes stay until they expire so that a replay is still recognised.
    fn prune(&mut self, now: Instant) {
        self.pending.retain(|_, p| p.expires > now);
        self.codes.retain(|_, c| c.expires > now);
        self.refresh.retain(|_, r| r.usable_until() > now);
        // Expired access tokens are kept for a day so that they answer
        // "Access token expired." rather than "invalid".
        self.access.retain(|_, g| g.expires + Duration::from_secs(86_400) > now);
    }

    /// Stores a consent page's request and returns its transaction id.
    pub(crate) fn add_pending(&mut self, pending: Pending, now: Instant) -> String {
        self.prune(now);
        let id = random::transaction();
        self.pending.insert(id.clone(), pending);
        id
    }

    /// Takes a pending request out (each can be answered once).
    pub(crate) fn take_pending(&mut self, id: &str, now: Instant) -> Option<Pending> {
        self.pending.remove(id).filter(|p| p.expires > now)
    }

    /// Issues a code for an answered consent page.
    pub(crate) fn issue_code(
        &mut self,
        pending: &Pending,
        user: &str,
        lifetime: Duration,
        now: Instant,
    ) -> String {
        self.prune(now);
        self.next_family += 1;
        let code = random::code();
        self.codes.insert(
            code.clone(),
            Code {
                consumer: pending.consumer.clone(),
                user: user.to_owned(),
                redirect_uri_sent: pending.redirect_uri_sent.clone(),
                challenge: pending.challenge.clone(),
                expires: now + lifetime,
                used: false,
                family: self.next_family,
            },
        );
        code
    }

    /// Looks a code up for `consumer`. A second use revokes every token
    /// issued from the code.
    pub(crate) fn redeem_code(&mut self, code: &str, consumer: &str, now: Instant) -> Redeem {
        let Some(found) = self.codes.get(code).filter(|c| c.consumer == consumer).cloned() else {
            return Redeem::Unknown;
        };
        if found.used {
            self.revoke_family(found.family);
            return Redeem::Replayed;
        }
        if found.expires <= now {
            return Redeem::Expired;
        }
        Redeem::Valid(found)
    }

    /// Marks a code used, after every check on it has passed.
    pub(crate) fn consume_code(&mut self, code: &str) {
        if let Some(c) = self.codes.get_mut(code) {
            c.used = true;
        }
    }

    fn revoke_family(&mut self, family: u64) {
        self.access.retain(|_, g| g.family != family);
        self.refresh.retain(|_, r| r.grant.family != family);
    }

    /// Issues an access token and, unless `with_refresh` is false, a refresh
    /// token that lives [`Config::refresh_token_lifetime`] unused, both in
    /// `grant`'s family and of the sizes [`Config::short_tokens`] picks.
    pub(crate) fn issue_tokens(
        &mut self,
        grant: Grant,
        with_refresh: bool,
        config: &Config,
        now: Instant,
    ) -> (String, Option<String>) {
        let access = random::access_token(config.short_tokens);
        let refresh = with_refresh.then(|| {
            let token = random::refresh_token(config.short_tokens);
            let expires = now + config.refresh_token_lifetime;
            let refresh_grant = Grant { expires, ..grant.clone() };
            self.refresh.insert(token.clone(), Refresh { grant: refresh_grant, used: None });
            token
        });
        self.access.insert(access.clone(), grant);
        (access, refresh)
    }

    /// A fresh family number, for grants that start without a code.
    pub(crate) fn new_family(&mut self) -> u64 {
        self.next_family += 1;
        self.next_family
    }

    /// Uses a refresh token of `consumer`. Rotation: the first use starts
    /// its `grace` window, and once that has passed (at once when `grace` is
    /// zero) the token is gone. A token unused for its whole lifetime is gone
    /// too. Another consumer's attempt neither uses nor burns it.
    pub(crate) fn use_refresh(
        &mut self,
        token: &str,
        consumer: &str,
        grace: Duration,
        now: Instant,
    ) -> Option<Grant> {
        self.prune(now);
        let entry = self.refresh.get_mut(token).filter(|r| r.grant.consumer == consumer)?;
        let used = *entry.used.get_or_insert((now, grace));
        let grant = entry.grant.clone();
        if used.0 + used.1 <= now {
            self.refresh.remove(token);
        }
        Some(grant)
    }

    /// Finds the grant behind an access token.
    pub(crate) fn lookup_access(&self, token: &str, now: Instant) -> Lookup {
        match self.access.get(token) {
            None => Lookup::Unknown,
            Some(g) if g.expires <= now => Lookup::Expired,
            Some(g) => Lookup::Valid(g.clone()),
        }
    }

    /// Records one API call for `user` and says whether it is within the
    /// limit; when it is not, returns how long until the oldest call in the
    /// window falls out of it.
    pub(crate) fn rate_check(
        &mut self,
        user: &str,
        limit: u32,
        window: Duration,
        now: Instant,
    ) -> Result<(), Duration> {
        let calls = self.rate.entry(user.to_owned()).or_default();
        while calls.front().is_some_and(|t| *t + window <= now) {
            calls.pop_front();
        }
        if calls.len() >= limit as usize {
            let oldest = calls.front().copied().unwrap_or(now);
            return Err((oldest + window).saturating_duration_since(now));
        }
        calls.push_back(now);
        Ok(())
    }

    pub(crate) fn add_fault(&mut self, fault: Fault) {
        self.faults.push(fault);
    }

    pub(crate) fn faults(&self) -> Vec<Fault> {
        self.faults.clone()
    }

    pub(crate) fn clear_faults(&mut self) {
        self.faults.clear();
    }
}
