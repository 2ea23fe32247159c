//! Failed logins, counted per user name: after [`MAX_FAILURES`] within [`WINDOW`], further
//! attempts are refused until the window passes — a password cannot be guessed at network
//! speed. Counted per server replica, as Argo CD does without Redis.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(300);
/// More names than this are not tracked (a flood of random names must not grow memory).
const MAX_TRACKED: usize = 10_000;

#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    /// Whether `user` may try now.
    pub fn allowed(&self, user: &str) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(times) = failures.get_mut(user) else {
            return true;
        };
        times.retain(|t| t.elapsed() < WINDOW);
        times.len() < MAX_FAILURES
    }

    pub fn failed(&self, user: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_TRACKED && !failures.contains_key(user) {
            failures.retain(|_, times| times.iter().any(|t| t.elapsed() < WINDOW));
            if failures.len() >= MAX_TRACKED {
                return;
            }
        }
        failures
            .entry(user.to_string())
            .or_default()
            .push(Instant::now());
    }

    pub fn succeeded(&self, user: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_lock_the_name_out() {
        let l = LoginLimiter::default();
        for _ in 0..MAX_FAILURES {
            assert!(l.allowed("admin"));
            l.failed("admin");
        }
        assert!(!l.allowed("admin"));
        assert!(l.allowed("alice"), "other names are not affected");
        l.succeeded("admin");
        assert!(l.allowed("admin"));
    }
}
