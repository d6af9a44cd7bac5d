//! Abuse limits: a request rate per token (a token bucket, its rate set per role) and a brake on
//! clients that keep presenting bad tokens.
//!
//! Counted in memory, exactly, by one server on SQLite. Servers on PostgreSQL count for the
//! installation through the service (`vault.limits()`: `SharedLimits::take_rate` and its neighbours): each takes
//! short leases of its tokens' shared buckets (a twentieth of a second of the rate, so with N
//! servers at most N such leases stand unused), and failures are counted in the database, the
//! server that trips the brake telling the others.
//!
//! Hand-written rather than taken from `governor`: a token bucket is a few lines, the quota here
//! depends on the caller's roles, and the exact wait is needed for `Retry-After`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use steward_domain::{Role, TokenId};

/// A sustained rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests allowed at once.
    pub burst: f64,
}

impl Rate {
    /// The default: 50 requests a second, bursts of 200.
    pub const DEFAULT: Rate = Rate {
        per_second: 50.0,
        burst: 200.0,
    };

    /// Parses `R/B` (requests per second / burst), e.g. `50/200`.
    pub fn parse(s: &str) -> Option<Rate> {
        let (r, b) = s.split_once('/')?;
        let (per_second, burst) = (r.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
        (per_second > 0.0 && burst >= 1.0 && per_second.is_finite() && burst.is_finite())
            .then_some(Rate { per_second, burst })
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Failed authentications from one address.
struct Failures {
    count: u32,
    since: Instant,
    /// Sign-ins from the address being checked right now (see [`Limits::reserve`]).
    in_flight: u32,
}

/// The longest a request may take unless configured otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Bad tokens an address may present in a window before it is refused until the window ends,
/// unless configured otherwise.
pub const FAILURES_ALLOWED: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Buckets and failure records kept before idle ones are dropped.
const TRACKED: usize = 100_000;
/// How long a lease of a shared bucket may be served from before what is left is dropped.
const LEASE_LIFE: Duration = Duration::from_millis(250);

/// The limits a server enforces.
pub struct Limits {
    /// The longest a request may take, its body included (a slow client is cut off with 408).
    pub request_timeout: Duration,
    per_role: HashMap<Role, Rate>,
    default: Rate,
    /// Bad tokens or passwords an address may present a minute ([`FAILURES_ALLOWED`]).
    failures_allowed: u32,
    buckets: Mutex<HashMap<TokenId, Bucket>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    /// Servers on PostgreSQL: the vault that counts for the installation.
    shared: std::sync::OnceLock<steward_service::Vault>,
    /// Requests this server may still grant from each token's shared bucket (its lease), and
    /// when it was taken: a lease is spent within [`LEASE_LIFE`] or dropped, so a client cannot
    /// bank units beyond the bucket's burst.
    leases: Mutex<HashMap<TokenId, (u32, Instant)>>,
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(Rate::DEFAULT, HashMap::new())
    }
}

impl Limits {
    /// No request rate limit (the brake on bad tokens still applies where addresses are
    /// known): for embedding the router and for tests; `steward serve` sets real limits.
    pub fn none() -> Self {
        let unlimited = Rate {
            per_second: f64::INFINITY,
            burst: f64::INFINITY,
        };
        Self::new(unlimited, HashMap::new())
    }

    /// Limits with `default` for every role not in `per_role`.
    pub fn new(default: Rate, per_role: HashMap<Role, Rate>) -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            per_role,
            default,
            failures_allowed: FAILURES_ALLOWED,
            buckets: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            shared: std::sync::OnceLock::new(),
            leases: Mutex::new(HashMap::new()),
        }
    }

    /// Counts for the installation through `vault` when its servers share PostgreSQL.
    pub(crate) fn share_through(&self, vault: &steward_service::Vault) {
        if vault.limits().shared() {
            let _ = self.shared.set(vault.clone());
        }
    }

    /// Takes one request of the token's rate: from this server's bucket, or, with servers on
    /// PostgreSQL, from its lease of the installation's bucket (taking a new lease when it is
    /// spent). `Err(wait)` when none is left; a database that cannot be asked refuses (closed).
    pub async fn take_shared(
        &self,
        token: TokenId,
        roles: &[Role],
        now: Instant,
    ) -> Result<(), Duration> {
        let rate = self.rate(roles);
        let Some(vault) = self.shared.get().filter(|_| rate.per_second.is_finite()) else {
            return self.take(token, roles, now);
        };
        {
            let Ok(mut leases) = self.leases.lock() else {
                return Err(Duration::from_secs(1));
            };
            if let Some((n, _)) = leases
                .get_mut(&token)
                .filter(|(n, at)| *n > 0 && now.saturating_duration_since(*at) < LEASE_LIFE)
            {
                *n -= 1;
                return Ok(());
            }
        }
        // A twentieth of a second of the rate: small enough that leases standing unused on
        // other servers hardly lower the installation's rate, large enough that a busy token
        // asks the database at most twenty times a second per server.
        let want = (rate.per_second / 20.0)
            .ceil()
            .clamp(1.0, 1000.0)
            .min(rate.burst.max(1.0)) as u32;
        match vault
            .limits()
            .take_rate(token, rate.per_second, rate.burst, want)
            .await
        {
            Ok(Ok(granted)) => {
                // Timed from the grant: a slow database must not expire every lease on arrival.
                let now = Instant::now();
                if granted > 1
                    && let Ok(mut leases) = self.leases.lock()
                {
                    if leases.len() >= TRACKED {
                        leases.retain(|_, (n, at)| {
                            *n > 0 && now.saturating_duration_since(*at) < LEASE_LIFE
                        });
                    }
                    // What requests racing on an empty lease took is added, never past one
                    // lease's worth.
                    let e = leases.entry(token).or_insert((0, now));
                    if now.saturating_duration_since(e.1) >= LEASE_LIFE {
                        *e = (0, now);
                    }
                    e.0 = (e.0 + granted - 1).min(want);
                }
                Ok(())
            }
            Ok(Err(wait)) => Err(wait),
            Err(e) => {
                tracing::warn!(error = %e, "the installation's rate limit could not be asked; refused");
                Err(Duration::from_secs(1))
            }
        }
    }

    /// Sets how many bad tokens or passwords an address may present a minute before it is
    /// refused for the rest of the minute (at least one).
    pub fn with_failures_allowed(mut self, n: u32) -> Self {
        self.failures_allowed = n.max(1);
        self
    }

    /// The most generous rate among `roles`.
    fn rate(&self, roles: &[Role]) -> Rate {
        roles
            .iter()
            .map(|r| self.per_role.get(r).copied().unwrap_or(self.default))
            .max_by(|a, b| a.per_second.total_cmp(&b.per_second))
            .unwrap_or(self.default)
    }

    /// Takes one request from the token's bucket; `Err(wait)` when it is empty.
    pub fn take(&self, token: TokenId, roles: &[Role], now: Instant) -> Result<(), Duration> {
        let rate = self.rate(roles);
        if rate.per_second.is_infinite() {
            // Unlimited: no bucket, and no lock on the request path.
            return Ok(());
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= TRACKED {
            // Buckets that have refilled hold no state worth keeping.
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * rate.per_second < rate.burst
            });
        }
        let b = buckets.entry(token).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        let refill = now.saturating_duration_since(b.at).as_secs_f64() * rate.per_second;
        b.tokens = (b.tokens + refill).min(rate.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate.per_second))
        }
    }

    /// `Err(wait)` while `addr` is refused for presenting too many bad tokens.
    pub fn check_address(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        if let Some(wait) = self.shared.get().and_then(|v| v.limits().brake(addr)) {
            return Err(wait);
        }
        let Ok(failures) = self.failures.lock() else {
            return Ok(());
        };
        match failures.get(&addr) {
            Some(f) if f.count >= self.failures_allowed => {
                let until = f.since + FAILURE_WINDOW;
                if now < until {
                    Err(until - now)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Counts a bad token from `addr`.
    ///
    /// `Some(wait)` when, counted for the installation, the failure is past the allowance: it
    /// is answered as braked even if this server has not yet heard the others' word.
    pub async fn failed(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        self.count_here(addr, now);
        let vault = self.shared.get()?;
        // Counted for the installation before the answer goes; the server whose count trips
        // the brake tells the others.
        match vault
            .limits()
            .count_failure(addr, self.failures_allowed, FAILURE_WINDOW)
            .await
        {
            Ok(over) => over,
            Err(e) => {
                tracing::warn!(error = %e, "counting a failure for the installation failed");
                None
            }
        }
    }

    fn count_here(&self, addr: IpAddr, now: Instant) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        current(&mut failures, addr, now).count += 1;
    }

    /// Reserves one guess of a password from `addr` before it is checked, in one step with the
    /// check of the brake: failures counted plus guesses in flight never pass the allowance, so
    /// guesses sent together cannot all pass a check that none has yet failed (issue 15, finding
    /// 7). A wrong guess is counted with [`Reservation::failed`]; dropping the reservation frees
    /// its place.
    pub fn reserve(&self, addr: IpAddr, now: Instant) -> Result<Reservation<'_>, Duration> {
        if let Some(wait) = self.shared.get().and_then(|v| v.limits().brake(addr)) {
            return Err(wait);
        }
        let Ok(mut failures) = self.failures.lock() else {
            return Err(FAILURE_WINDOW);
        };
        let f = current(&mut failures, addr, now);
        if f.count + f.in_flight >= self.failures_allowed {
            return Err((f.since + FAILURE_WINDOW).saturating_duration_since(now));
        }
        f.in_flight += 1;
        Ok(Reservation {
            limits: self,
            addr,
            shared_at: None,
        })
    }

    /// [`Limits::reserve`], and with servers on PostgreSQL the guess reserved for the
    /// installation too (counted as a failure until [`Reservation::succeeded`] takes it back).
    /// A database that cannot be asked refuses the guess (closed).
    pub async fn reserve_everywhere(
        &self,
        addr: IpAddr,
        now: Instant,
    ) -> Result<Reservation<'_>, Duration> {
        let mut reservation = self.reserve(addr, now)?;
        if let Some(vault) = self.shared.get() {
            match vault
                .limits()
                .reserve_guess(addr, self.failures_allowed, FAILURE_WINDOW)
                .await
            {
                Ok(Ok(at)) => reservation.shared_at = Some(at),
                Ok(Err(wait)) => return Err(wait),
                Err(e) => {
                    tracing::warn!(error = %e, "reserving a sign-in for the installation failed; refused");
                    return Err(Duration::from_secs(1));
                }
            }
        }
        Ok(reservation)
    }
}

/// The failures of `addr` in the window holding `now` (a window that ended starts over); past
/// [`TRACKED`] addresses, those with an ended window and nothing in flight are forgotten first.
fn current(failures: &mut HashMap<IpAddr, Failures>, addr: IpAddr, now: Instant) -> &mut Failures {
    if failures.len() >= TRACKED {
        failures.retain(|_, f| f.in_flight > 0 || now.duration_since(f.since) < FAILURE_WINDOW);
    }
    let f = failures.entry(addr).or_insert(Failures {
        count: 0,
        since: now,
        in_flight: 0,
    });
    if now.duration_since(f.since) >= FAILURE_WINDOW {
        f.count = 0;
        f.since = now;
    }
    f
}

/// One password guess in flight from an address (see [`Limits::reserve`]).
pub struct Reservation<'a> {
    limits: &'a Limits,
    addr: IpAddr,
    /// When the guess was reserved for the installation (servers on PostgreSQL): it already
    /// counts there as a failure.
    shared_at: Option<i64>,
}

impl Reservation<'_> {
    /// The guess was wrong: it counts against the address (for the installation it already
    /// does, since it was reserved).
    pub async fn failed(self, now: Instant) {
        if self.shared_at.is_some() {
            self.limits.count_here(self.addr, now);
        } else {
            let _ = self.limits.failed(self.addr, now).await;
        }
    }

    /// The guess was right: the installation's count takes it back.
    pub async fn succeeded(self) {
        if let (Some(at), Some(vault)) = (self.shared_at, self.limits.shared.get())
            && let Err(e) = vault.limits().release_guess(self.addr, at).await
        {
            tracing::warn!(error = %e, "a right sign-in still counts against its address for a minute");
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Ok(mut failures) = self.limits.failures.lock()
            && let Some(f) = failures.get_mut(&self.addr)
        {
            f.in_flight = f.in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allowance is configurable: the brake takes effect after that many failures.
    #[test]
    fn the_failure_allowance_is_configurable() {
        let l = Limits::none().with_failures_allowed(3);
        let ip: IpAddr = "192.0.2.8".parse().unwrap();
        let now = Instant::now();
        for _ in 0..3 {
            assert!(l.check_address(ip, now).is_ok());
            l.count_here(ip, now);
        }
        assert!(l.check_address(ip, now).is_err(), "the fourth is refused");
        assert!(
            l.check_address(ip, now + FAILURE_WINDOW).is_ok(),
            "until the window ends"
        );
        assert_eq!(Limits::none().with_failures_allowed(0).failures_allowed, 1);
    }

    /// Guesses sent together cannot pass the brake before any has failed.
    #[test]
    fn reservations_bound_guesses_in_flight() {
        let l = Limits::none();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let now = Instant::now();
        let held: Vec<_> = (0..FAILURES_ALLOWED)
            .map(|_| l.reserve(ip, now).unwrap())
            .collect();
        assert!(l.reserve(ip, now).is_err(), "an eleventh guess in flight");
        for r in held {
            l.count_here(ip, now);
            drop(r);
        }
        assert!(
            l.reserve(ip, now).is_err(),
            "ten failures brake the address"
        );
        assert!(l.check_address(ip, now).is_err());
        let later = now + FAILURE_WINDOW;
        let r = l.reserve(ip, later).unwrap();
        drop(r);
        assert!(
            l.reserve(ip, later).is_ok(),
            "a right guess frees its place"
        );
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let l = Limits::new(
            Rate {
                per_second: 10.0,
                burst: 3.0,
            },
            HashMap::new(),
        );
        let (t, roles, now) = (TokenId::new(), [Role::SupportAgent], Instant::now());
        for _ in 0..3 {
            assert!(l.take(t, &roles, now).is_ok());
        }
        let wait = l.take(t, &roles, now).unwrap_err();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(
            l.take(t, &roles, now + Duration::from_millis(100)).is_ok(),
            "refilled one"
        );
        assert!(
            l.take(TokenId::new(), &roles, now).is_ok(),
            "buckets are per token"
        );
    }

    #[test]
    fn the_most_generous_role_counts() {
        let slow = Rate {
            per_second: 1.0,
            burst: 1.0,
        };
        let fast = Rate {
            per_second: 100.0,
            burst: 100.0,
        };
        let l = Limits::new(slow, HashMap::from([(Role::Dpo, fast)]));
        assert_eq!(l.rate(&[Role::Marketing, Role::Dpo]), fast);
        assert_eq!(l.rate(&[Role::Marketing]), slow);
    }

    #[test]
    fn bad_tokens_brake_an_address_for_the_window() {
        let l = Limits::default();
        let (ip, now) = ("192.0.2.7".parse().unwrap(), Instant::now());
        for _ in 0..FAILURES_ALLOWED {
            assert!(l.check_address(ip, now).is_ok());
            l.count_here(ip, now);
        }
        assert!(l.check_address(ip, now + Duration::from_secs(1)).is_err());
        assert!(l.check_address("192.0.2.8".parse().unwrap(), now).is_ok());
        assert!(l.check_address(ip, now + FAILURE_WINDOW).is_ok());
    }

    #[test]
    fn no_limits_never_refuse() {
        let l = Limits::none();
        let (t, now) = (TokenId::new(), Instant::now());
        for _ in 0..10_000 {
            assert!(l.take(t, &[Role::Analyst], now).is_ok());
        }
    }

    #[test]
    fn rates_parse() {
        assert_eq!(
            Rate::parse("5/20"),
            Some(Rate {
                per_second: 5.0,
                burst: 20.0
            })
        );
        assert_eq!(Rate::parse("0/20"), None);
        assert_eq!(Rate::parse("5"), None);
        assert_eq!(Rate::parse("x/1"), None);
    }
}
