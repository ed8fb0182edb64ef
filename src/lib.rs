//! transitwatch: where a country's critical internet traffic really goes.
//!
//! Data flows one way:
//!
//! ```text
//! config ──► probe ──► Trace ──► analysis ──► TraceRecord ──► render (table / JSON)
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
//! | [`privilege`] | the CAP_NET_RAW check made before any socket is opened |
//! | [`app`] | wiring of the commands; the only module that sees all others |

pub mod analysis;
pub mod app;
pub mod config;
pub mod geo;
pub mod model;
pub mod privilege;
pub mod probe;
pub mod render;
pub mod resolve;
