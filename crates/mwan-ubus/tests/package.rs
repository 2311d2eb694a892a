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

/// `make install` and the package install the same files: both run
/// install.sh, and install.sh installs every file of files/.
#[test]
fn make_install_and_the_package_share_one_file_list() {
    let script = read("install.sh");
    for entry in std::fs::read_dir(package_dir().join("files")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            script.contains(&format!("\"$files/{name}\"")),
            "install.sh does not install files/{name}"
        );
    }
    let package = read("Makefile");
    let install = &package[package
        .find("define Package/mwan/install")
        .expect("Package/mwan/install")..];
    let install = &install[..install.find("endef").expect("endef")];
    assert!(
        install.contains("install.sh"),
        "Package/mwan/install must run install.sh:\n{install}"
    );
    let top = std::fs::read_to_string(package_dir().join("../Makefile")).unwrap();
    assert!(
        top.contains("openwrt-package/install.sh"),
        "make install must run install.sh"
    );
}

#[test]
fn shell_files_pass_shellcheck() {
    // 127: the shell's "not found", which is what a spawn under qemu-user
    // reports for a missing program.
    let found = Command::new("shellcheck")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.code() != Some(127));
    if !found {
        let msg = "shellcheck not installed (apt-get install shellcheck)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("SKIP: {msg}");
        return;
    }
    let dir = package_dir();
    let files = [
        "files/mwan.init",
        "files/mwan.uci-defaults",
        "files/mwan.user",
        "files/luci-mwan3",
        "install.sh",
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

/// A scratch dir with stub `ubus` and `logger` commands that log their
/// arguments; `ubus` exits with $UBUS_RC.
struct ShellRig {
    dir: PathBuf,
}

impl ShellRig {
    fn new(tag: &str) -> ShellRig {
        let dir = std::env::temp_dir().join(format!("mwan-pkg-{tag}-{}", std::process::id()));
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for (name, body) in [
            (
                "ubus",
                "echo \"ubus $*\" >> \"$RIG/log\"; exit \"${UBUS_RC:-0}\"\n",
            ),
            ("logger", "echo \"logger $*\" >> \"$RIG/log\"\n"),
        ] {
            let p = bin.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
            Command::new("chmod").arg("+x").arg(&p).status().unwrap();
        }
        ShellRig { dir }
    }

    fn run(&self, script: &str, ubus_rc: u8) -> (bool, String) {
        let log = self.dir.join("log");
        if log.exists() {
            std::fs::remove_file(&log).unwrap();
        }
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let status = Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("PATH", path)
            .env("RIG", &self.dir)
            .env("UBUS_RC", ubus_rc.to_string())
            .current_dir(package_dir().join("files"))
            .status()
            .unwrap();
        (
            status.success(),
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    }
}

impl Drop for ShellRig {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("cleanup {}: {e}", self.dir.display());
        }
    }
}

#[test]
fn init_script_functions_do_what_procd_needs_even_with_mwand_dead() {
    let rig = ShellRig::new("init");
    // rc.common's procd helpers, stubbed to log their calls.
    let prelude = r#"
        procd_open_instance() { echo "open $*" >> "$RIG/log"; }
        procd_set_param() { echo "param $*" >> "$RIG/log"; }
        procd_close_instance() { echo "close" >> "$RIG/log"; }
        procd_append_param() { echo "append $*" >> "$RIG/log"; }
        procd_add_reload_trigger() { echo "trigger $*" >> "$RIG/log"; }
        start() { echo "start" >> "$RIG/log"; }
        # /lib/functions.sh's UCI readers: the globals come from $GLOBALS_<option>.
        config_load() { echo "config_load $*" >> "$RIG/log"; }
        config_get() { eval "$1=\"\${GLOBALS_$3:-}\""; }
        . ./mwan.init
        UCI_DIR="$RIG"
    "#;
    let (ok, log) = rig.run(&format!("{prelude} start_service && service_triggers"), 0);
    assert!(ok, "{log}");
    let expected = [
        "config_load mwan3",
        "open mwand",
        "param command /usr/sbin/mwand --supervisor procd --ubus-socket /var/run/ubus/ubus.sock",
        "param respawn 3600 5 0",
        "param stdout 1",
        "param stderr 1",
        "param term_timeout 10",
        "close",
        "trigger mwan mwan3",
    ];
    assert_eq!(log.lines().collect::<Vec<_>>(), expected);

    // The dashboard: globals' http and http_token_file become --http and
    // --http-token-file; /etc/config/mwan is read when it exists.
    std::fs::write(rig.dir.join("mwan"), "").unwrap();
    let (ok, log) = rig.run(
        &format!(
            "GLOBALS_http='192.168.1.1:8080' GLOBALS_http_token_file='/etc/mwan/token'; \
             {prelude} start_service"
        ),
        0,
    );
    assert!(ok, "{log}");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "config_load mwan", "{log}");
    assert_eq!(
        lines[2..5],
        [
            "param command /usr/sbin/mwand --supervisor procd --ubus-socket /var/run/ubus/ubus.sock",
            "append command --http 192.168.1.1:8080",
            "append command --http-token-file /etc/mwan/token",
        ],
        "{log}"
    );
    std::fs::remove_file(rig.dir.join("mwan")).unwrap();

    // Stop removes the trackers' service by name, whether or not ubus/mwand answer.
    for rc in [0, 4] {
        let (ok, log) = rig.run(&format!("{prelude} stop_service && service_stopped"), rc);
        assert!(ok, "stop failed with ubus rc {rc}: {log}");
        let delete = "ubus -t 5 call service delete {\"name\":\"mwan-track\"}";
        assert_eq!(log.lines().filter(|l| *l == delete).count(), 2, "{log}");
    }

    // Reload is `ubus call mwan reload`; only if that fails (mwand not running) start.
    let (ok, log) = rig.run(&format!("{prelude} reload_service"), 0);
    assert!(ok);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["ubus -t 10 call mwan reload"]
    );
    let (ok, log) = rig.run(&format!("{prelude} reload_service"), 4);
    assert!(ok);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        ["ubus -t 10 call mwan reload", "start"]
    );
}

#[test]
fn migration_copies_mwan3_once_and_respects_an_edited_config() {
    let rig = ShellRig::new("migrate");
    let root = rig.dir.join("root");
    let etc = root.join("etc/config");
    std::fs::create_dir_all(&etc).unwrap();
    let default_cfg = read("files/mwan.config");
    let mwan3_cfg = "config globals 'globals'\n\toption mmx_mask '0x3F00'\n";
    let script = format!("IPKG_INSTROOT={} sh ./mwan.uci-defaults", root.display());
    let mwan = etc.join("mwan");
    let mwan3 = etc.join("mwan3");

    // luci-app-mwan3's diagnostics helper, there before mwan.
    let libexec = root.join("usr/libexec");
    std::fs::create_dir_all(&libexec).unwrap();
    std::fs::write(libexec.join("luci-mwan3"), "theirs").unwrap();

    // No mwan3 config: the config is left alone.
    std::fs::write(&mwan, &default_cfg).unwrap();
    let (ok, _) = rig.run(&script, 0);
    assert!(ok);
    assert_eq!(std::fs::read_to_string(&mwan).unwrap(), default_cfg);
    // luci-app-mwan3's helper is moved aside and the path leads to ours,
    // once (a second run keeps the link and the saved file).
    for _ in 0..2 {
        assert_eq!(
            std::fs::read_link(libexec.join("luci-mwan3")).unwrap(),
            Path::new("mwan/luci-mwan3")
        );
        assert_eq!(
            std::fs::read_to_string(libexec.join("luci-mwan3.mwan3")).unwrap(),
            "theirs"
        );
        assert!(rig.run(&script, 0).0);
    }

    // Package default + mwan3: migrated, default kept aside.
    std::fs::write(&mwan3, mwan3_cfg).unwrap();
    let (ok, log) = rig.run(&script, 0);
    assert!(ok);
    assert_eq!(std::fs::read_to_string(&mwan).unwrap(), mwan3_cfg);
    assert_eq!(
        std::fs::read_to_string(etc.join("mwan.pkg-default")).unwrap(),
        default_cfg
    );
    assert!(log.contains("migrated"), "{log}");

    // An edited /etc/config/mwan is never overwritten.
    let edited = "config globals 'globals'\n\toption logging '1'\n";
    std::fs::write(&mwan, edited).unwrap();
    let (ok, log) = rig.run(&script, 0);
    assert!(ok);
    assert_eq!(std::fs::read_to_string(&mwan).unwrap(), edited);
    assert!(log.contains("keeping"), "{log}");
}
