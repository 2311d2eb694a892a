//! netifd shapes (as netifd's ubus.c builds them), the `mwan` object
//! mapping and the LuCI-compatible `mwan3 status` shape.

use mwan_core::health::Mwan3Track;
use mwan_proto::control::{
    ActiveMemberStatus, InterfaceStatus, PolicyStatus, Request, Response, Status, TrackerStatus,
};
use mwan_ubus::blobmsg::{Table, Value};
use mwan_ubus::message::status;
use mwan_ubus::{luci, mwan_object, netifd};
use serde_json::json;
use std::collections::BTreeMap;

/// `netifd_dump_status` of an up DHCP interface, key for key.
fn wan_up() -> serde_json::Value {
    json!({
        "interface": "wan",
        "up": true, "pending": false, "available": true, "autostart": true, "dynamic": false,
        "uptime": 4242, "l3_device": "eth1", "proto": "dhcp", "device": "eth1",
        "updated": ["addresses", "routes"],
        "metric": 10, "dns_metric": 0, "delegation": true,
        "ipv4-address": [{"address": "192.0.2.10", "mask": 24}],
        "ipv6-address": [{"address": "2001:db8:1::10", "mask": 64}],
        "ipv6-prefix": [], "ipv6-prefix-assignment": [],
        "route": [
            {"target": "0.0.0.0", "mask": 0, "nexthop": "192.0.2.1", "metric": 10, "source": "192.0.2.10/32"},
            {"target": "::", "mask": 0, "nexthop": "fe80::1", "metric": 10, "source": "::/0"}
        ],
        "dns-server": ["192.0.2.1"], "dns-search": [],
        "inactive": {"ipv4-address": [], "ipv6-address": [], "route": [], "dns-server": [], "dns-search": []},
        "data": {}
    })
}

/// An interface that is down: no uptime, l3_device, addresses or routes.
fn wanb_down() -> serde_json::Value {
    json!({
        "interface": "wanb",
        "up": false, "pending": false, "available": true, "autostart": true, "dynamic": false,
        "proto": "static", "device": "eth2", "data": {},
        "errors": [{"subsystem": "interface", "code": "NO_DEVICE"}]
    })
}

#[test]
fn dump_gives_devices_addresses_and_gateways() {
    let reply = Table::from_json(&json!({"interface": [wan_up(), wanb_down()]})).unwrap();
    let ifaces = netifd::parse_dump(&reply);
    assert_eq!(ifaces.len(), 2);
    let wan = &ifaces[0];
    assert_eq!(wan.name, "wan");
    assert!(wan.up && wan.available);
    assert_eq!(wan.route_device(), Some("eth1"));
    assert_eq!(wan.uptime_s, Some(4242));
    assert_eq!(wan.metric, Some(10));
    assert_eq!(wan.ipv4[0].address, "192.0.2.10");
    assert_eq!(wan.ipv4[0].mask, 24);
    assert_eq!(wan.ipv6[0].mask, 64);
    assert_eq!(wan.gateway_v4(), Some("192.0.2.1"));
    assert_eq!(wan.gateway_v6(), Some("fe80::1"));
    assert_eq!(wan.updated, ["addresses", "routes"]);
    let wanb = &ifaces[1];
    assert!(!wanb.up);
    assert_eq!(wanb.route_device(), Some("eth2"));
    assert_eq!(wanb.gateway_v4(), None);
    assert!(wanb.ipv4.is_empty());
}

#[test]
fn events_and_notifications() {
    let up = Table::from_json(&json!({"action": "ifup", "interface": "wan"})).unwrap();
    assert_eq!(
        netifd::InterfaceEvent::parse(&up),
        Some(netifd::InterfaceEvent {
            interface: "wan".into(),
            up: true
        })
    );
    let down = Table::from_json(&json!({"action": "ifdown", "interface": "wanb"})).unwrap();
    assert!(!netifd::InterfaceEvent::parse(&down).unwrap().up);
    let other = Table::from_json(&json!({"action": "ifupdate", "interface": "wan"})).unwrap();
    assert_eq!(netifd::InterfaceEvent::parse(&other), None);

    // interface.update carries {"interface": name} followed by the status dump.
    let update = Table::from_json(&wan_up()).unwrap();
    let st = netifd::parse_notification("interface.update", &update).unwrap();
    assert_eq!((st.name.as_str(), st.up), ("wan", true));
    let gone = Table::from_json(&wanb_down()).unwrap();
    assert!(
        !netifd::parse_notification("interface.down", &gone)
            .unwrap()
            .up
    );
    assert_eq!(netifd::parse_notification("something.else", &gone), None);
    assert_eq!(netifd::interface_object("wan"), "network.interface.wan");
}

fn sample_status() -> Status {
    let iface = |name: &str, state: &str, connected: bool| InterfaceStatus {
        name: name.into(),
        device: Some(format!("eth-{name}")),
        state: state.into(),
        state_age_s: 30,
        latency_ms: Some(12.4),
        jitter_ms: Some(1.0),
        loss_pct: Some(0.0),
        score: Some(97.6),
        tracker: TrackerStatus {
            pid: Some(100),
            restarts: 0,
            uptime_s: Some(30),
            connected,
        },
        reason: None,
    };
    Status {
        interfaces: vec![
            iface("wan", "online", true),
            iface("wanb", "offline", false),
        ],
        policies: vec![PolicyStatus {
            name: "balanced".into(),
            active: vec![
                ActiveMemberStatus {
                    interface: "wan".into(),
                    weight: 3,
                    share_pct: 75.0,
                },
                ActiveMemberStatus {
                    interface: "wanb".into(),
                    weight: 1,
                    share_pct: 25.0,
                },
            ],
            last_resort: None,
            ceilings: Vec::new(),
        }],
        override_: None,
        uptime_s: 99,
        config: "/etc/config/mwan".into(),
        dataplane_error: None,
        overrides: Vec::new(),
        dataplane: Default::default(),
        dataplane_error_kind: None,
        event_loop: Default::default(),
        config_warning: None,
    }
}

/// An enabled interface netifd has had up for `uptime_s`, tracking `track_ips`.
fn up_for(uptime_s: u64, track_ips: &[&str]) -> luci::InterfaceExtra {
    luci::InterfaceExtra {
        enabled: Some(true),
        netifd_up: Some(true),
        netifd_uptime_s: Some(uptime_s),
        track_ips: track_ips.iter().map(|ip| ip.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn mwan3_status_has_the_shape_luci_reads() {
    let mut extras = BTreeMap::new();
    extras.insert(
        "wan".to_owned(),
        luci::InterfaceExtra {
            // mwan3track's files: the SCORE counter (down + up when
            // online), LOST, TURN, and TIME two seconds ago.
            track: Mwan3Track {
                score: 8,
                lost: 6,
                turn: 4,
                age_s: 2,
            },
            ..up_for(4242, &["198.51.100.1"])
        },
    );
    let v = luci::status(
        &sample_status(),
        &["192.0.2.0/24".into(), "2001:db8::/64".into()],
        &extras,
        None,
        None,
    )
    .to_json();
    let wan = &v["interfaces"]["wan"];
    let mut keys: Vec<&str> = wan
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "age", "enabled", "lost", "offline", "online", "running", "score", "status",
            "track_ip", "tracking", "turn", "up", "uptime"
        ]
    );
    assert_eq!(wan["status"], "online");
    assert_eq!(wan["tracking"], "active");
    assert_eq!(wan["running"], true);
    assert_eq!(wan["online"], 30);
    assert_eq!(wan["offline"], 0);
    assert_eq!(wan["uptime"], 4242);
    // mwan3's score and age, not mwand's quality score (98) or state age.
    assert_eq!((&wan["score"], &wan["age"]), (&json!(8), &json!(2)));
    assert_eq!((&wan["lost"], &wan["turn"]), (&json!(6), &json!(4)));
    assert_eq!(
        wan["track_ip"][0],
        json!({"ip": "198.51.100.1", "status": "up", "latency": 12, "packetloss": 0})
    );
    let wanb = &v["interfaces"]["wanb"];
    assert_eq!(
        (wanb["status"].as_str(), wanb["offline"].as_u64()),
        (Some("offline"), Some(30))
    );
    assert_eq!(wanb["tracking"], "down");
    assert_eq!(
        v["connected"],
        json!({"ipv4": ["192.0.2.0/24"], "ipv6": ["2001:db8::/64"]})
    );
    assert_eq!(
        v["policies"]["ipv4"]["balanced"],
        json!([{"interface": "wan", "percent": 75.0}, {"interface": "wanb", "percent": 25.0}])
    );
    assert_eq!(v["policies"]["ipv6"], v["policies"]["ipv4"]);
    // section and interface filters, as mwan3's object has them.
    let only = luci::status(
        &sample_status(),
        &[],
        &extras,
        Some("interfaces"),
        Some("wanb"),
    )
    .to_json();
    assert_eq!(only.as_object().unwrap().len(), 1);
    assert_eq!(
        only["interfaces"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["wanb"]
    );
    // And it goes over ubus as a table.
    assert!(Table::from_json(&v).is_ok());
}

#[test]
fn mwan_object_calls_map_to_control_requests() {
    let args = |j: serde_json::Value| Table::from_json(&j).unwrap();
    assert_eq!(
        mwan_object::request("status", &Table::new()),
        Ok(Request::Status)
    );
    assert_eq!(
        mwan_object::request("restart", &args(json!({"interface": "wan2"}))),
        Ok(Request::Restart {
            interface: "wan2".into()
        })
    );
    assert_eq!(
        mwan_object::request("override", &args(json!({"interface": "wan2"}))),
        Ok(Request::Override {
            interface: "wan2".into(),
            policy: None,
            persistent: false,
        })
    );
    assert_eq!(
        mwan_object::request("override", &args(json!({"clear": true}))),
        Ok(Request::ClearOverride { policy: None })
    );
    let bad = mwan_object::request("restart", &Table::new()).unwrap_err();
    assert_eq!(bad.status, status::INVALID_ARGUMENT);
    assert!(bad.message.contains("interface"), "{}", bad.message);
    let bad = mwan_object::request("restart", &args(json!({"interface": 5}))).unwrap_err();
    assert!(bad.message.contains("must be a string"), "{}", bad.message);
    assert_eq!(
        mwan_object::request("nope", &Table::new())
            .unwrap_err()
            .status,
        status::METHOD_NOT_FOUND
    );
    // Every method in the signature maps (with plausible args).
    for m in mwan_object::methods() {
        let a = args(json!({"interface": "wan", "policy": "p"}));
        assert!(mwan_object::request(&m.name, &a).is_ok(), "{}", m.name);
    }
}

#[test]
fn status_reply_round_trips_through_blobmsg() {
    let s = sample_status();
    let (code, body) = mwan_object::reply(&Response::Status(s.clone()));
    assert_eq!(code, status::OK);
    let mut bytes = Vec::new();
    body.encode_into(&mut bytes).unwrap();
    let back: Status = Table::decode(&bytes).unwrap().to_deserialize().unwrap();
    assert_eq!(back, s);
    // Same JSON as mwanctl status --json prints.
    assert_eq!(body.to_json(), serde_json::to_value(&s).unwrap());

    let (code, body) = mwan_object::reply(&Response::Interfaces(s.interfaces.clone()));
    assert_eq!(code, status::OK);
    assert_eq!(
        body.to_json()["interfaces"],
        serde_json::to_value(&s.interfaces).unwrap()
    );
    let (code, body) = mwan_object::reply(&Response::Error {
        message: "no such interface".into(),
    });
    assert_ne!(code, status::OK);
    assert_eq!(body.get_str("error"), Some("no such interface"));

    let ev = mwan_object::interface_event("online", &s.interfaces[1]);
    assert_eq!(ev.get_str("interface"), Some("wanb"));
    assert_eq!(ev.get_str("old_state"), Some("online"));
    assert_eq!(ev.get_str("state"), Some("offline"));
    assert_eq!(ev.get_str("device"), Some("eth-wanb"));
    assert_eq!(ev.get("latency_ms"), Some(&Value::Double(12.4)));
}

#[test]
fn mwanctl_over_ubus_round_trips_requests_and_responses() {
    let requests = [
        Request::Status,
        Request::Interfaces,
        Request::Policies,
        Request::Rules,
        Request::Connected,
        Request::Reload,
        Request::Restart {
            interface: "wan2".into(),
        },
        Request::Override {
            interface: "wan2".into(),
            policy: Some("balanced".into()),
            persistent: false,
        },
        Request::Override {
            interface: "wan2".into(),
            policy: None,
            persistent: true,
        },
        Request::Pause {
            interface: "wan2".into(),
        },
        Request::Resume {
            interface: "wan2".into(),
        },
        Request::ClearOverride { policy: None },
        Request::Explain {
            policy: Some("balanced".into()),
        },
    ];
    for r in requests {
        let (method, args) = mwan_object::call_for(&r);
        assert_eq!(
            mwan_object::request(method, &args),
            Ok(r.clone()),
            "{method}"
        );
    }
    let s = sample_status();
    let responses = [
        ("status", Response::Status(s.clone())),
        ("interfaces", Response::Interfaces(s.interfaces.clone())),
        ("policies", Response::Policies(s.policies.clone())),
        (
            "connected",
            Response::Connected(vec!["192.0.2.0/24".into()]),
        ),
        (
            "reload",
            Response::Done {
                message: "reloaded: 1 change".into(),
            },
        ),
        (
            "restart",
            Response::Error {
                message: "no interface 'x'".into(),
            },
        ),
    ];
    for (method, resp) in responses {
        let (code, body) = mwan_object::reply(&resp);
        // Over the wire and back.
        let mut bytes = Vec::new();
        body.encode_into(&mut bytes).unwrap();
        let body = Table::decode(&bytes).unwrap();
        assert_eq!(
            mwan_object::response_from(method, code, &body),
            Ok(resp),
            "{method}"
        );
    }
}

#[test]
fn history_goes_over_ubus_with_its_cursor_and_comes_back_as_the_same_json() {
    let r = Request::History { since: 42 };
    let (method, args) = mwan_object::call_for(&r);
    assert_eq!(method, "history");
    assert_eq!(mwan_object::request(method, &args), Ok(r));
    assert_eq!(
        mwan_object::request("history", &Table::new()),
        Ok(Request::History { since: 0 })
    );
    let bad = mwan_object::request(
        "history",
        &Table::from_json(&json!({"since": "soon"})).unwrap(),
    );
    assert!(bad.is_err_and(|e| e.message.contains("'since'")));
    let json = r#"{"next":5,"reset":false,"step_s":1,"states":["unknown","online"],
        "wans":[{"name":"wan1","t0":3,"latency_ms":[12.5,null,8],"state":[1,null,1]}],
        "events":[{"seq":1,"t":3,"at_ms":3100,"kind":"state","subject":"wan1",
        "text":"online -> offline","reason":"loss 100%"}]}"#;
    let (code, body) = mwan_object::reply(&Response::History { json: json.into() });
    let mut bytes = Vec::new();
    body.encode_into(&mut bytes).unwrap();
    let body = Table::decode(&bytes).unwrap();
    let Ok(Response::History { json: back }) = mwan_object::response_from("history", code, &body)
    else {
        panic!("not a history reply");
    };
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(parse(&back), parse(json));
}

#[test]
fn mwan3_status_words_for_untracked_and_disabled_interfaces() {
    let mut extras = BTreeMap::new();
    extras.insert("wan".to_owned(), up_for(77, &[]));
    extras.insert(
        "wanb".to_owned(),
        luci::InterfaceExtra {
            enabled: Some(false),
            ..luci::InterfaceExtra::default()
        },
    );
    let v = luci::status(&sample_status(), &[], &extras, None, None).to_json();
    // LuCI's overview: "notracking" shows netifd's uptime; anything unknown shows as Disabled.
    assert_eq!(v["interfaces"]["wan"]["status"], "notracking");
    assert_eq!(v["interfaces"]["wan"]["uptime"], 77);
    assert_eq!(v["interfaces"]["wanb"]["status"], "disabled");
    assert_eq!(v["interfaces"]["wanb"]["enabled"], false);
    // mwan3's `tracking`: "disabled" = no track IPs, enabled or not.
    assert_eq!(v["interfaces"]["wan"]["tracking"], "disabled");
    assert_eq!(v["interfaces"]["wan"]["running"], false);
    assert_eq!(v["interfaces"]["wanb"]["tracking"], "disabled");

    // A disabled interface that has track IPs: no tracker runs, "down" (as mwan3).
    extras.get_mut("wanb").unwrap().track_ips = vec!["198.51.100.1".into()];
    let mut status = sample_status();
    status.interfaces[1].tracker.connected = false;
    status.interfaces[1].tracker.pid = None;
    let v = luci::status(&status, &[], &extras, None, None).to_json();
    assert_eq!(v["interfaces"]["wanb"]["tracking"], "down");
    assert_eq!(v["interfaces"]["wanb"]["status"], "disabled");
}

/// mwan3's tracking word for a WAN stopped by `mwan3 ifdown` is "paused";
/// LuCI shows anything but online/offline/notracking as disabled.
#[test]
fn mwan3_status_says_paused_for_a_paused_wan() {
    let mut status = sample_status();
    let wan = &mut status.interfaces[0];
    wan.state = "disabled".into();
    wan.tracker.connected = false;
    wan.reason = Some(mwan_proto::control::PAUSED_REASON.into());
    let mut extras = BTreeMap::new();
    extras.insert(
        "wan".to_owned(),
        luci::InterfaceExtra {
            enabled: Some(true),
            track_ips: vec!["198.51.100.1".into()],
            ..Default::default()
        },
    );
    let v = luci::status(&status, &[], &extras, Some("interfaces"), Some("wan")).to_json();
    let wan = &v["interfaces"]["wan"];
    assert_eq!(
        (wan["tracking"].as_str(), wan["running"].as_bool()),
        (Some("paused"), Some(false))
    );
    assert_eq!(wan["status"], "disabled");
}

/// What prometheus-node-exporter-lua's mwan3 collector and luci-app-mwan3's
/// overview read, as they read it over ubus: `up`, `enabled`, `running` are
/// blobmsg booleans (Lua `x and 1 or 0` needs a boolean, not 0), the
/// counters integers; an enabled WAN without track IPs is `notracking`
/// with netifd's uptime (LuCI shows it green only when uptime > 0).
#[test]
fn mwan3_status_fields_have_the_types_the_exporter_and_luci_read() {
    let mut extras = BTreeMap::new();
    extras.insert("wan".to_owned(), up_for(35, &[]));
    let v = luci::status(&sample_status(), &[], &extras, Some("interfaces"), None).to_json();
    assert_eq!(v["interfaces"]["wan"]["status"], "notracking");
    assert_eq!(v["interfaces"]["wan"]["tracking"], "disabled");
    let t = Table::from_json(&v).unwrap();
    let Some(mwan_ubus::blobmsg::Value::Table(ifaces)) = t.get("interfaces") else {
        panic!("interfaces: {t:?}")
    };
    let Some(mwan_ubus::blobmsg::Value::Table(wan)) = ifaces.get("wan") else {
        panic!("wan: {ifaces:?}")
    };
    use mwan_ubus::blobmsg::Value as B;
    for key in ["up", "enabled", "running"] {
        assert!(
            matches!(wan.get(key), Some(B::Int8(0 | 1))),
            "{key}: {wan:?}"
        );
    }
    for key in [
        "age", "online", "offline", "uptime", "score", "lost", "turn",
    ] {
        assert!(matches!(wan.get(key), Some(B::Int32(_))), "{key}: {wan:?}");
    }
    assert_eq!(wan.get("uptime"), Some(&B::Int32(35)));
    assert_eq!(wan.get("up"), Some(&B::Int8(1)));
}
