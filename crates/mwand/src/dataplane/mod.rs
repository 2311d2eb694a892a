//! Adapter to the data plane: builds the core's network plan from config,
//! decisions and WAN facts (`mwan_core::plan::build`), diffs it against our
//! tagged kernel objects and applies the difference (`mwan_netlink`). Also
//! keeps the kernel snapshot that WAN facts come from, and turns rtnetlink
//! events into per-device notices for the loop.
//!
//! With `--no-dataplane` the plan is still built (tracker marks come from
//! it) and facts are still read, but nothing is written to the kernel.

mod error;
mod sysctl;
mod use_cgroups;

pub use error::DataplaneError;
use error::WanStep;

use crate::daemon::report;
use crate::engine::Engine;
use crate::wan::Wan;
use mwan_core::config::{Config, PolicyTarget};
use mwan_core::flush::{
    self, Carrying, FlushReason, PendingFlushes, PinFilter, Retry, FLUSH_ATTEMPTS,
};
use mwan_core::plan::nft::NftTable;
use mwan_core::plan::{
    self, Allocation, NetworkPlan, PlanInput, PlanSettings, PolicyRoutes, Route, WanFacts, WanInput,
};
use mwan_core::Millis;
use mwan_netlink::conntrack::Conntrack;
use mwan_netlink::nft::{Nft, NftWatch};
use mwan_netlink::sysctl::Saved;
use mwan_netlink::{Event, Events, Rtnl, Snapshot};
use mwan_proto::control::{DataplaneCounters, DataplaneErrorKind, RuleStatus};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};

/// Something happened to a device: carrier known when the link itself
/// changed, None when only addresses or routes did.
pub struct LinkEvent {
    pub device: String,
    pub carrier: Option<bool>,
}

pub struct Dataplane {
    apply_enabled: bool,
    rtnl: Rtnl,
    events: Option<Events>,
    snapshot: Snapshot,
    sysctls: Saved,
    plan: Option<NetworkPlan>,
    allocation: Allocation,
    /// The last failure: its report (compared, so a repeat is logged
    /// once) and its class, for status.
    last_error: Option<(String, DataplaneErrorKind)>,
    /// What stays wrong however often a pass succeeds (nf_tables missing:
    /// routes work, connections are not pinned); shown as the last error
    /// when there is no other.
    degraded: Option<(String, DataplaneErrorKind)>,
    /// A pass failed: re-read the kernel at the next housekeeping pass.
    reconcile_due: bool,
    /// Someone else changed our routes, rules or nft table, or links and
    /// addresses moved: re-read the kernel on the very next pass.
    reconcile_now: bool,
    /// Someone else removed routes or rules of ours: what the next
    /// reconcile adds back is counted in `restored_objects`.
    foreign_removal: bool,
    /// Notifications of changes to table `inet mwan` by anyone but us.
    nft_watch: Option<NftWatch>,
    counters: DataplaneCounters,
    /// nft table `inet mwan` and conntrack (absent with --no-dataplane, or
    /// when the kernel lacks nf_tables/ctnetlink: then routes still work,
    /// without pinning).
    nft: Option<Nft>,
    conntrack: Option<Conntrack>,
    /// The table last put in place; compared, not re-dumped, on each pass.
    nft_installed: Option<NftTable>,
    /// Re-check the kernel's table against ours on the next pass.
    nft_verify: bool,
    /// Our routes and rules as last applied successfully: the next pass
    /// diffs against this instead of dumping the kernel, so a failover is
    /// just its few writes. None (start, a failure, a reconcile) dumps.
    rt_installed: Option<plan::KernelObjects>,
    /// Per WAN usable, and the (policy, WAN) pairs active, at the last
    /// pass: what the core's flush decision compares against.
    carrying: Carrying,
    /// WANs whose pinned connections were flushed and are checked again
    /// (the core's retry policy).
    pending_flushes: PendingFlushes,
    /// The cgroups of `mwanctl use`, per WAN.
    use_cgroups: use_cgroups::UseCgroups,
}

impl Dataplane {
    pub fn new(apply_enabled: bool, config: &Config) -> Result<Self, DataplaneError> {
        let protocol = PlanSettings::from_config(config).protocol;
        let mut rtnl = Rtnl::open(protocol).map_err(|source| DataplaneError::Open {
            what: "rtnetlink",
            source,
        })?;
        let snapshot =
            Snapshot::take(rtnl.socket(), protocol).map_err(|source| DataplaneError::Open {
                what: "reading links",
                source,
            })?;
        let events = match Events::subscribe(protocol) {
            Ok(mut e) => {
                // Our own writes come back as notifications stamped with our
                // port id: they are not someone else's changes.
                e.ignore_changes_by(rtnl.pid());
                Some(e)
            }
            Err(e) => {
                log::warn!(
                    "no rtnetlink events ({e}): carrier and address changes are not followed"
                );
                None
            }
        };
        let mut degraded = None;
        let (mut nft, conntrack) = if apply_enabled {
            let nft = match Nft::open() {
                Ok(n) => Some(n),
                Err(e) => {
                    log::warn!("nf_tables unavailable ({e}): no connection pinning");
                    let e = DataplaneError::NftUnavailable(e);
                    degraded = Some((report(&e), e.kind()));
                    None
                }
            };
            let ct = Conntrack::open()
                .map_err(|e| {
                    log::warn!("ctnetlink unavailable ({e}): pinned flows are not flushed")
                })
                .ok();
            (nft, ct)
        } else {
            (None, None)
        };
        let sysctls = if apply_enabled {
            sysctl::set_sysctls(nft.as_mut())
        } else {
            Saved::default()
        };
        let nft_watch = nft.as_ref().and_then(|n| match NftWatch::subscribe() {
            Ok(mut w) => {
                w.ignore_changes_by(n.pid());
                Some(w)
            }
            Err(e) => {
                log::warn!("no nf_tables events ({e}): a deleted table inet mwan is restored only on the next reconcile");
                None
            }
        });
        Ok(Self {
            apply_enabled,
            rtnl,
            events,
            snapshot,
            sysctls,
            plan: None,
            allocation: Allocation::default(),
            last_error: degraded.clone(),
            degraded,
            reconcile_due: false,
            reconcile_now: false,
            foreign_removal: false,
            nft_watch,
            counters: DataplaneCounters::default(),
            nft,
            conntrack,
            nft_installed: None,
            nft_verify: true,
            rt_installed: None,
            carrying: Carrying::default(),
            pending_flushes: PendingFlushes::default(),
            use_cgroups: use_cgroups::UseCgroups::default(),
        })
    }

    pub fn event_fd(&self) -> Option<RawFd> {
        self.events.as_ref().map(AsRawFd::as_raw_fd)
    }

    pub fn nft_event_fd(&self) -> Option<RawFd> {
        self.nft_watch.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Drains nf_tables notifications; true when someone else touched table
    /// `inet mwan` (an `nft delete table`, an fw4 reload flushing the
    /// ruleset): the next pass checks it and puts it back.
    pub fn read_nft_events(&mut self) -> bool {
        let Some(watch) = self.nft_watch.as_mut() else {
            return false;
        };
        let touched = match watch.read() {
            Ok(t) => t,
            Err(e) => {
                log::warn!("nf_tables events: {e}");
                true
            }
        };
        if touched {
            log::info!("table inet mwan changed by someone else; checking it");
            self.nft_verify = true;
        }
        touched
    }

    /// Re-reads links, addresses and main routes (netifd said something changed).
    pub fn refresh(&mut self) {
        self.refresh_snapshot();
        self.reconcile_now = true;
    }

    /// Events asked for a kernel re-read: true once, then false until the
    /// next such event. The caller runs a pass (which re-reads) at once.
    pub fn take_reconcile_now(&mut self) -> bool {
        let now = std::mem::take(&mut self.reconcile_now);
        if now {
            self.rt_installed = None;
            self.nft_verify = true;
        }
        now
    }

    pub fn counters(&self) -> DataplaneCounters {
        self.counters.clone()
    }

    fn refresh_snapshot(&mut self) {
        let protocol = self.rtnl.protocol();
        match Snapshot::take(self.rtnl.socket(), protocol) {
            Ok(s) => self.snapshot = s,
            Err(e) => log::warn!("re-reading links and addresses: {e}"),
        }
    }

    /// Drains rtnetlink events; re-reads the kernel's links, addresses and
    /// main routes once if any concern them.
    pub fn read_events(&mut self) -> Vec<LinkEvent> {
        let Some(events) = self.events.as_mut() else {
            return Vec::new();
        };
        let batch = match events.read() {
            Ok(b) => b,
            Err(e) => {
                log::warn!("rtnetlink events: {e}");
                vec![Event::Resync]
            }
        };
        let mut out = Vec::new();
        let mut refresh = false;
        let mut all_devices = false;
        for ev in batch {
            match ev {
                Event::Link { link, removed } => {
                    refresh = true;
                    out.push(LinkEvent {
                        device: link.name,
                        carrier: Some(link.carrier && link.up && !removed),
                    });
                }
                Event::Address { .. } => {
                    refresh = true;
                    all_devices = true;
                }
                Event::Route {
                    ours: false,
                    table: plan::MAIN_TABLE,
                    ..
                } => {
                    refresh = true;
                    all_devices = true;
                }
                Event::Route {
                    ours: true,
                    removed: true,
                    ..
                }
                | Event::Rule {
                    ours: true,
                    removed: true,
                    ..
                } => {
                    log::info!("our routes or rules changed by someone else; restoring them");
                    self.reconcile_now = true;
                    self.foreign_removal = true;
                }
                Event::Resync => {
                    refresh = true;
                    all_devices = true;
                }
                Event::Route { .. } | Event::Rule { .. } => {}
            }
        }
        if refresh {
            self.refresh_snapshot();
            // Kernel routes through a device vanish with its link or address
            // without RTM_DELROUTE: check ours against the plan again.
            self.reconcile_now = true;
        }
        if all_devices {
            out.extend(self.snapshot.links.iter().map(|l| LinkEvent {
                device: l.name.clone(),
                carrier: None,
            }));
        }
        out
    }

    pub fn facts(&self, device: Option<&str>) -> WanFacts {
        match device {
            Some(d) => self.snapshot.wan_facts(d),
            None => WanFacts::default(),
        }
    }

    /// The WAN's tracker fwmark from the current plan.
    pub fn tracker_mark(&self, name: &str) -> Option<u32> {
        self.plan
            .as_ref()
            .and_then(|p| p.wan(name))
            .map(|w| w.tracker_mark)
    }

    pub fn needs_reconcile(&mut self) -> bool {
        let due = std::mem::take(&mut self.reconcile_due);
        self.nft_verify |= due;
        if due {
            self.rt_installed = None;
        }
        due
    }

    /// Builds the plan and, unless disabled, brings the kernel to it with the
    /// minimal set of operations. Objects already in place (a previous mwand's)
    /// are adopted as they are: no flap.
    pub fn apply(
        &mut self,
        config: &Config,
        engine: &Engine,
        wans: &BTreeMap<String, Wan>,
        now: Millis,
    ) {
        let wan_inputs: Vec<WanInput> = wans
            .values()
            .map(|w| WanInput {
                interface: w.config().name.clone(),
                family: w.config().family,
                facts: w.facts().clone(),
                usable: w.usable(),
            })
            .collect();
        let policies: Vec<PolicyRoutes> =
            engine.decisions().iter().map(PolicyRoutes::from).collect();
        let devices = mwan_core::sort::btree_map(
            wans.values()
                .filter_map(|w| Some((w.config().name.clone(), w.device()?.to_string()))),
        );
        let main_defaults: Vec<Route> = self
            .snapshot
            .main_routes
            .iter()
            .filter(|r| r.route.dst.prefix_len == 0)
            .map(|r| r.route.clone())
            .collect();
        let input = PlanInput {
            config,
            settings: PlanSettings::from_config(config),
            wans: &wan_inputs,
            policies: &policies,
            devices: &devices,
            main_defaults: &main_defaults,
            previous: &self.allocation,
        };
        let mut plan = match plan::build(&input) {
            Ok(p) => p,
            Err(e) => {
                self.fail(DataplaneError::Plan(e));
                return;
            }
        };
        if self.plan.as_ref().map(|p| &p.warnings) != Some(&plan.warnings) {
            for w in &plan.warnings {
                log::warn!("plan: {w}");
            }
        }
        self.allocation = plan.allocation.clone();
        if self.apply_enabled {
            plan.use_cgroups = self.use_cgroups.of(wans.keys().map(String::as_str));
            // Order matters when a WAN fails: routes and its pin rule first,
            // then its sticky entries, then its pinned connections, so the
            // clients reconnect through a live WAN at once.
            let mut ok = self.sync_kernel(&plan);
            ok &= self.sync_nft(&plan, config, &devices);
            ok &= self.flush_moved(&plan, config, engine, wans, now);
            if ok {
                self.last_error = self.degraded.clone();
            }
        }
        self.plan = Some(plan);
    }

    /// Puts table `inet mwan` in place when its content changed (reload)
    /// or a reconcile asks to check it; failovers never touch it.
    fn sync_nft(
        &mut self,
        plan: &NetworkPlan,
        config: &Config,
        devices: &BTreeMap<String, String>,
    ) -> bool {
        let Some(nft) = self.nft.as_mut() else {
            return true;
        };
        let want = match plan::nft::build(plan, config, devices) {
            Ok(t) => t,
            Err(e) => {
                self.fail(DataplaneError::NftPlan(e));
                return false;
            }
        };
        if self.nft_installed.as_ref() == Some(&want) && !self.nft_verify {
            return true;
        }
        self.nft_verify = false;
        match nft.ensure(&want) {
            Ok(Some(r)) => {
                self.counters.nft_installs += 1;
                log::info!(
                    "nft table inet mwan replaced ({} rule(s), {} message(s), one transaction)",
                    r.rules,
                    r.messages
                );
                self.nft_installed = Some(want);
                true
            }
            Ok(None) => {
                self.nft_installed = Some(want);
                true
            }
            Err(e) => {
                self.nft_installed = None;
                self.fail(DataplaneError::Nft(e));
                false
            }
        }
    }

    /// Connections pinned to a WAN that became unusable are deleted (with
    /// its sticky entries); so are those of a WAN whose `flush_conntrack`
    /// lists `connected` once a policy moved off it because another WAN
    /// came (back) online: the metered-backup case (docs/mwand.md). Which
    /// WANs is the core's decision (`mwan_core::flush`); this performs it.
    fn flush_moved(
        &mut self,
        plan: &NetworkPlan,
        config: &Config,
        engine: &Engine,
        wans: &BTreeMap<String, Wan>,
        now: Millis,
    ) -> bool {
        let after = Carrying::new(
            wans.iter().map(|(name, wan)| (name.clone(), wan.usable())),
            engine.decisions(),
        );
        let mut ok = true;
        for (name, reason) in flush::flushes(config, &self.carrying, &after) {
            let failed = reason == FlushReason::Unusable;
            let name = &name;
            let Some(w) = plan.wan(name) else { continue };
            if failed {
                if let (Some(nft), Some(table)) = (self.nft.as_mut(), self.nft_installed.as_ref()) {
                    let sets = table.sticky_sets_of(name);
                    if let Err(source) = nft.flush_sets(&sets) {
                        self.fail(DataplaneError::Wan {
                            wan: name.clone(),
                            doing: WanStep::EmptyStickySets,
                            source,
                        });
                        ok = false;
                    }
                }
            }
            let Some(ct) = self.conntrack.as_mut() else {
                continue;
            };
            let why = if failed {
                "unusable"
            } else {
                "flush_conntrack connected: traffic moved off it"
            };
            // The hot path sends one message and does not count: a count
            // is a dump of the whole conntrack table (~20 ms at 10k
            // entries), done later by `retry_flushes`.
            match ct.delete_by_mark_uncounted(w.pin_mark, plan.layout.mask) {
                Ok(()) => {
                    log::info!("{name}: pinned connections flushed ({why})");
                    let filter = PinFilter {
                        mark: w.pin_mark,
                        mask: plan.layout.mask,
                    };
                    self.pending_flushes.sent(name, filter, reason, now);
                }
                Err(source) => {
                    self.fail(DataplaneError::Wan {
                        wan: name.clone(),
                        doing: WanStep::FlushPinned,
                        source,
                    });
                    ok = false;
                }
            }
        }
        // A WAN usable (or carrying its policies) again keeps its new pins.
        self.pending_flushes.settle(&after);
        self.counters.conntrack_pending = self.pending_flushes.names();
        self.carrying = after;
        ok
    }

    /// Off the hot path (housekeeping): a WAN's flush is checked a moment
    /// later; entries still pinned to it (offloaded flows on kernels before
    /// 6.4, docs/dataplane-nft.md) are deleted again, until none remain or
    /// the attempts run out.
    pub fn retry_flushes(&mut self, now: Millis) {
        let Some(ct) = self.conntrack.as_mut() else {
            return;
        };
        let mut errors = Vec::new();
        for (name, filter) in self.pending_flushes.due(now) {
            let left = match ct.count_by_mark(filter.mark, filter.mask) {
                Ok(n) => n,
                Err(source) => {
                    errors.push(DataplaneError::Wan {
                        wan: name.clone(),
                        doing: WanStep::CountPinned,
                        source,
                    });
                    self.pending_flushes.failed(&name);
                    continue;
                }
            };
            match self.pending_flushes.counted(&name, left as u64, now) {
                Retry::Done => log::debug!("{name}: no pinned connection left"),
                Retry::GiveUp { left } => log::info!("{name}: {left} pinned connection(s) still there after {FLUSH_ATTEMPTS} more flushes (its tracker's probes among them); done"),
                Retry::FlushAgain { filter, left } => {
                    log::info!("{name}: {left} pinned connection(s) left (offloaded, just opened, or its tracker's probes); flushing again");
                    if let Err(source) = ct.delete_by_mark_uncounted(filter.mark, filter.mask) {
                        errors.push(DataplaneError::Wan {
                            wan: name.clone(),
                            doing: WanStep::FlushPinned,
                            source,
                        });
                        self.pending_flushes.failed(&name);
                    }
                }
            }
        }
        for e in errors {
            self.fail(e);
        }
        self.counters.conntrack_pending = self.pending_flushes.names();
    }

    fn sync_kernel(&mut self, plan: &NetworkPlan) -> bool {
        let observed = match self.rt_installed.take() {
            Some(o) => o,
            None => match self.rtnl.observe() {
                Ok(o) => {
                    self.counters.route_dumps += 1;
                    o
                }
                Err(e) => {
                    self.fail(DataplaneError::Observe(e));
                    return false;
                }
            },
        };
        let desired = plan.objects.clone();
        let ops = plan::diff(&desired, &observed);
        if ops.is_empty() {
            self.rt_installed = Some(desired);
            return true;
        }
        for op in &ops {
            log::debug!("netlink: {op}");
        }
        match self.rtnl.apply(&ops) {
            Ok(report) if report.failed.is_empty() => {
                log::info!("data plane: {} change(s) applied", report.applied);
                if std::mem::take(&mut self.foreign_removal) {
                    let added = ops
                        .iter()
                        .filter(|o| matches!(o, plan::Op::AddRoute(_) | plan::Op::AddRule(_)));
                    self.counters.restored_objects += added.count() as u64;
                }
                self.rt_installed = Some(desired);
                true
            }
            Ok(mut report) => {
                let failed = report.failed.len();
                let first = report.failed.swap_remove(0);
                self.fail(DataplaneError::Refused {
                    failed,
                    total: ops.len(),
                    first,
                });
                false
            }
            Err(source) => {
                self.fail(DataplaneError::Apply {
                    ops: ops.len(),
                    source,
                });
                false
            }
        }
    }

    fn fail(&mut self, error: DataplaneError) {
        let message = report(&error);
        if self.last_error.as_ref().map(|(m, _)| m) != Some(&message) {
            if error.is_transient() {
                log::info!("data plane: {message}; the device is not ready yet, retrying");
            } else {
                log::error!("data plane: {message}");
            }
        }
        self.last_error = Some((message, error.kind()));
        self.reconcile_due = true;
    }

    /// Config rules as the plan resolved them.
    pub fn rules(&self, config: &Config) -> Vec<RuleStatus> {
        config
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let policy = match &r.use_policy {
                    PolicyTarget::Named(n) => n.clone(),
                    PolicyTarget::Default => "default".into(),
                    PolicyTarget::Unreachable => "unreachable".into(),
                    PolicyTarget::Blackhole => "blackhole".into(),
                };
                let steering = self
                    .plan
                    .as_ref()
                    .and_then(|p| p.rules.iter().find(|rp| rp.index == i))
                    .map(|rp| match &rp.steering {
                        plan::Steering::Fib => "FIB rules".to_string(),
                        plan::Steering::NftMark { mark, reasons } => {
                            format!("nft mark {mark:#x} ({})", reasons.join(", "))
                        }
                    })
                    .unwrap_or_else(|| "skipped".into());
                RuleStatus {
                    name: r.name.clone(),
                    policy,
                    summary: format!("{}; {steering}", rule_summary(r)),
                }
            })
            .collect()
    }

    /// Networks never sent to a WAN: main's non-default routes (the
    /// `lookup main suppress_prefixlength 0` rule keeps them local).
    pub fn connected(&self) -> Vec<String> {
        let mut nets: Vec<String> = self
            .snapshot
            .main_routes
            .iter()
            .filter(|r| r.route.dst.prefix_len > 0)
            .map(|r| format!("{}/{}", r.route.dst.addr, r.route.dst.prefix_len))
            .collect();
        mwan_core::sort::sort(&mut nets);
        nets.dedup();
        nets
    }

    /// The last failure's report and class, None once a pass succeeded.
    pub fn last_error(&self) -> Option<(String, DataplaneErrorKind)> {
        self.last_error.clone()
    }

    /// Removes every route and rule of ours and restores the sysctls.
    pub fn stop(&mut self) {
        if !self.apply_enabled {
            return;
        }
        match self.rtnl.teardown() {
            Ok(r) if r.failed.is_empty() => {
                log::info!("removed {} route(s) and rule(s)", r.applied)
            }
            Ok(r) => log::error!(
                "teardown: {} object(s) could not be removed",
                r.failed.len()
            ),
            Err(e) => log::error!("teardown: {e}"),
        }
        if let Some(nft) = self.nft.as_mut() {
            match nft.delete_table() {
                Ok(()) => log::info!("removed nft table inet mwan"),
                Err(e) => log::error!("removing nft table inet mwan: {e}"),
            }
        }
        if let Err(e) = self.sysctls.restore() {
            log::error!("{e}");
        }
    }
}

fn rule_summary(r: &mwan_core::config::Rule) -> String {
    let mut parts = Vec::new();
    let nets = |v: &[mwan_core::config::IpNet]| {
        v.iter()
            .map(|n| format!("{}/{}", n.addr, n.prefix_len))
            .collect::<Vec<_>>()
            .join(",")
    };
    let ports = |v: &[mwan_core::config::PortRange]| {
        v.iter()
            .map(|p| {
                if p.first == p.last {
                    p.first.to_string()
                } else {
                    format!("{}-{}", p.first, p.last)
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    if r.proto != mwan_core::config::Proto::All {
        parts.push(format!("proto {:?}", r.proto).to_lowercase());
    }
    if !r.src_ip.is_empty() {
        parts.push(format!("from {}", nets(&r.src_ip)));
    }
    if let Some(i) = &r.src_iface {
        parts.push(format!("in {i}"));
    }
    if !r.src_port.is_empty() {
        parts.push(format!("sport {}", ports(&r.src_port)));
    }
    if !r.dest_ip.is_empty() {
        parts.push(format!("to {}", nets(&r.dest_ip)));
    }
    if !r.dest_port.is_empty() {
        parts.push(format!("dport {}", ports(&r.dest_port)));
    }
    if let Some(s) = &r.ipset {
        parts.push(format!("set {s}"));
    }
    if r.sticky {
        parts.push(format!("sticky {}s", r.timeout));
    }
    if parts.is_empty() {
        "all traffic".into()
    } else {
        parts.join(" ")
    }
}
