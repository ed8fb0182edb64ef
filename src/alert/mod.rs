//! The built-in alert notifier, for sites without Alertmanager: path
//! verdicts in, webhook posts out.
//!
//! ```text
//! TraceRecord ──► rules (AlertBook) ──► Notification ──► queue ──► client (POST) ──► receiver
//!                                                         │
//!                                                   state (alerts.json)
//! ```
//!
//! | module | owns |
//! |---|---|
//! | `rules` | when an alert fires and resolves (pure), its labels and plain-language annotations |
//! | `payload` | the Alertmanager webhook body and transitwatch's own JSON body |
//! | `sign` | the optional HMAC-SHA256 signature header |
//! | `queue` | the bounded per-webhook queue (the oldest entry is dropped when full) |
//! | `backoff` | the exponential retry schedule with a ceiling |
//! | `client` | one POST over http or https, under a timeout, on its own connection |
//! | `state` | `alerts.json`: active alerts and pending notifications, sealed and written atomically (see `state_dir`) |
//! | `notifier` | the running notifier: one delivery task per webhook, reload, stop |
//! | `metrics` | its `transitwatch_alert*` families, registered in the metrics module's registry |
//!
//! Notifications are sent on transitions only: a path's alert fires once
//! when its verdict starts breaking the policy and resolves once when it
//! stops (see [`rules`] for the exact rule and why an `indeterminate`
//! verdict or a failed trace changes nothing). They are kept until a
//! webhook takes them, retried with exponential backoff (without end unless
//! `[alert] max_age` is set), and saved in the state directory before the
//! first attempt and after every delivery, so a restart loses none and
//! repeats none.

mod backoff;
mod client;
mod metrics;
mod notifier;
mod payload;
mod queue;
pub mod rules;
mod sign;
mod state;

pub use backoff::Backoff;
pub use client::{DeliveryError, Endpoint, EndpointError};
pub use metrics::{AlertMetrics, DeliveryResult};
pub use notifier::{Notifier, ID_HEADER};
pub use payload::{body, Envelope, ALERT_SCHEMA};
pub use queue::BoundedQueue;
pub use rules::{AlertBook, Notification, Status, Subject};
pub use sign::{signature, SIGNATURE_HEADER};
pub use state::{webhook_id, STATE_FILE};
