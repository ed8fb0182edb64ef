//! transitwatch: where a country's critical internet traffic really goes.
//!
//! Data flows one way, and every arrow of the module graph points down:
//!
//! ```text
//!  top       main (CLI) ─► commands {trace, geo, check_config, analyze, export, report, whatif, dns}   daemon (run: reload, drain, stop)
//!                              │                                                           │   ▲ scheduler (intervals, concurrency)
//!                              ▼                                                           ▼
//!  middle                   pipeline: probe ──► Trace ──► reverse_dns ──► geo (enrich) ──► analysis ──► TraceRecord
//!                              │
//!            ┌──────────┬──────┴─────┬───────────────┬───────────────┬──────────────┐
//!            ▼          ▼            ▼               ▼               ▼              ▼
//!  outputs  paths     alert       metrics       store (SQLite) ─► export, report   render / record_json, dataset
//!          (route    (webhooks)  (/metrics,      (history)       (datasets)    (table, JSON)
//!           state)                http API)
//!                                                                               import (Atlas, scamper) ─► pipeline
//!                                                                               dependency (latest records ─► what fails if a country, AS or company does;
//!                                                                                           dns: a name ─► its CNAME chain, zones, name servers;
//!                                                                                           overview: hosting, DNS verdicts, services at risk ─► metrics, report)
//!  bottom   model (Trace, Hop, PathVerdict, TraceRecord, PathKey, dns)    config    operators, asn_registry    units, input_file, atomic_file, text_enum, ip_text
//! ```
//!
//! Commands and the daemon sit on top and are imported by nothing; the
//! pipeline is the one way from a measurement to a judged record, used by
//! both; output modules read records and never each other (`metrics`
//! registers the families `alert` and `store` own); `dependency`, pure
//! like `analysis`, turns records into answers for `whatif` and the API
//! (its `dns` part alone asks DNS servers, through `reverse_dns`'s resolver);
//! `model` and the leaves depend on nothing of the crate but each other.
//!
//! | module | owns |
//! |---|---|
//! | [`commands`] | the one-shot commands, one module per job (`trace`, `geo`, `check-config`, `analyze`, `export`, `report`, `whatif`, `dns`), and their exit codes |
//! | [`daemon`] | wiring and lifecycle of `run`: reload, drain, stop, the state directory |
//! | [`state_dir`] | the state directory: one holder (lock), private modes, its key, sealed state files and their save metric (a leaf) |
//! | `scheduler` | per-target intervals with jitter, global concurrency, re-resolution, multipath enumerations at their own cadence; typed trace outcomes; the `Measurer` its loops and traces on demand share |
//! | [`pipeline`] | the core step trace → enrich → analyze and the opened geolocation sources: the middle layer |
//! | `probe` | the `Prober` trait and its trippy-core adapter (trippy types stay inside), with the MPLS label stacks (RFC 4950) routers quote; `multipath`: a target's load-balanced paths, UDP Paris flows varied by source port under an MDA-style stopping rule |
//! | `resolve` | host names to addresses (A/AAAA), with a deadline |
//! | `reverse_dns` | hop addresses to PTR names: bounded cache, bounded queries, a deadline per trace, name validation, its metric families |
//! | [`geo`] | hop geolocation: MMDB readers (schema detected), overrides, geofeeds, PeeringDB exchange LANs, registration databases, every source's evidence, plausibility (maxminddb types stay inside) |
//! | [`analysis`] | pure functions from a `Trace` to a `PathVerdict`; path identity; which hop locations a stored verdict counted; several paths of one target summed up (`multipath`: "1 of 2 load-balanced paths crosses South Africa (ZA)", the identity of the set) |
//! | [`dependency`] | what fails if a country, an AS or an organisation becomes unavailable: pure functions from the latest record of each path to the services that lose their route or their hosting (or are degraded, unaffected, unknown), with the hops as evidence and the sentences; who hosts each service (the destination's operator, where it is based, accepted or not); its text form (`whatif`, `/api/v1/whatif`); who answers for each service's name (`nameservers`: zones, name servers located by their dependency paths, one-foreign-country and one-foreign-operator flags, accepted or not) and whether a service loses its DNS; the `overview` of all of it that the daemon's metrics, `/api/v1/dependencies` and the report share; and, its one part with I/O (`dependency::dns`), what a service's name needs from DNS: CNAME chain, addresses, the zone and name servers of the name and of its alias target, typed problems, under a deadline (`transitwatch dns`, and the daemon every cycle) |
//! | [`import`] | traces measured by other tools (RIPE Atlas results, scamper JSON) turned into `Trace`s, streamed record by record |
//! | `paths` | last path per target, route changes, the saved state file |
//! | [`alert`] | the built-in notifier: alerts on verdict transitions, webhook delivery with retry, its saved state and metric families |
//! | [`metrics`] | the owned Prometheus registry: verdicts, paths, hops, country dependency, runs; opt-in per-hop latency and loss and the destination RTT histogram (`per_hop`); and the dependency families (services at risk, DNS flags, foreign operators) from the overview |
//! | [`http`] | the daemon's HTTP endpoint: `/metrics`, `/healthz`, `/readyz`, the JSON API, traces on demand of configured targets (through a narrow `OnDemandTracer` seam the daemon implements); TLS, basic authentication and headers from the exporter-toolkit's web configuration file |
//! | [`store`] | the trace history: records and their provenance in SQLite (WAL), retention, streaming reads, the writer thread, its metric family |
//! | [`export`] | stored traces as JSON Lines, per-hop CSV, RIPE Atlas results and Parquet |
//! | [`dataset`] | judged traces as tables (`traces`, `hops`, the flat CSV): the versioned column spec, Arrow batches, Parquet datasets (partitioned Hive-style), CSV rows; used by `export` and `analyze` |
//! | [`report`] | the regulator's report from the history: every figure computed once, written as JSON, Markdown or standalone HTML |
//! | `render` | the mtr-style report table |
//! | `record_json` | the trace record written as JSON directly (byte for byte serde_json's), for `analyze --json` |
//! | [`model`] | the shared vocabulary: `Trace`, `Hop`, `PathVerdict`, `TraceRecord` (with its `dns` and `multipath` parts), `PathKey` |
//! | [`config`] | the TOML file: raw mirror → validation → [`config::Config`]; errors with positions |
//! | [`asn_registry`] | AS number → published AS name and registration country (90,743 ASes, shipped in `data/asn/`), the base of an organisation the operator table does not list (a leaf beside `model`) |
//! | [`operators`] | the operator table: AS number → organisation, the country it is based in, its kind; shipped in `data/operators/`, extended by a deployment's file (a leaf beside `model`) |
//! | [`units`] | durations, sizes and [`units::Timestamp`] as text and back (a leaf) |
//! | [`input_file`] | every named file read bounded: regular files only, a maximum per kind, checked before reading (a leaf) |
//! | `atomic_file` | replacing a file atomically and durably (write, fsync, rename, fsync the folder; a leaf) |
//! | `text_enum` | the macro that names field-less enums as text and back (a leaf) |
//! | `allocator` | freed memory given back to the system after bursts (`malloc_trim`; the crate's one `unsafe` call, a leaf) |
//! | `ip_text` | IP addresses to and from text, fast (the standard library's results) |
//! | [`privilege`] | the CAP_NET_RAW check made before any socket is opened |
//!
//! Modules in plain type are private; the public ones are the surface the
//! binary and the integration tests use.

pub mod alert;
pub mod allocator;
pub mod analysis;
pub mod asn_registry;
mod atomic_file;
pub mod commands;
pub mod compressed;
pub mod config;
pub mod daemon;
pub mod dataset;
pub mod dependency;
pub mod export;
pub mod geo;
pub mod http;
pub mod import;
pub mod input_file;
mod ip_text;
pub mod metrics;
pub mod model;
pub mod operators;
mod paths;
pub mod pipeline;
pub mod privilege;
mod probe;
mod record_json;
mod render;
pub mod report;
mod resolve;
mod reverse_dns;
mod scheduler;
pub mod state_dir;
pub mod store;
#[cfg(test)]
mod test_rng;
mod text_enum;
pub mod units;
