//! The Agent (what mwand runs on ubus) against the test double: the mwan
//! and mwan3 objects, mwan.interface events, trackers under procd (per-WAN
//! restart, adoption after a crash, clean stop), netifd following, and a
//! ubusd restart in the middle.

mod common;

use common::{BusThread, Double};
use mwan_proto::control::{
    ActiveMemberStatus, InterfaceStatus, PolicyStatus, Request, Response, Status, TrackerStatus,
};
use mwan_ubus::agent::{Agent, AgentEvent};
use mwan_ubus::blobmsg::{kind, Table, Value};
use mwan_ubus::blocking::CallError;
use mwan_ubus::client::{Client, Event, MethodSpec};
use mwan_ubus::message::status;
use mwan_ubus::{luci, procd};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn sample_status() -> Status {
    let iface = |name: &str, state: &str| InterfaceStatus {
        name: name.into(),
        device: Some(format!("eth-{name}")),
        state: state.into(),
        state_age_s: 12,
        latency_ms: Some(20.5),
        jitter_ms: Some(2.0),
        loss_pct: Some(0.0),
        score: Some(90.0),
        tracker: TrackerStatus {
            pid: Some(42),
            restarts: 1,
            uptime_s: Some(12),
            connected: true,
        },
        reason: None,
    };
    Status {
        interfaces: vec![iface("wan", "online"), iface("wanb", "offline")],
        policies: vec![PolicyStatus {
            name: "balanced".into(),
            active: vec![ActiveMemberStatus {
                interface: "wan".into(),
                weight: 1,
                share_pct: 100.0,
            }],
            last_resort: None,
            ceilings: Vec::new(),
        }],
        override_: None,
        uptime_s: 5,
        config: "/etc/config/mwan".into(),
        dataplane_error: None,
        overrides: Vec::new(),
        dataplane: Default::default(),
        dataplane_error_kind: None,
        event_loop: Default::default(),
        config_warning: None,
    }
}

/// A mio loop around one Agent, answering calls like mwand would.
struct Loop {
    poll: mio::Poll,
    events: mio::Events,
    agent: Agent,
    seen: Vec<AgentEvent>,
    /// Every event ever returned, for counting.
    history: Vec<AgentEvent>,
}

impl Loop {
    fn new(double: &Double, supervise: bool) -> Loop {
        let poll = mio::Poll::new().unwrap();
        let mut agent = Agent::new(&double.socket, mio::Token(7), supervise).unwrap();
        let first = agent.start(poll.registry(), Instant::now());
        let mut l = Loop {
            poll,
            events: mio::Events::with_capacity(32),
            agent,
            seen: Vec::new(),
            history: Vec::new(),
        };
        l.handle(first);
        l
    }

    fn handle(&mut self, evs: Vec<AgentEvent>) {
        for e in evs {
            let now = Instant::now();
            match &e {
                AgentEvent::Call { call, request } => {
                    let response = match request {
                        Request::Status => Response::Status(sample_status()),
                        Request::Restart { interface } => {
                            if self.agent.restart_tracker(interface) {
                                Response::Done {
                                    message: format!("restarting {interface}"),
                                }
                            } else {
                                Response::Error {
                                    message: format!("no interface '{interface}'"),
                                }
                            }
                        }
                        other => Response::Done {
                            message: format!("{other:?}"),
                        },
                    };
                    let more = self
                        .agent
                        .reply(self.poll.registry(), call.clone(), &response, now);
                    self.seen.extend(more);
                }
                AgentEvent::Mwan3Status {
                    call,
                    section,
                    interface,
                } => {
                    let body = luci::status(
                        &sample_status(),
                        &[],
                        &BTreeMap::new(),
                        section.as_deref(),
                        interface.as_deref(),
                    );
                    let more =
                        self.agent
                            .reply_mwan3(self.poll.registry(), call.clone(), body, now);
                    self.seen.extend(more);
                }
                _ => {}
            }
            self.history.push(e.clone());
            self.seen.push(e);
        }
    }

    /// Runs until an event matches; returns it.
    fn until(&mut self, what: &str, pred: impl Fn(&AgentEvent) -> bool) -> AgentEvent {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(i) = self.seen.iter().position(&pred) {
                let e = self.seen.remove(i);
                self.seen.drain(..i);
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; saw {:?}",
                self.seen
            );
            let now = Instant::now();
            let flushed = self.agent.flush(self.poll.registry(), now);
            self.handle(flushed);
            let t = self
                .agent
                .next_timeout(now)
                .map_or(Duration::from_millis(20), |t| {
                    t.min(Duration::from_millis(20))
                });
            self.poll.poll(&mut self.events, Some(t)).unwrap();
            let now = Instant::now();
            let mut evs = Vec::new();
            for ev in self.events.iter() {
                evs.extend(self.agent.ready(self.poll.registry(), ev, now));
            }
            evs.extend(self.agent.on_timeout(self.poll.registry(), now));
            self.handle(evs);
        }
    }

    /// Runs the loop while `f` (a blocking call on another thread) runs.
    fn during<T: Send + 'static>(&mut self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let h = std::thread::spawn(f);
        while !h.is_finished() {
            let now = Instant::now();
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(10)))
                .unwrap();
            let mut evs = Vec::new();
            for ev in self.events.iter() {
                evs.extend(self.agent.ready(self.poll.registry(), ev, now));
            }
            evs.extend(self.agent.on_timeout(self.poll.registry(), now));
            self.handle(evs);
        }
        h.join().unwrap()
    }
}

fn call(
    double: &Double,
    path: &'static str,
    method: &'static str,
    args: Table,
) -> impl FnOnce() -> Result<Table, CallError> + Send {
    let socket = double.socket.clone();
    move || mwan_ubus::blocking::call(&socket, path, method, args, Duration::from_secs(10))
}

#[test]
fn serves_mwan_and_mwan3_objects_and_announces_state_changes() {
    let double = Double::start();
    let mut l = Loop::new(&double, false);
    l.until("connected", |e| matches!(e, AgentEvent::Connected));
    l.until("procd probe", |e| {
        matches!(e, AgentEvent::ProcdPresent(true))
    });

    let listener = {
        let mut c = Client::new();
        c.listen("mwan.interface").unwrap();
        BusThread::spawn(&double.socket, c, |_, _| {})
    };
    // Give the listener time to register (it has its own connection).
    std::thread::sleep(Duration::from_millis(300));

    let body = l
        .during(call(&double, "mwan", "status", Table::new()))
        .unwrap();
    let status: Status = body.to_deserialize().unwrap();
    assert_eq!(status, sample_status());

    let body = l
        .during(call(&double, "mwan3", "status", Table::new()))
        .unwrap();
    let json = body.to_json();
    assert_eq!(json["interfaces"]["wan"]["status"], "online");
    assert_eq!(json["interfaces"]["wanb"]["status"], "offline");
    assert_eq!(json["policies"]["ipv4"]["balanced"][0]["interface"], "wan");

    let bad = l.during(call(&double, "mwan", "restart", Table::new()));
    assert!(
        matches!(bad, Err(CallError::Status(status::INVALID_ARGUMENT))),
        "{bad:?}"
    );
    let unknown = l.during(call(&double, "mwan", "frobnicate", Table::new()));
    assert!(
        matches!(unknown, Err(CallError::Status(status::METHOD_NOT_FOUND))),
        "{unknown:?}"
    );

    let wanb = &sample_status().interfaces[1];
    l.agent.announce("online", wanb);
    let now = Instant::now();
    let evs = l.agent.flush(l.poll.registry(), now);
    l.handle(evs);
    let seen = listener.wait_for(
        "mwan.interface event",
        |e| matches!(e, Event::Event { name, .. } if name == "mwan.interface"),
    );
    let Some(Event::Event { data, .. }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(data.get_str("interface"), Some("wanb"));
    assert_eq!(data.get_str("old_state"), Some("online"));
    assert_eq!(data.get_str("state"), Some("offline"));
}

fn pid_of(l: &mut Loop, wan: &str) -> u32 {
    let want = wan.to_owned();
    match l.until(
        &format!("pid of {wan}"),
        move |e| matches!(e, AgentEvent::TrackerPid { wan, pid: Some(_) } if *wan == want),
    ) {
        AgentEvent::TrackerPid { pid: Some(p), .. } => p,
        _ => unreachable!(),
    }
}

#[test]
fn trackers_under_procd_restart_alone_survive_an_mwand_crash_and_stop_cleanly() {
    let double = Double::start();
    let wanted: BTreeMap<String, Vec<String>> = [
        (
            "wan1".to_owned(),
            vec!["/bin/sleep".to_owned(), "3101".to_owned()],
        ),
        (
            "wan2".to_owned(),
            vec!["/bin/sleep".to_owned(), "3102".to_owned()],
        ),
    ]
    .into();
    let mut l = Loop::new(&double, true);
    l.agent.set_trackers(&wanted);
    l.until("connected", |e| matches!(e, AgentEvent::Connected));
    let (w1, w2) = (pid_of(&mut l, "wan1"), pid_of(&mut l, "wan2"));

    // `ubus call mwan restart {"interface":"wan2"}` restarts only track_wan2.
    let args = Table::new().with("interface", Value::string("wan2"));
    l.during(call(&double, "mwan", "restart", args)).unwrap();
    l.until(
        "wan2 restarted",
        |e| matches!(e, AgentEvent::TrackerStarted(w) if w == "wan2"),
    );
    let new_w2 = pid_of(&mut l, "wan2");
    assert_ne!(new_w2, w2, "track_wan2 got a new process");
    l.agent.refresh_tracker_pids();
    assert_eq!(pid_of(&mut l, "wan1"), w1, "track_wan1 kept its pid");

    // mwand crashes (no stop): procd keeps the trackers; the next mwand
    // asks for the same ones and adopts them, pids unchanged.
    drop(l);
    let mut l = Loop::new(&double, true);
    l.agent.set_trackers(&wanted);
    l.until("reconnected", |e| matches!(e, AgentEvent::Connected));
    assert_eq!(pid_of(&mut l, "wan1"), w1);
    assert_eq!(pid_of(&mut l, "wan2"), new_w2);

    // A reload that drops wan2 stops only track_wan2.
    let only_wan1: BTreeMap<String, Vec<String>> = wanted
        .iter()
        .take(1)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    l.agent.set_trackers(&only_wan1);
    l.until(
        "wan2 stopped",
        |e| matches!(e, AgentEvent::TrackerStopped(w) if w == "wan2"),
    );
    l.agent.refresh_tracker_pids();
    assert_eq!(pid_of(&mut l, "wan1"), w1);

    // Clean stop removes the trackers' service.
    l.agent.stop_trackers();
    l.until(
        "wan1 stopped",
        |e| matches!(e, AgentEvent::TrackerStopped(w) if w == "wan1"),
    );
    let list = l
        .during(call(
            &double,
            "service",
            "list",
            procd::list(Some(procd::TRACKER_SERVICE)),
        ))
        .unwrap();
    assert!(procd::parse_list(&list).is_empty(), "{:?}", list.to_json());
    // And the blocking variant is fine with nothing left to remove.
    mwan_ubus::agent::stop_trackers_blocking(&double.socket, Duration::from_secs(5)).unwrap();
}

/// netifd's shapes (see docs/ubus.md): dump and the per-interface object.
fn wan_status(up: bool) -> Table {
    let mut j = serde_json::json!({
        "interface": "wan", "up": up, "pending": false, "available": true, "autostart": true,
        "dynamic": false, "proto": "dhcp", "device": "eth1", "data": {}
    });
    if up {
        j["uptime"] = 10.into();
        j["l3_device"] = "eth1".into();
        j["ipv4-address"] = serde_json::json!([{"address": "192.0.2.10", "mask": 24}]);
        j["route"] = serde_json::json!([{"target": "0.0.0.0", "mask": 0, "nexthop": "192.0.2.1"}]);
    }
    Table::from_json(&j).unwrap()
}

/// A netifd with interface `wan` on the bus, and an agent following `wan`.
fn netifd_and_agent(double: &Double) -> (BusThread, Loop) {
    let netifd = fake_netifd(double);
    netifd.wait_for(
        "netifd objects",
        |e| matches!(e, Event::ObjectRegistered { path, .. } if path == "network.interface.wan"),
    );
    let mut l = Loop::new(double, false);
    l.agent.follow_interfaces(["wan"]);
    (netifd, l)
}

fn fake_netifd(double: &Double) -> BusThread {
    fake_netifd_objects(double, true)
}

/// netifd's objects; without `network.interface` (`with_dump` false) only
/// the per-interface object's `status` can tell the agent anything.
fn fake_netifd_objects(double: &Double, with_dump: bool) -> BusThread {
    let mut c = Client::new();
    if with_dump {
        c.add_object("network.interface", vec![MethodSpec::new("dump", &[])])
            .unwrap();
    }
    c.add_object(
        "network.interface.wan",
        vec![MethodSpec::new("status", &[("interface", kind::STRING)])],
    )
    .unwrap();
    BusThread::spawn(&double.socket, c, |client, e| {
        if let Event::Invoke(inv) = e {
            let body = match inv.method.as_str() {
                "dump" => Table::new().with(
                    "interface",
                    Value::Array(vec![Value::Table(wan_status(true))]),
                ),
                _ => wan_status(true),
            };
            client.reply(inv, status::OK, Some(body)).unwrap();
        }
    })
}

/// The calls a fake netifd received, as `path method`.
fn calls_to(netifd: &BusThread) -> Vec<String> {
    netifd
        .events
        .try_iter()
        .filter_map(|e| match e {
            Event::Invoke(inv) => Some(format!("{} {}", inv.path, inv.method)),
            _ => None,
        })
        .collect()
}

#[test]
fn an_interface_that_appears_after_start_is_read_once_subscribed() {
    // mwand (START=19) may come up before netifd (START=20), and after a
    // ubusd restart netifd may re-register after mwand has asked for the
    // dump: once `network.interface.wan` appears, the agent subscribes and
    // reads its status by itself.
    let double = Double::start();
    let mut l = Loop::new(&double, false);
    l.agent.follow_interfaces(["wan"]);
    l.until("connected", |e| matches!(e, AgentEvent::Connected));
    std::thread::sleep(Duration::from_millis(200));
    let netifd = fake_netifd_objects(&double, false);
    let AgentEvent::Interface(st) =
        l.until("wan's status", |e| matches!(e, AgentEvent::Interface(_)))
    else {
        unreachable!()
    };
    assert_eq!(
        (st.name.as_str(), st.up, st.gateway_v4()),
        ("wan", true, Some("192.0.2.1"))
    );
    // It was the status call (there is no dump object here).
    assert_eq!(calls_to(&netifd), ["network.interface.wan status"]);
}

#[test]
fn follows_netifd_across_a_ubusd_restart() {
    let mut double = Double::start();
    let (netifd, mut l) = netifd_and_agent(&double);
    let AgentEvent::Interface(st) = l.until("dump", |e| matches!(e, AgentEvent::Interface(_)))
    else {
        unreachable!()
    };
    assert_eq!(
        (st.name.as_str(), st.up, st.gateway_v4()),
        ("wan", true, Some("192.0.2.1"))
    );
    // Let the subscription settle before netifd publishes.
    std::thread::sleep(Duration::from_millis(300));

    for round in 0..2 {
        netifd.run(|c| {
            let ev = Table::new()
                .with("action", Value::string("ifdown"))
                .with("interface", Value::string("wan"));
            c.send_event("network.interface", ev).unwrap();
            c.notify("network.interface.wan", "interface.down", wan_status(false))
                .unwrap();
        });
        let AgentEvent::InterfaceAction(a) = l.until("ifdown event", |e| {
            matches!(e, AgentEvent::InterfaceAction(_))
        }) else {
            unreachable!()
        };
        assert_eq!((a.interface.as_str(), a.up), ("wan", false));
        let AgentEvent::Interface(st) = l.until(
            "interface.down",
            |e| matches!(e, AgentEvent::Interface(s) if !s.up),
        ) else {
            unreachable!()
        };
        assert_eq!(st.name, "wan");
        if round == 0 {
            // ubusd restarts; netifd and the agent both reconnect and
            // re-register; the agent re-reads the dump and resubscribes.
            double.stop();
            l.until("disconnected", |e| matches!(e, AgentEvent::Disconnected));
            double.spawn();
            l.until("reconnected", |e| matches!(e, AgentEvent::Connected));
            netifd.wait_for("netifd back", |e| matches!(e, Event::ObjectRegistered { path, .. } if path == "network.interface.wan"));
            // Whether the dump or netifd's re-registration came first, the
            // agent reads wan again by itself (status once resubscribed).
            l.until(
                "dump after restart",
                |e| matches!(e, AgentEvent::Interface(s) if s.up),
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    // procd's presence is probed once, not again after the ubusd restart
    // (when procd may not have re-registered yet).
    let probes = l
        .history
        .iter()
        .filter(|e| matches!(e, AgentEvent::ProcdPresent(_)))
        .count();
    assert_eq!(probes, 1);
}

/// A netifd dump with `wan` up at `address`, for `mwan-ubus-double --netifd`.
fn write_netifd_dump(file: &std::path::Path, address: &str) {
    let mut status = wan_status(true).to_json();
    status["interface"] = "wan".into();
    status["ipv4-address"] = serde_json::json!([{"address": address, "mask": 24}]);
    let dump = serde_json::json!({ "interface": [status] });
    std::fs::write(file, dump.to_string()).unwrap();
}

fn wan_address(e: &AgentEvent) -> Option<&str> {
    match e {
        AgentEvent::Interface(s) if s.name == "wan" => s.ipv4.first().map(|a| a.address.as_str()),
        _ => None,
    }
}

/// netifd restarts while ubusd stays (issue 12): ubusd sends the
/// subscriber UNSUBSCRIBE and listeners `ubus.object.remove`, netifd's
/// objects come back with new ids, and the agent subscribes again and
/// reads the interface's new state by itself. Played by the double's
/// netifd (`--netifd`, SIGUSR1).
#[test]
fn follows_netifd_across_a_netifd_restart() {
    let file = std::env::temp_dir().join(format!("mwan-netifd-{}.json", std::process::id()));
    write_netifd_dump(&file, "192.0.2.10");
    let double = Double::start_with(&["--netifd", file.to_str().unwrap()]);
    let mut l = Loop::new(&double, false);
    l.agent.follow_interfaces(["wan"]);
    let first = l.until("wan from netifd's dump", |e| wan_address(e).is_some());
    assert_eq!(wan_address(&first), Some("192.0.2.10"));
    // Let the subscription settle, so the restart is what it must survive.
    std::thread::sleep(Duration::from_millis(300));
    write_netifd_dump(&file, "192.0.2.20");
    double.signal(libc::SIGUSR1);
    l.until("wan read again after netifd restarted", |e| {
        wan_address(e) == Some("192.0.2.20")
    });
    // And it follows netifd's updates on the new object.
    std::thread::sleep(Duration::from_millis(300));
    write_netifd_dump(&file, "192.0.2.30");
    double.signal(libc::SIGUSR2);
    l.until("netifd's interface.update after the restart", |e| {
        wan_address(e) == Some("192.0.2.30")
    });
    std::fs::remove_file(&file).ok();
}

/// The same through a netifd that is a client of the bus: it exits (its
/// connection closes) and a new one registers.
#[test]
fn follows_a_netifd_client_that_exits_and_comes_back() {
    let double = Double::start();
    let (netifd, mut l) = netifd_and_agent(&double);
    l.until("wan from the dump", |e| wan_address(e).is_some());
    std::thread::sleep(Duration::from_millis(300));
    drop(netifd);
    std::thread::sleep(Duration::from_millis(200));
    let netifd = fake_netifd(&double);
    netifd.wait_for(
        "netifd back",
        |e| matches!(e, Event::ObjectRegistered { path, .. } if path == "network.interface.wan"),
    );
    l.until("wan read again from the new netifd", |e| {
        wan_address(e).is_some()
    });
    // Read through the new object (no dump: the agent is not reconnecting).
    let calls = calls_to(&netifd);
    assert!(
        calls.iter().all(|c| c == "network.interface.wan status"),
        "{calls:?}"
    );
}

#[test]
fn trackers_are_asked_for_again_when_procd_is_back_after_a_ubusd_restart() {
    // The double is ubusd and procd in one process: restarting it loses the
    // trackers, like a procd restart would; the agent must ask again once
    // the `service` object is back.
    let mut double = Double::start();
    let wanted: BTreeMap<String, Vec<String>> = [(
        "wan1".to_owned(),
        vec!["/bin/sleep".to_owned(), "3201".to_owned()],
    )]
    .into();
    let mut l = Loop::new(&double, true);
    l.agent.set_trackers(&wanted);
    let before = pid_of(&mut l, "wan1");
    double.stop();
    l.until("disconnected", |e| matches!(e, AgentEvent::Disconnected));
    double.spawn();
    l.until("reconnected", |e| matches!(e, AgentEvent::Connected));
    let after = pid_of(&mut l, "wan1");
    assert_ne!(
        before, after,
        "a new tracker process after procd lost the old one"
    );
}
