//! luci-app-mwan without LuCI: the view's `rpc.declare` calls, the rpcd
//! ACL and the menu entry agree with each other and with what mwand's
//! `mwan` ubus object serves (docs/openwrt.md says what remains to check
//! on a router).

use mwan_proto::control::Request;
use mwan_ubus::blobmsg::{Table, Value};
use mwan_ubus::mwan_object::{methods, request, MWAN_OBJECT};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const VIEW: &str = "htdocs/luci-static/resources/view/mwan/status.js";
const ACL: &str = "root/usr/share/rpcd/acl.d/luci-app-mwan.json";
const MENU: &str = "root/usr/share/luci/menu.d/luci-app-mwan.json";
const WRITES: [&str; 3] = ["override", "restart", "reload"];

fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openwrt-package/luci-app-mwan")
}

fn read(rel: &str) -> String {
    let p = app_dir().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn json(rel: &str) -> serde_json::Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `'value'` after `key:` inside one declaration.
fn quoted_after(decl: &str, key: &str) -> Option<String> {
    let rest = &decl[decl.find(key)? + key.len()..];
    let rest = &rest[rest.find('\'')? + 1..];
    Some(rest[..rest.find('\'')?].to_owned())
}

/// Every `rpc.declare({...})` of the view: (object, method, params).
fn declarations() -> Vec<(String, String, Vec<String>)> {
    let view = read(VIEW);
    view.split("rpc.declare({")
        .skip(1)
        .map(|d| {
            let decl = &d[..d
                .find("})")
                .unwrap_or_else(|| panic!("unclosed rpc.declare in {VIEW}"))];
            let object =
                quoted_after(decl, "object:").unwrap_or_else(|| panic!("no object in {decl}"));
            let method =
                quoted_after(decl, "method:").unwrap_or_else(|| panic!("no method in {decl}"));
            let params = decl
                .find("params:")
                .map(|i| {
                    let list = &decl[i..];
                    let list = &list[list.find('[').unwrap_or(0) + 1..list.find(']').unwrap_or(0)];
                    list.split(',')
                        .map(|p| p.trim().trim_matches('\'').to_owned())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            (object, method, params)
        })
        .collect()
}

fn acl_methods(section: &str) -> BTreeSet<String> {
    let acl = json(ACL);
    let group = acl
        .as_object()
        .and_then(|o| o.values().next())
        .unwrap_or_else(|| panic!("{ACL}: no group"));
    group[section]["ubus"][MWAN_OBJECT]
        .as_array()
        .unwrap_or_else(|| panic!("{ACL}: {section}.ubus.mwan missing"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn view_calls_only_what_mwand_serves_with_its_argument_names() {
    let served = methods();
    let decls = declarations();
    assert!(decls.len() >= 5, "{decls:?}");
    for (object, method, params) in &decls {
        assert_eq!(object, MWAN_OBJECT, "{method}");
        let spec = served
            .iter()
            .find(|m| &m.name == method)
            .unwrap_or_else(|| panic!("view calls mwan.{method}, which mwand does not serve"));
        for p in params {
            assert!(
                spec.args.iter().any(|(name, _)| name == p),
                "mwan.{method} has no argument '{p}' (it takes {:?})",
                spec.args
            );
        }
    }
}

#[test]
fn the_views_write_calls_become_the_intended_requests() {
    // What the view's buttons send, shaped as rpcd passes them on.
    let s = |v: &str| Value::string(v);
    let cases = [
        (
            "restart",
            Table::new().with("interface", s("wan2")),
            Request::Restart {
                interface: "wan2".into(),
            },
        ),
        ("reload", Table::new(), Request::Reload),
        (
            "override",
            Table::new()
                .with("interface", s("wan2"))
                .with("policy", s("balanced")),
            Request::Override {
                interface: "wan2".into(),
                policy: Some("balanced".into()),
                persistent: false,
            },
        ),
        (
            "override",
            Table::new()
                .with("policy", s("balanced"))
                .with("clear", Value::bool(true)),
            Request::ClearOverride {
                policy: Some("balanced".into()),
            },
        ),
    ];
    for (method, args, want) in cases {
        assert_eq!(request(method, &args), Ok(want), "{method}");
    }
}

#[test]
fn acl_grants_reads_to_viewers_and_writes_to_admins_only() {
    let declared: BTreeSet<String> = declarations().into_iter().map(|(_, m, _)| m).collect();
    let read = acl_methods("read");
    let write = acl_methods("write");
    let writes: BTreeSet<String> = WRITES.iter().map(|w| (*w).to_owned()).collect();
    assert_eq!(
        write, writes,
        "the write section holds exactly the three writes"
    );
    assert!(
        read.is_disjoint(&writes),
        "a write granted to readers: {read:?}"
    );
    let granted: BTreeSet<String> = read.union(&write).cloned().collect();
    assert_eq!(granted, declared, "ACL and view name different methods");
}

#[test]
fn menu_entry_opens_the_view_behind_the_acl() {
    let menu = json(MENU);
    let acl = json(ACL);
    let group = acl
        .as_object()
        .and_then(|o| o.keys().next())
        .cloned()
        .unwrap_or_default();
    let entry = &menu["admin/status/mwan"];
    assert_eq!(entry["action"]["type"], "view");
    let path = entry["action"]["path"].as_str().unwrap_or_default();
    assert_eq!(format!("htdocs/luci-static/resources/view/{path}.js"), VIEW);
    assert_eq!(entry["depends"]["acl"], serde_json::json!([group]));
    let view = read(VIEW);
    for module in ["'require view';", "'require rpc';", "'require poll';"] {
        assert!(view.contains(module), "{VIEW} lacks {module}");
    }
    assert!(view.contains("view.extend({") && view.contains("poll.add("));
    assert!(read("Makefile").contains("include ../../luci.mk"));
}
