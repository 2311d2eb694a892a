//! Control requests (the control socket and the ubus object share them),
//! hot reload, and the status mwanctl shows.

use super::automatic::Chosen;
use super::Daemon;
use crate::clock::now_ms;
use mwan_core::config::Config;
use mwan_core::Millis;
use mwan_proto::control::{
    InterfaceStatus, OverrideStatus, Request, Response, Status, TrackerStatus, PAUSED_REASON,
};
use std::path::Path;

impl Daemon {
    /// What status says the config is: the file, or automatic mode and
    /// how to write it down.
    fn config_label(&self) -> String {
        match self.automatic_uci {
            None => self.config_path.display().to_string(),
            Some(_) => format!(
                "automatic mode (from the default routes; {}: none or `option automatic`); `mwanctl config --write` prints it as UCI",
                self.config_path.display()
            ),
        }
    }

    /// Validates the config file, then applies only what changed. On error
    /// nothing changes and the problems go back to the caller. In automatic
    /// mode (no file at all, or globals asking for it) the default routes
    /// are read again.
    pub fn reload(&mut self) -> Result<String, String> {
        let now = now_ms();
        let path = self.config_path.clone();
        let failed = |e| match e {
            super::DaemonError::Config(r) => format!(
                "{} is invalid; the running config stays:\n{r}",
                path.display()
            ),
            other => format!("{}; the running config stays", super::report(&other)),
        };
        let (config, automatic) =
            match super::automatic::choose(&self.config_path).map_err(failed)? {
                Chosen::File(loaded) => {
                    for w in &loaded.warnings {
                        log::warn!("{w}");
                    }
                    (loaded.config, None)
                }
                // From the facts mwand holds: no call to netifd here.
                Chosen::Automatic(globals) => {
                    match self.automatic_config(globals, now).map_err(failed)? {
                        Some((config, text)) => (config, Some(text)),
                        None => return Ok("automatic mode: waiting for netifd's interfaces".into()),
                    }
                }
            };
        self.automatic_waits = false;
        self.automatic_uci = automatic;
        if config == self.config {
            return Ok(format!("{}: unchanged", self.config_path.display()));
        }
        if self.automatic_uci.is_some() {
            super::automatic::log_wans(&config);
        }
        let before: Vec<String> = self.wans.keys().cloned().collect();
        self.run_config(config, now);
        let after: Vec<String> = self.wans.keys().cloned().collect();
        Ok(reload_summary(&self.config_path, &before, &after))
    }

    /// Runs `config` from now on: only what changed changes (WANs kept,
    /// added or removed, trackers to match).
    pub(super) fn run_config(&mut self, config: Config, now: Millis) {
        self.config = config;
        if let Some(u) = self.ubus.as_mut() {
            let evs = u.follow(self.poll.registry(), &self.config);
            self.pending_ubus.extend(evs);
        }
        self.sync_wans(now);
        self.engine.retain_valid(&self.config);
        self.decide_and_apply(now);
        self.sync_trackers(now);
    }

    /// Answers one control request (the control socket and the ubus object
    /// share this).
    pub fn handle_request(&mut self, req: Request) -> Response {
        let now = now_ms();
        if self.dirty {
            // Answer with decisions that match the latest samples.
            self.dirty = false;
            self.decide_and_apply(now);
        }
        match req {
            Request::Status => Response::Status(self.status(now)),
            Request::Interfaces => Response::Interfaces(self.interfaces(now)),
            Request::Policies => Response::Policies(self.engine.policy_status()),
            Request::Rules => Response::Rules(self.dataplane.rules(&self.config)),
            Request::Connected => Response::Connected(self.dataplane.connected()),
            Request::Restart { interface } => {
                if !self.wans.contains_key(&interface) {
                    return Response::Error {
                        message: self.unknown_interface(&interface),
                    };
                }
                if self.supervisor.pid(&interface).is_none()
                    && !self.supervisor.supervised().contains(&interface)
                {
                    return Response::Error {
                        message: format!(
                            "{interface} has no tracker (no track_ip, or its device is unknown)"
                        ),
                    };
                }
                if !self.supervisor.spawning {
                    let known = self
                        .ubus
                        .as_mut()
                        .is_some_and(|u| u.restart_tracker(self.poll.registry(), &interface));
                    return if known {
                        Response::Done {
                            message: format!("{interface}: procd restarts its tracker"),
                        }
                    } else {
                        Response::Error {
                            message: format!("{interface}: procd does not run a tracker for it"),
                        }
                    };
                }
                let wakes = self.supervisor.restart(&interface, now);
                self.arm_wakes(wakes);
                Response::Done {
                    message: format!(
                        "{interface}: tracker restarted (pid {})",
                        self.supervisor
                            .pid(&interface)
                            .map_or("pending".into(), |p| p.to_string())
                    ),
                }
            }
            Request::Reload => match self.reload() {
                Ok(message) => Response::Done { message },
                Err(message) => Response::Error { message },
            },
            Request::Override {
                interface,
                policy,
                persistent,
            } => {
                if !self.wans.contains_key(&interface) {
                    return Response::Error {
                        message: self.unknown_interface(&interface),
                    };
                }
                let warning = self
                    .wans
                    .get(&interface)
                    .and_then(|wan| override_warning(&wan.status(now)));
                if persistent {
                    if let Err(e) = self.persist_override(Some(&interface)) {
                        return Response::Error {
                            message: format!("override not written to the config: {e}"),
                        };
                    }
                }
                match self.engine.set_override(&self.config, interface, policy) {
                    Ok(mut message) => {
                        message += &warning.unwrap_or_default();
                        self.save_state();
                        self.dirty = true;
                        self.decide_and_apply(now);
                        self.dirty = false;
                        Response::Done { message }
                    }
                    Err(message) => Response::Error { message },
                }
            }
            Request::ClearOverride { policy } => {
                if policy.is_none() {
                    if let Err(e) = self.persist_override(None) {
                        log::warn!("persistent override not removed: {e}");
                    }
                }
                let message = self.engine.clear_override(policy);
                self.save_state();
                self.decide_and_apply(now);
                Response::Done { message }
            }
            Request::Pause { interface } => self.set_paused(interface, true, now),
            Request::Resume { interface } => self.set_paused(interface, false, now),
            Request::Explain { policy } => match self.engine.explain(policy.as_deref(), now) {
                Ok(v) => Response::Explain(v),
                Err(message) => Response::Error { message },
            },
            Request::History { since } => Response::History {
                json: self.history.json_since(since),
            },
            Request::ConfigText => match &self.automatic_uci {
                Some(text) => Response::Done {
                    message: text.clone(),
                },
                None => Response::Error {
                    message: format!(
                        "mwand runs the config file {}: that file is its config",
                        self.config_path.display()
                    ),
                },
            },
        }
    }

    /// `mwanctl pause|resume WAN` (mwan3's `ifdown|ifup`): a paused WAN
    /// is left as if disabled in the config (no tracker, in no policy)
    /// while netifd keeps it up.
    fn set_paused(&mut self, interface: String, pause: bool, now: Millis) -> Response {
        if !self
            .config
            .interfaces
            .iter()
            .any(|i| i.name == interface && i.enabled)
        {
            return Response::Error {
                message: self.unknown_interface(&interface),
            };
        }
        let changed = if pause {
            self.paused.insert(interface.clone())
        } else {
            self.paused.remove(&interface)
        };
        if changed {
            self.save_state();
            self.sync_wans(now);
            self.decide_and_apply(now);
            self.sync_trackers(now);
        }
        let (now_is, was) = match (pause, changed) {
            (true, true) => ("paused: not tracked, in no policy", ""),
            (false, true) => ("tracked and used again", ""),
            (true, false) => ("paused", " already"),
            (false, false) => ("not paused", " already"),
        };
        Response::Done {
            message: format!("{interface}:{was} {now_is}"),
        }
    }

    pub(super) fn unknown_interface(&self, name: &str) -> String {
        format!(
            "unknown or disabled interface '{name}'; expected one of: {}",
            self.wans.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    }

    pub(super) fn interfaces(&self, now: Millis) -> Vec<InterfaceStatus> {
        let mut out: Vec<InterfaceStatus> = self
            .config
            .interfaces
            .iter()
            .map(|i| match self.wans.get(&i.name) {
                Some(wan) => {
                    let connected = self.conns.tracker_connected(&i.name);
                    let mut s = wan.status(now);
                    s.tracker = TrackerStatus {
                        pid: self.supervisor.pid(&i.name),
                        restarts: self.supervisor.restarts(&i.name),
                        uptime_s: self
                            .supervisor
                            .started_at(&i.name)
                            .map(|t| now.saturating_sub(t) / 1000),
                        connected,
                    };
                    if s.reason.is_none() && !i.track_ip.is_empty() {
                        s.reason = tracker_reason(&s.state, s.tracker.pid, connected);
                    }
                    s
                }
                None => InterfaceStatus {
                    device: i.device.clone(),
                    state_age_s: now.saturating_sub(self.started_at) / 1000,
                    reason: Some(if self.paused.contains(&i.name) {
                        PAUSED_REASON.into()
                    } else {
                        "disabled in config".into()
                    }),
                    ..disabled_in_config(&i.name)
                },
            })
            .collect();
        mwan_core::sort::sort_by_key(&mut out, |s| {
            self.config.interfaces.iter().position(|i| i.name == s.name)
        });
        out
    }

    pub(super) fn status(&self, now: Millis) -> Status {
        let dataplane_error = self.dataplane.last_error();
        Status {
            interfaces: self.interfaces(now),
            policies: self.engine.policy_status(),
            override_: self
                .engine
                .override_status()
                .map(|(interface, policy)| OverrideStatus { interface, policy }),
            uptime_s: now.saturating_sub(self.started_at) / 1000,
            config: self.config_label(),
            dataplane_error: dataplane_error.as_ref().map(|(m, _)| m.clone()),
            overrides: self
                .engine
                .all_overrides()
                .into_iter()
                .map(|(interface, policy)| OverrideStatus { interface, policy })
                .collect(),
            dataplane: self.dataplane.counters(),
            dataplane_error_kind: dataplane_error.map(|(_, kind)| kind),
            event_loop: self.loop_counters.clone(),
            config_warning: self.config.interfaces.is_empty().then(|| {
                format!(
                    "{} has no interface section: all multi-WAN routing is removed",
                    self.config_path.display()
                )
            }),
        }
    }
}

/// The status of an interface the config disables (no figures, no tracker).
fn disabled_in_config(name: &str) -> InterfaceStatus {
    InterfaceStatus {
        name: name.to_string(),
        device: None,
        state: "disabled".into(),
        state_age_s: 0,
        latency_ms: None,
        jitter_ms: None,
        loss_pct: None,
        score: None,
        tracker: TrackerStatus {
            pid: None,
            restarts: 0,
            uptime_s: None,
            connected: false,
        },
        reason: Some("disabled in config".into()),
    }
}

/// `reloaded PATH: N interface(s), added A B, removed C`.
fn reload_summary(path: &Path, before: &[String], after: &[String]) -> String {
    let missing_from = |from: &[String], of: &[String]| -> Vec<String> {
        of.iter().filter(|n| !from.contains(n)).cloned().collect()
    };
    let list = |label: &str, names: Vec<String>| {
        if names.is_empty() {
            String::new()
        } else {
            format!(", {label} {}", names.join(" "))
        }
    };
    format!(
        "reloaded {}: {} interface(s){}{}",
        path.display(),
        after.len(),
        list("added", missing_from(before, after)),
        list("removed", missing_from(after, before)),
    )
}

/// The note an override onto a WAN that does not work gets: the operator
/// may mean it (testing), but should know traffic is likely lost.
fn override_warning(st: &InterfaceStatus) -> Option<String> {
    if !matches!(st.state.as_str(), "offline" | "unknown" | "disabled") {
        return None;
    }
    let why = st
        .reason
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    Some(format!(
        "\nnote: {} is {}{why}: traffic forced onto it is likely lost",
        st.name, st.state
    ))
}

/// Why a tracked WAN is `unknown` when its tracker is the reason.
fn tracker_reason(state: &str, pid: Option<u32>, connected: bool) -> Option<String> {
    if state != "unknown" {
        return None;
    }
    match (pid, connected) {
        (None, _) => Some("tracker not running".into()),
        (Some(_), false) => Some("tracker not connected".into()),
        (Some(_), true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_reload_says_what_it_added_and_removed() {
        let p = Path::new("/etc/config/mwan");
        assert_eq!(
            reload_summary(p, &names(&["wan1", "wan2"]), &names(&["wan1", "wan2"])),
            "reloaded /etc/config/mwan: 2 interface(s)"
        );
        assert_eq!(
            reload_summary(
                p,
                &names(&["wan1", "wan2"]),
                &names(&["wan1", "wan3", "wan4"])
            ),
            "reloaded /etc/config/mwan: 3 interface(s), added wan3 wan4, removed wan2"
        );
    }

    fn status(state: &str, reason: Option<&str>) -> InterfaceStatus {
        InterfaceStatus {
            state: state.into(),
            reason: reason.map(str::to_string),
            ..disabled_in_config("wan2")
        }
    }

    #[test]
    fn an_override_onto_a_wan_that_does_not_work_gets_a_note() {
        assert_eq!(override_warning(&status("online", None)), None);
        assert_eq!(override_warning(&status("connecting", None)), None);
        assert_eq!(
            override_warning(&status("disabled", Some("no carrier"))).as_deref(),
            Some("\nnote: wan2 is disabled (no carrier): traffic forced onto it is likely lost")
        );
        assert_eq!(
            override_warning(&status("offline", None)).as_deref(),
            Some("\nnote: wan2 is offline: traffic forced onto it is likely lost")
        );
    }

    #[test]
    fn an_unknown_wan_says_when_its_tracker_is_why() {
        let cases = [
            ("unknown", None, false, Some("tracker not running")),
            ("unknown", Some(7), false, Some("tracker not connected")),
            ("unknown", Some(7), true, None),
            ("online", None, false, None),
            ("offline", Some(7), false, None),
        ];
        for (state, pid, connected, reason) in cases {
            assert_eq!(
                tracker_reason(state, pid, connected).as_deref(),
                reason,
                "{state} {pid:?} {connected}"
            );
        }
    }
}
