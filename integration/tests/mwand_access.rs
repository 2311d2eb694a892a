//! mwand's edges as users meet them: `--allow-uid` lets a non-root uid use
//! the control socket and tells a refused one why; a malformed request is
//! answered in words; user hooks of one interface run in the order of its
//! changes even when a hook is slow.
//!
//! Needs root and `cargo build --workspace --bins` first (setpriv from
//! util-linux for the uid switch).

mod mwand_harness;

use mwan_proto::control::Response;
use mwand_harness::*;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

/// mwanctl run as `uid` (and gid), through setpriv.
fn ctl_as(m: &Mwand, uid: u32, args: &[&str]) -> std::process::Output {
    let bin = mwan_testbed::find_binary("mwanctl").expect("mwanctl built");
    let id = uid.to_string();
    Command::new("setpriv")
        .args(["--reuid", &id, "--regid", &id, "--clear-groups"])
        .arg(bin)
        .arg("--run-dir")
        .arg(&m.run_dir)
        .args(args)
        .output()
        .expect("run setpriv (util-linux)")
}

#[test]
fn allowed_uid_steers_and_a_refused_uid_is_told_why() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(1, 7);
    let m = Mwand::start_with(
        &tb,
        "config globals 'globals'\n",
        &["--supervisor", "embedded", "--allow-uid", "65533"],
    );
    let mode = std::fs::metadata(m.run_dir.join("control.sock"))
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666, "uids besides root cannot connect");

    let out = ctl_as(&m, 65533, &["status"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("mwand up"),
        "allowed uid: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = ctl_as(&m, 65534, &["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused uid: {stderr}");
    assert!(
        stderr.contains("uid 65534 is not allowed") && stderr.contains("--allow-uid"),
        "refused uid not told why: {stderr}"
    );
    assert!(m.log_text().contains("uid 65534 is not allowed"));
}

#[test]
fn a_malformed_request_is_answered_in_words() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(1, 8);
    let m = Mwand::start(&tb, "config globals 'globals'\n");
    let mut c =
        std::os::unix::net::UnixStream::connect(m.run_dir.join("control.sock")).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // A frame of the right version naming request variant 99.
    let mut frame = 3u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&mwan_proto::PROTOCOL_VERSION.to_le_bytes());
    frame.push(99);
    c.write_all(&frame).expect("write");
    let mut reply = Vec::new();
    c.read_to_end(&mut reply).expect("read the reply");
    let mut r = mwan_proto::frame::FrameReader::new();
    r.extend(&reply);
    match r.next::<Response>() {
        Ok(Some(Response::Error { message })) => {
            assert!(
                message.starts_with("mwand cannot read this request")
                    && message.contains("invalid value: integer `99`")
                    && !message.contains("OtherString"),
                "{message}"
            );
        }
        other => panic!("got {other:?}"),
    }
}

#[test]
fn hooks_of_one_interface_run_in_the_order_of_its_changes() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 9);
    let dir = std::env::temp_dir().join(format!("mwand-access-hook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let log = dir.join("order.log");
    let hook = dir.join("slow.sh");
    // The first of a pair sleeps: run side by side, the second would log first.
    std::fs::write(
        &hook,
        format!(
            "case \"$ACTION\" in connecting|disconnecting) sleep 1;; esac\n\
             echo \"$ACTION $INTERFACE\" >> {}\n",
            log.display()
        ),
    )
    .expect("hook");
    let hook_arg = hook.display().to_string();
    let m = Mwand::start_with(
        &tb,
        &config(tb.wans(), &ours),
        &["--supervisor", "embedded", "--hook", &hook_arg],
    );
    m.wait(20, "both WANs online", all_online);
    // Hooks of the start are done after their 1 s sleep.
    std::thread::sleep(Duration::from_secs(3));
    let before = std::fs::read_to_string(&log).unwrap_or_default().len();

    tb.cut("wan1").expect("cut");
    m.wait(20, "wan1 offline", |s| state(s, "wan1") == "offline");
    tb.restore("wan1").expect("restore");
    m.wait(20, "wan1 online", |s| state(s, "wan1") == "online");
    std::thread::sleep(Duration::from_secs(3));

    let text = std::fs::read_to_string(&log).expect("hook log");
    let wan1: Vec<&str> = text[before..]
        .lines()
        .filter(|l| l.ends_with(" wan1"))
        .collect();
    std::fs::remove_dir_all(&dir).expect("remove hook dir");
    assert_eq!(
        wan1,
        [
            "disconnecting wan1",
            "disconnected wan1",
            "connecting wan1",
            "connected wan1"
        ],
        "mwand log:\n{}",
        m.log_text()
    );
}
