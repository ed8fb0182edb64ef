//! transitwatch: where a country's critical internet traffic really goes.
//!
//! Data flows one way:
//!
//! ```text
//! config ──► scheduler ──► probe ──► Trace ──► geo (enrich) ──► analysis ──► TraceRecord
//!                                                                              │
//!                  ┌──────────────────┬──────────┬──────────────┬──────────────────────┤
//!                  ▼                  ▼          ▼              ▼                      ▼
//!           paths (route state)     alert     metrics    store (SQLite) ──► export   render (table / JSON)
//!                                 (webhooks)
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`model`] | the shared vocabulary: `Trace`, `Hop`, `PathVerdict`, `TraceRecord` |
//! | [`config`] | the TOML file: raw serde struct → validated [`config::Config`] |
//! | [`resolve`] | host names to addresses (A/AAAA), with a deadline |
//! | [`probe`] | the `Prober` trait and its trippy-core adapter (trippy types stay inside) |
//! | [`geo`] | hop geolocation: MMDB readers (schema detected), overrides, plausibility (maxminddb types stay inside) |
//! | [`analysis`] | pure functions from a `Trace` to a `PathVerdict` |
//! | [`render`] | the mtr-style report table |
//! | [`record_json`] | the trace record written as JSON directly (byte for byte serde_json's), for `analyze --json` |
//! | [`scheduler`] | per-target intervals with jitter, global concurrency, re-resolution |
//! | [`paths`] | last path per target, route changes, the saved state file |
//! | [`alert`] | the built-in notifier: alerts on verdict transitions, webhook delivery with retry, its saved state |
//! | [`metrics`] | the owned Prometheus registry: verdicts, paths, hops, country dependency, runs |
//! | [`http`] | the daemon's HTTP endpoint: `/metrics`, `/healthz`, `/readyz`, the JSON API |
//! | [`store`] | the trace history: records and their provenance in SQLite (WAL), retention, streaming reads, the daemon's writer thread |
//! | [`export`] | stored traces as JSON Lines, per-hop CSV and RIPE Atlas results |
//! | [`import`] | traces measured by other tools (RIPE Atlas results, scamper JSON) turned into `Trace`s, streamed record by record |
//! | [`ip_text`] | IP addresses to and from text, fast (the standard library's results) |
//! | [`units`] | durations, sizes and [`units::Timestamp`] as text and back (a leaf) |
//! | [`atomic_file`] | replacing a file atomically and durably (write, flush, rename, flush the folder; a leaf) |
//! | [`privilege`] | the CAP_NET_RAW check made before any socket is opened |
//! | [`pipeline`] | the core step trace → enrich → analyze and the opened geolocation sources: the middle layer, used by commands and daemon alike |
//! | [`commands`] | the one-shot commands, one module per job (`trace`, `geo`, `check-config`, `analyze`, `export`), and their exit codes |
//! | [`daemon`] | wiring and lifecycle of `run`: reload, drain, stop |

pub mod alert;
pub mod analysis;
mod atomic_file;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod export;
pub mod geo;
pub mod http;
pub mod import;
mod ip_text;
pub mod metrics;
pub mod model;
mod paths;
pub mod pipeline;
pub mod privilege;
mod probe;
mod record_json;
mod render;
mod resolve;
mod scheduler;
pub mod store;
#[cfg(test)]
mod test_rng;
mod text_enum;
pub mod units;
