//! The `service` object of the double: only what the captures show procd
//! doing (README of ../shared/ubus-vectors): set/add/delete/list/signal,
//! change detection per instance, respawn with the string parameters
//! (always: the retry limit is not captured), term_timeout then SIGKILL,
//! and the NOTIFYs in the captured order. procd's other methods exist in
//! the signature (as captured) and answer NOT_SUPPORTED.

use mwan_ubus::blobmsg::{Table, Value};
use mwan_ubus::message::status;
use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// procd's `service` signature as captured (c2_service_list_by_name.json).
pub const SIGNATURE: &[(&str, &[(&str, u8)])] = &[
    (
        "set",
        &[
            ("name", 3),
            ("script", 3),
            ("instances", 2),
            ("triggers", 1),
            ("validate", 1),
            ("autostart", 7),
            ("data", 2),
        ],
    ),
    (
        "add",
        &[
            ("name", 3),
            ("script", 3),
            ("instances", 2),
            ("triggers", 1),
            ("validate", 1),
            ("autostart", 7),
            ("data", 2),
        ],
    ),
    ("list", &[("name", 3), ("verbose", 7)]),
    ("delete", &[("name", 3), ("instance", 3)]),
    ("signal", &[("name", 3), ("instance", 3), ("signal", 5)]),
    ("update_start", &[("name", 3)]),
    ("update_complete", &[("name", 3)]),
    ("event", &[("type", 3), ("data", 2)]),
    ("validate", &[("package", 3), ("type", 3), ("service", 3)]),
    ("get_data", &[("name", 3), ("instance", 3), ("type", 3)]),
    ("set_data", &[("name", 3), ("instance", 3), ("data", 2)]),
    ("state", &[("spawn", 7), ("name", 3)]),
    (
        "watchdog",
        &[("mode", 5), ("timeout", 5), ("name", 3), ("instance", 3)],
    ),
];

/// A notification to publish on the `service` object.
pub type Notice = (String, Table);

#[derive(Debug, Clone, PartialEq)]
struct Definition {
    /// The instance table as received: procd restarts only when it changed.
    raw: Table,
    command: Vec<String>,
    respawn: Option<(u32, u32, u32)>,
    term_timeout: u32,
    env: Vec<(String, String)>,
    stdout: bool,
    stderr: bool,
    user: Option<String>,
    /// uid and gid `user` and `group` resolve to: as procd without ujail
    /// (no `jail`), the process switches to them with no capability left;
    /// `capabilities` and `no_new_privs` take effect only through ujail.
    ids: Option<(libc::uid_t, libc::gid_t)>,
}

/// procd's instance_config_parse: getpwnam(user) gives uid and gid,
/// getgrnam(group) overrides the gid; an unknown user is ignored.
fn resolve_ids(user: Option<&str>, group: Option<&str>) -> Option<(libc::uid_t, libc::gid_t)> {
    let user = std::ffi::CString::new(user?).ok()?;
    // SAFETY: getpwnam/getgrnam with NUL-terminated names; the double is
    // one thread and copies the ids out at once.
    unsafe {
        let pw = libc::getpwnam(user.as_ptr());
        if pw.is_null() {
            return None;
        }
        let mut gid = (*pw).pw_gid;
        if let Some(g) = group.and_then(|g| std::ffi::CString::new(g).ok()) {
            let gr = libc::getgrnam(g.as_ptr());
            if !gr.is_null() {
                gid = (*gr).gr_gid;
            }
        }
        Some(((*pw).pw_uid, gid))
    }
}

impl Definition {
    fn parse(raw: &Table) -> Option<Definition> {
        let command: Vec<String> = raw
            .get("command")?
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        if command.is_empty() {
            return None;
        }
        // procd reads respawn elements as strings; int32 elements read as 0.
        let respawn = raw.get("respawn").and_then(Value::as_array).map(|a| {
            let n = |i: usize| {
                a.get(i)
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            };
            (n(0), n(1), n(2))
        });
        Some(Definition {
            raw: raw.clone(),
            command,
            respawn,
            term_timeout: raw
                .get("term_timeout")
                .and_then(Value::as_i64)
                .map_or(5, |v| v as u32),
            env: raw
                .get_table("env")
                .map(|t| {
                    t.iter()
                        .filter_map(|(k, v)| Some((k.to_owned(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
            stdout: raw.get("stdout").and_then(Value::as_bool).unwrap_or(false),
            stderr: raw.get("stderr").and_then(Value::as_bool).unwrap_or(false),
            user: raw.get_str("user").map(str::to_owned),
            ids: resolve_ids(raw.get_str("user"), raw.get_str("group")),
        })
    }
}

#[derive(Debug)]
enum Run {
    Running(Child),
    /// SIGTERM sent; SIGKILL at the deadline. Then: start `next`, or drop
    /// the instance when `next` is None.
    Stopping {
        child: Child,
        kill_at: Instant,
        next: Option<Definition>,
    },
    /// Exited; respawn due at the time if any.
    Exited {
        exit_code: i32,
        respawn_at: Option<Instant>,
    },
}

#[derive(Debug)]
struct Instance {
    def: Definition,
    run: Run,
    respawn_count: u32,
}

impl Instance {
    /// Deleted, waiting for its process to exit.
    fn going(&self) -> bool {
        self.respawn_count == u32::MAX
    }
}

#[derive(Debug, Default)]
struct Service {
    instances: Vec<(String, Instance)>,
    /// Whole-service delete in progress: service.stop once empty.
    deleting: bool,
}

#[derive(Debug, Default)]
pub struct Procd {
    services: BTreeMap<String, Service>,
}

fn spawn(def: &Definition) -> std::io::Result<Child> {
    let mut cmd = Command::new(&def.command[0]);
    cmd.args(&def.command[1..])
        .envs(def.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(if def.stdout {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stderr(if def.stderr {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    let ids = def.ids;
    // SAFETY: prctl, setgroups, setgid and setuid are async-signal-safe;
    // the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // Instances die with the double, so a killed test leaves nothing behind.
            let mut rc = libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // procd's instance_run: groups, setgid, then setuid, which clears
            // every capability of a root process (no supplementary groups
            // here: initgroups allocates).
            if let Some((uid, gid)) = ids.filter(|_| rc == 0) {
                rc = libc::setgroups(0, std::ptr::null());
                if rc == 0 {
                    rc = libc::setgid(gid);
                }
                if rc == 0 {
                    rc = libc::setuid(uid);
                }
            }
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

fn notice(method: &str, service: &str, instance: Option<&str>) -> Notice {
    let mut t = Table::new().with("service", Value::string(service));
    if let Some(i) = instance {
        t.push("instance", Value::string(i));
    }
    (method.to_owned(), t)
}

fn term(child: &Child) {
    // SAFETY: plain kill(2) on a pid we own and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

fn exit_code(st: std::process::ExitStatus) -> i32 {
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

impl Procd {
    /// Dispatches one call: (status, reply data, notices to publish before
    /// the STATUS reply).
    pub fn call(
        &mut self,
        method: &str,
        args: &Table,
        now: Instant,
    ) -> (u32, Option<Table>, Vec<Notice>) {
        let mut notices = Vec::new();
        let code = match method {
            "set" | "add" => self.set_or_add(method == "set", args, now, &mut notices),
            "delete" => self.delete(args, now),
            "signal" => self.signal(args),
            "list" => return (status::OK, Some(self.list(args)), notices),
            m if SIGNATURE.iter().any(|(n, _)| *n == m) => status::NOT_SUPPORTED,
            _ => status::METHOD_NOT_FOUND,
        };
        (code, None, notices)
    }

    fn set_or_add(
        &mut self,
        replace: bool,
        args: &Table,
        now: Instant,
        notices: &mut Vec<Notice>,
    ) -> u32 {
        let Some(name) = args.get_str("name") else {
            return status::INVALID_ARGUMENT;
        };
        let wanted: Vec<(String, Definition)> = args
            .get_table("instances")
            .map(|t| {
                t.iter()
                    .filter_map(|(n, v)| Some((n.to_owned(), Definition::parse(v.as_table()?)?)))
                    .collect()
            })
            .unwrap_or_default();
        let is_new = !self.services.contains_key(name);
        let svc = self.services.entry(name.to_owned()).or_default();
        svc.deleting = false;
        for (iname, def) in wanted {
            match svc.instances.iter_mut().find(|(n, _)| *n == iname) {
                None => match spawn(&def) {
                    Ok(child) => {
                        svc.instances.push((
                            iname.clone(),
                            Instance {
                                def,
                                run: Run::Running(child),
                                respawn_count: 0,
                            },
                        ));
                        notices.push(notice("instance.start", name, Some(&iname)));
                    }
                    Err(e) => eprintln!("double procd: cannot start {name}/{iname}: {e}"),
                },
                Some((_, inst)) if inst.def.raw == def.raw && !inst.going() => {}
                Some((_, inst)) => {
                    // Changed (or being deleted): stop, and start the new
                    // definition once the old process is reaped.
                    inst.run = match Self::take_run(inst) {
                        Run::Exited { .. } => match spawn(&def) {
                            Ok(child) => {
                                notices.push(notice("instance.start", name, Some(&iname)));
                                Run::Running(child)
                            }
                            Err(_) => Run::Exited {
                                exit_code: 127,
                                respawn_at: None,
                            },
                        },
                        run => Self::begin_stop(run, inst.def.term_timeout, now, Some(def.clone())),
                    };
                    inst.def = def;
                    inst.respawn_count = 0;
                }
            }
        }
        if replace {
            let keep: Vec<String> = args
                .get_table("instances")
                .map(|t| t.iter().map(|(n, _)| n.to_owned()).collect())
                .unwrap_or_default();
            for (iname, inst) in svc.instances.iter_mut() {
                if !keep.contains(iname) {
                    Self::stop(inst, now);
                }
            }
        }
        if is_new {
            notices.push(notice("service.start", name, None));
        }
        status::OK
    }

    fn stop(inst: &mut Instance, now: Instant) {
        inst.run = match Self::take_run(inst) {
            // Not running: removed at the next poll without an instance.stop.
            Run::Exited { exit_code, .. } => Run::Exited {
                exit_code,
                respawn_at: None,
            },
            run => Self::begin_stop(run, inst.def.term_timeout, now, None),
        };
        inst.respawn_count = u32::MAX;
    }

    /// The instance's run state, leaving a placeholder to be overwritten.
    fn take_run(inst: &mut Instance) -> Run {
        std::mem::replace(
            &mut inst.run,
            Run::Exited {
                exit_code: 0,
                respawn_at: None,
            },
        )
    }

    /// procd's stop of a running (or already stopping) instance: SIGTERM,
    /// SIGKILL after `term_timeout`, then `next` (a changed definition) is
    /// started once the old process is reaped. An exited run is returned
    /// unchanged: what follows then differs between callers.
    fn begin_stop(run: Run, term_timeout: u32, now: Instant, next: Option<Definition>) -> Run {
        match run {
            Run::Running(child) => {
                term(&child);
                Run::Stopping {
                    child,
                    kill_at: now + Duration::from_secs(term_timeout.into()),
                    next,
                }
            }
            Run::Stopping { child, kill_at, .. } => Run::Stopping {
                child,
                kill_at,
                next,
            },
            exited @ Run::Exited { .. } => exited,
        }
    }

    fn delete(&mut self, args: &Table, now: Instant) -> u32 {
        let Some(svc) = args.get_str("name").and_then(|n| self.services.get_mut(n)) else {
            return status::NOT_FOUND;
        };
        match args.get_str("instance") {
            Some(iname) => match svc.instances.iter_mut().find(|(n, _)| n == iname) {
                Some((_, inst)) => Self::stop(inst, now),
                None => return status::NOT_FOUND,
            },
            None => {
                svc.deleting = true;
                for (_, inst) in svc.instances.iter_mut() {
                    Self::stop(inst, now);
                }
            }
        }
        status::OK
    }

    fn signal(&mut self, args: &Table) -> u32 {
        let sig = args
            .get("signal")
            .and_then(Value::as_i64)
            .unwrap_or(libc::SIGHUP.into());
        let Some(svc) = args.get_str("name").and_then(|n| self.services.get(n)) else {
            return status::NOT_FOUND;
        };
        let only = args.get_str("instance");
        for (iname, inst) in &svc.instances {
            if only.is_some_and(|o| o != iname) {
                continue;
            }
            if let Run::Running(child) = &inst.run {
                // SAFETY: kill(2) on our own child.
                unsafe {
                    libc::kill(child.id() as libc::pid_t, sig as libc::c_int);
                }
            }
        }
        status::OK
    }

    fn list(&self, args: &Table) -> Table {
        let only = args.get_str("name");
        let mut out = Table::new();
        for (name, svc) in &self.services {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            let mut insts = Table::new();
            // procd keeps instances in an AVL tree: listed by name.
            let mut sorted: Vec<&(String, Instance)> = svc.instances.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            for (iname, inst) in sorted {
                let mut t = Table::new();
                let (running, pid, code) = match &inst.run {
                    Run::Running(c) | Run::Stopping { child: c, .. } => (true, Some(c.id()), None),
                    Run::Exited { exit_code, .. } => (false, None, Some(*exit_code)),
                };
                t.push("running", Value::bool(running));
                if let Some(pid) = pid {
                    t.push("pid", Value::Int32(pid as i32));
                }
                t.push(
                    "command",
                    Value::Array(inst.def.command.iter().map(Value::string).collect()),
                );
                t.push("term_timeout", Value::Int32(inst.def.term_timeout as i32));
                if let Some(code) = code {
                    t.push("exit_code", Value::Int32(code));
                }
                if !inst.def.env.is_empty() {
                    t.push(
                        "env",
                        Value::Table(Table(
                            inst.def
                                .env
                                .iter()
                                .map(|(k, v)| (k.clone(), Value::string(v)))
                                .collect(),
                        )),
                    );
                }
                if let Some((threshold, timeout, retry)) = inst.def.respawn {
                    t.push(
                        "respawn",
                        Value::Table(
                            Table::new()
                                .with("threshold", Value::Int32(threshold as i32))
                                .with("timeout", Value::Int32(timeout as i32))
                                .with("retry", Value::Int32(retry as i32)),
                        ),
                    );
                }
                if let Some(u) = &inst.def.user {
                    t.push("user", Value::string(u));
                }
                insts.push(iname.clone(), Value::Table(t));
            }
            out.push(
                name.clone(),
                Value::Table(Table::new().with("instances", Value::Table(insts))),
            );
        }
        out
    }

    /// Reaps exits, kills overdue stoppers, respawns: the notices to publish.
    pub fn poll(&mut self, now: Instant) -> Vec<Notice> {
        let mut notices = Vec::new();
        for (name, svc) in self.services.iter_mut() {
            let mut remove = Vec::new();
            for (iname, inst) in svc.instances.iter_mut() {
                Self::poll_instance(name, iname, inst, now, &mut notices, &mut remove);
            }
            svc.instances.retain(|(n, _)| !remove.contains(n));
        }
        let gone: Vec<String> = self
            .services
            .iter()
            .filter(|(_, s)| s.deleting && s.instances.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            self.services.remove(&name);
            notices.push(notice("service.stop", &name, None));
        }
        notices
    }

    fn poll_instance(
        service: &str,
        iname: &str,
        inst: &mut Instance,
        now: Instant,
        notices: &mut Vec<Notice>,
        remove: &mut Vec<String>,
    ) {
        let old = std::mem::replace(
            &mut inst.run,
            Run::Exited {
                exit_code: 0,
                respawn_at: None,
            },
        );
        inst.run = match old {
            Run::Running(mut child) => match child.try_wait() {
                Ok(Some(st)) => {
                    let code = exit_code(st);
                    notices.push(notice("instance.stop", service, Some(iname)));
                    // Always respawned: procd's giving up after `retry`
                    // quick exits is not in the captures.
                    let respawn_at = inst.def.respawn.map(|(_, timeout, _)| {
                        inst.respawn_count += 1;
                        let mut t = notice("instance.respawn", service, Some(iname));
                        t.1.push("pid", Value::Int32(child.id() as i32));
                        t.1.push("exit_code", Value::Int32(code));
                        t.1.push("respawn_count", Value::Int32(inst.respawn_count as i32));
                        t.1.push(
                            "command",
                            Value::Array(inst.def.command.iter().map(Value::string).collect()),
                        );
                        notices.push(t);
                        now + Duration::from_secs(timeout.into())
                    });
                    Run::Exited {
                        exit_code: code,
                        respawn_at,
                    }
                }
                _ => Run::Running(child),
            },
            Run::Stopping {
                mut child,
                kill_at,
                next,
            } => match child.try_wait() {
                Ok(Some(st)) => {
                    notices.push(notice("instance.stop", service, Some(iname)));
                    match next {
                        Some(def) => {
                            inst.def = def;
                            inst.respawn_count = 0;
                            match spawn(&inst.def) {
                                Ok(c) => {
                                    notices.push(notice("instance.start", service, Some(iname)));
                                    Run::Running(c)
                                }
                                Err(_) => Run::Exited {
                                    exit_code: 127,
                                    respawn_at: None,
                                },
                            }
                        }
                        None => {
                            remove.push(iname.to_owned());
                            Run::Exited {
                                exit_code: exit_code(st),
                                respawn_at: None,
                            }
                        }
                    }
                }
                _ => {
                    if now >= kill_at {
                        if let Err(e) = child.kill() {
                            eprintln!("double procd: SIGKILL {}: {e}", child.id());
                        }
                    }
                    Run::Stopping {
                        child,
                        kill_at,
                        next,
                    }
                }
            },
            Run::Exited {
                exit_code,
                respawn_at: Some(at),
            } if now >= at => match spawn(&inst.def) {
                Ok(c) => {
                    notices.push(notice("instance.start", service, Some(iname)));
                    Run::Running(c)
                }
                Err(_) => Run::Exited {
                    exit_code,
                    respawn_at: None,
                },
            },
            Run::Exited {
                exit_code,
                respawn_at,
            } => {
                if inst.going() {
                    // Deleted while not running.
                    remove.push(iname.to_owned());
                }
                Run::Exited {
                    exit_code,
                    respawn_at,
                }
            }
        };
    }

    /// Stops everything (double shutting down).
    pub fn shutdown(&mut self) {
        for svc in self.services.values_mut() {
            for (_, inst) in svc.instances.iter_mut() {
                if let Run::Running(c) | Run::Stopping { child: c, .. } = &mut inst.run {
                    if let Err(e) = c.kill() {
                        eprintln!("double procd: kill {}: {e}", c.id());
                    }
                    if let Err(e) = c.wait() {
                        eprintln!("double procd: wait {}: {e}", c.id());
                    }
                }
            }
        }
    }
}
