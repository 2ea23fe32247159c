//! Sync: turn a comparison into an ordered plan (phases, waves, hooks, kind order, prunes)
//! and carry it out step by step against a cluster.
//!
//! Planning is pure. Execution goes through the [`Cluster`] trait, so the controller plugs in
//! kube-rs and tests plug in a fake. This crate never decides *whether* to sync — that is the
//! controller's automation policy.
#![forbid(unsafe_code)]

pub mod annotations;
pub mod hooks;
pub mod key;
pub mod operation;
pub mod plan;

pub use hooks::{HOOK_FINALIZER, SYNC_ID, name_hooks, terminate};
pub use key::ObjectKey;
pub use operation::{Cluster, Context, Created, Outcome, WriteError, WriteOptions, advance};
pub use plan::{Action, Item, Options, Task, plan};
