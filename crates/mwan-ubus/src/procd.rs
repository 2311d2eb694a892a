//! procd's `service` object, as mwand uses it to supervise trackers.
//!
//! Facts from the captures (`../shared/ubus-vectors`, README):
//! - respawn values must be strings (`["3600","5","5"]`): int32 elements
//!   are read as 0;
//! - `set` replaces a service's whole instance list, `add` merges;
//! - an instance whose definition did not change is left running, so a
//!   restart without a change is `delete` of that instance then `add`;
//! - procd NOTIFYs `instance.start` / `instance.stop` / `instance.respawn`
//!   / `service.start` / `service.stop` on the `service` object.
//!
//! The trackers live in a service of their own, [`TRACKER_SERVICE`], so
//! the init script's `service set` for mwand's own instance (procd's shell
//! helpers always use `set`) cannot wipe them.

use crate::blobmsg::{Table, Value};

/// procd's object path.
pub const SERVICE_OBJECT: &str = "service";
/// The service holding one `track_<wan>` instance per WAN. Starts with
/// `mwan` so `/etc/init.d/mwan stop` can find and delete it by name.
pub const TRACKER_SERVICE: &str = "mwan-track";
/// The service the init script registers mwand under.
pub const CONTROLLER_SERVICE: &str = "mwan";

/// `track_<wan>`: the procd instance name of a WAN's tracker.
pub fn tracker_instance(wan: &str) -> String {
    format!("track_{wan}")
}

/// The WAN of a tracker instance name, if it is one.
pub fn wan_of_instance(instance: &str) -> Option<&str> {
    instance.strip_prefix("track_").filter(|w| !w.is_empty())
}

/// procd respawn parameters (procd's defaults are 3600, 5, 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Respawn {
    /// Seconds a run must last to reset the retry count.
    pub threshold_s: u32,
    /// Seconds between exit and restart.
    pub timeout_s: u32,
    /// Restarts within the threshold before giving up (0 = forever).
    pub retry: u32,
}

impl Default for Respawn {
    fn default() -> Self {
        Respawn {
            threshold_s: 3600,
            timeout_s: 5,
            retry: 5,
        }
    }
}

/// One procd instance definition, the subset mwan needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceSpec {
    pub command: Vec<String>,
    pub respawn: Option<Respawn>,
    /// Send stdout/stderr to syslog (procd logs each line as `<argv0>[pid]`).
    pub stdout: bool,
    pub stderr: bool,
    pub env: Vec<(String, String)>,
    /// Seconds between SIGTERM and SIGKILL on stop.
    pub term_timeout_s: Option<u32>,
    pub user: Option<String>,
    /// Without it procd keeps gid 0 for a `user` instance.
    pub group: Option<String>,
    /// Path of a capabilities JSON file (ujail's format: `bounding`,
    /// `effective`, `permitted`, `inheritable`, `ambient` arrays of names).
    pub capabilities: Option<String>,
    pub no_new_privs: bool,
}

impl InstanceSpec {
    pub fn to_table(&self) -> Table {
        let mut t = Table::new().with(
            "command",
            Value::Array(self.command.iter().map(Value::string).collect()),
        );
        if let Some(r) = self.respawn {
            // Strings, not ints: procd reads these elements with blobmsg_get_string.
            t.push(
                "respawn",
                Value::Array(vec![
                    Value::String(r.threshold_s.to_string()),
                    Value::String(r.timeout_s.to_string()),
                    Value::String(r.retry.to_string()),
                ]),
            );
        }
        if self.stdout {
            t.push("stdout", Value::bool(true));
        }
        if self.stderr {
            t.push("stderr", Value::bool(true));
        }
        if let Some(s) = self.term_timeout_s {
            t.push("term_timeout", Value::Int32(s as i32));
        }
        if !self.env.is_empty() {
            t.push(
                "env",
                Value::Table(Table(
                    self.env
                        .iter()
                        .map(|(k, v)| (k.clone(), Value::string(v)))
                        .collect(),
                )),
            );
        }
        if let Some(u) = &self.user {
            t.push("user", Value::string(u));
        }
        if let Some(g) = &self.group {
            t.push("group", Value::string(g));
        }
        if let Some(c) = &self.capabilities {
            t.push("capabilities", Value::string(c));
        }
        if self.no_new_privs {
            t.push("no_new_privs", Value::bool(true));
        }
        t
    }
}

fn instances_table(instances: &[(String, InstanceSpec)]) -> Value {
    Value::Table(Table(
        instances
            .iter()
            .map(|(name, spec)| (name.clone(), Value::Table(spec.to_table())))
            .collect(),
    ))
}

/// `service add`: merges these instances into `service` (others untouched;
/// an unchanged instance keeps its process, a changed one is restarted).
pub fn add(service: &str, instances: &[(String, InstanceSpec)]) -> Table {
    Table::new()
        .with("name", Value::string(service))
        .with("instances", instances_table(instances))
}

/// `service set`: replaces the instance list of `service` (instances not
/// named are stopped). Other services are not touched.
pub fn set(service: &str, instances: &[(String, InstanceSpec)]) -> Table {
    add(service, instances)
}

/// `service delete`: the whole service, or one instance of it.
pub fn delete(service: &str, instance: Option<&str>) -> Table {
    let t = Table::new().with("name", Value::string(service));
    match instance {
        Some(i) => t.with("instance", Value::string(i)),
        None => t,
    }
}

/// `service list`: all services, or one.
pub fn list(service: Option<&str>) -> Table {
    match service {
        Some(s) => Table::new().with("name", Value::string(s)),
        None => Table::new(),
    }
}

/// `service signal` of one instance.
pub fn signal(service: &str, instance: &str, signal: i32) -> Table {
    delete(service, Some(instance)).with("signal", Value::Int32(signal))
}

/// The two calls that restart one instance whose definition is unchanged:
/// procd ignores an `add` of an identical definition.
pub fn restart_instance(
    service: &str,
    instance: &str,
    spec: &InstanceSpec,
) -> [(&'static str, Table); 2] {
    [
        ("delete", delete(service, Some(instance))),
        ("add", add(service, &[(instance.to_owned(), spec.clone())])),
    ]
}

/// One instance as `service list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceState {
    pub name: String,
    pub running: bool,
    pub pid: Option<u32>,
    /// 128+signal for a killed process, as procd reports it.
    pub exit_code: Option<i32>,
    pub command: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    pub name: String,
    pub instances: Vec<InstanceState>,
}

/// Parses a `service list` reply: `{"<service>": {"instances": {"<inst>": {...}}}}`.
/// Entries that are not tables are skipped; a missing field reads as absent.
pub fn parse_list(reply: &Table) -> Vec<ServiceState> {
    reply
        .iter()
        .filter_map(|(name, v)| {
            let svc = v.as_table()?;
            let instances = svc
                .get_table("instances")
                .map(|insts| {
                    insts
                        .iter()
                        .filter_map(|(iname, iv)| {
                            let i = iv.as_table()?;
                            Some(InstanceState {
                                name: iname.to_owned(),
                                running: i.get("running").and_then(Value::as_bool).unwrap_or(false),
                                pid: i
                                    .get("pid")
                                    .and_then(Value::as_i64)
                                    .and_then(|p| u32::try_from(p).ok()),
                                exit_code: i
                                    .get("exit_code")
                                    .and_then(Value::as_i64)
                                    .and_then(|c| i32::try_from(c).ok()),
                                command: i
                                    .get("command")
                                    .and_then(Value::as_array)
                                    .map(|a| {
                                        a.iter()
                                            .filter_map(|c| c.as_str().map(str::to_owned))
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(ServiceState {
                name: name.to_owned(),
                instances,
            })
        })
        .collect()
}

/// A NOTIFY procd publishes on the `service` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcdEvent {
    InstanceStart {
        service: String,
        instance: String,
    },
    InstanceStop {
        service: String,
        instance: String,
    },
    /// The instance exited and will be started again after the respawn timeout.
    InstanceRespawn {
        service: String,
        instance: String,
        old_pid: Option<u32>,
        exit_code: Option<i32>,
    },
    ServiceStart {
        service: String,
    },
    ServiceStop {
        service: String,
    },
}

impl ProcdEvent {
    /// Parses a notification by method name; `None` for ones we do not use.
    pub fn parse(method: &str, data: &Table) -> Option<ProcdEvent> {
        let service = data.get_str("service")?.to_owned();
        let instance = data.get_str("instance").map(str::to_owned);
        Some(match method {
            "instance.start" => ProcdEvent::InstanceStart {
                service,
                instance: instance?,
            },
            "instance.stop" => ProcdEvent::InstanceStop {
                service,
                instance: instance?,
            },
            "instance.respawn" => ProcdEvent::InstanceRespawn {
                service,
                instance: instance?,
                old_pid: data
                    .get("pid")
                    .and_then(Value::as_i64)
                    .and_then(|p| u32::try_from(p).ok()),
                exit_code: data
                    .get("exit_code")
                    .and_then(Value::as_i64)
                    .and_then(|c| i32::try_from(c).ok()),
            },
            "service.start" => ProcdEvent::ServiceStart { service },
            "service.stop" => ProcdEvent::ServiceStop { service },
            _ => return None,
        })
    }
}
