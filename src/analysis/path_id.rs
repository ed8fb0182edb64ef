//! Path identity: a short stable hash of the responding hop sequence.
//!
//! Rule: take the hops in TTL order, skip silent ones, and hash the most
//! frequent responder of each together with its TTL. A hop that stays silent
//! in one trace and answers in the next therefore changes the identity only
//! through its own entry, and an identical route always hashes the same.

use crate::model::Trace;
use sha2::{Digest, Sha256};

/// The identity of the route a trace took (16 hex digits).
#[must_use]
pub fn path_id(trace: &Trace) -> String {
    let mut h = Sha256::new();
    for hop in &trace.hops {
        if let Some(addr) = hop.addr {
            h.update([hop.ttl]);
            h.update(addr.to_string().as_bytes());
            h.update(b"\n");
        }
    }
    hex::encode(&h.finalize()[..8])
}
