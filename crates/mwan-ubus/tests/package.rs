//! The OpenWrt package's files: the default config loads with mwan's own
//! parser and uses the recommended fast tracking, the shell passes
//! shellcheck, the ACL is valid, the init script keeps the contracts.

use std::path::{Path, PathBuf};
use std::process::Command;

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openwrt-package")
}

fn read(rel: &str) -> String {
    let p = package_dir().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn default_config_loads_with_two_wans_balanced_and_failover() {
    let loaded = mwan_core::config::parse("/etc/config/mwan", &read("files/mwan.config"))
        .unwrap_or_else(|r| panic!("default config rejected:\n{r}"));
    assert!(
        loaded.warnings.is_empty(),
        "warnings: {:?}",
        loaded.warnings
    );
    let c = loaded.config;
    let names: Vec<&str> = c.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["wan", "wanb"]);
    let policies: Vec<&str> = c.policies.iter().map(|p| p.name.as_str()).collect();
    assert!(
        policies.contains(&"balanced") && policies.contains(&"failover"),
        "{policies:?}"
    );
    let rec = mwan_core::health::RECOMMENDED_TRACKING;
    for i in &c.interfaces {
        assert_eq!(i.interval, rec.interval_ms, "{}: interval", i.name);
        assert_eq!(i.failure_interval, rec.failure_interval_ms, "{}", i.name);
        assert_eq!(i.recovery_interval, rec.recovery_interval_ms, "{}", i.name);
        assert_eq!(i.timeout, rec.timeout_ms, "{}", i.name);
        assert_eq!((i.down, i.up), (rec.down, rec.up), "{}", i.name);
        assert_eq!(
            (i.reliability, i.count),
            (rec.reliability, rec.count),
            "{}",
            i.name
        );
        assert_eq!(i.track_ip.len(), rec.targets as usize, "{}", i.name);
    }
    // The migration script recognises the package default by its marker.
    assert!(read("files/mwan.config").starts_with("# mwan-default-config"));
    assert!(read("files/mwan.uci-defaults").contains("MARKER='# mwan-default-config'"));
}

#[test]
fn shell_files_pass_shellcheck() {
    let found = Command::new("shellcheck").arg("--version").output().is_ok();
    if !found {
        let msg = "shellcheck not installed (apt-get install shellcheck)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("SKIP: {msg}");
        return;
    }
    let dir = package_dir().join("files");
    let files = [
        "mwan.init",
        "mwan.uci-defaults",
        "mwan.user",
        "mwan3.compat",
    ];
    let out = Command::new("shellcheck")
        .args(["-s", "sh", "-S", "style"])
        .args(files.iter().map(|f| dir.join(f)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn init_script_keeps_the_contracts() {
    let init = read("files/mwan.init");
    assert!(init.contains("USE_PROCD=1"));
    assert!(
        init.contains("--ubus-socket \"$UBUS_SOCKET\"") && init.contains("/var/run/ubus/ubus.sock")
    );
    assert!(init.contains("procd_add_reload_trigger mwan mwan3"));
    // reload is ubus call mwan reload, never a restart.
    let reload = &init[init.find("reload_service()").unwrap()..];
    let reload: String = reload[..reload.find("\n}").unwrap()]
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(reload.contains("ubus -t 10 call mwan reload"), "{reload}");
    assert!(
        !reload.contains("restart") && !reload.contains("stop"),
        "{reload}"
    );
    // stop removes the trackers' service by name, without needing mwand.
    assert!(init.contains(&format!(
        "TRACKER_SERVICE={}",
        mwan_ubus::procd::TRACKER_SERVICE
    )));
    assert!(init.contains("call service delete"));
    let makefile = read("Makefile");
    assert!(makefile.contains("CONFLICTS:=mwan3"));
    assert!(makefile.contains("rust-package.mk"));
    for f in ["/etc/config/mwan", "/etc/mwan.user"] {
        assert!(makefile.contains(&format!("\n{f}\n")), "conffiles lack {f}");
    }
}

#[test]
fn rpcd_acl_grants_luci_read_and_the_three_writes() {
    let acl: serde_json::Value = serde_json::from_str(&read("files/mwan.acl.json")).unwrap();
    let entry = &acl["luci-app-mwan"];
    let read_methods = entry["read"]["ubus"]["mwan"].as_array().unwrap();
    for m in ["status", "interfaces", "policies"] {
        assert!(read_methods.iter().any(|v| v == m), "read lacks {m}");
    }
    assert_eq!(
        entry["read"]["ubus"]["mwan3"],
        serde_json::json!(["status"])
    );
    assert_eq!(
        entry["write"]["ubus"]["mwan"],
        serde_json::json!(["reload", "restart", "override"])
    );
    // Every granted mwan method exists on the object.
    let methods: Vec<String> = mwan_ubus::mwan_object::methods()
        .into_iter()
        .map(|m| m.name)
        .collect();
    for m in read_methods
        .iter()
        .chain(entry["write"]["ubus"]["mwan"].as_array().unwrap())
    {
        assert!(
            methods.iter().any(|n| n == m.as_str().unwrap()),
            "{m} is not a method of mwan"
        );
    }
}
