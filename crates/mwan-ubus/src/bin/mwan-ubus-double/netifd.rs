//! netifd, played by the double with `--netifd FILE`: the objects
//! `network.interface` (`dump`) and `network.interface.<name>` (`status`)
//! answer from FILE, a netifd dump (`{"interface": [{"interface": "wan",
//! "up": true, "l3_device": ..., "ipv4-address": [...], "route": [...]}]}`),
//! read again at every call so a test changes netifd's view by rewriting it.
//! SIGUSR2 publishes every interface's state as netifd does on a change
//! (the `network.interface` event ifup/ifdown, then `interface.update` or
//! `interface.down` to the object's subscribers); SIGUSR1 restarts netifd: its
//! objects go away as ubusd removes a departing client's (UNSUBSCRIBE to
//! each subscriber, `ubus.object.remove`) and come back with new ids
//! (`ubus.object.add`).

use super::{Bus, Object, Owner};
use mwan_ubus::blobmsg::{Table, Value};
use mwan_ubus::client::{signature, MethodSpec};
use mwan_ubus::message::{status, Message};
use std::path::PathBuf;

const DUMP_OBJECT: &str = "network.interface";

pub struct Netifd {
    file: PathBuf,
    /// netifd's own client id (the publisher of its notifications).
    pub client_id: u32,
    seq: u16,
}

impl Netifd {
    pub fn new(file: PathBuf, client_id: u32) -> Netifd {
        Netifd {
            file,
            client_id,
            seq: 0,
        }
    }

    /// Every interface's status as the file has it now, by name.
    fn interfaces(&self) -> Vec<(String, Table)> {
        let text = match std::fs::read_to_string(&self.file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("double: netifd {}: {e}", self.file.display());
                return Vec::new();
            }
        };
        let json: serde_json::Value = match serde_json::from_str(&text) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("double: netifd {}: {e}", self.file.display());
                return Vec::new();
            }
        };
        let list = json["interface"].as_array().cloned().unwrap_or_default();
        list.into_iter()
            .filter_map(|mut i| {
                let name = i.as_object_mut()?.remove("interface")?;
                let status = Table::from_json(&i).ok()?;
                Some((name.as_str()?.to_owned(), status))
            })
            .collect()
    }

    fn dump(&self) -> Table {
        let mut j = serde_json::json!({"interface": []});
        for (name, status) in self.interfaces() {
            let mut entry = status.to_json();
            entry["interface"] = name.into();
            if let Some(list) = j["interface"].as_array_mut() {
                list.push(entry);
            }
        }
        Table::from_json(&j).unwrap_or_default()
    }
}

impl Bus {
    /// netifd registers its objects (at start, and after a restart).
    pub fn netifd_start(&mut self) {
        let Some(netifd) = self.netifd.as_ref() else {
            return;
        };
        let mut paths = vec![(DUMP_OBJECT.to_owned(), "dump")];
        paths.extend(
            netifd
                .interfaces()
                .into_iter()
                .map(|(name, _)| (format!("{DUMP_OBJECT}.{name}"), "status")),
        );
        for (path, method) in paths {
            let object = Object {
                path: Some(path),
                type_id: self.new_id(),
                signature: signature(&[MethodSpec::new(method, &[])]),
                owner: Owner::Netifd,
                subscribers: Vec::new(),
                invoke_seq: 0,
            };
            self.add_object(object);
        }
    }

    /// netifd exits and starts again: each object removed as ubusd does
    /// for a departing client, then registered anew.
    pub fn netifd_restart(&mut self) {
        let owned: Vec<u32> = self
            .objects
            .iter()
            .filter(|(_, o)| o.owner == Owner::Netifd)
            .map(|(id, _)| *id)
            .collect();
        for id in owned {
            self.remove_object(id);
        }
        self.netifd_start();
    }

    /// What netifd does when interfaces change: the `network.interface`
    /// event (ifup / ifdown) of each, then `interface.update` (or
    /// `interface.down`) to the interface object's subscribers.
    pub fn netifd_publish(&mut self) {
        let Some(netifd) = self.netifd.as_mut() else {
            return;
        };
        let interfaces = netifd.interfaces();
        let publisher = netifd.client_id;
        for (name, status) in interfaces {
            // netifd's notification names its interface, its status does not.
            let up = status.get("up").and_then(Value::as_bool).unwrap_or(false);
            let action = if up { "ifup" } else { "ifdown" };
            let event = Table::new()
                .with("action", Value::string(action))
                .with("interface", Value::string(name.as_str()));
            self.emit_event(DUMP_OBJECT, event);
            let mut data = Table::new().with("interface", Value::string(name.as_str()));
            data.0.extend(status.0);
            let method = if up {
                "interface.update"
            } else {
                "interface.down"
            };
            let path = format!("{DUMP_OBJECT}.{name}");
            let Some(obj) = self.object_by_path(&path) else {
                continue;
            };
            let seq = self.netifd_seq();
            self.fan_out(obj, publisher, seq, method, data);
        }
    }

    fn netifd_seq(&mut self) -> u16 {
        let Some(n) = self.netifd.as_mut() else {
            return 0;
        };
        n.seq = n.seq.wrapping_add(1);
        n.seq
    }

    /// A call of one of netifd's objects: its answer from the file.
    pub fn netifd_call(&mut self, peer: usize, seq: u16, obj: u32, method: &str) {
        let Some(netifd) = self.netifd.as_ref() else {
            return;
        };
        let path = self
            .objects
            .get(&obj)
            .and_then(|o| o.path.clone())
            .unwrap_or_default();
        let body = match (path.strip_prefix(DUMP_OBJECT), method) {
            (Some(""), "dump") => Some(netifd.dump()),
            (Some(name), "status") => netifd
                .interfaces()
                .into_iter()
                .find(|(n, _)| Some(n.as_str()) == name.strip_prefix('.'))
                .map(|(_, s)| s),
            _ => None,
        };
        let code = match body {
            Some(body) => {
                self.send(peer, &Message::reply_data(seq, obj, obj, body));
                status::OK
            }
            None if method == "dump" || method == "status" => status::NOT_FOUND,
            None => status::METHOD_NOT_FOUND,
        };
        self.send(peer, &Message::reply_status(seq, obj, obj, code));
    }
}
