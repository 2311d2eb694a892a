//! The `mwan` ubus object: method signatures, ubus arguments to control
//! [`Request`]s, [`Response`]s to ubus replies, and the `mwan.interface`
//! event body. Pure mapping; mwand's ubus service does the I/O.
//!
//! Replies have the shape of `mwanctl <cmd> --json`. A ubus reply body must
//! be a table, so list replies are wrapped: `{"interfaces": [...]}`,
//! `{"policies": [...]}`, `{"rules": [...]}`, `{"connected": [...]}`,
//! `{"explain": [...]}`; `Done` is `{"ok": true, "message": ...}`.
//! `Error` is `{"ok": false, "error": ...}` with a non-zero ubus status.

use crate::blobmsg::{kind, Table, Value};
use crate::client::MethodSpec;
use crate::message::status;
use mwan_proto::control::{InterfaceStatus, Request, Response};

pub const MWAN_OBJECT: &str = "mwan";
/// Event sent on every interface state change.
pub const INTERFACE_EVENT: &str = "mwan.interface";

pub fn methods() -> Vec<MethodSpec> {
    vec![
        MethodSpec::new("status", &[]),
        MethodSpec::new("interfaces", &[]),
        MethodSpec::new("policies", &[]),
        MethodSpec::new("rules", &[]),
        MethodSpec::new("connected", &[]),
        MethodSpec::new("reload", &[]),
        MethodSpec::new("restart", &[("interface", kind::STRING)]),
        MethodSpec::new(
            "override",
            &[
                ("interface", kind::STRING),
                ("policy", kind::STRING),
                ("clear", kind::INT8),
                ("persistent", kind::INT8),
            ],
        ),
        MethodSpec::new("explain", &[("policy", kind::STRING)]),
        MethodSpec::new("pause", &[("interface", kind::STRING)]),
        MethodSpec::new("resume", &[("interface", kind::STRING)]),
        MethodSpec::new("history", &[("since", kind::INT32)]),
        MethodSpec::new("config", &[]),
    ]
}

/// A bad call: ubus status to answer with, and why (logged by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCall {
    pub status: u32,
    pub message: String,
}

fn invalid(message: String) -> BadCall {
    BadCall {
        status: status::INVALID_ARGUMENT,
        message,
    }
}

fn opt_string(args: &Table, key: &str) -> Result<Option<String>, BadCall> {
    match args.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(format!(
            "argument '{key}' must be a string, got {}",
            other.to_json_text()
        ))),
    }
}

fn interface_arg(method: &str, args: &Table) -> Result<String, BadCall> {
    opt_string(args, "interface")?
        .ok_or_else(|| invalid(format!("{method} needs {{\"interface\": \"<name>\"}}")))
}

/// Maps a call of the `mwan` object to a control request.
pub fn request(method: &str, args: &Table) -> Result<Request, BadCall> {
    Ok(match method {
        "status" => Request::Status,
        "interfaces" => Request::Interfaces,
        "policies" => Request::Policies,
        "rules" => Request::Rules,
        "connected" => Request::Connected,
        "reload" => Request::Reload,
        "restart" => Request::Restart {
            interface: interface_arg(method, args)?,
        },
        "pause" => Request::Pause {
            interface: interface_arg(method, args)?,
        },
        "resume" => Request::Resume {
            interface: interface_arg(method, args)?,
        },
        "override" => {
            let policy = opt_string(args, "policy")?;
            let flag = |key| args.get(key).and_then(Value::as_bool).unwrap_or(false);
            match (flag("clear"), opt_string(args, "interface")?) {
                (true, _) => Request::ClearOverride { policy },
                (false, Some(interface)) => Request::Override {
                    interface,
                    policy,
                    persistent: flag("persistent"),
                },
                (false, None) => {
                    return Err(invalid(
                        "override needs {\"interface\": \"<name>\"} or {\"clear\": true}".into(),
                    ))
                }
            }
        }
        "explain" => Request::Explain {
            policy: opt_string(args, "policy")?,
        },
        "config" => Request::ConfigText,
        "history" => Request::History {
            since: match args.get("since") {
                None => 0,
                Some(v) if v.as_i64().is_some_and(|n| n >= 0) => v.as_i64().unwrap_or(0) as u64,
                Some(other) => {
                    return Err(invalid(format!(
                        "argument 'since' must be a second (a number from 0), got {}",
                        other.to_json_text()
                    )))
                }
            },
        },
        other => {
            return Err(BadCall {
                status: status::METHOD_NOT_FOUND,
                message: format!("no method '{other}' on object 'mwan'"),
            })
        }
    })
}

fn wrap<T: serde::Serialize>(key: &str, v: &T) -> Table {
    match crate::blobmsg::ser::to_value(v) {
        Ok(v) => Table::new().with(key, v),
        Err(e) => {
            log::error!("ubus reply '{key}': {e}");
            Table::new()
        }
    }
}

/// A control response as a ubus reply: (status, body).
pub fn reply(response: &Response) -> (u32, Table) {
    let body = match response {
        Response::Status(s) => Table::from_serialize(s).unwrap_or_else(|e| {
            log::error!("ubus status reply: {e}");
            Table::new()
        }),
        Response::Interfaces(v) => wrap("interfaces", v),
        Response::Policies(v) => wrap("policies", v),
        Response::Rules(v) => wrap("rules", v),
        Response::Connected(v) => wrap("connected", v),
        Response::Explain(v) => wrap("explain", v),
        Response::History { json } => Table::from_json_text(json).unwrap_or_else(|e| {
            log::error!("ubus history reply: {e}");
            Table::new()
        }),
        Response::Done { message } => Table::new()
            .with("ok", Value::bool(true))
            .with("message", Value::string(message)),
        Response::Error { message } => {
            return (
                status::UNKNOWN_ERROR,
                Table::new()
                    .with("ok", Value::bool(false))
                    .with("error", Value::string(message)),
            )
        }
    };
    (status::OK, body)
}

/// The ubus call for a control request (what `mwanctl` sends when it
/// talks to mwand over ubus): (method, arguments).
pub fn call_for(request: &Request) -> (&'static str, Table) {
    let opt = |t: Table, key: &str, v: &Option<String>| match v {
        Some(v) => t.with(key, Value::string(v)),
        None => t,
    };
    match request {
        Request::Status => ("status", Table::new()),
        Request::Interfaces => ("interfaces", Table::new()),
        Request::Policies => ("policies", Table::new()),
        Request::Rules => ("rules", Table::new()),
        Request::Connected => ("connected", Table::new()),
        Request::Reload => ("reload", Table::new()),
        Request::Restart { interface } => ("restart", interface_table(interface)),
        Request::Pause { interface } => ("pause", interface_table(interface)),
        Request::Resume { interface } => ("resume", interface_table(interface)),
        Request::Override {
            interface,
            policy,
            persistent,
        } => {
            let t = opt(interface_table(interface), "policy", policy);
            let t = if *persistent {
                t.with("persistent", Value::bool(true))
            } else {
                t
            };
            ("override", t)
        }
        Request::ClearOverride { policy } => (
            "override",
            opt(
                Table::new().with("clear", Value::bool(true)),
                "policy",
                policy,
            ),
        ),
        Request::Explain { policy } => ("explain", opt(Table::new(), "policy", policy)),
        Request::ConfigText => ("config", Table::new()),
        Request::History { since } => (
            "history",
            // A second of mwand's monotonic clock: int32 for 68 years.
            Table::new().with(
                "since",
                Value::Int32(i32::try_from(*since).unwrap_or(i32::MAX)),
            ),
        ),
    }
}

fn interface_table(interface: &str) -> Table {
    Table::new().with("interface", Value::string(interface))
}

/// Turns a reply of the `mwan` object back into the control response
/// (the inverse of [`reply`]), for `mwanctl` over ubus.
pub fn response_from(method: &str, code: u32, body: &Table) -> Result<Response, String> {
    fn field<T: serde::de::DeserializeOwned>(body: &Table, key: &str) -> Result<T, String> {
        crate::blobmsg::de::from_value(body.get(key).unwrap_or(&Value::Unspec))
            .map_err(|e| format!("reply field '{key}': {e}"))
    }
    if let Some(error) = body.get_str("error") {
        return Ok(Response::Error {
            message: error.to_owned(),
        });
    }
    if code != status::OK {
        return Ok(Response::Error {
            message: format!("ubus status {code} ({})", status::name(code)),
        });
    }
    Ok(match method {
        "status" => Response::Status(body.to_deserialize().map_err(|e| e.to_string())?),
        "interfaces" => Response::Interfaces(field(body, "interfaces")?),
        "policies" => Response::Policies(field(body, "policies")?),
        "rules" => Response::Rules(field(body, "rules")?),
        "connected" => Response::Connected(field(body, "connected")?),
        "explain" => Response::Explain(field(body, "explain")?),
        "history" => Response::History {
            json: body.to_json_text(),
        },
        _ => Response::Done {
            message: body.get_str("message").unwrap_or("done").to_owned(),
        },
    })
}

/// Body of the `mwan.interface` event: interface, device, old and new
/// state, and the metrics (absent metrics are left out).
pub fn interface_event(old_state: &str, now: &InterfaceStatus) -> Table {
    let mut t = Table::new().with("interface", Value::string(&now.name));
    if let Some(d) = &now.device {
        t.push("device", Value::string(d));
    }
    t.push("old_state", Value::string(old_state));
    t.push("state", Value::string(&now.state));
    for (key, v) in [
        ("latency_ms", now.latency_ms),
        ("jitter_ms", now.jitter_ms),
        ("loss_pct", now.loss_pct),
        ("score", now.score),
    ] {
        if let Some(v) = v {
            t.push(key, Value::Double(v));
        }
    }
    t
}
