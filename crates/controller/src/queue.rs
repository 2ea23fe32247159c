//! The work queue: each app at most once in the queue and at most one worker per app; an app
//! woken while being reconciled is reconciled again right after.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::mpsc;

#[derive(Default)]
struct State {
    queued: HashSet<String>,
    running: HashSet<String>,
    dirty: HashSet<String>,
    /// Delayed wake-ups: app → when.
    later: HashMap<String, Instant>,
    /// Apps put in the queue since it was made.
    adds: u64,
}

/// How busy a queue is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub depth: usize,
    pub running: usize,
    pub adds: u64,
}

pub struct Queue {
    state: Mutex<State>,
    tx: mpsc::UnboundedSender<String>,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
}

impl Default for Queue {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Queue {
            state: Mutex::new(State::default()),
            tx,
            rx: tokio::sync::Mutex::new(rx),
        }
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add(&self, app: &str) {
        let mut state = self.lock();
        if state.running.contains(app) {
            state.dirty.insert(app.to_string());
        } else if state.queued.insert(app.to_string()) {
            state.adds += 1;
            let _ = self.tx.send(app.to_string());
        }
    }

    /// Wake `app` at `when` (the earliest of all requests wins).
    pub fn add_at(&self, app: &str, when: Instant) {
        let mut state = self.lock();
        let slot = state.later.entry(app.to_string()).or_insert(when);
        if when < *slot {
            *slot = when;
        }
    }

    /// Move due delayed wake-ups into the queue; called by a ticker.
    pub fn promote_due(&self) {
        let now = Instant::now();
        let due: Vec<String> = {
            let mut state = self.lock();
            let due: Vec<String> = state
                .later
                .iter()
                .filter(|(_, t)| **t <= now)
                .map(|(a, _)| a.clone())
                .collect();
            for app in &due {
                state.later.remove(app);
            }
            due
        };
        for app in due {
            self.add(&app);
        }
    }

    /// The next app to reconcile; marks it running.
    pub async fn next(&self) -> Option<String> {
        loop {
            let app = self.rx.lock().await.recv().await?;
            let mut state = self.lock();
            state.queued.remove(&app);
            if state.running.contains(&app) {
                state.dirty.insert(app);
                continue;
            }
            state.running.insert(app.clone());
            return Some(app);
        }
    }

    pub fn done(&self, app: &str) {
        let again = {
            let mut state = self.lock();
            state.running.remove(app);
            state.dirty.remove(app)
        };
        if again {
            self.add(app);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().queued.len()
    }

    /// Waiting, being reconciled, and ever added (the `workqueue_*` metrics).
    pub fn counts(&self) -> QueueCounts {
        let state = self.lock();
        QueueCounts {
            depth: state.queued.len(),
            running: state.running.len(),
            adds: state.adds,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_app_woken_while_running_runs_again_once() {
        let q = Queue::default();
        q.add("a");
        q.add("a");
        assert_eq!(q.next().await.as_deref(), Some("a"));
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.next().await.as_deref(), Some("b"));
        q.done("a");
        q.done("b");
        assert_eq!(q.next().await.as_deref(), Some("a"));
        assert!(q.is_empty());
        assert_eq!(
            q.counts(),
            QueueCounts {
                depth: 0,
                running: 1,
                adds: 3
            }
        );
    }
}
