//! Bearer tokens: reading the login and refresh answers, and the state
//! behind the one token every caller of a client shares.
//!
//! The state is pure (times are passed in); the client holds it in a tokio
//! mutex and keeps the lock while it logs in, so concurrent callers wait and
//! then reuse the new token.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::error::{Error, RATE_LIMIT_BACKOFF};

/// Lifetime assumed when an answer has no `expires_in` (the documented one).
pub(super) const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A token as the server handed it out.
pub(super) struct Issued {
    pub token: String,
    /// `None` when the answer did not say.
    pub expires_in: Option<Duration>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Reads a login or refresh answer. Known shapes:
/// `{"data":{"access_token":"T","token_type":"bearer","expires_in":3600}}` and
/// `{"data":{"token":{"token":"T","expires_in":3600}}}`; also tolerated:
/// `data.token` as a string, `data.token.access_token`, the same fields at
/// the top level, `expires_in` beside the token or in `data`, as a number
/// or a numeric string.
pub(super) fn parse_token_answer(answer: &Value) -> Option<Issued> {
    let data = match answer.get("data") {
        Some(data) if data.is_object() => data,
        _ => answer,
    };
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    let (token, holder) = if let Some(token) = text(data.get("access_token")) {
        (token, data)
    } else {
        match data.get("token") {
            Some(Value::String(_)) => (text(data.get("token"))?, data),
            Some(nested @ Value::Object(_)) => (
                text(nested.get("token")).or_else(|| text(nested.get("access_token")))?,
                nested,
            ),
            _ => return None,
        }
    };
    let expires_in = seconds(holder.get("expires_in")).or_else(|| seconds(data.get("expires_in")));
    Some(Issued { token, expires_in })
}

/// A positive number of seconds, given as a number or a numeric string.
fn seconds(value: Option<&Value>) -> Option<Duration> {
    let secs = match value? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// The token to send, and which issue of it this is (to tell, after a 401,
/// whether someone else already replaced it).
#[derive(Clone)]
pub(super) struct Bearer {
    pub value: Arc<str>,
    pub generation: u64,
}

impl Bearer {
    pub fn fixed(token: &str) -> Bearer {
        Bearer {
            value: Arc::from(token),
            generation: 0,
        }
    }
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bearer(#{}, [redacted])", self.generation)
    }
}

/// What a caller has to do before its call.
#[derive(Debug)]
pub(super) enum Plan {
    /// The current token is good.
    Use(Bearer),
    /// Refresh with this token (fall back to a login if that fails).
    Refresh(Bearer),
    /// No usable token: log in.
    Login,
}

struct Current {
    bearer: Bearer,
    refresh_at: Instant,
    expires_at: Instant,
}

struct Failure {
    at: Instant,
    error: Error,
}

/// The shared token and the last failed attempt to get one.
#[derive(Default)]
pub(super) struct TokenState {
    current: Option<Current>,
    generations: u64,
    failure: Option<Failure>,
}

impl TokenState {
    /// What to do at `now`. `failed` is the generation a call just got a 401
    /// with: if it is still the current one, it must be replaced.
    pub fn plan(&self, now: Instant, failed: Option<u64>) -> Plan {
        match &self.current {
            None => Plan::Login,
            Some(c) if now >= c.expires_at => Plan::Login,
            Some(c) if failed == Some(c.bearer.generation) || now >= c.refresh_at => {
                Plan::Refresh(c.bearer.clone())
            }
            Some(c) => Plan::Use(c.bearer.clone()),
        }
    }

    /// Takes a new token. It is refreshed `margin` before it expires, but
    /// never earlier than half its lifetime (so a short-lived token is not
    /// refreshed on every call).
    pub fn install(&mut self, issued: Issued, now: Instant, margin: Duration) -> Bearer {
        let lifetime = issued.expires_in.unwrap_or(DEFAULT_LIFETIME);
        let margin = margin.min(lifetime / 2);
        self.generations += 1;
        let bearer = Bearer {
            value: Arc::from(issued.token),
            generation: self.generations,
        };
        self.current = Some(Current {
            bearer: bearer.clone(),
            refresh_at: now + (lifetime - margin),
            expires_at: now + lifetime,
        });
        self.failure = None;
        bearer
    }

    /// Remembers a failed attempt, so callers who were waiting for it share
    /// its result instead of trying again one after another.
    pub fn record_failure(&mut self, error: Error, now: Instant) {
        self.failure = Some(Failure { at: now, error });
    }

    /// The failure to hand to a caller who asked for a token at `asked`:
    /// an attempt that ended after it asked (it waited for that attempt), or
    /// a rate limit that is still on.
    pub fn shared_failure(&self, asked: Instant, now: Instant) -> Option<Error> {
        let failure = self.failure.as_ref()?;
        let rate_limited = matches!(failure.error, Error::RateLimited { .. })
            && now < failure.at + RATE_LIMIT_BACKOFF;
        (failure.at >= asked || rate_limited).then(|| failure.error.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(v: Value) -> Option<(String, Option<u64>)> {
        parse_token_answer(&v).map(|i| (i.token, i.expires_in.map(|d| d.as_secs())))
    }

    #[test]
    fn both_known_answer_shapes() {
        assert_eq!(
            parsed(
                json!({"success": true, "data": {"access_token": "T1", "token_type": "bearer", "expires_in": 3600}})
            ),
            Some(("T1".into(), Some(3600)))
        );
        assert_eq!(
            parsed(
                json!({"success": true, "data": {"token": {"token": "T2", "expires_in": 3600}}})
            ),
            Some(("T2".into(), Some(3600)))
        );
    }

    #[test]
    fn tolerated_variants() {
        assert_eq!(
            parsed(json!({"data": {"token": "T3", "expires_in": "120"}})),
            Some(("T3".into(), Some(120)))
        );
        assert_eq!(
            parsed(json!({"data": {"token": {"access_token": "T4"}, "expires_in": 60}})),
            Some(("T4".into(), Some(60)))
        );
        assert_eq!(
            parsed(json!({"access_token": "T5", "expires_in": 10})),
            Some(("T5".into(), Some(10)))
        );
        assert_eq!(
            parsed(json!({"data": {"access_token": "T6", "expires_in": 0}})),
            Some(("T6".into(), None))
        );
        assert_eq!(
            parsed(json!({"data": {"access_token": "T7", "expires_in": "soon"}})),
            Some(("T7".into(), None))
        );
    }

    #[test]
    fn answers_without_a_token() {
        assert_eq!(parsed(json!({"success": true, "data": {}})), None);
        assert_eq!(
            parsed(json!({"success": true, "data": {"token": {"expires_in": 5}}})),
            None
        );
        assert_eq!(parsed(json!({"data": {"access_token": ""}})), None);
        assert_eq!(parsed(json!({"data": {"access_token": 42}})), None);
        assert_eq!(parsed(json!(null)), None);
        assert_eq!(parsed(json!([1, 2])), None);
    }

    #[test]
    fn issued_debug_hides_the_token() {
        let issued = Issued {
            token: "SECRET-TOKEN".into(),
            expires_in: None,
        };
        assert!(!format!("{issued:?}").contains("SECRET"));
        assert!(!format!("{:?}", Bearer::fixed("SECRET-TOKEN")).contains("SECRET"));
    }

    fn issued(secs: u64) -> Issued {
        Issued {
            token: format!("T{secs}"),
            expires_in: Some(Duration::from_secs(secs)),
        }
    }

    #[test]
    fn plan_follows_the_clock() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        let mut state = TokenState::default();
        assert!(matches!(state.plan(t0, None), Plan::Login));
        let b = state.install(issued(3600), t0, minute);
        assert_eq!(b.generation, 1);
        assert_eq!(&*b.value, "T3600");
        let at = |secs| t0 + Duration::from_secs(secs);
        assert!(matches!(state.plan(at(3539), None), Plan::Use(_)));
        assert!(matches!(state.plan(at(3540), None), Plan::Refresh(ref r) if r.generation == 1));
        assert!(matches!(state.plan(at(3600), None), Plan::Login));
        // A 401 with the current token: replace it; with an older one: use the current.
        assert!(matches!(state.plan(at(5), Some(1)), Plan::Refresh(_)));
        let b2 = state.install(issued(3600), at(10), minute);
        assert_eq!(b2.generation, 2);
        assert!(matches!(state.plan(at(11), Some(1)), Plan::Use(ref u) if u.generation == 2));
    }

    #[test]
    fn margin_is_at_most_half_the_lifetime() {
        let t0 = Instant::now();
        let mut state = TokenState::default();
        state.install(issued(30), t0, Duration::from_secs(60));
        assert!(matches!(
            state.plan(t0 + Duration::from_secs(14), None),
            Plan::Use(_)
        ));
        assert!(matches!(
            state.plan(t0 + Duration::from_secs(15), None),
            Plan::Refresh(_)
        ));
        // No expires_in: the documented hour.
        state.install(
            Issued {
                token: "T".into(),
                expires_in: None,
            },
            t0,
            Duration::from_secs(60),
        );
        assert!(matches!(
            state.plan(t0 + Duration::from_secs(3539), None),
            Plan::Use(_)
        ));
        assert!(matches!(
            state.plan(t0 + Duration::from_secs(3540), None),
            Plan::Refresh(_)
        ));
    }

    #[test]
    fn failures_are_shared_with_waiters_only() {
        let t0 = Instant::now();
        let later = |ms| t0 + Duration::from_millis(ms);
        let mut state = TokenState::default();
        let refused = Error::Auth {
            status: Some(401),
            message: "no".into(),
        };
        state.record_failure(refused.clone(), later(100));
        // Asked before the attempt ended: waited for it, shares its result.
        assert_eq!(state.shared_failure(t0, later(101)), Some(refused));
        // Asked after: tries again.
        assert_eq!(state.shared_failure(later(200), later(201)), None);

        let limited = Error::RateLimited {
            status: Some(429),
            message: "slow".into(),
        };
        state.record_failure(limited.clone(), later(300));
        assert_eq!(state.shared_failure(later(400), later(401)), Some(limited));
        let after = later(300) + RATE_LIMIT_BACKOFF;
        assert_eq!(state.shared_failure(after, after), None);

        state.install(issued(60), later(500), Duration::from_secs(1));
        assert_eq!(state.shared_failure(t0, later(501)), None);
    }
}
