//! Ref advertisements shared between everyone asking about one repository, and the count of
//! requests made to each remote.
//!
//! A caller says how fresh an answer it needs: an advertisement that *started* at or after
//! `since`. Askers of one repository queue behind the request in flight, so with a thousand
//! apps refreshing at once the remote sees one request per round, not a thousand — and no
//! asker ever gets an answer older than the moment it said it needs (a refresh asked for
//! after a push sees the push).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::{Access, RemoteRef, SourceError};

struct Advert {
    started: Instant,
    access: Access,
    result: Result<Arc<Vec<RemoteRef>>, SourceError>,
}

/// The newest advertisement per repository (one entry per repository ever asked about).
#[derive(Default)]
pub(crate) struct Adverts {
    slots: Mutex<HashMap<String, Arc<Mutex<Option<Advert>>>>>,
}

impl Adverts {
    /// The advertisement of `key` started at or after `since` with this access: the one held,
    /// the one in flight, or a new one made by `ask`.
    pub(crate) fn get(
        &self,
        key: &str,
        access: &Access,
        since: Instant,
        ask: impl FnOnce() -> Result<Vec<RemoteRef>, SourceError>,
    ) -> Result<Arc<Vec<RemoteRef>>, SourceError> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_string())
            .or_default()
            .clone();
        // Held while asking: whoever comes meanwhile waits for this answer.
        let mut held = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(advert) = held.as_ref()
            && advert.started >= since
            && advert.access == *access
        {
            return advert.result.clone();
        }
        let started = Instant::now();
        let result = ask().map(Arc::new);
        *held = Some(Advert {
            started,
            access: access.clone(),
            result: result.clone(),
        });
        result
    }
}

/// Requests made to remotes, by repository as the apps spell it.
#[derive(Default)]
pub(crate) struct RequestCounts {
    counts: Mutex<HashMap<String, [u64; 2]>>,
}

/// What a request to a remote was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// A ref advertisement (`ls-remote`).
    LsRemote,
    Fetch,
}

impl RequestKind {
    /// Argo CD's `request_type` label value.
    pub fn label(self) -> &'static str {
        match self {
            RequestKind::LsRemote => "ls-remote",
            RequestKind::Fetch => "fetch",
        }
    }
}

impl RequestCounts {
    pub(crate) fn add(&self, url: &str, kind: RequestKind) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.entry(url.to_string()).or_default()[kind as usize] += 1;
    }

    pub(crate) fn snapshot(&self) -> Vec<(String, RequestKind, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, RequestKind, u64)> = counts
            .iter()
            .flat_map(|(url, [ls, fetch])| {
                [
                    (url.clone(), RequestKind::LsRemote, *ls),
                    (url.clone(), RequestKind::Fetch, *fetch),
                ]
            })
            .filter(|(_, _, n)| *n > 0)
            .collect();
        out.sort_by(|a, b| (&a.0, a.1 as usize).cmp(&(&b.0, b.1 as usize)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn refs(commit: &str) -> Vec<RemoteRef> {
        vec![RemoteRef {
            name: "HEAD".into(),
            commit: commit.into(),
        }]
    }

    #[test]
    fn an_answer_is_reused_only_by_askers_it_is_fresh_enough_for() {
        let adverts = Adverts::default();
        let anon = Access::default();
        let asked = AtomicUsize::new(0);
        let ask = |c: &'static str| {
            let asked = &asked;
            move || {
                asked.fetch_add(1, Ordering::SeqCst);
                Ok(refs(c))
            }
        };
        let before = Instant::now();
        let first = adverts.get("r", &anon, before, ask("a")).unwrap();
        // Asked before the first answer started: reused.
        assert_eq!(adverts.get("r", &anon, before, ask("b")).unwrap(), first);
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // Asked for something newer: a new request.
        let later = Instant::now();
        assert_eq!(
            adverts.get("r", &anon, later, ask("b")).unwrap()[0].commit,
            "b"
        );
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        // Other credentials never share an answer.
        let other = Access::basic("u", "p");
        adverts.get("r", &other, before, ask("c")).unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 3);
        // Other repositories neither.
        adverts.get("s", &anon, before, ask("d")).unwrap();
        assert_eq!(asked.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn concurrent_askers_share_the_request_in_flight() {
        let adverts = Arc::new(Adverts::default());
        let asked = Arc::new(AtomicUsize::new(0));
        let since = Instant::now();
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (adverts, asked) = (adverts.clone(), asked.clone());
                std::thread::spawn(move || {
                    adverts
                        .get("r", &Access::default(), since, || {
                            asked.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok(refs("a"))
                        })
                        .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap()[0].commit, "a");
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn failures_are_shared_like_answers() {
        let adverts = Adverts::default();
        let since = Instant::now();
        let failed = adverts.get("r", &Access::default(), since, || {
            Err(SourceError::AuthFailed {
                url: "https://git.example/r".into(),
                message: "401".into(),
            })
        });
        let again = adverts.get("r", &Access::default(), since, || Ok(refs("a")));
        assert!(matches!(failed, Err(SourceError::AuthFailed { .. })));
        assert!(matches!(again, Err(SourceError::AuthFailed { .. })));
    }

    #[test]
    fn requests_are_counted_per_repository_and_kind() {
        let counts = RequestCounts::default();
        counts.add("https://a", RequestKind::LsRemote);
        counts.add("https://a", RequestKind::LsRemote);
        counts.add("https://a", RequestKind::Fetch);
        counts.add("https://b", RequestKind::LsRemote);
        assert_eq!(
            counts.snapshot(),
            vec![
                ("https://a".into(), RequestKind::LsRemote, 2),
                ("https://a".into(), RequestKind::Fetch, 1),
                ("https://b".into(), RequestKind::LsRemote, 1),
            ]
        );
    }
}
