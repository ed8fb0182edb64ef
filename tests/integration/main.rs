//! The integration tests that need no namespace lab of their own, in one
//! binary (one link of `tests/support` and the crate instead of one per
//! file): each file of this folder is the tests of one subject, a module
//! here. Some of them use the lab when they may (`analyze_cli`,
//! `cli_errors`) and skip that part otherwise.
//!
//! Run one subject with `cargo test --test integration store::`.

#[path = "../support/mod.rs"]
mod support;

mod alert_schema;
mod alert_webhook;
mod analysis_scenarios;
mod analyze_cli;
mod atlas_evidence;
mod cli_errors;
mod cli_habits;
mod compressed_input;
mod config_file;
mod dashboards_rules;
mod datasets;
mod dns_dependencies;
mod export_cli;
mod geo_conformance;
mod geo_schemas;
mod geo_sources;
mod hostile;
mod hosting;
mod hostname_hints;
mod import_data;
mod log_colour;
mod metrics_http;
mod report;
mod report_browser;
mod reverse_dns;
mod secured_http;
mod slow_clients;
mod state_dir;
mod store;
mod stored_config;
mod structure;
mod systemd_unit;
mod trace_schema;
mod whatif;
