//! The tests on the namespace lab (`lab.sh` beside this file), in one
//! binary: each file of this folder is the tests of one subject, a module
//! here. Every test builds its own lab under a prefix unique to the process
//! and the test (`tests/support`), so they run side by side.
//!
//! Run one subject with `cargo test --test lab trace::`.

#[path = "../support/mod.rs"]
mod support;

mod alert;
mod daemon;
mod dependencies;
mod evidence;
mod geo;
mod hints;
mod links;
mod mpls;
mod multipath;
mod prometheus;
mod report_browser;
mod secured;
mod store;
mod trace;
