//! Builds and tears down a testbed: namespaces, veths, addresses, routes,
//! nft tables, sysctls, the per-ISP impairment hops and the internet servers.

use crate::netns::{self, CommandError};
use crate::plan::{self, Plan, NS_PREFIX};
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where run directories live (state file, control sockets, logs).
pub const RUN_ROOT: &str = "/run/mwan-testbed";

/// What `up` recorded, read back by later CLI commands.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub plan: Plan,
    pub run_dir: PathBuf,
    pub seed: u64,
    /// Pid of each WAN's hop, in WAN order.
    pub hop_pids: Vec<u32>,
    pub server_pid: u32,
}

impl State {
    pub fn hop_socket(&self, wan: &str) -> PathBuf {
        hop_socket(&self.run_dir, wan)
    }
}

pub fn run_dir(name: &str) -> PathBuf {
    Path::new(RUN_ROOT).join(name)
}

pub fn hop_socket(run_dir: &Path, wan: &str) -> PathBuf {
    run_dir.join(format!("hop-{wan}.sock"))
}

pub fn state_path(run_dir: &Path) -> PathBuf {
    run_dir.join("state.json")
}

/// Reads the state `up` recorded for testbed `name`.
pub fn load_state(name: &str) -> Result<State, CommandError> {
    let path = state_path(&run_dir(name));
    let text = fs::read_to_string(&path).map_err(|e| CommandError {
        what: format!("read {}", path.display()),
        detail: format!("{e} (is testbed '{name}' up? start it with `mwan-testbed up`)"),
    })?;
    serde_json::from_str(&text).map_err(|e| CommandError {
        what: format!("parse {}", path.display()),
        detail: e.to_string(),
    })
}

/// A testbed that is up, plus the processes it started (children of this
/// process, so the harness can reap them).
pub struct Built {
    pub state: State,
    pub children: Vec<Child>,
}

fn setup_error(what: impl Into<String>, detail: impl std::fmt::Display) -> CommandError {
    CommandError {
        what: what.into(),
        detail: detail.to_string(),
    }
}

/// Brings up testbed `plan`; on failure removes whatever was created.
pub fn build(plan: Plan, exe: &Path, seed: u64) -> Result<Built, CommandError> {
    let dir = run_dir(&plan.name);
    if dir.exists() || namespaces_of(&plan.name).next().is_some() {
        return Err(setup_error(
            format!("up testbed '{}'", plan.name),
            "it already exists (run `mwan-testbed down` for it first)",
        ));
    }
    let mut children = Vec::new();
    match build_inner(&plan, exe, seed, &dir, &mut children) {
        Ok(state) => Ok(Built { state, children }),
        Err(e) => {
            teardown(&plan.name, &mut children);
            Err(e)
        }
    }
}

fn all_namespaces(plan: &Plan) -> Vec<String> {
    let mut v = vec![
        plan.router_ns.clone(),
        plan.lan_ns.clone(),
        plan.internet_ns.clone(),
    ];
    v.extend(plan.wans.iter().map(|w| w.isp_ns.clone()));
    v
}

fn build_inner(
    plan: &Plan,
    exe: &Path,
    seed: u64,
    dir: &Path,
    children: &mut Vec<Child>,
) -> Result<State, CommandError> {
    fs::create_dir_all(dir).map_err(|e| setup_error(format!("create {}", dir.display()), e))?;
    let namespaces = all_namespaces(plan);
    for ns in &namespaces {
        netns::run("ip", &["netns", "add", ns], None)?;
        // New devices take these defaults: no DAD delay, ICMP sockets usable.
        netns::sysctls(
            ns,
            vec![
                kv("net/ipv6/conf/all/accept_dad", "0"),
                kv("net/ipv6/conf/default/accept_dad", "0"),
                kv("net/ipv4/ping_group_range", "0 2147483647"),
            ],
        )?;
    }
    create_links(plan)?;
    configure_sysctls(plan)?;
    address_and_route(plan)?;
    for w in &plan.wans {
        netns::disable_tx_offload(&plan.router_ns, vec![w.device.clone()])?;
        netns::disable_tx_offload(&w.isp_ns, vec![plan::ISP_GATEWAY_DEV.to_string()])?;
    }
    load_firewalls(plan)?;

    let server = spawn_daemon(
        &plan.internet_ns,
        exe,
        &[
            "serve",
            "--ready",
            &dir.join("serve.ready").to_string_lossy(),
        ],
        &dir.join("serve.log"),
    )?;
    let server_pid = server.id();
    children.push(server);
    let mut hop_pids = Vec::new();
    for w in &plan.wans {
        let sock = hop_socket(dir, &w.name);
        let hop = spawn_daemon(
            &w.isp_ns,
            exe,
            &[
                "hop",
                "--socket",
                &sock.to_string_lossy(),
                "--seed",
                &(seed ^ (w.index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_string(),
                "--customer",
                plan::ISP_CUSTOMER_DEV,
                "--provider",
                plan::ISP_HOP_DEV,
            ],
            &dir.join(format!("hop-{}.log", w.name)),
        )?;
        hop_pids.push(hop.id());
        children.push(hop);
    }
    wait_for_path(&dir.join("serve.ready"), children)?;
    for w in &plan.wans {
        wait_for_path(&hop_socket(dir, &w.name), children)?;
    }
    let state = State {
        plan: plan.clone(),
        run_dir: dir.to_path_buf(),
        seed,
        hop_pids,
        server_pid,
    };
    let text = serde_json::to_string_pretty(&state).map_err(|e| setup_error("encode state", e))?;
    let path = state_path(dir);
    fs::write(&path, text).map_err(|e| setup_error(format!("write {}", path.display()), e))?;
    Ok(state)
}

fn kv(key: &str, value: &str) -> (String, String) {
    (key.to_string(), value.to_string())
}

/// Creates every veth pair and dummy device (no addresses yet). Pairs are
/// created inside one namespace with the peer placed straight into the
/// other, so nothing ever appears in the host namespace.
fn create_links(plan: &Plan) -> Result<(), CommandError> {
    let mut router = vec![format!(
        "link add {} type veth peer name {} netns {}",
        plan.lan.router_device, plan.lan.client_device, plan.lan_ns
    )];
    for w in &plan.wans {
        router.push(format!(
            "link add {} type veth peer name {} netns {}",
            w.device,
            plan::ISP_CUSTOMER_DEV,
            w.isp_ns
        ));
        netns::ip_batch(
            &w.isp_ns,
            &[
                format!(
                    "link add {} type veth peer name {}",
                    plan::ISP_HOP_DEV,
                    plan::ISP_GATEWAY_DEV
                ),
                format!(
                    "link add {} type veth peer name isp{} netns {}",
                    plan::ISP_UPSTREAM_DEV,
                    w.index,
                    plan.internet_ns
                ),
            ],
        )?;
    }
    netns::ip_batch(&plan.router_ns, &router)
}

fn configure_sysctls(plan: &Plan) -> Result<(), CommandError> {
    // Like OpenWrt: forwarding on, strict reverse-path filter set explicitly
    // everywhere (a new namespace would otherwise inherit the host's).
    let mut router = vec![
        kv("net/ipv4/ip_forward", "1"),
        kv("net/ipv6/conf/all/forwarding", "1"),
    ];
    let mut ifaces = vec!["all", "default", "lo", plan.lan.router_device.as_str()];
    ifaces.extend(plan.wans.iter().map(|w| w.device.as_str()));
    for i in ifaces {
        router.push(kv(&format!("net/ipv4/conf/{i}/rp_filter"), "1"));
    }
    netns::sysctls(&plan.router_ns, router)?;
    for w in &plan.wans {
        let mut isp = vec![
            kv("net/ipv4/ip_forward", "1"),
            kv("net/ipv6/conf/all/forwarding", "1"),
            kv("net/ipv4/conf/all/rp_filter", "0"),
            kv("net/ipv4/conf/default/rp_filter", "0"),
        ];
        // The hop's two ports carry frames for the hop only, never for the
        // ISP's own stack.
        for dev in [plan::ISP_CUSTOMER_DEV, plan::ISP_HOP_DEV] {
            isp.push(kv(&format!("net/ipv6/conf/{dev}/disable_ipv6"), "1"));
            isp.push(kv(&format!("net/ipv4/conf/{dev}/rp_filter"), "0"));
        }
        netns::sysctls(&w.isp_ns, isp)?;
    }
    netns::sysctls(
        &plan.internet_ns,
        vec![
            kv("net/ipv4/conf/all/rp_filter", "0"),
            kv("net/ipv4/conf/default/rp_filter", "0"),
        ],
    )
}

fn address_and_route(plan: &Plan) -> Result<(), CommandError> {
    let lan = &plan.lan;
    // Internet: target hosts on loopback (this kernel has no dummy), one transit link per ISP,
    // and a route back to each WAN subnet (not to the LAN: un-NATed traffic
    // has no way home).
    let mut inet = vec!["link set lo up".to_string()];
    for addr in plan::internet_host_addrs() {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        inet.push(format!(
            "addr add {addr}/{len} dev {}{}",
            plan::INTERNET_HOSTS_DEV,
            if addr.is_ipv4() { "" } else { " nodad" }
        ));
    }
    for w in &plan.wans {
        let (inet4, isp4) = plan::transit_v4(w.index);
        let (inet6, isp6) = plan::transit_v6(w.index);
        let dev = format!("isp{}", w.index);
        inet.extend([
            format!("addr add {inet4}/30 dev {dev}"),
            format!("addr add {inet6}/64 dev {dev} nodad"),
            format!("link set {dev} up"),
            format!("route add {} via {isp4} dev {dev}", w.subnet_v4()),
            format!("route add {} via {isp6} dev {dev}", w.subnet_v6()),
        ]);
        netns::ip_batch(
            &w.isp_ns,
            &[
                "link set lo up".to_string(),
                format!("link set {} arp off", plan::ISP_CUSTOMER_DEV),
                format!("link set {} arp off", plan::ISP_HOP_DEV),
                format!(
                    "addr add {}/{} dev {}",
                    w.gateway_v4,
                    w.v4_prefix,
                    plan::ISP_GATEWAY_DEV
                ),
                format!(
                    "addr add {}/{} dev {} nodad",
                    w.gateway_v6,
                    w.v6_prefix,
                    plan::ISP_GATEWAY_DEV
                ),
                format!("addr add {isp4}/30 dev {}", plan::ISP_UPSTREAM_DEV),
                format!("addr add {isp6}/64 dev {} nodad", plan::ISP_UPSTREAM_DEV),
                format!("link set {} up", plan::ISP_CUSTOMER_DEV),
                format!("link set {} up", plan::ISP_HOP_DEV),
                format!("link set {} up", plan::ISP_GATEWAY_DEV),
                format!("link set {} up", plan::ISP_UPSTREAM_DEV),
                format!("route add default via {inet4}"),
                format!("route add ::/0 via {inet6}"),
            ],
        )?;
    }
    netns::ip_batch(&plan.internet_ns, &inet)?;

    netns::ip_batch(
        &plan.lan_ns,
        &[
            "link set lo up".to_string(),
            format!(
                "addr add {}/{} dev {}",
                lan.client_v4, lan.v4_prefix, lan.client_device
            ),
            format!(
                "addr add {}/{} dev {} nodad",
                lan.client_v6, lan.v6_prefix, lan.client_device
            ),
            format!("link set {} up", lan.client_device),
            format!("route add default via {}", lan.router_v4),
            format!("route add ::/0 via {}", lan.router_v6),
        ],
    )?;

    // Router: like netifd, one main-table default route per WAN with
    // increasing metric, for IPv4 and IPv6.
    let mut router = vec![
        "link set lo up".to_string(),
        format!(
            "addr add {}/{} dev {}",
            lan.router_v4, lan.v4_prefix, lan.router_device
        ),
        format!(
            "addr add {}/{} dev {} nodad",
            lan.router_v6, lan.v6_prefix, lan.router_device
        ),
        format!("link set {} up", lan.router_device),
    ];
    for w in &plan.wans {
        router.extend([
            format!("addr add {}/{} dev {}", w.router_v4, w.v4_prefix, w.device),
            format!(
                "addr add {}/{} dev {} nodad",
                w.router_v6, w.v6_prefix, w.device
            ),
            format!("link set {} up", w.device),
            format!(
                "route add default via {} dev {} metric {}",
                w.gateway_v4, w.device, w.metric
            ),
            format!(
                "route add ::/0 via {} dev {} metric {}",
                w.gateway_v6, w.device, w.metric
            ),
        ]);
    }
    netns::ip_batch(&plan.router_ns, &router)
}

/// Name of the ISP's nft counter of dropped packets with a foreign source.
pub const SPOOF_COUNTER: &str = "spoofed";
/// The router's firewall table (like OpenWrt fw4).
pub const ROUTER_TABLE: &str = "fw4";

fn load_firewalls(plan: &Plan) -> Result<(), CommandError> {
    let wan_devs: Vec<String> = plan
        .wans
        .iter()
        .map(|w| format!("\"{}\"", w.device))
        .collect();
    let wan_set = wan_devs.join(", ");
    let router = format!(
        "table inet {ROUTER_TABLE} {{\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy drop;\n\
         \t\tct state established,related accept\n\
         \t\tiifname \"{lan}\" oifname {{ {wan_set} }} accept\n\
         \t}}\n\
         \tchain srcnat {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\toifname {{ {wan_set} }} masquerade\n\
         \t}}\n\
         }}\n",
        lan = plan.lan.router_device,
    );
    netns::nft_load(&plan.router_ns, &router)?;
    for w in &plan.wans {
        let isp = format!(
            "table inet isp {{\n\
             \tcounter {SPOOF_COUNTER} {{ }}\n\
             \tchain forward {{\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t\tiifname \"{gw}\" meta nfproto ipv4 ip saddr != {r4} counter name \"{SPOOF_COUNTER}\" drop\n\
             \t\tiifname \"{gw}\" meta nfproto ipv6 ip6 saddr != {r6} counter name \"{SPOOF_COUNTER}\" drop\n\
             \t}}\n\
             }}\n\
             table netdev hop {{\n\
             \tchain customer {{ type filter hook ingress device \"{cust}\" priority 0; policy drop; }}\n\
             \tchain provider {{ type filter hook ingress device \"{hop}\" priority 0; policy drop; }}\n\
             }}\n",
            gw = plan::ISP_GATEWAY_DEV,
            r4 = w.router_v4,
            r6 = w.router_v6,
            cust = plan::ISP_CUSTOMER_DEV,
            hop = plan::ISP_HOP_DEV,
        );
        netns::nft_load(&w.isp_ns, &isp)?;
    }
    Ok(())
}

/// Starts `exe args...` inside `ns`, detached into its own process group,
/// output appended to `log`.
pub fn spawn_daemon(
    ns: &str,
    exe: &Path,
    args: &[&str],
    log: &Path,
) -> Result<Child, CommandError> {
    let what = format!("start {} {} in {ns}", exe.display(), args.join(" "));
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| setup_error(&what, format!("{}: {e}", log.display())))?;
    let err = out.try_clone().map_err(|e| setup_error(&what, e))?;
    Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| setup_error(&what, e))
}

fn wait_for_path(path: &Path, children: &mut [Child]) -> Result<(), CommandError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        for c in children.iter_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(setup_error(
                    format!("wait for {}", path.display()),
                    format!(
                        "daemon {} exited with {status}; see its log in the run dir",
                        c.id()
                    ),
                ));
            }
        }
        if Instant::now() > deadline {
            return Err(setup_error(
                format!("wait for {}", path.display()),
                "not ready after 10 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Namespaces that belong to testbed `name` (exact role match, so "a" never
/// matches the namespaces of a testbed called "a-b").
pub fn namespaces_of(name: &str) -> impl Iterator<Item = String> {
    let prefix = format!("{NS_PREFIX}{name}-");
    netns::list_namespaces()
        .into_iter()
        .filter(move |ns| ns.strip_prefix(&prefix).is_some_and(is_role_suffix))
}

fn is_role_suffix(rest: &str) -> bool {
    matches!(rest, "router" | "lan" | "inet")
        || rest
            .strip_prefix("isp")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Names of every testbed with a namespace or run dir on this host.
pub fn all_testbeds() -> Vec<String> {
    let mut names: Vec<String> = netns::list_namespaces()
        .iter()
        .filter_map(|ns| {
            let rest = ns.strip_prefix(NS_PREFIX)?;
            let (name, role) = rest.rsplit_once('-')?;
            is_role_suffix(role).then(|| name.to_string())
        })
        .collect();
    if let Ok(dir) = fs::read_dir(RUN_ROOT) {
        names.extend(
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok()),
        );
    }
    names.sort();
    names.dedup();
    names
}

/// Removes testbed `name` completely: kills every process inside its
/// namespaces (hops, servers, and whatever a test started there), deletes
/// the namespaces (which removes their devices and nft tables) and the run
/// dir. Works from the names alone, so it also clears a crashed run.
/// Returns what it could not remove.
pub fn teardown(name: &str, children: &mut [Child]) -> Vec<String> {
    let mut problems = Vec::new();
    let namespaces: Vec<String> = namespaces_of(name).collect();
    let mut pids: Vec<i32> = namespaces
        .iter()
        .flat_map(|ns| netns::namespace_pids(ns))
        .collect();
    pids.extend(children.iter().map(|c| c.id() as i32));
    pids.sort_unstable();
    pids.dedup();
    let me = std::process::id() as i32;
    for &pid in pids.iter().filter(|&&p| p != me) {
        // SAFETY: plain kill(2); a pid already gone gives ESRCH, which is fine.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for c in children.iter_mut() {
        if let Err(e) = c.wait() {
            problems.push(format!("reap pid {}: {e}", c.id()));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    for &pid in pids.iter().filter(|&&p| p != me) {
        while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
            if Instant::now() > deadline {
                problems.push(format!("pid {pid} still alive after SIGKILL"));
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    for ns in &namespaces {
        if let Err(e) = netns::run("ip", &["netns", "del", ns], None) {
            problems.push(e.to_string());
        }
    }
    let dir = run_dir(name);
    if dir.exists() {
        if let Err(e) = fs::remove_dir_all(&dir) {
            problems.push(format!("remove {}: {e}", dir.display()));
        }
    }
    problems
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::is_role_suffix;

    #[test]
    fn only_exact_roles_belong_to_a_testbed() {
        for role in ["router", "lan", "inet", "isp1", "isp32"] {
            assert!(is_role_suffix(role), "{role}");
        }
        // "mwtb-a-b-router" is testbed "a-b", not testbed "a".
        for other in ["b-router", "isp", "ispx", "routers", ""] {
            assert!(!is_role_suffix(other), "{other}");
        }
    }
}
