//! bench-footprint: what mwan costs a router besides flash for its files
//! (integration/footprint.sh prints those): per tracker memory with 4 WANs
//! and tracker start time, for this build and, side by side in the same
//! run, any other build given with --compare (docs/footprint.md).
//!
//! 1. Executables: the distinct files behind `mwand`, `mwan-track` and
//!    `mwanctl` in each build's directory (one `mwan` and its links, or
//!    one file each in builds before the multi-call binary), and their sum.
//! 2. Memory: 4 WANs, one tracker each probing 4 targets (ICMP, 500 ms),
//!    reporting to a socket as in production; after --settle seconds,
//!    RssAnon (/proc/PID/status) and Pss (/proc/PID/smaps_rollup) of each.
//!    Pss shares the executable's pages among the 4 trackers only (nothing
//!    else of that build runs), as on a router where mwand shares them too.
//! 3. The whole set as on a router: mwand (embedded supervisor, no data
//!    plane) with 4 WANs and its 4 trackers; RssAnon and Pss of mwand and
//!    the sum over all five processes, where Pss now splits the
//!    executable's pages between mwand and the trackers too.
//! 4. Start: spawn to the tracker connecting to its controller socket
//!    (argument parsing, sockets opened, capabilities dropped), median of
//!    --starts runs; and `mwan-track --version` spawn to exit (the loader's
//!    share: mapping and relocating a bigger executable).
//!
//! Usage: bench-footprint [--compare NAME=DIR]... [--settle SECS] [--starts N]
//! Needs root and `make release` (and, for a comparison, that build's dir).

use mwan_integration::{icmp_tracker_args, proc_kb, testbed_with_tracker_marks};
use mwan_testbed::{find_binary, require_netns, Role, Testbed};
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

struct Options {
    /// (name, directory holding mwand, mwan-track, mwanctl).
    builds: Vec<(String, PathBuf)>,
    settle_s: u64,
    starts: usize,
}

fn parse_options() -> Result<Options, String> {
    let this = find_binary("mwan-track")
        .map_err(|e| e.to_string())?
        .parent()
        .map(Path::to_path_buf)
        .ok_or("mwan-track has no directory")?;
    let mut o = Options {
        builds: vec![("this build".to_string(), this)],
        settle_s: 10,
        starts: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--compare" => {
                let v = it.next().ok_or("--compare needs NAME=DIR")?;
                let (name, dir) = v.split_once('=').ok_or("--compare needs NAME=DIR")?;
                o.builds.push((name.to_string(), PathBuf::from(dir)));
            }
            "--settle" | "--starts" => {
                let n: u64 = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or(format!("{a}: expected a whole number"))?;
                if a == "--settle" {
                    o.settle_s = n;
                } else {
                    o.starts = n.max(1) as usize;
                }
            }
            other => {
                return Err(format!(
                    "unknown option '{other}' (expected --compare, --settle, --starts)"
                ))
            }
        }
    }
    Ok(o)
}

/// The distinct executables behind the programs in `dir`, with sizes.
fn executables(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut files: Vec<(PathBuf, u64)> = Vec::new();
    for name in ["mwand", "mwan-track", "mwanctl"] {
        let Ok(real) = dir.join(name).canonicalize() else {
            continue;
        };
        if files.iter().all(|(p, _)| *p != real) {
            let size = std::fs::metadata(&real).map(|m| m.len()).unwrap_or(0);
            files.push((real, size));
        }
    }
    files
}

/// (RssAnon kB, Pss kB) of `pid`.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    Some((proc_kb(&status, "RssAnon:")?, proc_kb(&rollup, "Pss:")?))
}

/// A controller socket that accepts one tracker and drains what it sends.
struct Controller {
    path: PathBuf,
    listener: UnixListener,
}

impl Controller {
    fn bind(tb: &Testbed, tag: &str) -> Controller {
        let path = tb
            .run_dir()
            .join(format!("bench-footprint-{}-{tag}.sock", std::process::id()));
        let listener = UnixListener::bind(&path).expect("bind controller socket");
        Controller { path, listener }
    }

    /// Waits for the tracker, then drains it on a thread of its own.
    fn accept_and_drain(&self) {
        let (mut s, _) = self.listener.accept().expect("tracker connects");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        });
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            eprintln!("bench-footprint: remove {}: {e}", self.path.display());
        }
    }
}

fn spawn_tracker(tb: &Testbed, bin: &Path, args: &[String]) -> Child {
    let mut argv = vec![bin.to_str().expect("utf-8 path")];
    argv.extend(args.iter().map(String::as_str));
    tb.command(Role::Router, &argv)
        .expect("command")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mwan-track")
}

fn stop(mut child: Child) {
    // SAFETY: kill with a positive pid only signals that process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    if let Err(e) = child.wait() {
        eprintln!("bench-footprint: wait for tracker: {e}");
    }
}

/// Tracker arguments for WAN `i` (1-based): gateway plus 3 ICMP targets.
fn tracker_args(tb: &Testbed, i: usize, marks: &[String], sock: &Path) -> Vec<String> {
    let w = tb.wans()[i - 1].clone();
    let targets: Vec<String> = std::iter::once(w.gateway_v4.to_string())
        .chain(tb.targets().icmp_v4.iter().take(3).map(|a| a.to_string()))
        .collect();
    let mut args = icmp_tracker_args(
        &w,
        Some(&marks[i - 1]),
        &targets.iter().map(String::as_str).collect::<Vec<_>>(),
        "500ms",
        "1s",
    );
    args.extend([
        "--controller".to_string(),
        sock.to_str().expect("utf-8").to_string(),
    ]);
    args
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

struct Figures {
    rss_anon_kb: Vec<u64>,
    pss_kb: Vec<u64>,
    connect_ms: f64,
    version_ms: f64,
}

fn measure(tb: &Testbed, o: &Options, marks: &[String], bin: &Path) -> Figures {
    let mut trackers = Vec::new();
    let mut controllers = Vec::new();
    for i in 1..=4 {
        let c = Controller::bind(tb, &format!("wan{i}"));
        trackers.push(spawn_tracker(tb, bin, &tracker_args(tb, i, marks, &c.path)));
        c.accept_and_drain();
        controllers.push(c);
    }
    std::thread::sleep(Duration::from_secs(o.settle_s));
    let (mut rss_anon_kb, mut pss_kb) = (Vec::new(), Vec::new());
    for t in &trackers {
        let (a, p) = memory(t.id()).expect("tracker alive: /proc figures");
        rss_anon_kb.push(a);
        pss_kb.push(p);
    }
    trackers.into_iter().for_each(stop);
    drop(controllers);
    let mut connects = Vec::new();
    for run in 0..o.starts {
        let c = Controller::bind(tb, &format!("start{run}"));
        let args = tracker_args(tb, 1, marks, &c.path);
        let t0 = Instant::now();
        let child = spawn_tracker(tb, bin, &args);
        c.accept_and_drain();
        connects.push(t0.elapsed());
        stop(child);
    }
    let mut versions = Vec::new();
    for _ in 0..o.starts {
        let t0 = Instant::now();
        let out = Command::new(bin)
            .arg("--version")
            .output()
            .expect("mwan-track --version");
        versions.push(t0.elapsed());
        assert!(out.status.success(), "{} --version failed", bin.display());
    }
    Figures {
        rss_anon_kb,
        pss_kb,
        connect_ms: median_ms(connects),
        version_ms: median_ms(versions),
    }
}

/// A 4-WAN config with every WAN tracked, as in docs/configuration.md.
fn four_wan_config(tb: &Testbed) -> String {
    let mut c = String::from("config globals 'globals'\n\toption mmx_mask '0x3F00'\n\n");
    for w in tb.wans() {
        c += &format!(
            "config interface '{}'\n\toption enabled '1'\n\toption device '{}'\n\
             \tlist track_ip '{}'\n\tlist track_ip '203.0.113.1'\n\tlist track_ip '203.0.113.2'\n\
             \tlist track_ip '203.0.113.3'\n\toption interval '1'\n\toption timeout '1'\n\n",
            w.name, w.device, w.gateway_v4
        );
    }
    c
}

/// The pids whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|st| {
                    st.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse()
                        .ok()
                })
                == Some(parent)
        })
        .collect()
}

/// (mwand RssAnon, mwand Pss, trackers, sum of Pss of all) in kB.
fn whole_set(tb: &Testbed, o: &Options, dir: &Path, tag: &str) -> Option<(u64, u64, usize, u64)> {
    let work = tb
        .run_dir()
        .join(format!("bench-footprint-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work dir");
    let config = work.join("mwan");
    std::fs::write(&config, four_wan_config(tb)).expect("write config");
    let argv: Vec<String> = vec![
        dir.join("mwand").display().to_string(),
        "--config".into(),
        config.display().to_string(),
        "--run-dir".into(),
        work.join("run").display().to_string(),
        "--supervisor".into(),
        "embedded".into(),
        "--tracker-bin".into(),
        dir.join("mwan-track").display().to_string(),
        "--no-dataplane".into(),
        "--hook".into(),
        "/nonexistent".into(),
        "-q".into(),
    ];
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mwand = tb
        .command(Role::Router, &argv)
        .expect("command")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mwand");
    std::thread::sleep(Duration::from_secs(o.settle_s));
    let trackers = children(mwand.id());
    let figures = memory(mwand.id()).map(|(anon, pss)| {
        let trackers_pss: u64 = trackers
            .iter()
            .filter_map(|&p| memory(p))
            .map(|(_, p)| p)
            .sum();
        (anon, pss, trackers.len(), pss + trackers_pss)
    });
    stop(mwand);
    if let Err(e) = std::fs::remove_dir_all(&work) {
        eprintln!("bench-footprint: remove {}: {e}", work.display());
    }
    figures
}

fn main() -> ExitCode {
    let o = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench-footprint: {e}");
            return ExitCode::from(2);
        }
    };
    println!("== executables (stripped release builds)");
    for (name, dir) in &o.builds {
        let files = executables(dir);
        let total: u64 = files.iter().map(|(_, s)| s).sum();
        let list: Vec<String> = files
            .iter()
            .map(|(p, s)| {
                format!(
                    "{} {s}",
                    p.file_name().unwrap_or_default().to_string_lossy()
                )
            })
            .collect();
        println!(
            "   {name:<12} {total:>9} bytes ({} KiB): {}",
            total / 1024,
            list.join(", ")
        );
    }
    if !require_netns() {
        return ExitCode::SUCCESS;
    }
    let (tb, marks) = testbed_with_tracker_marks(4);
    println!(
        "== per tracker, 4 WANs x 4 ICMP targets every 500 ms, after {} s; start: median of {} runs",
        o.settle_s, o.starts
    );
    println!(
        "   {:<12} {:>17} {:>17} {:>14} {:>14}",
        "build", "RssAnon kB (max)", "Pss kB (max)", "connect ms", "--version ms"
    );
    for (name, dir) in &o.builds {
        let f = measure(&tb, &o, &marks, &dir.join("mwan-track"));
        let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len() as f64;
        let max = |v: &[u64]| v.iter().copied().max().unwrap_or(0);
        println!(
            "   {name:<12} {:>11.0} ({:>3}) {:>11.0} ({:>3}) {:>14.2} {:>14.2}",
            mean(&f.rss_anon_kb),
            max(&f.rss_anon_kb),
            mean(&f.pss_kb),
            max(&f.pss_kb),
            f.connect_ms,
            f.version_ms
        );
    }
    println!(
        "== the whole set: mwand (4 WANs, embedded supervisor, --no-dataplane) and its trackers, after {} s",
        o.settle_s
    );
    println!(
        "   {:<12} {:>16} {:>12} {:>9} {:>22}",
        "build", "mwand RssAnon kB", "mwand Pss kB", "trackers", "Pss kB, all processes"
    );
    for (i, (name, dir)) in o.builds.iter().enumerate() {
        match whole_set(&tb, &o, dir, &i.to_string()) {
            Some((anon, pss, n, total)) => {
                println!("   {name:<12} {anon:>16} {pss:>12} {n:>9} {total:>22}")
            }
            None => println!("   {name:<12} mwand exited early (config or permissions?)"),
        }
    }
    ExitCode::SUCCESS
}
