//! The running notifier: the alert book, one queue and one delivery task
//! per webhook, and the state file that makes both survive a restart.
//!
//! ```text
//! observe(record) ──► AlertBook ──► notifications ──► queue per webhook ──► worker ──► POST
//!                          └───────────── alerts.json ◄──────┘   (saved before the first
//!                                                                 attempt, after each success)
//! ```
//!
//! Each worker sends the oldest notification of its queue, waits for the
//! answer, and only then removes it (and saves); on failure it waits out
//! the backoff and sends the same notification again, so a webhook gets its
//! notifications in order and a resolved one never overtakes its firing.
//! A stop lets an attempt in flight finish (its answer decides whether the
//! notification stays pending), so a graceful restart repeats nothing; a
//! crash between a receiver's 2xx and the save can repeat one notification,
//! which the receiver recognises by its `X-Transitwatch-Notification-Id`.

use super::backoff::Backoff;
use super::client::{Endpoint, EndpointError};
use super::metrics::{AlertMetrics, DeliveryResult};
use super::payload::{self, Envelope};
use super::queue::BoundedQueue;
use super::rules::{AlertBook, Notification, Status, Subject};
use super::sign::{signature, SIGNATURE_HEADER};
use super::state::{self, PendingRef, SavedState};
use crate::config::{AlertConfig, Secret, WebhookConfig, WebhookFormat};
use crate::model::{PathKey, TraceRecord};
use crate::state_dir::{LoadError, SaveError, StateFiles};
use crate::units::Timestamp;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinHandle;

/// The header naming the notification, for receivers that drop repeats.
pub const ID_HEADER: &str = "x-transitwatch-notification-id";

/// Posts in flight at once, over all webhooks. Each holds a socket (and a
/// resolver's for a moment); the process keeps its descriptors below 1024
/// for trippy-core's `select()` with a reserve of 256 shared with the HTTP
/// endpoint's 64 connections, so any number of webhooks stays within it.
pub const MAX_CONCURRENT_POSTS: usize = 16;

/// Delivery settings shared by every webhook.
#[derive(Debug, Clone)]
struct Settings {
    capacity: usize,
    backoff: Backoff,
    max_age: Option<Duration>,
    timeout: Duration,
    external_url: String,
}

impl Settings {
    fn of(config: &AlertConfig) -> Self {
        Self {
            capacity: config.queue_capacity,
            backoff: Backoff {
                initial: config.retry_initial,
                max: config.retry_max,
            },
            max_age: config.max_age,
            timeout: config.timeout,
            external_url: config.external_url.clone().unwrap_or_default(),
        }
    }
}

/// One webhook: where and how to post, and what waits.
struct Hook {
    name: String,
    format: WebhookFormat,
    secret: Option<Secret>,
    endpoint: Result<Endpoint, EndpointError>,
    queue: BoundedQueue<Notification>,
    wake: Arc<Notify>,
    /// Which worker serves this hook; a worker of an older generation
    /// (its webhook removed and added again) stops.
    generation: u64,
}

impl Hook {
    fn configure(&mut self, config: &WebhookConfig) {
        self.name.clone_from(&config.name);
        self.format = config.format;
        self.secret.clone_from(&config.secret);
        self.endpoint = endpoint_of(config);
    }
}

fn endpoint_of(config: &WebhookConfig) -> Result<Endpoint, EndpointError> {
    Endpoint::new(
        &config.url,
        config.ca.as_ref().map(|ca| ca.certs.as_slice()),
    )
}

struct State {
    book: AlertBook,
    hooks: BTreeMap<String, Hook>,
    settings: Settings,
    next_generation: u64,
}

struct Inner {
    // std Mutex: holders update maps and queues and write the small state
    // file; none awaits while holding it, and workers copy what they send
    // before they release it.
    state: Mutex<State>,
    files: StateFiles,
    metrics: AlertMetrics,
    // Caps the sockets deliveries hold at once (see MAX_CONCURRENT_POSTS);
    // a worker waits for a permit rather than failing its attempt.
    posts: Semaphore,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves maps that are still
        // consistent (every update is a single insert or removal).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write the state file; failure is logged (and returned), and the
    /// next change tries again.
    fn save(&self, state: &State) -> Result<(), SaveError> {
        let snapshot = SavedState {
            book: &state.book,
            webhooks: state
                .hooks
                .iter()
                .map(|(id, hook)| {
                    (
                        id.as_str(),
                        PendingRef {
                            name: &hook.name,
                            pending: hook.queue.iter().collect(),
                        },
                    )
                })
                .collect(),
        };
        let saved = state::save(&self.files, &snapshot);
        if let Err(e) = &saved {
            tracing::error!(error = %e, "cannot save the alert state; pending notifications are kept in memory");
        }
        saved
    }

    /// Queue `notifications` for every webhook, save, and wake the workers.
    fn enqueue(&self, state: &mut State, notifications: Vec<Notification>) {
        if notifications.is_empty() {
            return;
        }
        for n in &notifications {
            tracing::info!(
                alert = n.alert.labels.get("alertname").map_or("", String::as_str),
                path = n.alert.labels.get("path").map_or("", String::as_str),
                status = n.status.as_str(),
                id = %n.id,
                "alert {}", if n.status == Status::Firing { "fires" } else { "resolves" }
            );
        }
        for hook in state.hooks.values_mut() {
            for n in &notifications {
                let dropped = hook.queue.push(n.clone());
                if !dropped.is_empty() {
                    tracing::warn!(webhook = %hook.name, dropped = dropped.len(), "webhook queue full; dropped the oldest notifications");
                    self.metrics.dropped(&hook.name, dropped.len());
                }
            }
            self.metrics.queue_length(&hook.name, hook.queue.len());
        }
        self.metrics.active(state.book.active());
        let _ = self.save(state);
        for hook in state.hooks.values() {
            hook.wake.notify_one();
        }
    }
}

/// The built-in alert notifier. Create it inside a tokio runtime.
pub struct Notifier {
    inner: Arc<Inner>,
    // Why a watch channel: one send reaches every delivery worker at once,
    // also workers started later by a reload, which subscribe on start.
    stop: watch::Sender<bool>,
    // std Mutex: only the daemon's control path touches the task handles
    // (reconfigure, stop), never while awaiting.
    workers: Mutex<Vec<JoinHandle<()>>>,
}

fn now_unix() -> u64 {
    u64::try_from(Timestamp::now().unix()).unwrap_or(0)
}

impl Notifier {
    /// Load the saved state of the state directory and start a worker for
    /// every webhook of `config`. A file this daemon did not write (its
    /// seal does not verify) or a damaged one is moved aside and logged, and
    /// nothing of it is sent: the alerts are rebuilt from the next verdicts.
    /// Pending notifications of webhooks no longer configured are dropped
    /// (logged).
    ///
    /// # Errors
    /// The file is of a newer version: it is left as it is, and nothing is
    /// started.
    pub fn start(
        files: &StateFiles,
        config: &AlertConfig,
        metrics: AlertMetrics,
    ) -> Result<Self, LoadError> {
        let saved = match state::load(files) {
            Ok(saved) => saved.unwrap_or_default(),
            Err(e) if e.is_newer() => return Err(e),
            Err(e) => {
                let moved = state::move_aside(files, &e);
                tracing::error!(error = %e, moved_to = ?moved, "the alert state is not loaded; starting without it (alerts are rebuilt from the next verdicts)");
                state::Saved::default()
            }
        };
        let mut pending = saved.webhooks;
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                book: saved.book,
                hooks: BTreeMap::new(),
                settings: Settings::of(config),
                next_generation: 0,
            }),
            files: files.clone(),
            metrics,
            posts: Semaphore::new(MAX_CONCURRENT_POSTS),
        });
        let (stop, _) = watch::channel(false);
        let notifier = Self {
            inner,
            stop,
            workers: Mutex::new(Vec::new()),
        };
        notifier.apply(config, &mut pending);
        for (id, queue) in pending {
            if !queue.pending.is_empty() {
                tracing::warn!(webhook = %queue.name, id = %id, dropped = queue.pending.len(), "pending notifications of a webhook no longer configured are dropped");
            }
        }
        let state = notifier.inner.lock();
        notifier.inner.metrics.active(state.book.active());
        let _ = notifier.inner.save(&state);
        drop(state);
        Ok(notifier)
    }

    /// Make the webhooks those of `config`: keep the queues of URLs that
    /// stay (with their new name, format, secret and certificates), drop
    /// those of removed URLs, start workers for new ones. Delivery settings
    /// take effect at each worker's next attempt.
    pub fn reconfigure(&self, config: &AlertConfig) {
        let mut none = BTreeMap::new();
        self.apply(config, &mut none);
        let state = self.inner.lock();
        let _ = self.inner.save(&state);
    }

    fn apply(&self, config: &AlertConfig, saved: &mut BTreeMap<String, state::SavedQueue>) {
        let mut state = self.inner.lock();
        state.settings = Settings::of(config);
        let capacity = state.settings.capacity;
        let wanted: BTreeMap<String, &WebhookConfig> = config
            .webhooks
            .iter()
            .map(|w| (state::webhook_id(&w.url), w))
            .collect();
        let removed: Vec<String> = state
            .hooks
            .keys()
            .filter(|id| !wanted.contains_key(*id))
            .cloned()
            .collect();
        for id in removed {
            if let Some(hook) = state.hooks.remove(&id) {
                if !hook.queue.is_empty() {
                    tracing::warn!(webhook = %hook.name, dropped = hook.queue.len(), "webhook removed; its pending notifications are dropped");
                }
                self.inner.metrics.remove_webhook(&hook.name);
                hook.wake.notify_one();
            }
        }
        let mut spawn = Vec::new();
        for (id, config) in wanted {
            if let Some(hook) = state.hooks.get_mut(&id) {
                if hook.name != config.name {
                    self.inner.metrics.remove_webhook(&hook.name);
                    self.inner.metrics.add_webhook(&config.name);
                }
                hook.configure(config);
                let dropped = hook.queue.set_capacity(capacity);
                if !dropped.is_empty() {
                    self.inner.metrics.dropped(&hook.name, dropped.len());
                }
                self.inner
                    .metrics
                    .queue_length(&hook.name, hook.queue.len());
                continue;
            }
            let mut queue = BoundedQueue::new(capacity);
            let mut dropped = 0;
            if let Some(saved) = saved.remove(&id) {
                for n in saved.pending {
                    dropped += queue.push(n).len();
                }
            }
            state.next_generation += 1;
            let generation = state.next_generation;
            let hook = Hook {
                name: config.name.clone(),
                format: config.format,
                secret: config.secret.clone(),
                endpoint: endpoint_of(config),
                queue,
                wake: Arc::new(Notify::new()),
                generation,
            };
            if let Err(e) = &hook.endpoint {
                tracing::error!(webhook = %hook.name, error = %e, "webhook unusable; its notifications wait");
            }
            self.inner.metrics.add_webhook(&hook.name);
            if dropped > 0 {
                self.inner.metrics.dropped(&hook.name, dropped);
            }
            self.inner
                .metrics
                .queue_length(&hook.name, hook.queue.len());
            if !hook.queue.is_empty() {
                tracing::info!(webhook = %hook.name, pending = hook.queue.len(), "resuming the delivery of saved notifications");
            }
            spawn.push((id.clone(), generation, Arc::clone(&hook.wake)));
            state.hooks.insert(id, hook);
        }
        drop(state);
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        workers.retain(|w| !w.is_finished());
        for (id, generation, wake) in spawn {
            workers.push(tokio::spawn(work(
                Arc::clone(&self.inner),
                id,
                generation,
                wake,
                self.stop.subscribe(),
            )));
        }
    }

    /// A new record of a path: fire or resolve its alert as the verdict
    /// says (see `rules`), and queue the notifications.
    pub fn observe(&self, subject: Subject<'_>, record: &TraceRecord) {
        let mut state = self.inner.lock();
        let notifications = state.book.observe(subject, record, now_unix());
        self.inner.enqueue(&mut state, notifications);
    }

    /// Resolve the alerts of paths `keep` rejects (their targets are no
    /// longer configured).
    pub fn retain(&self, keep: impl Fn(&PathKey) -> bool) {
        let mut state = self.inner.lock();
        let notifications = state.book.retain(keep, Timestamp::now());
        self.inner.enqueue(&mut state, notifications);
    }

    /// Number of active alerts.
    #[must_use]
    pub fn active(&self) -> usize {
        self.inner.lock().book.active()
    }

    /// Notifications waiting per webhook name.
    #[must_use]
    pub fn pending(&self) -> BTreeMap<String, usize> {
        self.inner
            .lock()
            .hooks
            .values()
            .map(|h| (h.name.clone(), h.queue.len()))
            .collect()
    }

    /// Stop the workers: each finishes the attempt in flight (within
    /// `grace`; an attempt still running then is cut off and its
    /// notification stays pending) and the state is saved.
    ///
    /// # Errors
    /// The final save failed: what changed since the last save is lost.
    pub async fn stop(self, grace: Duration) -> Result<(), SaveError> {
        let _ = self.stop.send(true);
        let workers =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        let deadline = tokio::time::Instant::now() + grace;
        for mut worker in workers {
            if tokio::time::timeout_at(deadline, &mut worker)
                .await
                .is_err()
            {
                worker.abort();
            }
        }
        let state = self.inner.lock();
        self.inner.save(&state)
    }
}

/// What a worker sends next, copied out of the lock.
struct Attempt {
    notification: Notification,
    name: String,
    format: WebhookFormat,
    secret: Option<Secret>,
    endpoint: Result<Endpoint, EndpointError>,
    settings: Settings,
}

/// What became of one attempt.
enum DeliveryOutcome {
    Delivered,
    Rejected(String),
    Expired,
    Failed(String),
}

/// Deliver the queue of webhook `id` until stopped or removed.
async fn work(
    inner: Arc<Inner>,
    id: String,
    generation: u64,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            return;
        }
        let attempt = {
            let state = inner.lock();
            let Some(hook) = state.hooks.get(&id).filter(|h| h.generation == generation) else {
                return;
            };
            hook.queue.front().map(|n| Attempt {
                notification: n.clone(),
                name: hook.name.clone(),
                format: hook.format,
                secret: hook.secret.clone(),
                endpoint: hook.endpoint.clone(),
                settings: state.settings.clone(),
            })
        };
        let Some(attempt) = attempt else {
            tokio::select! {
                () = wake.notified() => continue,
                _ = stop.changed() => return,
            }
        };
        let outcome = {
            // The semaphore is never closed; without a permit, post anyway.
            let _permit = inner.posts.acquire().await.ok();
            deliver(&attempt).await
        };
        let delay = match &outcome {
            DeliveryOutcome::Failed(why) => {
                failures = failures.saturating_add(1);
                let delay = attempt.settings.backoff.delay(failures);
                tracing::warn!(webhook = %attempt.name, id = %attempt.notification.id, error = %why, attempt = failures, retry_in = ?delay, "alert delivery failed; will retry");
                inner.metrics.count(&attempt.name, DeliveryResult::Failed);
                Some(delay)
            }
            done => {
                failures = 0;
                let result = match done {
                    DeliveryOutcome::Delivered => {
                        tracing::info!(webhook = %attempt.name, id = %attempt.notification.id, "alert delivered");
                        DeliveryResult::Delivered
                    }
                    DeliveryOutcome::Rejected(why) => {
                        tracing::error!(webhook = %attempt.name, id = %attempt.notification.id, error = %why, "alert rejected by the receiver; not retried");
                        DeliveryResult::Rejected
                    }
                    _ => {
                        tracing::error!(webhook = %attempt.name, id = %attempt.notification.id, "alert undelivered for longer than alert.max_age; given up");
                        DeliveryResult::Expired
                    }
                };
                inner.metrics.count(&attempt.name, result);
                let mut state = inner.lock();
                if let Some(hook) = state.hooks.get_mut(&id) {
                    // The front may have been dropped from a full queue
                    // meanwhile; remove only what was sent.
                    if hook.queue.front().map(|n| &n.id) == Some(&attempt.notification.id) {
                        hook.queue.pop();
                    }
                    inner.metrics.queue_length(&hook.name, hook.queue.len());
                }
                let _ = inner.save(&state);
                None
            }
        };
        if let Some(delay) = delay {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// One attempt (or the decision that the notification is too old).
async fn deliver(attempt: &Attempt) -> DeliveryOutcome {
    let n = &attempt.notification;
    if let Some(max_age) = attempt.settings.max_age {
        let age = Duration::from_secs(now_unix().saturating_sub(n.created_unix));
        if age > max_age {
            return DeliveryOutcome::Expired;
        }
    }
    let endpoint = match &attempt.endpoint {
        Ok(endpoint) => endpoint,
        Err(why) => return DeliveryOutcome::Failed(why.to_string()),
    };
    let body = payload::body(
        attempt.format,
        n,
        Envelope {
            receiver: &attempt.name,
            external_url: &attempt.settings.external_url,
        },
    );
    let mut headers = vec![(ID_HEADER, n.id.clone())];
    if let Some(secret) = &attempt.secret {
        headers.push((SIGNATURE_HEADER, signature(secret.expose(), &body)));
    }
    match endpoint
        .post(&headers, body, attempt.settings.timeout)
        .await
    {
        Ok(_) => DeliveryOutcome::Delivered,
        Err(e) if e.retryable() => DeliveryOutcome::Failed(e.to_string()),
        Err(e) => DeliveryOutcome::Rejected(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::rules::tests::{record, subject};
    use crate::config::{WebhookConfig, WebhookFormat};
    use crate::metrics::Metrics;
    use crate::model::VerdictClass;
    use crate::state_dir::{SaveMetrics, StateDir};

    /// A state directory held for one test, in a folder removed with it.
    fn held() -> (tempfile::TempDir, StateDir) {
        let base = tempfile::tempdir().unwrap();
        let dir = StateDir::open(base.path(), SaveMetrics::default()).unwrap();
        (base, dir)
    }

    /// A webhook whose URL cannot be used: every attempt fails at once,
    /// without I/O, so the schedule is the worker's alone.
    fn config(url: &str) -> AlertConfig {
        AlertConfig {
            webhooks: vec![WebhookConfig {
                url: url.to_string(),
                format: WebhookFormat::Alertmanager,
                name: "hook".to_string(),
                secret: None,
                ca: None,
            }],
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(4),
            ..AlertConfig::default()
        }
    }

    fn failed(metrics: &Metrics) -> u64 {
        let text = metrics.render().unwrap();
        text.lines()
            .find(|l| {
                l.starts_with("transitwatch_alert_notifications_total{")
                    && l.contains("result=\"failed\"")
            })
            .and_then(|l| l.rsplit_once(' '))
            .map_or(0, |(_, v)| v.parse().unwrap())
    }

    fn transit(at: &str) -> TraceRecord {
        record(VerdictClass::ForeignTransit, true, &["LS", "ZA", "LS"], at)
    }

    #[tokio::test(start_paused = true)]
    async fn failed_attempts_back_off_exponentially_up_to_the_ceiling() {
        let (_base, dir) = held();
        let metrics = Metrics::new("test");
        let notifier =
            Notifier::start(dir.files(), &config("unusable://x"), metrics.alerts()).unwrap();
        let start = tokio::time::Instant::now();
        notifier.observe(subject(), &transit("t1"));
        // Attempts at 0, 1, 3, 7, 11, 15 s: waits of 1, 2, 4, 4, 4.
        let expected = [
            (500, 1),
            (1500, 2),
            (2900, 2),
            (3500, 3),
            (6900, 3),
            (7500, 4),
            (10_900, 4),
            (11_500, 5),
            (15_500, 6),
        ];
        for (at_ms, attempts) in expected {
            tokio::time::sleep_until(start + Duration::from_millis(at_ms)).await;
            assert_eq!(failed(&metrics), attempts, "attempts by {at_ms} ms");
        }
        assert_eq!(notifier.pending()["hook"], 1);
        notifier.stop(Duration::from_secs(1)).await.unwrap();
    }

    #[tokio::test]
    async fn pending_notifications_and_active_alerts_survive_a_restart() {
        let (_base, dir) = held();
        let cfg = config("unusable://x");
        let notifier = Notifier::start(dir.files(), &cfg, AlertMetrics::default()).unwrap();
        notifier.observe(subject(), &transit("t1"));
        notifier.observe(subject(), &transit("t2"));
        assert_eq!(notifier.pending()["hook"], 1);
        notifier.stop(Duration::from_secs(1)).await.unwrap();

        let again = Notifier::start(dir.files(), &cfg, AlertMetrics::default()).unwrap();
        assert_eq!(again.active(), 1);
        assert_eq!(again.pending()["hook"], 1);
        // The same finding after the restart is no news.
        again.observe(subject(), &transit("t3"));
        assert_eq!(again.pending()["hook"], 1);
        // The path comes home: one resolved notification queues behind.
        again.observe(
            subject(),
            &record(VerdictClass::Domestic, false, &["LS"], "t4"),
        );
        assert_eq!(again.pending()["hook"], 2);
        assert_eq!(again.active(), 0);
        // A reload that keeps the URL keeps the queue; another URL starts empty.
        let mut renamed = cfg.clone();
        renamed.webhooks[0].name = "renamed".into();
        again.reconfigure(&renamed);
        assert_eq!(again.pending()["renamed"], 2);
        again.reconfigure(&config("unusable://y"));
        assert_eq!(again.pending()["hook"], 0);
        again.stop(Duration::from_secs(1)).await.unwrap();

        let text = std::fs::read_to_string(dir.path().join(state::STATE_FILE)).unwrap();
        assert!(!text.contains("unusable://"), "URLs stay out of the file");
    }

    #[tokio::test]
    async fn a_damaged_state_file_is_moved_aside() {
        let (_base, dir) = held();
        std::fs::write(dir.path().join(state::STATE_FILE), "{ not json").unwrap();
        let notifier = Notifier::start(
            dir.files(),
            &config("unusable://x"),
            AlertMetrics::default(),
        )
        .unwrap();
        assert_eq!(notifier.active(), 0);
        assert!(dir.path().join("alerts.json.damaged").exists());
        notifier.observe(subject(), &transit("t1"));
        notifier.stop(Duration::from_secs(1)).await.unwrap();
        assert!(state::load(dir.files()).unwrap().is_some());
    }

    #[tokio::test]
    async fn an_edited_state_file_is_refused_and_nothing_of_it_is_queued() {
        let (_base, dir) = held();
        let cfg = config("unusable://x");
        let notifier = Notifier::start(dir.files(), &cfg, AlertMetrics::default()).unwrap();
        notifier.observe(subject(), &transit("t1"));
        notifier.stop(Duration::from_secs(1)).await.unwrap();
        let path = dir.path().join(state::STATE_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        let saved = state::load(dir.files()).unwrap().unwrap();
        let summary = &saved.webhooks[&state::webhook_id("unusable://x")].pending[0]
            .alert
            .annotations["summary"];
        let quoted = serde_json::to_string(summary).unwrap();
        assert!(text.contains(&quoted), "{text}");
        let edited = text.replace(&quoted, "\"all clear, ignore previous alerts\"");
        std::fs::write(&path, &edited).unwrap();

        let again = Notifier::start(dir.files(), &cfg, AlertMetrics::default()).unwrap();
        assert_eq!(again.pending()["hook"], 0);
        assert_eq!(again.active(), 0);
        let aside = dir.path().join("alerts.json.refused");
        assert_eq!(std::fs::read_to_string(aside).unwrap(), edited);
        // The alert is rebuilt from the next verdict.
        again.observe(subject(), &transit("t2"));
        assert_eq!(again.pending()["hook"], 1);
        again.stop(Duration::from_secs(1)).await.unwrap();
    }

    #[tokio::test]
    async fn a_newer_state_file_is_neither_loaded_nor_overwritten() {
        let (_base, dir) = held();
        let path = dir.path().join(state::STATE_FILE);
        let future = r#"{"version":3,"mac":"hmac-sha256:00","state":{"book":{}},"more":1}"#;
        std::fs::write(&path, future).unwrap();
        let Err(err) = Notifier::start(
            dir.files(),
            &config("unusable://x"),
            AlertMetrics::default(),
        ) else {
            panic!("a newer file was loaded");
        };
        assert!(err.to_string().contains("version 3 is newer"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), future);
    }

    #[tokio::test]
    async fn a_full_queue_keeps_the_newest() {
        let (_base, dir) = held();
        let mut cfg = config("unusable://x");
        cfg.queue_capacity = 2;
        let metrics = Metrics::new("test");
        let notifier = Notifier::start(dir.files(), &cfg, metrics.alerts()).unwrap();
        for i in 0..3 {
            notifier.observe(subject(), &transit(&format!("f{i}")));
            notifier.observe(
                subject(),
                &record(VerdictClass::Domestic, false, &["LS"], &format!("r{i}")),
            );
        }
        assert_eq!(notifier.pending()["hook"], 2);
        let text = metrics.render().unwrap();
        assert!(
            text.contains("transitwatch_alert_notifications_dropped_total{webhook=\"hook\"} 4"),
            "{text}"
        );
        notifier.stop(Duration::from_secs(1)).await.unwrap();
        let saved = state::load(dir.files()).unwrap().unwrap();
        let pending = &saved.webhooks[&state::webhook_id("unusable://x")].pending;
        let ids: Vec<&str> = pending.iter().map(|n| n.alert.starts_at.as_str()).collect();
        let f2 = crate::alert::rules::tests::stamp("f2").to_string();
        assert_eq!(ids, [f2.as_str(), f2.as_str()]);
        assert_eq!(pending[0].status, Status::Firing);
        assert_eq!(pending[1].status, Status::Resolved);
    }

    #[tokio::test]
    async fn notifications_older_than_max_age_are_given_up() {
        let (_base, dir) = held();
        let cfg = config("unusable://x");
        let notifier = Notifier::start(dir.files(), &cfg, AlertMetrics::default()).unwrap();
        notifier.observe(subject(), &transit("t1"));
        notifier.stop(Duration::from_secs(1)).await.unwrap();
        // Age the saved notification by a day (sealed again, as the
        // daemon would have written it).
        let files = dir.files();
        let mut saved: serde_json::Value = files
            .load(state::STATE_FILE, state::VERSION)
            .unwrap()
            .unwrap();
        for hook in saved["webhooks"].as_object_mut().unwrap().values_mut() {
            for n in hook["pending"].as_array_mut().unwrap() {
                n["created_unix"] = serde_json::json!(now_unix() - 86_400);
            }
        }
        files
            .save(state::STATE_FILE, state::VERSION, &saved)
            .unwrap();

        let mut cfg = cfg;
        cfg.max_age = Some(Duration::from_secs(3600));
        let metrics = Metrics::new("test");
        let again = Notifier::start(dir.files(), &cfg, metrics.alerts()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while again.pending()["hook"] > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(again.pending()["hook"], 0);
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                "transitwatch_alert_notifications_total{result=\"expired\",webhook=\"hook\"} 1"
            ),
            "{text}"
        );
        // The alert itself stays active: only its delivery was given up.
        assert_eq!(again.active(), 1);
        again.stop(Duration::from_secs(1)).await.unwrap();
    }
}
