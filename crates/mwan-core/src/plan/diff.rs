//! The minimal kernel changes from observed to desired state.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::{FibRule, KernelObjects, Route, RouteKey};

/// One kernel change. Routes are added with NLM_F_CREATE|NLM_F_REPLACE, so
/// `AddRoute` also rewrites a route whose key exists with other content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    AddRoute(Route),
    DelRoute(Route),
    AddRule(FibRule),
    DelRule(FibRule),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddRoute(r) => write!(f, "replace route {r}"),
            Op::DelRoute(r) => write!(f, "delete route {r}"),
            Op::AddRule(r) => write!(f, "add rule {r}"),
            Op::DelRule(r) => write!(f, "delete rule {r}"),
        }
    }
}

/// Minimal ops turning `observed` (our tagged objects) into `desired`.
///
/// Order: routes are written first (a new rule never points at an empty
/// table), then rules are added, then stale rules deleted, then stale routes
/// deleted. Objects equal in both produce nothing.
pub fn diff(desired: &KernelObjects, observed: &KernelObjects) -> Vec<Op> {
    let mut ops = Vec::new();
    let observed_routes: HashMap<RouteKey, &Route> =
        observed.routes.iter().map(|r| (r.key(), r)).collect();
    let desired_keys: HashSet<RouteKey> = desired.routes.iter().map(Route::key).collect();
    for r in &desired.routes {
        if observed_routes.get(&r.key()) != Some(&r) {
            ops.push(Op::AddRoute(r.clone()));
        }
    }
    let observed_rules: HashSet<&FibRule> = observed.rules.iter().collect();
    let desired_rules: HashSet<&FibRule> = desired.rules.iter().collect();
    for r in &desired.rules {
        if !observed_rules.contains(r) {
            ops.push(Op::AddRule(r.clone()));
        }
    }
    let mut seen = HashSet::new();
    for r in &observed.rules {
        if !desired_rules.contains(r) && seen.insert(r) {
            ops.push(Op::DelRule(r.clone()));
        }
    }
    let mut deleted = HashSet::new();
    for r in &observed.routes {
        if !desired_keys.contains(&r.key()) && deleted.insert(r.key()) {
            ops.push(Op::DelRoute(r.clone()));
        }
    }
    ops
}

/// Ops that remove every object in `observed` (stop).
pub fn teardown(observed: &KernelObjects) -> Vec<Op> {
    diff(&KernelObjects::default(), observed)
}
