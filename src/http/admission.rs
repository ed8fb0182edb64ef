//! Admission of HTTP connections and requests, in stages, so that slow or
//! heavy clients cannot starve monitoring.
//!
//! 1. **Waiting for a head.** An accepted connection holds only a cheap
//!    *waiting* place ([`WAITING_SLOTS`]) while its client sends a request
//!    head, at most [`HEADER_DEADLINE`] (hyper's `header_read_timeout`; idle
//!    keep-alive counts as waiting too). When the places are full, a new
//!    connection takes the place of the *oldest* waiting one, which is closed:
//!    a client that sends its head at once (a scraper) is served within
//!    milliseconds however many slowloris connections are open.
//! 2. **Admitted by route.** Once the head is read the connection leaves the
//!    waiting places and the request is admitted by its route:
//!    monitoring (`/metrics`, `/healthz`, `/readyz`) to a reserved share of
//!    [`MONITORING_SLOTS`] that API requests can never take; the API
//!    (`/api/v1/*`) to its own [`API_SLOTS`], at most [`API_PER_CLIENT`] per
//!    peer address. A request that finds no place is refused at once (503,
//!    or 429 for the per-client limit) with `Retry-After`, rather than queued.
//!    The place is held until the response body is finished or dropped; a
//!    keep-alive connection then waits for its next head in stage 1 again.
//! 3. **Writing.** Every connection has a write deadline
//!    ([`WRITE_STALL`]): a client that stops reading is cut off, freeing its
//!    place.
//!
//! # File descriptors
//!
//! trippy-core's `select()` panics on a descriptor >= 1024, so the tracers'
//! budget keeps `DEFAULT_RESERVE` (256) descriptors for the rest of the process.
//! HTTP takes at most [`MAX_CONNECTIONS`] sockets plus, per API request
//! streaming `/api/v1/traces`, a read-only database connection (the database
//! file and its WAL: [`FDS_PER_API_REQUEST`] in all); [`HTTP_FDS`] is the
//! sum, and a compile-time check keeps it within the reserve with room for
//! the listener, logs, the history writer and webhook clients. (While the
//! history writer holds its lock, SQLite keeps the database descriptor of a
//! closed read-only connection open and reuses it for the next one: after a
//! load, as many stay open as history readers were open at once, at most
//! [`API_SLOTS`], within the same count.)

use crate::probe::DEFAULT_RESERVE;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// Connections that may wait for a request head at once; a further one
/// closes the oldest.
pub const WAITING_SLOTS: usize = 64;
/// Monitoring requests (`/metrics`, `/healthz`, `/readyz`) served at once:
/// a share the API cannot take. A Prometheus server or two and a supervisor
/// need three.
pub const MONITORING_SLOTS: usize = 8;
/// API requests (`/api/v1/*`) served at once, streams included.
pub const API_SLOTS: usize = 32;
/// API requests of one peer address served at once.
pub const API_PER_CLIENT: usize = 8;
/// Room for connections between stages: answering outside the shares (404,
/// 405, a refusal), which takes moments, or just accepted.
const ANSWERING_SLOTS: usize = 8;
/// Most connections open at once: every stage's places. Beyond it, a new
/// client closes the oldest waiting connection, or (none waiting) waits in
/// the kernel's accept backlog.
pub const MAX_CONNECTIONS: usize = WAITING_SLOTS + MONITORING_SLOTS + API_SLOTS + ANSWERING_SLOTS;
/// Descriptors one API request may hold: its socket, and the database file
/// and WAL of the read-only store connection of `/api/v1/traces`.
pub const FDS_PER_API_REQUEST: usize = 3;
/// Most descriptors HTTP holds at once: the listener, one accepted
/// connection waiting for a place, every connection, and the store files of
/// API requests.
pub const HTTP_FDS: usize = 2 + MAX_CONNECTIONS + API_SLOTS * (FDS_PER_API_REQUEST - 1);
// Leaves at least 64 descriptors of the reserve to the rest of the process
// (stdio, logs, the history writer's database, webhook clients, GeoIP files).
const _: () = assert!(HTTP_FDS + 64 <= DEFAULT_RESERVE);

/// Longest a client may take to send a complete request head, counted from
/// the connection's start or the end of its previous response.
pub const HEADER_DEADLINE: Duration = Duration::from_secs(5);
/// Longest a response write may make no progress (the client reads nothing)
/// before the connection is cut off.
pub const WRITE_STALL: Duration = Duration::from_secs(5);

/// The admission share of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Share {
    /// `/metrics`, `/healthz`, `/readyz`.
    Monitoring,
    /// `/api/v1/*`.
    Api,
    /// Answers that cost nothing (404, 405).
    Free,
}

/// Why a request was refused a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Every place of the request's share is taken (503).
    Busy,
    /// This peer already holds [`API_PER_CLIENT`] API places (429).
    ClientBusy,
    /// The connection was closed to make room while its head arrived.
    Evicted,
}

/// The waiting places of stage 1, oldest first.
#[derive(Default)]
pub(super) struct WaitingRoom {
    // std Mutex: held to insert or remove one entry, never across an await.
    // Keys grow with each entry, so the first is the longest waiting.
    places: Mutex<(u64, BTreeMap<u64, Arc<Notify>>)>,
}

impl WaitingRoom {
    /// Take a place for `evict`, closing the oldest waiting connection
    /// (waking its `evict`) if all are taken. Returns the place's key.
    fn enter(&self, evict: &Arc<Notify>) -> u64 {
        let mut places = self.places.lock().unwrap_or_else(PoisonError::into_inner);
        if places.1.len() >= WAITING_SLOTS {
            if let Some((_, oldest)) = places.1.pop_first() {
                oldest.notify_one();
            }
        }
        let key = places.0;
        places.0 += 1;
        places.1.insert(key, Arc::clone(evict));
        key
    }

    /// Close the oldest waiting connection, if any; `true` if there was one.
    pub(super) fn evict_oldest(&self) -> bool {
        let oldest = self
            .places
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .pop_first();
        oldest.map(|(_, evict)| evict.notify_one()).is_some()
    }

    /// Give up place `key`; `false` if it was already taken away.
    fn leave(&self, key: u64) -> bool {
        self.places
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .remove(&key)
            .is_some()
    }

    /// Connections waiting now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.places
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .len()
    }
}

/// No place (a sentinel key).
const NO_PLACE: u64 = u64::MAX;

/// One connection's standing in the waiting room.
pub(super) struct Waiting {
    room: Arc<WaitingRoom>,
    /// Woken when the connection is closed to make room.
    pub(super) evict: Arc<Notify>,
    // Requests of one connection run one after the other; atomics only let
    // the guard of a finished response re-enter from another task.
    key: AtomicU64,
    closed: AtomicBool,
}

impl Waiting {
    /// A new connection, waiting for its first head.
    pub(super) fn enter(room: &Arc<WaitingRoom>) -> Arc<Self> {
        let evict = Arc::new(Notify::new());
        let key = room.enter(&evict);
        Arc::new(Self {
            room: Arc::clone(room),
            evict,
            key: AtomicU64::new(key),
            closed: AtomicBool::new(false),
        })
    }

    /// Its head is read: leave the waiting room. `false` if the connection
    /// was closed to make room meanwhile.
    fn head_read(&self) -> bool {
        match self.key.swap(NO_PLACE, Ordering::AcqRel) {
            NO_PLACE => true,
            key => self.room.leave(key),
        }
    }

    /// Its response is done: wait for the next head (keep-alive).
    fn response_done(&self) {
        if !self.closed.load(Ordering::Acquire) {
            let key = self.room.enter(&self.evict);
            if self.key.swap(key, Ordering::AcqRel) != NO_PLACE {
                // Cannot happen (one request at a time); do not leak a place.
                self.room.leave(key);
            }
        }
    }

    /// The connection is closed.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let key = self.key.swap(NO_PLACE, Ordering::AcqRel);
        if key != NO_PLACE {
            self.room.leave(key);
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.close();
    }
}

/// The places of stage 2.
pub(super) struct Shares {
    // Why semaphores: a fixed number of places per share, taken without
    // waiting (`try_acquire`) and given back when the permit drops with the
    // response body.
    monitoring: Arc<Semaphore>,
    api: Arc<Semaphore>,
    // std Mutex: one count changed per request start and end, never held
    // across an await. Entries at zero are removed, so the map holds at most
    // API_SLOTS peers.
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Default for Shares {
    fn default() -> Self {
        Self {
            monitoring: Arc::new(Semaphore::new(MONITORING_SLOTS)),
            api: Arc::new(Semaphore::new(API_SLOTS)),
            per_client: Arc::default(),
        }
    }
}

/// A request's place, held with its response body; dropped, it gives the
/// place back and puts a keep-alive connection back in the waiting room.
pub(super) struct Pass {
    _permit: Option<OwnedSemaphorePermit>,
    _client: Option<ClientPlace>,
    waiting: Arc<Waiting>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.waiting.response_done();
    }
}

/// One of a peer's API places.
struct ClientPlace {
    peer: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ClientPlace {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

impl Shares {
    /// Admit a request of `share` from `peer` on the connection `waiting`,
    /// whose head was just read. A refused request gets a [`Pass`] without a
    /// place, to put the connection back in the waiting room after the
    /// refusal.
    pub(super) fn admit(
        &self,
        share: Share,
        peer: IpAddr,
        waiting: &Arc<Waiting>,
    ) -> (Pass, Result<(), Refusal>) {
        let pass = |permit, client| Pass {
            _permit: permit,
            _client: client,
            waiting: Arc::clone(waiting),
        };
        if !waiting.head_read() {
            return (pass(None, None), Err(Refusal::Evicted));
        }
        match share {
            Share::Free => (pass(None, None), Ok(())),
            Share::Monitoring => match Arc::clone(&self.monitoring).try_acquire_owned() {
                Ok(permit) => (pass(Some(permit), None), Ok(())),
                Err(_) => (pass(None, None), Err(Refusal::Busy)),
            },
            Share::Api => {
                let client = {
                    let mut counts = self
                        .per_client
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    let n = counts.entry(peer).or_insert(0);
                    if *n >= API_PER_CLIENT {
                        None
                    } else {
                        *n += 1;
                        Some(ClientPlace {
                            peer,
                            counts: Arc::clone(&self.per_client),
                        })
                    }
                };
                let Some(client) = client else {
                    return (pass(None, None), Err(Refusal::ClientBusy));
                };
                match Arc::clone(&self.api).try_acquire_owned() {
                    Ok(permit) => (pass(Some(permit), Some(client)), Ok(())),
                    Err(_) => (pass(None, None), Err(Refusal::Busy)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_waiting_room_closes_the_oldest_connection() {
        let room = Arc::new(WaitingRoom::default());
        let first = Waiting::enter(&room);
        let rest: Vec<_> = (1..WAITING_SLOTS).map(|_| Waiting::enter(&room)).collect();
        assert_eq!(room.len(), WAITING_SLOTS);
        let newest = Waiting::enter(&room);
        assert_eq!(room.len(), WAITING_SLOTS);
        // The oldest was told to close (a stored wake-up), the others not.
        let woken = |w: &Waiting| {
            let notified = w.evict.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable()
        };
        assert!(woken(&first));
        assert!(!woken(&rest[0]));
        assert!(!first.head_read(), "an evicted connection is not admitted");
        assert!(newest.head_read());
        assert_eq!(room.len(), WAITING_SLOTS - 1);
        drop(rest);
        assert_eq!(room.len(), 0);
    }

    #[test]
    fn shares_are_separate_and_the_api_is_limited_per_client() {
        let room = Arc::new(WaitingRoom::default());
        let shares = Shares::default();
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let mut held = Vec::new();
        let mut admit = |share, peer| {
            let (pass, result) = shares.admit(share, peer, &Waiting::enter(&room));
            held.push(pass);
            result
        };
        for _ in 0..API_PER_CLIENT {
            assert_eq!(admit(Share::Api, one), Ok(()));
        }
        assert_eq!(admit(Share::Api, one), Err(Refusal::ClientBusy));
        // Other peers fill the API share...
        for i in 0..API_SLOTS - API_PER_CLIENT {
            let peer = IpAddr::from([192, 0, 2, u8::try_from(10 + i).unwrap()]);
            assert_eq!(admit(Share::Api, peer), Ok(()));
        }
        let other: IpAddr = "192.0.2.200".parse().unwrap();
        assert_eq!(admit(Share::Api, other), Err(Refusal::Busy));
        // ... and monitoring, from the same address, is still served.
        for _ in 0..MONITORING_SLOTS {
            assert_eq!(admit(Share::Monitoring, one), Ok(()));
        }
        assert_eq!(admit(Share::Monitoring, one), Err(Refusal::Busy));
        drop(held);
        let (_pass, result) = shares.admit(Share::Api, one, &Waiting::enter(&room));
        assert_eq!(result, Ok(()));
        assert_eq!(shares.per_client.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_finished_response_waits_for_the_next_head_and_a_closed_one_does_not() {
        let room = Arc::new(WaitingRoom::default());
        let shares = Shares::default();
        let waiting = Waiting::enter(&room);
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let (pass, result) = shares.admit(Share::Monitoring, peer, &waiting);
        assert_eq!(result, Ok(()));
        assert_eq!(room.len(), 0);
        drop(pass);
        assert_eq!(room.len(), 1, "keep-alive: waiting again");
        let (pass, _) = shares.admit(Share::Free, peer, &waiting);
        waiting.close();
        drop(pass);
        assert_eq!(room.len(), 0);
    }
}
