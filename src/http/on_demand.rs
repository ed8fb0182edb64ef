//! `POST /api/v1/targets/{name}/trace`: one trace of a configured target,
//! now, answered with its trace records.
//!
//! The endpoint asks an [`OnDemandTracer`] (the daemon implements it with
//! the scheduler's prober, probe permits and reverse DNS, and the running
//! configuration's geolocation and policy); it never sees a prober. A
//! request names a configured target and nothing else: there is no way to
//! trace an address. What a trace costs is bounded here, before the tracer
//! is asked ([`Limiter`]): one trace at a time per target, and a token
//! bucket over all targets ([`ON_DEMAND_BURST`] traces at once, one more
//! every [`ON_DEMAND_REFILL`]); a request over either is answered 429 with
//! `Retry-After`. A trace has [`ON_DEMAND_TIMEOUT`] to finish (504 after).

use crate::model::TraceRecord;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Traces on demand that may start back to back (the bucket's size).
pub const ON_DEMAND_BURST: u32 = 4;
/// After the burst, one more trace on demand per this long.
pub const ON_DEMAND_REFILL: Duration = Duration::from_secs(15);
/// Longest a trace on demand may take, waiting for a probe permit
/// included; below the connection age limit, so its answer is delivered.
pub const ON_DEMAND_TIMEOUT: Duration = Duration::from_secs(45);

/// Why a trace on demand produced no records.
#[derive(Debug, thiserror::Error)]
pub enum OnDemandError {
    /// No configured target has the name (404).
    #[error("no target named `{0}`")]
    UnknownTarget(String),
    /// The daemon is not tracing now: starting, reloading or stopping (503).
    #[error("not tracing now (the daemon is starting, reloading or stopping); try again")]
    Unavailable,
    /// The trace failed: the host did not resolve, the probe failed (502).
    #[error("{0}")]
    Failed(String),
}

/// The future of one trace on demand.
pub type TraceFuture =
    Pin<Box<dyn Future<Output = Result<Vec<TraceRecord>, OnDemandError>> + Send>>;

/// Traces a configured target now; the daemon implements it.
pub trait OnDemandTracer: Send + Sync + 'static {
    /// Whether `target` names a configured target (checked before the
    /// limits, so unknown names cost no token).
    fn knows(&self, target: &str) -> bool;
    /// Trace every path of `target` once and judge the traces as the
    /// scheduled ones are: one record per path.
    fn trace(&self, target: &str) -> TraceFuture;
}

/// The limits of traces on demand.
pub(super) struct Limiter {
    // std Mutex: a few comparisons and one insert per request, never held
    // across an await.
    state: Mutex<LimiterState>,
}

struct LimiterState {
    /// Targets being traced on demand now.
    tracing: HashSet<String>,
    /// Tokens in the bucket (fractions accrue).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    updated: Instant,
}

/// A trace on demand admitted: its target stays busy until this drops.
pub(super) struct InFlight {
    limiter: Arc<Limiter>,
    target: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.limiter
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tracing
            .remove(&self.target);
    }
}

/// Why a trace on demand must wait (429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limited {
    /// This target is being traced on demand already.
    TargetBusy,
    /// The bucket is empty; a token comes after this long.
    Exhausted(Duration),
}

impl Limited {
    /// Whole seconds for `Retry-After` (at least 1).
    pub(super) fn retry_after(self) -> u64 {
        match self {
            Self::TargetBusy => 1,
            Self::Exhausted(wait) => wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
        .max(1)
    }

    pub(super) fn message(self) -> &'static str {
        match self {
            Self::TargetBusy => "this target is being traced on demand already",
            Self::Exhausted(_) => "too many traces on demand; try again later",
        }
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Self {
            state: Mutex::new(LimiterState {
                tracing: HashSet::new(),
                tokens: f64::from(ON_DEMAND_BURST),
                updated: Instant::now(),
            }),
        }
    }
}

impl Limiter {
    /// Admit a trace of `target` now, or say why not. A refused request
    /// takes no token.
    pub(super) fn admit(self: &Arc<Self>, target: &str) -> Result<InFlight, Limited> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let earned =
            now.duration_since(state.updated).as_secs_f64() / ON_DEMAND_REFILL.as_secs_f64();
        state.tokens = (state.tokens + earned).min(f64::from(ON_DEMAND_BURST));
        state.updated = now;
        if state.tracing.contains(target) {
            return Err(Limited::TargetBusy);
        }
        if state.tokens < 1.0 {
            let wait = ON_DEMAND_REFILL.mul_f64(1.0 - state.tokens);
            return Err(Limited::Exhausted(wait));
        }
        state.tokens -= 1.0;
        state.tracing.insert(target.to_string());
        Ok(InFlight {
            limiter: Arc::clone(self),
            target: target.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_trace_per_target_and_a_bucket_over_all() {
        let limiter = Arc::new(Limiter::default());
        let first = limiter.admit("portal").unwrap();
        assert_eq!(limiter.admit("portal").err(), Some(Limited::TargetBusy));
        drop(first);
        // The burst: three more (one was taken), then empty.
        let held: Vec<InFlight> = ["portal", "bank", "tax"]
            .iter()
            .map(|t| limiter.admit(t).unwrap())
            .collect();
        let Err(Limited::Exhausted(wait)) = limiter.admit("health") else {
            panic!("the bucket should be empty");
        };
        assert_eq!(wait, ON_DEMAND_REFILL);
        assert_eq!(Limited::Exhausted(wait).retry_after(), 15);
        drop(held);
        // Refused requests took nothing; a token comes back with time.
        tokio::time::advance(ON_DEMAND_REFILL / 3).await;
        let Err(Limited::Exhausted(wait)) = limiter.admit("health") else {
            panic!("a third of a token is no token");
        };
        assert!(wait.abs_diff(ON_DEMAND_REFILL * 2 / 3) < Duration::from_millis(1));
        tokio::time::advance(ON_DEMAND_REFILL).await;
        let again = limiter.admit("health").unwrap();
        assert!(limiter.admit("bank").is_err());
        drop(again);
        // Never more than the burst saved up.
        tokio::time::advance(ON_DEMAND_REFILL * 100).await;
        let burst: Vec<_> = (0..ON_DEMAND_BURST)
            .map(|i| limiter.admit(&format!("t{i}")).unwrap())
            .collect();
        assert!(limiter.admit("one-more").is_err());
        drop(burst);
    }
}
