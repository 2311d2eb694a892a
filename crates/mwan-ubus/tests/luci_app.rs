//! luci-app-mwan without LuCI: the view's `rpc.declare` calls, the rpcd
//! ACL and the menu entry agree with each other and with what mwand's
//! `mwan` ubus object serves (docs/openwrt.md says what remains to check
//! on a router).

use mwan_proto::control::Request;
use mwan_ubus::blobmsg::{Table, Value};
use mwan_ubus::message::status;
use mwan_ubus::mwan_object::{self, methods, request, MWAN_OBJECT};
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
    assert!(
        read.contains("history"),
        "the hour graph reads history: {read:?}"
    );
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

/// node, or None with a reason (a failure under CI=true, where `make deps`
/// installed it).
fn node() -> Option<&'static str> {
    if Path::new("/usr/bin/node").exists() {
        return Some("/usr/bin/node");
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but /usr/bin/node is missing (make deps)"
    );
    eprintln!("SKIPPED (not CI): the view's graph test needs /usr/bin/node");
    None
}

/// The view's script under node, with LuCI's globals stubbed only as far as
/// loading it needs (`view.extend` hands back the view): prints what the
/// view's own addHistory, graphData and graphSvg make of the history
/// replies on stdin.
const GRAPH_CHECK: &str = r#"
const fs = require('fs');
const [view, replies] = [process.argv[1], JSON.parse(fs.readFileSync(0, 'utf8'))];
const stubs = {
    view: { extend: (o) => o },
    rpc: { declare: () => () => Promise.resolve({}) },
    poll: { add() {} }, ui: {}, E: () => null, _: (s) => s, L: {},
};
const v = new Function(...Object.keys(stubs), fs.readFileSync(view, 'utf8'))(...Object.values(stubs));
const h = { since: 0, next: 0, states: [], series: {} };
const cursors = replies.map((r) => v.addHistory(h, r).since);
const wans = {};
for (const name of Object.keys(h.series)) {
    const d = v.graphData(h.series[name], h.next, h.states);
    wans[name] = { d, svg: v.graphSvg(d) };
}
console.log(JSON.stringify({ cursors, wans }));
"#;

/// The hour graph: built by the view's own code from history replies as
/// they come through ubus (the whole hour, then an increment from
/// `since`): latency in ten-second buckets, loss 100 % and no latency while
/// offline, a mark where the state changed; the SVG is saved and, when
/// chromium is there, photographed under target/screenshots/.
#[test]
fn the_views_hour_graph_follows_history_replies() {
    use mwan_core::health::LinkState;
    use mwan_core::history::{History, Sample};
    use mwan_proto::control::Response;
    let Some(node) = node() else { return };

    let mut history = History::new();
    history.set_interfaces(&["wan1", "wan2"]);
    let sample = |state, latency: Option<f64>, loss| Sample {
        state,
        latency_ms: latency,
        jitter_ms: latency.map(|l| l / 10.0),
        loss_pct: Some(loss),
        score: latency,
    };
    let online = |ms| sample(LinkState::Online, Some(ms), 0.0);
    // 10,000 s after boot: wan1 online at 20 ms, offline from 10,600 s to
    // 10,720 s, online again; wan2 online at 40 ms all along.
    let (cut, back, end) = (10_600u64, 10_720u64, 10_900u64);
    let mut replies = Vec::new();
    let mut since = 0;
    for t in 10_000..=end {
        let wan1 = if (cut..back).contains(&t) {
            sample(LinkState::Offline, None, 100.0)
        } else {
            online(20.0)
        };
        history.record("wan1", t * 1000, &wan1);
        history.record("wan2", t * 1000, &online(40.0));
        if t == 10_650 || t == end {
            let (code, body) = mwan_object::reply(&Response::History {
                json: history.json_since(since),
            });
            assert_eq!(code, status::OK);
            let reply = body.to_json();
            since = reply["next"].as_u64().expect("next");
            replies.push(reply);
        }
    }
    let out = std::process::Command::new(node)
        .args([
            "-e",
            GRAPH_CHECK,
            app_dir().join(VIEW).to_str().expect("path"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            let json = serde_json::to_vec(&replies).expect("json");
            child.stdin.take().expect("stdin").write_all(&json)?;
            child.wait_with_output()
        })
        .expect("run node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "node: {stderr}");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("node's JSON");

    assert_eq!(got["cursors"], serde_json::json!([10_650, end]), "{got}");
    // Buckets of ten seconds ending at `end`: bucket b holds the seconds
    // from end - 3599 + 10 b.
    let bucket = |t: u64| ((t - (end - 3599)) / 10) as usize;
    let wan1 = &got["wans"]["wan1"]["d"];
    let at = |key: &str, b: usize| wan1[key][b].as_f64();
    assert_eq!(at("latency", bucket(10_300)), Some(20.0), "{wan1}");
    assert_eq!(at("loss", bucket(10_300)), Some(0.0), "{wan1}");
    assert_eq!(at("latency", bucket(10_650)), None, "offline: {wan1}");
    assert_eq!(at("loss", bucket(10_650)), Some(100.0), "{wan1}");
    assert_eq!(
        at("latency", bucket(9_000)),
        None,
        "before the history: {wan1}"
    );
    assert_eq!(
        wan1["marks"],
        serde_json::json!([[bucket(cut), "offline"], [bucket(back), "online"]]),
        "one mark each way, the first in the increment's seconds' bucket"
    );
    let wan2 = &got["wans"]["wan2"]["d"];
    assert_eq!(wan2["marks"], serde_json::json!([]));
    assert_eq!(wan2["max"].as_f64(), Some(40.0));
    let svg = got["wans"]["wan1"]["svg"].as_str().expect("svg");
    assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"), "{svg}");
    assert!(svg.contains("data-state=\"offline\""), "{svg}");

    // Kept for people to look at (and photographed when chromium is here).
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&shots).expect("screenshots dir");
    let page = shots.join("luci-graph.html");
    let rows: String = ["wan1", "wan2"]
        .iter()
        .map(|n| {
            format!(
                "<tr><th>{n}</th><td style=\"width:600px\">{}</td></tr>",
                got["wans"][n]["svg"].as_str().unwrap_or_default()
            )
        })
        .collect();
    std::fs::write(&page, format!("<!doctype html><table>{rows}</table>")).expect("write page");
    if Path::new("/usr/bin/chromium").exists() {
        let png = shots.join("luci-graph.png");
        let shot = std::process::Command::new("/usr/bin/chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=720,140",
                &format!("--screenshot={}", png.display()),
                &format!("file://{}", page.display()),
            ])
            .output()
            .expect("run chromium");
        assert!(
            shot.status.success() && png.metadata().is_ok_and(|m| m.len() > 0),
            "chromium: {}",
            String::from_utf8_lossy(&shot.stderr)
        );
    }
}
