//! procd helpers against the captured `service` conversations.

mod common;

use common::{all_vector_files, load_frames, runs};
use mwan_ubus::blobmsg::Table;
use mwan_ubus::message::{Message, MsgType};
use mwan_ubus::procd::{self, InstanceSpec, ProcdEvent, Respawn};

fn sleep(arg: &str) -> InstanceSpec {
    InstanceSpec {
        command: vec!["/bin/sleep".into(), arg.into()],
        respawn: Some(Respawn::default()),
        ..InstanceSpec::default()
    }
}

/// DATA of the CLI's INVOKE of `method` whose note contains `needle`.
fn cli_request(file: &str, method: &str, needle: &str) -> Table {
    let path = common::vectors_dir().join(file);
    load_frames(&path)
        .into_iter()
        .filter(|f| f.role == "ubus-cli" && f.dir == "client->ubusd" && f.note.contains(needle))
        .map(|f| Message::decode(&f.bytes).unwrap())
        .find(|m| m.kind == MsgType::Invoke && m.method() == Some(method))
        .unwrap_or_else(|| panic!("{file}: no {method} request with {needle}"))
        .data()
        .cloned()
        .unwrap()
}

fn bytes(t: &Table) -> Vec<u8> {
    let mut out = Vec::new();
    t.encode_into(&mut out).unwrap();
    out
}

#[test]
fn requests_match_what_procd_was_sent() {
    let set = procd::set(
        "demo",
        &[("i1".into(), sleep("1000")), ("i2".into(), sleep("1001"))],
    );
    assert_eq!(
        bytes(&set),
        bytes(&cli_request(
            "d2_service_set_two_instances.json",
            "set",
            "demo"
        ))
    );

    let add = procd::add("demo", &[("i2".into(), sleep("1002"))]);
    assert_eq!(
        bytes(&add),
        bytes(&cli_request("j1_service_add_merge.json", "add", "1002"))
    );

    let params = InstanceSpec {
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo out-line; echo err-line >&2; trap \"\" TERM; exec /bin/sleep 1005".into(),
        ],
        respawn: None,
        stdout: true,
        stderr: true,
        env: vec![("FOO".into(), "bar".into())],
        term_timeout_s: Some(2),
        user: Some("nobody".into()),
        ..InstanceSpec::default()
    };
    let set = procd::set("demo-params", &[("p1".into(), params)]);
    assert_eq!(
        bytes(&set),
        bytes(&cli_request(
            "j5_instance_params.json",
            "set",
            "demo-params"
        ))
    );

    let [(m1, del), (m2, add)] = procd::restart_instance("demo", "i2", &sleep("2002"));
    assert_eq!((m1, m2), ("delete", "add"));
    assert_eq!(
        bytes(&del),
        bytes(&cli_request(
            "j3_delete_then_add_instance.json",
            "delete",
            "i2"
        ))
    );
    assert_eq!(
        bytes(&add),
        bytes(&cli_request(
            "j3_delete_then_add_instance.json",
            "add",
            "2002"
        ))
    );

    assert_eq!(
        bytes(&procd::signal("demo", "i1", 15)),
        bytes(&cli_request("j4_service_signal.json", "signal", "demo"))
    );
    assert_eq!(
        bytes(&procd::list(Some("demo"))),
        bytes(&cli_request("j1_service_add_merge.json", "list", "demo"))
    );
    assert_eq!(
        bytes(&procd::delete("demo", None)),
        bytes(&cli_request("i_service_delete.json", "delete", "demo"))
    );
}

/// Reply DATA procd sent to `service list` calls in one file, in order.
fn list_replies(file: &str) -> Vec<Table> {
    let frames = load_frames(&common::vectors_dir().join(file));
    let mut list_seqs = Vec::new();
    let mut out = Vec::new();
    for f in &frames {
        let m = Message::decode(&f.bytes).unwrap();
        if f.role == "procd" && m.kind == MsgType::Invoke && m.method() == Some("list") {
            list_seqs.push((m.seq, m.peer));
        }
        if f.role == "procd"
            && f.dir == "client->ubusd"
            && m.kind == MsgType::Data
            && list_seqs.contains(&(m.seq, m.peer))
        {
            out.push(m.data().cloned().unwrap());
        }
    }
    out
}

fn pid_of(list: &Table, service: &str, instance: &str) -> Option<u32> {
    procd::parse_list(list)
        .into_iter()
        .find(|s| s.name == service)?
        .instances
        .into_iter()
        .find(|i| i.name == instance)?
        .pid
}

#[test]
fn list_replies_give_pids_and_exit_codes() {
    let c2 = list_replies("c2_service_list_by_name.json");
    assert_eq!(pid_of(&c2[0], "demo", "i1"), Some(11659));

    // j1: i1 kept 12368 while add started i2 12385.
    let j1 = list_replies("j1_service_add_merge.json");
    assert_eq!(pid_of(&j1[0], "demo", "i1"), Some(12368));
    assert_eq!(pid_of(&j1[0], "demo", "i2"), None);
    assert_eq!(pid_of(&j1[1], "demo", "i1"), Some(12368));
    assert_eq!(pid_of(&j1[1], "demo", "i2"), Some(12385));

    // j3: delete + add of i2 gives it a new pid, i1 unchanged.
    let j3 = list_replies("j3_delete_then_add_instance.json");
    let first = j3.first().unwrap();
    let last = j3.last().unwrap();
    assert_eq!(pid_of(first, "demo", "i2"), Some(12412));
    assert_eq!(pid_of(last, "demo", "i2"), Some(12455));
    assert_eq!(pid_of(first, "demo", "i1"), pid_of(last, "demo", "i1"));

    // j4: after SIGTERM, i1 is not running, has no pid, exit_code 143.
    let j4 = list_replies("j4_service_signal.json");
    let svc = procd::parse_list(&j4[1]);
    let i1 = svc[0].instances.iter().find(|i| i.name == "i1").unwrap();
    assert!(!i1.running);
    assert_eq!((i1.pid, i1.exit_code), (None, Some(143)));
    assert_eq!(pid_of(&j4[2], "demo", "i1"), Some(12577));
    assert_eq!(i1.command, ["/bin/sleep", "1000"]);

    // j6: both services in one list.
    let j6 = list_replies("j6_add_second_service.json");
    let names: Vec<String> = procd::parse_list(&j6[0])
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(
        names.contains(&"demo".to_owned()) && names.contains(&"demo-track".to_owned()),
        "{names:?}"
    );
}

#[test]
fn every_procd_notification_parses() {
    let mut kinds = std::collections::BTreeSet::new();
    let mut n = 0;
    for run in runs() {
        for f in run
            .iter()
            .filter(|f| f.role == "procd" && f.dir == "client->ubusd")
        {
            let m = Message::decode(&f.bytes).unwrap();
            if m.kind != MsgType::Notify {
                continue;
            }
            let ev = ProcdEvent::parse(m.method().unwrap(), m.data().unwrap())
                .unwrap_or_else(|| panic!("unparsed: {}", f.note));
            kinds.insert(m.method().unwrap().to_owned());
            if let ProcdEvent::InstanceRespawn {
                old_pid, exit_code, ..
            } = ev
            {
                assert_eq!((old_pid, exit_code), (Some(12368), Some(143)));
            }
            n += 1;
        }
    }
    assert!(n >= 20);
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        [
            "instance.respawn",
            "instance.start",
            "instance.stop",
            "service.start",
            "service.stop"
        ]
    );
    assert!(all_vector_files().len() >= 25);
}

#[test]
fn tracker_instances_are_named_per_wan_in_their_own_service() {
    assert_eq!(procd::tracker_instance("wan2"), "track_wan2");
    assert_eq!(procd::wan_of_instance("track_wan2"), Some("wan2"));
    assert_eq!(procd::wan_of_instance("mwand"), None);
    assert!(procd::TRACKER_SERVICE.starts_with("mwan"));
    assert_ne!(procd::TRACKER_SERVICE, procd::CONTROLLER_SERVICE);
}

/// The tracker's privileges reach procd under the names procd's instance
/// parser reads (`user`, `group`, `capabilities` as a string path,
/// `no_new_privs` as a bool).
#[test]
fn privileges_are_in_procds_instance_fields() {
    let spec = InstanceSpec {
        command: vec!["/usr/sbin/mwan-track".into()],
        user: Some("mwan".into()),
        group: Some("mwan".into()),
        capabilities: Some("/etc/capabilities/mwan-track.json".into()),
        no_new_privs: true,
        ..InstanceSpec::default()
    };
    let json = spec.to_table().to_json();
    assert_eq!(json["user"], "mwan");
    assert_eq!(json["group"], "mwan");
    assert_eq!(json["capabilities"], "/etc/capabilities/mwan-track.json");
    assert_eq!(json["no_new_privs"], true);
    let plain = InstanceSpec::default().to_table().to_json();
    for field in ["user", "group", "capabilities", "no_new_privs"] {
        assert!(
            plain.get(field).is_none(),
            "{field} without privileges: {plain}"
        );
    }
}
