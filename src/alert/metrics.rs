//! The notifier's metric families: notifications per webhook by result,
//! drops from full queues, queue lengths and the number of firing alerts.
//!
//! [`AlertMetrics::register`] adds them to the registry the metrics module
//! owns; the notifier's delivery tasks keep the handle it returns.

use crate::text_enum::text_enum;
use prometheus::{IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use std::fmt;

/// How a notification left a webhook's queue, or a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The receiver answered 2xx.
    Delivered,
    /// One attempt failed; it will be retried.
    Failed,
    /// The receiver refused it (a 4xx other than 408 and 429); not retried.
    Rejected,
    /// It reached `[alert] max_age` undelivered and was given up.
    Expired,
}

text_enum! {
    /// The `result` label value.
    DeliveryResult {
        Delivered => "delivered",
        Failed => "failed",
        Rejected => "rejected",
        Expired => "expired",
    }
}

/// The alert notifier's families: a cheap handle (clones share the
/// series) that the delivery tasks keep. The `webhook` label is the
/// webhook's configured name, never its URL. The default handle belongs to
/// no registry and does nothing (metrics could not be set up).
#[derive(Clone, Default)]
pub struct AlertMetrics {
    families: Option<AlertFamilies>,
}

#[derive(Clone)]
struct AlertFamilies {
    notifications: IntCounterVec,
    dropped: IntCounterVec,
    queue_length: IntGaugeVec,
    active: IntGauge,
}

impl fmt::Debug for AlertMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertMetrics")
            .field("usable", &self.families.is_some())
            .finish()
    }
}

impl AlertMetrics {
    /// Creates the families and registers them in `registry`.
    ///
    /// # Errors
    ///
    /// What the Prometheus library says when a family is defective or
    /// already registered there.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let notifications = IntCounterVec::new(
            Opts::new(
                "transitwatch_alert_notifications_total",
                "Alert notifications per webhook by result: delivered (2xx), rejected \
                 (a 4xx that retrying cannot fix), expired (older than alert.max_age), \
                 and failed attempts (retried).",
            ),
            &["webhook", "result"],
        )?;
        registry.register(Box::new(notifications.clone()))?;
        let dropped = IntCounterVec::new(
            Opts::new(
                "transitwatch_alert_notifications_dropped_total",
                "Undelivered notifications dropped because the webhook's queue was full \
                 (the oldest goes first).",
            ),
            &["webhook"],
        )?;
        registry.register(Box::new(dropped.clone()))?;
        let queue_length = IntGaugeVec::new(
            Opts::new(
                "transitwatch_alert_queue_length",
                "Notifications waiting for delivery to the webhook.",
            ),
            &["webhook"],
        )?;
        registry.register(Box::new(queue_length.clone()))?;
        let active = IntGauge::new(
            "transitwatch_alerts_active",
            "Paths with a firing alert of the built-in notifier.",
        )?;
        registry.register(Box::new(active.clone()))?;
        Ok(Self {
            families: Some(AlertFamilies {
                notifications,
                dropped,
                queue_length,
                active,
            }),
        })
    }

    /// Publish a webhook with zero counts, so its series exist before the
    /// first notification.
    pub fn add_webhook(&self, webhook: &str) {
        let Some(f) = &self.families else { return };
        for result in DeliveryResult::ALL {
            f.notifications
                .with_label_values(&[webhook, result.as_str()])
                .inc_by(0);
        }
        f.dropped.with_label_values(&[webhook]).inc_by(0);
        f.queue_length.with_label_values(&[webhook]).set(0);
    }

    /// Remove a webhook's series (a reload removed it).
    pub fn remove_webhook(&self, webhook: &str) {
        let Some(f) = &self.families else { return };
        for result in DeliveryResult::ALL {
            let _ = f
                .notifications
                .remove_label_values(&[webhook, result.as_str()]);
        }
        let _ = f.dropped.remove_label_values(&[webhook]);
        let _ = f.queue_length.remove_label_values(&[webhook]);
    }

    /// Count one notification (or attempt) of `webhook`.
    pub fn count(&self, webhook: &str, result: DeliveryResult) {
        let Some(f) = &self.families else { return };
        f.notifications
            .with_label_values(&[webhook, result.as_str()])
            .inc();
    }

    /// Count `n` notifications of `webhook` dropped from a full queue.
    pub fn dropped(&self, webhook: &str, n: usize) {
        let Some(f) = &self.families else { return };
        f.dropped
            .with_label_values(&[webhook])
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Set the queue length of `webhook`.
    pub fn queue_length(&self, webhook: &str, len: usize) {
        let Some(f) = &self.families else { return };
        f.queue_length
            .with_label_values(&[webhook])
            .set(i64::try_from(len).unwrap_or(i64::MAX));
    }

    /// Set the number of active alerts.
    pub fn active(&self, n: usize) {
        let Some(f) = &self.families else { return };
        f.active.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_published_at_zero_and_removed_whole() {
        let registry = Registry::new();
        let metrics = AlertMetrics::register(&registry).unwrap();
        metrics.add_webhook("ops");
        let series = |registry: &Registry| -> usize {
            registry
                .gather()
                .iter()
                .map(|family| family.get_metric().len())
                .sum()
        };
        // Four results, one drop counter, one queue length, the active gauge.
        assert_eq!(series(&registry), 7);
        metrics.remove_webhook("ops");
        assert_eq!(series(&registry), 1);
        assert!(AlertMetrics::register(&registry).is_err());
    }

    #[test]
    fn the_default_handle_does_nothing() {
        let metrics = AlertMetrics::default();
        metrics.add_webhook("ops");
        metrics.count("ops", DeliveryResult::Failed);
        metrics.active(3);
    }
}
